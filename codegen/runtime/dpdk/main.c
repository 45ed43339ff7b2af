/*
 * main.c -- the generated program's main: EAL, ports with the plan's RSS
 * keys and RETA, one RX and one TX queue per worker lcore, the per-lcore
 * loop (RX burst -> process -> TX burst), JSON statistics once per
 * interval and at the end, and clean shutdown on SIGINT/SIGTERM.
 *
 * Usage: PROGRAM [EAL args] -- [--trace FILE.replay] [--once | --passes N]
 *        [--seconds S] [--interval S] [--results FILE [--bytes]]
 *        [--dump-assignment FILE] [--sim-window | --sim-layout] [--in-trace-time]
 * --passes N: N passes over the trace, then stop (--once: one); results
 * then hold a line per packet and pass (record pass * packets + index).
 * --sim-window, --sim-layout: how the simulated NIC lays the packets out
 * (simnic.h; by default by the frames' length).  --in-trace-time (with
 * --once): the cores process the trace in step with its timestamps
 * (simnic.h sim_paced), as verification needs.
 * With --trace, the ports are expected to be net_null vdevs and the
 * simulated NIC feeds them (simnic.c); without it, real NIC queues are
 * polled and the NF's time is the TSC in nanoseconds.
 *
 * Latency: each packet carries the TSC of its injection (the simulated NIC)
 * or reception (a real NIC); at TX its latency goes into its worker's
 * histogram (log-linear buckets, about 3% wide), and the stats lines report
 * p50/p99/p99.9 in ns per worker and over all (each stats line over its
 * interval, the final line over the run).
 */
#include "calltrace.h"

#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>

#include "rt.h"
#include "digest.h"
#include "simnic.h"

#define BURST 32
#define RX_RING 1024
#define TX_RING 1024

/* rx = tx + drop: tx counts packets handed to TX (a flood once); tx_fail
   counts mbufs a full TX ring refused (freed, reported, never hidden). */
struct worker_stats {
  uint64_t rx, tx, drop, flood, aborts, tx_fail;
} __attribute__((aligned(64)));

struct packet_result {
  int32_t output;
  uint16_t processed;
  uint16_t worker;
  uint64_t digest;
  uint64_t order; /* position in the run's serial order */
  uint64_t reads, writes; /* shared objects it read and wrote (maestro_packet_access) */
};

static volatile int quit;

/* Latency histogram of one worker, in TSC cycles: values below 16 exactly,
   then 16 buckets per power of two. */
#define LAT_SUB 16
#define LAT_BUCKETS (LAT_SUB + (64 - 4) * LAT_SUB)
struct latency {
  uint64_t count[LAT_BUCKETS];
} __attribute__((aligned(64)));
static struct latency latency[MAESTRO_MAX_WORKERS];

static inline unsigned lat_bucket(uint64_t cycles) {
  if (cycles < LAT_SUB)
    return (unsigned)cycles;
  unsigned e = 63u - (unsigned)__builtin_clzll(cycles); /* >= 4 */
  return LAT_SUB + (e - 4) * LAT_SUB + (unsigned)((cycles >> (e - 4)) & (LAT_SUB - 1));
}

/* The middle of a bucket's range, in cycles. */
static double lat_value(unsigned bucket) {
  if (bucket < LAT_SUB)
    return bucket;
  unsigned e = (bucket - LAT_SUB) / LAT_SUB + 4, sub = (bucket - LAT_SUB) % LAT_SUB;
  double width = (double)(1ull << (e - 4));
  return (double)(LAT_SUB + sub) * width + width / 2;
}

/* Counters have one writer (their worker) and are read by worker 0's
   reports: relaxed atomic stores, no locked instructions. */
#define STAT_ADD(counter, n) \
  __atomic_store_n(&(counter), (counter) + (uint64_t)(n), __ATOMIC_RELAXED)
