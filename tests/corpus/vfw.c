/*
 * vfw -- stateful firewall written the DPDK way: the LAN opens flows, the
 * WAN may only answer.
 *
 * Spec:
 *   1. Flows idle for more than FW_EXPIRATION_TIME ns are forgotten (expiry
 *      runs first, on every packet).
 *   2. Only well-formed IPv4 TCP/UDP packets are handled: frames too short
 *      for Ethernet + a 20-byte IPv4 header, EtherType other than IPv4,
 *      IPv4 version != 4, IHL < 5 or reaching past the frame, protocols
 *      other than TCP/UDP, non-first fragments and frames that end before
 *      the end of the L4 ports are dropped, from either side.
 *   3. LAN (device 0): the packet's 5-tuple (ipv4.src, ipv4.dst, l4.sport,
 *      l4.dport, ipv4.proto) is a flow.  A known flow is refreshed, a new
 *      one recorded; the packet goes to the WAN (device 1).  When the table
 *      is full a new flow is not recorded and its packet is dropped.
 *   4. WAN (device 1): the packet goes to the LAN (device 0) only if its
 *      reversed 5-tuple (ipv4.dst, ipv4.src, l4.dport, l4.sport, proto) is
 *      a known flow, which it refreshes; otherwise it is dropped.
 *   5. fw_stats counts received packets per device and dropped packets; the
 *      NF never reads these counters back.
 *   Packets are never modified.
 *
 * State:
 *   state.flows  Map, capacity FW_CAPACITY; key: struct flow_key, the LAN
 *                5-tuple (network order, stored in state.keys); value:
 *                index.  Hashed with the SSE4.2 CRC32 instruction.
 *   state.keys   Vector of FW_CAPACITY struct flow_key.
 *   state.chain  DoubleChain of FW_CAPACITY indexes (flow ages).
 *   fw_stats     plain global struct of counters, written on every packet.
 *
 * Config:
 *   FW_CAPACITY         number of flows (default 65536).
 *   FW_EXPIRATION_TIME  idle ns before a flow is forgotten (default 10 s).
 *
 * Expected plan: shard state.flows/keys/chain by the 5-tuple with a
 * symmetric RSS key (the LAN 5-tuple and the reversed WAN 5-tuple of a flow
 * reach one core); fw_stats is written by every packet but never read, so
 * per-core copies of it are harmless (no lock needed).
 */
#include <nmmintrin.h>

#include "nf.h"

#ifndef FW_CAPACITY
#define FW_CAPACITY 65536
#endif

#ifndef FW_EXPIRATION_TIME
#define FW_EXPIRATION_TIME 10000000000LL /* 10 s */
#endif

#define LAN_PORT 0
#define WAN_PORT 1
#define FW_HASH_SEED 0xffffffffu

#define ETHER_HDR_LEN 14
#define IPV4_MIN_HDR_LEN 20
#define IPV4_FRAG_OFFSET_MASK 0x1fff

struct flow_key {
  uint32_t src_ip;
  uint32_t dst_ip;
  uint16_t src_port;
  uint16_t dst_port;
  uint8_t proto;
} __attribute__((packed));

static struct nf_state {
  struct Map *flows;
  struct Vector *keys;
  struct DoubleChain *chain;
} state;

static struct {
  uint64_t rx[NF_DEVICES];
  uint64_t dropped;
} fw_stats;

/* ---- hashing and comparison, as rte_hash_crc does it ------------------- */

static inline uint32_t flow_key_crc(const struct flow_key *k) {
  uint32_t crc = FW_HASH_SEED;
  crc = _mm_crc32_u32(crc, k->src_ip);
  crc = _mm_crc32_u32(crc, k->dst_ip);
  crc = _mm_crc32_u16(crc, k->src_port);
  crc = _mm_crc32_u16(crc, k->dst_port);
  crc = _mm_crc32_u8(crc, k->proto);
  return crc;
}

static unsigned flow_key_hash(void *key) { return flow_key_crc(key); }

