/*
 * maglev -- Maglev load balancer written the DPDK way: l3fwd's masked
 * 16-byte 5-tuple load, a CRC32 flow hash, backend heartbeats on the LAN.
 *
 * Backends live on the LAN (device 0), clients on the WAN (device 1).
 *
 * Spec:
 *   1. Flows idle for more than LB_FLOW_EXPIRATION ns and backends silent
 *      for more than LB_BACKEND_EXPIRATION ns are forgotten (expiry runs
 *      first, on every packet).
 *   2. Only IPv4 TCP/UDP first fragments with a 20-byte header (IHL 5: the
 *      key is loaded straight from the header, as l3fwd does) whose L4
 *      checksum field lies in the frame are handled; everything else --
 *      including IPv4 with options -- is dropped, from either side.
 *   3. LAN (device 0): a heartbeat from the backend ipv4.src.  A known
 *      backend is refreshed; a new one is registered with its IP and MAC
 *      (eth.src) in the next free backend slot (not registered when all
 *      LB_BACKEND_CAPACITY slots are taken).  The packet goes, unmodified,
 *      to the WAN (device 1).
 *   4. WAN (device 1): a client packet of the flow (ipv4.src, ipv4.dst,
 *      l4.sport, l4.dport, ipv4.proto).  If the flow is known and its
 *      recorded backend slot is still allocated, that backend serves it and
 *      the flow is refreshed.  Otherwise the backend is
 *      cht_find_preferred_available_backend of the flow's CRC32 hash
 *      (dropped when no backend is alive); a known flow is refreshed and
 *      re-pointed at it, a new flow recorded (when the flow table is full
 *      the packet is still balanced, just not recorded).  eth.dst becomes
 *      the backend's MAC and ipv4.dst its IP (IPv4 and TCP/UDP checksums
 *      updated incrementally, a UDP checksum of 0 stays 0); the packet goes
 *      to the LAN (device 0).
 *
 * State (handles in the struct `state`):
 *   flow_map/flow_keys/flow_backends/flow_chain  client flows (capacity
 *      LB_FLOW_CAPACITY), key struct lb_key: 16 bytes, TTL and IPv4
 *      checksum bytes zeroed; flow_backends: each flow's backend slot.
 *   backend_map/backend_ips/backends/backend_chain  live backends (capacity
 *      LB_BACKEND_CAPACITY) keyed by IP; backends holds {ip, mac}.
 *   cht  LB_CHT_HEIGHT * LB_BACKEND_CAPACITY uint32_t, filled in nf_init.
 *
 * Config:
 *   LB_FLOW_CAPACITY (65536), LB_BACKEND_CAPACITY (32), LB_CHT_HEIGHT (97,
 *   a prime > LB_BACKEND_CAPACITY), LB_FLOW_EXPIRATION (10 s),
 *   LB_BACKEND_EXPIRATION (10 s).
 *
 * Expected plan: replicate cht; shard the flow group by the WAN 5-tuple;
 * the backend group must be locked (or kept consistent on every core): it is
 * written by LAN heartbeats keyed by ipv4.src and read by every WAN packet
 * through the flow hash, so no RSS key keeps writer and readers together.
 */
#include <nmmintrin.h>

#include "nf.h"

#ifndef LB_FLOW_CAPACITY
#define LB_FLOW_CAPACITY 65536
#endif
#ifndef LB_BACKEND_CAPACITY
#define LB_BACKEND_CAPACITY 32
#endif
#ifndef LB_CHT_HEIGHT
#define LB_CHT_HEIGHT 97 /* a prime > LB_BACKEND_CAPACITY */
#endif
#ifndef LB_FLOW_EXPIRATION
#define LB_FLOW_EXPIRATION 10000000000LL /* 10 s */
#endif
#ifndef LB_BACKEND_EXPIRATION
#define LB_BACKEND_EXPIRATION 10000000000LL /* 10 s */
#endif

#define LAN_PORT 0
#define WAN_PORT 1
#define IPV4_HDR_LEN 20
#define BIT_8_TO_15 0x0000ff00
#define ALL_32_BITS 0xffffffff

