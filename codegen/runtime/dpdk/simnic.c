/* simnic.c -- see simnic.h. */
#include "simnic.h"

#include <stdlib.h>
#include <string.h>

#include <rte_byteorder.h>
#include <rte_ethdev.h>
#include <rte_mbuf_dyn.h>
#include <rte_thash.h>

#include "rt.h"

struct replay_packet *sim_packets;
uint32_t sim_packet_count;
vigor_time_t sim_span;
int sim_index_offset = -1;
uint16_t sim_max_length;

/* Per worker queue: the trace indexes it receives from every device, in
   trace order.  Each device's RX callback delivers the run of packets on
   its own device at the cursor, so a worker sees its packets in trace
   order across devices (a reply never overtakes its request). */
struct sim_queue {
  uint32_t *indexes;
  uint32_t count;
  uint32_t next;
  uint32_t loops;
  int done;
} __attribute__((aligned(64))); /* each worker's cursor on its own cache line */

static struct sim_queue *queues; /* [queue] */
static unsigned queue_count;

static int loop_forever;
static uint32_t *assigned_reta_index;
static vigor_time_t first_time;


int simnic_load(const char *path, unsigned devices) {
  char error[512];
  int status;
  sim_packets = replay_load(path, devices, &sim_packet_count, error, sizeof(error), &status);
  if (sim_packets == NULL) {
    fprintf(stderr, "simnic: %s\n", error);
    return 0;
  }
  for (uint32_t i = 0; i < sim_packet_count; ++i) {
    if (sim_packets[i].length > SIM_MAX_FRAME) {
      fprintf(stderr, "simnic: %s: packet %u: %u bytes; the simulated NIC carries frames of up to %u bytes\n",
              path, i, sim_packets[i].length, SIM_MAX_FRAME);
      return 0;
    }
    if (sim_packets[i].length > sim_max_length)
      sim_max_length = sim_packets[i].length;
  }
  first_time = sim_packet_count ? sim_packets[0].time : 0;
  sim_span = sim_packet_count ? sim_packets[sim_packet_count - 1].time - first_time + 1 : 1;
  /* The mbuf carries its packet's trace index and the loop it was injected
     in, so no per-packet array is written by several cores (false sharing
     would serialise them). */
  static const struct rte_mbuf_dynfield desc = {
      .name = "maestro_trace_packet", .size = sizeof(uint64_t), .align = __alignof__(uint64_t)};
  sim_index_offset = rte_mbuf_dynfield_register(&desc);
  return sim_index_offset >= 0;
}

/* ---- RSS in software ---- */

struct flow_entry {
  uint32_t words[3];
  uint16_t device;
  uint8_t l4;
  uint8_t used;
  uint32_t hash;
};

static struct flow_entry *flow_cache;
static uint32_t flow_cache_mask;

/* Toeplitz of one tuple, looked up once per flow. */
static uint32_t flow_hash(uint16_t device, const uint32_t *words, int l4) {
  uint32_t h = (words[0] * 2654435761u) ^ (words[1] * 40503u) ^ (l4 ? words[2] : 0) ^ device;
  for (uint32_t i = h & flow_cache_mask;; i = (i + 1) & flow_cache_mask) {
    struct flow_entry *e = &flow_cache[i];
    if (!e->used) {
      memcpy(e->words, words, sizeof(e->words));
      e->device = device;
      e->l4 = (uint8_t)l4;
      e->used = 1;
      e->hash = rte_softrss((uint32_t *)words, l4 ? RTE_THASH_V4_L4_LEN : RTE_THASH_V4_L3_LEN,
                            maestro_rss_keys[device]);
      return e->hash;
    }
    if (e->device == device && e->l4 == l4 && e->words[0] == words[0] &&
        e->words[1] == words[1] && (!l4 || e->words[2] == words[2]))
      return e->hash;
  }
}

/* The RSS hash a NIC computes for a frame, or -1 when it hashes nothing
   (non-IPv4): such frames go to queue 0, as on real NICs. */
static int64_t rss_hash(const struct replay_packet *p) {
  const uint8_t *d = p->data;
  if (p->length < 34 || d[12] != 0x08 || d[13] != 0x00 || (d[14] >> 4) != 4 ||
      (d[14] & 0x0f) < 5)
    return -1;
  uint32_t words[3] = {0, 0, 0};
  words[0] = (uint32_t)d[26] << 24 | (uint32_t)d[27] << 16 | (uint32_t)d[28] << 8 | d[29];
  words[1] = (uint32_t)d[30] << 24 | (uint32_t)d[31] << 16 | (uint32_t)d[32] << 8 | d[33];
  unsigned l4_offset = 14 + (d[14] & 0x0fu) * 4;
  int fragment = ((d[20] & 0x3f) << 8 | d[21]) != 0 || (d[20] & 0x20);
  int l4 = maestro_rss_l4[p->device] && (d[23] == 6 || d[23] == 17) && !fragment &&
           l4_offset + 4 <= p->length;
  if (l4) /* rte_softrss's word: source port high, destination port low */
    words[2] = (uint32_t)d[l4_offset] << 24 | (uint32_t)d[l4_offset + 1] << 16 |
               (uint32_t)d[l4_offset + 2] << 8 | d[l4_offset + 3];
  return flow_hash(p->device, words, l4);
}

