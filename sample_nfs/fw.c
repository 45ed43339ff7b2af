/*
 * fw -- stateful firewall: the LAN opens flows, the WAN may only answer.
 *
 * Spec:
 *   1. Flows idle for more than FW_EXPIRATION_TIME ns are forgotten (expiry
 *      runs first, on every packet).
 *   2. Only well-formed IPv4 TCP/UDP packets are handled; everything else
 *      (short frames, non-IPv4, bad IHL, other protocols such as ICMP,
 *      non-first fragments, truncated L4 ports) is dropped, from either side.
 *   3. LAN (device 0): the packet's 5-tuple (ipv4.src, ipv4.dst, l4.sport,
 *      l4.dport, ipv4.proto) is a flow.  A known flow is refreshed; a new
 *      flow is recorded.  The packet goes to the WAN (device 1).  When the
 *      table is full a new flow cannot be recorded and its packet is
 *      dropped (its replies could not come back anyway).
 *   4. WAN (device 1): the packet passes to the LAN (device 0) only if its
 *      reversed 5-tuple (ipv4.dst, ipv4.src, l4.dport, l4.sport, proto) is a
 *      known flow, which it refreshes; otherwise it is dropped.
 *   Packets are never modified.
 *
 * State:
 *   flow_map    Map, capacity FW_CAPACITY; key: struct flow_key, the LAN-side
 *               5-tuple (network order, stored in flow_keys); value: index.
 *   flow_keys   Vector of FW_CAPACITY struct flow_key.
 *   flow_chain  DoubleChain of FW_CAPACITY indexes (flow ages).
 *
 * Config:
 *   FW_CAPACITY         number of flows (default 65536).
 *   FW_EXPIRATION_TIME  idle ns before a flow is forgotten (default 10 s).
 */
#include "nf.h"

#ifndef FW_CAPACITY
#define FW_CAPACITY 65536
#endif

#ifndef FW_EXPIRATION_TIME
#define FW_EXPIRATION_TIME 10000000000LL /* 10 s */
#endif

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

static struct Map *flow_map;
static struct Vector *flow_keys;
static struct DoubleChain *flow_chain;

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

bool nf_init(void) {
  if (!map_allocate(flow_key_eq, flow_key_hash, FW_CAPACITY, &flow_map))
    return false;
  if (!vector_allocate(sizeof(struct flow_key), FW_CAPACITY, NULL,
                       &flow_keys))
    return false;
  if (!dchain_allocate(FW_CAPACITY, &flow_chain))
    return false;
  return true;
}

int nf_process(uint16_t device, uint8_t *packet, uint16_t packet_length,
               vigor_time_t now) {
  expire_items_single_map(flow_chain, flow_keys, flow_map,
                          now - FW_EXPIRATION_TIME);

  struct nf_ipv4_hdr *ip = nf_ipv4_header(packet, packet_length);
  if (ip == NULL)
    return NF_DROP;
  struct nf_l4_ports *l4 = nf_l4_header(packet, packet_length, ip);
  if (l4 == NULL)
    return NF_DROP;

  int index;
  if (device == LAN_DEVICE) {
    struct flow_key flow;
    flow.src_ip = ip->src;
    flow.dst_ip = ip->dst;
    flow.src_port = l4->sport;
    flow.dst_port = l4->dport;
    flow.proto = ip->proto;

    if (map_get(flow_map, &flow, &index)) {
      dchain_rejuvenate_index(flow_chain, index, now);
      return WAN_DEVICE;
    }
    if (!dchain_allocate_new_index(flow_chain, &index, now))
      return NF_DROP; /* table full */
    void *cell;
    vector_borrow(flow_keys, index, &cell);
    struct flow_key *key = cell;
    memcpy(key, &flow, sizeof(struct flow_key));
    map_put(flow_map, key, index);
    vector_return(flow_keys, index, cell);
    return WAN_DEVICE;
  }

  /* WAN: a reply to a LAN flow, seen from the LAN side. */
  struct flow_key reply;
  reply.src_ip = ip->dst;
  reply.dst_ip = ip->src;
  reply.src_port = l4->dport;
  reply.dst_port = l4->sport;
  reply.proto = ip->proto;

  if (!map_get(flow_map, &reply, &index))
    return NF_DROP;
  dchain_rejuvenate_index(flow_chain, index, now);
  return LAN_DEVICE;
}
