/*
 * sbridge -- static Ethernet bridge.
 *
 * Spec:
 *   The bridge knows, from its configuration, on which device each of a
 *   fixed set of MAC addresses lives.  A frame is forwarded to the device of
 *   its destination MAC.  It is dropped when
 *     - it is shorter than an Ethernet header (14 bytes),
 *     - its destination MAC is not in the table (no flooding: unknown,
 *       broadcast and multicast destinations are dropped), or
 *     - its destination MAC lives on the device the frame arrived on (the
 *       frame needs no bridging).
 *   The frame is never modified.  The table is filled by nf_init and only
 *   read afterwards, so the NF has no per-packet writes; it does not expire.
 *
 * State (all filled in nf_init, read-only afterwards):
 *   table_map     Map, capacity SBRIDGE_CAPACITY; key: struct mac_key (the
 *                 6-byte MAC, stored in the `mac` field of a table_entries
 *                 cell); value: index into table_entries.
 *   table_entries Vector of SBRIDGE_CAPACITY struct sbridge_entry
 *                 {mac, device}: the MAC and the device it lives on.
 *
 * Config:
 *   SBRIDGE_CAPACITY      capacity of the table (default 64).
 *   SBRIDGE_STATIC_TABLE  comma-separated initialisers {{6 MAC bytes}, device}
 *                         (default: 02:00:00:00:00:0X for X = 1..4, on
 *                         device X % 2).  A MAC listed twice keeps its first
 *                         device.  nf_init fails if a device is not below
 *                         NF_DEVICES.
 */
#include "nf.h"

#ifndef SBRIDGE_CAPACITY
#define SBRIDGE_CAPACITY 64
#endif

#ifndef SBRIDGE_STATIC_TABLE
#define SBRIDGE_STATIC_TABLE                                                   \
  {{0x02, 0x00, 0x00, 0x00, 0x00, 0x01}, 1},                                   \
      {{0x02, 0x00, 0x00, 0x00, 0x00, 0x02}, 0},                               \
      {{0x02, 0x00, 0x00, 0x00, 0x00, 0x03}, 1},                               \
      {{0x02, 0x00, 0x00, 0x00, 0x00, 0x04}, 0}
#endif

struct mac_key {
  uint8_t addr[6];
} __attribute__((packed));

struct sbridge_entry {
  struct mac_key mac;
  uint16_t device;
} __attribute__((packed));

/* The configuration as written in SBRIDGE_STATIC_TABLE. */
struct sbridge_config_entry {
  uint8_t mac[6];
  uint16_t device;
};

static const struct sbridge_config_entry sbridge_static_table[] = {
    SBRIDGE_STATIC_TABLE};

#define SBRIDGE_STATIC_COUNT                                                   \
  (sizeof(sbridge_static_table) / sizeof(sbridge_static_table[0]))

_Static_assert(SBRIDGE_STATIC_COUNT <= SBRIDGE_CAPACITY,
               "SBRIDGE_STATIC_TABLE has more entries than SBRIDGE_CAPACITY");

static struct Map *table_map;
static struct Vector *table_entries;

static bool mac_key_eq(void *a, void *b) {
  return memcmp(a, b, sizeof(struct mac_key)) == 0;
}

static unsigned mac_key_hash(void *key) {
  struct mac_key *k = key;
  unsigned hash = 0;
  hash = (hash * 31u) ^ k->addr[0];
  hash = (hash * 31u) ^ k->addr[1];
  hash = (hash * 31u) ^ k->addr[2];
  hash = (hash * 31u) ^ k->addr[3];
  hash = (hash * 31u) ^ k->addr[4];
  hash = (hash * 31u) ^ k->addr[5];
  return hash ^ (hash >> 15);
}

bool nf_init(void) {
  if (!map_allocate(mac_key_eq, mac_key_hash, SBRIDGE_CAPACITY, &table_map))
    return false;
  if (!vector_allocate(sizeof(struct sbridge_entry), SBRIDGE_CAPACITY, NULL,
                       &table_entries))
    return false;

  for (unsigned i = 0; i < SBRIDGE_STATIC_COUNT; i++) {
    if (sbridge_static_table[i].device >= NF_DEVICES)
      return false;
    void *cell;
    vector_borrow(table_entries, (int)i, &cell);
    struct sbridge_entry *entry = cell;
    memcpy(entry->mac.addr, sbridge_static_table[i].mac,
           sizeof(entry->mac.addr));
    entry->device = sbridge_static_table[i].device;
    map_put(table_map, &entry->mac, (int)i);
    vector_return(table_entries, (int)i, cell);
  }
  return true;
}

int nf_process(uint16_t device, uint8_t *packet, uint16_t packet_length,
               vigor_time_t now) {
  (void)now;

  struct nf_ether_hdr *eth = nf_ether_header(packet, packet_length);
  if (eth == NULL)
    return NF_DROP;

  struct mac_key dst;
  memcpy(dst.addr, eth->dst, sizeof(dst.addr));

  int index;
  if (!map_get(table_map, &dst, &index))
    return NF_DROP; /* unknown destination: no flooding */

  void *cell;
  vector_borrow(table_entries, index, &cell);
  struct sbridge_entry *entry = cell;
  uint16_t out = entry->device;
  vector_return(table_entries, index, cell);

  if (out == device)
    return NF_DROP; /* destination on the input segment */
  return out;
}
