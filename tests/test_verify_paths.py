"""Verification that says what it reached: traffic from the explored paths,
coverage of both runs in the verdict, and a wrong plan caught."""
import json
from pathlib import Path

import pytest


from analyses.model import Analysis
from analyses.planner import plan
from analyses.report import analyze
from codegen import generator
from codegen.generator import GenerateError, generate
from codegen.path_traffic import path_traffic
from codegen.program import build
from codegen.trace import read_trace, write_pcapng
from codegen.traffic import generate as traffic
from codegen.rss_queue import queue_function
from codegen.verify import full_sharded_tables, prepare, sharded_objects, verify_program, verify_traffics
from workbench.cli import main as maestro


def test_path_traffic_reaches_every_fw_path_but_the_full_table():
    generated = path_traffic("fw", seed=3)
    missed = {p for ids in generated.coverage.missed().values() for p in ids}
    full = {p.id for p in generated.analysis.paths
            if any(c.function == "dchain_allocate_new_index" and c.outcome == 0 for c in p.calls)}
    assert missed == full and full  # only "flow_chain full" is out of reach at 65536 flows
    assert not generated.coverage.unexplained
    # replies reach flows that requests created: WAN packets forwarded to the LAN
    wan_hits = [p for p in generated.analysis.paths if p.device == [1] and p.outputs == [0]]
    assert wan_hits and all(p.id in generated.coverage.reached[1] for p in wan_hits)


def test_a_small_capacity_reaches_the_full_table_too():
    generated = path_traffic("fw", defines={"FW_CAPACITY": 4}, seed=3)
    assert generated.coverage.complete(), generated.notes


def test_a_sharded_table_is_filled_on_one_core(tmp_path):
    """fw's flow table is sharded: each core has its own, which fills at
    another moment than the NF's one.  Path traffic keeps the table from
    filling until the end, then pauses until every flow expired and fills it
    with flows of one core, so that core's table and the NF's fill together:
    the full-table paths are reached and the program is equivalent on them."""
    prepared = prepare("fw", defines={"FW_CAPACITY": "64"}, out_dir=tmp_path / "fw")
    [(sent, verdict, _)] = verify_traffics(prepared, ["paths"], packets=0)
    assert verdict.equivalent, verdict.to_json()
    cov = verdict.reference_coverage
    assert cov.complete(), sent.notes
    full = full_sharded_tables(prepared.analysis, prepared.plan)
    assert full and set(full) <= set(cov.reached[0])
    times = [p.time_ns for p in sent.packets]
    pause = max(range(1, len(times)), key=lambda i: times[i] - times[i - 1])
    assert times[pause] - times[pause - 1] > 10_000_000_000  # FW_EXPIRATION_TIME
    queue = queue_function(prepared.plan, prepared.analysis.devices)
    assert len({queue(p.device, p.data) for p in sent.packets[pause:]}) == 1
    assert len(sent.packets) - pause > 64  # the fill
    assert len({queue(p.device, p.data) for p in sent.packets[:pause]}) == 2  # spread before


def test_nat_is_verified_on_its_wan_translation(tmp_path):
    """Path traffic of three rounds (a fixed amount of work, where a time
    budget reached fewer paths on a loaded machine) reaches NAT's replies
    translated back to the LAN; the parallel program is equivalent on them."""
    prepared = prepare("nat", out_dir=tmp_path / "nat", nic="e810", explore_paths=True)
    generated = path_traffic("nat", paths=prepared.exploration.paths, analysis=prepared.analysis,
                             no_fill=dict.fromkeys(sharded_objects(prepared.plan), "per core"),
                             rounds=3, seconds=600)
    verdict, _ = verify_program(prepared.program, prepared.analysis, generated.packets)
    assert verdict.equivalent, verdict.to_json()
    cov = verdict.reference_coverage
    saved = Analysis.load(Path(__file__).parent / "fixtures" / "analysis" / "nat.json")  # kept fresh
    translated = {p.id for p in saved.paths if p.device == [1] and p.outputs == [0]}
    assert translated & set(cov.reached[1])  # replies translated back to the LAN, told apart
    # each translated path is told apart now (checksum conditions included);
    # the rarest, a TCP reply whose checksum comes out exactly 0 after the
    # update, needs a flow whose own addresses allow it, which path traffic
    # may not have created in three rounds
    missed = translated - set(cov.reached[1]) - set(cov.ambiguous)
    assert len(missed) <= 1, [cov.described[p] for p in missed]
    assert "re-addressed replies" in verdict.justifications
    assert verdict.parallel_coverage.reached[1]
    doc = verdict.to_json()
    assert doc["coverage"]["sequential"]["reached"] and "never_reached" in doc


