/*
 * simnic.h -- the simulated NIC: a trace's packets distributed to queues
 * exactly as RSS would (software Toeplitz with the configured keys and
 * RETA, once per flow), injected into each queue by an RX callback on the
 * null ports, so the NF's code path is the real one.
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
/* Offset of the dynamic mbuf field carrying a packet's trace index. */
extern int sim_index_offset;
/* The longest frame of the trace: main.c sizes the mbufs' data room for it. */
extern uint16_t sim_max_length;

/* The longest frame the simulated NIC carries (a jumbo frame), as
   codegen/packets.py MAX_FRAME says. */
#define SIM_MAX_FRAME 9216

/* Reads a replay file (codegen/trace.py); 0 and a message on error (also
   for a frame longer than SIM_MAX_FRAME, naming its packet index). */
int simnic_load(const char *path, unsigned devices);

/* Assigns every packet to a queue (RSS), prepares per-queue lists and
   registers the RX callbacks; `once`: stop after one pass, else loop. */
int simnic_start(unsigned devices, unsigned queues, int once);

/* RETA index and queue a packet was given (for --dump-assignment). */
void simnic_dump_assignment(FILE *out);

/* Trace index and time of an mbuf the callback filled. */
static inline uint32_t sim_index(struct rte_mbuf *m) {
  return (uint32_t)*RTE_MBUF_DYNFIELD(m, sim_index_offset, uint64_t *);
}
vigor_time_t sim_time(struct rte_mbuf *m);

/* Whether worker queue `queue` has delivered its whole list (--once). */
int simnic_queue_done(unsigned queue);

#endif
