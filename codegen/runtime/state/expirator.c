/* Expirator: the loop every NF runs at the start of nf_process. */
#include "state_internal.h"

int expire_items_single_map(struct DoubleChain *chain, struct Vector *vector,
                            struct Map *map, vigor_time_t time) {
  int count = 0;
  int index;
  while (dchain_expire_one_index(chain, &index, time)) {
    void *key;
    void *trash;
    vector_borrow(vector, index, &key);
    map_erase(map, key, &trash);
    vector_return(vector, index, key);
    ++count;
  }
  return count;
}
