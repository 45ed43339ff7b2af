/*
 * nop -- the no-op NF.
 *
 * Spec:
 *   A packet arriving on device 0 (LAN) leaves on device 1 (WAN), and a
 *   packet arriving on device 1 leaves on device 0.  The packet is neither
 *   parsed nor modified, so any frame (even a malformed one) is forwarded.
 *
 * State: none.
 * Config: none.
 */
#include "nf.h"

#define LAN_DEVICE 0
#define WAN_DEVICE 1

bool nf_init(void) { return true; }

int nf_process(uint16_t device, uint8_t *packet, uint16_t packet_length,
               vigor_time_t now) {
  (void)packet;
  (void)packet_length;
  (void)now;

  if (device == LAN_DEVICE) {
    return WAN_DEVICE;
  }
  return LAN_DEVICE;
}
