/*
 * net_host -- test NF: a network table and a host table, each filled on
 * its own, as hierarchical counters do.  Every IPv4 packet looks up its
 * source /24 in net_map, then its source address in host_map; a key not
 * found is added when its table has room.  The output says what happened:
 * device 1 when the /24 was known, device 0 otherwise; dropped when the
 * host was unknown and its table full.
 *
 * A packet whose host is known and whose /24 is not (net_map not found,
 * host_map found) follows a host added while the network table was full,
 * whose /24 did not get an entry then (and, for a /24 added now, the
 * networks that filled the table expired since): path traffic must make
 * that host's entry with a packet that finds net_map full, not with the
 * simplest packet that adds a host.
 *
 * State: net_map, net_keys, net_chain (capacity 2); host_map, host_keys,
 * host_chain (capacity 8).  Entries idle for EXPIRATION ns are forgotten
 * (both tables, before anything else).
 */
#include "nf.h"

#define NET_CAPACITY 2
#define HOST_CAPACITY 8
#define EXPIRATION 10000000000LL /* 10 s */

static struct Map *net_map;
static struct Vector *net_keys;
static struct DoubleChain *net_chain;
static struct Map *host_map;
static struct Vector *host_keys;
static struct DoubleChain *host_chain;

static bool key_eq(void *a, void *b) { return memcmp(a, b, sizeof(uint32_t)) == 0; }
static unsigned key_hash(void *k) {
  uint32_t h;
  memcpy(&h, k, sizeof(h));
  return h * 0x9e3779b1u;
}

bool nf_init(void) {
  return map_allocate(key_eq, key_hash, NET_CAPACITY, &net_map) &&
         vector_allocate(sizeof(uint32_t), NET_CAPACITY, NULL, &net_keys) &&
         dchain_allocate(NET_CAPACITY, &net_chain) &&
         map_allocate(key_eq, key_hash, HOST_CAPACITY, &host_map) &&
         vector_allocate(sizeof(uint32_t), HOST_CAPACITY, NULL, &host_keys) &&
         dchain_allocate(HOST_CAPACITY, &host_chain);
}

/* Whether `key` was in `map`; adds it when there is room. */
static bool known(struct Map *map, struct Vector *keys, struct DoubleChain *chain,
                  uint32_t key, vigor_time_t now, bool *added) {
  int index;
  *added = false;
  if (map_get(map, &key, &index))
    return true;
  if (dchain_allocate_new_index(chain, &index, now)) {
    uint32_t *cell;
    vector_borrow(keys, index, (void **)&cell);
    *cell = key;
    map_put(map, cell, index);
    vector_return(keys, index, cell);
    *added = true;
  }
  return false;
}

int nf_process(uint16_t device, uint8_t *packet, uint16_t length, vigor_time_t now) {
  (void)device;
  expire_items_single_map(net_chain, net_keys, net_map, now - EXPIRATION);
  expire_items_single_map(host_chain, host_keys, host_map, now - EXPIRATION);
  struct nf_ipv4_hdr *ip = nf_ipv4_header(packet, length);
  if (ip == NULL)
    return NF_DROP;
  bool net_added, host_added;
  bool net = known(net_map, net_keys, net_chain, ip->src & nf_hton32(0xffffff00u), now, &net_added);
  bool host = known(host_map, host_keys, host_chain, ip->src, now, &host_added);
  if (!host && !host_added)
    return NF_DROP;
  return net ? 1 : 0;
}
