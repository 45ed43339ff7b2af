/*
 * hhh -- hierarchical heavy hitters: limits the bytes per time window sent
 * from the WAN by each /16, /24 and /32 source prefix.
 *
 * Spec:
 *   1. Prefix entries idle for more than HHH_EXPIRATION_TIME ns are
 *      forgotten, at every level (expiry runs first, on every packet).
 *   2. LAN (device 0): every frame is forwarded to the WAN (device 1),
 *      unparsed.
 *   3. WAN (device 1): a frame that is not well-formed IPv4 (short,
 *      non-IPv4, bad IHL) is dropped.  Any IPv4 packet (any protocol,
 *      fragments included) is otherwise counted, at each of the three
 *      levels L = 16, 24, 32, against the prefix ipv4.src/L:
 *        - the prefix gets an entry if it has none (a new window starting
 *          now, 0 bytes), else its entry is refreshed;
 *        - if its window started HHH_WINDOW ns or more ago, a new window
 *          starts now, at 0 bytes;
 *        - the packet's frame length (packet_length) is added to the
 *          window's bytes.
 *      All three levels are counted for every packet, so the counters hold
 *      the bytes offered, dropped packets included.  The packet is dropped
 *      if, after adding it, any level's bytes exceed that level's limit
 *      (HHH_LIMIT_16, HHH_LIMIT_24, HHH_LIMIT_32), or if a level's table is
 *      full and the prefix has no entry (fail closed); otherwise it goes to
 *      the LAN (device 0).
 *   Windows are tumbling windows anchored at the first packet after the
 *   previous window ended.  Packets are never modified.
 *
 * State (one set per level L in 16, 24, 32):
 *   prefixL_map       Map, capacity HHH_CAPACITY_L; key: uint32_t
 *                     ipv4.src/L (network order, host bits zero, stored in
 *                     prefixL_keys); value: index.
 *   prefixL_keys      Vector of HHH_CAPACITY_L uint32_t.
 *   prefixL_counters  Vector of HHH_CAPACITY_L struct hhh_counter {bytes
 *                     in the current window, window start}.
 *   prefixL_chain     DoubleChain of HHH_CAPACITY_L indexes (prefix ages).
 *
 * Config:
 *   HHH_CAPACITY         prefixes tracked per level (default 65536).
 *   HHH_CAPACITY_16, HHH_CAPACITY_24, HHH_CAPACITY_32
 *                        prefixes tracked at one level (default
 *                        HHH_CAPACITY): a network sees fewer /16s than
 *                        hosts.
 *   HHH_WINDOW           window length, ns (default 1 s).
 *   HHH_LIMIT_16         bytes per window of a /16 (default 64 000 000).
 *   HHH_LIMIT_24         bytes per window of a /24 (default 16 000 000).
 *   HHH_LIMIT_32         bytes per window of a /32 (default 4 000 000).
 *   HHH_EXPIRATION_TIME  idle ns before a prefix is forgotten (default
 *                        10 s); should be at least HHH_WINDOW.
 */
#include "nf.h"

#ifndef HHH_CAPACITY
#define HHH_CAPACITY 65536
#endif
#ifndef HHH_CAPACITY_16
#define HHH_CAPACITY_16 HHH_CAPACITY
#endif
#ifndef HHH_CAPACITY_24
#define HHH_CAPACITY_24 HHH_CAPACITY
#endif
#ifndef HHH_CAPACITY_32
#define HHH_CAPACITY_32 HHH_CAPACITY
#endif

#ifndef HHH_WINDOW
#define HHH_WINDOW 1000000000LL /* 1 s */
#endif

#ifndef HHH_LIMIT_16
#define HHH_LIMIT_16 64000000ULL
#endif

#ifndef HHH_LIMIT_24
#define HHH_LIMIT_24 16000000ULL
#endif

#ifndef HHH_LIMIT_32
#define HHH_LIMIT_32 4000000ULL
#endif

#ifndef HHH_EXPIRATION_TIME
#define HHH_EXPIRATION_TIME 10000000000LL /* 10 s */
#endif

#define LAN_DEVICE 0
#define WAN_DEVICE 1

struct hhh_counter {
  uint64_t bytes;           /* bytes in the current window */
  vigor_time_t window_start;
};

static struct Map *prefix16_map;
static struct Vector *prefix16_keys;
static struct Vector *prefix16_counters;
static struct DoubleChain *prefix16_chain;

static struct Map *prefix24_map;
static struct Vector *prefix24_keys;
static struct Vector *prefix24_counters;
static struct DoubleChain *prefix24_chain;

static struct Map *prefix32_map;
static struct Vector *prefix32_keys;
static struct Vector *prefix32_counters;
static struct DoubleChain *prefix32_chain;

