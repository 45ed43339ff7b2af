"""Building and running a generated program.

`build` runs make in the program folder, streaming the log; a failure is a
`BuildError` carrying the compiler's messages.  `run` starts the program on
the simulated NIC (a trace, net_null ports, no hugepages) or with the EAL
arguments of a real NIC, streams its JSON events (config, per-interval
stats, final totals) to a callback, and returns them.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from analyses.errors import MaestroError
from codegen.generator import GeneratedProgram
from codegen.packets import MAX_FRAME
from codegen.trace import TracePacket, write_replay

LineCallback = Callable[[str], None]
EventCallback = Callable[[dict[str, Any]], None]


class BuildError(MaestroError):
    """make failed; the message holds the compiler's errors."""


class RunError(MaestroError):
    """The program failed to start or exited with an error."""


def build(program: GeneratedProgram, *, log: LineCallback | None = None,
          sanitize: str = "", jobs: int = 2, cancel: threading.Event | None = None) -> Path:
    """Build the program (make -jN); returns the executable.

    sanitize: extra compiler flags such as "-fsanitize=address,undefined"
    (the build then uses -O1 and its own executable name is unchanged).
    cancel: when set, make and its compilers are stopped (BuildError)."""
    with build_lock(program.directory):
        return _build_locked(program, log, sanitize, jobs, cancel)


@contextlib.contextmanager
def build_lock(directory: Path):
    """Hold an exclusive lock on the program folder while it builds, so two
    builds of one folder (two `maestro build`, the workbench and the CLI)
    run one after the other instead of interleaving make's outputs."""
    with open(directory / BUILD_LOCK, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def compiler_cache() -> list[str]:
    """make's CC with ccache in front of gcc, when ccache is installed and
    neither $CC nor MAESTRO_CCACHE=0 says otherwise: the runtime and the
    state library are the same files for every plan, so programs share
    their objects (a rebuild or another plan's build takes a second instead
    of about eight).  The build folder is left out of ccache's key
    (CCACHE_NOHASHDIR): debug information keeps the folder of the first
    build, and call sites are read by file name (codegen/calltrace.py)."""
    if os.environ.get("CC") or os.environ.get("MAESTRO_CCACHE") == "0" or not shutil.which("ccache"):
        return []
    return ["CC=ccache gcc"]


#: The lock file a build holds (not one of the program's files).
BUILD_LOCK = ".build.lock"


def _build_locked(program: GeneratedProgram, log: LineCallback | None, sanitize: str, jobs: int,
                  cancel: threading.Event | None) -> Path:
    args = ["make", "-C", str(program.directory), f"-j{jobs}", *compiler_cache()]
    if sanitize:
        args += [f"SANITIZE={sanitize} -fno-omit-frame-pointer", "OPT=-O1"]
        subprocess.run(["make", "-C", str(program.directory), "clean"], capture_output=True)
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True,  # its own group: cancel stops gcc too
                               env={**os.environ, "CCACHE_NOHASHDIR": "1"})
    stop = lambda p: os.killpg(p.pid, signal.SIGTERM)  # noqa: E731
    if cancel is not None:
        _stop_when_set(cancel, process, stop)
    lines = []
    assert process.stdout is not None
    try:
        for line in process.stdout:
            lines.append(line.rstrip("\n"))
            if log:
                log(lines[-1])
    except BaseException:  # interrupted (SIGINT/SIGTERM): make and gcc stop too
        _end_process(process, stop)
        raise
    code = process.wait()
    if cancel is not None and cancel.is_set():
        raise BuildError(f"building {program.directory} was cancelled")
    if code != 0:
        errors = [l for l in lines if "error" in l.lower() or l.startswith(("In file", "  "))]
        raise BuildError(f"building {program.directory} failed:\n" + "\n".join((errors or lines)[-40:]))
    (program.directory / BUILD_STAMP).write_text(json.dumps(
        {"program_digest": program_digest(program), "executable": program.program.name}))
    return program.program


#: What a build records next to the program: the digest of the files it built.
BUILD_STAMP = "build.json"


def program_digest(program: GeneratedProgram) -> str:
    """A digest of the program's files as they are on disk now."""
    digest = hashlib.sha256()
    for name in sorted(set(program.files) - {BUILD_STAMP}):
        path = program.directory / name
        digest.update(name.encode() + b"\0" + (path.read_bytes() if path.is_file() else b"(missing)"))
    return digest.hexdigest()[:16]


