/*
 * loop_table -- test NF: a bounded loop over a small rule table.  Four
 * destination-port rules (filled in nf_init) say which ports pass; the
 * verdict is cached per ipv4.dst.
 *
 * State: rules (Vector of 4 uint16_t ports, read-only after init),
 * verdict_map (Map keyed by ipv4.dst), verdict_keys, verdict_chain.
 */
#include "nf.h"

#define RULES 4
#define CAPACITY 256

static struct Vector *rules;
static struct Map *verdict_map;
static struct Vector *verdict_keys;
static struct DoubleChain *verdict_chain;

static bool ip_eq(void *a, void *b) { return *(uint32_t *)a == *(uint32_t *)b; }
static unsigned ip_hash(void *k) { return *(uint32_t *)k * 2654435761u; }

bool nf_init(void) {
  if (!vector_allocate(sizeof(uint16_t), RULES, NULL, &rules) ||
      !map_allocate(ip_eq, ip_hash, CAPACITY, &verdict_map) ||
      !vector_allocate(sizeof(uint32_t), CAPACITY, NULL, &verdict_keys) ||
      !dchain_allocate(CAPACITY, &verdict_chain))
    return false;
  static const uint16_t ports[RULES] = {22, 53, 80, 443};
  for (int i = 0; i < RULES; ++i) {
    uint16_t *cell;
    vector_borrow(rules, i, (void **)&cell);
    *cell = nf_hton16(ports[i]);
    vector_return(rules, i, cell);
  }
  return true;
}

int nf_process(uint16_t device, uint8_t *packet, uint16_t length, vigor_time_t now) {
  struct nf_ipv4_hdr *ip = nf_ipv4_header(packet, length);
  if (ip == NULL)
    return NF_DROP;
  struct nf_l4_ports *l4 = nf_l4_header(packet, length, ip);
  if (l4 == NULL)
    return NF_DROP;
  int allowed = 0;
  for (int i = 0; i < RULES; ++i) { /* bounded: RULES iterations */
    uint16_t *port;
    vector_borrow(rules, i, (void **)&port);
    if (*port == l4->dport)
      allowed = 1;
    vector_return(rules, i, port);
  }
  if (!allowed)
    return NF_DROP;
  int index;
  uint32_t dst = ip->dst;
  if (!map_get(verdict_map, &dst, &index) &&
      dchain_allocate_new_index(verdict_chain, &index, now)) {
    uint32_t *key;
    vector_borrow(verdict_keys, index, (void **)&key);
    *key = dst;
    map_put(verdict_map, key, index);
    vector_return(verdict_keys, index, key);
  }
  return device == 0 ? 1 : 0;
}
