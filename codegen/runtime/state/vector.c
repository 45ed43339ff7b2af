/* Vector: one contiguous array of fixed-size cells. */
#include <stdlib.h>

#include "state_internal.h"

int vector_allocate(int elem_size, unsigned capacity,
                    vector_init_elem *init_elem, struct Vector **vector_out) {
  if (elem_size <= 0 || capacity == 0 ||
      (size_t)elem_size * capacity / capacity != (size_t)elem_size)
    return 0;
  struct Vector *vector = malloc(sizeof(*vector));
  if (vector == NULL)
    return 0;
  vector->data = calloc(capacity, (size_t)elem_size);
  if (vector->data == NULL) {
    free(vector);
    return 0;
  }
  vector->elem_size = (unsigned)elem_size;
  vector->capacity = capacity;
  if (init_elem != NULL)
    for (unsigned i = 0; i < capacity; ++i)
      init_elem(vector->data + (size_t)i * vector->elem_size);
  *vector_out = vector;
  return 1;
}

void vector_borrow(struct Vector *vector, int index, void **val_out) {
  if (index < 0 || (unsigned)index >= vector->capacity)
    state_fail(__func__, "index %d outside 0..%u", index, vector->capacity - 1);
  *val_out = vector->data + (size_t)index * vector->elem_size;
}

void vector_return(struct Vector *vector, int index, void *value) {
  void *cell;
  vector_borrow(vector, index, &cell);
  if (value != cell)
    state_fail(__func__, "index %d returned a pointer it did not borrow", index);
}
