/* simnic.c -- see simnic.h. */
#include "simnic.h"

#include <stdlib.h>
#include <string.h>

#include <rte_branch_prediction.h>
#include <rte_byteorder.h>
#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_mbuf_dyn.h>
#include <rte_memcpy.h>
#include <rte_prefetch.h>
#include <rte_thash.h>

#include "rt.h"

struct replay_packet *sim_packets;
uint32_t sim_packet_count;
vigor_time_t sim_span;
int sim_info_offset = -1;
uint16_t sim_max_length;
const char *sim_mode = "none";
uint64_t sim_layout_bytes;

/* Bursts the callback hands out, and how far ahead it prefetches. */
#define SIM_BURST 32u
/* Fewest mbufs a looping queue holds: more than a worker has in flight
   (a burst per port per loop iteration, all sent before the next). */
#define SIM_MIN_SLOTS 1024u

/* The bytes of one packet the NF may write, restored from `saved` before
   its mbuf is delivered again. */
struct sim_restore {
  uint32_t saved; /* offset in the queue's saved bytes */
  uint16_t lo;    /* first byte of the frame */
  uint16_t len;   /* bytes (0: nothing to restore) */
};

/* A packet of a queue in the window mode: its bytes in the queue's arena. */
struct sim_frame {
  uint32_t offset; /* in the arena */
  uint16_t length;
  uint16_t device;
  uint32_t index;
  vigor_time_t time;
} __attribute__((packed));

/* Per worker queue: the trace indexes it receives from every device, in
   trace order, and the mbufs they are delivered in.  Laid out: slot s
   holds the packet at position s % count for good (nslots is a multiple of
   count); window: slots take whichever packet comes next, copied from the
   queue's arena (its packets' bytes back to back, in its order) or, past
   the budget, from the trace. */
struct sim_queue {
  struct rte_mbuf **slots;
  uint32_t nslots;
  uint32_t slot;   /* next slot to deliver */
  uint32_t ahead;  /* slots from `slot` on already prefetched */
  uint32_t *indexes; /* position -> trace index */
  uint32_t count;
  uint32_t next;   /* next position */
  uint32_t loops;  /* passes over the queue's packets completed */
  int laid_out;
  int wrapped;     /* every slot delivered once: restore before delivering */
  struct sim_restore *restore; /* per position (laid out) */
  struct sim_frame *frames; /* per position (window) */
  uint8_t *arena;
  uint8_t *saved;
  int done;
  /* sim_paced: every packet this queue delivered and stamped before this
     time is processed (written by its worker, read by the others) */
  vigor_time_t processed_before;
} __attribute__((aligned(64))); /* each worker's cursor on its own cache lines */

static struct sim_queue *queues; /* [queue] */
static unsigned queue_count;

static uint32_t passes; /* 0: loop until stopped */
int sim_paced;
static uint32_t *assigned_reta_index;
static vigor_time_t first_time;

int simnic_register_field(void) {
  static const struct rte_mbuf_dynfield desc = {
      .name = "maestro_packet_info", .size = sizeof(struct sim_info),
      .align = __alignof__(struct sim_info)};
  if (sim_info_offset < 0)
    sim_info_offset = rte_mbuf_dynfield_register(&desc);
  return sim_info_offset >= 0;
}

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
  return simnic_register_field();
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

/* The bytes of packet `p` the NF may write: [*lo, *lo + return value). */
static uint16_t write_range(const struct replay_packet *p, uint16_t *lo) {
  *lo = 0;
  if (!maestro_writes_known)
    return p->length;
  int low = 1 << 30, high = 0;
  if (maestro_write_frame_lo < maestro_write_frame_hi) {
    low = maestro_write_frame_lo;
    high = maestro_write_frame_hi;
  }
  if (maestro_write_l4_lo < maestro_write_l4_hi) {
    /* L4 bytes: where the IHL puts them, or at 34 for an NF that ignores it */
    int ihl_l4 = p->length > 14 ? 14 + (p->data[14] & 0x0f) * 4 : 34;
    int first = ihl_l4 < 34 ? ihl_l4 : 34, last = ihl_l4 > 34 ? ihl_l4 : 34;
    if (first + maestro_write_l4_lo < low)
      low = first + maestro_write_l4_lo;
    if (last + maestro_write_l4_hi > high)
      high = last + maestro_write_l4_hi;
  }
  if (high > p->length)
    high = p->length;
  if (low >= high)
    return 0;
  *lo = (uint16_t)low;
  return (uint16_t)(high - low);
}

