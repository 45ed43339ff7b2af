/*
 * cl -- connection limiter: caps how many new flows a (source, destination)
 * pair of IPv4 addresses may open from the LAN.
 *
 * Spec:
 *   1. Flows idle for more than CL_EXPIRATION_TIME ns are forgotten, and
 *      sketch buckets untouched for more than CL_EXPIRATION_TIME ns are
 *      reset (expiry runs first, on every packet).
 *   2. WAN (device 1): every frame is forwarded to the LAN (device 0),
 *      unparsed and unchecked (the limiter guards LAN clients opening flows).
 *   3. LAN (device 0): frames that are not well-formed IPv4 TCP/UDP (short,
 *      non-IPv4, bad IHL, other protocols, non-first fragments, truncated
 *      ports) are dropped.  Otherwise the flow is the 5-tuple (ipv4.src,
 *      ipv4.dst, l4.sport, l4.dport, ipv4.proto) and the pair is (ipv4.src,
 *      ipv4.dst):
 *        - a known flow is refreshed, its pair's sketch buckets are
 *          refreshed, and the packet goes to the WAN (device 1);
 *        - a new flow is refused (dropped) if the sketch estimates that its
 *          pair has already opened CL_MAX_FLOWS flows; otherwise it is
 *          recorded, its pair's count is incremented, and the packet goes to
 *          the WAN.  When the flow table is full a new flow is dropped.
 *   Limit semantics: the count-min sketch estimate of a pair is the number
 *   of new flows it opened since its buckets were last reset, i.e. since the
 *   pair was last silent (no new flow, no packet of a known flow) for more
 *   than CL_EXPIRATION_TIME.  It is not decremented when a single flow
 *   expires.  The sketch threshold is CL_MAX_FLOWS - 1 and sketch_fetch
 *   answers "estimate > threshold", so the first CL_MAX_FLOWS new flows of a
 *   pair are admitted and the (CL_MAX_FLOWS + 1)th is refused, as is every
 *   further new flow until the pair's buckets expire.  Collisions in the
 *   sketch can only overestimate, i.e. refuse earlier.  If the sketch has no
 *   room left for a new bucket, the admitted flow is not counted.
 *   Packets are never modified.
 *
 * State:
 *   flow_map    Map, capacity CL_CAPACITY; key: struct flow_key, the LAN
 *               5-tuple (network order, stored in flow_keys); value: index.
 *   flow_keys   Vector of CL_CAPACITY struct flow_key.
 *   flow_chain  DoubleChain of CL_CAPACITY indexes (flow ages).
 *   pair_sketch Sketch of SKETCH_DEPTH x CL_SKETCH_CAPACITY counters, keyed
 *               by struct pair_key (ipv4.src, ipv4.dst), threshold
 *               CL_MAX_FLOWS - 1.
 *
 * Config:
 *   CL_CAPACITY         number of flows (default 65536).
 *   CL_SKETCH_CAPACITY  counters per sketch row (default 65536).
 *   CL_MAX_FLOWS        new flows a pair may open (default 64, 1..65536).
 *   CL_EXPIRATION_TIME  idle ns before a flow or a sketch bucket is
 *                       forgotten (default 10 s).
 */
#include "nf.h"

#ifndef CL_CAPACITY
#define CL_CAPACITY 65536
#endif

#ifndef CL_SKETCH_CAPACITY
#define CL_SKETCH_CAPACITY 65536
#endif

#ifndef CL_MAX_FLOWS
#define CL_MAX_FLOWS 64
#endif

#ifndef CL_EXPIRATION_TIME
#define CL_EXPIRATION_TIME 10000000000LL /* 10 s */
#endif

_Static_assert((CL_MAX_FLOWS) >= 1 && (CL_MAX_FLOWS) <= 65536,
               "CL_MAX_FLOWS must be in 1..65536");

#define LAN_DEVICE 0
#define WAN_DEVICE 1

