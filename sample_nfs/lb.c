/*
 * lb -- Maglev-like load balancer, in the manner of Vigor's vigbalancer.
 *
 * Backends live on the LAN (device 0), clients on the WAN (device 1).
 *
 * Spec:
 *   1. Flows idle for more than LB_FLOW_EXPIRATION ns and backends silent
 *      for more than LB_BACKEND_EXPIRATION ns are forgotten (expiry runs
 *      first, on every packet).
 *   2. Frames that are not well-formed IPv4 TCP/UDP (short, non-IPv4, bad
 *      IHL, other protocols, non-first fragments, truncated ports) are
 *      dropped, from either side.
 *   3. LAN (device 0): the packet is a heartbeat of the backend ipv4.src.  A
 *      known backend is refreshed; a new one is registered with its IP and
 *      MAC (eth.src) in the next free slot of the active-backend chain (when
 *      all LB_BACKEND_CAPACITY slots are taken it is not registered).  The
 *      packet is forwarded, unmodified, to the WAN (device 1).
 *   4. WAN (device 1): a client packet; its flow is the 5-tuple (ipv4.src,
 *      ipv4.dst, l4.sport, l4.dport, ipv4.proto).  Packets whose TCP/UDP
 *      checksum field lies beyond the frame are dropped.
 *        - If the flow is known and the backend slot it recorded is still
 *          allocated, that backend serves it and the flow is refreshed.
 *        - Otherwise the backend is the first active one in the flow's
 *          consistent-hashing row (cht_find_preferred_available_backend on
 *          the flow's hash); with no active backend the packet is dropped.
 *          A known flow is refreshed and re-pointed at that backend; a new
 *          flow is recorded with it (when the flow table is full the packet
 *          is still balanced, just not recorded).
 *      The packet's eth.dst becomes the backend's MAC and its ipv4.dst the
 *      backend's IP (IPv4 and TCP/UDP checksums updated incrementally; a
 *      UDP checksum of 0 stays 0); it goes to the LAN (device 0).
 *   So a flow sticks to its backend as long as both live, and moves only
 *   when that backend's slot is freed by expiry.  (A flow records a backend
 *   slot; if its backend expires and another backend takes the same slot
 *   before the flow's next packet, the flow follows the slot.)
 *
 * State:
 *   flow_map       Map, capacity LB_FLOW_CAPACITY; key: struct flow_key,
 *                  the client 5-tuple (network order, stored in flow_keys);
 *                  value: flow index.
 *   flow_keys      Vector of LB_FLOW_CAPACITY struct flow_key.
 *   flow_backends  Vector of LB_FLOW_CAPACITY uint32_t: backend slot of the
 *                  flow.
 *   flow_chain     DoubleChain of LB_FLOW_CAPACITY indexes (flow ages).
 *   backend_map    Map, capacity LB_BACKEND_CAPACITY; key: uint32_t backend
 *                  IP (network order, stored in backend_ips); value: slot.
 *   backend_ips    Vector of LB_BACKEND_CAPACITY uint32_t (the keys).
 *   backends       Vector of LB_BACKEND_CAPACITY struct backend {ip, mac}.
 *   backend_chain  DoubleChain of LB_BACKEND_CAPACITY slots: the active
 *                  backends and the time of their last heartbeat.
 *   cht            Vector of LB_CHT_HEIGHT * LB_BACKEND_CAPACITY uint32_t:
 *                  the consistent-hashing table, filled by nf_init
 *                  (cht_fill_cht) and read-only afterwards.
 *
 * Config:
 *   LB_FLOW_CAPACITY       flows tracked (default 65536).
 *   LB_BACKEND_CAPACITY    backend slots (default 32).
 *   LB_CHT_HEIGHT          rows of the hashing table; a prime larger than
 *                          LB_BACKEND_CAPACITY (default 97).
 *   LB_FLOW_EXPIRATION     idle ns before a flow is forgotten (default 10 s).
 *   LB_BACKEND_EXPIRATION  ns without heartbeat before a backend is
 *                          forgotten (default 10 s).
 */
#include "nf.h"

