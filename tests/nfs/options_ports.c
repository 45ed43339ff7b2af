/*
 * options_ports -- test NF: counts packets per (l4.sport, l4.dport), finding
 * the L4 header itself through IHL, so frames with IPv4 options are handled.
 *
 * State: port_map (Map, key {sport, dport}), port_keys (Vector of keys),
 * port_counts (Vector of uint32_t), port_chain (DoubleChain).
 */
#include "nf.h"

#define CAPACITY 1024

struct port_key {
  uint16_t sport;
  uint16_t dport;
} __attribute__((packed));

static struct Map *port_map;
static struct Vector *port_keys;
static struct Vector *port_counts;
static struct DoubleChain *port_chain;

static bool key_eq(void *a, void *b) { return memcmp(a, b, sizeof(struct port_key)) == 0; }
static unsigned key_hash(void *k) {
  struct port_key *key = k;
  return (unsigned)key->sport * 31u + key->dport;
}

bool nf_init(void) {
  return map_allocate(key_eq, key_hash, CAPACITY, &port_map) &&
         vector_allocate(sizeof(struct port_key), CAPACITY, NULL, &port_keys) &&
         vector_allocate(sizeof(uint32_t), CAPACITY, NULL, &port_counts) &&
         dchain_allocate(CAPACITY, &port_chain);
}

int nf_process(uint16_t device, uint8_t *packet, uint16_t length, vigor_time_t now) {
  if (length < 34 || packet[12] != 0x08 || packet[13] != 0x00)
    return NF_DROP;
  unsigned ihl = packet[14] & 0x0f;
  if (ihl < 5)
    return NF_DROP;
  unsigned l4 = 14 + ihl * 4; /* skips the options */
  if (l4 + 4 > length || (packet[23] != 6 && packet[23] != 17))
    return NF_DROP;
  struct port_key key;
  memcpy(&key.sport, packet + l4, 2);
  memcpy(&key.dport, packet + l4 + 2, 2);
  int index;
  if (!map_get(port_map, &key, &index)) {
    if (!dchain_allocate_new_index(port_chain, &index, now))
      return NF_DROP;
    void *cell;
    vector_borrow(port_keys, index, &cell);
    memcpy(cell, &key, sizeof(key));
    map_put(port_map, cell, index);
    vector_return(port_keys, index, cell);
  }
  uint32_t *count;
  vector_borrow(port_counts, index, (void **)&count);
  *count += 1;
  vector_return(port_counts, index, count);
  return device == 0 ? 1 : 0;
}