/* A flow as seen from the LAN; all fields in network order. */
struct flow_key {
  uint32_t src_ip;
  uint32_t dst_ip;
  uint16_t src_port;
  uint16_t dst_port;
  uint8_t proto;
} __attribute__((packed));

/* The pair whose new flows are limited; network order. */
struct pair_key {
  uint32_t src_ip;
  uint32_t dst_ip;
} __attribute__((packed));

static struct Map *flow_map;
static struct Vector *flow_keys;
static struct DoubleChain *flow_chain;
static struct Sketch *pair_sketch;

static bool flow_key_eq(void *a, void *b) {
  struct flow_key *x = a;
  struct flow_key *y = b;
  return x->src_ip == y->src_ip && x->dst_ip == y->dst_ip &&
         x->src_port == y->src_port && x->dst_port == y->dst_port &&
         x->proto == y->proto;
}

static unsigned flow_key_hash(void *key) {
  struct flow_key *k = key;
  unsigned hash = 17;
  hash = hash * 31u + k->src_ip;
  hash = hash * 31u + k->dst_ip;
  hash = hash * 31u + k->src_port;
  hash = hash * 31u + k->dst_port;
  hash = hash * 31u + k->proto;
  return hash ^ (hash >> 16);
}

static unsigned pair_key_hash(void *key) {
  struct pair_key *k = key;
  unsigned hash = k->src_ip * 0x9e3779b1u;
  hash ^= k->dst_ip + 0x7f4a7c15u + (hash << 6) + (hash >> 2);
  return hash ^ (hash >> 16);
}

bool nf_init(void) {
  if (!map_allocate(flow_key_eq, flow_key_hash, CL_CAPACITY, &flow_map))
    return false;
  if (!vector_allocate(sizeof(struct flow_key), CL_CAPACITY, NULL,
                       &flow_keys))
    return false;
  if (!dchain_allocate(CL_CAPACITY, &flow_chain))
    return false;
  if (!sketch_allocate(pair_key_hash, CL_SKETCH_CAPACITY,
                       (uint16_t)((CL_MAX_FLOWS) - 1), &pair_sketch))
    return false;
  return true;
}

int nf_process(uint16_t device, uint8_t *packet, uint16_t packet_length,
               vigor_time_t now) {
  expire_items_single_map(flow_chain, flow_keys, flow_map,
                          now - CL_EXPIRATION_TIME);
  sketch_expire(pair_sketch, now - CL_EXPIRATION_TIME);

  if (device != LAN_DEVICE)
    return LAN_DEVICE;

  struct nf_ipv4_hdr *ip = nf_ipv4_header(packet, packet_length);
  if (ip == NULL)
    return NF_DROP;
  struct nf_l4_ports *l4 = nf_l4_header(packet, packet_length, ip);
  if (l4 == NULL)
    return NF_DROP;

  struct flow_key flow;
  flow.src_ip = ip->src;
  flow.dst_ip = ip->dst;
  flow.src_port = l4->sport;
  flow.dst_port = l4->dport;
  flow.proto = ip->proto;

  struct pair_key pair;
  pair.src_ip = ip->src;
  pair.dst_ip = ip->dst;
  sketch_compute_hashes(pair_sketch, &pair);

  int index;
  if (map_get(flow_map, &flow, &index)) {
    dchain_rejuvenate_index(flow_chain, index, now);
    sketch_refresh(pair_sketch, now);
    return WAN_DEVICE;
  }

  if (sketch_fetch(pair_sketch))
    return NF_DROP; /* the pair already opened CL_MAX_FLOWS flows */

  if (!dchain_allocate_new_index(flow_chain, &index, now))
    return NF_DROP; /* flow table full */
  void *cell;
  vector_borrow(flow_keys, index, &cell);
  struct flow_key *key = cell;
  memcpy(key, &flow, sizeof(struct flow_key));
  map_put(flow_map, key, index);
  vector_return(flow_keys, index, cell);

  sketch_touch_buckets(pair_sketch, now);
  return WAN_DEVICE;
}
