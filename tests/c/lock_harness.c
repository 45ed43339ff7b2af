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

#include "rt.h"

struct packet {
  vigor_time_t time;
  uint16_t device, length;
  uint8_t *data;
  int output;
  uint64_t order;
  unsigned worker;
};

static struct packet *packets;
static uint32_t count;
static unsigned threads;

static uint64_t read_le(const uint8_t *p, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i)
    v = (v << 8) | p[i];
  return v;
}

static void load(const char *path) {
  FILE *f = fopen(path, "rb");
  uint8_t header[16];
  if (f == NULL || fread(header, 1, 16, f) != 16) {
    fprintf(stderr, "cannot read %s\n", path);
    exit(2);
  }
  count = (uint32_t)read_le(header + 8, 4);
  packets = calloc(count ? count : 1, sizeof(*packets));
  for (uint32_t i = 0; i < count; ++i) {
    uint8_t record[12];
    if (fread(record, 1, 12, f) != 12)
      exit(2);
    packets[i].time = (vigor_time_t)read_le(record, 8);
    packets[i].device = (uint16_t)read_le(record + 8, 2);
    packets[i].length = (uint16_t)read_le(record + 10, 2);
    packets[i].data = malloc(packets[i].length ? packets[i].length : 1);
    if (fread(packets[i].data, 1, packets[i].length, f) != packets[i].length)
      exit(2);
  }
  fclose(f);
}

static void *work(void *arg) {
  unsigned worker = (unsigned)(uintptr_t)arg;
  uint64_t aborts = 0;
  for (uint32_t i = worker; i < count; i += threads) {
    struct packet *p = &packets[i];
    p->output = maestro_run_packet(worker, p->device, p->data, p->length, p->time, &aborts);
    p->order = maestro_last_commit();
    p->worker = worker;
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
    struct packet *p = &packets[i];
    char label[16];
    snprintf(label, sizeof(label), "%d", p->output);
    fprintf(out, "%u %u %s %u ", i, p->device,
            p->output == NF_DROP ? "drop" : p->output == NF_FLOOD ? "flood" : label, p->length);
    for (uint16_t b = 0; b < p->length; ++b)
      fprintf(out, "%02x", p->data[b]);
    fprintf(out, " %u %llu\n", p->worker, (unsigned long long)p->order);
  }
  fclose(out);
  return 0;
}
