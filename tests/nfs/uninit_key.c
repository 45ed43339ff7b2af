/* uninit_key -- test NF: on short packets the map key is never written, a
 * bug the analysis must report as a read of uninitialized memory. */
#include "nf.h"

static struct Map *map;

static bool eq(void *a, void *b) { return *(uint32_t *)a == *(uint32_t *)b; }
static unsigned hash(void *k) { return *(uint32_t *)k; }

bool nf_init(void) { return map_allocate(eq, hash, 16, &map); }

int nf_process(uint16_t device, uint8_t *packet, uint16_t length, vigor_time_t now) {
  (void)now;
  uint32_t key;
  if (length >= 34)
    memcpy(&key, packet + 26, 4);
  int value;
  return map_get(map, &key, &value) ? device : NF_DROP;
}
