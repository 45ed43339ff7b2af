"""Generated DPDK programs: build, simulated NIC, stats, verification, errors."""
import shutil
import subprocess
from pathlib import Path
from functools import lru_cache

import pytest

from analyses.model import Analysis
from analyses.nf_source import sample_names
from analyses.planner import plan
from analyses.toeplitz import toeplitz_hash
from codegen.generator import GenerateError, generate
from codegen.program import BuildError, RunError, build, run
from codegen.rss_queue import queue_function
from codegen.traffic import generate as traffic
from codegen.verify import verify_nf, verify_program
FIXTURES = Path(__file__).parent / "fixtures" / "analysis"

RTM = open("/proc/cpuinfo").read().count(" rtm") > 0


@lru_cache(maxsize=None)
def analysis(nf):
    return Analysis.load(FIXTURES / f"{nf}.json")


def built(nf, tmp_path, strategy=None, lock="maestro", cores=2, planner="auto", sanitize=""):
    doc = plan(analysis(nf), cores=cores, nic="82599", strategy=planner).to_json()
    program = generate(nf, doc, analysis(nf), tmp_path / f"{nf}-{strategy}-{lock}",
                       strategy=strategy, lock=lock)
    build(program, sanitize=sanitize)
    return program, doc


def test_generated_files_name_nf_plan_and_strategy(tmp_path):
    program, doc = built("fw", tmp_path)
    for name in ("config.c", "Makefile"):
        text = (program.directory / name).read_text()
        assert "NF: fw" in text and program.digest in text and "strategy: sn" in text
    assert "-Wall -Wextra -Werror" in (program.directory / "Makefile").read_text()
    assert (program.directory / "nf" / "fw.c").read_text() == open("sample_nfs/fw.c").read()
    assert program.program.is_file()


def test_simulated_nic_assigns_queues_exactly_as_toeplitz(tmp_path):
    program, doc = built("fw", tmp_path)
    packets = traffic("uniform", 300, 2000, seed=5) + traffic("malformed", 50, 300, seed=6)
    dump = tmp_path / "assignment.txt"
    run(program, packets=packets, once=True, dump_assignment=dump)
    reta = doc["reta"]
    queue_of = queue_function(doc, 2)
    checked = 0
    for line, packet in zip(dump.read_text().splitlines(), packets):
        index, device, hash_text, reta_index, queue = line.split()
        d = packet.data
        assert int(queue) == queue_of(int(device), d), index  # the Python twin path traffic uses
        ipv4 = len(d) >= 34 and d[12:14] == b"\x08\x00" and d[14] >> 4 == 4 and d[14] & 15 >= 5
        if hash_text.startswith("-"):  # not hashed (non-IPv4, runt, bad IHL): queue 0
            assert not ipv4 and queue == "0"
            continue
        assert ipv4
        l4_start = 14 + (d[14] & 15) * 4
        fragment = int.from_bytes(d[20:22], "big") & 0x3FFF
        l4 = d[23] in (6, 17) and not fragment and len(d) >= l4_start + 4
        data = d[26:34] + (d[l4_start:l4_start + 4] if l4 else b"")
        expected = toeplitz_hash(bytes.fromhex(doc["rss"][device]["key"]), data)
        assert int(hash_text, 16) == expected, (index, hash_text, hex(expected))
        assert int(reta_index) == expected % len(reta) and int(queue) == reta[int(reta_index)] % 2
        checked += 1
    assert checked > 1500


def test_stats_stream_per_core_and_conservation(tmp_path):
    program, _ = built("pol", tmp_path)
    events = []
    result = run(program, packets=traffic("zipf", 1000, 20000, seed=2), seconds=1.6,
                 interval=0.4, on_event=events.append)
    assert result.config["workers"] == 2 and result.config["simulated"] is True
    assert len(result.stats) >= 2
    for event in result.stats:
        assert [c["worker"] for c in event["lcores"]] == [0, 1]
        assert all(c["rx"] >= c["tx"] + c["drop"] - 64 and c["mpps"] >= 0 for c in event["lcores"])
    assert result.final["conserved"] is True
    assert result.final["rx"] == result.final["tx"] + result.final["drop"] > 20000
    assert events[0]["type"] == "config" and events[-1]["type"] == "final"


