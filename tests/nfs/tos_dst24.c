/*
 * tos_dst24 -- test NF: per-class counters keyed by a field combination no
 * sample uses: (ipv4.tos, the /24 of ipv4.dst, l4.sport), in that order.
 *
 * State: class_map (Map), class_keys (Vector of keys), class_chain.
 */
#include "nf.h"

#define CAPACITY 512

struct class_key {
  uint8_t tos;
  uint8_t dst24[3];
  uint16_t sport;
} __attribute__((packed));

static struct Map *class_map;
static struct Vector *class_keys;
static struct DoubleChain *class_chain;

static bool key_eq(void *a, void *b) { return memcmp(a, b, sizeof(struct class_key)) == 0; }
static unsigned key_hash(void *k) {
  const uint8_t *bytes = k;
  unsigned hash = 0;
  for (unsigned i = 0; i < sizeof(struct class_key); ++i)
    hash = hash * 33u + bytes[i];
  return hash;
}

bool nf_init(void) {
  return map_allocate(key_eq, key_hash, CAPACITY, &class_map) &&
         vector_allocate(sizeof(struct class_key), CAPACITY, NULL, &class_keys) &&
         dchain_allocate(CAPACITY, &class_chain);
}

int nf_process(uint16_t device, uint8_t *packet, uint16_t length, vigor_time_t now) {
  struct nf_ipv4_hdr *ip = nf_ipv4_header(packet, length);
  if (ip == NULL)
    return NF_DROP;
  struct nf_l4_ports *l4 = nf_l4_header(packet, length, ip);
  if (l4 == NULL)
    return NF_DROP;
  struct class_key key;
  key.tos = ip->tos;
  memcpy(key.dst24, &ip->dst, 3);
  key.sport = l4->sport;
  int index;
  if (map_get(class_map, &key, &index)) {
    dchain_rejuvenate_index(class_chain, index, now);
  } else if (dchain_allocate_new_index(class_chain, &index, now)) {
    struct class_key *cell;
    vector_borrow(class_keys, index, (void **)&cell);
    *cell = key;
    map_put(class_map, cell, index);
    vector_return(class_keys, index, cell);
  }
  return device == 0 ? 1 : 0;
}
