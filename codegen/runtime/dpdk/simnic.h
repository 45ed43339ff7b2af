/*
 * simnic.h -- the simulated NIC: a trace's packets distributed to queues
 * exactly as RSS would (software Toeplitz with the configured keys and
 * RETA, once per flow, before the run), injected into each queue by an RX
 * callback on the null ports, so the NF's code path is the real one.
 *
 * The data path costs little: mbufs of its own, recycled (the null ports'
 * RX pool is kept empty, so net_null allocates nothing); the callback hands
 * the next packets of the queue out whole bursts at a time, with a
 * reference it keeps, and TX's free only drops that reference.  Two ways:
 *  - window (short frames, the default): each queue's packets are laid out
 *    once, in the queue's order, back to back in an arena; a window of
 *    SIM_WINDOW mbufs per queue, which stays in cache, takes them in turn,
 *    each packet copied whole into its mbuf when delivered;
 *  - layout (frames longer than SIM_LAYOUT_ABOVE bytes on average, or
 *    --sim-layout): each packet has its own mbuf, filled once; when the run
 *    loops over the trace it is delivered again after restoring only the
 *    bytes the NF may write (config.c: maestro_write_*, from the analysis'
 *    packet_writes; the whole frame when they are unknown).
 * Measured on 64-byte frames the window is faster (a laid-out mbuf streams
 * 3 cache lines a packet through the caches).  Past SIM_LAYOUT_BUDGET the
 * window copies from the trace itself.  The callback prefetches what the
 * next burst needs.
 *
 * Order: a worker sees its queue's packets in trace order across devices;
 * a burst may hold packets of several devices (mbuf->port says which), so
 * the worker takes the device from the mbuf, as a real NIC sets it.
 */
#ifndef MAESTRO_SIMNIC_H
#define MAESTRO_SIMNIC_H

#include <stdint.h>
#include <stdio.h>

#include <rte_mbuf.h>
#include <rte_mbuf_dyn.h>

#include "nf.h"
#include "replay.h"

/* The loaded trace. */
extern struct replay_packet *sim_packets;
extern uint32_t sim_packet_count;
extern vigor_time_t sim_span; /* last time - first time + 1 */
/* The longest frame of the trace. */
extern uint16_t sim_max_length;

/* The longest frame the simulated NIC carries (a jumbo frame), as
   codegen/packets.py MAX_FRAME says. */
#define SIM_MAX_FRAME 9216
/* Most memory the per-queue layout may take (mbufs and saved bytes);
   past it the window of SIM_WINDOW mbufs per queue is used. */
#define SIM_LAYOUT_BUDGET (384u << 20)
#define SIM_WINDOW 1024u
#define SIM_LAYOUT_ABOVE 512u
enum { SIM_MODE_AUTO, SIM_MODE_LAYOUT, SIM_MODE_WINDOW };

/* What each mbuf carries besides its bytes (a dynamic field): the packet's
   trace index, the pass over the trace it belongs to, its trace time in the
   first pass, and the TSC when it was injected (or received, on a real
   NIC), for its latency at TX. */
struct sim_info {
  vigor_time_t base_time;
  uint64_t inject_tsc;
  uint32_t index;
  uint32_t loop;
};
extern int sim_info_offset;

/* Registers the dynamic field (main.c calls it for every run). */
int simnic_register_field(void);

static inline struct sim_info *sim_info(struct rte_mbuf *m) {
  return RTE_MBUF_DYNFIELD(m, sim_info_offset, struct sim_info *);
}

/* Reads a replay file (codegen/trace.py); 0 and a message on error (also
   for a frame longer than SIM_MAX_FRAME, naming its packet index). */
int simnic_load(const char *path, unsigned devices);

/* Set before simnic_start (one pass only): deliver in trace time.  A queue
   hands out a packet only once every other queue has delivered, and its
   worker processed, each packet stamped earlier (packets stamped alike may
   run at once).  So the cores never run apart in trace time, as they do
   not on a real NIC, where a packet's time is when it comes: verification
   needs that, since a table sharded per core is one table in the
   sequential NF, whose expiry sees one clock. */
extern int sim_paced;

/* Assigns every packet to a queue (RSS), lays the packets out per queue
   (`mode`: SIM_MODE_*) and registers the RX callbacks; `passes`: stop
   after that many passes over the trace, 0: loop until stopped. */
int simnic_start(unsigned devices, unsigned queues, uint32_t passes, int mode);
/* How the packets were laid out: "layout", "window" or "window-direct",
   and the bytes the mbufs, arenas and saved bytes take (main.c reports
   them in the final line). */
extern const char *sim_mode;
extern uint64_t sim_layout_bytes;

/* RETA index and queue a packet was given (for --dump-assignment). */
void simnic_dump_assignment(FILE *out);

/* Trace index and time of an mbuf the callback filled. */
static inline uint32_t sim_index(struct rte_mbuf *m) { return sim_info(m)->index; }
static inline vigor_time_t sim_time(struct rte_mbuf *m) {
  const struct sim_info *info = sim_info(m);
  return info->base_time + (vigor_time_t)info->loop * sim_span;
}

/* Whether worker queue `queue` has delivered its whole list (--once,
   --passes). */
int simnic_queue_done(unsigned queue);

#endif