#ifndef LB_FLOW_CAPACITY
#define LB_FLOW_CAPACITY 65536
#endif

#ifndef LB_BACKEND_CAPACITY
#define LB_BACKEND_CAPACITY 32
#endif

#ifndef LB_CHT_HEIGHT
#define LB_CHT_HEIGHT 97
#endif

#ifndef LB_FLOW_EXPIRATION
#define LB_FLOW_EXPIRATION 10000000000LL /* 10 s */
#endif

#ifndef LB_BACKEND_EXPIRATION
#define LB_BACKEND_EXPIRATION 10000000000LL /* 10 s */
#endif

_Static_assert((LB_CHT_HEIGHT) > (LB_BACKEND_CAPACITY),
               "LB_CHT_HEIGHT must be a prime larger than LB_BACKEND_CAPACITY");

#define LAN_DEVICE 0
#define WAN_DEVICE 1

/* A client flow; all fields in network order. */
struct flow_key {
  uint32_t src_ip;
  uint32_t dst_ip;
  uint16_t src_port;
  uint16_t dst_port;
  uint8_t proto;
} __attribute__((packed));

/* What a heartbeat tells about a backend. */
struct backend {
  uint32_t ip; /* network order */
  uint8_t mac[6];
} __attribute__((packed));

static struct Map *flow_map;
static struct Vector *flow_keys;
static struct Vector *flow_backends;
static struct DoubleChain *flow_chain;
static struct Map *backend_map;
static struct Vector *backend_ips;
static struct Vector *backends;
static struct DoubleChain *backend_chain;
static struct Vector *cht;

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

static bool backend_ip_eq(void *a, void *b) {
  return memcmp(a, b, sizeof(uint32_t)) == 0;
}

static unsigned backend_ip_hash(void *key) {
  uint32_t h;
  memcpy(&h, key, sizeof(h));
  h ^= h >> 16;
  h *= 0x85ebca6bu;
  h ^= h >> 13;
  return h;
}

bool nf_init(void) {
  if (!map_allocate(flow_key_eq, flow_key_hash, LB_FLOW_CAPACITY, &flow_map))
    return false;
  if (!vector_allocate(sizeof(struct flow_key), LB_FLOW_CAPACITY, NULL,
                       &flow_keys))
    return false;
  if (!vector_allocate(sizeof(uint32_t), LB_FLOW_CAPACITY, NULL,
                       &flow_backends))
    return false;
  if (!dchain_allocate(LB_FLOW_CAPACITY, &flow_chain))
    return false;
  if (!map_allocate(backend_ip_eq, backend_ip_hash, LB_BACKEND_CAPACITY,
                    &backend_map))
    return false;
  if (!vector_allocate(sizeof(uint32_t), LB_BACKEND_CAPACITY, NULL,
                       &backend_ips))
    return false;
  if (!vector_allocate(sizeof(struct backend), LB_BACKEND_CAPACITY, NULL,
                       &backends))
    return false;
  if (!dchain_allocate(LB_BACKEND_CAPACITY, &backend_chain))
    return false;
  if (!vector_allocate(sizeof(uint32_t),
                       (unsigned)(LB_CHT_HEIGHT) * (LB_BACKEND_CAPACITY), NULL,
                       &cht))
    return false;
  if (!cht_fill_cht(cht, LB_CHT_HEIGHT, LB_BACKEND_CAPACITY))
    return false;
  return true;
}

/* A heartbeat from the backend at `ip` with MAC `mac`. */
static void heartbeat(uint32_t ip, uint8_t *mac, vigor_time_t now) {
  int index;
  if (map_get(backend_map, &ip, &index)) {
    dchain_rejuvenate_index(backend_chain, index, now);
    return;
  }
  if (!dchain_allocate_new_index(backend_chain, &index, now))
    return; /* no free backend slot */
  void *cell;
  vector_borrow(backend_ips, index, &cell);
  uint32_t *key = cell;
  *key = ip;
  map_put(backend_map, key, index);
  vector_return(backend_ips, index, cell);

  vector_borrow(backends, index, &cell);
  struct backend *info = cell;
  info->ip = ip;
  memcpy(info->mac, mac, sizeof(info->mac));
  vector_return(backends, index, cell);
}