static bool flow_key_eq(void *a, void *b) {
  const struct flow_key *x = a, *y = b;
  /* branch-free: all five comparisons are evaluated */
  return !((x->src_ip != y->src_ip) | (x->dst_ip != y->dst_ip) |
           (x->src_port != y->src_port) | (x->dst_port != y->dst_port) |
           (x->proto != y->proto));
}

/* ---- parsing ------------------------------------------------------------ */

/* Fills `key` with the packet's 5-tuple as it arrived; false when the frame
   is not a well-formed first-fragment IPv4 TCP/UDP packet. */
static inline bool parse_5tuple(const uint8_t *pkt, uint16_t len,
                                struct flow_key *key) {
  if (len < ETHER_HDR_LEN + IPV4_MIN_HDR_LEN)
    return false;
  const struct nf_ether_hdr *eth = (const struct nf_ether_hdr *)pkt;
  if (eth->ether_type != nf_hton16(NF_ETHER_TYPE_IPV4))
    return false;
  const struct nf_ipv4_hdr *ip =
      (const struct nf_ipv4_hdr *)(pkt + ETHER_HDR_LEN);
  unsigned hlen = (ip->version_ihl & 0x0f) * 4u;
  if ((ip->version_ihl >> 4) != 4 || hlen < IPV4_MIN_HDR_LEN)
    return false;
  if (nf_ntoh16(ip->frag) & IPV4_FRAG_OFFSET_MASK)
    return false;
  if (ip->proto != NF_IPPROTO_TCP && ip->proto != NF_IPPROTO_UDP)
    return false;
  if (ETHER_HDR_LEN + hlen + sizeof(struct nf_l4_ports) > len)
    return false;
  const struct nf_l4_ports *l4 =
      (const struct nf_l4_ports *)(pkt + ETHER_HDR_LEN + hlen);
  key->src_ip = ip->src;
  key->dst_ip = ip->dst;
  key->src_port = l4->sport;
  key->dst_port = l4->dport;
  key->proto = ip->proto;
  return true;
}

static inline void reverse_key(const struct flow_key *in,
                               struct flow_key *out) {
  out->src_ip = in->dst_ip;
  out->dst_ip = in->src_ip;
  out->src_port = in->dst_port;
  out->dst_port = in->src_port;
  out->proto = in->proto;
}

/* ---- flow table ---------------------------------------------------------- */

static int flow_lookup(struct flow_key *key, vigor_time_t now) {
  int index;
  if (!map_get(state.flows, key, &index))
    return -1;
  dchain_rejuvenate_index(state.chain, index, now);
  return index;
}

static int flow_insert(const struct flow_key *key, vigor_time_t now) {
  int index;
  if (!dchain_allocate_new_index(state.chain, &index, now))
    return -1;
  void *cell;
  vector_borrow(state.keys, index, &cell);
  memcpy(cell, key, sizeof(struct flow_key));
  map_put(state.flows, cell, index);
  vector_return(state.keys, index, cell);
  return index;
}

static int drop(void) {
  fw_stats.dropped++;
  return NF_DROP;
}

bool nf_init(void) {
  if (!map_allocate(flow_key_eq, flow_key_hash, FW_CAPACITY, &state.flows))
    return false;
  if (!vector_allocate(sizeof(struct flow_key), FW_CAPACITY, NULL,
                       &state.keys))
    return false;
  return dchain_allocate(FW_CAPACITY, &state.chain) != 0;
}

int nf_process(uint16_t device, uint8_t *packet, uint16_t packet_length,
               vigor_time_t now) {
  if (device < NF_DEVICES)
    fw_stats.rx[device]++;
  expire_items_single_map(state.chain, state.keys, state.flows,
                          now - FW_EXPIRATION_TIME);

  struct flow_key key;
  if (!parse_5tuple(packet, packet_length, &key))
    return drop();

  if (device == LAN_PORT) {
    if (flow_lookup(&key, now) >= 0 || flow_insert(&key, now) >= 0)
      return WAN_PORT;
    return drop(); /* table full */
  }

  struct flow_key reply;
  reverse_key(&key, &reply);
  if (flow_lookup(&reply, now) < 0)
    return drop();
  return LAN_PORT;
}
