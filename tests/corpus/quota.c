/*
 * quota -- per-flow packet quota per session, with lazy expiry: a stale
 * session is found by its stored timestamp, erased, and the lookup retried.
 *
 * Spec:
 *   1. WAN (device 1): every frame goes to the LAN (device 0), unparsed.
 *   2. LAN (device 0): frames that are not well-formed IPv4 TCP/UDP first
 *      fragments with their ports inside the frame are dropped.  Otherwise
 *      the flow is the 5-tuple (ipv4.src, ipv4.dst, l4.sport, l4.dport,
 *      ipv4.proto) and it has a session:
 *        - a session whose last packet is more than QUOTA_IDLE ns before
 *          `now` is over: it is erased and the flow starts a new one
 *          (QUOTA_IDLE exactly is still the same session);
 *        - a new session is opened in a free slot; when the table is full
 *          the least recently seen session is evicted if it is over (idle
 *          for more than QUOTA_IDLE), and otherwise the packet is dropped
 *          without opening a session;
 *        - every LAN packet of a flow refreshes its session, whether it
 *          passes or not;
 *        - the first QUOTA_PACKETS packets of a session go to the WAN
 *          (device 1), unchanged; later ones are dropped.
 *   There is no other expiry: sessions end only as described above.
 *
 * State (the struct `state`):
 *   state.flows    Map, capacity QUOTA_CAPACITY; key: struct flow_key (the
 *                  `key` field of a struct session cell); value: index.
 *                  CRC32-hashed.
 *   state.entries  Vector of QUOTA_CAPACITY struct session {key, packets,
 *                  last_seen}.
 *   state.chain    DoubleChain of QUOTA_CAPACITY indexes (session ages).
 *
 * Config:
 *   QUOTA_CAPACITY (65536), QUOTA_PACKETS (100), QUOTA_IDLE (10 s).
 *
 * Expected plan: shard the session group by the LAN 5-tuple: the erase and
 * the retried lookup reach the packet's own flow; eviction under a full
 * table takes a session of the core's own table, as expiry does.  WAN
 * packets touch no state.
 */
#include <nmmintrin.h>

#include "nf.h"

#ifndef QUOTA_CAPACITY
#define QUOTA_CAPACITY 65536
#endif
#ifndef QUOTA_PACKETS
#define QUOTA_PACKETS 100
#endif
#ifndef QUOTA_IDLE
#define QUOTA_IDLE 10000000000LL
#endif

#define LAN_PORT 0
#define WAN_PORT 1

struct flow_key {
  uint32_t src_ip;
  uint32_t dst_ip;
  uint16_t src_port;
  uint16_t dst_port;
  uint8_t proto;
} __attribute__((packed));

struct session {
  struct flow_key key; /* first: the map keeps a pointer to it */
  uint32_t packets;
  vigor_time_t last_seen;
};

static struct nf_state {
  struct Map *flows;
  struct Vector *entries;
  struct DoubleChain *chain;
} state;

static unsigned flow_hash(void *key) {
  const struct flow_key *k = key;
  uint32_t crc = _mm_crc32_u32(0, k->src_ip);
  crc = _mm_crc32_u32(crc, k->dst_ip);
  crc = _mm_crc32_u32(crc, (uint32_t)k->src_port << 16 | k->dst_port);
  return _mm_crc32_u8(crc, k->proto);
}

static bool flow_eq(void *a, void *b) {
  const struct flow_key *x = a, *y = b;
  return ((x->src_ip == y->src_ip) & (x->dst_ip == y->dst_ip) &
          (x->src_port == y->src_port) & (x->dst_port == y->dst_port) &
          (x->proto == y->proto));
}

bool nf_init(void) {
  return map_allocate(flow_eq, flow_hash, QUOTA_CAPACITY, &state.flows) &&
         vector_allocate(sizeof(struct session), QUOTA_CAPACITY, NULL,
                         &state.entries) &&
         dchain_allocate(QUOTA_CAPACITY, &state.chain);
}

static inline bool parse_flow(uint8_t *packet, uint16_t length,
                              struct flow_key *key) {
  struct nf_ipv4_hdr *ip = nf_ipv4_header(packet, length);
  if (!ip)
    return false;
  struct nf_l4_ports *l4 = nf_l4_header(packet, length, ip);
  if (!l4)
    return false;
  *key = (struct flow_key){ip->src, ip->dst, l4->sport, l4->dport, ip->proto};
  return true;
}

/* Erases the session at `index` from the map (its key lives in the cell). */
static void session_forget(int index) {
  struct session *s;
  void *trash;
  vector_borrow(state.entries, index, (void **)&s);
  map_erase(state.flows, &s->key, &trash);
  vector_return(state.entries, index, s);
}

static void session_close(int index) {
  session_forget(index);
  dchain_free_index(state.chain, index);
}

static int session_open(struct flow_key *key, vigor_time_t now) {
  int index;
  if (!dchain_allocate_new_index(state.chain, &index, now)) {
    int victim;
    if (!dchain_expire_one_index(state.chain, &victim, now - QUOTA_IDLE))
      return -1; /* full of live sessions */
    session_forget(victim);
    if (!dchain_allocate_new_index(state.chain, &index, now))
      return -1;
  }
  struct session *s;
  vector_borrow(state.entries, index, (void **)&s);
  s->key = *key;
  s->packets = 0;
  s->last_seen = now;
  map_put(state.flows, &s->key, index);
  vector_return(state.entries, index, s);
  return index;
}

/* The live session of `key`, opened if there is none; -1 when no room. */
static int session_lookup(struct flow_key *key, vigor_time_t now) {
  int index;
  if (!map_get(state.flows, key, &index))
    return session_open(key, now);
  struct session *s;
  vector_borrow(state.entries, index, (void **)&s);
  bool stale = now - s->last_seen > QUOTA_IDLE;
  vector_return(state.entries, index, s);
  if (stale) {
    session_close(index);
    return session_lookup(key, now); /* retry: opens a fresh session */
  }
  return index;
}

int nf_process(uint16_t device, uint8_t *packet, uint16_t packet_length,
               vigor_time_t now) {
  if (device != LAN_PORT)
    return LAN_PORT;

  struct flow_key key;
  if (!parse_flow(packet, packet_length, &key))
    return NF_DROP;
  int index = session_lookup(&key, now);
  if (index < 0)
    return NF_DROP;

  dchain_rejuvenate_index(state.chain, index, now);
  struct session *s;
  vector_borrow(state.entries, index, (void **)&s);
  s->last_seen = now;
  bool pass = s->packets < QUOTA_PACKETS;
  if (pass)
    s->packets++;
  vector_return(state.entries, index, s);
  return pass ? WAN_PORT : NF_DROP;
}