static struct worker_stats stats[MAESTRO_MAX_WORKERS];
/* What the last stats line reported, per worker (only its printer uses it). */
struct stats_snapshot {
  struct worker_stats counters;
  struct latency latency;
};
static unsigned worker_of_lcore[RTE_MAX_LCORE];
static unsigned workers;
static uint16_t ports;
static struct packet_result *results;
static struct call_trace *result_calls; /* each packet's state calls (with --results) */
static int simulated, once, result_bytes, sim_layout = SIM_MODE_AUTO;
static uint32_t passes; /* with --once or --passes; 0: loop */
static double seconds_limit, interval = 1.0;
static uint64_t start_tsc;

static void on_signal(int signum) {
  (void)signum;
  quit = 1;
}

static double elapsed(void) {
  return (double)(rte_rdtsc() - start_tsc) / (double)rte_get_tsc_hz();
}

/* p50, p99 and p99.9 of a histogram, in ns (null when it is empty). */
static void print_latency(const uint64_t *count) {
  static const double quantiles[] = {0.5, 0.99, 0.999};
  static const char *names[] = {"p50", "p99", "p999"};
  uint64_t total = 0;
  for (unsigned b = 0; b < LAT_BUCKETS; ++b)
    total += count[b];
  if (total == 0) {
    printf("null");
    return;
  }
  double ns_per_cycle = 1e9 / (double)rte_get_tsc_hz();
  printf("{");
  for (unsigned q = 0; q < 3; ++q) {
    uint64_t rank = (uint64_t)(quantiles[q] * (double)total + 0.999999), seen = 0;
    unsigned b = 0;
    for (; b < LAT_BUCKETS - 1; ++b) {
      seen += count[b];
      if (seen >= rank)
        break;
    }
    printf("%s\"%s\":%.1f", q ? "," : "", names[q], lat_value(b) * ns_per_cycle);
  }
  printf(",\"packets\":%" PRIu64 "}", total);
}

static void print_stats(const char *type, double t, double since, struct stats_snapshot *last) {
  uint64_t rx = 0, tx = 0, drop = 0, aborts = 0;
  double mpps_total = 0;
  static uint64_t interval_latency[MAESTRO_MAX_WORKERS][LAT_BUCKETS], all_latency[LAT_BUCKETS];
  memset(all_latency, 0, sizeof(all_latency));
  printf("{\"type\":\"%s\",\"t\":%.3f,\"lcores\":[", type, t);
  for (unsigned w = 0; w < workers; ++w) {
    for (unsigned b = 0; b < LAT_BUCKETS; ++b) {
      uint64_t now = __atomic_load_n(&latency[w].count[b], __ATOMIC_RELAXED);
      interval_latency[w][b] = now - last[w].latency.count[b];
      all_latency[b] += interval_latency[w][b];
      last[w].latency.count[b] = now;
    }
    struct worker_stats now = {
        __atomic_load_n(&stats[w].rx, __ATOMIC_RELAXED),
        __atomic_load_n(&stats[w].tx, __ATOMIC_RELAXED),
        __atomic_load_n(&stats[w].drop, __ATOMIC_RELAXED),
        __atomic_load_n(&stats[w].flood, __ATOMIC_RELAXED),
        __atomic_load_n(&stats[w].aborts, __ATOMIC_RELAXED),
        __atomic_load_n(&stats[w].tx_fail, __ATOMIC_RELAXED)};
    double mpps = since > 0 ? (double)(now.rx - last[w].counters.rx) / since / 1e6 : 0;
    mpps_total += mpps;
    printf("%s{\"worker\":%u,\"rx\":%" PRIu64 ",\"tx\":%" PRIu64 ",\"drop\":%" PRIu64
           ",\"flood\":%" PRIu64 ",\"aborts\":%" PRIu64 ",\"tx_fail\":%" PRIu64
           ",\"mpps\":%.4f,\"latency_ns\":",
           w ? "," : "", w, now.rx, now.tx, now.drop, now.flood, now.aborts, now.tx_fail, mpps);
    print_latency(interval_latency[w]);
    printf("}");
    rx += now.rx;
    tx += now.tx;
    drop += now.drop;
    aborts += now.aborts;
    last[w].counters = now;
  }
  printf("],\"rx\":%" PRIu64 ",\"tx\":%" PRIu64 ",\"drop\":%" PRIu64 ",\"aborts\":%" PRIu64
         ",\"mpps\":%.4f,\"latency_ns\":", rx, tx, drop, aborts, mpps_total);
  print_latency(all_latency);
  if (strcmp(type, "final") == 0) {
    uint64_t processed = 0;
    for (uint64_t i = 0; results != NULL && i < (uint64_t)sim_packet_count * passes; ++i)
      processed += results[i].processed;
    printf(",\"conserved\":%s", rx == tx + drop ? "true" : "false");
    if (results != NULL)
      printf(",\"trace_packets\":%u,\"passes\":%u,\"processed_once\":%" PRIu64, sim_packet_count,
             passes, processed);
    if (simulated)
      printf(",\"simnic\":{\"mode\":\"%s\",\"bytes\":%" PRIu64 "}", sim_mode, sim_layout_bytes);
    uint64_t state_total = 0;
    printf(",\"state\":{\"per_core\":[");
    for (unsigned w = 0; w < workers; ++w) {
      printf("%s%" PRIu64, w ? "," : "", maestro_state_bytes[w]);
      state_total += maestro_state_bytes[w];
    }
    printf("],\"bytes\":%" PRIu64 "}", state_total);
  }
  printf("}\n");
  fflush(stdout);
}

