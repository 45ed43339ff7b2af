/*
 * bridge -- MAC-learning Ethernet bridge.
 *
 * Spec:
 *   1. Entries not refreshed for more than BRIDGE_EXPIRATION_TIME ns are
 *      forgotten (expiry runs first, on every packet).
 *   2. A frame shorter than an Ethernet header (14 bytes) is dropped.
 *   3. Learning: the source MAC is recorded as living on the input device.
 *      A known source is refreshed, and its device is updated when the host
 *      has moved.  When the table is full a new source is not learned (the
 *      frame is still bridged).
 *   4. Forwarding by destination MAC:
 *        unknown destination (including broadcast/multicast) -> NF_FLOOD;
 *        destination learned on the input device            -> NF_DROP;
 *        otherwise                                          -> its device.
 *   The frame is never modified.  Learning happens before forwarding, so a
 *   frame whose destination equals its own source is dropped.
 *
 * State:
 *   mac_map     Map, capacity BRIDGE_CAPACITY; key: struct mac_key (6-byte
 *               MAC, stored in mac_keys); value: the entry index.
 *   mac_keys    Vector of BRIDGE_CAPACITY struct mac_key: the learned MACs.
 *   mac_devices Vector of BRIDGE_CAPACITY uint16_t: device of each MAC.
 *   mac_chain   DoubleChain of BRIDGE_CAPACITY indexes: allocation and
 *               last-seen time of each entry.
 *
 * Config:
 *   BRIDGE_CAPACITY         table size (default 65536).
 *   BRIDGE_EXPIRATION_TIME  idle time in ns before a MAC is forgotten
 *                           (default 10 s).
 */
#include "nf.h"

#ifndef BRIDGE_CAPACITY
#define BRIDGE_CAPACITY 65536
#endif

#ifndef BRIDGE_EXPIRATION_TIME
#define BRIDGE_EXPIRATION_TIME 10000000000LL /* 10 s */
#endif

struct mac_key {
  uint8_t addr[6];
} __attribute__((packed));

static struct Map *mac_map;
static struct Vector *mac_keys;
static struct Vector *mac_devices;
static struct DoubleChain *mac_chain;

static bool mac_key_eq(void *a, void *b) {
  return memcmp(a, b, sizeof(struct mac_key)) == 0;
}

static unsigned mac_key_hash(void *key) {
  struct mac_key *k = key;
  unsigned hash = 0;
  hash = (hash * 31u) ^ k->addr[0];
  hash = (hash * 31u) ^ k->addr[1];
  hash = (hash * 31u) ^ k->addr[2];
  hash = (hash * 31u) ^ k->addr[3];
  hash = (hash * 31u) ^ k->addr[4];
  hash = (hash * 31u) ^ k->addr[5];
  return hash ^ (hash >> 15);
}

bool nf_init(void) {
  if (!map_allocate(mac_key_eq, mac_key_hash, BRIDGE_CAPACITY, &mac_map))
    return false;
  if (!vector_allocate(sizeof(struct mac_key), BRIDGE_CAPACITY, NULL,
                       &mac_keys))
    return false;
  if (!vector_allocate(sizeof(uint16_t), BRIDGE_CAPACITY, NULL, &mac_devices))
    return false;
  if (!dchain_allocate(BRIDGE_CAPACITY, &mac_chain))
    return false;
  return true;
}

/* Record that `src` lives on `device`. */
static void learn(struct mac_key *src, uint16_t device, vigor_time_t now) {
  int index;
  void *cell;
  if (map_get(mac_map, src, &index)) {
    dchain_rejuvenate_index(mac_chain, index, now);
    vector_borrow(mac_devices, index, &cell);
    uint16_t *stored_device = cell;
    if (*stored_device != device)
      *stored_device = device; /* the host moved */
    vector_return(mac_devices, index, cell);
    return;
  }

  if (!dchain_allocate_new_index(mac_chain, &index, now))
    return; /* table full: do not learn */

  vector_borrow(mac_keys, index, &cell);
  struct mac_key *key = cell;
  memcpy(key, src, sizeof(struct mac_key));
  map_put(mac_map, key, index);
  vector_return(mac_keys, index, cell);

  vector_borrow(mac_devices, index, &cell);
  uint16_t *new_device = cell;
  *new_device = device;
  vector_return(mac_devices, index, cell);
}

int nf_process(uint16_t device, uint8_t *packet, uint16_t packet_length,
               vigor_time_t now) {
  expire_items_single_map(mac_chain, mac_keys, mac_map,
                          now - BRIDGE_EXPIRATION_TIME);

  struct nf_ether_hdr *eth = nf_ether_header(packet, packet_length);
  if (eth == NULL)
    return NF_DROP;

  struct mac_key src;
  memcpy(src.addr, eth->src, sizeof(src.addr));
  learn(&src, device, now);

  struct mac_key dst;
  memcpy(dst.addr, eth->dst, sizeof(dst.addr));
  int index;
  if (!map_get(mac_map, &dst, &index))
    return NF_FLOOD;

  void *cell;
  vector_borrow(mac_devices, index, &cell);
  uint16_t *dst_device = cell;
  uint16_t out = *dst_device;
  vector_return(mac_devices, index, cell);

  if (out == device)
    return NF_DROP;
  return out;
}
