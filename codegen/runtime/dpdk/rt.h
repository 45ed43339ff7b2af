/*
 * rt.h -- the parallel runtime shared by every generated program.
 *
 * A generated program is: this runtime (main.c: EAL, ports, lcore loop,
 * stats; simnic.c: the simulated NIC; parallel_state.c: the state API over
 * the state library with per-object sharding, replication or locks), one
 * copy of the unchanged NF per worker (compiled with -include par_rename.h,
 * so each copy has its own file-scope state), and config.c, generated from
 * the plan (codegen/generator.py).
 *
 * Variables of the NF the plan shares (a packet counter every packet
 * writes) are linked as one instance for every copy (share_variables.sh);
 * since nf_process reads and writes them directly, no state call can take
 * a lock for them, so with such variables every packet runs exclusively
 * (maestro_exclusive).
 */
#ifndef MAESTRO_RT_H
#define MAESTRO_RT_H

#include <stdbool.h>
#include <stdint.h>

#include "nf.h"

#define MAESTRO_MAX_WORKERS 64
#define MAESTRO_MAX_OBJECTS 64
#define MAESTRO_MAX_KEY 52

enum maestro_strategy { MAESTRO_SEQ, MAESTRO_SN, MAESTRO_LOCKS, MAESTRO_TM };
enum maestro_lock_kind {
  MAESTRO_LOCK_MAESTRO, /* (a) reader token per core + writer token */
  MAESTRO_LOCK_OBJECT,  /* (b) one read-write lock per shared object */
  MAESTRO_LOCK_GLOBAL   /* (c) one lock around every packet's shared state */
};
enum maestro_decision { MAESTRO_SHARD, MAESTRO_REPLICATE, MAESTRO_SHARED };

/* One state object as the plan decided it, in nf_init's allocation order. */
struct maestro_object_config {
  const char *name;
  const char *kind; /* map, vector, dchain, cht, sketch */
  enum maestro_decision decision;
  unsigned per_core; /* a sharded object's capacity on each core when the
                        plan divides it; 0: the NF's own */
};

typedef bool (*maestro_init_fn)(void);
typedef int (*maestro_process_fn)(uint16_t device, uint8_t *packet,
                                  uint16_t length, vigor_time_t now);

/* ---- generated from the plan (config.c) ---- */
extern const char maestro_nf_name[];
extern const char maestro_plan_digest[];
extern const char maestro_strategy_name[];
extern const enum maestro_strategy maestro_strategy;
extern const enum maestro_lock_kind maestro_lock_kind;
extern const unsigned maestro_cores;
extern const unsigned maestro_devices;
extern const int maestro_exclusive; /* shared NF variables: packets run one at a time */
extern const unsigned maestro_object_count;
extern const struct maestro_object_config maestro_objects[];
extern const unsigned maestro_rss_key_len;
extern const uint8_t maestro_rss_keys[][MAESTRO_MAX_KEY]; /* per device */
extern const int maestro_rss_l4[];                        /* per device */
extern const unsigned maestro_reta_size;
extern const uint16_t maestro_reta[];
/* The packet bytes the NF may write (from the analysis' packet_writes), so
   the simulated NIC restores only those when it delivers a packet again:
   frame bytes [frame_lo, frame_hi) and L4 header bytes [l4_lo, l4_hi);
   lo >= hi: none.  Unknown (an incomplete analysis): the whole frame. */
extern const int maestro_writes_known;
extern const int maestro_write_frame_lo, maestro_write_frame_hi;
extern const int maestro_write_l4_lo, maestro_write_l4_hi;
extern const maestro_init_fn maestro_nf_inits[];
extern const maestro_process_fn maestro_nf_processes[];

/* ---- parallel_state.c ---- */

/* Runs every worker's nf_init (on the calling thread), giving sharded and
   replicated objects a private instance per worker and shared ones a single
   instance.  Returns 0 and prints why on failure. */
int maestro_state_init(unsigned workers);

/* Heap bytes each worker's nf_init allocated: its private (sharded,
   replicated) objects, and for the first worker also the shared ones. */
extern uint64_t maestro_state_bytes[MAESTRO_MAX_WORKERS];

/* Processes one packet on worker `worker` with the plan's strategy (locks,
   transactions, or none) and returns the NF's output.  `aborts` counts the
   times the packet was re-run (read mode to write mode, TM aborts). */
int maestro_run_packet(unsigned worker, uint16_t device, uint8_t *packet,
                       uint16_t length, vigor_time_t now, uint64_t *aborts);

/* Position of this worker's last packet in the run's serial order (locks
   and tm, when maestro_record_order is set; main.c sets it with --results). */
uint64_t maestro_last_commit(void);
extern int maestro_record_order;

/* The shared objects this worker's last packet read and wrote (bit:
   allocation order; all bits written when packets run exclusively), when
   maestro_record_order is set: packets that wrote nothing another one
   touched may be replayed in either order (codegen/verify.py). */
void maestro_packet_access(uint64_t *reads, uint64_t *writes);

/* The state calls of the worker's current packet, recorded when
   maestro_record_calls is set (verification: which path each packet took). */
struct call_trace;
const struct call_trace *maestro_packet_calls(void);
extern int maestro_record_calls;

/* Whether the CPU commits RTM transactions (checked before a TM run). */
int maestro_rtm_supported(void);

#endif