@pytest.mark.parametrize("nf", sample_names())
def test_parallel_program_matches_the_sequential_nf(nf, tmp_path):
    verdict, info = verify_nf(nf, analysis=analysis(nf), out_dir=tmp_path / nf, packets=3000,
                              traffic="sessions")
    assert verdict.equivalent, verdict.to_json()
    expected = "locks" if nf in ("bridge", "lb") else "sn"
    assert info["strategy"] == expected
    assert info["final"]["processed_once"] == 3000
    if nf == "nat":  # per-core port allocation: allowed, and only that
        assert set(verdict.justifications) == {"state-chosen values"}
    elif expected == "sn":
        assert verdict.identical == verdict.packets


@pytest.mark.parametrize("lock", ["maestro", "object", "global"])
@pytest.mark.parametrize("nf", ["fw", "nat"])
def test_lock_granularities_are_serializable(nf, lock, tmp_path):
    verdict, info = verify_nf(nf, strategy="locks", lock=lock, analysis=analysis(nf),
                              out_dir=tmp_path / nf, packets=3000, traffic="churn", flows=300)
    assert info["strategy"] == "locks"
    assert verdict.equivalent, verdict.to_json()


#: Mixed plans (sharded and locked objects in one program): hhh with two of
#: its three prefix tables locked by hand (two lock groups beside a sharded
#: one).  (cl with one object locked by hand runs in the workbench's pilot
#: test, tests/test_tui_program.py.)
MIXED = {"hhh": {"prefix16_map": "lock", "prefix24_map": "lock"}}


@pytest.mark.parametrize("nf", sorted(MIXED))
def test_mixed_plans_are_equivalent_with_each_lock_kind(nf, tmp_path):
    doc = plan(analysis(nf), cores=2, nic="82599", overrides=MIXED[nf]).to_json()
    assert doc["strategy"] == "mixed"
    locked = {o["group"] for o in doc["objects"] if o["decision"] == "lock"}
    assert len(locked) == 2
    packets = traffic("churn", 400, 3000, seed=3, devices=analysis(nf).devices)
    for lock in ("maestro", "object", "global"):
        # One folder: generating again rewrites config.c alone, so only it is rebuilt.
        program = generate(nf, doc, analysis(nf), tmp_path / nf, lock=lock)
        assert program.strategy == "locks" and program.lock == lock
        build(program)
        verdict, final = verify_program(program, analysis(nf), packets)
        assert verdict.equivalent, (lock, verdict.to_json())
        assert verdict.packets == len(packets)


def test_maestro_locks_keep_existing_flows_in_read_mode(tmp_path):
    # Few flows, many packets: after the first packets every packet is a
    # known flow, whose rejuvenation stays core-local: few re-runs.
    verdict, info = verify_nf("fw", strategy="locks", lock="maestro", analysis=analysis("fw"),
                              out_dir=tmp_path / "fw", packets=4000, traffic="zipf", flows=50)
    assert verdict.equivalent
    assert info["final"]["aborts"] < 200  # one per new flow, not one per packet


@pytest.mark.skipif(RTM, reason="this CPU has RTM: the refusal cannot be shown")
def test_tm_is_refused_clearly_without_rtm(tmp_path):
    program, _ = built("fw", tmp_path, strategy="tm", planner="tm")
    with pytest.raises(RunError, match="needs Intel RTM"):
        run(program, packets=traffic("uniform", 10, 100), once=True)


@pytest.mark.skipif(not RTM, reason="this CPU lacks RTM")
def test_tm_matches_the_sequential_nf(tmp_path):
    verdict, _ = verify_nf("fw", strategy="tm", analysis=analysis("fw"), out_dir=tmp_path / "fw",
                           traffic="sessions")
    assert verdict.equivalent


def test_shared_nothing_refused_when_the_plan_locks(tmp_path):
    doc = plan(analysis("bridge"), cores=2, nic="82599").to_json()
    with pytest.raises(GenerateError, match="shared-nothing cannot keep mac_map shared"):
        generate("bridge", doc, analysis("bridge"), tmp_path, strategy="sn")


def test_build_failure_shows_the_compiler_message(tmp_path):
    nf = tmp_path / "fw.c"
    nf.write_text(open("sample_nfs/fw.c").read() + "\n#ifdef BREAK_ME\nint broken = ;\n#endif\n")
    doc = plan(analysis("fw"), cores=2, nic="82599").to_json()
    program = generate(nf, doc, analysis("fw"), tmp_path / "out", defines={"BREAK_ME": 1})
    with pytest.raises(BuildError, match=r"fw\.c:\d+:\d+: error"):
        build(program)