def test_a_wrong_plan_is_caught_on_the_paths_it_breaks(tmp_path, capsys, monkeypatch):
    """fw sharded with keys that ignore the WAN/LAN relation: replies go to
    another core than their flow.  generate refuses such a plan (z3 proves
    the keys again); made anyway (as a program edited by hand would be),
    `maestro verify DIR` checks it as generated, with its own (wrong) plan,
    on the default path traffic."""
    analysis = analyze("fw")
    doc = plan(analysis, 2, "e810").to_json()
    # a key that hashes differently on the WAN: the reply of a LAN flow lands
    # on an arbitrary core
    doc["rss"]["1"]["key"] = "".join(reversed(doc["rss"]["1"]["key"]))
    with pytest.raises(GenerateError, match="counterexample"):
        generate("fw", doc, analysis, tmp_path / "refused")
    monkeypatch.setattr(generator, "check_plan_matches", lambda *args: None)
    program = generate("fw", doc, analysis, tmp_path / "fw-wrong")
    monkeypatch.undo()
    build(program)
    report = tmp_path / "verdict.json"
    assert maestro(["verify", str(program.directory), "--packets", "500", "--json", str(report)]) == 1
    printed = capsys.readouterr().out
    assert "DIFFERENT" in printed and program.digest in printed
    verdict = json.loads(report.read_text())
    assert verdict["plan_digest"] == program.digest and not verdict["equivalent"]
    assert verdict["coverage"]["reached"]["1"]  # replies reached, and told apart
    # the folder fixes its plan: options that would change it are refused
    assert maestro(["verify", str(program.directory), "--cores", "4"]) == 2
    assert "generate it again" in capsys.readouterr().err


def test_cli_traffic_paths_writes_a_trace_and_names_what_it_missed(tmp_path, capsys):
    out = tmp_path / "fw-paths.pcapng"
    assert maestro(["traffic", "--profile", "paths", "fw", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "paths reached: device 0" in printed and "not reached" in printed and "full" in printed
    assert len(read_trace(out)) > 20


def test_cli_verify_prints_coverage_and_never_reached(tmp_path, capsys):
    """Several traces in one run: the paths profile and a trace of the
    user's own; a verdict and coverage for each, and for all together."""
    report, own = tmp_path / "verdict.json", tmp_path / "own.pcapng"
    write_pcapng(own, traffic("sessions", 20, 200, seed=9))
    assert maestro(["verify", "fw", "--packets", "0", "--profile", "paths", "--trace", str(own),
                    "--json", str(report)]) == 0
    printed = capsys.readouterr().out
    assert "paths, " in printed and "own.pcapng, 200 packets: equivalent" in printed
    assert "all traces: paths reached: device 0" in printed and "never reached: path" in printed
    doc = json.loads(report.read_text())
    assert [t["traffic"] for t in doc["traces"]] == ["paths", "own.pcapng"]
    assert doc["traces"][0]["coverage"]["parallel"]["summary"].startswith("paths reached")
    reached = {d: set(ids) for d, ids in doc["coverage"]["reached"].items()}
    for one in doc["traces"]:
        assert all(set(ids) <= reached[d] for d, ids in one["coverage"]["sequential"]["reached"].items())


def test_traffic_paths_needs_an_nf(capsys):
    assert maestro(["traffic", "--profile", "paths", "-o", "/tmp/x.pcapng"]) != 0
    assert "needs the NF" in capsys.readouterr().err


def test_verify_report_per_sample(tmp_path, capsys):
    """`make verify-samples`' script: a row per NF with its coverage."""
    from codegen.verify_bench import main as verify_bench

    out = tmp_path / "verify.json"
    assert verify_bench(["--nf", "sbridge", "-D", "sbridge:SBRIDGE_CAPACITY=4", "--json", str(out)]) == 0
    [row] = json.loads(out.read_text())["results"]
    assert row["equivalent"] and row["defines"] == {"SBRIDGE_CAPACITY": "4"}
    assert row["reached"] == row["paths"] and row["share"] == 1.0
    assert "verification on the paths profile" in capsys.readouterr().out  # the table
    with pytest.raises(SystemExit):  # -D needs the NF it is for
        verify_bench(["--nf", "sbridge", "-D", "SBRIDGE_CAPACITY=4"])


def test_path_traffic_in_a_worker_thread():
    """The workbench solves in a thread, where claripy builds z3 terms in
    that thread's own context."""
    import threading

    found = {}
    worker = threading.Thread(target=lambda: found.update(traffic=path_traffic("sbridge", seed=2, seconds=20)))
    worker.start()
    worker.join()
    assert found["traffic"].coverage.complete()