def check_built(program: GeneratedProgram) -> str:
    """The build's digest (the program files' digest it recorded); RunError,
    saying to rebuild, for an executable that was not built from the
    program's files as they are now (regenerated or edited since)."""
    executable = program.program
    if not executable.is_file():
        raise RunError(f"{executable} is not built: run `maestro build {program.directory}`")
    try:
        stamp = json.loads((program.directory / BUILD_STAMP).read_text())
    except (OSError, ValueError):
        stamp = {}
    if stamp.get("executable") != executable.name or stamp.get("program_digest") != program_digest(program):
        raise RunError(f"{executable} was not built from the program now in {program.directory} (its files "
                       f"changed since the build, or it was built elsewhere): rebuild it with "
                       f"`maestro build {program.directory}`")
    return stamp["program_digest"]


@dataclass
class RunResult:
    """Events of one run: its config line, stats lines and final totals."""

    config: dict[str, Any] = field(default_factory=dict)
    stats: list[dict[str, Any]] = field(default_factory=list)
    final: dict[str, Any] = field(default_factory=dict)
    results_path: Path | None = None
    #: the digest of the build that ran (check_built)
    build_digest: str = ""
    stderr: str = ""


_RUN_NUMBERS = itertools.count()


def online_cpus() -> list[int]:
    """The CPUs this process may run on."""
    return sorted(os.sched_getaffinity(0))


def cores_warning(cores: int) -> str:
    """What to tell before running `cores` worker cores here ('' if they fit)."""
    cpus = online_cpus()
    if cores <= len(cpus):
        return ""
    return (f"the program runs {cores} worker cores but this machine has {len(cpus)} CPU(s) online: "
            f"the cores share them, so the figures show contention, not {cores}-core scaling")


def lcore_args(cores: int) -> list[str]:
    """EAL lcore arguments for `cores` workers: one CPU each while there are
    enough, else all of them on the CPUs there are (DPDK refuses an lcore
    without a CPU: "lcore 2 unavailable")."""
    cpus = online_cpus()
    if cores <= len(cpus):
        return ["-l", ",".join(str(c) for c in cpus[:cores])]
    return ["--lcores", f"(0-{cores - 1})@({','.join(str(c) for c in cpus)})"]


def simulated_eal_args(cores: int, devices: int) -> list[str]:
    """EAL arguments for a run without NIC or hugepages (net_null ports);
    each run its own file prefix (its runtime folder is removed after it)."""
    return ["--no-huge", "--no-pci", "--no-shconf", "-m", "1024", *lcore_args(cores),
            *(f"--vdev=net_null{d}" for d in range(devices)), "--log-level=error",
            f"--file-prefix=maestro{os.getpid()}-{next(_RUN_NUMBERS)}"]


def dpdk_runtime_dir(eal_args: Sequence[str]) -> Path | None:
    """The folder DPDK's EAL creates for a run with a --file-prefix (as
    eal_create_runtime_dir does: /var/run/dpdk/PREFIX for root, else under
    $XDG_RUNTIME_DIR or /tmp), None without a prefix."""
    prefixes = [a.split("=", 1)[1] for a in eal_args if a.startswith("--file-prefix=")]
    if not prefixes or "/" in prefixes[-1]:
        return None
    base = "/var/run" if os.getuid() == 0 else os.environ.get("XDG_RUNTIME_DIR", "/tmp")
    return Path(base) / "dpdk" / prefixes[-1]