static void send_burst(unsigned worker, uint16_t port, struct rte_mbuf **out, uint16_t n) {
  if (n == 0)
    return;
  uint64_t now = rte_rdtsc();
  struct latency *lat = &latency[worker];
  for (uint16_t i = 0; i < n; ++i) {
    uint64_t *c = &lat->count[lat_bucket(now - sim_info(out[i])->inject_tsc)];
    __atomic_store_n(c, *c + 1, __ATOMIC_RELAXED); /* one writer; the printer reads */
  }
  uint16_t sent = rte_eth_tx_burst(port, (uint16_t)worker, out, n);
  for (uint16_t i = sent; i < n; ++i)
    rte_pktmbuf_free(out[i]);
  STAT_ADD(stats[worker].tx_fail, n - sent);
}

/* The NF's verdict on one packet: queue it for TX, or free it. */
static void dispatch(unsigned worker, uint16_t in_port, struct rte_mbuf *m, int output,
                     struct rte_mbuf *tx[][BURST], uint16_t *tx_count) {
  struct worker_stats *s = &stats[worker];
  if (output == NF_FLOOD && ports > 1) {
    STAT_ADD(s->flood, 1);
    STAT_ADD(s->tx, 1);
    uint16_t copies = 0;
    for (uint16_t p = 0; p < ports; ++p)
      if (p != in_port)
        ++copies;
    rte_mbuf_refcnt_update(m, (int16_t)(copies - 1));
    for (uint16_t p = 0; p < ports; ++p) {
      if (p == in_port)
        continue;
      tx[p][tx_count[p]++] = m;
      if (tx_count[p] == BURST) {
        send_burst(worker, p, tx[p], BURST);
        tx_count[p] = 0;
      }
    }
    return;
  }
  if (output < 0 || output >= (int)ports) {
    STAT_ADD(s->drop, 1);
    rte_pktmbuf_free(m);
    return;
  }
  STAT_ADD(s->tx, 1);
  tx[output][tx_count[output]++] = m;
  if (tx_count[output] == BURST) {
    send_burst(worker, (uint16_t)output, tx[output], BURST);
    tx_count[output] = 0;
  }
}

/* The NF sees the packet's bytes; a sanitizer build hands it a heap copy
   of exactly the packet's length, so reads past the frame are caught
   (mbuf buffers are larger than the frame). */