static uint16_t rx_inject(uint16_t port, uint16_t queue, struct rte_mbuf *pkts[],
                          uint16_t nb_pkts, uint16_t max_pkts, void *user) {
  (void)max_pkts;
  (void)user;
  struct sim_queue *q = &queues[queue];
  uint16_t filled = 0;
  for (; filled < nb_pkts; ++filled) {
    if (q->next == q->count) {
      if (!loop_forever || q->count == 0) {
        __atomic_store_n(&q->done, 1, __ATOMIC_RELAXED);
        break;
      }
      q->next = 0;
      q->loops++;
    }
    uint32_t index = q->indexes[q->next];
    if (sim_packets[index].device != port)
      break; /* the next packet arrives on another device */
    q->next++;
    const struct replay_packet *p = &sim_packets[index];
    struct rte_mbuf *m = pkts[filled];
    /* main.c sized the data room for the longest frame: a frame that does
       not fit is a bug, never a silent overflow. */
    if (p->length > m->buf_len - m->data_off)
      rte_panic("simnic: packet %u: %u bytes do not fit the mbuf's %u bytes\n", index, p->length,
                (unsigned)(m->buf_len - m->data_off));
    memcpy(rte_pktmbuf_mtod(m, uint8_t *), p->data, p->length);
    m->data_len = p->length;
    m->pkt_len = p->length;
    *RTE_MBUF_DYNFIELD(m, sim_index_offset, uint64_t *) = (uint64_t)q->loops << 32 | index;
  }
  for (uint16_t i = filled; i < nb_pkts; ++i)
    rte_pktmbuf_free(pkts[i]);
  return filled;
}

vigor_time_t sim_time(struct rte_mbuf *m) {
  uint64_t field = *RTE_MBUF_DYNFIELD(m, sim_index_offset, uint64_t *);
  return sim_packets[(uint32_t)field].time + (vigor_time_t)(field >> 32) * sim_span;
}

int simnic_start(unsigned devices, unsigned nqueues, int once) {

  queue_count = nqueues;
  loop_forever = !once;
  uint32_t slots = 1;
  while (slots < 2 * sim_packet_count + 2)
    slots <<= 1;
  flow_cache = calloc(slots, sizeof(*flow_cache));
  flow_cache_mask = slots - 1;
  queues = aligned_alloc(64, sizeof(*queues) * nqueues);
  if (queues != NULL)
    memset(queues, 0, sizeof(*queues) * nqueues);
  assigned_reta_index = calloc(sim_packet_count ? sim_packet_count : 1, sizeof(uint32_t));
  uint32_t *queue_of = calloc(sim_packet_count ? sim_packet_count : 1, sizeof(uint32_t));
  if (flow_cache == NULL || queues == NULL || assigned_reta_index == NULL || queue_of == NULL)
    return 0;
  for (uint32_t i = 0; i < sim_packet_count; ++i) {
    int64_t hash = rss_hash(&sim_packets[i]);
    uint32_t reta_index = hash < 0 ? 0 : (uint32_t)hash & (maestro_reta_size - 1);
    assigned_reta_index[i] = reta_index;
    queue_of[i] = hash < 0 ? 0 : maestro_reta[reta_index] % nqueues;
    queues[queue_of[i]].count++;
  }
  for (unsigned q = 0; q < nqueues; ++q) {
    queues[q].indexes = malloc(sizeof(uint32_t) * (queues[q].count ? queues[q].count : 1));
    if (queues[q].indexes == NULL)
      return 0;
    queues[q].count = 0;
  }
  for (uint32_t i = 0; i < sim_packet_count; ++i) {
    struct sim_queue *q = &queues[queue_of[i]];
    q->indexes[q->count++] = i;
  }
  free(queue_of);
  for (unsigned port = 0; port < devices; ++port)
    for (unsigned q = 0; q < nqueues; ++q)
      if (rte_eth_add_rx_callback((uint16_t)port, (uint16_t)q, rx_inject, NULL) == NULL)
        return 0;
  return 1;
}

void simnic_dump_assignment(FILE *out) {
  for (uint32_t i = 0; i < sim_packet_count; ++i) {
    int64_t hash = rss_hash(&sim_packets[i]);
    fprintf(out, "%u %u %s%08x %u %u\n", i, sim_packets[i].device, hash < 0 ? "-" : "",
            hash < 0 ? 0u : (uint32_t)hash, assigned_reta_index[i],
            hash < 0 ? 0u : maestro_reta[assigned_reta_index[i]] % queue_count);
  }
}

int simnic_queue_done(unsigned queue) {
  return __atomic_load_n(&queues[queue].done, __ATOMIC_RELAXED);
}
