"""Where maestro's files are: the lowest layer, so analyses/ never imports
codegen/ or workbench/ to find them (codegen.runtime re-exports these).

The C runtime (the NF contract header nf.h and the state library) lives in
codegen/runtime/ because the generated programs are built from it, but the
analysis compiles NFs against the same headers.
"""
import os
from pathlib import Path

#: The repository root (sample NFs live in its sample_nfs/ folder).
REPO_ROOT = Path(__file__).resolve().parents[1]
#: The C runtime's folder.
RUNTIME_DIR = REPO_ROOT / "codegen" / "runtime"
#: Folder holding nf.h, the NF contract.
INCLUDE_DIR = RUNTIME_DIR / "include"
#: The state library's C sources and headers (map, vector, dchain, expirator, cht, sketch).
STATE_DIR = RUNTIME_DIR / "state"
#: Headers builds depend on (part of their cache keys).
RUNTIME_HEADERS = tuple(sorted([*INCLUDE_DIR.glob("*.h"), *STATE_DIR.glob("*.h")]))


def build_root() -> Path:
    """Where builds are cached: $MAESTRO_BUILD_DIR, else build/ in the repo."""
    return Path(os.environ.get("MAESTRO_BUILD_DIR", REPO_ROOT / "build"))