static int process_packet(unsigned worker, uint16_t port, struct rte_mbuf *m, vigor_time_t now) {
  uint8_t *data = rte_pktmbuf_mtod(m, uint8_t *);
  uint16_t length = rte_pktmbuf_data_len(m);
#if defined(__SANITIZE_ADDRESS__)
  uint8_t *copy = malloc(length ? length : 1);
  if (copy == NULL)
    rte_exit(EXIT_FAILURE, "out of memory\n");
  memcpy(copy, data, length);
  int output = maestro_run_packet(worker, port, copy, length, now, &stats[worker].aborts);
  memcpy(data, copy, length);
  free(copy);
  return output;
#else
  return maestro_run_packet(worker, port, data, length, now, &stats[worker].aborts);
#endif
}

static int worker_main(void *arg) {
  (void)arg;
  unsigned worker = worker_of_lcore[rte_lcore_id()];
  static struct stats_snapshot last[MAESTRO_MAX_WORKERS]; /* worker 0's */
  double next_report = interval, last_report = 0;
  struct rte_mbuf *rx[BURST];
  static __thread struct rte_mbuf *tx[RTE_MAX_ETHPORTS][BURST];
  uint16_t tx_count[RTE_MAX_ETHPORTS] = {0};
  double tsc_ns = 1e9 / (double)rte_get_tsc_hz();
  while (!quit) {
    uint32_t received = 0;
    for (uint16_t port = 0; port < ports; ++port) {
      uint16_t n = rte_eth_rx_burst(port, (uint16_t)worker, rx, BURST);
      if (n == 0)
        continue;
      received += n;
      STAT_ADD(stats[worker].rx, n);
      vigor_time_t nic_now = 0;
      if (!simulated) { /* the simulated NIC stamps its packets when it injects them */
        uint64_t tsc = rte_rdtsc();
        nic_now = (vigor_time_t)((double)tsc * tsc_ns);
        for (uint16_t i = 0; i < n; ++i)
          sim_info(rx[i])->inject_tsc = tsc;
      }
      for (uint16_t i = 0; i < n; ++i) {
        struct rte_mbuf *m = rx[i];
        /* the device is the mbuf's: the simulated NIC's bursts may mix them */
        uint16_t in_port = m->port;
        vigor_time_t now = simulated ? sim_time(m) : nic_now;
        int output = process_packet(worker, in_port, m, now);
        if (results != NULL) {
          uint64_t index = sim_index(m) + (uint64_t)sim_info(m)->loop * sim_packet_count;
          results[index].output = output;
          results[index].processed++;
          results[index].worker = (uint16_t)worker;
          results[index].order = maestro_last_commit();
          maestro_packet_access(&results[index].reads, &results[index].writes);
          results[index].digest = packet_digest(rte_pktmbuf_mtod(m, uint8_t *), rte_pktmbuf_data_len(m));
          if (result_calls != NULL)
            result_calls[index] = *maestro_packet_calls();
          if (result_bytes) /* one pass injects each packet once: keep its bytes after */
            memcpy(sim_packets[index].data, rte_pktmbuf_mtod(m, uint8_t *), sim_packets[index].length);
        }
        dispatch(worker, in_port, m, output, tx, tx_count);
      }
      /* each burst's packets leave before the next burst comes in */
      for (uint16_t out = 0; out < ports; ++out) {
        send_burst(worker, out, tx[out], tx_count[out]);
        tx_count[out] = 0;
      }
    }
    if (worker == 0) {
      double t = elapsed();
      if (t >= next_report) {
        print_stats("stats", t, t - last_report, last);
        last_report = t;
        next_report = t + interval;
      }
      if (seconds_limit > 0 && t >= seconds_limit)
        quit = 1;
    }
    if (simulated && once && received == 0 && simnic_queue_done(worker))
      break;
  }
  return 0;
}

