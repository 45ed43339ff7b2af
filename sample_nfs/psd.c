/*
 * psd -- port-scan detector: blocks WAN sources that touch too many
 * distinct destination ports.
 *
 * Spec:
 *   1. Source entries and (source, port) entries idle for more than
 *      PSD_EXPIRATION_TIME ns are forgotten (expiry runs first, on every
 *      packet).  A source's entry is refreshed by every one of its packets,
 *      so it never expires before the entries of its ports.
 *   2. LAN (device 0): every frame is forwarded to the WAN (device 1),
 *      unparsed.
 *   3. WAN (device 1): frames that are not well-formed IPv4 TCP/UDP (short,
 *      non-IPv4, bad IHL, other protocols, non-first fragments, truncated
 *      ports) are dropped.  Otherwise, with src = ipv4.src and
 *      port = l4.dport:
 *        - src gets an entry (count 0) if it has none, else its entry is
 *          refreshed;
 *        - if src's count already exceeds PSD_THRESHOLD the source is
 *          blocked: the packet is dropped (and nothing else is counted);
 *        - the (src, port) pair gets an entry if it has none, and then src's
 *          count is incremented (each distinct port counts once while its
 *          entry lives); a known pair is refreshed;
 *        - if src's count now exceeds PSD_THRESHOLD the packet is dropped,
 *          otherwise it goes to the LAN (device 0).
 *      So a source may use PSD_THRESHOLD distinct destination ports; the
 *      packet to its (PSD_THRESHOLD + 1)th distinct port and every packet
 *      after it (to any port) are dropped, until the source has been silent
 *      for more than PSD_EXPIRATION_TIME and its entry expires.  The count
 *      is of distinct ports seen since the source's entry was created; it
 *      is not decremented when a single port entry expires.
 *      When either table is full, a packet that needs a new entry is
 *      dropped (fail closed).
 *   Packets are never modified.
 *
 * State:
 *   src_map      Map, capacity PSD_CAPACITY; key: uint32_t ipv4.src (network
 *                order, stored in src_keys); value: index.
 *   src_keys     Vector of PSD_CAPACITY uint32_t.
 *   src_counts   Vector of PSD_CAPACITY uint32_t: distinct ports counted.
 *   src_chain    DoubleChain of PSD_CAPACITY indexes (source ages).
 *   port_map     Map, capacity PSD_PORT_CAPACITY; key: struct port_key
 *                (ipv4.src, l4.dport; network order, stored in port_keys);
 *                value: index.
 *   port_keys    Vector of PSD_PORT_CAPACITY struct port_key.
 *   port_chain   DoubleChain of PSD_PORT_CAPACITY indexes (pair ages).
 *
 * Config:
 *   PSD_CAPACITY         sources tracked (default 65536).
 *   PSD_PORT_CAPACITY    (source, port) pairs tracked (default 262144).
 *   PSD_THRESHOLD        distinct ports a source may use (default 16).
 *   PSD_EXPIRATION_TIME  idle ns before an entry is forgotten (default 10 s).
 */
#include "nf.h"

#ifndef PSD_CAPACITY
#define PSD_CAPACITY 65536
#endif

#ifndef PSD_PORT_CAPACITY
#define PSD_PORT_CAPACITY 262144
#endif

#ifndef PSD_THRESHOLD
#define PSD_THRESHOLD 16
#endif

#ifndef PSD_EXPIRATION_TIME
#define PSD_EXPIRATION_TIME 10000000000LL /* 10 s */
#endif

#define LAN_DEVICE 0
#define WAN_DEVICE 1

/* A source and one destination port it used; network order. */
struct port_key {
  uint32_t src_ip;
  uint16_t dst_port;
} __attribute__((packed));

static struct Map *src_map;
static struct Vector *src_keys;
static struct Vector *src_counts;
static struct DoubleChain *src_chain;
static struct Map *port_map;
static struct Vector *port_keys;
static struct DoubleChain *port_chain;

static bool src_key_eq(void *a, void *b) {
  return memcmp(a, b, sizeof(uint32_t)) == 0;
}

