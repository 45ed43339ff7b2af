"""Finding an NF's source, compiling it, and checking it keeps the contract.

An NF is named by a sample name (`fw` for sample_nfs/fw.c) or by the path of
a C file written against the NF contract (codegen/runtime/include/nf.h).
`compile_nf` builds its object file with gcc and checks that it defines
nf_init and nf_process and calls nothing outside the contract; every failure
is an `NFError` naming the file, line and function.
"""
from __future__ import annotations

import hashlib
import os
import re
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import sh

from analyses.errors import MaestroError
from analyses.locations import INCLUDE_DIR, REPO_ROOT

#: Folder of the sample NFs.
SAMPLE_DIR = REPO_ROOT / "sample_nfs"

#: Functions of the contract's state API an NF may call.
STATE_API = frozenset(
    """map_allocate map_get map_put map_erase map_size
    vector_allocate vector_borrow vector_return
    dchain_allocate dchain_allocate_new_index dchain_rejuvenate_index
    dchain_expire_one_index dchain_is_index_allocated dchain_free_index
    expire_items_single_map cht_fill_cht cht_find_preferred_available_backend
    sketch_allocate sketch_compute_hashes sketch_refresh sketch_fetch
    sketch_touch_buckets sketch_expire""".split()
)
#: Helpers of nf.h implemented by the library (the analyses summarise them).
HELPER_API = frozenset({"nf_checksum"})
#: libc functions an NF may call (gcc also emits them for struct copies).
LIBC_ALLOWED = frozenset({"memcpy", "memset", "memcmp", "memmove"})
#: Symbols gcc itself may reference.
COMPILER_ALLOWED = frozenset({"__stack_chk_fail"})
#: The functions every NF defines.
ENTRY_POINTS = ("nf_init", "nf_process")

#: gcc flags every NF build uses (the analyses and the runtimes alike).
BASE_CFLAGS = ("-std=gnu11", "-g", "-msse4.2", "-Wall", "-Wextra", "-fno-strict-aliasing")


class NFError(MaestroError):
    """An NF that cannot be found, compiled, or breaks the contract."""


@dataclass(frozen=True)
class NFSource:
    """An NF's name (file stem) and the path of its C file."""

    name: str
    path: Path


def sample_names() -> list[str]:
    """Names of the sample NFs shipped in sample_nfs/."""
    return sorted(p.stem for p in SAMPLE_DIR.glob("*.c"))


def resolve_nf(spec: str | Path) -> NFSource:
    """The NF named by a sample name or a .c path; NFError if there is none."""
    path = Path(spec)
    if path.suffix != ".c" and (SAMPLE_DIR / f"{spec}.c").is_file():
        path = SAMPLE_DIR / f"{spec}.c"
    if not path.is_file():
        raise NFError(
            f"no NF {str(spec)!r}: not a file, and not a sample "
            f"(samples: {', '.join(sample_names())})"
        )
    return NFSource(path.stem, path.resolve())


def spec_summary(nf: NFSource) -> str:
    """The first sentence of the NF's opening spec comment ('' if none)."""
    match = re.match(r"\s*/\*+\s*(.*?)\*/", nf.path.read_text(errors="replace"), re.S)
    if not match:
        return ""
    text = " ".join(line.strip(" *") for line in match.group(1).splitlines()).strip()
    text = re.sub(rf"^{re.escape(nf.name)}\s+--\s+", "", text)  # "fw -- stateful firewall..."
    return re.split(r"(?<=\.)\s", text, maxsplit=1)[0]


def define_flags(defines: Mapping[str, object] | None) -> list[str]:
    """-D flags for config macros (`{"FW_CAPACITY": 1024}`)."""
    return [f"-D{k}={v}" for k, v in sorted((defines or {}).items())]


def local_headers(nf: NFSource, defines: Mapping[str, object] | None = None) -> list[Path]:
    """The headers the NF includes from outside maestro's runtime and the
    system (its own `#include "x.h"`, nested ones too), as gcc's
    preprocessor finds them: builds depend on them like on the NF itself.
    [] when the NF does not preprocess (its compilation reports why)."""
    result = subprocess.run(["gcc", "-E", "-H", "-o", os.devnull, f"-I{INCLUDE_DIR}",
                             *define_flags(defines), str(nf.path)], capture_output=True, text=True)
    if result.returncode != 0:
        return []
    headers = []
    for line in result.stderr.splitlines():
        match = re.match(r"^\.+ (.+)$", line)  # one dot per nesting level
        if not match:
            continue
        path = Path(match.group(1))
        path = (nf.path.parent / path if not path.is_absolute() else path).resolve()
        outside = not path.is_relative_to(nf.path.parent)
        if path.is_relative_to(INCLUDE_DIR.resolve()) or (outside and _system_header(path)):
            continue
        if path not in headers:
            headers.append(path)
    return headers


