/*
 * proto_limit -- per-protocol rate cap: at most PROTO_LIMIT packets of each
 * IPv4 protocol per time window, counted in a plain global array indexed by
 * ipv4.proto.
 *
 * Spec:
 *   1. Frames that are not well-formed IPv4 (shorter than Ethernet + IPv4
 *      header, EtherType not IPv4, version != 4, IHL < 5 or past the end of
 *      the frame) are dropped and counted nowhere.
 *   2. Time is cut into windows of PROTO_WINDOW ns: a packet at time `now`
 *      (>= 0) falls in window now / PROTO_WINDOW.  For each protocol value
 *      (ipv4.proto, 0..255: TCP, UDP, ICMP and any other, fragments
 *      included) the first PROTO_LIMIT packets of a window pass, from both
 *      devices together; the protocol's later packets in that window are
 *      dropped.  The count of a protocol restarts when its next packet falls
 *      in a later window.
 *   3. Passing packets go LAN (device 0) -> WAN (device 1) and WAN -> LAN,
 *      unchanged.
 *
 * State: no state API object.  Two plain global arrays indexed by
 * ipv4.proto:
 *   proto_hits[256]   packets passed in the protocol's current window.
 *   proto_epoch[256]  the window the protocol's count belongs to.
 *
 * Config:
 *   PROTO_LIMIT   packets per protocol per window (default 1000).
 *   PROTO_WINDOW  window length in ns (default 1 s).
 *
 * Expected plan: must lock: the arrays are written by every IPv4 packet and
 * indexed by ipv4.proto, which no NIC hashes, so every TCP packet (say)
 * from any core reaches proto_hits[6]; RSS cannot keep them together.  Per-
 * core copies would pass cores * PROTO_LIMIT packets per window.
 */
#include "nf.h"

#ifndef PROTO_LIMIT
#define PROTO_LIMIT 1000
#endif
#ifndef PROTO_WINDOW
#define PROTO_WINDOW 1000000000LL /* 1 s */
#endif

#define LAN_PORT 0
#define WAN_PORT 1

static uint32_t proto_hits[256];
static int64_t proto_epoch[256];

static inline int other_port(uint16_t device) {
  return device == LAN_PORT ? WAN_PORT : LAN_PORT;
}

/* True when one more packet of `proto` may pass at `now` (and counts it). */
static bool proto_admit(uint8_t proto, vigor_time_t now) {
  int64_t epoch = now / PROTO_WINDOW;
  if (proto_epoch[proto] != epoch) {
    proto_epoch[proto] = epoch;
    proto_hits[proto] = 0;
  }
  if (proto_hits[proto] >= PROTO_LIMIT)
    return false;
  proto_hits[proto]++;
  return true;
}

bool nf_init(void) {
  memset(proto_hits, 0, sizeof(proto_hits));
  memset(proto_epoch, 0, sizeof(proto_epoch));
  return true;
}

int nf_process(uint16_t device, uint8_t *packet, uint16_t packet_length,
               vigor_time_t now) {
  struct nf_ipv4_hdr *ip = nf_ipv4_header(packet, packet_length);
  if (ip == NULL)
    return NF_DROP;
  if (!proto_admit(ip->proto, now))
    return NF_DROP;
  return other_port(device);
}