static void configure_port(uint16_t port, struct rte_mempool *pool, FILE *info) {
  struct rte_eth_dev_info dev;
  int ret = rte_eth_dev_info_get(port, &dev);
  if (ret != 0)
    rte_exit(EXIT_FAILURE, "port %u: cannot get device info: %s\n", port, rte_strerror(-ret));
  struct rte_eth_conf conf;
  memset(&conf, 0, sizeof(conf));
  uint64_t wanted = RTE_ETH_RSS_IPV4 | RTE_ETH_RSS_FRAG_IPV4 | RTE_ETH_RSS_NONFRAG_IPV4_OTHER |
                    (maestro_rss_l4[port] ? RTE_ETH_RSS_NONFRAG_IPV4_TCP | RTE_ETH_RSS_NONFRAG_IPV4_UDP : 0);
  if (workers > 1) {
    conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
    conf.rx_adv_conf.rss_conf.rss_key = (uint8_t *)maestro_rss_keys[port];
    conf.rx_adv_conf.rss_conf.rss_key_len = (uint8_t)maestro_rss_key_len;
    conf.rx_adv_conf.rss_conf.rss_hf = wanted & dev.flow_type_rss_offloads; /* what it offers */
  }
  ret = rte_eth_dev_configure(port, (uint16_t)workers, (uint16_t)workers, &conf);
  if (ret != 0)
    rte_exit(EXIT_FAILURE, "port %u: cannot configure %u queues: %s\n", port, workers,
             rte_strerror(-ret));
  for (unsigned q = 0; q < workers; ++q) {
    ret = rte_eth_rx_queue_setup(port, (uint16_t)q, RX_RING, rte_eth_dev_socket_id(port), NULL, pool);
    if (ret != 0)
      rte_exit(EXIT_FAILURE, "port %u: RX queue %u: %s\n", port, q, rte_strerror(-ret));
    ret = rte_eth_tx_queue_setup(port, (uint16_t)q, TX_RING, rte_eth_dev_socket_id(port), NULL);
    if (ret != 0)
      rte_exit(EXIT_FAILURE, "port %u: TX queue %u: %s\n", port, q, rte_strerror(-ret));
  }
  int reta_ok = 0;
  if (workers > 1 && dev.reta_size > 0) {
    struct rte_eth_rss_reta_entry64 reta[RTE_ETH_RSS_RETA_SIZE_512 / RTE_ETH_RETA_GROUP_SIZE];
    memset(reta, 0, sizeof(reta));
    unsigned size = dev.reta_size < RTE_ETH_RSS_RETA_SIZE_512 ? dev.reta_size : RTE_ETH_RSS_RETA_SIZE_512;
    for (unsigned i = 0; i < size; ++i) {
      reta[i / RTE_ETH_RETA_GROUP_SIZE].mask |= 1ull << (i % RTE_ETH_RETA_GROUP_SIZE);
      reta[i / RTE_ETH_RETA_GROUP_SIZE].reta[i % RTE_ETH_RETA_GROUP_SIZE] =
          (uint16_t)(maestro_reta[i % maestro_reta_size] % workers);
    }
    reta_ok = rte_eth_dev_rss_reta_update(port, reta, (uint16_t)size) == 0;
  }
  ret = rte_eth_dev_start(port);
  if (ret != 0)
    rte_exit(EXIT_FAILURE, "port %u: cannot start: %s\n", port, rte_strerror(-ret));
  fprintf(info, "%s{\"port\":%u,\"driver\":\"%s\",\"reta_size\":%u,\"reta_updated\":%s,"
          "\"rss_hf\":\"0x%" PRIx64 "\"}", port ? "," : "", port, dev.driver_name, dev.reta_size,
          reta_ok ? "true" : "false", (uint64_t)conf.rx_adv_conf.rss_conf.rss_hf);
}

