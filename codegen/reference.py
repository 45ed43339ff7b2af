"""The sequential reference: one NF run on one core over a trace.

`build_reference` compiles the NF with the state library and the runner
(codegen/runtime/seq/runner.c) into a cached executable; `run_reference`
replays packets through it and returns the per-packet results and totals
that every parallel version is later compared with.
"""
from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Mapping, Sequence

import sh

from analyses.errors import MaestroError
from analyses.locations import build_root
from analyses.nf_source import (
    BASE_CFLAGS,
    HELPER_API,
    STATE_API,
    NFSource,
    build_key,
    compile_nf,
    define_flags,
    local_headers,
    private_path,
    resolve_nf,
)
from codegen.runtime import (
    INCLUDE_DIR,
    RUNTIME_HEADERS,
    SEQ_RUNNER_SOURCE,
    SEQ_TRACE_SOURCE,
    STATE_SOURCES,
)
from codegen.calltrace import read_calls, split_calls
from codegen.trace import TracePacket, write_replay

#: nf_process results (nf.h).
NF_DROP = -1
NF_FLOOD = -2

#: Flags of a sanitizer build: ASan + UBSan, stopping at the first report.
SANITIZE_FLAGS = ("-O1", "-fsanitize=address,undefined", "-fno-omit-frame-pointer",
                  "-fno-sanitize-recover=all")


class ReferenceError(MaestroError):
    """The reference runner failed; the message carries its diagnostics."""


@dataclass(frozen=True)
class PacketResult:
    """What the NF did with one packet: output device (or NF_DROP/NF_FLOOD)
    and the packet's bytes after processing (its FNV-1a digest when the run
    did not ask for bytes)."""

    index: int
    device: int
    output: int
    length: int
    data: bytes | None
    digest: str | None
    calls: tuple = ()


@dataclass(frozen=True)
class ReferenceRun:
    """Results of one reference run, in trace order, and its totals line."""

    nf: str
    results: list[PacketResult]
    totals: dict[str, float]
    state: "RunState | None" = None


@dataclass(frozen=True)
class RunState:
    """The NF's state after a run (tracing build, key sizes given): by
    object allocation order, each map's keys and values, each dchain's
    allocated indexes and their last touch, each vector's non-zero cells."""

    maps: dict[int, dict[bytes, int]]
    chains: dict[int, dict[int, int]]
    vectors: dict[int, dict[int, bytes]]


def parse_state(text: str) -> RunState:
    """The `# state ...` lines of a runner's output."""
    maps: dict[int, dict[bytes, int]] = {}
    chains: dict[int, dict[int, int]] = {}
    vectors: dict[int, dict[int, bytes]] = {}
    for line in text.splitlines():
        if not line.startswith("# state "):
            continue
        kind, obj, *items = line[len("# state "):].split()
        if kind == "map":
            maps[int(obj)] = {bytes.fromhex(k): int(v) for k, v in (i.split("=") for i in items)}
        elif kind == "dchain":
            chains[int(obj)] = {int(k): int(v) for k, v in (i.split("@") for i in items)}
        elif kind == "vector":
            vectors[int(obj)] = {int(k): bytes.fromhex(v) for k, v in (i.split("=") for i in items)}
    return RunState(maps, chains, vectors)


def build_reference(
    nf: str | Path | NFSource,
    *,
    defines: Mapping[str, object] | None = None,
    sanitize: bool = False,
    trace: bool = False,
) -> Path:
    """The runner executable for `nf` (built once per source, flags, defines).
    trace: the build that can print each packet's state calls (--calls)."""
    nf = nf if isinstance(nf, NFSource) else resolve_nf(nf)
    flags = [*BASE_CFLAGS, *(SANITIZE_FLAGS if sanitize else ("-O2",)),
             f"-I{INCLUDE_DIR}", *define_flags(defines)]
    extra = [str(SEQ_TRACE_SOURCE), *(f"-Wl,--wrap={f}" for f in sorted(STATE_API | HELPER_API))] if trace else []
    key = build_key(nf.path, *local_headers(nf, defines), SEQ_RUNNER_SOURCE, SEQ_TRACE_SOURCE, *STATE_SOURCES, *RUNTIME_HEADERS,
                    flags, extra)
    out_dir = build_root() / "seq" / f"{nf.name}-{key}"
    exe = out_dir / "runner"
    if exe.is_file():
        return exe
    # The contract check gives the clear error; the link below then succeeds.
    compile_nf(nf, out_dir, defines=defines)
    tmp = private_path(exe)
    try:
        sh.gcc(*flags, f"-I{STATE_SOURCES[0].parent}", str(nf.path),
               *map(str, STATE_SOURCES), str(SEQ_RUNNER_SOURCE), *extra, "-o", str(tmp))
    except sh.ErrorReturnCode as exc:
        raise ReferenceError(
            f"building the reference runner for {nf.path} failed:\n"
            f"{exc.stderr.decode(errors='replace').strip()}"
        ) from None
    tmp.replace(exe)
    return exe