static bool prefix_eq(void *a, void *b) {
  return memcmp(a, b, sizeof(uint32_t)) == 0;
}

static unsigned prefix_hash(void *key, unsigned salt) {
  uint32_t h;
  memcpy(&h, key, sizeof(h));
  h ^= salt;
  h ^= h >> 16;
  h *= 0x85ebca6bu;
  h ^= h >> 13;
  return h;
}

static bool prefix16_eq(void *a, void *b) { return prefix_eq(a, b); }
static unsigned prefix16_hash(void *key) { return prefix_hash(key, 16); }
static bool prefix24_eq(void *a, void *b) { return prefix_eq(a, b); }
static unsigned prefix24_hash(void *key) { return prefix_hash(key, 24); }
static bool prefix32_eq(void *a, void *b) { return prefix_eq(a, b); }
static unsigned prefix32_hash(void *key) { return prefix_hash(key, 32); }

static bool allocate_level(map_keys_equality *eq, map_key_hash *hash,
                           unsigned capacity, struct Map **map,
                           struct Vector **keys, struct Vector **counters,
                           struct DoubleChain **chain) {
  return map_allocate(eq, hash, capacity, map) &&
         vector_allocate(sizeof(uint32_t), capacity, NULL, keys) &&
         vector_allocate(sizeof(struct hhh_counter), capacity, NULL,
                         counters) &&
         dchain_allocate(capacity, chain);
}

bool nf_init(void) {
  return allocate_level(prefix16_eq, prefix16_hash, HHH_CAPACITY_16,
                        &prefix16_map, &prefix16_keys, &prefix16_counters,
                        &prefix16_chain) &&
         allocate_level(prefix24_eq, prefix24_hash, HHH_CAPACITY_24,
                        &prefix24_map, &prefix24_keys, &prefix24_counters,
                        &prefix24_chain) &&
         allocate_level(prefix32_eq, prefix32_hash, HHH_CAPACITY_32,
                        &prefix32_map, &prefix32_keys, &prefix32_counters,
                        &prefix32_chain);
}

/* Count `length` bytes against `prefix` at one level; true when the prefix
   is over `limit` in its current window, or cannot be tracked. */
static bool count_prefix(struct Map *map, struct Vector *keys,
                         struct Vector *counters, struct DoubleChain *chain,
                         uint32_t prefix, uint16_t length, uint64_t limit,
                         vigor_time_t now) {
  int index;
  void *cell;
  if (map_get(map, &prefix, &index)) {
    dchain_rejuvenate_index(chain, index, now);
  } else {
    if (!dchain_allocate_new_index(chain, &index, now))
      return true; /* table full: fail closed */
    vector_borrow(keys, index, &cell);
    uint32_t *key = cell;
    *key = prefix;
    map_put(map, key, index);
    vector_return(keys, index, cell);

    vector_borrow(counters, index, &cell);
    struct hhh_counter *fresh = cell;
    fresh->bytes = 0;
    fresh->window_start = now;
    vector_return(counters, index, cell);
  }

  vector_borrow(counters, index, &cell);
  struct hhh_counter *counter = cell;
  if (now - counter->window_start >= HHH_WINDOW) {
    counter->bytes = 0;
    counter->window_start = now;
  }
  counter->bytes += length;
  bool over = counter->bytes > limit;
  vector_return(counters, index, cell);
  return over;
}

int nf_process(uint16_t device, uint8_t *packet, uint16_t packet_length,
               vigor_time_t now) {
  expire_items_single_map(prefix16_chain, prefix16_keys, prefix16_map,
                          now - HHH_EXPIRATION_TIME);
  expire_items_single_map(prefix24_chain, prefix24_keys, prefix24_map,
                          now - HHH_EXPIRATION_TIME);
  expire_items_single_map(prefix32_chain, prefix32_keys, prefix32_map,
                          now - HHH_EXPIRATION_TIME);

  if (device == LAN_DEVICE)
    return WAN_DEVICE;

  struct nf_ipv4_hdr *ip = nf_ipv4_header(packet, packet_length);
  if (ip == NULL)
    return NF_DROP;

  uint32_t src = ip->src;
  bool over16 = count_prefix(prefix16_map, prefix16_keys, prefix16_counters,
                             prefix16_chain, src & nf_hton32(0xffff0000u),
                             packet_length, HHH_LIMIT_16, now);
  bool over24 = count_prefix(prefix24_map, prefix24_keys, prefix24_counters,
                             prefix24_chain, src & nf_hton32(0xffffff00u),
                             packet_length, HHH_LIMIT_24, now);
  bool over32 = count_prefix(prefix32_map, prefix32_keys, prefix32_counters,
                             prefix32_chain, src, packet_length, HHH_LIMIT_32,
                             now);

  if (over16 || over24 || over32)
    return NF_DROP;
  return LAN_DEVICE;
}
