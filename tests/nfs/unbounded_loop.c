/* unbounded_loop -- test NF: a loop whose bound is a packet byte times 1000,
 * which symbolic execution cannot bound: the analysis must stop at its
 * budget and name the loop's location. */
#include "nf.h"

bool nf_init(void) { return true; }

int nf_process(uint16_t device, uint8_t *packet, uint16_t length, vigor_time_t now) {
  (void)now;
  if (length < 60)
    return NF_DROP;
  unsigned sum = 0;
  for (unsigned i = 0; i < packet[20] * 1000u; ++i)
    sum += packet[i % 60];
  return sum == 7 ? NF_DROP : device;
}
