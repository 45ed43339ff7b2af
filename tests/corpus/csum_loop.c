/*
 * csum_loop -- checksum guard: fills in the L4 checksum of LAN traffic and
 * drops WAN traffic with a bad one, blocking sources that send too many; the
 * checksum is a hand-written loop over the whole segment (rte_raw_cksum).
 *
 * Spec:
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
 * Expected plan: analysis must be incomplete (or summarise the loop
 * soundly): the hand-written payload loop runs up to 65535 / 2 times, bound
 * by ipv4.len.  Where a plan is made it must equal csum_helper's: shard the
 * source group by ipv4.src on the WAN; LAN packets touch no state.
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

struct ipv4_psd_header {
  uint32_t src_addr;
  uint32_t dst_addr;
  uint8_t zero;
  uint8_t proto;
  uint16_t len;
} __attribute__((packed));

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

/* ---- checksum, the way lib/net/rte_ip.h writes it ----------------------- */

static inline uint32_t raw_cksum(const void *buf, size_t len, uint32_t sum) {
  const uint8_t *p = buf;
  for (; len >= 2; len -= 2, p += 2) {
    uint16_t word;
    memcpy(&word, p, sizeof(word));
    sum += word;
  }
  if (len == 1) {
    uint16_t left = 0;
    *(uint8_t *)&left = *p;
    sum += left;
  }
  return sum;
}

static inline uint16_t raw_cksum_reduce(uint32_t sum) {
  sum = ((sum & 0xffff0000u) >> 16) + (sum & 0xffffu);
  sum = ((sum & 0xffff0000u) >> 16) + (sum & 0xffffu);
  return (uint16_t)sum;
}

/* The folded one's complement sum of pseudo-header and segment, in the
   byte order of the packet. */
static uint16_t l4_sum(const struct nf_ipv4_hdr *ip, const uint8_t *l4,
                       uint16_t l4_len) {
  struct ipv4_psd_header psd = {
      .src_addr = ip->src,
      .dst_addr = ip->dst,
      .zero = 0,
      .proto = ip->proto,
      .len = nf_hton16(l4_len),
  };
  uint32_t sum = raw_cksum(&psd, sizeof(psd), 0);
  sum = raw_cksum(l4, l4_len, sum);
  return raw_cksum_reduce(sum);
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