@pytest.mark.parametrize("nf", sample_names())
def test_sanitized_program_survives_malformed_traffic(nf, tmp_path):
    program, _ = built(nf, tmp_path, sanitize="-fsanitize=address,undefined")
    packets = traffic("malformed", 300, 3000, seed=7, malformed_fraction=0.15)
    result = run(program, packets=packets, once=True)
    assert result.final["processed_once"] == 3000 and result.final["conserved"] is True
    assert "runtime error" not in result.stderr and "AddressSanitizer" not in result.stderr


@pytest.mark.skipif(not shutil.which("ccache"), reason="ccache is not installed")
def test_programs_share_the_runtime_objects_through_ccache(tmp_path, monkeypatch):
    """Two plans' programs compile the same runtime files: the second build
    takes them from ccache (a cache of its own here, so the hits are ours)."""
    monkeypatch.setenv("CCACHE_DIR", str(tmp_path / "ccache"))
    fw = analysis("fw")
    made = []
    for cores in (2, 3):
        program = generate("fw", plan(fw, cores=cores, nic="82599").to_json(), fw, tmp_path / f"fw{cores}")
        lines: list[str] = []
        build(program, log=lines.append)
        made.append(lines)
    assert any(line.startswith("ccache gcc") for line in made[1])
    stats = dict(line.split("\t") for line in subprocess.run(
        ["ccache", "--print-stats"], capture_output=True, text=True, check=True).stdout.splitlines())
    runtime = sum(1 for line in made[1] if "-c runtime/" in line)
    assert runtime >= 10 and int(stats["direct_cache_hit"]) >= runtime


def test_cancelled_build_stops_make(tmp_path, monkeypatch):
    import subprocess
    import threading

    monkeypatch.setenv("MAESTRO_CCACHE", "0")  # a cached build could end before the cancel
    doc = plan(analysis("fw"), cores=2, nic="82599").to_json()
    program = generate("fw", doc, analysis("fw"), tmp_path / "fw")
    cancel = threading.Event()
    threading.Timer(0.5, cancel.set).start()
    with pytest.raises(BuildError, match="cancelled"):
        build(program, cancel=cancel)
    left = subprocess.run(["pgrep", "-f", f"make -C {program.directory}"], capture_output=True)
    assert left.returncode == 1  # no make left behind
    assert not program.program.exists()


def test_run_refuses_a_binary_built_from_other_files(tmp_path):
    """Regenerated (another lock granularity, same plan) without a rebuild:
    the old executable is refused, with what to do; a rebuild runs."""
    program, doc = built("fw", tmp_path, strategy="locks", lock="object")
    again = generate("fw", doc, analysis("fw"), program.directory, strategy="locks", lock="global")
    assert again.digest == program.digest  # the plan is the same: only the files tell
    with pytest.raises(RunError, match="rebuild it with `maestro build"):
        run(again, packets=traffic("uniform", 10, 100, seed=1), once=True)
    build(again)
    assert run(again, packets=traffic("uniform", 10, 100, seed=1), once=True).final["rx"] == 100


def test_divided_capacities_shrink_each_cores_tables(tmp_path):
    """--capacity divide: each core's instance of fw's sharded tables gets
    half the entries (its state memory about halves), and the program still
    behaves as the sequential NF."""
    fw = analysis("fw")
    programs = {}
    for policy in ("keep", "divide"):
        doc = plan(fw, cores=2, nic="82599", capacity=policy).to_json()
        assert {o["per_core_capacity"] for o in doc["objects"]} == {65536 if policy == "keep" else 32768}
        programs[policy] = generate("fw", doc, fw, tmp_path / policy)
        build(programs[policy])
    packets = traffic("sessions", 100, 2000, seed=5)
    state = {policy: run(p, packets=packets, once=True).final["state"]["per_core"]
             for policy, p in programs.items()}
    assert all(0.4 < d / k < 0.6 for d, k in zip(state["divide"], state["keep"])), state
    verdict, _ = verify_program(programs["divide"], fw, packets)
    assert verdict.equivalent, verdict.to_json()


def test_a_plan_cannot_divide_a_sketch(tmp_path):
    """A count-min sketch's width is part of what it estimates: a plan
    (edited by hand) that divides cl's sharded sketch is refused."""
    cl = analysis("cl")
    doc = plan(cl, cores=2, nic="82599", capacity="divide").to_json()
    sketch = next(o for o in doc["objects"] if o["kind"] == "sketch")
    assert sketch["decision"] == "shard" and sketch["per_core_capacity"] == sketch["capacity"]
    sketch["per_core_capacity"] = sketch["capacity"] // 2
    with pytest.raises(GenerateError, match="keeps its capacity"):
        generate("cl", doc, cl, tmp_path / "cl")