int nf_process(uint16_t device, uint8_t *packet, uint16_t packet_length,
               vigor_time_t now) {
  expire_items_single_map(flow_chain, flow_keys, flow_map,
                          now - LB_FLOW_EXPIRATION);
  expire_items_single_map(backend_chain, backend_ips, backend_map,
                          now - LB_BACKEND_EXPIRATION);

  struct nf_ipv4_hdr *ip = nf_ipv4_header(packet, packet_length);
  if (ip == NULL)
    return NF_DROP;
  struct nf_l4_ports *l4 = nf_l4_header(packet, packet_length, ip);
  if (l4 == NULL)
    return NF_DROP;
  struct nf_ether_hdr *eth = nf_ether_header(packet, packet_length);

  if (device == LAN_DEVICE) {
    heartbeat(ip->src, eth->src, now);
    return WAN_DEVICE;
  }

  uint8_t *l4_csum = (uint8_t *)l4 + nf_l4_csum_offset(ip->proto);
  if ((size_t)(l4_csum - packet) + sizeof(uint16_t) > packet_length)
    return NF_DROP; /* L4 header truncated before its checksum */

  struct flow_key flow;
  flow.src_ip = ip->src;
  flow.dst_ip = ip->dst;
  flow.src_port = l4->sport;
  flow.dst_port = l4->dport;
  flow.proto = ip->proto;

  void *cell;
  int flow_index;
  int backend_index = -1;
  int known = map_get(flow_map, &flow, &flow_index);
  if (known) {
    vector_borrow(flow_backends, flow_index, &cell);
    uint32_t *recorded = cell;
    int candidate = (int)*recorded;
    vector_return(flow_backends, flow_index, cell);
    if (dchain_is_index_allocated(backend_chain, candidate)) {
      dchain_rejuvenate_index(flow_chain, flow_index, now);
      backend_index = candidate;
    }
  }

  if (backend_index < 0) {
    uint64_t hash = flow_key_hash(&flow);
    if (!cht_find_preferred_available_backend(hash, cht, backend_chain,
                                              LB_CHT_HEIGHT,
                                              LB_BACKEND_CAPACITY,
                                              &backend_index))
      return NF_DROP; /* no backend alive */
    if (known) {
      dchain_rejuvenate_index(flow_chain, flow_index, now);
      vector_borrow(flow_backends, flow_index, &cell);
      uint32_t *recorded = cell;
      *recorded = (uint32_t)backend_index;
      vector_return(flow_backends, flow_index, cell);
    } else if (dchain_allocate_new_index(flow_chain, &flow_index, now)) {
      vector_borrow(flow_keys, flow_index, &cell);
      struct flow_key *key = cell;
      memcpy(key, &flow, sizeof(struct flow_key));
      map_put(flow_map, key, flow_index);
      vector_return(flow_keys, flow_index, cell);

      vector_borrow(flow_backends, flow_index, &cell);
      uint32_t *recorded = cell;
      *recorded = (uint32_t)backend_index;
      vector_return(flow_backends, flow_index, cell);
    }
  }

  vector_borrow(backends, backend_index, &cell);
  struct backend *chosen = cell;
  uint32_t new_ip = chosen->ip;
  memcpy(eth->dst, chosen->mac, sizeof(eth->dst));
  vector_return(backends, backend_index, cell);

  uint32_t old_ip = ip->dst;
  ip->dst = new_ip;
  ip->csum = nf_csum_update32(ip->csum, old_ip, new_ip);
  uint16_t csum;
  memcpy(&csum, l4_csum, sizeof(csum));
  if (!(ip->proto == NF_IPPROTO_UDP && csum == 0)) {
    csum = nf_csum_update32(csum, old_ip, new_ip);
    if (ip->proto == NF_IPPROTO_UDP && csum == 0)
      csum = 0xffff;
    memcpy(l4_csum, &csum, sizeof(csum));
  }
  return LAN_DEVICE;
}
