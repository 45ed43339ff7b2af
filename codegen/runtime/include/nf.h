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

struct Map;
struct Vector;
struct DoubleChain;
struct Sketch;

typedef bool map_keys_equality(void *k1, void *k2);
typedef unsigned map_key_hash(void *k);
typedef void vector_init_elem(void *elem);

/* Map: fixed-capacity hash map from a key (kept alive by the caller,
   usually in a vector cell) to an int.  map_put on a full map, or of a key
   already present, leaves the map unchanged. */
int map_allocate(map_keys_equality *keq, map_key_hash *khash,
                 unsigned capacity, struct Map **map_out);
int map_get(struct Map *map, void *key, int *value_out); /* 1 found, 0 not */
void map_put(struct Map *map, void *key, int value);
void map_erase(struct Map *map, void *key, void **trash);
unsigned map_size(struct Map *map);

/* Vector: fixed array of fixed-size cells, each initialised by init_elem
   (zero-filled when init_elem is NULL). */
int vector_allocate(int elem_size, unsigned capacity,
                    vector_init_elem *init_elem, struct Vector **vector_out);
void vector_borrow(struct Vector *vector, int index, void **val_out);
void vector_return(struct Vector *vector, int index, void *value);

/* DoubleChain: allocator of indexes 0..index_range-1 that remembers when
   each index was last touched; expiry frees the least recently touched. */
int dchain_allocate(int index_range, struct DoubleChain **chain_out);
int dchain_allocate_new_index(struct DoubleChain *chain, int *index_out,
                              vigor_time_t time); /* 0 when full */
int dchain_rejuvenate_index(struct DoubleChain *chain, int index,
                            vigor_time_t time);
int dchain_expire_one_index(struct DoubleChain *chain, int *index_out,
                            vigor_time_t time);
int dchain_is_index_allocated(struct DoubleChain *chain, int index);
int dchain_free_index(struct DoubleChain *chain, int index);

/* Expirator: frees every index last touched before `time`, erasing from
   `map` the key stored in `vector` at that index; returns how many. */
int expire_items_single_map(struct DoubleChain *chain, struct Vector *vector,
                            struct Map *map, vigor_time_t time);

/* Consistent-hash table (Maglev-style).  `cht` is a vector of
   cht_height * backend_capacity uint32_t cells: row r holds every backend
   in order of preference for hashes that fall in row r.  cht_height must be
   a prime larger than backend_capacity. */
int cht_fill_cht(struct Vector *cht, uint32_t cht_height,
                 uint32_t backend_capacity);
int cht_find_preferred_available_backend(uint64_t hash, struct Vector *cht,
                                         struct DoubleChain *active_backends,
                                         uint32_t cht_height,
                                         uint32_t backend_capacity,
                                         int *chosen_backend); /* 0 when none */

/* Count-min sketch: SKETCH_DEPTH rows of `capacity` counters each.  A
   caller computes the hashes of one key, then refreshes, fetches or touches
   that key's buckets.  Buckets not touched since `time` are reset by
   sketch_expire. */
#define SKETCH_DEPTH 4
int sketch_allocate(map_key_hash *kh, uint32_t capacity, uint16_t threshold,
                    struct Sketch **sketch_out);
void sketch_compute_hashes(struct Sketch *sketch, void *key);
void sketch_refresh(struct Sketch *sketch, vigor_time_t now);
int sketch_fetch(struct Sketch *sketch); /* 1 when the estimate > threshold */
int sketch_touch_buckets(struct Sketch *sketch, vigor_time_t now);
void sketch_expire(struct Sketch *sketch, vigor_time_t time);

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
