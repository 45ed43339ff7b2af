/*
 * nf_state_api.h -- the state API's prototypes, included by nf.h.
 *
 * Deliberately without an include guard: the parallel runtime includes it a
 * second time under renaming macros (codegen/runtime/dpdk/par_rename.h) to
 * declare its wrappers with the same signatures as the library's.
 */

struct Map;
struct Vector;
struct DoubleChain;
struct Sketch;


/* Map: fixed-capacity hash map from a key (kept alive by the caller,
   usually in a vector cell) to an int.  map_put on a full map, or of a key
   already present, leaves the map unchanged. */
int map_allocate(map_keys_equality *keq, map_key_hash *khash,
                 unsigned capacity, struct Map **map_out);
int map_get(struct Map *map, void *key, int *value_out); /* 1 found, 0 not */
void map_put(struct Map *map, void *key, int value);
void map_erase(struct Map *map, void *key, void **trash);
unsigned map_size(struct Map *map);

/* Vector: fixed array of fixed-size cells, each initialised by init_elem
   (zero-filled when init_elem is NULL). */
int vector_allocate(int elem_size, unsigned capacity,
                    vector_init_elem *init_elem, struct Vector **vector_out);
void vector_borrow(struct Vector *vector, int index, void **val_out);
void vector_return(struct Vector *vector, int index, void *value);

/* DoubleChain: allocator of indexes 0..index_range-1 that remembers when
   each index was last touched; expiry frees the least recently touched. */
int dchain_allocate(int index_range, struct DoubleChain **chain_out);
int dchain_allocate_new_index(struct DoubleChain *chain, int *index_out,
                              vigor_time_t time); /* 0 when full */
int dchain_rejuvenate_index(struct DoubleChain *chain, int index,
                            vigor_time_t time);
int dchain_expire_one_index(struct DoubleChain *chain, int *index_out,
                            vigor_time_t time);
int dchain_is_index_allocated(struct DoubleChain *chain, int index);
int dchain_free_index(struct DoubleChain *chain, int index);

/* Expirator: frees every index last touched before `time`, erasing from
   `map` the key stored in `vector` at that index; returns how many. */
int expire_items_single_map(struct DoubleChain *chain, struct Vector *vector,
                            struct Map *map, vigor_time_t time);

/* Consistent-hash table (Maglev-style).  `cht` is a vector of
   cht_height * backend_capacity uint32_t cells: row r holds every backend
   in order of preference for hashes that fall in row r.  cht_height must be
   a prime larger than backend_capacity. */
int cht_fill_cht(struct Vector *cht, uint32_t cht_height,
                 uint32_t backend_capacity);
int cht_find_preferred_available_backend(uint64_t hash, struct Vector *cht,
                                         struct DoubleChain *active_backends,
                                         uint32_t cht_height,
                                         uint32_t backend_capacity,
                                         int *chosen_backend); /* 0 when none */

/* Count-min sketch: SKETCH_DEPTH rows of `capacity` counters each.  A
   caller computes the hashes of one key, then refreshes, fetches or touches
   that key's buckets.  Buckets not touched since `time` are reset by
   sketch_expire. */
int sketch_allocate(map_key_hash *kh, uint32_t capacity, uint16_t threshold,
                    struct Sketch **sketch_out);
void sketch_compute_hashes(struct Sketch *sketch, void *key);
void sketch_refresh(struct Sketch *sketch, vigor_time_t now);
int sketch_fetch(struct Sketch *sketch); /* 1 when the estimate > threshold */
int sketch_touch_buckets(struct Sketch *sketch, vigor_time_t now);
void sketch_expire(struct Sketch *sketch, vigor_time_t time);
