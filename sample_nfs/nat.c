/*
 * nat -- network address and port translator (NAPT), in the manner of
 * Vigor's vignat.
 *
 * Spec:
 *   1. Flows idle for more than NAT_EXPIRATION_TIME ns are forgotten (expiry
 *      runs first, on every packet); their external port becomes free.
 *   2. Only well-formed IPv4 TCP/UDP packets whose L4 checksum field lies
 *      inside the frame are handled; everything else (short frames,
 *      non-IPv4, bad IHL, ICMP and other protocols, non-first fragments,
 *      truncated L4 headers) is dropped, from either side.
 *   3. LAN (device 0): the flow is the packet's 5-tuple (ipv4.src, ipv4.dst,
 *      l4.sport, l4.dport, ipv4.proto).  A known flow is refreshed, a new one
 *      is given the next free index of flow_chain; when all NAT_CAPACITY
 *      indexes are in use the packet is dropped.  The flow's external port is
 *      NAT_START_PORT + index.  The packet's ipv4.src becomes
 *      NAT_EXTERNAL_IP and its l4.sport the external port; the IPv4 header
 *      checksum and the TCP/UDP checksum are updated incrementally (a UDP
 *      checksum of 0, meaning "none", stays 0).  It goes to the WAN
 *      (device 1).
 *   4. WAN (device 1): the packet must be addressed to NAT_EXTERNAL_IP, on a
 *      port l4.dport in [NAT_START_PORT, NAT_START_PORT + NAT_CAPACITY);
 *      index = l4.dport - NAT_START_PORT must be allocated in flow_chain,
 *      and the packet's ipv4.src, l4.sport and proto must be the flow's
 *      destination address, destination port and proto.  Then ipv4.dst and
 *      l4.dport are rewritten back to the flow's LAN source address and
 *      port, the checksums updated, the flow refreshed, and the packet goes
 *      to the LAN (device 0).  Any other WAN packet is dropped.
 *
 * State:
 *   flow_map    Map, capacity NAT_CAPACITY; key: struct flow_key, the LAN
 *               5-tuple (network order, stored in flow_keys); value: index.
 *   flow_keys   Vector of NAT_CAPACITY struct flow_key, indexed by the
 *               flow's index (= external port - NAT_START_PORT); WAN packets
 *               reach it through l4.dport.
 *   flow_chain  DoubleChain of NAT_CAPACITY indexes (flow ages).
 *
 * Config:
 *   NAT_CAPACITY         number of flows (default 32768).
 *   NAT_EXPIRATION_TIME  idle ns before a flow is forgotten (default 10 s).
 *   NAT_EXTERNAL_IP      external address, a host-order integer (default
 *                        0xCB007101 = 203.0.113.1).
 *   NAT_START_PORT       first external port (default 1024);
 *                        NAT_START_PORT + NAT_CAPACITY must be <= 65536.
 */
#include "nf.h"

#ifndef NAT_CAPACITY
#define NAT_CAPACITY 32768
#endif

#ifndef NAT_EXPIRATION_TIME
#define NAT_EXPIRATION_TIME 10000000000LL /* 10 s */
#endif

#ifndef NAT_EXTERNAL_IP
#define NAT_EXTERNAL_IP 0xCB007101u /* 203.0.113.1 */
#endif

#ifndef NAT_START_PORT
#define NAT_START_PORT 1024
#endif

_Static_assert((NAT_START_PORT) >= 0 &&
                   (NAT_START_PORT) + (NAT_CAPACITY) <= 65536,
               "external ports must fit in [0, 65535]");

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
  if (!map_allocate(flow_key_eq, flow_key_hash, NAT_CAPACITY, &flow_map))
    return false;
  if (!vector_allocate(sizeof(struct flow_key), NAT_CAPACITY, NULL,
                       &flow_keys))
    return false;
  if (!dchain_allocate(NAT_CAPACITY, &flow_chain))
    return false;
  return true;
}

/* Incremental update of the TCP/UDP checksum at `field` for an address
   change (pseudo-header) and a port change, all values in network order. */
