"""The C runtime's home: the NF contract header and the state library.

Analyses compile NFs against `INCLUDE_DIR`; the reference runner and the
generated programs compile `STATE_SOURCES` with them.
"""
from analyses.locations import INCLUDE_DIR, REPO_ROOT, RUNTIME_DIR, RUNTIME_HEADERS, STATE_DIR

#: The state library's C sources (map, vector, dchain, expirator, cht, sketch).
STATE_SOURCES = tuple(sorted(STATE_DIR.glob("*.c")))
#: The sequential reference runner's main program.
SEQ_RUNNER_SOURCE = RUNTIME_DIR / "seq" / "runner.c"
#: Its call-tracing wrappers (linked with -Wl,--wrap into the tracing build).
SEQ_TRACE_SOURCE = RUNTIME_DIR / "seq" / "trace.c"

__all__ = ["INCLUDE_DIR", "REPO_ROOT", "RUNTIME_DIR", "RUNTIME_HEADERS", "SEQ_RUNNER_SOURCE",
           "SEQ_TRACE_SOURCE", "STATE_DIR", "STATE_SOURCES"]