/* Where a pktmbuf's data starts (for prefetching without reading it). */
static inline void *slot_data(struct rte_mbuf *m) {
  return (char *)m + sizeof(struct rte_mbuf) + RTE_PKTMBUF_HEADROOM;
}

static void fill_slot(struct rte_mbuf *m, uint32_t index) {
  const struct replay_packet *p = &sim_packets[index];
  /* the pool's data room holds the longest frame: a frame that does not
     fit is a bug, never a silent overflow. */
  if (p->length > m->buf_len - m->data_off)
    rte_panic("simnic: packet %u: %u bytes do not fit the mbuf's %u bytes\n", index, p->length,
              (unsigned)(m->buf_len - m->data_off));
  memcpy(rte_pktmbuf_mtod(m, uint8_t *), p->data, p->length);
  m->data_len = p->length;
  m->pkt_len = p->length;
  m->port = p->device;
  struct sim_info *info = sim_info(m);
  info->index = index;
  info->base_time = p->time;
}

static inline void fill_from_arena(struct rte_mbuf *m, const struct sim_queue *q,
                                   const struct sim_frame *f) {
  rte_memcpy(rte_pktmbuf_mtod(m, uint8_t *), q->arena + f->offset, f->length);
  m->data_len = f->length;
  m->pkt_len = f->length;
  m->port = f->device;
  struct sim_info *info = sim_info(m);
  info->index = f->index;
  info->base_time = f->time;
}

/* The trace time of the packet at position `pos` of a queue (INT64_MAX
   past its last). */
static vigor_time_t time_at(const struct sim_queue *q, uint32_t pos) {
  return pos < q->count ? sim_packets[q->indexes[pos]].time : INT64_MAX;
}

/* sim_paced: the latest time this queue may deliver now.  Called when its
   worker asks for more, so all it delivered before is processed. */
static vigor_time_t paced_limit(unsigned queue) {
  struct sim_queue *q = &queues[queue];
  __atomic_store_n(&q->processed_before, time_at(q, q->next), __ATOMIC_RELEASE);
  vigor_time_t limit = INT64_MAX;
  for (unsigned other = 0; other < queue_count; ++other) {
    vigor_time_t t = __atomic_load_n(&queues[other].processed_before, __ATOMIC_ACQUIRE);
    if (other != queue && t < limit)
      limit = t;
  }
  return limit;
}

static uint16_t rx_inject(uint16_t port, uint16_t queue, struct rte_mbuf *pkts[],
                          uint16_t nb_pkts, uint16_t max_pkts, void *user) {
  (void)port;
  (void)user;
  struct sim_queue *q = &queues[queue];
  if (unlikely(nb_pkts)) /* net_null's pool is kept empty; should it give mbufs, return them */
    rte_pktmbuf_free_bulk(pkts, nb_pkts);
  uint64_t tsc = rte_rdtsc();
  vigor_time_t limit = sim_paced ? paced_limit(queue) : INT64_MAX;
  uint16_t filled = 0;
  for (; filled < max_pkts; ++filled) {
    if (q->next == q->count) {
      if ((passes && q->loops + 1 >= passes) || q->count == 0) {
        __atomic_store_n(&q->done, 1, __ATOMIC_RELAXED);
        break;
      }
      q->next = 0;
      q->loops++;
    }
    if (sim_paced && time_at(q, q->next) > limit)
      break; /* another queue has earlier packets to process first */
    struct rte_mbuf *m = q->slots[q->slot];
    if (unlikely(rte_mbuf_refcnt_read(m) != 1))
      rte_panic("simnic: queue %u: mbuf %u is still in use when its turn comes again\n", queue, q->slot);
    if (q->laid_out) {
      if (q->wrapped) {
        const struct sim_restore *r = &q->restore[q->next];
        if (r->len)
          memcpy(rte_pktmbuf_mtod(m, uint8_t *) + r->lo, q->saved + r->saved, r->len);
      }
    } else if (q->frames != NULL) {
      fill_from_arena(m, q, &q->frames[q->next]);
    } else {
      fill_slot(m, q->indexes[q->next]);
    }
    struct sim_info *info = sim_info(m);
    info->loop = q->loops;
    info->inject_tsc = tsc;
    rte_mbuf_refcnt_set(m, 2); /* ours stays: TX's free drops the other */
    pkts[filled] = m;
    q->next++;
    if (++q->slot == q->nslots) {
      q->slot = 0;
      q->wrapped = 1;
    }
  }
  /* The next burst's mbufs and bytes, while this one is processed. */
  q->ahead = q->ahead > filled ? q->ahead - filled : 0;
  for (; q->nslots && q->ahead < SIM_BURST; ++q->ahead) {
    if (q->laid_out) {
      uint32_t s = q->slot + q->ahead;
      struct rte_mbuf *m = q->slots[s >= q->nslots ? s % q->nslots : s];
      rte_prefetch0(m);
      rte_prefetch0((char *)m + RTE_CACHE_LINE_SIZE);
      rte_prefetch0(slot_data(m));
    } else if (q->frames != NULL) { /* the window's mbufs stay in cache: the bytes to copy */
      uint32_t pos = q->next + q->ahead;
      rte_prefetch0(q->arena + q->frames[pos >= q->count ? pos % q->count : pos].offset);
    }
  }
  return filled;
}

