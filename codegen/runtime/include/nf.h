/*
 * nf.h -- the NF contract (shared/design/NF_CONTRACT.md).
 *
 * One NF is one C file that includes this header and defines nf_init() and
 * nf_process().  All state lives in file-scope variables that nf_init()
 * allocates through the state API below; nf_process() allocates nothing.
 *
 * The state library (codegen/runtime/state/) implements this API with fixed
 * capacities and O(1) expected time per operation.  The analyses compile NFs
 * against this header, the reference runner and the generated programs link
 * the same library.
 *
 * Besides the contract proper, this header offers packet-parsing helpers
 * (struct layouts, bounds-checked header accessors, byte-order and checksum
 * helpers).  They are static inline so every NF that uses them carries its
 * own copy, which the analyses see as ordinary NF code.
 */
#ifndef MAESTRO_NF_H
#define MAESTRO_NF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* Entry points                                                        */
/* ------------------------------------------------------------------ */

/** Nanoseconds of a monotonic clock, passed in by the runtime. */
typedef int64_t vigor_time_t;

#ifndef NF_DEVICES
/** Number of devices; 0 = LAN/internal, 1 = WAN/external by convention. */
#define NF_DEVICES 2
#endif

/** nf_process() result: drop the packet. */
#define NF_DROP (-1)
/** nf_process() result: send the packet out of every device but its own. */
#define NF_FLOOD (-2)

/** Allocate and fill all state; called once per instance.  false = failure. */
bool nf_init(void);

/** Process one packet; returns an output device, NF_DROP or NF_FLOOD. */
int nf_process(uint16_t device, uint8_t *packet, uint16_t packet_length,
               vigor_time_t now);

/* ------------------------------------------------------------------ */
/* State API (exact names and signatures of the contract)              */
/* ------------------------------------------------------------------ */

typedef bool map_keys_equality(void *k1, void *k2);
typedef unsigned map_key_hash(void *k);
typedef void vector_init_elem(void *elem);

/* Rows of a count-min sketch. */
#define SKETCH_DEPTH 4

#include "nf_state_api.h"

/* ------------------------------------------------------------------ */
/* Packet helpers (not part of the state API)                          */
/* ------------------------------------------------------------------ */

#define NF_ETHER_TYPE_IPV4 0x0800
#define NF_IPPROTO_ICMP 1
#define NF_IPPROTO_TCP 6
#define NF_IPPROTO_UDP 17

struct nf_ether_hdr {
  uint8_t dst[6];
  uint8_t src[6];
  uint16_t ether_type; /* network order */
} __attribute__((packed));

struct nf_ipv4_hdr {
  uint8_t version_ihl;
  uint8_t tos;
  uint16_t total_length;
  uint16_t id;
  uint16_t frag;
  uint8_t ttl;
  uint8_t proto;
  uint16_t csum;
  uint32_t src; /* network order */
  uint32_t dst; /* network order */
} __attribute__((packed));

/* The first four bytes of TCP and UDP headers. */
struct nf_l4_ports {
  uint16_t sport; /* network order */
  uint16_t dport; /* network order */
} __attribute__((packed));

static inline uint16_t nf_ntoh16(uint16_t x) { return __builtin_bswap16(x); }
static inline uint16_t nf_hton16(uint16_t x) { return __builtin_bswap16(x); }
static inline uint32_t nf_ntoh32(uint32_t x) { return __builtin_bswap32(x); }
static inline uint32_t nf_hton32(uint32_t x) { return __builtin_bswap32(x); }

static inline struct nf_ether_hdr *nf_ether_header(uint8_t *packet,
                                                   uint16_t length) {
  if (length < sizeof(struct nf_ether_hdr))
    return NULL;
  return (struct nf_ether_hdr *)packet;
}

/* The IPv4 header of an untagged Ethernet frame, or NULL when the frame is
   not IPv4, is too short, or its IHL is invalid or exceeds the frame. */
static inline struct nf_ipv4_hdr *nf_ipv4_header(uint8_t *packet,
                                                 uint16_t length) {
  struct nf_ether_hdr *eth = nf_ether_header(packet, length);
  if (eth == NULL || eth->ether_type != nf_hton16(NF_ETHER_TYPE_IPV4))
    return NULL;
  if (length < sizeof(struct nf_ether_hdr) + sizeof(struct nf_ipv4_hdr))
    return NULL;
  struct nf_ipv4_hdr *ip =
      (struct nf_ipv4_hdr *)(packet + sizeof(struct nf_ether_hdr));
  unsigned ihl = ip->version_ihl & 0x0f;
  if ((ip->version_ihl >> 4) != 4 || ihl < 5 ||
      sizeof(struct nf_ether_hdr) + ihl * 4u > length)
    return NULL;
  return ip;
}

/* The TCP/UDP ports following `ip` (options skipped through IHL), or NULL
   when the protocol is neither, the packet is a non-first fragment, or the
   ports are truncated. */
static inline struct nf_l4_ports *nf_l4_header(uint8_t *packet,
                                               uint16_t length,
                                               struct nf_ipv4_hdr *ip) {
  if (ip->proto != NF_IPPROTO_TCP && ip->proto != NF_IPPROTO_UDP)
    return NULL;
  if ((nf_ntoh16(ip->frag) & 0x1fff) != 0)
    return NULL;
  unsigned offset = sizeof(struct nf_ether_hdr) + (ip->version_ihl & 0x0f) * 4u;
  if (offset + sizeof(struct nf_l4_ports) > length)
    return NULL;
  return (struct nf_l4_ports *)(packet + offset);
}

/* Offset of the L4 checksum field for TCP/UDP, relative to the L4 header. */
static inline unsigned nf_l4_csum_offset(uint8_t proto) {
  return proto == NF_IPPROTO_TCP ? 16u : 6u;
}

/* The 16-bit one's complement sum of `length` bytes at `data` (network
   order, an odd last byte padded with zero) added to `initial`, folded to
   16 bits and not complemented, as a host-order number: a TCP/UDP
   checksum field is nf_hton16(~nf_checksum(l4, l4_length, pseudo_sum)).
   A library function, not
   inline: the analyses summarise it instead of unrolling a loop over the
   payload (write payload loops with it, not by hand). */
uint16_t nf_checksum(const void *data, uint16_t length, uint32_t initial);

/* RFC 1624 incremental checksum update: `csum` (network order) covering a
   16-bit word that changes from `old` to `new_` (both network order). */
static inline uint16_t nf_csum_update16(uint16_t csum, uint16_t old,
                                        uint16_t new_) {
  uint32_t sum = (uint16_t)~nf_ntoh16(csum);
  sum += (uint16_t)~nf_ntoh16(old);
  sum += nf_ntoh16(new_);
  sum = (sum & 0xffff) + (sum >> 16);
  sum = (sum & 0xffff) + (sum >> 16);
  return nf_hton16((uint16_t)~sum);
}

/* The same for a 32-bit word (an IPv4 address). */
static inline uint16_t nf_csum_update32(uint16_t csum, uint32_t old,
                                        uint32_t new_) {
  csum = nf_csum_update16(csum, (uint16_t)(old & 0xffff),
                          (uint16_t)(new_ & 0xffff));
  return nf_csum_update16(csum, (uint16_t)(old >> 16),
                          (uint16_t)(new_ >> 16));
}

#endif /* MAESTRO_NF_H */