static unsigned src_key_hash(void *key) {
  uint32_t h;
  memcpy(&h, key, sizeof(h));
  h ^= h >> 16;
  h *= 0x85ebca6bu;
  h ^= h >> 13;
  return h;
}

static bool port_key_eq(void *a, void *b) {
  struct port_key *x = a;
  struct port_key *y = b;
  return x->src_ip == y->src_ip && x->dst_port == y->dst_port;
}

static unsigned port_key_hash(void *key) {
  struct port_key *k = key;
  unsigned hash = k->src_ip * 0x9e3779b1u;
  hash ^= (unsigned)k->dst_port * 0x85ebca6bu;
  return hash ^ (hash >> 15);
}

bool nf_init(void) {
  if (!map_allocate(src_key_eq, src_key_hash, PSD_CAPACITY, &src_map))
    return false;
  if (!vector_allocate(sizeof(uint32_t), PSD_CAPACITY, NULL, &src_keys))
    return false;
  if (!vector_allocate(sizeof(uint32_t), PSD_CAPACITY, NULL, &src_counts))
    return false;
  if (!dchain_allocate(PSD_CAPACITY, &src_chain))
    return false;
  if (!map_allocate(port_key_eq, port_key_hash, PSD_PORT_CAPACITY, &port_map))
    return false;
  if (!vector_allocate(sizeof(struct port_key), PSD_PORT_CAPACITY, NULL,
                       &port_keys))
    return false;
  if (!dchain_allocate(PSD_PORT_CAPACITY, &port_chain))
    return false;
  return true;
}

int nf_process(uint16_t device, uint8_t *packet, uint16_t packet_length,
               vigor_time_t now) {
  expire_items_single_map(src_chain, src_keys, src_map,
                          now - PSD_EXPIRATION_TIME);
  expire_items_single_map(port_chain, port_keys, port_map,
                          now - PSD_EXPIRATION_TIME);

  if (device == LAN_DEVICE)
    return WAN_DEVICE;

  struct nf_ipv4_hdr *ip = nf_ipv4_header(packet, packet_length);
  if (ip == NULL)
    return NF_DROP;
  struct nf_l4_ports *l4 = nf_l4_header(packet, packet_length, ip);
  if (l4 == NULL)
    return NF_DROP;

  /* The source's entry. */
  uint32_t src = ip->src;
  int src_index;
  void *cell;
  if (map_get(src_map, &src, &src_index)) {
    dchain_rejuvenate_index(src_chain, src_index, now);
  } else {
    if (!dchain_allocate_new_index(src_chain, &src_index, now))
      return NF_DROP; /* source table full */
    vector_borrow(src_keys, src_index, &cell);
    uint32_t *key = cell;
    *key = src;
    map_put(src_map, key, src_index);
    vector_return(src_keys, src_index, cell);

    vector_borrow(src_counts, src_index, &cell);
    uint32_t *fresh_count = cell;
    *fresh_count = 0;
    vector_return(src_counts, src_index, cell);
  }

  vector_borrow(src_counts, src_index, &cell);
  uint32_t *count = cell;
  if (*count > PSD_THRESHOLD) {
    vector_return(src_counts, src_index, cell);
    return NF_DROP; /* blocked scanner */
  }

  /* The (source, destination port) pair's entry. */
  struct port_key pair;
  pair.src_ip = src;
  pair.dst_port = l4->dport;
  int port_index;
  if (map_get(port_map, &pair, &port_index)) {
    dchain_rejuvenate_index(port_chain, port_index, now);
  } else {
    if (!dchain_allocate_new_index(port_chain, &port_index, now)) {
      vector_return(src_counts, src_index, cell);
      return NF_DROP; /* pair table full */
    }
    void *pair_cell;
    vector_borrow(port_keys, port_index, &pair_cell);
    struct port_key *key = pair_cell;
    memcpy(key, &pair, sizeof(struct port_key));
    map_put(port_map, key, port_index);
    vector_return(port_keys, port_index, pair_cell);
    *count += 1; /* a new distinct port */
  }

  int out = *count > PSD_THRESHOLD ? NF_DROP : LAN_DEVICE;
  vector_return(src_counts, src_index, cell);
  return out;
}
