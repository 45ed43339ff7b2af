/*
 * scrub -- packet normalizer for traffic leaving the LAN: raises low TTLs
 * and replaces the IPv4 ID of unfragmented packets with a global sequence
 * (pf's "scrub random-id" made deterministic), kept in a block-scope static.
 *
 * Spec:
 *   1. Frames shorter than an Ethernet header are dropped.  Frames whose
 *      EtherType is not IPv4 pass unchanged, LAN (device 0) -> WAN
 *      (device 1) and WAN -> LAN.  IPv4 frames whose header is not
 *      well-formed (too short, version != 4, IHL < 5 or past the frame) are
 *      dropped.
 *   2. WAN (device 1) IPv4 packets go to the LAN (device 0), unchanged.
 *   3. LAN (device 0) IPv4 packets, any protocol:
 *        - ipv4.ttl below SCRUB_MIN_TTL is raised to SCRUB_MIN_TTL;
 *        - a packet that is not a fragment (MF flag clear and fragment
 *          offset 0) gets ipv4.id = the next number of the sequence
 *          SCRUB_FIRST_ID, SCRUB_FIRST_ID + 1, ... (wrapping from 65535 to
 *          0), one number per such packet; fragments keep their ID and take
 *          no number (their reassembly needs it);
 *        - the IPv4 header checksum is updated incrementally;
 *      and go to the WAN (device 1).
 *
 * State: no state API object.  `next_id`, a static variable inside
 * next_ip_id(), is read and written by every unfragmented LAN IPv4 packet,
 * and its value is written into the packet.
 *
 * Config:
 *   SCRUB_MIN_TTL   lowest TTL let out (default 64).
 *   SCRUB_FIRST_ID  first ID of the sequence (default 1).
 *
 * Expected plan: must lock: next_id is one sequence for all LAN packets;
 * per-core copies hand out the same ID on every core (the parallel output
 * then matches no serial order).  The analysis must see the function-local
 * static as state although no state API call touches it.
 */
#include "nf.h"

#ifndef SCRUB_MIN_TTL
#define SCRUB_MIN_TTL 64
#endif
#ifndef SCRUB_FIRST_ID
#define SCRUB_FIRST_ID 1
#endif

#define LAN_PORT 0
#define WAN_PORT 1
#define IPV4_MF 0x2000
#define IPV4_OFFSET_MASK 0x1fff

static uint16_t next_ip_id(void) {
  static uint16_t next_id = SCRUB_FIRST_ID;
  return next_id++;
}

static inline bool is_fragment(const struct nf_ipv4_hdr *ip) {
  return (nf_ntoh16(ip->frag) & (IPV4_MF | IPV4_OFFSET_MASK)) != 0;
}

/* Raises the TTL to SCRUB_MIN_TTL, fixing the header checksum. */
static void raise_ttl(struct nf_ipv4_hdr *ip) {
  if (ip->ttl >= SCRUB_MIN_TTL)
    return;
  uint16_t old_word, new_word;
  memcpy(&old_word, &ip->ttl, sizeof(old_word)); /* ttl, proto */
  ip->ttl = SCRUB_MIN_TTL;
  memcpy(&new_word, &ip->ttl, sizeof(new_word));
  ip->csum = nf_csum_update16(ip->csum, old_word, new_word);
}

static void renumber(struct nf_ipv4_hdr *ip) {
  uint16_t old_id = ip->id;
  uint16_t new_id = nf_hton16(next_ip_id());
  ip->id = new_id;
  ip->csum = nf_csum_update16(ip->csum, old_id, new_id);
}

bool nf_init(void) { return true; }

int nf_process(uint16_t device, uint8_t *packet, uint16_t packet_length,
               vigor_time_t now) {
  (void)now;
  struct nf_ether_hdr *eth = nf_ether_header(packet, packet_length);
  if (eth == NULL)
    return NF_DROP;
  int other = device == LAN_PORT ? WAN_PORT : LAN_PORT;
  if (eth->ether_type != nf_hton16(NF_ETHER_TYPE_IPV4))
    return other;
  struct nf_ipv4_hdr *ip = nf_ipv4_header(packet, packet_length);
  if (ip == NULL)
    return NF_DROP;
  if (device != LAN_PORT)
    return LAN_PORT;
  raise_ttl(ip);
  if (!is_fragment(ip))
    renumber(ip);
  return WAN_PORT;
}