static void write_results(const char *path) {
  FILE *out = fopen(path, "w");
  if (out == NULL)
    rte_exit(EXIT_FAILURE, "cannot write results to %s\n", path);
  fprintf(out, "# maestro-par packets=%u devices=%u passes=%u (index device output length bytes worker order reads writes)\n",
          sim_packet_count, maestro_devices, passes);
  for (uint64_t record = 0; record < (uint64_t)sim_packet_count * passes; ++record) {
    const struct packet_result *r = &results[record];
    uint32_t i = (uint32_t)(record % sim_packet_count);
    /* A packet processed twice gets two lines: the verifier reports it. */
    for (uint32_t copy = 0; copy < (r->processed > 1 ? r->processed : 1u); ++copy) {
      char label[32];
      if (!r->processed)
        strcpy(label, "lost");
      else if (r->output == NF_DROP)
        strcpy(label, "drop");
      else if (r->output == NF_FLOOD)
        strcpy(label, "flood");
      else
        snprintf(label, sizeof(label), "%d", r->output);
      fprintf(out, "%" PRIu64 " %u %s %u ", record, sim_packets[i].device, label, sim_packets[i].length);
      if (result_bytes)
        for (uint16_t b = 0; b < sim_packets[i].length; ++b)
          fprintf(out, "%02x", sim_packets[i].data[b]);
      else
        fprintf(out, "%016" PRIx64, r->digest);
      fprintf(out, " %u %" PRIu64 " %" PRIx64 " %" PRIx64, r->worker, r->order, r->reads, r->writes);
      if (result_calls != NULL && r->processed)
        calltrace_print(out, &result_calls[record]);
      fputc('\n', out);
    }
  }
  fclose(out);
}