/* Lays the queue's packets out in mbufs of `pool` (or a window of them). */
static int lay_out(struct sim_queue *q, struct rte_mempool *pool, int laid_out) {
  q->laid_out = laid_out;
  if (laid_out) {
    uint32_t copies = 1;
    if (passes != 1 && q->count)
      copies = (SIM_MIN_SLOTS + q->count - 1) / q->count;
    q->nslots = q->count * copies;
  } else {
    q->nslots = q->count ? SIM_WINDOW : 0;
  }
  q->slots = malloc(sizeof(*q->slots) * (q->nslots ? q->nslots : 1));
  if (q->slots == NULL)
    return 0;
  if (q->nslots && rte_pktmbuf_alloc_bulk(pool, q->slots, q->nslots) != 0) {
    fprintf(stderr, "simnic: cannot allocate %u mbufs\n", q->nslots);
    return 0;
  }
  if (!laid_out)
    return 1;
  for (uint32_t s = 0; s < q->nslots; ++s)
    fill_slot(q->slots[s], q->indexes[s % q->count]);
  if (passes == 1)
    return 1;
  uint64_t saved = 0;
  q->restore = malloc(sizeof(*q->restore) * (q->count ? q->count : 1));
  if (q->restore == NULL)
    return 0;
  for (uint32_t pos = 0; pos < q->count; ++pos) {
    struct sim_restore *r = &q->restore[pos];
    r->len = write_range(&sim_packets[q->indexes[pos]], &r->lo);
    r->saved = (uint32_t)saved;
    saved += r->len;
  }
  q->saved = malloc(saved ? saved : 1);
  if (q->saved == NULL)
    return 0;
  for (uint32_t pos = 0; pos < q->count; ++pos) {
    const struct sim_restore *r = &q->restore[pos];
    memcpy(q->saved + r->saved, sim_packets[q->indexes[pos]].data + r->lo, r->len);
  }
  sim_layout_bytes += saved + sizeof(*q->restore) * q->count;
  return 1;
}

/* The window's arena of a queue: its packets' bytes back to back (each on
   whole cache lines) and where each is; 0 when it cannot be allocated. */
static int build_arena(struct sim_queue *q) {
  uint64_t bytes = 0;
  for (uint32_t pos = 0; pos < q->count; ++pos)
    bytes += RTE_ALIGN_CEIL(sim_packets[q->indexes[pos]].length, RTE_CACHE_LINE_SIZE);
  if (bytes > UINT32_MAX)
    return 0;
  q->frames = malloc(sizeof(*q->frames) * (q->count ? q->count : 1));
  q->arena = aligned_alloc(RTE_CACHE_LINE_SIZE, bytes ? bytes : RTE_CACHE_LINE_SIZE);
  if (q->frames == NULL || q->arena == NULL) {
    free(q->frames);
    free(q->arena);
    q->frames = NULL;
    q->arena = NULL;
    return 0;
  }
  uint32_t offset = 0;
  for (uint32_t pos = 0; pos < q->count; ++pos) {
    const struct replay_packet *p = &sim_packets[q->indexes[pos]];
    struct sim_frame *f = &q->frames[pos];
    f->offset = offset;
    f->length = p->length;
    f->device = p->device;
    f->index = q->indexes[pos];
    f->time = p->time;
    memcpy(q->arena + offset, p->data, p->length);
    offset += (uint32_t)RTE_ALIGN_CEIL(p->length, RTE_CACHE_LINE_SIZE);
  }
  sim_layout_bytes += bytes + sizeof(*q->frames) * q->count;
  return 1;
}

