/*
 * dst_limit -- inbound per-host cap for a /24 LAN: at most DST_LIMIT WAN
 * packets per time window to each host, the host being the low byte of
 * ipv4.dst, counted in a plain global array indexed by that byte.
 *
 * Spec:
 *   1. LAN (device 0): every frame goes to the WAN (device 1), unparsed,
 *      unchanged and uncounted.
 *   2. WAN (device 1): frames that are not well-formed IPv4 (shorter than
 *      Ethernet + IPv4 header, EtherType not IPv4, version != 4, IHL < 5 or
 *      past the end of the frame) are dropped.  Otherwise the host is
 *      h = ipv4.dst & 0xff (the last byte of the address as written, e.g.
 *      7 for 10.0.0.7; addresses in different /24s with the same last byte
 *      share a host).  Time is cut into windows of DST_WINDOW ns (window
 *      now / DST_WINDOW).  The first DST_LIMIT packets to h in a window go
 *      to the LAN (device 0), unchanged; h's later packets in that window
 *      are dropped.  h's count restarts when its next packet falls in a
 *      later window.  Any protocol counts (TCP, UDP, ICMP, fragments).
 *
 * State: no state API object.  Two plain global arrays indexed by h:
 *   dst_hits[256]   packets passed to h in its current window.
 *   dst_epoch[256]  the window h's count belongs to.
 *
 * Config:
 *   DST_LIMIT   packets per host per window (default 1000).
 *   DST_WINDOW  window length in ns (default 1 s).
 *
 * Expected plan: shard dst_hits/dst_epoch on the WAN by the last byte of
 * ipv4.dst; LAN packets touch no state.  With the 4-tuple hashed, only the
 * low Toeplitz bits can depend on those 8 bits alone (key bits 87..93 set,
 * the rest 0), so the cores must follow the low RETA index bits (round robin
 * on 2 or 4 cores), not all 9.  Locking is sound but slow; sharding by the
 * whole ipv4.dst is unsound: 10.0.0.7 and 10.0.1.7 share dst_hits[7].
 */
#include "nf.h"

#ifndef DST_LIMIT
#define DST_LIMIT 1000
#endif
#ifndef DST_WINDOW
#define DST_WINDOW 1000000000LL /* 1 s */
#endif

#define LAN_PORT 0
#define WAN_PORT 1

static uint32_t dst_hits[256];
static int64_t dst_epoch[256];

static inline uint8_t host_byte(uint32_t addr_be) {
  return (uint8_t)(nf_ntoh32(addr_be) & 0xff);
}

static bool dst_admit(uint8_t host, vigor_time_t now) {
  int64_t epoch = now / DST_WINDOW;
  if (dst_epoch[host] != epoch) {
    dst_epoch[host] = epoch;
    dst_hits[host] = 0;
  }
  if (dst_hits[host] >= DST_LIMIT)
    return false;
  dst_hits[host]++;
  return true;
}

bool nf_init(void) {
  memset(dst_hits, 0, sizeof(dst_hits));
  memset(dst_epoch, 0, sizeof(dst_epoch));
  return true;
}

int nf_process(uint16_t device, uint8_t *packet, uint16_t packet_length,
               vigor_time_t now) {
  if (device == LAN_PORT)
    return WAN_PORT;
  struct nf_ipv4_hdr *ip = nf_ipv4_header(packet, packet_length);
  if (ip == NULL)
    return NF_DROP;
  if (!dst_admit(host_byte(ip->dst), now))
    return NF_DROP;
  return LAN_PORT;
}
