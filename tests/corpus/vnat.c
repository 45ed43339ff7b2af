/*
 * vnat -- NAPT written the DPDK way: the flow table sits behind a pointer to
 * a state struct and the external port is the flow's dchain index.
 *
 * Spec:
 *   1. Flows idle for more than NAT_EXPIRATION_TIME ns are forgotten (expiry
 *      runs first, on every packet); their external port becomes free.
 *   2. Only well-formed IPv4 TCP/UDP packets whose L4 checksum field lies
 *      inside the frame are handled; everything else (short frames,
 *      non-IPv4, bad IHL, ICMP and other protocols, non-first fragments,
 *      L4 headers cut before the checksum) is dropped, from either side.
 *   3. LAN (device 0): the flow is the 5-tuple (ipv4.src, ipv4.dst,
 *      l4.sport, l4.dport, ipv4.proto).  A known flow is refreshed; a new
 *      one takes the next free index of the port chain, and is dropped when
 *      all NAT_CAPACITY indexes are in use.  The external port is
 *      NAT_START_PORT + index.  ipv4.src becomes NAT_EXTERNAL_IP and
 *      l4.sport the external port; the IPv4 and TCP/UDP checksums are
 *      updated incrementally (a UDP checksum of 0 stays 0, a computed 0
 *      becomes 0xffff).  The packet goes to the WAN (device 1).
 *   4. WAN (device 1): the packet must be addressed to NAT_EXTERNAL_IP on a
 *      port l4.dport in [NAT_START_PORT, NAT_START_PORT + NAT_CAPACITY)
 *      whose index is allocated, and its ipv4.src, l4.sport and ipv4.proto
 *      must equal the flow's destination address, destination port and
 *      protocol.  Then ipv4.dst and l4.dport are rewritten to the flow's LAN
 *      address and port, checksums updated, the flow refreshed, and the
 *      packet goes to the LAN (device 0).  Any other WAN packet is dropped.
 *
 * State (all reached through the pointer `nat`, set by nf_init to the
 * static nat_storage):
 *   nat->flows  Map, capacity NAT_CAPACITY; key: struct flow_key, the LAN
 *               5-tuple (network order, in nat->keys); value: index.
 *               CRC32-hashed (_mm_crc32_u64/_u32/_u8).
 *   nat->keys   Vector of NAT_CAPACITY struct flow_key, indexed by the
 *               flow's index, which WAN packets reach through l4.dport.
 *   nat->ports  DoubleChain of NAT_CAPACITY indexes (flow ages).
 *
 * Config:
 *   NAT_CAPACITY         number of flows (default 32768).
 *   NAT_EXPIRATION_TIME  idle ns before a flow is forgotten (default 10 s).
 *   NAT_EXTERNAL_IP      external address, host-order integer (default
 *                        0xCB007101 = 203.0.113.1).
 *   NAT_START_PORT       first external port (default 1024).
 *
 * Expected plan: as the sample nat -- shard the flow group by the LAN
 * 5-tuple; WAN packets reach a flow only through l4.dport (an index) and
 * proceed only when the cell's (dst_ip, dst_port, proto) equal their
 * (ipv4.src, l4.sport, ipv4.proto), a cell relation that the analysis must
 * find through the non-short-circuit `|` check; per-core external port
 * ranges.  The state pointer must be resolved to the same objects.
 */
#include <nmmintrin.h>

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

_Static_assert((NAT_START_PORT) + (NAT_CAPACITY) <= 65536,
               "external ports must fit in 16 bits");

#define LAN_PORT 0
#define WAN_PORT 1

struct flow_key {
  uint32_t src_ip;
  uint32_t dst_ip;
  uint16_t src_port;
  uint16_t dst_port;
  uint8_t proto;
} __attribute__((packed));

struct nat_state {
  struct Map *flows;
  struct Vector *keys;
  struct DoubleChain *ports;
};

static struct nat_state nat_storage;
static struct nat_state *nat;

static unsigned flow_hash(void *key) {
  const struct flow_key *k = key;
  uint64_t addrs;
  uint32_t ports;
  memcpy(&addrs, &k->src_ip, sizeof(addrs)); /* src_ip, dst_ip */
  memcpy(&ports, &k->src_port, sizeof(ports));
  uint64_t crc = _mm_crc32_u64(0, addrs);
  crc = _mm_crc32_u32((uint32_t)crc, ports);
  return _mm_crc32_u8((uint32_t)crc, k->proto);
}

static bool flow_eq(void *a, void *b) {
  const struct flow_key *x = a, *y = b;
  return ((x->src_ip ^ y->src_ip) | (x->dst_ip ^ y->dst_ip) |
          (uint32_t)(x->src_port ^ y->src_port) |
          (uint32_t)(x->dst_port ^ y->dst_port) |
          (uint32_t)(x->proto ^ y->proto)) == 0;
}