/* l3fwd's ipv4_5tuple_host: the 16 bytes from the IPv4 TTL on. */
union ipv4_5tuple_host {
  struct {
    uint8_t pad0; /* ttl, masked */
    uint8_t proto;
    uint16_t pad1; /* header checksum, masked */
    uint32_t ip_src;
    uint32_t ip_dst;
    uint16_t port_src;
    uint16_t port_dst;
  };
  __m128i xmm;
};

/* The same bytes as they are stored in the flow table. */
struct lb_key {
  uint8_t pad0, proto;
  uint16_t pad1;
  uint32_t ip_src, ip_dst;
  uint16_t port_src, port_dst;
} __attribute__((packed));

struct backend {
  uint32_t ip;
  uint8_t mac[6];
} __attribute__((packed));

static struct nf_state {
  struct Map *flow_map;
  struct Vector *flow_keys;
  struct Vector *flow_backends;
  struct DoubleChain *flow_chain;
  struct Map *backend_map;
  struct Vector *backend_ips;
  struct Vector *backends;
  struct DoubleChain *backend_chain;
  struct Vector *cht;
} state;

static inline uint32_t lb_key_crc(const struct lb_key *k) {
  uint64_t lo, hi;
  memcpy(&lo, k, 8);
  memcpy(&hi, (const uint8_t *)k + 8, 8);
  return (uint32_t)_mm_crc32_u64(_mm_crc32_u64(0, lo), hi);
}

static unsigned lb_key_hash(void *k) { return lb_key_crc(k); }

static bool lb_key_eq(void *a, void *b) {
  const struct lb_key *x = a, *y = b;
  return ((x->proto == y->proto) & (x->ip_src == y->ip_src) &
          (x->ip_dst == y->ip_dst) & (x->port_src == y->port_src) &
          (x->port_dst == y->port_dst)) != 0;
}

static unsigned backend_ip_hash(void *k) {
  uint32_t ip;
  memcpy(&ip, k, sizeof(ip));
  return _mm_crc32_u32(0x12345678u, ip);
}

static bool backend_ip_eq(void *a, void *b) {
  return memcmp(a, b, sizeof(uint32_t)) == 0;
}

bool nf_init(void) {
  return map_allocate(lb_key_eq, lb_key_hash, LB_FLOW_CAPACITY,
                      &state.flow_map) &&
         vector_allocate(sizeof(struct lb_key), LB_FLOW_CAPACITY, NULL,
                         &state.flow_keys) &&
         vector_allocate(sizeof(uint32_t), LB_FLOW_CAPACITY, NULL,
                         &state.flow_backends) &&
         dchain_allocate(LB_FLOW_CAPACITY, &state.flow_chain) &&
         map_allocate(backend_ip_eq, backend_ip_hash, LB_BACKEND_CAPACITY,
                      &state.backend_map) &&
         vector_allocate(sizeof(uint32_t), LB_BACKEND_CAPACITY, NULL,
                         &state.backend_ips) &&
         vector_allocate(sizeof(struct backend), LB_BACKEND_CAPACITY, NULL,
                         &state.backends) &&
         dchain_allocate(LB_BACKEND_CAPACITY, &state.backend_chain) &&
         vector_allocate(sizeof(uint32_t),
                         (unsigned)LB_CHT_HEIGHT * LB_BACKEND_CAPACITY, NULL,
                         &state.cht) &&
         cht_fill_cht(state.cht, LB_CHT_HEIGHT, LB_BACKEND_CAPACITY);
}

static void backend_heartbeat(uint32_t ip, const uint8_t *mac,
                              vigor_time_t now) {
  int slot;
  if (map_get(state.backend_map, &ip, &slot)) {
    dchain_rejuvenate_index(state.backend_chain, slot, now);
    return;
  }
  if (!dchain_allocate_new_index(state.backend_chain, &slot, now))
    return;
  uint32_t *key;
  vector_borrow(state.backend_ips, slot, (void **)&key);
  *key = ip;
  map_put(state.backend_map, key, slot);
  vector_return(state.backend_ips, slot, key);
  struct backend *b;
  vector_borrow(state.backends, slot, (void **)&b);
  b->ip = ip;
  memcpy(b->mac, mac, sizeof(b->mac));
  vector_return(state.backends, slot, b);
}

