"""Snapshots of every screen (Load, Analyze, Inspect, Decide, Generate, Run,
and the help) at 80x24 and 120x36, from the saved analyses (no timing or
machine-specific path is shown).  The Run screen shows a recorded run and
verification (a reopened session's: nothing is built or run here), nat's,
whose equivalence allows differences, which the headline states; and, from
a session file, fw's bench (its table and scaling chart).

Update with `pytest tests/test_tui_snapshots.py --snapshot-update` and look
at the SVGs (tests/__snapshots__/test_tui_snapshots/)."""
import dataclasses
import json
import re
from pathlib import Path

import pytest

from analyses import planner
from analyses.model import Analysis
from codegen.generator import generate
from codegen.program import BUILD_STAMP, program_digest
from codegen.verify import ALLOWED
from workbench.app import Workbench
from workbench.session import PlanSettings, Session
from tests.test_tui_flow import private_home  # noqa: F401  (a home of its own)

FIXTURES = Path(__file__).parent / "fixtures" / "analysis"
SIZES = {"80x24": (80, 24), "120x36": (120, 36)}


def fixture(name: str) -> Analysis:
    """A saved analysis with its seconds fixed (regenerating the fixtures
    measures them again)."""
    analysis = Analysis.load(FIXTURES / f"{name}.json")
    return dataclasses.replace(analysis, stats=dataclasses.replace(analysis.stats, seconds=1.5))


@pytest.fixture
def steady_planner(monkeypatch):
    """The planner with its proof's seconds fixed (they vary run to run)."""
    real = planner.plan

    def plan(*args, **kwargs):
        result = real(*args, **kwargs)
        return dataclasses.replace(
            result, proof=dataclasses.replace(result.proof, seconds=0.01),
            synthesis=dataclasses.replace(result.synthesis, seconds=0.01),
            explanation=re.sub(r"\d+\.\d+ s\)", "0.01 s)", result.explanation))

    monkeypatch.setattr(planner, "plan", plan)
    return plan


async def settle(pilot) -> None:
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    await pilot.pause()


def lcore(worker: int, rx: int, drop: int, mpps: float) -> dict:
    return {"worker": worker, "rx": rx, "tx": rx - drop, "drop": drop, "flood": 0, "aborts": 0, "tx_fail": 0,
            "mpps": mpps, "latency_ns": {"p50": 850 + 50 * worker, "p99": 2300, "p999": 5100}}


def recorded_run() -> dict:
    """A run of nat's program on 2 cores as the session records it."""
    events = []
    for t, scale in ((0.5, 1), (1.0, 2)):
        cores = [lcore(0, 2_100_000 * scale, 300_000 * scale, 4.2), lcore(1, 2_000_000 * scale, 280_000 * scale, 4.0)]
        events.append({"type": "stats", "t": t, "lcores": cores, "rx": sum(c["rx"] for c in cores),
                       "tx": sum(c["tx"] for c in cores), "drop": sum(c["drop"] for c in cores), "aborts": 0,
                       "mpps": 8.2, "latency_ns": {"p50": 870, "p99": 2300, "p999": 5100}})
    final = {**events[-1], "type": "final", "conserved": True}
    return {"ok": True, "traffic": "sessions", "flows": 1000, "packets": 5000, "seconds": 1.0, "interval": 0.5,
            "eal": [], "cancelled": False, "config": {}, "stats": events, "final": final}


def recorded_verdict(digest: str) -> dict:
    """nat's verification: equivalent, most packets differing only as allowed."""
    allowed = {"state-chosen values": 2800, "re-addressed replies": 1109}
    return {"ok": True, "equivalent": True, "strategy": "sn", "plan_strategy": "shared-nothing",
            "plan_digest": digest, "complete": True,
            "coverage": {"paths": {"0": [0, 1, 2, 3, 4, 5], "1": [6, 7, 8, 9, 10]},
                         "reached": {"0": [0, 1, 2, 3, 4, 5], "1": [6, 7, 8, 9]},
                         "missed_paths": {"10": "device 1, flow_map not found, ipv4.proto=17"}},
            "traces": [{"traffic": "sessions", "equivalent": True, "packets": 5000, "identical": 1091,
                        "allowed": allowed,
                        "lost": 0, "disallowed": 0, "first_difference": None,
                        "justifications": {k: ALLOWED[k] for k in allowed}}]}


def load_app(tmp_path):
    return Workbench("fw", keymap_path=None), None


def analyze_app(tmp_path):
    return Workbench(session=Session(nf="fw", analysis=fixture("fw"), step="analyze"), keymap_path=None), None


def inspect_app(tmp_path):
    return Workbench(session=Session(nf="fw", analysis=fixture("fw"), step="inspect"), keymap_path=None), None


def decide_app(tmp_path):
    """fw with flow_map locked by an override: its group follows, and says so."""
    settings = PlanSettings(cores=2, overrides={"flow_map": "lock"})
    session = Session(nf="fw", analysis=fixture("fw"), step="decide", settings=settings)
    return Workbench(session=session, keymap_path=None), settle


