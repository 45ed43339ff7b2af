/*
 * pol -- traffic policer: a token bucket per destination IPv4 address on
 * WAN-to-LAN traffic.
 *
 * Spec:
 *   1. Buckets not used for more than POL_EXPIRATION_TIME ns are forgotten
 *      (expiry runs first, on every packet).
 *   2. A packet from the LAN (device 0) is forwarded to the WAN (device 1),
 *      unpoliced and unparsed (even a malformed frame).
 *   3. A packet from the WAN (device 1) that is not a well-formed IPv4
 *      frame is dropped.  Otherwise it is policed by the bucket of its
 *      ipv4.dst:
 *        - a destination without a bucket gets one, full (POL_BURST bytes);
 *          when the table is full there is no bucket for it and the packet
 *          is dropped (fail closed);
 *        - the bucket refills at POL_RATE bytes per second of time elapsed
 *          since its last packet, up to POL_BURST bytes;
 *        - the packet costs its frame length (packet_length, Ethernet header
 *          included).  If the bucket holds at least that many bytes, they
 *          are taken and the packet goes to the LAN (device 0); otherwise
 *          the packet is dropped and the bucket keeps its bytes.
 *      Every WAN packet, passed or dropped, refreshes its destination's
 *      bucket for expiry.  Packets are never modified.
 *   Credit is kept exactly, in units of 1e-9 byte (bytes * 10^9), so no
 *   refill is lost to rounding however often packets arrive.
 *
 * State:
 *   dst_map      Map, capacity POL_CAPACITY; key: uint32_t ipv4.dst (network
 *                order, stored in dst_keys); value: bucket index.
 *   dst_keys     Vector of POL_CAPACITY uint32_t: the policed destinations.
 *   dst_buckets  Vector of POL_CAPACITY struct pol_bucket {credit in
 *                nano-bytes, time of the last refill}.
 *   dst_chain    DoubleChain of POL_CAPACITY indexes.
 *
 * Config:
 *   POL_CAPACITY         number of destinations tracked (default 65536).
 *   POL_EXPIRATION_TIME  idle ns before a bucket is forgotten (default 10 s);
 *                        a forgotten bucket comes back full, so this should
 *                        be at least POL_BURST / POL_RATE seconds.
 *   POL_RATE             refill rate, bytes per second (default 1 000 000).
 *   POL_BURST            bucket size, bytes (default 100 000, at most 4e9).
 */
#include "nf.h"

#ifndef POL_CAPACITY
#define POL_CAPACITY 65536
#endif

#ifndef POL_EXPIRATION_TIME
#define POL_EXPIRATION_TIME 10000000000LL /* 10 s */
#endif

#ifndef POL_RATE
#define POL_RATE 1000000ULL /* bytes per second */
#endif

#ifndef POL_BURST
#define POL_BURST 100000ULL /* bytes */
#endif

#define LAN_DEVICE 0
#define WAN_DEVICE 1

/* Credit unit: 1 byte = POL_SCALE credit; 1 ns refills POL_RATE credit. */
#define POL_SCALE 1000000000ULL
#define POL_MAX_CREDIT ((uint64_t)(POL_BURST) * POL_SCALE)
/* After this many ns without packets a bucket is full whatever it held. */
#define POL_FULL_REFILL_NS (POL_MAX_CREDIT / (uint64_t)(POL_RATE) + 1)

_Static_assert((POL_RATE) > 0, "POL_RATE must be positive");
_Static_assert((POL_BURST) <= 4000000000ULL, "POL_BURST too large");

struct pol_bucket {
  uint64_t credit;   /* bytes * POL_SCALE */
  vigor_time_t last; /* time of the last refill */
};

static struct Map *dst_map;
static struct Vector *dst_keys;
static struct Vector *dst_buckets;
static struct DoubleChain *dst_chain;

static bool dst_key_eq(void *a, void *b) {
  return memcmp(a, b, sizeof(uint32_t)) == 0;
}

static unsigned dst_key_hash(void *key) {
  uint32_t h;
  memcpy(&h, key, sizeof(h));
  h ^= h >> 16;
  h *= 0x85ebca6bu;
  h ^= h >> 13;
  return h;
}

bool nf_init(void) {
  if (!map_allocate(dst_key_eq, dst_key_hash, POL_CAPACITY, &dst_map))
    return false;
  if (!vector_allocate(sizeof(uint32_t), POL_CAPACITY, NULL, &dst_keys))
    return false;
  if (!vector_allocate(sizeof(struct pol_bucket), POL_CAPACITY, NULL,
                       &dst_buckets))
    return false;
  if (!dchain_allocate(POL_CAPACITY, &dst_chain))
    return false;
  return true;
}

int nf_process(uint16_t device, uint8_t *packet, uint16_t packet_length,
               vigor_time_t now) {
  expire_items_single_map(dst_chain, dst_keys, dst_map,
                          now - POL_EXPIRATION_TIME);

  if (device == LAN_DEVICE)
    return WAN_DEVICE;

  struct nf_ipv4_hdr *ip = nf_ipv4_header(packet, packet_length);
  if (ip == NULL)
    return NF_DROP;

  uint32_t dst = ip->dst;
  int index;
  void *cell;
  if (map_get(dst_map, &dst, &index)) {
    dchain_rejuvenate_index(dst_chain, index, now);
  } else {
    if (!dchain_allocate_new_index(dst_chain, &index, now))
      return NF_DROP; /* table full: fail closed */
    vector_borrow(dst_keys, index, &cell);
    uint32_t *key = cell;
    *key = dst;
    map_put(dst_map, key, index);
    vector_return(dst_keys, index, cell);

    vector_borrow(dst_buckets, index, &cell);
    struct pol_bucket *fresh = cell;
    fresh->credit = POL_MAX_CREDIT;
    fresh->last = now;
    vector_return(dst_buckets, index, cell);
  }

  vector_borrow(dst_buckets, index, &cell);
  struct pol_bucket *bucket = cell;

  /* Refill for the time elapsed since the last packet. */
  uint64_t elapsed = now > bucket->last ? (uint64_t)(now - bucket->last) : 0;
  if (elapsed >= POL_FULL_REFILL_NS) {
    bucket->credit = POL_MAX_CREDIT;
  } else {
    bucket->credit += elapsed * (uint64_t)(POL_RATE);
    if (bucket->credit > POL_MAX_CREDIT)
      bucket->credit = POL_MAX_CREDIT;
  }
  if (now > bucket->last)
    bucket->last = now;

  /* Take the packet's bytes if the bucket holds them. */
  uint64_t cost = (uint64_t)packet_length * POL_SCALE;
  int out;
  if (bucket->credit >= cost) {
    bucket->credit -= cost;
    out = LAN_DEVICE;
  } else {
    out = NF_DROP;
  }
  vector_return(dst_buckets, index, cell);
  return out;
}
