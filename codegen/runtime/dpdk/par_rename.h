/*
 * par_rename.h -- compile an NF copy (and the declarations of the wrappers)
 * against the parallel runtime's state API: every state call and type of
 * nf_state_api.h gets the par_ prefix.  The NF source stays unchanged;
 * the build passes this file with -include.
 */
#define Map ParMap
#define Vector ParVector
#define DoubleChain ParDoubleChain
#define Sketch ParSketch
#define cht_fill_cht par_cht_fill_cht
#define cht_find_preferred_available_backend par_cht_find_preferred_available_backend
#define dchain_allocate par_dchain_allocate
#define dchain_allocate_new_index par_dchain_allocate_new_index
#define dchain_expire_one_index par_dchain_expire_one_index
#define dchain_free_index par_dchain_free_index
#define dchain_is_index_allocated par_dchain_is_index_allocated
#define dchain_rejuvenate_index par_dchain_rejuvenate_index
#define expire_items_single_map par_expire_items_single_map
#define map_allocate par_map_allocate
#define nf_checksum par_nf_checksum
#define map_erase par_map_erase
#define map_get par_map_get
#define map_put par_map_put
#define map_size par_map_size
#define sketch_allocate par_sketch_allocate
#define sketch_compute_hashes par_sketch_compute_hashes
#define sketch_expire par_sketch_expire
#define sketch_fetch par_sketch_fetch
#define sketch_refresh par_sketch_refresh
#define sketch_touch_buckets par_sketch_touch_buckets
#define vector_allocate par_vector_allocate
#define vector_borrow par_vector_borrow
#define vector_return par_vector_return
