/*
 * trace.c -- the reference runner's call trace (state/calltrace.h).
 *
 * Linked only into the tracing build of the runner, with -Wl,--wrap=<f>
 * for every state API function and nf_checksum: the NF's calls reach the
 * __wrap_ functions below, which call the library (__real_) and note what
 * it returned.  Calls the library makes to itself (the expirator erasing
 * from a map) are not noted: only the NF's own calls are its path.
 */
#include "calltrace.h"

#include "nf.h"
#include "state_internal.h"

struct call_trace runner_trace;
int runner_traces_calls = 1;
static int depth;           /* inside a wrapped call: the library's own calls */
static const void *objects[64];
static char kinds[64];      /* m(ap), v(ector), d(chain), s(ketch) */
static int object_count;

static int object_id(const void *object) {
  for (int i = 0; i < object_count; ++i)
    if (objects[i] == object)
      return i;
  return -1;
}

static void allocated(const void *object, char kind) {
  if (depth == 0 && object != NULL && object_count < 64 && object_id(object) < 0) {
    kinds[object_count] = kind;
    objects[object_count++] = object;
  }
}

#define NOTE(fn, object) \
  (depth == 1 ? calltrace_add(&runner_trace, #fn, object_id(object), __builtin_return_address(0)) : NULL)
#define SET(r, field, value) \
  do {                       \
    if ((r) != NULL)         \
      (r)->field = (value);  \
  } while (0)

/* ---- allocation (nf_init): remember each object's allocation order ---- */

int __real_map_allocate(map_keys_equality *, map_key_hash *, unsigned, struct Map **);
int __wrap_map_allocate(map_keys_equality *keq, map_key_hash *khash, unsigned capacity,
                        struct Map **out) {
  ++depth;
  int ok = __real_map_allocate(keq, khash, capacity, out);
  --depth;
  if (ok)
    allocated(*out, 'm');
  return ok;
}
int __real_vector_allocate(int, unsigned, vector_init_elem *, struct Vector **);
int __wrap_vector_allocate(int size, unsigned capacity, vector_init_elem *init, struct Vector **out) {
  ++depth;
  int ok = __real_vector_allocate(size, capacity, init, out);
  --depth;
  if (ok)
    allocated(*out, 'v');
  return ok;
}
int __real_dchain_allocate(int, struct DoubleChain **);
int __wrap_dchain_allocate(int range, struct DoubleChain **out) {
  ++depth;
  int ok = __real_dchain_allocate(range, out);
  --depth;
  if (ok)
    allocated(*out, 'd');
  return ok;
}
int __real_sketch_allocate(map_key_hash *, uint32_t, uint16_t, struct Sketch **);
int __wrap_sketch_allocate(map_key_hash *kh, uint32_t capacity, uint16_t threshold,
                           struct Sketch **out) {
  ++depth;
  int ok = __real_sketch_allocate(kh, capacity, threshold, out);
  --depth;
  if (ok)
    allocated(*out, 's');
  return ok;
}

int __real_cht_fill_cht(struct Vector *, uint32_t, uint32_t);
int __wrap_cht_fill_cht(struct Vector *cht, uint32_t height, uint32_t backends) {
  ++depth;
  int ok = __real_cht_fill_cht(cht, height, backends);
  --depth;
  return ok;
}

/* ---- packet-time calls ---- */

int __real_map_get(struct Map *, void *, int *);
int __wrap_map_get(struct Map *map, void *key, int *value_out) {
  ++depth;
  struct call_record *r = NOTE(map_get, map);
  int found = __real_map_get(map, key, value_out);
  SET(r, ret, found);
  SET(r, out, found ? *value_out : 0);
  --depth;
  return found;
}
void __real_map_put(struct Map *, void *, int);
void __wrap_map_put(struct Map *map, void *key, int value) {
  ++depth;
  NOTE(map_put, map);
  __real_map_put(map, key, value);
  --depth;
}
void __real_map_erase(struct Map *, void *, void **);
void __wrap_map_erase(struct Map *map, void *key, void **trash) {
  ++depth;
  NOTE(map_erase, map);
  __real_map_erase(map, key, trash);
  --depth;
}
unsigned __real_map_size(struct Map *);
unsigned __wrap_map_size(struct Map *map) {
  ++depth;
  struct call_record *r = NOTE(map_size, map);
  unsigned size = __real_map_size(map);
  SET(r, ret, size);
  --depth;
  return size;
}
void __real_vector_borrow(struct Vector *, int, void **);
void __wrap_vector_borrow(struct Vector *vector, int index, void **val_out) {
  ++depth;
  struct call_record *r = NOTE(vector_borrow, vector);
  __real_vector_borrow(vector, index, val_out);
  SET(r, ret, index);
  calltrace_cell(r, *val_out, vector->elem_size);
  --depth;
}
void __real_vector_return(struct Vector *, int, void *);
void __wrap_vector_return(struct Vector *vector, int index, void *value) {
  ++depth;
  struct call_record *r = NOTE(vector_return, vector);
  SET(r, ret, index);
  calltrace_cell(r, value, vector->elem_size);
  __real_vector_return(vector, index, value);
  --depth;
}
int __real_dchain_allocate_new_index(struct DoubleChain *, int *, vigor_time_t);
int __wrap_dchain_allocate_new_index(struct DoubleChain *chain, int *index_out, vigor_time_t time) {
  ++depth;
  struct call_record *r = NOTE(dchain_allocate_new_index, chain);
  int ok = __real_dchain_allocate_new_index(chain, index_out, time);
  SET(r, ret, ok);
  SET(r, out, ok ? *index_out : 0);
  --depth;
  return ok;
}
int __real_dchain_rejuvenate_index(struct DoubleChain *, int, vigor_time_t);
int __wrap_dchain_rejuvenate_index(struct DoubleChain *chain, int index, vigor_time_t time) {
  ++depth;
  struct call_record *r = NOTE(dchain_rejuvenate_index, chain);
  int ret = __real_dchain_rejuvenate_index(chain, index, time);
  SET(r, ret, ret);
  --depth;
  return ret;
}
int __real_dchain_expire_one_index(struct DoubleChain *, int *, vigor_time_t);
int __wrap_dchain_expire_one_index(struct DoubleChain *chain, int *index_out, vigor_time_t time) {
  ++depth;
  struct call_record *r = NOTE(dchain_expire_one_index, chain);
  int ret = __real_dchain_expire_one_index(chain, index_out, time);
  SET(r, ret, ret);
  SET(r, out, ret ? *index_out : 0);
  --depth;
  return ret;
}
int __real_dchain_is_index_allocated(struct DoubleChain *, int);
int __wrap_dchain_is_index_allocated(struct DoubleChain *chain, int index) {
  ++depth;
  struct call_record *r = NOTE(dchain_is_index_allocated, chain);
  int ret = __real_dchain_is_index_allocated(chain, index);
  SET(r, ret, ret);
  --depth;
  return ret;
}
int __real_dchain_free_index(struct DoubleChain *, int);
int __wrap_dchain_free_index(struct DoubleChain *chain, int index) {
  ++depth;
  struct call_record *r = NOTE(dchain_free_index, chain);
  int ret = __real_dchain_free_index(chain, index);
  SET(r, ret, ret);
  --depth;
  return ret;
}
int __real_expire_items_single_map(struct DoubleChain *, struct Vector *, struct Map *, vigor_time_t);
int __wrap_expire_items_single_map(struct DoubleChain *chain, struct Vector *vector, struct Map *map,
                                   vigor_time_t time) {
  ++depth;
  struct call_record *r = NOTE(expire_items_single_map, chain);
  int ret = __real_expire_items_single_map(chain, vector, map, time);
  SET(r, ret, ret);
  --depth;
  return ret;
}
int __real_cht_find_preferred_available_backend(uint64_t, struct Vector *, struct DoubleChain *,
                                                uint32_t, uint32_t, int *);
int __wrap_cht_find_preferred_available_backend(uint64_t hash, struct Vector *cht,
                                                struct DoubleChain *active, uint32_t height,
                                                uint32_t backends, int *chosen) {
  ++depth;
  struct call_record *r = NOTE(cht_find_preferred_available_backend, cht);
  int ret = __real_cht_find_preferred_available_backend(hash, cht, active, height, backends, chosen);
  SET(r, ret, ret);
  SET(r, out, ret ? *chosen : 0);
  --depth;
  return ret;
}
void __real_sketch_compute_hashes(struct Sketch *, void *);
void __wrap_sketch_compute_hashes(struct Sketch *sketch, void *key) {
  ++depth;
  NOTE(sketch_compute_hashes, sketch);
  __real_sketch_compute_hashes(sketch, key);
  --depth;
}
void __real_sketch_refresh(struct Sketch *, vigor_time_t);
void __wrap_sketch_refresh(struct Sketch *sketch, vigor_time_t now) {
  ++depth;
  NOTE(sketch_refresh, sketch);
  __real_sketch_refresh(sketch, now);
  --depth;
}
int __real_sketch_fetch(struct Sketch *);
int __wrap_sketch_fetch(struct Sketch *sketch) {
  ++depth;
  struct call_record *r = NOTE(sketch_fetch, sketch);
  int ret = __real_sketch_fetch(sketch);
  SET(r, ret, ret);
  --depth;
  return ret;
}
int __real_sketch_touch_buckets(struct Sketch *, vigor_time_t);
int __wrap_sketch_touch_buckets(struct Sketch *sketch, vigor_time_t now) {
  ++depth;
  struct call_record *r = NOTE(sketch_touch_buckets, sketch);
  int ret = __real_sketch_touch_buckets(sketch, now);
  SET(r, ret, ret);
  --depth;
  return ret;
}
void __real_sketch_expire(struct Sketch *, vigor_time_t);
void __wrap_sketch_expire(struct Sketch *sketch, vigor_time_t time) {
  ++depth;
  NOTE(sketch_expire, sketch);
  __real_sketch_expire(sketch, time);
  --depth;
}
uint16_t __real_nf_checksum(const void *, uint16_t, uint32_t);
uint16_t __wrap_nf_checksum(const void *data, uint16_t length, uint32_t initial) {
  ++depth;
  struct call_record *r = depth == 1 ? calltrace_add(&runner_trace, "nf_checksum", -1,
                                                     __builtin_return_address(0)) : NULL;
  uint16_t sum = __real_nf_checksum(data, length, initial);
  SET(r, ret, sum);
  --depth;
  return sum;
}

/* ---- the state after the run (--state KEY_SIZES), for generating traffic
   that reaches paths which need entries to exist (codegen/path_traffic.py):

     # state map <object> <key hex>=<value> ...
     # state dchain <object> <index>@<time> ...
     # state vector <object> <index>=<cell hex> ...   (non-zero cells)
*/
static void dump_bytes(FILE *out, const void *data, unsigned length) {
  const unsigned char *bytes = data;
  for (unsigned i = 0; i < length; ++i)
    fprintf(out, "%02x", bytes[i]);
}

void runner_dump_state(FILE *out, const int *key_sizes, int key_size_count) {
  for (int id = 0; id < object_count; ++id) {
    if (kinds[id] == 'm' && id < key_size_count && key_sizes[id] > 0) {
      const struct Map *map = objects[id];
      fprintf(out, "# state map %d", id);
      for (unsigned b = 0; b <= map->mask; ++b)
        if (map->busy[b]) {
          fputc(' ', out);
          dump_bytes(out, map->keys[b], (unsigned)key_sizes[id]);
          fprintf(out, "=%d", map->values[b]);
        }
      fputc('\n', out);
    } else if (kinds[id] == 'd') {
      const struct DoubleChain *chain = objects[id];
      fprintf(out, "# state dchain %d", id);
      for (int i = 0; i < chain->range; ++i)
        if (chain->allocated[i])
          fprintf(out, " %d@%" PRId64, i, (int64_t)chain->timestamps[i]);
      fputc('\n', out);
    } else if (kinds[id] == 'v') {
      const struct Vector *vector = objects[id];
      if (vector->elem_size > CALLTRACE_CELL)
        continue;
      fprintf(out, "# state vector %d", id);
      unsigned shown = 0;
      for (unsigned i = 0; i < vector->capacity && shown < 4096; ++i) {
        const char *cell = vector->data + (size_t)i * vector->elem_size;
        unsigned zero = 1;
        for (unsigned b = 0; b < vector->elem_size && zero; ++b)
          zero = cell[b] == 0;
        if (!zero) {
          fprintf(out, " %u=", i);
          dump_bytes(out, cell, vector->elem_size);
          ++shown;
        }
      }
      fputc('\n', out);
    }
  }
}
