/*
 * DoubleChain: indexes 0..range-1 on two circular doubly-linked lists (see
 * state_internal.h).  Allocation takes the first free index; touching an
 * index moves it to the tail of the allocated list, so the head is always
 * the least recently touched and expiry is O(1) per expired index.
 */
#include <stdlib.h>

#include "state_internal.h"

enum { ALLOCATED_HEAD = 0, FREE_HEAD = 1, FIRST_INDEX = 2 };

static void unlink_cell(struct DoubleChainCell *cells, int cell) {
  cells[cells[cell].prev].next = cells[cell].next;
  cells[cells[cell].next].prev = cells[cell].prev;
}

static void append_cell(struct DoubleChainCell *cells, int head, int cell) {
  int last = cells[head].prev;
  cells[cell].prev = last;
  cells[cell].next = head;
  cells[last].next = cell;
  cells[head].prev = cell;
}

int dchain_allocate(int index_range, struct DoubleChain **chain_out) {
  if (index_range <= 0 || index_range > (1 << 30))
    return 0;
  struct DoubleChain *chain = calloc(1, sizeof(*chain));
  if (chain == NULL)
    return 0;
  chain->cells = calloc((size_t)index_range + FIRST_INDEX, sizeof(*chain->cells));
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
  cells[ALLOCATED_HEAD] = (struct DoubleChainCell){ALLOCATED_HEAD, ALLOCATED_HEAD};
  cells[FREE_HEAD] = (struct DoubleChainCell){FREE_HEAD, FREE_HEAD};
  for (int i = 0; i < index_range; ++i)
    append_cell(cells, FREE_HEAD, i + FIRST_INDEX);
  *chain_out = chain;
  return 1;
}

static void mark_allocated(struct DoubleChain *chain, int index,
                           vigor_time_t time) {
  unlink_cell(chain->cells, index + FIRST_INDEX);
  append_cell(chain->cells, ALLOCATED_HEAD, index + FIRST_INDEX);
  chain->allocated[index] = 1;
  chain->timestamps[index] = time;
}

int dchain_allocate_new_index(struct DoubleChain *chain, int *index_out,
                              vigor_time_t time) {
  int first = chain->cells[FREE_HEAD].next;
  if (first == FREE_HEAD)
    return 0;
  *index_out = first - FIRST_INDEX;
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
  unlink_cell(chain->cells, index + FIRST_INDEX);
  append_cell(chain->cells, FREE_HEAD, index + FIRST_INDEX);
  chain->allocated[index] = 0;
  return 1;
}

int dchain_expire_one_index(struct DoubleChain *chain, int *index_out,
                            vigor_time_t time) {
  int oldest = chain->cells[ALLOCATED_HEAD].next;
  if (oldest == ALLOCATED_HEAD ||
      chain->timestamps[oldest - FIRST_INDEX] >= time)
    return 0;
  *index_out = oldest - FIRST_INDEX;
  return dchain_free_index(chain, *index_out);
}