def run(
    program: GeneratedProgram,
    *,
    packets: Sequence[TracePacket] | None = None,
    replay: Path | None = None,
    eal_args: Sequence[str] | None = None,
    seconds: float = 0.0,
    once: bool = False,
    interval: float = 1.0,
    results: Path | None = None,
    result_bytes: bool = False,
    on_event: EventCallback | None = None,
    cancel: threading.Event | None = None,
    timeout: float | None = None,
    dump_assignment: Path | None = None,
    passes: int = 0,
    sim_layout: str | None = None,
    in_trace_time: bool = False,
) -> RunResult:
    """Run the built program and collect its events.

    With packets/replay the simulated NIC feeds net_null ports (once: one
    pass, then stop; passes: that many passes, then stop; else loop for
    `seconds`; sim_layout: "window" or "layout", how the simulated NIC
    lays the packets out, by default by their length, simnic.h;
    in_trace_time, with once: no core runs ahead of another in trace time,
    simnic.h sim_paced).  Results
    (with once or passes) hold a line per packet and pass.  With eal_args and no trace,
    it polls the NIC the EAL arguments name.  `cancel` stops the run
    (SIGINT: the program shuts down cleanly and prints its totals).
    """
    executable = program.program
    build_digest = check_built(program)
    if packets is not None:
        check_frames(packets)
    with tempfile.TemporaryDirectory(prefix="maestro-run-") as tmp:
        app_args = []
        if packets is not None:
            replay = Path(tmp) / "trace.replay"
            write_replay(replay, packets)
        if replay is not None:
            app_args += ["--trace", str(replay)]
        if once:
            app_args.append("--once")
            if in_trace_time:
                app_args.append("--in-trace-time")
        elif passes:
            app_args += ["--passes", str(int(passes))]
        if sim_layout is not None:
            if sim_layout not in ("window", "layout"):
                raise RunError(f"sim_layout is {sim_layout!r}: window or layout")
            app_args.append(f"--sim-{sim_layout}")
        if seconds:
            app_args += ["--seconds", str(seconds)]
        if results is not None:
            app_args += ["--results", str(results)] + (["--bytes"] if result_bytes else [])
        app_args += ["--interval", str(interval)]
        if dump_assignment is not None:  # the simulated NIC's RSS hash, RETA index, queue per packet
            app_args += ["--dump-assignment", str(dump_assignment)]
        eal = list(eal_args) if eal_args else simulated_eal_args(program.cores, program.devices)
        try:
            result = _stream([str(executable), *eal, "--", *app_args], on_event, cancel, timeout,
                             results)
            result.build_digest = build_digest
            return result
        finally:
            runtime = dpdk_runtime_dir(eal) if not eal_args else None  # only the prefix we chose
            if runtime is not None:
                shutil.rmtree(runtime, ignore_errors=True)


def check_frames(packets: Sequence[TracePacket]) -> None:
    """RunError naming the first packet longer than the simulated NIC carries
    (MAX_FRAME bytes), before anything runs."""
    for index, packet in enumerate(packets):
        if len(packet.data) > MAX_FRAME:
            raise RunError(f"packet {index}: {len(packet.data)} bytes; the simulated NIC carries "
                           f"frames of up to {MAX_FRAME} bytes")


def _stop_when_set(cancel: threading.Event, process: subprocess.Popen, stop) -> None:
    """Call stop(process) if `cancel` is set while it runs (a daemon thread)."""
    def watch() -> None:
        while process.poll() is None:
            if cancel.wait(0.1):
                if process.poll() is None:
                    try:
                        stop(process)
                    except ProcessLookupError:
                        pass
                return

    threading.Thread(target=watch, daemon=True).start()


def _end_process(process: subprocess.Popen, stop) -> None:
    """Stop a child that is still running with stop(process), then kill it
    if it has not exited within 10 s; reap it either way."""
    if process.poll() is None:
        try:
            stop(process)
            process.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            process.kill()
    process.wait()


def _set_after(seconds: float) -> threading.Event:
    """An event that sets itself after `seconds`."""
    event = threading.Event()
    timer = threading.Timer(seconds, event.set)
    timer.daemon = True
    timer.start()
    return event


def _stream(args: list[str], on_event, cancel, timeout, results) -> RunResult:
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    result = RunResult(results_path=results)
    stderr_chunks: list[str] = []
    reader = threading.Thread(target=lambda: stderr_chunks.append(process.stderr.read()), daemon=True)
    reader.start()
    interrupt = lambda p: p.send_signal(signal.SIGINT)  # noqa: E731 - clean exit, totals printed
    if cancel is not None:
        _stop_when_set(cancel, process, interrupt)
    if timeout is not None:
        _stop_when_set(_set_after(timeout), process, interrupt)
    assert process.stdout is not None

    def read_events() -> None:
        for line in process.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                continue  # DPDK's own chatter
            kind = event.get("type")
            if kind == "config":
                result.config = event
            elif kind == "stats":
                result.stats.append(event)
            elif kind == "final":
                result.final = event
            if on_event:
                on_event(event)

    try:
        read_events()
    except KeyboardInterrupt:
        # SIGINT/SIGTERM to us: the program stops cleanly and prints its
        # totals, which are passed on before the interrupt goes on.
        try:
            if process.poll() is None:
                interrupt(process)
            read_events()
        finally:
            _end_process(process, interrupt)
        raise
    except BaseException:
        _end_process(process, interrupt)
        raise
    code = process.wait()
    reader.join(timeout=5)
    result.stderr = "".join(stderr_chunks)
    if code != 0 or not result.final:
        raise RunError(f"{args[0]} exited with {code}:\n{result.stderr.strip()[-3000:]}")
    return result
