/*
 * csum_helper -- checksum guard: fills in the L4 checksum of LAN traffic and
 * drops WAN traffic with a bad one, blocking sources that send too many; the
 * checksum over the whole segment is the contract helper nf_checksum.
 *
 * Spec: exactly csum_loop's (the two must behave identically on every
 * packet; only the checksum routine differs):
 *   1. Sources whose last bad packet is more than GUARD_EXPIRATION ns old
 *      are forgotten (expiry runs first, on every packet).
 *   2. Only well-formed IPv4 TCP/UDP first fragments are handled whose
 *      ipv4.len covers the IPv4 header plus a whole L4 header (8 bytes for
 *      UDP, 20 for TCP) and whose ipv4.len bytes lie inside the frame
 *      (Ethernet padding after them is ignored); everything else is
 *      dropped, from either side.  The segment is the ipv4.len - IHL * 4
 *      bytes after the IPv4 header; its checksum covers the pseudo-header
 *      (ipv4.src, ipv4.dst, ipv4.proto, segment length) and the segment.
 *   3. LAN (device 0): checksum offload.  The L4 checksum field is computed
 *      afresh and written (a UDP result of 0 is written as 0xffff); nothing
 *      else changes.  The packet goes to the WAN (device 1).
 *   4. WAN (device 1): a source (ipv4.src) with GUARD_MAX_BAD recorded bad
 *      packets is blocked: its packets are dropped unchecked.  Otherwise a
 *      packet whose checksum verifies (or a UDP packet with checksum 0, "no
 *      checksum") goes, unchanged, to the LAN (device 0); a packet whose
 *      checksum does not verify is dropped and counted for its source (a new
 *      source is recorded with count 1; when the table is full it is not
 *      recorded), which refreshes the source's entry.
 *
 * State (the struct `state`):
 *   state.srcs     Map, capacity GUARD_CAPACITY; key: ipv4.src (the `ip`
 *                  field of a struct bad_source cell); value: index.
 *                  CRC32-hashed.
 *   state.entries  Vector of GUARD_CAPACITY struct bad_source {ip, count}.
 *   state.chain    DoubleChain of GUARD_CAPACITY indexes (age of the last
 *                  bad packet).
 *
 * Config:
 *   GUARD_CAPACITY (4096), GUARD_MAX_BAD (3), GUARD_EXPIRATION (10 s).
 *
 * Expected plan: complete analysis (nf_checksum is summarised, no payload
 * loop in the NF); shard the source group (state.srcs/entries/chain) by
 * ipv4.src on the WAN; LAN packets touch no state and may go to any core.
 */
#include <nmmintrin.h>

#include "nf.h"

#ifndef GUARD_CAPACITY
#define GUARD_CAPACITY 4096
#endif
#ifndef GUARD_MAX_BAD
#define GUARD_MAX_BAD 3
#endif
#ifndef GUARD_EXPIRATION
#define GUARD_EXPIRATION 10000000000LL
#endif

#define LAN_PORT 0
#define WAN_PORT 1
#define ETHER_HDR_LEN 14

struct bad_source {
  uint32_t ip; /* the map key: network order */
  uint32_t count;
};

static struct nf_state {
  struct Map *srcs;
  struct Vector *entries;
  struct DoubleChain *chain;
} state;

static unsigned src_hash(void *key) {
  return _mm_crc32_u32(0, *(const uint32_t *)key);
}

static bool src_eq(void *a, void *b) {
  return *(const uint32_t *)a == *(const uint32_t *)b;
}

/* ---- checksum ------------------------------------------------------------ */

/* The folded one's complement sum of pseudo-header and segment, host order. */
static uint16_t l4_sum(const struct nf_ipv4_hdr *ip, const uint8_t *l4,
                       uint16_t l4_len) {
  uint32_t src = nf_ntoh32(ip->src);
  uint32_t dst = nf_ntoh32(ip->dst);
  uint32_t pseudo = (src >> 16) + (src & 0xffffu) + (dst >> 16) +
                    (dst & 0xffffu) + ip->proto + l4_len;
  return nf_checksum(l4, l4_len, pseudo);
}

/* ---- the guard ------------------------------------------------------------ */

static bool source_blocked(uint32_t src) {
  int index;
  if (!map_get(state.srcs, &src, &index))
    return false;
  struct bad_source *entry;
  vector_borrow(state.entries, index, (void **)&entry);
  bool blocked = entry->count >= GUARD_MAX_BAD;
  vector_return(state.entries, index, entry);
  return blocked;
}

static void source_count_bad(uint32_t src, vigor_time_t now) {
  int index;
  struct bad_source *entry;
  if (map_get(state.srcs, &src, &index)) {
    dchain_rejuvenate_index(state.chain, index, now);
    vector_borrow(state.entries, index, (void **)&entry);
    entry->count++;
    vector_return(state.entries, index, entry);
    return;
  }
  if (!dchain_allocate_new_index(state.chain, &index, now))
    return;
  vector_borrow(state.entries, index, (void **)&entry);
  entry->ip = src;
  entry->count = 1;
  map_put(state.srcs, &entry->ip, index);
  vector_return(state.entries, index, entry);
}

bool nf_init(void) {
  return map_allocate(src_eq, src_hash, GUARD_CAPACITY, &state.srcs) &&
         vector_allocate(sizeof(struct bad_source), GUARD_CAPACITY, NULL,
                         &state.entries) &&
         dchain_allocate(GUARD_CAPACITY, &state.chain);
}

int nf_process(uint16_t device, uint8_t *packet, uint16_t packet_length,
               vigor_time_t now) {
  expire_items_single_map(state.chain, state.entries, state.srcs,
                          now - GUARD_EXPIRATION);

  struct nf_ipv4_hdr *ip = nf_ipv4_header(packet, packet_length);
  if (ip == NULL)
    return NF_DROP;
  struct nf_l4_ports *l4 = nf_l4_header(packet, packet_length, ip);
  if (l4 == NULL)
    return NF_DROP;
  uint16_t ip_len = nf_ntoh16(ip->total_length);
  uint16_t ihl = (uint16_t)((ip->version_ihl & 0x0f) * 4);
  uint16_t min_l4 = ip->proto == NF_IPPROTO_TCP ? 20 : 8;
  if (ip_len < ihl + min_l4 || ETHER_HDR_LEN + ip_len > packet_length)
    return NF_DROP;
  uint8_t *seg = (uint8_t *)l4;
  uint16_t seg_len = (uint16_t)(ip_len - ihl);
  uint8_t *csum_field = seg + nf_l4_csum_offset(ip->proto);

  if (device == LAN_PORT) {
    memset(csum_field, 0, 2);
    uint16_t csum = (uint16_t)~l4_sum(ip, seg, seg_len);
    if (csum == 0 && ip->proto == NF_IPPROTO_UDP)
      csum = 0xffff;
    csum = nf_hton16(csum);
    memcpy(csum_field, &csum, 2);
    return WAN_PORT;
  }

  if (source_blocked(ip->src))
    return NF_DROP;
  uint16_t stored;
  memcpy(&stored, csum_field, 2);
  if (ip->proto == NF_IPPROTO_UDP && stored == 0)
    return LAN_PORT;
  if (l4_sum(ip, seg, seg_len) == 0xffff)
    return LAN_PORT;
  source_count_bad(ip->src, now);
  return NF_DROP;
}