static void update_l4_checksum(uint8_t *field, uint8_t proto, uint32_t old_ip,
                               uint32_t new_ip, uint16_t old_port,
                               uint16_t new_port) {
  uint16_t csum;
  memcpy(&csum, field, sizeof(csum));
  if (proto == NF_IPPROTO_UDP && csum == 0)
    return; /* UDP without checksum */
  csum = nf_csum_update32(csum, old_ip, new_ip);
  csum = nf_csum_update16(csum, old_port, new_port);
  if (proto == NF_IPPROTO_UDP && csum == 0)
    csum = 0xffff; /* a computed UDP checksum of 0 is sent as all ones */
  memcpy(field, &csum, sizeof(csum));
}

int nf_process(uint16_t device, uint8_t *packet, uint16_t packet_length,
               vigor_time_t now) {
  expire_items_single_map(flow_chain, flow_keys, flow_map,
                          now - NAT_EXPIRATION_TIME);

  struct nf_ipv4_hdr *ip = nf_ipv4_header(packet, packet_length);
  if (ip == NULL)
    return NF_DROP;
  struct nf_l4_ports *l4 = nf_l4_header(packet, packet_length, ip);
  if (l4 == NULL)
    return NF_DROP;
  uint8_t *l4_csum = (uint8_t *)l4 + nf_l4_csum_offset(ip->proto);
  if ((size_t)(l4_csum - packet) + sizeof(uint16_t) > packet_length)
    return NF_DROP; /* L4 header truncated before its checksum */

  int index;
  void *cell;
  if (device == LAN_DEVICE) {
    struct flow_key flow;
    flow.src_ip = ip->src;
    flow.dst_ip = ip->dst;
    flow.src_port = l4->sport;
    flow.dst_port = l4->dport;
    flow.proto = ip->proto;

    if (map_get(flow_map, &flow, &index)) {
      dchain_rejuvenate_index(flow_chain, index, now);
    } else {
      if (!dchain_allocate_new_index(flow_chain, &index, now))
        return NF_DROP; /* no free external port */
      vector_borrow(flow_keys, index, &cell);
      struct flow_key *key = cell;
      memcpy(key, &flow, sizeof(struct flow_key));
      map_put(flow_map, key, index);
      vector_return(flow_keys, index, cell);
    }

    uint32_t external_ip = nf_hton32(NAT_EXTERNAL_IP);
    uint16_t external_port = nf_hton16((uint16_t)(NAT_START_PORT + index));
    ip->src = external_ip;
    ip->csum = nf_csum_update32(ip->csum, flow.src_ip, external_ip);
    l4->sport = external_port;
    update_l4_checksum(l4_csum, flow.proto, flow.src_ip, external_ip,
                       flow.src_port, external_port);
    return WAN_DEVICE;
  }

  /* WAN: the destination port names the flow. */
  if (ip->dst != nf_hton32(NAT_EXTERNAL_IP))
    return NF_DROP;
  index = (int)nf_ntoh16(l4->dport) - (NAT_START_PORT);
  if (index < 0 || index >= (NAT_CAPACITY))
    return NF_DROP;
  if (!dchain_is_index_allocated(flow_chain, index))
    return NF_DROP;

  vector_borrow(flow_keys, index, &cell);
  struct flow_key *flow = cell;
  if (ip->src != flow->dst_ip || l4->sport != flow->dst_port ||
      ip->proto != flow->proto) {
    vector_return(flow_keys, index, cell);
    return NF_DROP; /* not the flow's remote end */
  }
  uint32_t internal_ip = flow->src_ip;
  uint16_t internal_port = flow->src_port;
  vector_return(flow_keys, index, cell);

  uint32_t old_ip = ip->dst;
  uint16_t old_port = l4->dport;
  ip->dst = internal_ip;
  ip->csum = nf_csum_update32(ip->csum, old_ip, internal_ip);
  l4->dport = internal_port;
  update_l4_checksum(l4_csum, ip->proto, old_ip, internal_ip, old_port,
                     internal_port);
  dchain_rejuvenate_index(flow_chain, index, now);
  return LAN_DEVICE;
}