_LINE = re.compile(r"^(\d+) (\d+) (\S+) (\d+) ([0-9a-f]+)$")


def parse_output(text: str, *, with_bytes: bool, executable: Path | None = None
                 ) -> tuple[list[PacketResult], dict[str, float]]:
    """Per-packet results and totals from the runner's stdout (with the
    packets' state calls when it printed them, sites resolved in `executable`)."""
    results, totals, call_texts = [], {}, []
    for line in text.splitlines():
        line, calls = split_calls(line)
        if line.startswith("# totals "):
            totals = {k: float(v) for k, v in (f.split("=") for f in line[9:].split())}
        elif m := _LINE.match(line):
            index, device, out, length, tail = m.groups()
            output = {"drop": NF_DROP, "flood": NF_FLOOD}.get(out)
            if output is None:
                if not out.isdigit():
                    raise ReferenceError(f"packet {index}: the NF returned {out}")
                output = int(out)
            results.append(PacketResult(
                int(index), int(device), output, int(length),
                bytes.fromhex(tail) if with_bytes else None,
                None if with_bytes else tail,
            ))
            call_texts.append(calls)
    if executable is not None and any(call_texts):
        results = [replace(r, calls=c) for r, c in zip(results, read_calls(call_texts, executable))]
    return results, totals


def run_reference(
    nf: str | Path | NFSource,
    packets: Sequence[TracePacket],
    *,
    defines: Mapping[str, object] | None = None,
    sanitize: bool = False,
    with_bytes: bool = True,
    per_packet: bool = True,
    calls: bool = False,
    state_keys: Sequence[int] | None = None,
) -> ReferenceRun:
    """Replay `packets` through the NF on one core and collect what it did.

    with_bytes: each result carries the bytes after processing (else their
    digest); per_packet=False keeps only the totals (for benchmarks);
    calls: each result carries the packet's state calls (for coverage);
    state_keys: key bytes per object (allocation order): also return the
    state after the run (RunState).
    """
    source = nf if isinstance(nf, NFSource) else resolve_nf(nf)
    exe = build_reference(source, defines=defines, sanitize=sanitize, trace=calls or state_keys is not None)
    with tempfile.TemporaryDirectory(prefix="maestro-seq-") as tmp:
        replay = Path(tmp) / "trace.replay"
        write_replay(replay, packets)
        return run_replay(source.name, exe, replay, with_bytes=with_bytes, per_packet=per_packet,
                          calls=calls, state_keys=state_keys)


def run_replay(name: str, exe: Path, replay: Path, *, with_bytes: bool = True,
               per_packet: bool = True, calls: bool = False,
               state_keys: Sequence[int] | None = None) -> ReferenceRun:
    """Run a built reference runner over a replay file."""
    args = [str(replay)]
    if state_keys is not None:
        args[:0] = ["--state", ",".join(str(k) for k in state_keys) or "0"]
    if with_bytes:
        args.insert(0, "--bytes")
    if not per_packet:
        args.insert(0, "--no-packets")
    if calls:
        args.insert(0, "--calls")
    try:
        out = sh.Command(str(exe))(*args, _return_cmd=True)
    except sh.ErrorReturnCode as exc:
        stderr = exc.stderr.decode(errors="replace").strip()
        invalid = re.search(r"^(\d+) \d+ invalid:(-?\d+)", exc.stdout.decode(), re.M)
        if invalid:
            stderr = (f"packet {invalid.group(1)}: nf_process returned {invalid.group(2)}, "
                      "which is neither a device, NF_DROP nor NF_FLOOD")
        raise ReferenceError(
            f"reference run of {name} failed (exit {exc.exit_code}):\n{stderr[-4000:]}"
        ) from None
    except sh.SignalException as exc:
        stderr = exc.stderr.decode(errors="replace").strip()
        raise ReferenceError(f"reference run of {name} crashed:\n{stderr[-4000:]}") from None
    results, totals = parse_output(str(out), with_bytes=with_bytes, executable=exe if calls else None)
    return ReferenceRun(name, results, totals, parse_state(str(out)) if state_keys is not None else None)
