"""Fuzzing (issue 12): property-based tests of the loaders (traces, sessions,
plans, the CLI's arguments) and random frames through the C packet parsers
under ASan + UBSan.

`make test` runs a short round (about half a minute); `make fuzz` sets
MAESTRO_FUZZ_SECONDS (C fuzzing time) and MAESTRO_FUZZ_EXAMPLES (hypothesis
examples per property) for a long one.
"""
import argparse
import json
import os
import random
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analyses.errors import MaestroError
from analyses.model import Analysis
from analyses.nf_source import build_key, sample_names
from codegen.generator import GenerateError, check_plan, generate
from analyses.locations import build_root
from codegen.reference import ReferenceError, build_reference, run_reference, run_replay
from codegen.runtime import RUNTIME_DIR, RUNTIME_HEADERS
from codegen.trace import TraceError, TracePacket, read_trace, write_pcapng, write_replay
from workbench.cli import build_parser
from workbench.session import Session, SessionError

FUZZ_SECONDS = float(os.environ.get("MAESTRO_FUZZ_SECONDS", "4"))
EXAMPLES = int(os.environ.get("MAESTRO_FUZZ_EXAMPLES", "60"))
DRIVER = Path(__file__).parent / "c" / "fuzz_frames.c"
FW = Analysis.load(Path(__file__).parent / "fixtures" / "analysis" / "fw.json")

fuzz = settings(max_examples=EXAMPLES, deadline=None, derandomize=EXAMPLES <= 100,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20)


# --- traces -------------------------------------------------------------------------------------

packets = st.lists(st.builds(TracePacket, st.integers(0, 3), st.integers(0, 2**64 - 1),
                             st.binary(min_size=1, max_size=200)), max_size=20)


@fuzz
@given(packets)
def test_a_written_trace_reads_back_the_same(tmp_path_factory, trace):
    path = tmp_path_factory.mktemp("trace") / "t.pcapng"
    assert write_pcapng(path, trace, devices=4) == len(trace)
    assert read_trace(path) == trace


@fuzz
@given(packets, st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=8),
       st.integers(0, 10**6))
def test_a_corrupted_trace_is_read_or_refused_with_its_file(tmp_path_factory, trace, flips, cut):
    """Flipped bytes and a truncation: packets, or a TraceError naming the file."""
    path = tmp_path_factory.mktemp("trace") / "t.pcapng"
    write_pcapng(path, trace or [TracePacket(0, 0, b"x" * 60)], devices=4)
    data = bytearray(path.read_bytes())
    for position, value in flips:
        data[position % len(data)] = value
    path.write_bytes(bytes(data[:max(1, cut % (len(data) + 1))]))
    try:
        read = read_trace(path)
    except TraceError as exc:
        assert str(exc).startswith(str(path))
    else:
        assert all(0 <= p.time_ns < 2**64 and 0 < len(p.data) <= 0xFFFF for p in read)


# --- sessions and plans ----------------------------------------------------------------------------


@fuzz
@given(st.dictionaries(st.sampled_from(["nf", "step", "settings", "results", "source_digest", "analysis",
                                        "plan"]), json_values, max_size=5),
       st.dictionaries(st.sampled_from(["cores", "nic", "strategy", "overrides"]), json_values, max_size=4))
def test_any_session_document_loads_or_names_its_problem(doc, settings_doc):
    document = {"schema": 1, "kind": "maestro-session", **doc}
    if "settings" not in doc:
        document["settings"] = settings_doc
    try:
        session = Session.from_json(document)
    except SessionError:
        return
    assert session.nf is None or isinstance(session.nf, str)
    assert 1 <= session.settings.cores <= 64 and isinstance(session.step, str)


bench_rows = st.fixed_dictionaries({}, optional={
    name: json_values | st.floats(allow_nan=True) for name in (
        "strategy", "cores", "traffic", "mpps", "per_core_mpps", "speedup", "per_core_latency_ns",
        "ns_per_packet", "harness_ns", "nf_ns", "error")})


