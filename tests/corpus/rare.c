/*
 * rare -- trial-licence forwarder: passes traffic between LAN and WAN until
 * a global budget of RARE_BUDGET packets is spent, then drops everything.
 *
 * Spec:
 *   1. Every frame received counts against the budget, whatever it is
 *      (malformed or not, from either device), including the frames that
 *      are dropped.  The budget is global: one count for all devices.
 *   2. A frame whose count is over RARE_BUDGET (the RARE_BUDGET + 1st frame
 *      and every later one) is dropped.
 *   3. Within the budget: frames shorter than an Ethernet header or whose
 *      EtherType is not IPv4 (0x0800) are dropped; IPv4 frames go LAN
 *      (device 0) -> WAN (device 1) and WAN -> LAN, unchanged.
 *   4. stats.rx[device], stats.tx and stats.dropped are kept for the
 *      operator; the NF never reads them.
 *
 * State: no state API object.  Two plain globals:
 *   packets_seen  uint64_t, frames received so far; read and written by
 *                 every packet; decides the output once over the budget.
 *   stats         struct stats of counters, written by every packet.
 *
 * Config:
 *   RARE_BUDGET  frames forwarded at most (default 6000).
 *
 * Expected plan: must lock (or use one atomic counter): packets_seen is one
 * global count over all cores -- with per-core copies the parallel program
 * forwards up to cores * RARE_BUDGET packets.  The analysis must report the
 * global as state written by every packet even though no state API call
 * touches it; a plan that treats the NF as stateless is unsound.
 */
#include "nf.h"

#ifndef RARE_BUDGET
#define RARE_BUDGET 6000
#endif

#define LAN_PORT 0
#define WAN_PORT 1

struct stats {
  uint64_t rx[NF_DEVICES];
  uint64_t tx;
  uint64_t dropped;
};

static uint64_t packets_seen;
static struct stats stats;

static inline bool budget_spent(void) {
  return ++packets_seen > RARE_BUDGET;
}

static inline bool is_ipv4(const uint8_t *packet, uint16_t length) {
  const struct nf_ether_hdr *eth = nf_ether_header((uint8_t *)packet, length);
  return eth != NULL && eth->ether_type == nf_hton16(NF_ETHER_TYPE_IPV4);
}

static int account(int out) {
  if (out == NF_DROP)
    stats.dropped++;
  else
    stats.tx++;
  return out;
}

bool nf_init(void) {
  packets_seen = 0;
  memset(&stats, 0, sizeof(stats));
  return true;
}

int nf_process(uint16_t device, uint8_t *packet, uint16_t packet_length,
               vigor_time_t now) {
  (void)now;
  if (device < NF_DEVICES)
    stats.rx[device]++;
  if (budget_spent())
    return account(NF_DROP);
  if (!is_ipv4(packet, packet_length))
    return account(NF_DROP);
  return account(device == LAN_PORT ? WAN_PORT : LAN_PORT);
}