static void flow_set_backend(int flow, int backend) {
  uint32_t *cell;
  vector_borrow(state.flow_backends, flow, (void **)&cell);
  *cell = (uint32_t)backend;
  vector_return(state.flow_backends, flow, cell);
}

/* The backend slot serving `key`, or -1 when no backend is alive. */
static int pick_backend(struct lb_key *key, vigor_time_t now) {
  int flow, backend;
  int known = map_get(state.flow_map, key, &flow);
  if (known) {
    uint32_t *cell;
    vector_borrow(state.flow_backends, flow, (void **)&cell);
    backend = (int)*cell;
    vector_return(state.flow_backends, flow, cell);
    if (dchain_is_index_allocated(state.backend_chain, backend)) {
      dchain_rejuvenate_index(state.flow_chain, flow, now);
      return backend;
    }
  }
  if (!cht_find_preferred_available_backend(lb_key_crc(key), state.cht,
                                            state.backend_chain, LB_CHT_HEIGHT,
                                            LB_BACKEND_CAPACITY, &backend))
    return -1;
  if (known) {
    dchain_rejuvenate_index(state.flow_chain, flow, now);
    flow_set_backend(flow, backend);
  } else if (dchain_allocate_new_index(state.flow_chain, &flow, now)) {
    void *stored;
    vector_borrow(state.flow_keys, flow, &stored);
    memcpy(stored, key, sizeof(struct lb_key));
    map_put(state.flow_map, stored, flow);
    vector_return(state.flow_keys, flow, stored);
    flow_set_backend(flow, backend);
  }
  return backend;
}

int nf_process(uint16_t device, uint8_t *packet, uint16_t packet_length,
               vigor_time_t now) {
  expire_items_single_map(state.flow_chain, state.flow_keys, state.flow_map,
                          now - LB_FLOW_EXPIRATION);
  expire_items_single_map(state.backend_chain, state.backend_ips,
                          state.backend_map, now - LB_BACKEND_EXPIRATION);

  struct nf_ipv4_hdr *ip = nf_ipv4_header(packet, packet_length);
  if (ip == NULL || (ip->version_ihl & 0x0f) != IPV4_HDR_LEN / 4)
    return NF_DROP;
  struct nf_l4_ports *l4 = nf_l4_header(packet, packet_length, ip);
  if (l4 == NULL)
    return NF_DROP;
  uint8_t *l4_csum = (uint8_t *)l4 + nf_l4_csum_offset(ip->proto);
  if ((size_t)(l4_csum - packet) + 2 > packet_length)
    return NF_DROP;
  struct nf_ether_hdr *eth = (struct nf_ether_hdr *)packet;

  if (device == LAN_PORT) {
    backend_heartbeat(ip->src, eth->src, now);
    return WAN_PORT;
  }

  union ipv4_5tuple_host tuple;
  const __m128i mask0 =
      _mm_set_epi32(ALL_32_BITS, ALL_32_BITS, ALL_32_BITS, BIT_8_TO_15);
  tuple.xmm = _mm_and_si128(
      _mm_loadu_si128((const __m128i *)&ip->ttl), mask0);
  struct lb_key key;
  memcpy(&key, &tuple, sizeof(key));

  int backend = pick_backend(&key, now);
  if (backend < 0)
    return NF_DROP;

  struct backend *b;
  vector_borrow(state.backends, backend, (void **)&b);
  uint32_t new_ip = b->ip;
  memcpy(eth->dst, b->mac, sizeof(eth->dst));
  vector_return(state.backends, backend, b);

  uint32_t old_ip = ip->dst;
  ip->dst = new_ip;
  ip->csum = nf_csum_update32(ip->csum, old_ip, new_ip);
  uint16_t csum;
  memcpy(&csum, l4_csum, sizeof(csum));
  if (ip->proto == NF_IPPROTO_UDP && csum == 0)
    return LAN_PORT; /* no UDP checksum */
  csum = nf_csum_update32(csum, old_ip, new_ip);
  if (ip->proto == NF_IPPROTO_UDP && csum == 0)
    csum = 0xffff;
  memcpy(l4_csum, &csum, sizeof(csum));
  return LAN_PORT;
}
