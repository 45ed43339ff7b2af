/*
 * calltrace.h -- what a packet's state calls returned, for telling which
 * analysis path it took (analyses/coverage.py).
 *
 * The reference runner (seq/trace.c) and the parallel state layer
 * (dpdk/parallel_state.c) note each state API call of the packet being
 * processed: function, object (allocation order; -1 for nf_checksum), call
 * site (offset of the return address in its executable, for addr2line),
 * return value, the value written through the out-pointer, and a borrowed
 * cell's content.  One record line per packet:
 *
 *   calls=<function>,<object>,<site hex>,<ret>,<out>[,<cell hex>];...
 *
 * Header-only: each runtime includes it once.
 */
#ifndef MAESTRO_CALLTRACE_H
#define MAESTRO_CALLTRACE_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define CALLTRACE_MAX 32
#define CALLTRACE_CELL 64

struct call_record {
  const char *function;
  int object;
  uintptr_t site;
  int64_t ret;
  int64_t out;
  uint16_t cell_length;
  uint8_t cell[CALLTRACE_CELL];
};

struct call_trace {
  unsigned count;
  unsigned lost; /* calls past CALLTRACE_MAX */
  struct call_record records[CALLTRACE_MAX];
};

/* Offset of a code address in the executable or library that holds it. */
static inline uintptr_t calltrace_site(const void *address) {
  Dl_info info;
  if (address != NULL && dladdr(address, &info) && info.dli_fbase != NULL)
    return (uintptr_t)address - (uintptr_t)info.dli_fbase;
  return (uintptr_t)address;
}

static inline struct call_record *calltrace_add(struct call_trace *trace, const char *function,
                                                int object, const void *return_address) {
  if (trace->count >= CALLTRACE_MAX) {
    trace->lost++;
    return NULL;
  }
  struct call_record *r = &trace->records[trace->count++];
  r->function = function;
  r->object = object;
  r->site = calltrace_site(return_address);
  r->ret = 0;
  r->out = 0;
  r->cell_length = 0;
  return r;
}

static inline void calltrace_cell(struct call_record *r, const void *cell, unsigned length) {
  if (r == NULL || cell == NULL)
    return;
  r->cell_length = (uint16_t)(length < CALLTRACE_CELL ? length : CALLTRACE_CELL);
  memcpy(r->cell, cell, r->cell_length);
}

static inline void calltrace_print(FILE *out, const struct call_trace *trace) {
  fputs(" calls=", out);
  for (unsigned i = 0; i < trace->count; ++i) {
    const struct call_record *r = &trace->records[i];
    fprintf(out, "%s%s,%d,%" PRIxPTR ",%" PRId64 ",%" PRId64, i ? ";" : "", r->function, r->object,
            r->site, r->ret, r->out);
    if (r->cell_length) {
      fputc(',', out);
      for (unsigned b = 0; b < r->cell_length; ++b)
        fprintf(out, "%02x", r->cell[b]);
    }
  }
  if (trace->lost)
    fprintf(out, ";lost,%u,0,0,0", trace->lost);
}

#endif
