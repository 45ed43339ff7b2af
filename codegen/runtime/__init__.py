"""The C runtime's home: the NF contract header and the state library.

Analyses compile NFs against `INCLUDE_DIR`; the reference runner and the
generated programs compile `STATE_SOURCES` with them.
"""
from pathlib import Path

#: This folder.
RUNTIME_DIR = Path(__file__).resolve().parent
#: Folder holding nf.h, the NF contract.
INCLUDE_DIR = RUNTIME_DIR / "include"
#: The state library's C sources (map, vector, dchain, expirator, cht, sketch).
STATE_DIR = RUNTIME_DIR / "state"
STATE_SOURCES = tuple(sorted(STATE_DIR.glob("*.c")))
#: Headers builds depend on (part of their cache keys).
RUNTIME_HEADERS = tuple(sorted([*INCLUDE_DIR.glob("*.h"), *STATE_DIR.glob("*.h")]))
#: The sequential reference runner's main program.
SEQ_RUNNER_SOURCE = RUNTIME_DIR / "seq" / "runner.c"
#: Its call-tracing wrappers (linked with -Wl,--wrap into the tracing build).
SEQ_TRACE_SOURCE = RUNTIME_DIR / "seq" / "trace.c"
#: The repository root (sample NFs live in its sample_nfs/ folder).
REPO_ROOT = RUNTIME_DIR.parents[1]
