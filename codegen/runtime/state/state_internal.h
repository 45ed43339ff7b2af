/*
 * Internal layout of the state library's objects.  Only the library's own
 * files (and its variants for generated programs) include this header; NFs
 * see the opaque types of nf.h.
 */
#ifndef MAESTRO_STATE_INTERNAL_H
#define MAESTRO_STATE_INTERNAL_H

#include "nf.h"

/* Abort with a message: a contract violation by the NF (index out of range,
   misuse of an object).  Never used for conditions the contract reports
   through return values. */
void state_fail(const char *function, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 2, 3)));

struct Map {
  map_keys_equality *keq;
  map_key_hash *khash;
  unsigned capacity;   /* most keys the map holds */
  unsigned mask;       /* bucket count - 1; bucket count is a power of two */
  unsigned size;       /* keys held now */
  unsigned char *busy; /* bucket holds a key */
  void **keys;         /* the caller's key pointers */
  unsigned *hashes;    /* khash of the key in the bucket */
  unsigned *chains;    /* keys that probed past this bucket */
  int *values;
};

struct Vector {
  char *data;
  unsigned elem_size;
  unsigned capacity;
};

/* Two circular doubly-linked lists threaded through one cell array:
   cells[0] heads the allocated indexes in order of last touch (oldest first),
   cells[1] heads the free indexes; index i lives in cells[i + 2]. */
struct DoubleChainCell {
  int prev;
  int next;
};

struct DoubleChain {
  int range;
  struct DoubleChainCell *cells;
  vigor_time_t *timestamps;
  unsigned char *allocated;
};

enum { DCHAIN_ALLOCATED_HEAD = 0, DCHAIN_FREE_HEAD = 1, DCHAIN_FIRST_INDEX = 2 };

/* List surgery on the cells (dchain.c, and parallel_state.c's settling of
   core-local touches). */
static inline void dchain_unlink_cell(struct DoubleChainCell *cells, int cell) {
  cells[cells[cell].prev].next = cells[cell].next;
  cells[cells[cell].next].prev = cells[cell].prev;
}

static inline void dchain_link_after(struct DoubleChainCell *cells, int at, int cell) {
  cells[cell].prev = at;
  cells[cell].next = cells[at].next;
  cells[cells[at].next].prev = cell;
  cells[at].next = cell;
}

/* Allocate one particular free index (the sketch uses bucket numbers as
   indexes); returns 0 when it is already allocated or out of range. */
int dchain_allocate_index(struct DoubleChain *chain, int index,
                          vigor_time_t time);

struct Sketch {
  map_key_hash *kh;
  uint32_t capacity;  /* counters per row */
  uint16_t threshold;
  uint32_t *counters; /* SKETCH_DEPTH rows of `capacity` counters */
  struct DoubleChain *rows[SKETCH_DEPTH]; /* live buckets per row, by age */
  uint32_t current[SKETCH_DEPTH];         /* buckets of the last hashed key */
  int has_current;
};

/* Sketch operations on explicit buckets (sketch.c). */
void sketch_hash_buckets(struct Sketch *sketch, void *key, uint32_t *buckets);
void sketch_refresh_buckets(struct Sketch *sketch, const uint32_t *buckets,
                            vigor_time_t now);
int sketch_fetch_buckets(struct Sketch *sketch, const uint32_t *buckets);
int sketch_touch_buckets_of(struct Sketch *sketch, const uint32_t *buckets,
                            vigor_time_t now);

#endif