int main(int argc, char **argv) {
  int eal_args = rte_eal_init(argc, argv);
  if (eal_args < 0)
    rte_exit(EXIT_FAILURE, "EAL initialisation failed: %s\n", rte_strerror(rte_errno));
  argc -= eal_args;
  argv += eal_args;
  const char *trace = NULL, *results_path = NULL, *assignment_path = NULL;
  static const struct option options[] = {
      {"trace", required_argument, NULL, 't'},   {"once", no_argument, NULL, 'o'},
      {"seconds", required_argument, NULL, 's'}, {"interval", required_argument, NULL, 'i'},
      {"results", required_argument, NULL, 'r'}, {"dump-assignment", required_argument, NULL, 'a'},
      {"bytes", no_argument, NULL, 'b'},         {"passes", required_argument, NULL, 'p'},
      {"sim-window", no_argument, NULL, 'w'},    {"sim-layout", no_argument, NULL, 'l'},
      {"in-trace-time", no_argument, NULL, 'T'}, {NULL, 0, NULL, 0}};
  int opt;
  while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
    switch (opt) {
    case 't': trace = optarg; break;
    case 'o': passes = 1; break;
    case 'p': passes = (uint32_t)strtoul(optarg, NULL, 10); break;
    case 'w': sim_layout = SIM_MODE_WINDOW; break;
    case 'l': sim_layout = SIM_MODE_LAYOUT; break;
    case 's': seconds_limit = atof(optarg); break;
    case 'i': interval = atof(optarg); break;
    case 'r': results_path = optarg; break;
    case 'a': assignment_path = optarg; break;
    case 'b': result_bytes = 1; break;
    case 'T': sim_paced = 1; break;
    default: rte_exit(EXIT_FAILURE, "unknown option; see the header of main.c\n");
    }
  }
  once = passes > 0;
  if (result_bytes && passes > 1)
    rte_exit(EXIT_FAILURE, "--bytes keeps one pass's bytes: use it with --once\n");
  if (sim_paced && passes != 1)
    rte_exit(EXIT_FAILURE, "--in-trace-time paces one pass over the trace: use it with --once\n");
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);

  workers = rte_lcore_count();
  if (workers != maestro_cores)
    rte_exit(EXIT_FAILURE, "the plan is for %u cores but EAL gave %u lcores (use -l)\n",
             maestro_cores, workers);
  if (maestro_strategy == MAESTRO_TM && !maestro_rtm_supported())
    rte_exit(EXIT_FAILURE, "strategy tm needs Intel RTM (TSX), which this CPU does not offer; "
             "generate with --strategy locks instead\n");
  ports = rte_eth_dev_count_avail();
  if (ports < maestro_devices)
    rte_exit(EXIT_FAILURE, "the NF has %u devices but only %u ports are available\n",
             maestro_devices, ports);
  ports = (uint16_t)maestro_devices;
  unsigned w = 0, lcore;
  RTE_LCORE_FOREACH(lcore) worker_of_lcore[lcore] = w++;

  simulated = trace != NULL;
  if (!simnic_register_field())
    rte_exit(EXIT_FAILURE, "cannot register the mbuf's packet info field: %s\n", rte_strerror(rte_errno));
  if (simulated && !simnic_load(trace, maestro_devices))
    rte_exit(EXIT_FAILURE, "cannot load the trace %s\n", trace);
  /* The simulated NIC brings mbufs of its own (simnic.c): the null ports'
     RX pool is kept empty, so net_null allocates nothing per burst. */
  unsigned mbufs = simulated ? 63 : 8192 * ports * workers - 1;
  struct rte_mempool *pool = rte_pktmbuf_pool_create(
      "mbufs", mbufs, simulated ? 0 : 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE, rte_socket_id());
  if (pool == NULL)
    rte_exit(EXIT_FAILURE, "cannot create the mbuf pool: %s\n", rte_strerror(rte_errno));
  while (simulated && rte_pktmbuf_alloc(pool) != NULL)
    ; /* held for the run */
  if (!maestro_state_init(workers))
    rte_exit(EXIT_FAILURE, "the NF's state could not be initialised\n");

  printf("{\"type\":\"config\",\"nf\":\"%s\",\"plan\":\"%s\",\"strategy\":\"%s\",\"workers\":%u,"
         "\"simulated\":%s,\"trace_packets\":%u,\"ports\":[", maestro_nf_name,
         maestro_plan_digest, maestro_strategy_name, workers, simulated ? "true" : "false",
         sim_packet_count);
  for (uint16_t port = 0; port < ports; ++port)
    configure_port(port, pool, stdout);
  printf("]}\n");
  fflush(stdout);
  if (simulated && !simnic_start(maestro_devices, workers, passes, sim_layout))
    rte_exit(EXIT_FAILURE, "the simulated NIC could not start\n");
  maestro_record_order = results_path != NULL;
  maestro_record_calls = results_path != NULL;
  if (simulated && once) {
    size_t records = (size_t)sim_packet_count * passes;
    results = calloc(records ? records : 1, sizeof(*results));
    result_calls = calloc(records ? records : 1, sizeof(*result_calls));
    if (results == NULL || result_calls == NULL)
      rte_exit(EXIT_FAILURE, "out of memory for %zu results\n", records);
  }
  if (assignment_path != NULL) {
    FILE *out = fopen(assignment_path, "w");
    if (out == NULL)
      rte_exit(EXIT_FAILURE, "cannot write %s\n", assignment_path);
    simnic_dump_assignment(out);
    fclose(out);
  }

  start_tsc = rte_rdtsc();
  rte_eal_mp_remote_launch(worker_main, NULL, CALL_MAIN);
  rte_eal_mp_wait_lcore();
  static struct stats_snapshot zero[MAESTRO_MAX_WORKERS];
  print_stats("final", elapsed(), elapsed(), zero);
  if (results_path != NULL && results != NULL)
    write_results(results_path);
  int conserved = 1;
  for (unsigned i = 0; i < workers; ++i)
    conserved &= stats[i].rx == stats[i].tx + stats[i].drop;
  for (uint16_t port = 0; port < ports; ++port) {
    rte_eth_dev_stop(port);
    rte_eth_dev_close(port);
  }
  rte_eal_cleanup();
  return conserved ? 0 : 3;
}