def generate_app(tmp_path, monkeypatch):
    """fw's program generated into a fixed relative folder: every file new."""
    monkeypatch.chdir(tmp_path)
    analysis = fixture("fw")
    session = Session(nf="fw", analysis=analysis, settings=PlanSettings(cores=2), step="generate",
                      plan=planner.plan(analysis, 2, "e810", "auto", {}))

    async def generated(pilot) -> None:
        await pilot.press("g")
        await pilot.app.workers.wait_for_complete()
        for _ in range(50):
            if pilot.app.session.program is not None:
                break
            await pilot.pause(0.05)
        await settle(pilot)

    return Workbench(session=session, keymap_path=None), generated


def run_app(tmp_path, monkeypatch):
    """nat's program as a reopened session shows it: built, run, verified."""
    monkeypatch.chdir(tmp_path)
    analysis = fixture("nat")
    plan = planner.plan(analysis, 2, "e810", "auto", {})
    program = generate("nat", plan.to_json(), analysis, Path("build/workbench/nat-sn"))
    program.program.write_text("")  # what a build leaves (nothing runs it here)
    (program.directory / BUILD_STAMP).write_text(json.dumps(
        {"program_digest": program_digest(program), "executable": program.program.name}))
    session = Session(nf="nat", analysis=analysis, settings=PlanSettings(cores=2), plan=plan, step="run") \
        .with_program(program).with_result("build", {"ok": True, "seconds": 4.0, "log": []}) \
        .with_result("run", recorded_run()).with_result("verify", recorded_verdict(program.digest))
    return Workbench(session=session, keymap_path=None), settle


def bench_row(strategy: str, cores: int, mpps: float, harness: float, speedup: float) -> dict:
    """A bench row as codegen.bench.bench records it (BenchRow as a dict)."""
    per_core = [round(mpps / cores, 2)] * cores
    ns = 1e3 * cores / mpps
    return {"strategy": strategy, "cores": cores, "traffic": "uniform", "mpps": mpps, "per_core_mpps": per_core,
            "drops": 0, "aborts": 0, "packets": int(mpps * 1e6), "speedup": speedup, "error": None,
            "latency_ns": {"p50": 900.0, "p99": 2400.0, "p999": 5200.0},
            "per_core_latency_ns": [{"p50": 900.0 + 100 * w, "p99": 2400.0, "p999": 5200.0} for w in range(cores)],
            "ns_per_packet": ns, "harness_ns": harness, "nf_ns": ns - harness,
            "state_bytes_per_core": [4_700_000] * cores, "state_bytes": 4_700_000 * cores,
            "runs_mpps": [mpps], "speedup_runs": [speedup]}


def recorded_bench() -> dict:
    """fw's plan benchmarked on 1 and 2 cores, sequential and shared-nothing."""
    return {"ok": True, "traffic": "uniform", "flows": 1000, "packets": 5000, "seconds": 1.0,
            "cores": [1, 2], "strategies": ["seq", "sn"], "cancelled": False,
            "rows": [bench_row("seq", 1, 6.4, 37.5, 1.0), bench_row("sn", 1, 8.8, 39.0, 1.0),
                     bench_row("sn", 2, 16.1, 41.2, 1.83)]}


def bench_app(tmp_path, monkeypatch):
    """fw's program, built, with a bench the session recorded: the Run
    screen opens a session file (the loader checks the bench) and shows the
    bench's view, its table and chart (nothing is built or run here)."""
    monkeypatch.chdir(tmp_path)
    analysis = fixture("fw")
    plan = planner.plan(analysis, 2, "e810", "auto", {})
    program = generate("fw", plan.to_json(), analysis, Path("build/workbench/fw-sn"))
    program.program.write_text("")
    (program.directory / BUILD_STAMP).write_text(json.dumps(
        {"program_digest": program_digest(program), "executable": program.program.name}))
    session = Session(nf="fw", analysis=analysis, settings=PlanSettings(cores=2), plan=plan, step="run") \
        .with_program(program).with_result("build", {"ok": True, "seconds": 4.0, "log": []})
    doc = session.to_json()
    doc["results"]["bench"] = recorded_bench()
    path = tmp_path / "fw.session.json"
    path.write_text(json.dumps(doc))
    return Workbench(session_path=path, keymap_path=None), settle


def help_app(tmp_path):
    async def helped(pilot) -> None:
        await pilot.press("f1")
        await pilot.pause()

    return Workbench("fw", keymap_path=None), helped


SCREENS = {"load": load_app, "analyze": analyze_app, "inspect": inspect_app, "decide": decide_app,
           "generate": generate_app, "run": run_app, "bench": bench_app, "help": help_app}


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("screen", SCREENS)
def test_screen(snap_compare, steady_planner, tmp_path, monkeypatch, screen, size):
    make = SCREENS[screen]
    app, run_before = make(tmp_path, monkeypatch) if screen in ("generate", "run", "bench") else make(tmp_path)
    assert snap_compare(app, terminal_size=SIZES[size], run_before=run_before)


def test_inspect_screen_one_device(snap_compare):
    """f: the fields that key nat's flow table on one device."""
    session = Session(nf="nat", analysis=fixture("nat"), step="inspect")
    assert snap_compare(Workbench(session=session, keymap_path=None), terminal_size=SIZES["120x36"], press=["f"])


def test_decide_screen_locked(snap_compare, steady_planner):
    """bridge: shared-nothing impossible, two packets show why."""
    session = Session(nf="bridge", analysis=fixture("bridge"), step="decide", settings=PlanSettings(cores=2))
    assert snap_compare(Workbench(session=session, keymap_path=None), terminal_size=SIZES["120x36"],
                        run_before=settle)
