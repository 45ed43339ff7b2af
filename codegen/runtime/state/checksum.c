/*
 * checksum.c -- nf_checksum (nf.h): the one's complement sum over a buffer,
 * the one payload loop of the contract, so that analyses summarise it.
 */
#include <stdint.h>

#include "nf.h"

uint16_t nf_checksum(const void *data, uint16_t length, uint32_t initial) {
  const uint8_t *bytes = data;
  uint64_t sum = initial;
  uint16_t i = 0;
  for (; i + 1 < length; i += 2)
    sum += (uint32_t)(bytes[i] << 8 | bytes[i + 1]);
  if (i < length)
    sum += (uint32_t)bytes[i] << 8;
  while (sum >> 16)
    sum = (sum & 0xffff) + (sum >> 16);
  return (uint16_t)sum;
}