@fuzz
@given(st.fixed_dictionaries({"ok": st.booleans() | json_values}, optional={
    "cores": json_values, "strategies": json_values, "traffic": json_values, "seconds": json_values,
    "cancelled": json_values, "rows": st.lists(bench_rows | json_values, max_size=4) | json_values}))
def test_any_bench_result_loads_or_names_its_problem_and_shows(bench):
    """A session's bench (results.bench) loads or is refused naming it; one
    that loads fills the Run screen's table and chart without an error."""
    from workbench.widgets.bench_view import ScalingChart, row_cells

    try:
        session = Session.from_json({"schema": 1, "kind": "maestro-session", "results": {"bench": bench}})
    except SessionError as exc:
        assert "results.bench" in str(exc)
        return
    doc = session.results["bench"]
    rows = (doc.get("rows") or []) if doc["ok"] else []  # what the Run screen shows of it
    for row in rows:
        assert len(row_cells(row)) >= 9
    chart = ScalingChart()
    chart.show_rows(rows)


plan_values = st.fixed_dictionaries({}, optional={
    "cores": json_values | st.integers(-2, 70), "strategy": json_values, "objects": json_values,
    "rss": json_values, "reta": json_values | st.lists(st.integers(-1, 3), max_size=8),
    "shared_variables": json_values})


@fuzz
@given(st.one_of(json_values, plan_values))
def test_any_plan_document_generates_or_is_refused(tmp_path_factory, doc):
    out = tmp_path_factory.mktemp("plan") / "program"
    try:
        check_plan(doc)
        generate("fw", doc, FW, out)
    except GenerateError:
        assert not (out / "program.json").exists()


# --- the CLI's arguments -------------------------------------------------------------------------

OPTIONS = {
    "traffic": ["--packets", "--flows", "--zipf-s", "--rate", "--size", "--devices", "--malformed-fraction",
                "--churn-rate", "--seed"],
    "run": ["--seconds", "--interval", "--packets", "--flows", "--eal"],
    "verify": ["--packets", "--flows", "--cores", "--seed"],
    "bench": ["--cores", "--strategy", "--traffic", "--seconds", "--packets", "--flows"],
    "plan": ["--cores", "--seed"],
    "analyze": ["--max-seconds", "--max-paths", "--max-memory-mb"],
}
option_values = st.one_of(st.text(max_size=12), st.integers().map(str), st.floats().map(str),
                          st.sampled_from(["nan", "inf", "-inf", "", "0", "-1", "1e400", "10000000000"]))


@fuzz
@given(st.sampled_from(sorted(OPTIONS)), st.data())
def test_the_parser_accepts_or_refuses_every_value_in_range(command, data):
    """A value is refused (exit 2) or parsed into a finite number in range."""
    option = data.draw(st.sampled_from(OPTIONS[command]))
    value = data.draw(option_values)
    parser = build_parser()
    parser.exit = lambda status=0, message=None: (_ for _ in ()).throw(SystemExit(status))
    target = [] if command in ("run",) else ["fw"]
    argv = [command, *(["/nowhere"] if command == "run" else target), f"{option}={value}",
            *(["-o", "x.pcapng"] if command == "traffic" else []),
            *(["--cores", "1"] if command == "plan" and option != "--cores" else [])]
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        assert exc.code == 2
        return
    for key, parsed in vars(args).items():
        for number in parsed if isinstance(parsed, list) else [parsed]:
            if isinstance(number, float):
                assert number == number and abs(number) != float("inf"), (key, number)


def test_parser_errors_are_one_line(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["run", "x", "--seconds", "nan"])
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert isinstance(build_parser(), argparse.ArgumentParser)


# --- random frames through the C parsers under ASan + UBSan --------------------------------------------

SANITIZE = ["-g", "-O1", "-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"]


