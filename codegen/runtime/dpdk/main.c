/*
 * main.c -- the generated program's main: EAL, ports with the plan's RSS
 * keys and RETA, one RX and one TX queue per worker lcore, the per-lcore
 * loop (RX burst -> process -> TX burst), JSON statistics once per
 * interval and at the end, and clean shutdown on SIGINT/SIGTERM.
 *
 * Usage: PROGRAM [EAL args] -- [--trace FILE.replay] [--once] [--seconds S]
 *        [--interval S] [--results FILE [--bytes]] [--dump-assignment FILE]
 * With --trace, the ports are expected to be net_null vdevs and the
 * simulated NIC feeds them (simnic.c); without it, real NIC queues are
 * polled and the NF's time is the TSC in nanoseconds.
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
};

static volatile int quit;

/* Counters have one writer (their worker) and are read by worker 0's
   reports: relaxed atomic stores, no locked instructions. */
#define STAT_ADD(counter, n) \
  __atomic_store_n(&(counter), (counter) + (uint64_t)(n), __ATOMIC_RELAXED)
static struct worker_stats stats[MAESTRO_MAX_WORKERS];
static unsigned worker_of_lcore[RTE_MAX_LCORE];
static unsigned workers;
static uint16_t ports;
static struct packet_result *results;
static struct call_trace *result_calls; /* each packet's state calls (with --results) */
static int simulated, once, result_bytes;
static double seconds_limit, interval = 1.0;
static uint64_t start_tsc;

static void on_signal(int signum) {
  (void)signum;
  quit = 1;
}

static double elapsed(void) {
  return (double)(rte_rdtsc() - start_tsc) / (double)rte_get_tsc_hz();
}

static void print_stats(const char *type, double t, double since, struct worker_stats *last) {
  uint64_t rx = 0, tx = 0, drop = 0, aborts = 0;
  double mpps_total = 0;
  printf("{\"type\":\"%s\",\"t\":%.3f,\"lcores\":[", type, t);
  for (unsigned w = 0; w < workers; ++w) {
    struct worker_stats now = {
        __atomic_load_n(&stats[w].rx, __ATOMIC_RELAXED),
        __atomic_load_n(&stats[w].tx, __ATOMIC_RELAXED),
        __atomic_load_n(&stats[w].drop, __ATOMIC_RELAXED),
        __atomic_load_n(&stats[w].flood, __ATOMIC_RELAXED),
        __atomic_load_n(&stats[w].aborts, __ATOMIC_RELAXED),
        __atomic_load_n(&stats[w].tx_fail, __ATOMIC_RELAXED)};
    double mpps = since > 0 ? (double)(now.rx - last[w].rx) / since / 1e6 : 0;
    mpps_total += mpps;
    printf("%s{\"worker\":%u,\"rx\":%" PRIu64 ",\"tx\":%" PRIu64 ",\"drop\":%" PRIu64
           ",\"flood\":%" PRIu64 ",\"aborts\":%" PRIu64 ",\"tx_fail\":%" PRIu64
           ",\"mpps\":%.4f}",
           w ? "," : "", w, now.rx, now.tx, now.drop, now.flood, now.aborts, now.tx_fail, mpps);
    rx += now.rx;
    tx += now.tx;
    drop += now.drop;
    aborts += now.aborts;
    last[w] = now;
  }
  printf("],\"rx\":%" PRIu64 ",\"tx\":%" PRIu64 ",\"drop\":%" PRIu64 ",\"aborts\":%" PRIu64
         ",\"mpps\":%.4f", rx, tx, drop, aborts, mpps_total);
  if (strcmp(type, "final") == 0) {
    uint64_t processed = 0;
    for (uint32_t i = 0; results != NULL && i < sim_packet_count; ++i)
      processed += results[i].processed;
    printf(",\"conserved\":%s", rx == tx + drop ? "true" : "false");
    if (results != NULL)
      printf(",\"trace_packets\":%u,\"processed_once\":%" PRIu64, sim_packet_count, processed);
  }
  printf("}\n");
  fflush(stdout);
}

