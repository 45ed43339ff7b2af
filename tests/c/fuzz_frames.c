/*
 * fuzz_frames.c -- a random-frame fuzzer (libFuzzer-style, hand-rolled: no
 * clang here) for the packet parsing of the C runtime, built with ASan and
 * UBSan by tests/test_fuzz.py:
 *
 *   - the simulated NIC's RSS parser (simnic.c rss_hash: Ethernet, IPv4
 *     header, L4 ports) on frames of 0..9,216 bytes, each in a heap buffer
 *     of exactly its length, so any read past the frame is reported;
 *   - the replay reader (replay.h replay_load, shared by the reference
 *     runner and the simulated NIC) on valid, truncated and corrupted
 *     replay files.
 *
 * Usage: fuzz_frames SECONDS SEED SCRATCH_FILE
 * Prints "frames N replays M" and exits 0; a sanitizer report aborts.
 */
#include "simnic.c" /* its static parser functions are the target */

#include <time.h>
#include <unistd.h>

/* The plan data simnic.c reads (config.c of a generated program). */
const uint8_t maestro_rss_keys[2][MAESTRO_MAX_KEY] = {
    {0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3,
     0x8f, 0xb0, 0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3,
     0x80, 0x30, 0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa},
    {0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3,
     0x8f, 0xb0, 0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3,
     0x80, 0x30, 0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa}};
const int maestro_rss_l4[] = {1, 0};
const unsigned maestro_reta_size = 128;
const uint16_t maestro_reta[128] = {0};
/* The bytes the NF may write (unknown here: the whole frame is restored). */
const int maestro_writes_known = 0;
const int maestro_write_frame_lo = 0, maestro_write_frame_hi = 0;
const int maestro_write_l4_lo = 0, maestro_write_l4_hi = 0;

static uint64_t state;

/* xorshift64*: reproducible from the seed. */
static uint64_t next_random(void) {
  state ^= state >> 12;
  state ^= state << 25;
  state ^= state >> 27;
  return state * 2685821657736338717ull;
}

/* A frame length: mostly around the headers, sometimes up to a jumbo frame. */
static uint16_t frame_length(void) {
  switch (next_random() % 4) {
  case 0: return (uint16_t)(next_random() % 64);
  case 1: return (uint16_t)(next_random() % 128);
  case 2: return (uint16_t)(next_random() % 1600);
  default: return (uint16_t)(next_random() % (SIM_MAX_FRAME + 1));
  }
}

/* Random bytes, often shaped like Ethernet + IPv4 (+ TCP/UDP) so the
   parser goes deep: any IHL, fragment bits, protocol. */
static void fill_frame(uint8_t *data, uint16_t length) {
  for (uint16_t i = 0; i < length; ++i)
    data[i] = (uint8_t)next_random();
  if (next_random() % 4 == 0)
    return;
  if (length > 13) {
    data[12] = 0x08;
    data[13] = 0x00;
  }
  if (length > 14)
    data[14] = (uint8_t)(0x40 | (next_random() % 16));
  if (length > 23)
    data[23] = next_random() % 2 ? 6 : 17;
  if (length > 21 && next_random() % 2)
    data[20] = data[21] = 0;
}

static void fuzz_rss(void) {
  struct replay_packet p;
  p.length = frame_length();
  p.device = (uint16_t)(next_random() % 2);
  p.time = 0;
  p.data = malloc(p.length ? p.length : 1);
  if (p.data == NULL)
    abort();
  fill_frame(p.data, p.length);
  (void)rss_hash(&p);
  free(p.data);
}

/* A replay file: valid records, then maybe a corruption (a flipped byte, a
   truncation, a huge count or length). */
static void fuzz_replay(const char *path) {
  FILE *f = fopen(path, "wb");
  if (f == NULL)
    abort();
  uint32_t count = (uint32_t)(next_random() % 8);
  uint8_t header[16] = {'M', 'T', 'R', 'A', 'C', 'E', '1', 0};
  memcpy(header + 8, &count, 4);
  if (next_random() % 8 == 0) { /* a count the file does not hold */
    uint32_t big = (uint32_t)next_random();
    memcpy(header + 8, &big, 4);
  }
  fwrite(header, 1, sizeof(header), f);
  for (uint32_t i = 0; i < count; ++i) {
    uint16_t length = frame_length(), device = (uint16_t)(next_random() % 3);
    uint8_t record[12] = {0};
    memcpy(record + 8, &device, 2);
    memcpy(record + 10, &length, 2);
    fwrite(record, 1, sizeof(record), f);
    for (uint16_t b = 0; b < length; ++b)
      fputc((int)(next_random() & 0xff), f);
  }
  long size = ftell(f);
  fclose(f);
  if (size > 0 && next_random() % 3 == 0 && truncate(path, (off_t)(next_random() % (uint64_t)size)) != 0)
    abort();
  char error[512];
  int status;
  uint32_t loaded = 0;
  struct replay_packet *packets = replay_load(path, 2, &loaded, error, sizeof(error), &status);
  if (packets != NULL) {
    for (uint32_t i = 0; i < loaded; ++i)
      free(packets[i].data);
    free(packets);
  }
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s SECONDS SEED SCRATCH_FILE\n", argv[0]);
    return 2;
  }
  double seconds = atof(argv[1]);
  state = strtoull(argv[2], NULL, 10) | 1;
  flow_cache_mask = (1u << 16) - 1;
  flow_cache = calloc(flow_cache_mask + 1, sizeof(*flow_cache));
  if (flow_cache == NULL)
    return 3;
  time_t start = time(NULL);
  uint64_t frames = 0, replays = 0;
  while (difftime(time(NULL), start) < seconds) {
    for (int i = 0; i < 1000; ++i, ++frames) {
      if (frames % 30000 == 0) /* the cache never fills (rss_hash probes until a free slot) */
        memset(flow_cache, 0, (flow_cache_mask + 1) * sizeof(*flow_cache));
      fuzz_rss();
    }
    fuzz_replay(argv[3]);
    ++replays;
  }
  printf("frames %" PRIu64 " replays %" PRIu64 "\n", frames, replays);
  return 0;
}
