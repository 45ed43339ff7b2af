/*
 * lock_harness.c -- runs a generated program's parallel state layer on
 * plain pthreads (no DPDK), so ThreadSanitizer can check the lock schemes
 * and the state library under real concurrency.
 *
 * Usage: lock_harness TRACE.replay THREADS RESULTS
 * Packet i is processed by thread i % THREADS (packets of one flow run on
 * several threads: maximal sharing).  RESULTS has main.c's --results
 * format, with each packet's position in the serial (commit) order.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "replay.h"
#include "rt.h"

/* What a thread did with a packet. */
struct outcome {
  int output;
  uint64_t order;
  uint64_t reads, writes;
  unsigned worker;
};

static struct replay_packet *packets;
static struct outcome *outcomes;
static uint32_t count;
static unsigned threads;

static void load(const char *path) {
  char error[512];
  int status;
  packets = replay_load(path, maestro_devices, &count, error, sizeof(error), &status);
  outcomes = calloc(count ? count : 1, sizeof(*outcomes));
  if (packets == NULL || outcomes == NULL) {
    fprintf(stderr, "%s\n", packets == NULL ? error : "out of memory");
    exit(status);
  }
}

static void *work(void *arg) {
  unsigned worker = (unsigned)(uintptr_t)arg;
  uint64_t aborts = 0;
  for (uint32_t i = worker; i < count; i += threads) {
    struct replay_packet *p = &packets[i];
    outcomes[i].output = maestro_run_packet(worker, p->device, p->data, p->length, p->time, &aborts);
    outcomes[i].order = maestro_last_commit();
    maestro_packet_access(&outcomes[i].reads, &outcomes[i].writes);
    outcomes[i].worker = worker;
  }
  return NULL;
}

int main(int argc, char **argv) {
  if (argc != 4)
    return 2;
  load(argv[1]);
  threads = (unsigned)atoi(argv[2]);
  if (threads != maestro_cores || !maestro_state_init(threads))
    return 3;
  maestro_record_order = 1;
  pthread_t ids[MAESTRO_MAX_WORKERS];
  for (unsigned t = 0; t < threads; ++t)
    pthread_create(&ids[t], NULL, work, (void *)(uintptr_t)t);
  for (unsigned t = 0; t < threads; ++t)
    pthread_join(ids[t], NULL);
  FILE *out = fopen(argv[3], "w");
  fprintf(out, "# lock harness\n");
  for (uint32_t i = 0; i < count; ++i) {
    struct replay_packet *p = &packets[i];
    struct outcome *o = &outcomes[i];
    char label[16];
    snprintf(label, sizeof(label), "%d", o->output);
    fprintf(out, "%u %u %s %u ", i, p->device,
            o->output == NF_DROP ? "drop" : o->output == NF_FLOOD ? "flood" : label, p->length);
    for (uint16_t b = 0; b < p->length; ++b)
      fprintf(out, "%02x", p->data[b]);
    fprintf(out, " %u %llu %llx %llx\n", o->worker, (unsigned long long)o->order,
            (unsigned long long)o->reads, (unsigned long long)o->writes);
  }
  fclose(out);
  return 0;
}