bool nf_init(void) {
  nat = &nat_storage;
  if (!map_allocate(flow_eq, flow_hash, NAT_CAPACITY, &nat->flows))
    return false;
  if (!vector_allocate(sizeof(struct flow_key), NAT_CAPACITY, NULL,
                       &nat->keys))
    return false;
  if (!dchain_allocate(NAT_CAPACITY, &nat->ports))
    return false;
  return true;
}

/* TCP/UDP checksum fix-up for an address and a port change (network order). */
static void l4_csum_fixup(uint8_t *field, uint8_t proto, uint32_t old_ip,
                          uint32_t new_ip, uint16_t old_port,
                          uint16_t new_port) {
  uint16_t csum;
  memcpy(&csum, field, sizeof(csum));
  if (proto == NF_IPPROTO_UDP && csum == 0)
    return;
  csum = nf_csum_update32(csum, old_ip, new_ip);
  csum = nf_csum_update16(csum, old_port, new_port);
  if (proto == NF_IPPROTO_UDP && csum == 0)
    csum = 0xffff;
  memcpy(field, &csum, sizeof(csum));
}

/* Index of the LAN flow `key`, allocated if new; -1 when out of ports. */
static int nat_lookup_or_allocate(struct nat_state *st, struct flow_key *key,
                                  vigor_time_t now) {
  int index;
  if (map_get(st->flows, key, &index)) {
    dchain_rejuvenate_index(st->ports, index, now);
    return index;
  }
  if (!dchain_allocate_new_index(st->ports, &index, now))
    return -1;
  struct flow_key *stored;
  vector_borrow(st->keys, index, (void **)&stored);
  *stored = *key;
  map_put(st->flows, stored, index);
  vector_return(st->keys, index, stored);
  return index;
}

static int nat_outbound(struct nat_state *st, struct nf_ipv4_hdr *ip,
                        struct nf_l4_ports *l4, uint8_t *l4_csum,
                        vigor_time_t now) {
  struct flow_key key = {
      .src_ip = ip->src,
      .dst_ip = ip->dst,
      .src_port = l4->sport,
      .dst_port = l4->dport,
      .proto = ip->proto,
  };
  int index = nat_lookup_or_allocate(st, &key, now);
  if (index < 0)
    return NF_DROP;

  uint32_t ext_ip = nf_hton32(NAT_EXTERNAL_IP);
  uint16_t ext_port = nf_hton16((uint16_t)(NAT_START_PORT + index));
  ip->src = ext_ip;
  ip->csum = nf_csum_update32(ip->csum, key.src_ip, ext_ip);
  l4->sport = ext_port;
  l4_csum_fixup(l4_csum, key.proto, key.src_ip, ext_ip, key.src_port,
                ext_port);
  return WAN_PORT;
}

static int nat_inbound(struct nat_state *st, struct nf_ipv4_hdr *ip,
                       struct nf_l4_ports *l4, uint8_t *l4_csum,
                       vigor_time_t now) {
  if (ip->dst != nf_hton32(NAT_EXTERNAL_IP))
    return NF_DROP;
  int index = (int)nf_ntoh16(l4->dport) - NAT_START_PORT;
  if (index < 0 || index >= NAT_CAPACITY)
    return NF_DROP;
  if (!dchain_is_index_allocated(st->ports, index))
    return NF_DROP;

  struct flow_key *cell;
  vector_borrow(st->keys, index, (void **)&cell);
  if ((cell->dst_ip != ip->src) | (cell->dst_port != l4->sport) |
      (cell->proto != ip->proto)) {
    vector_return(st->keys, index, cell);
    return NF_DROP;
  }
  uint32_t int_ip = cell->src_ip;
  uint16_t int_port = cell->src_port;
  vector_return(st->keys, index, cell);

  uint32_t old_ip = ip->dst;
  uint16_t old_port = l4->dport;
  ip->dst = int_ip;
  ip->csum = nf_csum_update32(ip->csum, old_ip, int_ip);
  l4->dport = int_port;
  l4_csum_fixup(l4_csum, ip->proto, old_ip, int_ip, old_port, int_port);
  dchain_rejuvenate_index(st->ports, index, now);
  return LAN_PORT;
}

int nf_process(uint16_t device, uint8_t *packet, uint16_t packet_length,
               vigor_time_t now) {
  struct nat_state *st = nat;
  expire_items_single_map(st->ports, st->keys, st->flows,
                          now - NAT_EXPIRATION_TIME);

  struct nf_ipv4_hdr *ip = nf_ipv4_header(packet, packet_length);
  if (ip == NULL)
    return NF_DROP;
  struct nf_l4_ports *l4 = nf_l4_header(packet, packet_length, ip);
  if (l4 == NULL)
    return NF_DROP;
  uint8_t *l4_csum = (uint8_t *)l4 + nf_l4_csum_offset(ip->proto);
  if ((size_t)(l4_csum - packet) + 2 > packet_length)
    return NF_DROP;

  if (device == LAN_PORT)
    return nat_outbound(st, ip, l4, l4_csum, now);
  return nat_inbound(st, ip, l4, l4_csum, now);
}