def _system_header(path: Path) -> bool:
    """Whether a header is the compiler's or the system's (not the NF's)."""
    return str(path).startswith(("/usr/", "/lib/", "/opt/"))


def build_key(*parts: object) -> str:
    """A short digest of everything a build depends on (sources, flags)."""
    digest = hashlib.sha256()
    for part in parts:
        data = part.read_bytes() if isinstance(part, Path) else repr(part).encode()
        digest.update(data)
    return digest.hexdigest()[:16]


def private_path(path: Path) -> Path:
    """A name beside `path` that only this process writes: builds write
    there and rename, so a concurrent reader of the cached `path` (tests
    run in parallel) never sees a half-written file."""
    return path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")


def compile_nf(
    nf: NFSource,
    out_dir: Path,
    *,
    defines: Mapping[str, object] | None = None,
    opt: str = "-O2",
) -> Path:
    """Compile the NF to an object file in out_dir and check its contract.

    Raises NFError with gcc's messages when it does not compile, or naming
    the file, line and function of a call outside the contract.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    obj = out_dir / f"{nf.name}{opt}.o"
    flags = [*BASE_CFLAGS, opt, f"-I{INCLUDE_DIR}", *define_flags(defines)]
    partial = private_path(obj)
    try:
        sh.gcc(*flags, "-c", str(nf.path), "-o", str(partial))
    except sh.ErrorReturnCode as exc:
        raise NFError(
            f"{nf.path} does not compile:\n{exc.stderr.decode(errors='replace').strip()}"
        ) from None
    check_contract(nf, partial)
    partial.replace(obj)
    return obj


def check_contract(nf: NFSource, obj: Path) -> None:
    """NFError unless `obj` defines the entry points and calls only the contract."""
    defined, undefined = _symbols(obj)
    for entry in ENTRY_POINTS:
        if entry not in defined:
            raise NFError(f"{nf.path}: defines no function {entry}() (required by the NF contract)")
    allowed = STATE_API | HELPER_API | LIBC_ALLOWED | COMPILER_ALLOWED
    outside = sorted(undefined - allowed)
    if outside:
        sites = _reference_sites(obj, set(outside))
        lines = [
            f"{file}:{line}: in {function}(): calls {symbol}(), which is outside the NF contract"
            for symbol, (file, line, function) in sorted(sites.items())
        ] or [f"{nf.path}: uses {', '.join(outside)}, outside the NF contract"]
        raise NFError(
            "\n".join(lines)
            + "\nAn NF may call the state API of nf.h, nf_checksum and memcpy/memset/memcmp/memmove only."
        )


def _symbols(obj: Path) -> tuple[set[str], set[str]]:
    """(globally defined functions, undefined symbols) of an object file."""
    defined, undefined = set(), set()
    for line in str(sh.nm(str(obj))).splitlines():
        fields = line.split()
        if len(fields) == 2 and fields[0] == "U":
            undefined.add(fields[1])
        elif len(fields) == 3 and fields[1] == "T":
            defined.add(fields[2])
    return defined, undefined


_FUNCTION = re.compile(r"^[0-9a-f]+ <([^>]+)>:$")
_LOCATION = re.compile(r"^(/?[^\s:]+\.[ch]):(\d+)")
_RELOCATION = re.compile(r"R_X86_64_\w+\s+([A-Za-z_][\w.]*)")


def _reference_sites(obj: Path, symbols: set[str]) -> dict[str, tuple[str, int, str]]:
    """First reference of each symbol: (source file, line, enclosing function).

    Reads `objdump -d -l -r` (gcc's -g line table and the relocations), so the
    line is where the compiled code really refers to the symbol.
    """
    sites: dict[str, tuple[str, int, str]] = {}
    function, file, line = "?", "?", 0
    for text in str(sh.objdump("-d", "-l", "-r", "--no-show-raw-insn", str(obj))).splitlines():
        text = text.strip()
        if m := _FUNCTION.match(text):
            function = m.group(1)
        elif m := _LOCATION.match(text):
            file, line = m.group(1), int(m.group(2))
        elif (m := _RELOCATION.search(text)) and m.group(1) in symbols:
            sites.setdefault(m.group(1), (file, line, function))
    return sites