static void send_burst(unsigned worker, uint16_t port, struct rte_mbuf **out, uint16_t n) {
  if (n == 0)
    return;
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
  struct worker_stats last[MAESTRO_MAX_WORKERS];
  memset(last, 0, sizeof(last));
  double next_report = interval, last_report = 0;
  struct rte_mbuf *rx[BURST];
  static __thread struct rte_mbuf *tx[RTE_MAX_ETHPORTS][BURST];
  uint16_t tx_count[RTE_MAX_ETHPORTS] = {0};
  double tsc_ns = 1e9 / (double)rte_get_tsc_hz();
  while (!quit) {
    uint32_t received = 0;
    for (uint16_t port = 0; port < ports; ++port) {
      uint16_t n = rte_eth_rx_burst(port, (uint16_t)worker, rx, BURST);
      received += n;
      STAT_ADD(stats[worker].rx, n);
      for (uint16_t i = 0; i < n; ++i) {
        struct rte_mbuf *m = rx[i];
        vigor_time_t now = simulated ? sim_time(m) : (vigor_time_t)((double)rte_rdtsc() * tsc_ns);
        int output = process_packet(worker, port, m, now);
        if (results != NULL) {
          uint32_t index = sim_index(m);
          results[index].output = output;
          results[index].processed++;
          results[index].worker = (uint16_t)worker;
          results[index].order = maestro_last_commit();
          results[index].digest = packet_digest(rte_pktmbuf_mtod(m, uint8_t *), rte_pktmbuf_data_len(m));
          if (result_calls != NULL)
            result_calls[index] = *maestro_packet_calls();
          if (result_bytes) /* once mode injects each packet once: keep its bytes after */
            memcpy(sim_packets[index].data, rte_pktmbuf_mtod(m, uint8_t *), sim_packets[index].length);
        }
        dispatch(worker, port, m, output, tx, tx_count);
      }
    }
    for (uint16_t port = 0; port < ports; ++port) {
      send_burst(worker, port, tx[port], tx_count[port]);
      tx_count[port] = 0;
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
  fprintf(out, "# maestro-par packets=%u devices=%u (index device output length bytes worker order)\n",
          sim_packet_count, maestro_devices);
  for (uint32_t i = 0; i < sim_packet_count; ++i) {
    const struct packet_result *r = &results[i];
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
      fprintf(out, "%u %u %s %u ", i, sim_packets[i].device, label, sim_packets[i].length);
      if (result_bytes)
        for (uint16_t b = 0; b < sim_packets[i].length; ++b)
          fprintf(out, "%02x", sim_packets[i].data[b]);
      else
        fprintf(out, "%016" PRIx64, r->digest);
      fprintf(out, " %u %" PRIu64, r->worker, r->order);
      if (result_calls != NULL && r->processed)
        calltrace_print(out, &result_calls[i]);
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
      {"bytes", no_argument, NULL, 'b'},
      {NULL, 0, NULL, 0}};
  int opt;
  while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
    switch (opt) {
    case 't': trace = optarg; break;
    case 'o': once = 1; break;
    case 's': seconds_limit = atof(optarg); break;
    case 'i': interval = atof(optarg); break;
    case 'r': results_path = optarg; break;
    case 'a': assignment_path = optarg; break;
    case 'b': result_bytes = 1; break;
    default: rte_exit(EXIT_FAILURE, "unknown option; see the header of main.c\n");
    }
  }
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
  if (simulated && !simnic_load(trace, maestro_devices))
    rte_exit(EXIT_FAILURE, "cannot load the trace %s\n", trace);
  /* Room for the trace's longest frame (jumbo frames too); fewer of the
     bigger mbufs, as the simulated NIC holds only a few bursts at a time. */
  unsigned data_room = RTE_MBUF_DEFAULT_DATAROOM, mbufs = 8192 * ports * workers - 1;
  if (simulated && sim_max_length > data_room) {
    data_room = sim_max_length;
    mbufs = 2048 * ports * workers - 1;
  }
  struct rte_mempool *pool = rte_pktmbuf_pool_create(
      "mbufs", mbufs, 256, 0, (uint16_t)(data_room + RTE_PKTMBUF_HEADROOM), rte_socket_id());
  if (pool == NULL)
    rte_exit(EXIT_FAILURE, "cannot create the mbuf pool: %s\n", rte_strerror(rte_errno));
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
  if (simulated && !simnic_start(maestro_devices, workers, once))
    rte_exit(EXIT_FAILURE, "the simulated NIC could not start\n");
  maestro_record_order = results_path != NULL;
  maestro_record_calls = results_path != NULL;
  if (simulated && once) {
    results = calloc(sim_packet_count ? sim_packet_count : 1, sizeof(*results));
    result_calls = calloc(sim_packet_count ? sim_packet_count : 1, sizeof(*result_calls));
    if (results == NULL || result_calls == NULL)
      rte_exit(EXIT_FAILURE, "out of memory for %u results\n", sim_packet_count);
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
  struct worker_stats zero[MAESTRO_MAX_WORKERS];
  memset(zero, 0, sizeof(zero));
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
