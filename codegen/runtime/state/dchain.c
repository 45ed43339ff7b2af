/*
 * DoubleChain: indexes 0..range-1 on two circular doubly-linked lists (see
 * state_internal.h).  Allocation takes the first free index; touching an
 * index moves it to the tail of the allocated list, so the head is always
 * the least recently touched and expiry is O(1) per expired index.
 */
#include <stdlib.h>

#include "state_internal.h"

static void append_cell(struct DoubleChainCell *cells, int head, int cell) {
  dchain_link_after(cells, cells[head].prev, cell);
}

int dchain_allocate(int index_range, struct DoubleChain **chain_out) {
  if (index_range <= 0 || index_range > (1 << 30))
    return 0;
  struct DoubleChain *chain = calloc(1, sizeof(*chain));
  if (chain == NULL)
    return 0;
  chain->cells = calloc((size_t)index_range + DCHAIN_FIRST_INDEX, sizeof(*chain->cells));
  chain->timestamps = calloc((size_t)index_range, sizeof(*chain->timestamps));
  chain->allocated = calloc((size_t)index_range, sizeof(*chain->allocated));
  if (!chain->cells || !chain->timestamps || !chain->allocated) {
    free(chain->cells);
    free(chain->timestamps);
    free(chain->allocated);
    free(chain);
    return 0;
  }
  chain->range = index_range;
  struct DoubleChainCell *cells = chain->cells;
  cells[DCHAIN_ALLOCATED_HEAD] = (struct DoubleChainCell){DCHAIN_ALLOCATED_HEAD, DCHAIN_ALLOCATED_HEAD};
  cells[DCHAIN_FREE_HEAD] = (struct DoubleChainCell){DCHAIN_FREE_HEAD, DCHAIN_FREE_HEAD};
  for (int i = 0; i < index_range; ++i)
    append_cell(cells, DCHAIN_FREE_HEAD, i + DCHAIN_FIRST_INDEX);
  *chain_out = chain;
  return 1;
}

static void mark_allocated(struct DoubleChain *chain, int index,
                           vigor_time_t time) {
  dchain_unlink_cell(chain->cells, index + DCHAIN_FIRST_INDEX);
  append_cell(chain->cells, DCHAIN_ALLOCATED_HEAD, index + DCHAIN_FIRST_INDEX);
  chain->allocated[index] = 1;
  chain->timestamps[index] = time;
}

int dchain_allocate_new_index(struct DoubleChain *chain, int *index_out,
                              vigor_time_t time) {
  int first = chain->cells[DCHAIN_FREE_HEAD].next;
  if (first == DCHAIN_FREE_HEAD)
    return 0;
  *index_out = first - DCHAIN_FIRST_INDEX;
  mark_allocated(chain, *index_out, time);
  return 1;
}

int dchain_allocate_index(struct DoubleChain *chain, int index,
                          vigor_time_t time) {
  if (index < 0 || index >= chain->range || chain->allocated[index])
    return 0;
  mark_allocated(chain, index, time);
  return 1;
}

int dchain_is_index_allocated(struct DoubleChain *chain, int index) {
  return index >= 0 && index < chain->range && chain->allocated[index];
}

int dchain_rejuvenate_index(struct DoubleChain *chain, int index,
                            vigor_time_t time) {
  if (!dchain_is_index_allocated(chain, index))
    return 0;
  mark_allocated(chain, index, time);
  return 1;
}

int dchain_free_index(struct DoubleChain *chain, int index) {
  if (!dchain_is_index_allocated(chain, index))
    return 0;
  dchain_unlink_cell(chain->cells, index + DCHAIN_FIRST_INDEX);
  append_cell(chain->cells, DCHAIN_FREE_HEAD, index + DCHAIN_FIRST_INDEX);
  chain->allocated[index] = 0;
  return 1;
}

int dchain_expire_one_index(struct DoubleChain *chain, int *index_out,
                            vigor_time_t time) {
  int oldest = chain->cells[DCHAIN_ALLOCATED_HEAD].next;
  if (oldest == DCHAIN_ALLOCATED_HEAD ||
      chain->timestamps[oldest - DCHAIN_FIRST_INDEX] >= time)
    return 0;
  *index_out = oldest - DCHAIN_FIRST_INDEX;
  return dchain_free_index(chain, *index_out);
}
