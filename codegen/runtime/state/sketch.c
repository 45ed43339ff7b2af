/*
 * Count-min sketch with expiring buckets.  Each of the SKETCH_DEPTH rows
 * has `capacity` counters and a DoubleChain whose index i is bucket i, so
 * the buckets of a row expire least recently touched first, O(1) each.
 * Row hashes derive from the key hash with a per-row salt and a 32-bit
 * finaliser; keys whose key hashes collide share every bucket.
 */
#include <stdlib.h>

#include "state_internal.h"

static const uint32_t row_salt[SKETCH_DEPTH] = {0x9e3779b9u, 0x7f4a7c15u,
                                                0xf39cc060u, 0x5ced7e29u};

static uint32_t finalise(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352du;
  x ^= x >> 15;
  x *= 0x846ca68bu;
  x ^= x >> 16;
  return x;
}

int sketch_allocate(map_key_hash *kh, uint32_t capacity, uint16_t threshold,
                    struct Sketch **sketch_out) {
  if (kh == NULL || capacity == 0 || capacity > (1u << 28))
    return 0;
  struct Sketch *sketch = calloc(1, sizeof(*sketch));
  if (sketch == NULL)
    return 0;
  sketch->counters = calloc((size_t)capacity * SKETCH_DEPTH, sizeof(uint32_t));
  int ok = sketch->counters != NULL;
  for (int row = 0; ok && row < SKETCH_DEPTH; ++row)
    ok = dchain_allocate((int)capacity, &sketch->rows[row]);
  if (!ok)
    return 0; /* init-time failure: the NF's nf_init fails, nothing to reuse */
  sketch->kh = kh;
  sketch->capacity = capacity;
  sketch->threshold = threshold;
  *sketch_out = sketch;
  return 1;
}

static uint32_t *counter(struct Sketch *sketch, const uint32_t *buckets, int row) {
  return &sketch->counters[(size_t)row * sketch->capacity + buckets[row]];
}

static const uint32_t *current(struct Sketch *sketch, const char *function) {
  if (!sketch->has_current)
    state_fail(function, "called before sketch_compute_hashes");
  return sketch->current;
}

/* The *_buckets functions take the key's buckets explicitly, so that the
   parallel runtime can keep them per core for a shared sketch. */
void sketch_hash_buckets(struct Sketch *sketch, void *key, uint32_t *buckets) {
  uint32_t hash = sketch->kh(key);
  for (int row = 0; row < SKETCH_DEPTH; ++row)
    buckets[row] = finalise(hash ^ row_salt[row]) % sketch->capacity;
}

void sketch_refresh_buckets(struct Sketch *sketch, const uint32_t *buckets,
                            vigor_time_t now) {
  for (int row = 0; row < SKETCH_DEPTH; ++row)
    dchain_rejuvenate_index(sketch->rows[row], (int)buckets[row], now);
}

int sketch_fetch_buckets(struct Sketch *sketch, const uint32_t *buckets) {
  uint32_t estimate = UINT32_MAX;
  for (int row = 0; row < SKETCH_DEPTH; ++row)
    if (*counter(sketch, buckets, row) < estimate)
      estimate = *counter(sketch, buckets, row);
  return estimate > sketch->threshold;
}

int sketch_touch_buckets_of(struct Sketch *sketch, const uint32_t *buckets,
                            vigor_time_t now) {
  for (int row = 0; row < SKETCH_DEPTH; ++row) {
    int bucket = (int)buckets[row];
    if (!dchain_rejuvenate_index(sketch->rows[row], bucket, now))
      dchain_allocate_index(sketch->rows[row], bucket, now);
    if (*counter(sketch, buckets, row) < UINT32_MAX)
      ++*counter(sketch, buckets, row);
  }
  return 1;
}

void sketch_compute_hashes(struct Sketch *sketch, void *key) {
  sketch_hash_buckets(sketch, key, sketch->current);
  sketch->has_current = 1;
}

void sketch_refresh(struct Sketch *sketch, vigor_time_t now) {
  sketch_refresh_buckets(sketch, current(sketch, __func__), now);
}

int sketch_fetch(struct Sketch *sketch) {
  return sketch_fetch_buckets(sketch, current(sketch, __func__));
}

int sketch_touch_buckets(struct Sketch *sketch, vigor_time_t now) {
  return sketch_touch_buckets_of(sketch, current(sketch, __func__), now);
}

void sketch_expire(struct Sketch *sketch, vigor_time_t time) {
  for (int row = 0; row < SKETCH_DEPTH; ++row) {
    int bucket;
    while (dchain_expire_one_index(sketch->rows[row], &bucket, time))
      sketch->counters[(size_t)row * sketch->capacity + bucket] = 0;
  }
}
