/*
 * connlimit -- connection limiter written the DPDK way: a count-min sketch
 * of new flows per (source, destination) pair with a CRC32 key hash, and a
 * cap on the flows tracked at once kept in a plain field of the state struct.
 *
 * Spec:
 *   1. Flows idle for more than CL_EXPIRATION_TIME ns are forgotten and
 *      state.live_flows goes down by the number forgotten; sketch buckets
 *      untouched for more than CL_EXPIRATION_TIME ns are reset (expiry runs
 *      first, on every packet, from either device).
 *   2. WAN (device 1): every frame goes to the LAN (device 0), unparsed.
 *   3. LAN (device 0): frames that are not well-formed IPv4 TCP/UDP (short,
 *      non-IPv4, bad IHL, other protocols, non-first fragments, truncated
 *      ports) are dropped.  Otherwise the flow is the 5-tuple and the pair
 *      is (ipv4.src, ipv4.dst):
 *        - a known flow is refreshed, its pair's sketch buckets refreshed,
 *          and the packet goes to the WAN (device 1);
 *        - a new flow is dropped when CL_MAX_LIVE flows are tracked already
 *          (all pairs together), or when the sketch estimates that its pair
 *          opened CL_MAX_FLOWS flows already (threshold CL_MAX_FLOWS - 1:
 *          the first CL_MAX_FLOWS new flows of a pair pass); or when the
 *          flow table is full.  Otherwise it is recorded, live_flows goes
 *          up by one, its pair's count is incremented (sketch_touch_buckets)
 *          and the packet goes to the WAN.
 *   A pair's count is of flows opened since its buckets were last reset; it
 *   does not go down when one flow expires.  Packets are never modified.
 *
 * State (the struct `state`):
 *   state.flows       Map, capacity CL_CAPACITY; key struct flow_key (LAN
 *                     5-tuple, stored in state.keys); value: index.
 *   state.keys        Vector of CL_CAPACITY struct flow_key.
 *   state.chain       DoubleChain of CL_CAPACITY indexes (flow ages).
 *   state.pairs       Sketch of CL_SKETCH_CAPACITY counters per row, keyed by
 *                     struct pair_key, hashed with _mm_crc32_u32.
 *   state.live_flows  plain uint32_t: flows tracked now (written on every
 *                     packet by the expiry bookkeeping, read per new flow).
 *
 * Config:
 *   CL_CAPACITY (65536), CL_SKETCH_CAPACITY (65536), CL_MAX_FLOWS (64,
 *   1..65536), CL_MAX_LIVE (50000), CL_EXPIRATION_TIME (10 s).
 *
 * Expected plan: must lock (at least state.live_flows, and with it every
 * object a new flow touches): live_flows is one counter for the flows of
 * all pairs, so per-core copies would admit up to cores * CL_MAX_LIVE
 * flows.  Without it the flows and the sketch would shard by (ipv4.src,
 * ipv4.dst) on the LAN.
 */
#include <nmmintrin.h>

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
#ifndef CL_MAX_LIVE
#define CL_MAX_LIVE 50000
#endif
#ifndef CL_EXPIRATION_TIME
#define CL_EXPIRATION_TIME 10000000000LL
#endif

_Static_assert(CL_MAX_FLOWS >= 1 && CL_MAX_FLOWS <= 65536,
               "CL_MAX_FLOWS must be in 1..65536");

#define LAN_PORT 0
#define WAN_PORT 1
#define CRC_SEED 0xdeadbeefu

struct flow_key {
  uint32_t src_ip;
  uint32_t dst_ip;
  uint16_t src_port;
  uint16_t dst_port;
  uint8_t proto;
} __attribute__((packed));

struct pair_key {
  uint32_t src_ip;
  uint32_t dst_ip;
};

static struct cl_state {
  struct Map *flows;
  struct Vector *keys;
  struct DoubleChain *chain;
  struct Sketch *pairs;
  uint32_t live_flows;
} state;

