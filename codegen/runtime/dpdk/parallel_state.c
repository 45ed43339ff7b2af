/*
 * parallel_state.c -- the NF contract's state API for parallel programs.
 *
 * Every NF copy calls par_* (par_rename.h).  Each allocation of nf_init is
 * matched, by allocation order, with the plan's decision for that object:
 *   shard / replicate: each worker's copy gets a private instance (its own
 *                      nf_init fills it); no synchronisation;
 *   shared:            one instance for all workers, created by worker 0's
 *                      nf_init, accessed under the plan's lock scheme.
 *
 * Lock schemes (strategy "locks"):
 *   (a) maestro: one global lock made of a reader token per worker plus a
 *       writer token.  A packet runs in read mode: reads take the worker's
 *       own token; the first write (to any object) aborts the packet, which
 *       is re-run from the saved packet bytes under the writer token.  Flow
 *       rejuvenation is core-local (per-worker timestamps of shared
 *       dchains), so packets of existing flows stay in read mode; expiry
 *       consults the timestamps.  To stay serializable, an index is touched
 *       core-locally by one worker at a time (its owner, claimed with a CAS
 *       when no other worker's touch is its last and the base time is not
 *       newer); any other touch runs in write mode, which gives the index
 *       back to the base chain.  So the last touch of an index is always
 *       the last in the run's serial order, as in the sequential NF.
 *   (b) object: one read-write lock per shared object.  Read mode takes the
 *       read locks it needs (try-lock: on conflict the packet is re-run);
 *       write mode takes every shared object's write lock in a fixed order.
 *   (c) global: the first access to shared state takes one spinlock, held
 *       until the packet is done.
 *   With shared NF variables (maestro_exclusive), accesses the NF makes
 *   directly cannot be guarded, so every packet runs under the global
 *   lock, in write mode, whatever the scheme.
 * Strategy "tm": each packet runs in an RTM transaction; after
 * MAESTRO_TM_RETRIES aborts it runs under a fallback lock that transactions
 * subscribe to.
 *
 * Aborting a packet (read mode -> write mode) is safe because read mode
 * never writes: cells handed out by vector_borrow in read mode are per-core
 * scratch copies, compared with the real cell at vector_return.
 */
#include "calltrace.h"

#include <immintrin.h>
#include <malloc.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt.h"
#include "state_internal.h"

#include "par_rename.h"
#include "nf_state_api.h"
#include "par_unrename.h"

#define MAESTRO_TM_RETRIES 8
#define SCRATCH_SLOTS 16
#define SCRATCH_BYTES 256
#define CACHE_LINE 64

/* ------------------------------------------------------------------ */
/* Locks: small hand-written primitives (TSan-friendly atomics).       */
/* ------------------------------------------------------------------ */

struct rwlock {
  int value; /* -1: a writer; n > 0: n readers */
};

static int rw_read_trylock(struct rwlock *lock) {
  int seen = __atomic_load_n(&lock->value, __ATOMIC_RELAXED);
  return seen >= 0 &&
         __atomic_compare_exchange_n(&lock->value, &seen, seen + 1, false,
                                     __ATOMIC_ACQUIRE, __ATOMIC_RELAXED);
}

static void rw_read_unlock(struct rwlock *lock) {
  __atomic_fetch_sub(&lock->value, 1, __ATOMIC_RELEASE);
}