int simnic_start(unsigned devices, unsigned nqueues, uint32_t pass_count, int mode) {
  queue_count = nqueues;
  passes = pass_count;
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
  for (unsigned q = 0; q < nqueues; ++q)
    queues[q].processed_before = time_at(&queues[q], 0);
  free(flow_cache); /* the flows are hashed: nothing on the data path looks them up */
  flow_cache = NULL;

  /* One mbuf per laid-out packet (copies of a short queue's packets up to
     SIM_MIN_SLOTS when looping), unless that passes the budget. */
  uint32_t room = (uint32_t)RTE_ALIGN_CEIL(sim_max_length ? sim_max_length : 1, RTE_CACHE_LINE_SIZE);
  uint64_t mbuf_bytes = sizeof(struct rte_mbuf) + RTE_PKTMBUF_HEADROOM + room + RTE_CACHE_LINE_SIZE;
  uint64_t total = 0, bytes = 0, frame_bytes = 0;
  for (uint32_t i = 0; i < sim_packet_count; ++i)
    frame_bytes += RTE_ALIGN_CEIL(sim_packets[i].length, RTE_CACHE_LINE_SIZE);
  for (unsigned q = 0; q < nqueues; ++q) {
    uint32_t count = queues[q].count, copies = 1;
    if (passes != 1 && count)
      copies = (SIM_MIN_SLOTS + count - 1) / count;
    total += (uint64_t)count * copies;
    bytes += (uint64_t)count * copies * mbuf_bytes + (passes == 1 ? 0 : (uint64_t)count * 16);
  }
  /* By default the window: its mbufs stay in cache and copying a short
     frame costs less than streaming a laid-out mbuf through the caches (3
     cache lines a packet, 2 of them written back); long frames are laid
     out, restoring only what the NF writes (SIM_LAYOUT_ABOVE). */
  int laid_out = mode == SIM_MODE_LAYOUT ||
                 (mode == SIM_MODE_AUTO && sim_packet_count &&
                  frame_bytes / sim_packet_count > SIM_LAYOUT_ABOVE);
  laid_out = laid_out && bytes <= SIM_LAYOUT_BUDGET;
  int arena = !laid_out && frame_bytes + 24ull * sim_packet_count <= SIM_LAYOUT_BUDGET;
  if (!laid_out)
    total = (uint64_t)SIM_WINDOW * nqueues;
  sim_mode = laid_out ? "layout" : arena ? "window" : "window-direct";
  sim_layout_bytes = total * mbuf_bytes;
  struct rte_mempool *pool = rte_pktmbuf_pool_create(
      "sim_slots", (unsigned)(total ? total : 1), 0, 0, (uint16_t)(room + RTE_PKTMBUF_HEADROOM),
      rte_socket_id());
  if (pool == NULL) {
    fprintf(stderr, "simnic: cannot create a pool of %" PRIu64 " mbufs: %s\n", total,
            rte_strerror(rte_errno));
    return 0;
  }
  for (unsigned q = 0; q < nqueues; ++q)
    if (!lay_out(&queues[q], pool, laid_out))
      return 0;
  for (unsigned q = 0; q < nqueues && arena; ++q)
    if (!build_arena(&queues[q]))
      sim_mode = "window-direct"; /* that queue copies from the trace */
  for (unsigned port = 0; port < devices; ++port)
    for (unsigned q = 0; q < nqueues; ++q)
      if (rte_eth_add_rx_callback((uint16_t)port, (uint16_t)q, rx_inject, NULL) == NULL)
        return 0;
  return 1;
}

void simnic_dump_assignment(FILE *out) {
  /* the flows are hashed again (the cache was freed after the assignment) */
  uint32_t slots = 1;
  while (slots < 2 * sim_packet_count + 2)
    slots <<= 1;
  flow_cache = calloc(slots, sizeof(*flow_cache));
  flow_cache_mask = slots - 1;
  if (flow_cache == NULL)
    rte_exit(EXIT_FAILURE, "out of memory for the assignment dump\n");
  for (uint32_t i = 0; i < sim_packet_count; ++i) {
    int64_t hash = rss_hash(&sim_packets[i]);
    fprintf(out, "%u %u %s%08x %u %u\n", i, sim_packets[i].device, hash < 0 ? "-" : "",
            hash < 0 ? 0u : (uint32_t)hash, assigned_reta_index[i],
            hash < 0 ? 0u : maestro_reta[assigned_reta_index[i]] % queue_count);
  }
  free(flow_cache);
  flow_cache = NULL;
}

int simnic_queue_done(unsigned queue) {
  return __atomic_load_n(&queues[queue].done, __ATOMIC_RELAXED);
}