static unsigned flow_key_hash(void *key) {
  const struct flow_key *k = key;
  uint32_t crc = _mm_crc32_u32(CRC_SEED, k->src_ip);
  crc = _mm_crc32_u32(crc, k->dst_ip);
  crc = _mm_crc32_u16(crc, k->src_port);
  crc = _mm_crc32_u16(crc, k->dst_port);
  return _mm_crc32_u8(crc, k->proto);
}

static bool flow_key_eq(void *a, void *b) {
  const struct flow_key *x = a, *y = b;
  return !((x->src_ip != y->src_ip) | (x->dst_ip != y->dst_ip) |
           (x->src_port != y->src_port) | (x->dst_port != y->dst_port) |
           (x->proto != y->proto));
}

static unsigned pair_key_hash(void *key) {
  const struct pair_key *k = key;
  return _mm_crc32_u32(_mm_crc32_u32(CRC_SEED, k->src_ip), k->dst_ip);
}

bool nf_init(void) {
  if (!map_allocate(flow_key_eq, flow_key_hash, CL_CAPACITY, &state.flows) ||
      !vector_allocate(sizeof(struct flow_key), CL_CAPACITY, NULL,
                       &state.keys) ||
      !dchain_allocate(CL_CAPACITY, &state.chain) ||
      !sketch_allocate(pair_key_hash, CL_SKETCH_CAPACITY,
                       (uint16_t)(CL_MAX_FLOWS - 1), &state.pairs))
    return false;
  state.live_flows = 0;
  return true;
}

static inline void expire_flows(vigor_time_t now) {
  int expired = expire_items_single_map(state.chain, state.keys, state.flows,
                                        now - CL_EXPIRATION_TIME);
  state.live_flows -= (uint32_t)expired;
  sketch_expire(state.pairs, now - CL_EXPIRATION_TIME);
}

static bool parse_flow(uint8_t *packet, uint16_t len, struct flow_key *flow) {
  struct nf_ipv4_hdr *ip = nf_ipv4_header(packet, len);
  if (ip == NULL)
    return false;
  struct nf_l4_ports *l4 = nf_l4_header(packet, len, ip);
  if (l4 == NULL)
    return false;
  flow->src_ip = ip->src;
  flow->dst_ip = ip->dst;
  flow->src_port = l4->sport;
  flow->dst_port = l4->dport;
  flow->proto = ip->proto;
  return true;
}

/* Records a new flow; false when the table is full. */
static bool flow_open(const struct flow_key *flow, vigor_time_t now) {
  int index;
  if (!dchain_allocate_new_index(state.chain, &index, now))
    return false;
  struct flow_key *stored;
  vector_borrow(state.keys, index, (void **)&stored);
  memcpy(stored, flow, sizeof(*stored));
  map_put(state.flows, stored, index);
  vector_return(state.keys, index, stored);
  state.live_flows++;
  return true;
}

int nf_process(uint16_t device, uint8_t *packet, uint16_t packet_length,
               vigor_time_t now) {
  expire_flows(now);
  if (device != LAN_PORT)
    return LAN_PORT;

  struct flow_key flow;
  if (!parse_flow(packet, packet_length, &flow))
    return NF_DROP;

  struct pair_key pair = {.src_ip = flow.src_ip, .dst_ip = flow.dst_ip};
  sketch_compute_hashes(state.pairs, &pair);

  int index;
  if (map_get(state.flows, &flow, &index)) {
    dchain_rejuvenate_index(state.chain, index, now);
    sketch_refresh(state.pairs, now);
    return WAN_PORT;
  }
  if (state.live_flows >= CL_MAX_LIVE)
    return NF_DROP;
  if (sketch_fetch(state.pairs))
    return NF_DROP;
  if (!flow_open(&flow, now))
    return NF_DROP;
  sketch_touch_buckets(state.pairs, now);
  return WAN_PORT;
}