static void rw_write_lock(struct rwlock *lock) {
  for (;;) {
    int free_ = 0;
    if (__atomic_compare_exchange_n(&lock->value, &free_, -1, false,
                                    __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
      return;
    _mm_pause();
  }
}

static void rw_write_unlock(struct rwlock *lock) {
  __atomic_store_n(&lock->value, 0, __ATOMIC_RELEASE);
}

static void spin_lock(int *lock) {
  while (__atomic_exchange_n(lock, 1, __ATOMIC_ACQUIRE))
    while (__atomic_load_n(lock, __ATOMIC_RELAXED))
      _mm_pause();
}

static void spin_unlock(int *lock) { __atomic_store_n(lock, 0, __ATOMIC_RELEASE); }

/* (a): a reader token per worker, each on its own cache line. */
struct reader_token {
  int held;
  char pad[CACHE_LINE - sizeof(int)];
} __attribute__((aligned(CACHE_LINE)));

static struct reader_token reader_tokens[MAESTRO_MAX_WORKERS];
static int writer_token;
static int global_lock;   /* (c), and the TM fallback */
static unsigned worker_count;

static void reader_lock(unsigned worker) {
  for (;;) {
    __atomic_store_n(&reader_tokens[worker].held, 1, __ATOMIC_SEQ_CST);
    if (!__atomic_load_n(&writer_token, __ATOMIC_SEQ_CST))
      return;
    __atomic_store_n(&reader_tokens[worker].held, 0, __ATOMIC_RELEASE);
    while (__atomic_load_n(&writer_token, __ATOMIC_RELAXED))
      _mm_pause();
  }
}

static void reader_unlock(unsigned worker) {
  __atomic_store_n(&reader_tokens[worker].held, 0, __ATOMIC_RELEASE);
}

/* Dekker-style with the readers: the writer announces itself, then waits
   for every token; a reader sets its token, then checks for a writer.  All
   four accesses are sequentially consistent, so one of the two sees the
   other. */
static void writer_lock(void) {
  while (__atomic_exchange_n(&writer_token, 1, __ATOMIC_SEQ_CST))
    while (__atomic_load_n(&writer_token, __ATOMIC_RELAXED))
      _mm_pause();
  for (unsigned w = 0; w < worker_count; ++w)
    while (__atomic_load_n(&reader_tokens[w].held, __ATOMIC_SEQ_CST))
      _mm_pause();
}

static void writer_unlock(void) { spin_unlock(&writer_token); }

/* ------------------------------------------------------------------ */
/* Objects and the per-worker packet context.                          */
/* ------------------------------------------------------------------ */

struct par_object {
  unsigned id;     /* allocation order */
  int shared;
  struct rwlock rw; /* (b) */
};

struct ParMap {
  struct par_object o;
  struct Map *base;
};

struct ParVector {
  struct par_object o;
  struct Vector *base;
};

/* An index being put in its place by its last touch (settle_local_touches). */
struct settling {
  vigor_time_t time;
  int position; /* in the base chain's list before: ties keep it */
  int index;
};

struct ParDoubleChain {
  struct par_object o;
  struct DoubleChain *base;
  vigor_time_t *local_time[MAESTRO_MAX_WORKERS]; /* (a): core-local touches */
  int *owner; /* (a): per index, the worker whose local time is its last touch, or -1 */
  struct settling *settling; /* (a): room for every index (settle_local_touches) */
};

struct ParSketch {
  struct par_object o;
  struct Sketch *base;
};

enum mode { MODE_PLAIN, MODE_READ, MODE_WRITE };

struct scratch_slot {
  struct ParVector *vector;
  int index;
  char bytes[SCRATCH_BYTES];
};

/* What one worker's current packet holds; thread-local. */
/* A core-local touch made in read mode, undone when the packet re-runs. */
struct local_touch {
  struct ParDoubleChain *chain;
  int index;
  int claimed;            /* the touch made this worker the owner */
  vigor_time_t previous;  /* the worker's local time before */
};

struct packet_ctx {
  unsigned worker;
  enum mode mode;
  jmp_buf abort;
  int holds_global;
  int holds_reader;
  uint64_t read_held; /* (b): objects whose read lock is held */
  struct scratch_slot scratch[SCRATCH_SLOTS];
  uint32_t sketch_buckets[MAESTRO_MAX_OBJECTS][SKETCH_DEPTH];
  struct local_touch touches[SCRATCH_SLOTS]; /* (a): this attempt's touches */
  unsigned touch_count;
  /* Verification (maestro_record_order): the shared objects this attempt
     read and wrote (bit: allocation order), and copies of the shared cells
     it borrowed outside read mode, to tell a written cell at its return. */
  uint64_t reads, writes;
  struct scratch_slot copies[SCRATCH_SLOTS];
};

static __thread struct packet_ctx ctx;
/* Serial order of packets: taken while a packet still holds its locks (or
   right after its transaction commits), so conflicting packets are ordered
   as they really ran.  Verification replays the trace in this order. */
static uint64_t commit_counter;
static __thread uint64_t last_commit;

uint64_t maestro_last_commit(void) { return last_commit; }

int maestro_record_order;

static void commit(void) {
  if (maestro_record_order) /* a shared counter: only when verifying */
    last_commit = __atomic_fetch_add(&commit_counter, 1, __ATOMIC_RELAXED);
}
/* The single instance of each shared object, by allocation order. */
static struct par_object *shared_instances[MAESTRO_MAX_OBJECTS];
/* nf_init bookkeeping: which worker's copy runs, which allocation is next. */
static unsigned init_worker;
static unsigned init_next;
static int in_init;

static _Noreturn void abort_packet(void) { longjmp(ctx.abort, 1); }

static int uses_locks(void) { return maestro_strategy == MAESTRO_LOCKS; }

/* The state calls of the worker's current packet (verification runs). */
int maestro_record_calls;
static __thread struct call_trace packet_calls;

const struct call_trace *maestro_packet_calls(void) { return &packet_calls; }

/* A packet (re-)starts: nothing it noted in an attempt before counts. */
static void forget_attempt(void) {
  packet_calls.count = packet_calls.lost = 0;
  if (maestro_record_order) {
    ctx.reads = ctx.writes = 0;
    for (int i = 0; i < SCRATCH_SLOTS; ++i)
      ctx.copies[i].vector = NULL;
  }
}

void maestro_packet_access(uint64_t *reads, uint64_t *writes) {
  *reads = ctx.reads;
  *writes = ctx.writes;
}

static void note_read(const struct par_object *o) {
  if (o->shared)
    ctx.reads |= 1ull << o->id;
}

static void note_write(const struct par_object *o) {
  if (o->shared)
    ctx.writes |= 1ull << o->id;
}

#define NOTE(fn, object)                                                              \
  (maestro_record_calls && !in_init                                                 \
       ? calltrace_add(&packet_calls, #fn, (int)(object)->o.id, __builtin_return_address(0)) \
       : NULL)
#define SET(r, field, value) \
  do {                       \
    if ((r) != NULL)         \
      (r)->field = (value);  \
  } while (0)

/* Before reading object `o`. */
static void guard_read(struct par_object *o) {
  note_read(o);
  if (!o->shared || !uses_locks())
    return;
  switch (ctx.mode) {
  case MODE_PLAIN: /* (c) */
    if (!ctx.holds_global) {
      spin_lock(&global_lock);
      ctx.holds_global = 1;
    }
    return;
  case MODE_READ:
    if (maestro_lock_kind == MAESTRO_LOCK_MAESTRO) {
      if (!ctx.holds_reader) {
        reader_lock(ctx.worker);
        ctx.holds_reader = 1;
      }
    } else if (!(ctx.read_held & (1ull << o->id))) {
      if (!rw_read_trylock(&o->rw))
        abort_packet(); /* a writer holds it: re-run in write mode */
      ctx.read_held |= 1ull << o->id;
    }
    return;
  case MODE_WRITE:
    return;
  }
}

/* Before writing object `o`: in read mode, re-run the packet for writing. */
static void guard_write(struct par_object *o) {
  note_write(o);
  if (ctx.mode == MODE_READ)
    abort_packet();
  guard_read(o);
}

/* Writes of later workers' nf_init to a shared object are skipped: worker
   0's nf_init filled it already. */
static int skip_init_write(struct par_object *o) {
  return in_init && o->shared && init_worker > 0;
}

static void release_read_locks(void) {
  if (ctx.holds_reader) {
    reader_unlock(ctx.worker);
    ctx.holds_reader = 0;
  }
  while (ctx.read_held) {
    unsigned id = (unsigned)__builtin_ctzll(ctx.read_held);
    ctx.read_held &= ctx.read_held - 1;
    rw_read_unlock(&shared_instances[id]->rw);
  }
}

static void acquire_write_locks(void) {
  if (maestro_lock_kind == MAESTRO_LOCK_MAESTRO) {
    writer_lock();
    return;
  }
  for (unsigned id = 0; id < maestro_object_count; ++id) /* fixed order */
    if (shared_instances[id] != NULL)
      rw_write_lock(&shared_instances[id]->rw);
}

static void release_write_locks(void) {
  if (maestro_lock_kind == MAESTRO_LOCK_MAESTRO) {
    writer_unlock();
    return;
  }
  for (unsigned id = maestro_object_count; id-- > 0;)
    if (shared_instances[id] != NULL)
      rw_write_unlock(&shared_instances[id]->rw);
}

/* ------------------------------------------------------------------ */
/* Allocation: match nf_init's k-th allocation with the plan.          */
/* ------------------------------------------------------------------ */

/* The plan's entry for the next allocation, or NULL (with a message) when
   the NF allocates differently from the analysis the plan came from. */
static const struct maestro_object_config *next_object(const char *kind) {
  if (init_next >= maestro_object_count) {
    fprintf(stderr, "maestro: nf_init allocates more objects (a %s) than the plan's %u\n",
            kind, maestro_object_count);
    return NULL;
  }
  const struct maestro_object_config *config = &maestro_objects[init_next];
  int compatible = strcmp(config->kind, kind) == 0 ||
                   (strcmp(kind, "vector") == 0 && strcmp(config->kind, "cht") == 0);
  if (!compatible) {
    fprintf(stderr, "maestro: allocation %u of nf_init is a %s, the plan expects %s %s\n",
            init_next, kind, config->kind, config->name);
    return NULL;
  }
  return config;
}

/* Either the existing shared instance (returned through *existing) or a
   new wrapper of `size` bytes initialised for allocation `id`. */
static void *new_object(size_t size, const struct maestro_object_config *config,
                        void **existing) {
  unsigned id = init_next++;
  int shared = config->decision == MAESTRO_SHARED && maestro_strategy != MAESTRO_SEQ &&
               maestro_strategy != MAESTRO_SN;
  if (shared && shared_instances[id] != NULL) {
    *existing = shared_instances[id];
    return NULL;
  }
  struct par_object *o = calloc(1, size);
  if (o == NULL)
    return NULL;
  o->id = id;
  o->shared = shared;
  if (shared)
    shared_instances[id] = o;
  *existing = NULL;
  return o;
}

/* The capacity a worker's instance gets: the NF's, or the plan's share of
   it for a sharded object (analyses/plan_capacity.py). */
static unsigned instance_capacity(const struct maestro_object_config *config,
                                  unsigned capacity) {
  if (config->decision == MAESTRO_SHARD && config->per_core > 0 &&
      config->per_core < capacity && maestro_strategy != MAESTRO_SEQ)
    return config->per_core;
  return capacity;
}

#define ALLOCATE(Type, kind, out, capacity, base_call)                         \
  do {                                                                         \
    const struct maestro_object_config *config = next_object(kind);            \
    if (config == NULL)                                                        \
      return 0;                                                                \
    capacity = instance_capacity(config, capacity);                            \
    void *existing = NULL;                                                     \
    struct Type *object = new_object(sizeof(struct Type), config, &existing);  \
    if (existing != NULL) {                                                    \
      *(out) = existing;                                                       \
      return 1;                                                                \
    }                                                                          \
    if (object == NULL || !(base_call))                                        \
      return 0;                                                                \
    *(out) = object;                                                           \
  } while (0)

int par_map_allocate(map_keys_equality *keq, map_key_hash *khash, unsigned capacity,
                     struct ParMap **map_out) {
  ALLOCATE(ParMap, "map", map_out, capacity, map_allocate(keq, khash, capacity, &object->base));
  return 1;
}

int par_vector_allocate(int elem_size, unsigned capacity, vector_init_elem *init_elem,
                        struct ParVector **vector_out) {
  ALLOCATE(ParVector, "vector", vector_out, capacity,
           vector_allocate(elem_size, capacity, init_elem, &object->base));
  return 1;
}

int par_dchain_allocate(int index_range, struct ParDoubleChain **chain_out) {
  ALLOCATE(ParDoubleChain, "dchain", chain_out, index_range,
           dchain_allocate(index_range, &object->base));
  struct ParDoubleChain *chain = *chain_out;
  if (chain->o.shared && maestro_lock_kind == MAESTRO_LOCK_MAESTRO &&
      maestro_strategy == MAESTRO_LOCKS) {
    for (unsigned w = 0; w < worker_count; ++w) {
      chain->local_time[w] = malloc(sizeof(vigor_time_t) * (size_t)index_range);
      if (chain->local_time[w] == NULL)
        return 0;
      for (int i = 0; i < index_range; ++i)
        chain->local_time[w][i] = INT64_MIN;
    }
    chain->owner = malloc(sizeof(int) * (size_t)index_range);
    chain->settling = malloc(sizeof(struct settling) * (size_t)index_range);
    if (chain->owner == NULL || chain->settling == NULL)
      return 0;
    for (int i = 0; i < index_range; ++i)
      chain->owner[i] = -1;
  }
  return 1;
}

int par_sketch_allocate(map_key_hash *kh, uint32_t capacity, uint16_t threshold,
                        struct ParSketch **sketch_out) {
  ALLOCATE(ParSketch, "sketch", sketch_out, capacity,
           sketch_allocate(kh, capacity, threshold, &object->base));
  return 1;
}

/* ------------------------------------------------------------------ */
/* Maps                                                                */
/* ------------------------------------------------------------------ */

int par_map_get(struct ParMap *map, void *key, int *value_out) {
  guard_read(&map->o);
  struct call_record *r = NOTE(map_get, map);
  int found = map_get(map->base, key, value_out);
  SET(r, ret, found);
  SET(r, out, found ? *value_out : 0);
  return found;
}

void par_map_put(struct ParMap *map, void *key, int value) {
  if (skip_init_write(&map->o))
    return;
  guard_write(&map->o);
  NOTE(map_put, map);
  map_put(map->base, key, value);
}

void par_map_erase(struct ParMap *map, void *key, void **trash) {
  guard_write(&map->o);
  NOTE(map_erase, map);
  map_erase(map->base, key, trash);
}

unsigned par_map_size(struct ParMap *map) {
  guard_read(&map->o);
  struct call_record *r = NOTE(map_size, map);
  unsigned size = map_size(map->base);
  SET(r, ret, size);
  return size;
}

/* ------------------------------------------------------------------ */
/* Vectors: read mode hands out scratch copies                         */
/* ------------------------------------------------------------------ */

/* A free slot of `slots` now holding a copy of `cell`, or NULL (none free,
   or a cell too big to copy). */
static struct scratch_slot *copy_to_slot(struct scratch_slot *slots, struct ParVector *vector, int index,
                                         const void *cell) {
  if (vector->base->elem_size > SCRATCH_BYTES)
    return NULL;
  for (int i = 0; i < SCRATCH_SLOTS; ++i)
    if (slots[i].vector == NULL) {
      slots[i].vector = vector;
      slots[i].index = index;
      memcpy(slots[i].bytes, cell, vector->base->elem_size);
      return &slots[i];
    }
  return NULL;
}

/* The slot of `slots` holding the copy of `vector`'s cell `index` (at
   `bytes`, unless NULL), freed (its bytes stay readable); NULL when none. */
static struct scratch_slot *take_slot(struct scratch_slot *slots, struct ParVector *vector, int index,
                                      const void *bytes) {
  for (int i = 0; i < SCRATCH_SLOTS; ++i)
    if (slots[i].vector == vector && slots[i].index == index && (bytes == NULL || slots[i].bytes == bytes)) {
      slots[i].vector = NULL;
      return &slots[i];
    }
  return NULL;
}

/* Outside read mode the NF writes a borrowed cell in place: when verifying,
   a copy tells at its return whether it did (a shared object's write). */
static void keep_copy(struct ParVector *vector, int index, const void *cell) {
  if (maestro_record_order && vector->o.shared && copy_to_slot(ctx.copies, vector, index, cell) == NULL)
    note_write(&vector->o); /* no copy: count it written */
}

static void note_if_written(struct ParVector *vector, int index, const void *cell) {
  if (!maestro_record_order || !vector->o.shared)
    return;
  struct scratch_slot *copy = take_slot(ctx.copies, vector, index, NULL);
  if (copy != NULL && memcmp(copy->bytes, cell, vector->base->elem_size) != 0)
    note_write(&vector->o);
}

void par_vector_borrow(struct ParVector *vector, int index, void **val_out) {
  guard_read(&vector->o);
  struct call_record *r = NOTE(vector_borrow, vector);
  void *cell;
  vector_borrow(vector->base, index, &cell);
  SET(r, ret, index);
  calltrace_cell(r, cell, vector->base->elem_size);
  if (ctx.mode != MODE_READ) {
    keep_copy(vector, index, cell);
    *val_out = cell;
    return;
  }
  struct scratch_slot *slot = copy_to_slot(ctx.scratch, vector, index, cell);
  if (slot == NULL)
    abort_packet(); /* too big to copy, or more cells borrowed at once than slots: a write */
  *val_out = slot->bytes;
}

void par_vector_return(struct ParVector *vector, int index, void *value) {
  struct call_record *r = NOTE(vector_return, vector);
  SET(r, ret, index);
  calltrace_cell(r, value, vector->base->elem_size);
  void *cell;
  vector_borrow(vector->base, index, &cell);
  if (ctx.mode == MODE_READ) {
    struct scratch_slot *slot = take_slot(ctx.scratch, vector, index, value);
    if (slot == NULL)
      state_fail(__func__, "index %d returned a pointer it did not borrow", index);
    if (memcmp(slot->bytes, cell, vector->base->elem_size) != 0)
      abort_packet(); /* the NF wrote the cell */
    return;
  }
  note_if_written(vector, index, cell);
  vector_return(vector->base, index, value);
}

int par_cht_fill_cht(struct ParVector *cht, uint32_t cht_height, uint32_t backend_capacity) {
  if (skip_init_write(&cht->o))
    return 1;
  guard_write(&cht->o);
  return cht_fill_cht(cht->base, cht_height, backend_capacity);
}

int par_cht_find_preferred_available_backend(uint64_t hash, struct ParVector *cht,
                                             struct ParDoubleChain *active_backends,
                                             uint32_t cht_height, uint32_t backend_capacity,
                                             int *chosen_backend) {
  guard_read(&cht->o);
  guard_read(&active_backends->o);
  struct call_record *r = NOTE(cht_find_preferred_available_backend, cht);
  int found = cht_find_preferred_available_backend(hash, cht->base, active_backends->base,
                                                   cht_height, backend_capacity, chosen_backend);
  SET(r, ret, found);
  SET(r, out, found ? *chosen_backend : 0);
  return found;
}

/* ------------------------------------------------------------------ */
/* Double chains, with core-local rejuvenation under (a)               */
/* ------------------------------------------------------------------ */

static int core_local(struct ParDoubleChain *chain) { return chain->owner != NULL; }

/* The time of the last touch of `index`: its owner's, else the base's. */
static vigor_time_t last_touch(struct ParDoubleChain *chain, int index) {
  if (core_local(chain)) {
    int owner = __atomic_load_n(&chain->owner[index], __ATOMIC_ACQUIRE);
    if (owner >= 0)
      return __atomic_load_n(&chain->local_time[owner][index], __ATOMIC_RELAXED);
  }
  return chain->base->timestamps[index];
}

/* Write mode: the index's last touch is the base chain's again. */
static void release_owner(struct ParDoubleChain *chain, int index) {
  if (core_local(chain))
    __atomic_store_n(&chain->owner[index], -1, __ATOMIC_RELAXED);
}

/* Read mode: touch `index` core-locally, or re-run the packet in write
   mode when that could reorder touches (see the file doc). */
static void touch_locally(struct ParDoubleChain *chain, int index, vigor_time_t time) {
  int me = (int)ctx.worker;
  if (ctx.touch_count == SCRATCH_SLOTS)
    abort_packet(); /* too many touches to undo: write mode */
  struct local_touch *undo = &ctx.touches[ctx.touch_count];
  *undo = (struct local_touch){chain, index, 0, chain->local_time[me][index]};
  int owner = __atomic_load_n(&chain->owner[index], __ATOMIC_ACQUIRE);
  if (owner != me) {
    if (owner != -1 || time < chain->base->timestamps[index])
      abort_packet();
    __atomic_store_n(&chain->local_time[me][index], time, __ATOMIC_RELAXED);
    int none = -1;
    if (!__atomic_compare_exchange_n(&chain->owner[index], &none, me, false, __ATOMIC_RELEASE,
                                     __ATOMIC_RELAXED))
      abort_packet();
    undo->claimed = 1;
  } else
    __atomic_store_n(&chain->local_time[me][index], time, __ATOMIC_RELAXED);
  ctx.touch_count++;
}

/* Before a packet re-runs in write mode: take back its read-mode touches,
   which were never committed (newest first). */
static void undo_local_touches(void) {
  while (ctx.touch_count > 0) {
    struct local_touch *t = &ctx.touches[--ctx.touch_count];
    __atomic_store_n(&t->chain->local_time[ctx.worker][t->index], t->previous, __ATOMIC_RELAXED);
    if (t->claimed)
      __atomic_store_n(&t->chain->owner[t->index], -1, __ATOMIC_RELEASE);
  }
}

/* The least recently touched allocated index of the base chain, or -1. */
static int oldest_index(struct DoubleChain *chain) {
  int cell = chain->cells[DCHAIN_ALLOCATED_HEAD].next;
  return cell == DCHAIN_ALLOCATED_HEAD ? -1 : cell - DCHAIN_FIRST_INDEX;
}

/* Whether expiring before `time` may free something (read-only): then the
   caller goes to write mode.  The indexes the base chain holds as older
   than `time` lead its list; under (a) each may have been touched since,
   core-locally, so each is looked at: one whose last touch is older than
   `time` expires.  In read mode, one another worker owns counts as "may":
   its owner's touch is not committed yet, and only write mode orders this
   packet after it.  Past SETTLE_LOOKAHEAD indexes, "may" too: write mode
   then settles them (settle_local_touches), so no packet walks far. */
#define SETTLE_LOOKAHEAD 8
static int would_expire(struct ParDoubleChain *chain, vigor_time_t time) {
  struct DoubleChain *base = chain->base;
  int looked = 0;
  for (int cell = base->cells[DCHAIN_ALLOCATED_HEAD].next; cell != DCHAIN_ALLOCATED_HEAD;
       cell = base->cells[cell].next) {
    int index = cell - DCHAIN_FIRST_INDEX;
    if (base->timestamps[index] >= time)
      return 0;
    if (!core_local(chain) || ++looked > SETTLE_LOOKAHEAD)
      return 1;
    if (ctx.mode == MODE_READ) {
      int owner = __atomic_load_n(&chain->owner[index], __ATOMIC_ACQUIRE);
      if (owner >= 0 && owner != (int)ctx.worker)
        return 1;
    }
    if (last_touch(chain, index) < time)
      return 1;
  }
  return 0;
}

static int by_time(const void *a, const void *b) {
  const struct settling *x = a, *y = b;
  if (x->time != y->time)
    return x->time < y->time ? -1 : 1;
  return x->position - y->position;
}

/* Write mode, before expiring before `time`: every index the base chain
   holds as older than `time` gets its last touch as its time (its owner's,
   when touched core-locally since) and moves to where that time puts it, so
   that the base chain's list is in last-touch order, as the sequential
   NF's is: it then expires the same indexes, in the same order (which
   decides the order they are allocated again).  Ties keep the base
   chain's order. */
static void settle_local_touches(struct ParDoubleChain *chain, vigor_time_t time) {
  if (!core_local(chain))
    return;
  struct DoubleChain *base = chain->base;
  struct DoubleChainCell *cells = base->cells;
  const int head = DCHAIN_ALLOCATED_HEAD, first = DCHAIN_FIRST_INDEX;
  int count = 0;
  for (int cell = cells[head].next; cell != head && base->timestamps[cell - first] < time;
       cell = cells[cell].next) {
    int index = cell - first;
    chain->settling[count] = (struct settling){last_touch(chain, index), count, index};
    count++;
  }
  if (count == 0)
    return;
  for (int i = 0; i < count; ++i) {
    int index = chain->settling[i].index;
    dchain_unlink_cell(cells, index + first);
    base->timestamps[index] = chain->settling[i].time;
    release_owner(chain, index);
  }
  qsort(chain->settling, (size_t)count, sizeof(*chain->settling), by_time);
  /* The expired lead the list (the rest is at least `time`); the others go
     where their time is, looked for from the tail (they are recent). */
  int at = head;
  for (int i = 0; i < count && chain->settling[i].time < time; ++i) {
    dchain_link_after(cells, at, chain->settling[i].index + first);
    at = chain->settling[i].index + first;
  }
  for (int i = 0; i < count; ++i) {
    if (chain->settling[i].time < time)
      continue;
    int after = cells[head].prev;
    while (after != head && base->timestamps[after - first] > chain->settling[i].time)
      after = cells[after].prev;
    dchain_link_after(cells, after, chain->settling[i].index + first);
  }
}

int par_dchain_allocate_new_index(struct ParDoubleChain *chain, int *index_out,
                                  vigor_time_t time) {
  guard_write(&chain->o);
  struct call_record *r = NOTE(dchain_allocate_new_index, chain);
  int ok = dchain_allocate_new_index(chain->base, index_out, time);
  SET(r, ret, ok);
  SET(r, out, ok ? *index_out : 0);
  if (ok)
    release_owner(chain, *index_out);
  return ok;
}

int par_dchain_rejuvenate_index(struct ParDoubleChain *chain, int index, vigor_time_t time) {
  struct call_record *r = NOTE(dchain_rejuvenate_index, chain);
  int ret;
  if (ctx.mode == MODE_READ && core_local(chain)) {
    guard_read(&chain->o);
    ret = dchain_is_index_allocated(chain->base, index);
    if (ret) {
      touch_locally(chain, index, time);
      note_write(&chain->o); /* its time, core-locally */
    }
  } else {
    guard_write(&chain->o);
    ret = dchain_rejuvenate_index(chain->base, index, time);
    if (ret)
      release_owner(chain, index);
  }
  SET(r, ret, ret);
  return ret;
}

int par_dchain_expire_one_index(struct ParDoubleChain *chain, int *index_out,
                                vigor_time_t time) {
  guard_read(&chain->o);
  struct call_record *r = NOTE(dchain_expire_one_index, chain);
  if (!would_expire(chain, time))
    return 0;
  guard_write(&chain->o);
  settle_local_touches(chain, time);
  int ret = dchain_expire_one_index(chain->base, index_out, time);
  SET(r, ret, ret);
  SET(r, out, ret ? *index_out : 0);
  return ret;
}

int par_dchain_is_index_allocated(struct ParDoubleChain *chain, int index) {
  guard_read(&chain->o);
  struct call_record *r = NOTE(dchain_is_index_allocated, chain);
  int ret = dchain_is_index_allocated(chain->base, index);
  SET(r, ret, ret);
  return ret;
}

int par_dchain_free_index(struct ParDoubleChain *chain, int index) {
  guard_write(&chain->o);
  struct call_record *r = NOTE(dchain_free_index, chain);
  int ret = dchain_free_index(chain->base, index);
  if (ret)
    release_owner(chain, index);
  SET(r, ret, ret);
  return ret;
}

int par_expire_items_single_map(struct ParDoubleChain *chain, struct ParVector *vector,
                                struct ParMap *map, vigor_time_t time) {
  guard_read(&chain->o);
  struct call_record *r = NOTE(expire_items_single_map, chain);
  if (!would_expire(chain, time))
    return 0;
  guard_write(&chain->o);
  guard_write(&vector->o);
  guard_write(&map->o);
  settle_local_touches(chain, time);
  int count = expire_items_single_map(chain->base, vector->base, map->base, time);
  SET(r, ret, count);
  return count;
}

/* ------------------------------------------------------------------ */
/* Sketches: the hashed key's buckets are per worker                   */
/* ------------------------------------------------------------------ */

void par_sketch_compute_hashes(struct ParSketch *sketch, void *key) {
  guard_read(&sketch->o);
  NOTE(sketch_compute_hashes, sketch);
  sketch_hash_buckets(sketch->base, key, ctx.sketch_buckets[sketch->o.id]);
}

void par_sketch_refresh(struct ParSketch *sketch, vigor_time_t now) {
  guard_write(&sketch->o);
  NOTE(sketch_refresh, sketch);
  sketch_refresh_buckets(sketch->base, ctx.sketch_buckets[sketch->o.id], now);
}

int par_sketch_fetch(struct ParSketch *sketch) {
  guard_read(&sketch->o);
  struct call_record *r = NOTE(sketch_fetch, sketch);
  int ret = sketch_fetch_buckets(sketch->base, ctx.sketch_buckets[sketch->o.id]);
  SET(r, ret, ret);
  return ret;
}

int par_sketch_touch_buckets(struct ParSketch *sketch, vigor_time_t now) {
  guard_write(&sketch->o);
  struct call_record *r = NOTE(sketch_touch_buckets, sketch);
  int ret = sketch_touch_buckets_of(sketch->base, ctx.sketch_buckets[sketch->o.id], now);
  SET(r, ret, ret);
  return ret;
}

void par_sketch_expire(struct ParSketch *sketch, vigor_time_t time) {
  guard_read(&sketch->o);
  NOTE(sketch_expire, sketch);
  int pending = 0;
  for (int row = 0; row < SKETCH_DEPTH; ++row) {
    int oldest = oldest_index(sketch->base->rows[row]);
    pending |= oldest >= 0 && sketch->base->rows[row]->timestamps[oldest] < time;
  }
  if (!pending)
    return;
  guard_write(&sketch->o);
  sketch_expire(sketch->base, time);
}

/* ------------------------------------------------------------------ */
/* Start-up and the per-packet strategies                              */
/* ------------------------------------------------------------------ */

uint64_t maestro_state_bytes[MAESTRO_MAX_WORKERS];

/* Heap bytes in use (the main arena's and mmap'ed blocks). */
static uint64_t heap_in_use(void) {
  struct mallinfo2 info = mallinfo2();
  return (uint64_t)info.uordblks + (uint64_t)info.hblkhd;
}

int maestro_state_init(unsigned workers) {
  worker_count = workers;
  in_init = 1;
  for (init_worker = 0; init_worker < workers; ++init_worker) {
    init_next = 0;
    ctx.mode = MODE_PLAIN;
    uint64_t before = heap_in_use();
    int ok = maestro_nf_inits[init_worker]();
    uint64_t after = heap_in_use();
    maestro_state_bytes[init_worker] = after > before ? after - before : 0;
    if (!ok) {
      fprintf(stderr, "maestro: nf_init failed on worker %u\n", init_worker);
      return 0;
    }
    if (init_next != maestro_object_count) {
      fprintf(stderr, "maestro: nf_init allocated %u objects, the plan has %u\n", init_next,
              maestro_object_count);
      return 0;
    }
    if (ctx.holds_global) {
      spin_unlock(&global_lock);
      ctx.holds_global = 0;
    }
  }
  in_init = 0;
  return 1;
}

int maestro_rtm_supported(void) {
  return __builtin_cpu_supports("rtm");
}

static int run_locked(unsigned worker, uint16_t device, uint8_t *packet, uint16_t length,
                      vigor_time_t now, uint64_t *aborts) {
  maestro_process_fn process = maestro_nf_processes[worker];
  if (maestro_exclusive) {
    spin_lock(&global_lock);
    ctx.mode = MODE_WRITE;
    int out = process(device, packet, length, now);
    commit();
    ctx.writes = ~0ull; /* the NF's own variables: unguarded, so every packet conflicts */
    ctx.mode = MODE_PLAIN;
    spin_unlock(&global_lock);
    return out;
  }
  if (maestro_lock_kind == MAESTRO_LOCK_GLOBAL) {
    ctx.mode = MODE_PLAIN;
    int out = process(device, packet, length, now);
    commit();
    if (ctx.holds_global) {
      spin_unlock(&global_lock);
      ctx.holds_global = 0;
    }
    return out;
  }
  uint8_t saved[length ? length : 1];
  memcpy(saved, packet, length);
  ctx.mode = MODE_READ;
  ctx.touch_count = 0;
  if (setjmp(ctx.abort) == 0) {
    int out = process(device, packet, length, now);
    commit();
    release_read_locks();
    return out;
  }
  /* A write (or a lock conflict) in read mode: run again, exclusively. */
  undo_local_touches();
  release_read_locks();
  forget_attempt();
  memset(ctx.scratch, 0, sizeof(ctx.scratch));
  memcpy(packet, saved, length);
  __atomic_store_n(aborts, *aborts + 1, __ATOMIC_RELAXED); /* read by the stats reports */
  ctx.mode = MODE_WRITE;
  acquire_write_locks();
  int out = process(device, packet, length, now);
  commit();
  release_write_locks();
  ctx.mode = MODE_PLAIN;
  return out;
}

static int run_transaction(unsigned worker, uint16_t device, uint8_t *packet,
                           uint16_t length, vigor_time_t now, uint64_t *aborts) {
  maestro_process_fn process = maestro_nf_processes[worker];
  ctx.mode = MODE_PLAIN;
  for (int attempt = 0; attempt < MAESTRO_TM_RETRIES; ++attempt) {
    forget_attempt();
    unsigned status = _xbegin();
    if (status == _XBEGIN_STARTED) {
      if (__atomic_load_n(&global_lock, __ATOMIC_RELAXED))
        _xabort(0xff); /* the fallback path runs: wait for it */
      int out = process(device, packet, length, now);
      _xend();
      commit(); /* after the commit: an approximation of the serial order */
      return out;
    }
    __atomic_store_n(aborts, *aborts + 1, __ATOMIC_RELAXED); /* hardware rolled it back */
    while (__atomic_load_n(&global_lock, __ATOMIC_RELAXED))
      _mm_pause();
  }
  spin_lock(&global_lock);
  forget_attempt();
  int out = process(device, packet, length, now);
  commit();
  spin_unlock(&global_lock);
  return out;
}

uint16_t par_nf_checksum(const void *data, uint16_t length, uint32_t initial) {
  struct call_record *r = maestro_record_calls && !in_init
                              ? calltrace_add(&packet_calls, "nf_checksum", -1, __builtin_return_address(0))
                              : NULL;
  uint16_t sum = nf_checksum(data, length, initial);
  SET(r, ret, sum);
  return sum;
}

int maestro_run_packet(unsigned worker, uint16_t device, uint8_t *packet,
                       uint16_t length, vigor_time_t now, uint64_t *aborts) {
  ctx.worker = worker;
  forget_attempt();
  switch (maestro_strategy) {
  case MAESTRO_LOCKS:
    return run_locked(worker, device, packet, length, now, aborts);
  case MAESTRO_TM:
    return run_transaction(worker, device, packet, length, now, aborts);
  default:
    ctx.mode = MODE_PLAIN;
    return maestro_nf_processes[worker](device, packet, length, now);
  }
}
