"""Sessions are untrusted input (issue 12): every bad field is named, a
program folder is used only while it holds the files the session recorded,
and the workbench asks before running make or an executable it did not
generate in this run."""
import json
from pathlib import Path

import pytest

from analyses.model import Analysis
from analyses.planner import plan
from codegen.generator import generate
from codegen.program import BUILD_STAMP, program_digest
from workbench.app import Workbench
from workbench.screens.run import RunScreen
from workbench.screens.text_modal import ConfirmModal
from workbench.session import Session, SessionError
from tests.test_tui_flow import SIZE, settle, until

FW = Analysis.load(Path(__file__).parent / "fixtures" / "analysis" / "fw.json")


def session_doc(**fields):
    return {"schema": 1, "kind": "maestro-session", **fields}


@pytest.mark.parametrize("fields, words", [
    ({"nf": 12345}, "nf: expected a sample name or .c path, or null, got 12345"),
    ({"settings": {"strategy": "yolo"}}, "settings.strategy: expected one of auto, shared-nothing"),
    ({"settings": {"cores": "many"}}, "settings.cores: expected an integer in 1..64"),
    ({"settings": {"cores": 0, "nic": "nic9000"}}, "settings.cores: expected an integer in 1..64, got 0; "
                                                  "settings.nic: expected one of"),
    ({"settings": {"overrides": {"flow_map": "yolo"}}}, "settings.overrides.flow_map: expected one of shard"),
    ({"settings": []}, "settings: expected an object"),
    ({"step": "nowhere"}, "step: expected one of load"),
    ({"results": {"generate": 5}}, "results.generate: expected an object"),
    ({"analysis": [1]}, "analysis: expected an object or null"),
    ({"results": {"bench": {"ok": "yes"}}}, "results.bench.ok: expected true or false"),
    ({"results": {"bench": {"ok": True, "rows": {"sn": 1}}}}, "results.bench.rows: expected a list of rows"),
    ({"results": {"bench": {"ok": True, "cores": [1, 0], "strategies": ["sn", "yolo"], "seconds": -1}}},
     "results.bench.cores: expected a list of integers in 1..64, got [1, 0]; results.bench.strategies: "
     "expected a list of seq, sn"),
    ({"results": {"bench": {"ok": True, "rows": [{"strategy": "sn", "cores": 1, "mpps": "fast",
                                                  "per_core_mpps": [1, None],
                                                  "per_core_latency_ns": [{"p50": "x"}]}, 7]}}},
     "results.bench.rows[0].mpps: expected a number or null, got \"fast\"; "
     "results.bench.rows[0].per_core_mpps: expected a list of numbers, got [1, null]; "
     "results.bench.rows[0].per_core_latency_ns: expected a list of {p50, p99, p999} in ns"),
    ({"results": {"bench": {"ok": True, "rows": [{"strategy": "yolo", "cores": 99, "speedup": True}]}}},
     "results.bench.rows[0].strategy: expected one of seq, sn"),
])
def test_each_bad_field_is_named(tmp_path, fields, words):
    path = tmp_path / "bad.session.json"
    path.write_text(json.dumps(session_doc(**fields)))
    with pytest.raises(SessionError, match="malformed session") as info:
        Session.load(path)
    assert words in str(info.value) and str(path) in str(info.value)


@pytest.mark.asyncio
async def test_the_app_reports_a_bad_session_instead_of_failing(tmp_path):
    path = tmp_path / "bad.session.json"
    path.write_text(json.dumps(session_doc(nf=12345, settings={"strategy": "yolo"}, step="run")))
    app = Workbench(session_path=path, keymap_path=None)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert any("nf: expected" in e and "settings.strategy" in e for e in app.startup_errors)
        assert app.session.nf is None


def hostile_program(tmp_path):
    """A program folder whose executable would create a marker, with a build
    stamp that matches its files (what a session cannot vouch for)."""
    marker = tmp_path / "RAN"
    program = generate("fw", plan(FW, cores=2, nic="82599").to_json(), FW, tmp_path / "prog")
    program.program.write_text(f"#!/bin/sh\ntouch {marker}\n")
    program.program.chmod(0o755)
    (program.directory / BUILD_STAMP).write_text(json.dumps(
        {"program_digest": program_digest(program), "executable": program.program.name}))
    return program, marker


def test_a_session_program_is_used_only_while_its_files_match(tmp_path):
    program, _ = hostile_program(tmp_path)
    forged = Session(nf="fw").with_result("generate", program.to_json()).with_result("build", {"ok": True})
    reloaded = Session.from_json(forged.to_json())  # no digest recorded: not used
    assert reloaded.program is None and not reloaded.built and "build" not in reloaded.results
    assert "no longer holds the files" in reloaded.warnings[0]
    session = Session(nf="fw").with_program(program).with_result("build", {"ok": True})
    reloaded = Session.from_json(session.to_json())
    assert reloaded.program == program and reloaded.built and not reloaded.warnings
    (program.directory / "config.c").write_text("/* edited */\n")
    assert not session.built  # the executable is not built from these files
    assert Session.from_json(session.to_json()).program is None


@pytest.mark.asyncio
@pytest.mark.parametrize("key", ["r", "b", "v"])
async def test_the_workbench_asks_before_running_a_session_program(tmp_path, key):
    program, marker = hostile_program(tmp_path)
    session = Session(nf="fw", analysis=FW, step="run").with_program(program) \
        .with_result("build", {"ok": True})
    path = tmp_path / "s.session.json"
    session.save(path)
    app = Workbench(session_path=path, keymap_path=None)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, RunScreen), what="the Run screen")
        app.screen.query_one("#run-seconds").value = "1"
        await pilot.press(key)
        await until(pilot, lambda: isinstance(app.screen, ConfirmModal), what="the question")
        await pilot.press("n")
        await settle(app, pilot)
        assert isinstance(app.screen, RunScreen) and app.screen.busy is None
    assert not marker.exists() and not list(program.directory.glob("*.o"))  # no run, no make
