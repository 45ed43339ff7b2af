/*
 * replay.h -- reading the replay file (format in codegen/trace.py) into
 * memory: one definition for the reference runner, the simulated NIC and
 * the lock test harness.
 */
#ifndef MAESTRO_REPLAY_H
#define MAESTRO_REPLAY_H

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nf.h"

/* One packet: arrival time and device, and its bytes in a buffer of
   exactly `length` bytes (so a sanitizer catches reads past the frame). */
struct replay_packet {
  vigor_time_t time;
  uint16_t device;
  uint16_t length;
  uint8_t *data;
};

static inline uint64_t replay_read_le(const uint8_t *p, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i)
    v = (v << 8) | p[i];
  return v;
}

/* Reads the whole file.  On failure returns NULL, writes a message naming
   the file and the packet into `error` and sets *status (2: bad input,
   3: out of memory).  Packets on a device >= `devices` are bad input. */
static inline struct replay_packet *replay_load(const char *path, unsigned devices,
                                                uint32_t *count_out, char *error,
                                                size_t error_size, int *status) {
  struct replay_packet *packets = NULL;
  uint32_t count = 0, i = 0;
  uint8_t header[16], record[12];
  *status = 2;
  FILE *f = fopen(path, "rb");
  if (f == NULL) {
    snprintf(error, error_size, "%s: cannot open: %s", path, strerror(errno));
    return NULL;
  }
  if (fread(header, 1, sizeof(header), f) != sizeof(header) ||
      memcmp(header, "MTRACE1", 8) != 0) {
    snprintf(error, error_size, "%s: not a replay file (bad header)", path);
    goto fail;
  }
  count = (uint32_t)replay_read_le(header + 8, 4);
  /* Every record takes at least its 12-byte header: a count the file
     cannot hold is refused before anything is allocated for it. */
  long size = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
  if (size < 0 || fseek(f, (long)sizeof(header), SEEK_SET) != 0) {
    snprintf(error, error_size, "%s: cannot seek: %s", path, strerror(errno));
    goto fail;
  }
  if ((uint64_t)count * sizeof(record) > (uint64_t)size - sizeof(header)) {
    snprintf(error, error_size, "%s: truncated: the header says %" PRIu32 " packets, the file holds at most %" PRIu64,
             path, count, ((uint64_t)size - sizeof(header)) / sizeof(record));
    goto fail;
  }
  packets = calloc(count ? count : 1, sizeof(*packets));
  if (packets == NULL) {
    *status = 3;
    snprintf(error, error_size, "%s: out of memory for %" PRIu32 " packets", path, count);
    goto fail;
  }
  for (i = 0; i < count; ++i) {
    struct replay_packet *p = &packets[i];
    if (fread(record, 1, sizeof(record), f) != sizeof(record)) {
      snprintf(error, error_size, "%s: truncated at packet %" PRIu32, path, i);
      goto fail;
    }
    p->time = (vigor_time_t)replay_read_le(record, 8);
    p->device = (uint16_t)replay_read_le(record + 8, 2);
    p->length = (uint16_t)replay_read_le(record + 10, 2);
    if (p->device >= devices) {
      snprintf(error, error_size, "%s: packet %" PRIu32 " arrives on device %u; the NF has %u",
               path, i, p->device, devices);
      goto fail;
    }
    p->data = malloc(p->length ? p->length : 1);
    if (p->data == NULL) {
      *status = 3;
      snprintf(error, error_size, "%s: out of memory at packet %" PRIu32, path, i);
      goto fail;
    }
    if (fread(p->data, 1, p->length, f) != p->length) {
      snprintf(error, error_size, "%s: truncated inside packet %" PRIu32, path, i);
      ++i; /* its buffer is allocated: free it too */
      goto fail;
    }
  }
  fclose(f);
  *count_out = count;
  return packets;
fail:
  for (uint32_t j = 0; packets != NULL && j < i; ++j)
    free(packets[j].data);
  free(packets);
  fclose(f);
  return NULL;
}

#endif
