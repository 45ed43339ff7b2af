#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "state_internal.h"

void state_fail(const char *function, const char *fmt, ...) {
  va_list args;
  va_start(args, fmt);
  fprintf(stderr, "state library: %s: ", function);
  vfprintf(stderr, fmt, args);
  fputc('\n', stderr);
  va_end(args);
  abort();
}
