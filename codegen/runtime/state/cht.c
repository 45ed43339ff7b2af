/*
 * Consistent-hash table, Maglev-style (Eisenbud et al., NSDI 2016).
 *
 * Backend b walks the rows in its own permutation perm_b(j) = (offset_b +
 * j * skip_b) mod H (H prime, so every permutation covers all rows).  Row r
 * of the table lists all backends in preference order: first the backend
 * Maglev's round-robin population gives the row (so rows are spread evenly
 * when all backends are up), then the others by how early their permutation
 * reaches r.  A lookup takes the first backend of the row that is active,
 * so a backend going down only moves the hashes that preferred it.
 */
#include <stdlib.h>

#include "state_internal.h"

static uint32_t mix32(uint32_t x) {
  x ^= x >> 16;
  x *= 0x85ebca6bu;
  x ^= x >> 13;
  x *= 0xc2b2ae35u;
  x ^= x >> 16;
  return x;
}

static int is_prime(uint32_t n) {
  if (n < 2)
    return 0;
  for (uint32_t d = 2; (uint64_t)d * d <= n; ++d)
    if (n % d == 0)
      return 0;
  return 1;
}

/* Position of each row in each backend's permutation: pos[b * H + r]. */
static uint32_t *permutation_positions(uint32_t height, uint32_t backends) {
  uint32_t *pos = malloc(sizeof(*pos) * height * backends);
  if (pos == NULL)
    return NULL;
  for (uint32_t b = 0; b < backends; ++b) {
    uint32_t offset = mix32(b * 2 + 1) % height;
    uint32_t skip = mix32(b * 2 + 2) % (height - 1) + 1;
    for (uint32_t j = 0; j < height; ++j)
      pos[b * height + (uint32_t)((offset + (uint64_t)j * skip) % height)] = j;
  }
  return pos;
}

/* Maglev's population: backends take turns claiming their next free row. */
static void populate_first_choice(const uint32_t *pos, uint32_t height,
                                  uint32_t backends, uint32_t *first) {
  uint32_t *next = calloc(backends, sizeof(*next));
  uint32_t *row_at = malloc(sizeof(*row_at) * height * backends);
  for (uint32_t b = 0; b < backends; ++b)
    for (uint32_t r = 0; r < height; ++r)
      row_at[b * height + pos[b * height + r]] = r;
  for (uint32_t r = 0; r < height; ++r)
    first[r] = UINT32_MAX;
  for (uint32_t filled = 0; filled < height;) {
    for (uint32_t b = 0; b < backends && filled < height; ++b) {
      uint32_t row;
      do
        row = row_at[b * height + next[b]++];
      while (first[row] != UINT32_MAX);
      first[row] = b;
      ++filled;
    }
  }
  free(next);
  free(row_at);
}

int cht_fill_cht(struct Vector *cht, uint32_t cht_height,
                 uint32_t backend_capacity) {
  if (backend_capacity == 0 || !is_prime(cht_height) ||
      cht_height <= backend_capacity || cht->elem_size != sizeof(uint32_t) ||
      (uint64_t)cht_height * backend_capacity > cht->capacity)
    return 0;
  uint32_t *pos = permutation_positions(cht_height, backend_capacity);
  uint32_t *first = malloc(sizeof(*first) * cht_height);
  if (pos == NULL || first == NULL) {
    free(pos);
    free(first);
    return 0;
  }
  populate_first_choice(pos, cht_height, backend_capacity, first);
  for (uint32_t r = 0; r < cht_height; ++r) {
    uint32_t *row = (uint32_t *)cht->data + (size_t)r * backend_capacity;
    /* Insertion sort by permutation position, the first choice in front. */
    uint32_t n = 0;
    row[n++] = first[r];
    for (uint32_t b = 0; b < backend_capacity; ++b) {
      if (b == first[r])
        continue;
      uint32_t i = n++;
      while (i > 1 && pos[row[i - 1] * cht_height + r] > pos[b * cht_height + r]) {
        row[i] = row[i - 1];
        --i;
      }
      row[i] = b;
    }
  }
  free(pos);
  free(first);
  return 1;
}

int cht_find_preferred_available_backend(uint64_t hash, struct Vector *cht,
                                         struct DoubleChain *active_backends,
                                         uint32_t cht_height,
                                         uint32_t backend_capacity,
                                         int *chosen_backend) {
  if (cht_height == 0 || (uint64_t)cht_height * backend_capacity > cht->capacity)
    state_fail(__func__, "table of %u x %u does not fit the vector of %u cells",
               cht_height, backend_capacity, cht->capacity);
  const uint32_t *row =
      (const uint32_t *)cht->data + (size_t)(hash % cht_height) * backend_capacity;
  for (uint32_t i = 0; i < backend_capacity; ++i) {
    if (dchain_is_index_allocated(active_backends, (int)row[i])) {
      *chosen_backend = (int)row[i];
      return 1;
    }
  }
  return 0;
}
