/*
 * The sequential reference runner: one NF linked with the state library
 * replays a trace (replay format, see codegen/trace.py) through nf_init /
 * nf_process and prints one line per packet, then the totals:
 *
 *   # maestro-seq packets=N devices=D
 *   <index> <in-device> <output> <length> <fnv1a-64 of the bytes after | hex>
 *   ...
 *   # totals packets=N forwarded=F dropped=D flooded=L invalid=I out0=.. seconds=S pps=P
 *
 * <output> is a device number, "drop", "flood", or "invalid:<n>" when the NF
 * returned something outside the contract (the run then exits with 4).
 * Every packet gets a buffer of exactly its length, so a sanitizer build
 * catches an NF that reads past the frame.
 *
 * --calls (in a build linked with trace.c) appends to each packet's line the
 * state calls it made and what they returned (state/calltrace.h).
 *
 * --state SIZES (tracing build) prints the state after the run: each map's
 * keys (SIZES: key bytes per object, in allocation order, comma-separated),
 * each dchain's allocated indexes, each vector's non-zero cells.
 *
 * Usage: runner [--bytes] [--no-packets] [--calls] [--state SIZES] TRACE.replay
 */
#include "calltrace.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nf.h"
#include "digest.h"
#include "replay.h"

/* Defined by trace.c in the tracing build. */
__attribute__((weak)) struct call_trace runner_trace;
__attribute__((weak)) int runner_traces_calls;
__attribute__((weak)) void runner_dump_state(FILE *out, const int *key_sizes, int count);

static _Noreturn __attribute__((format(printf, 2, 3))) void
die(int status, const char *fmt, ...) {
  va_list args;
  va_start(args, fmt);
  fprintf(stderr, "runner: ");
  vfprintf(stderr, fmt, args);
  fputc('\n', stderr);
  va_end(args);
  exit(status);
}

static double seconds_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
  int print_bytes = 0, print_packets = 1, print_calls = 0, print_state = 0;
  int key_sizes[64], key_size_count = 0;
  const char *path = NULL;
  for (int i = 1; i < argc; ++i) {
    if (strcmp(argv[i], "--bytes") == 0)
      print_bytes = 1;
    else if (strcmp(argv[i], "--no-packets") == 0)
      print_packets = 0;
    else if (strcmp(argv[i], "--calls") == 0)
      print_calls = 1;
    else if (strcmp(argv[i], "--state") == 0 && i + 1 < argc) {
      char *sizes = argv[++i];
      for (char *item = strtok(sizes, ","); item != NULL && key_size_count < 64;
           item = strtok(NULL, ","))
        key_sizes[key_size_count++] = atoi(item);
      print_state = 1;
    }
    else
      path = argv[i];
  }
  if (path == NULL) {
    fprintf(stderr, "usage: %s [--bytes] [--no-packets] [--calls] TRACE.replay\n", argv[0]);
    return 2;
  }
  if ((print_calls || print_state) && !runner_traces_calls)
    die(2, "--calls/--state: this runner was built without call tracing (trace.c)");
  uint32_t count;
  char error[512];
  int status;
  struct replay_packet *packets = replay_load(path, NF_DEVICES, &count, error, sizeof(error), &status);
  if (packets == NULL)
    die(status, "%s", error);
  int *outputs = malloc(sizeof(*outputs) * (count ? count : 1));
  struct call_trace *traces = print_calls ? calloc(count ? count : 1, sizeof(*traces)) : NULL;
  if (outputs == NULL || (print_calls && traces == NULL))
    die(3, "%s: out of memory for %" PRIu32 " results", path, count);
  if (!nf_init()) {
    fprintf(stderr, "runner: nf_init failed\n");
    return 3;
  }

  double start = seconds_now();
  for (uint32_t i = 0; i < count; ++i) {
    runner_trace.count = runner_trace.lost = 0;
    outputs[i] = nf_process(packets[i].device, packets[i].data,
                            packets[i].length, packets[i].time);
    if (traces != NULL)
      traces[i] = runner_trace;
  }
  double seconds = seconds_now() - start;

  uint64_t forwarded = 0, dropped = 0, flooded = 0, invalid = 0;
  uint64_t per_device[NF_DEVICES] = {0};
  printf("# maestro-seq packets=%" PRIu32 " devices=%d\n", count, NF_DEVICES);
  for (uint32_t i = 0; i < count; ++i) {
    int out = outputs[i];
    char label[32];
    if (out == NF_DROP) {
      ++dropped;
      strcpy(label, "drop");
    } else if (out == NF_FLOOD) {
      ++flooded;
      strcpy(label, "flood");
    } else if (out >= 0 && out < NF_DEVICES) {
      ++forwarded;
      ++per_device[out];
      snprintf(label, sizeof(label), "%d", out);
    } else {
      ++invalid;
      snprintf(label, sizeof(label), "invalid:%d", out);
    }
    if (!print_packets)
      continue;
    printf("%" PRIu32 " %u %s %u ", i, packets[i].device, label, packets[i].length);
    if (print_bytes)
      for (uint16_t b = 0; b < packets[i].length; ++b)
        printf("%02x", packets[i].data[b]);
    else
      printf("%016" PRIx64, packet_digest(packets[i].data, packets[i].length));
    if (traces != NULL)
      calltrace_print(stdout, &traces[i]);
    putchar('\n');
  }
  printf("# totals packets=%" PRIu32 " forwarded=%" PRIu64 " dropped=%" PRIu64
         " flooded=%" PRIu64 " invalid=%" PRIu64,
         count, forwarded, dropped, flooded, invalid);
  for (int d = 0; d < NF_DEVICES; ++d)
    printf(" out%d=%" PRIu64, d, per_device[d]);
  printf(" seconds=%.6f pps=%.0f\n", seconds, seconds > 0 ? count / seconds : 0.0);
  if (print_state && runner_dump_state != NULL)
    runner_dump_state(stdout, key_sizes, key_size_count);

  for (uint32_t i = 0; i < count; ++i)
    free(packets[i].data);
  free(packets);
  free(outputs);
  free(traces);
  return invalid ? 4 : 0;
}