def fuzz_driver() -> Path:
    """tests/c/fuzz_frames.c built with the sanitizers (cached by its sources)."""
    dpdk = RUNTIME_DIR / "dpdk"
    sources = [DRIVER, dpdk / "simnic.c", dpdk / "simnic.h", dpdk / "rt.h", *RUNTIME_HEADERS]
    exe = build_root() / "fuzz" / f"fuzz_frames-{build_key(*sources)}"
    if exe.is_file():
        return exe
    exe.parent.mkdir(parents=True, exist_ok=True)
    cflags = subprocess.run(["pkg-config", "--cflags", "libdpdk"], capture_output=True, text=True,
                            check=True).stdout.split()
    libs = subprocess.run(["pkg-config", "--libs", "libdpdk"], capture_output=True, text=True,
                          check=True).stdout.split()
    partial = exe.with_name(exe.name + f".{os.getpid()}.tmp")
    subprocess.run(["gcc", "-std=gnu11", *SANITIZE, "-msse4.2", "-Wall", "-Wextra", "-Werror",
                    f"-I{RUNTIME_DIR / 'include'}", f"-I{RUNTIME_DIR / 'state'}", f"-I{dpdk}", *cflags,
                    str(DRIVER), "-o", str(partial), *libs], check=True, capture_output=True)
    partial.replace(exe)
    return exe


def test_random_frames_and_replay_files_through_the_simulated_nic_parser(tmp_path):
    seed = random.SystemRandom().randrange(2**32) if FUZZ_SECONDS > 60 else 12
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=0:abort_on_error=0", UBSAN_OPTIONS="print_stacktrace=1")
    ran = subprocess.run([str(fuzz_driver()), str(FUZZ_SECONDS), str(seed), str(tmp_path / "scratch")],
                         capture_output=True, text=True, env=env, timeout=FUZZ_SECONDS + 60)
    assert ran.returncode == 0, f"seed {seed}:\n{ran.stderr[-3000:]}"
    frames = int(ran.stdout.split()[1])
    assert frames > 1000 * FUZZ_SECONDS


def random_frame(rng: random.Random) -> bytes:
    """0..9,216 random bytes, often starting like Ethernet + IPv4 + TCP/UDP."""
    length = rng.choice([rng.randrange(1, 64), rng.randrange(1, 200), rng.randrange(1, 9217)])
    data = bytearray(rng.randbytes(length))
    if rng.random() < 0.75 and length > 24:
        data[12:14] = b"\x08\x00"
        data[14] = 0x40 | rng.randrange(16)
        data[23] = rng.choice([6, 17, 1])
    return bytes(data)


#: A short round covers NFs with different parsers; `make fuzz` runs every sample.
FUZZED_NFS = sample_names() if FUZZ_SECONDS > 60 else ["fw", "lb", "psd"]


@pytest.mark.parametrize("nf", FUZZED_NFS)
def test_random_frames_through_each_sample_under_asan(nf):
    """The reference runner and every sample NF on random frames of up to
    a jumbo frame: no sanitizer report, every packet accounted for."""
    count = max(500, int(300 * FUZZ_SECONDS))
    rng = random.Random(nf)
    trace = [TracePacket(rng.randrange(2), 1000 * i, random_frame(rng)) for i in range(count)]
    run = run_reference(nf, trace, sanitize=True, with_bytes=False)
    totals = run.totals
    assert totals["packets"] == count and totals["invalid"] == 0


def test_a_replay_count_the_file_cannot_hold_is_refused_before_allocating(tmp_path):
    """A corrupted replay header (2^31 packets) used to make the reader
    allocate 48 GB up front (ASan: out of memory)."""
    replay = tmp_path / "t.replay"
    write_replay(replay, [TracePacket(0, 0, b"x" * 60)])
    data = bytearray(replay.read_bytes())
    data[8:12] = (2**31).to_bytes(4, "little")
    replay.write_bytes(bytes(data))
    exe = build_reference("nop", sanitize=True)
    with pytest.raises(ReferenceError, match="the header says 2147483648 packets, the file holds at most 6"):
        run_replay("nop", exe, replay)


def test_hypothesis_is_configured(tmp_path):
    """The fuzz settings come from the environment (make fuzz raises them)."""
    assert fuzz.max_examples == EXAMPLES and json.dumps(EXAMPLES)
    with pytest.raises(MaestroError):
        check_plan([])
