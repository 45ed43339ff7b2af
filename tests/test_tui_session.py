"""Sessions: the value round-trips through JSON; the app saves one and
reopens it where the work stopped (`maestro-tui --session FILE`)."""
import asyncio
import json
import os
import time
from pathlib import Path

import pytest
from textual.widgets import DataTable, Input, Static

from analyses.model import Analysis
from analyses.planner import plan
from workbench.app import Workbench
from workbench.screens.path_prompt import PathPrompt
from workbench.session import PlanSettings, Session, SessionError, default_cores
from tests.test_tui_flow import private_home  # noqa: F401  (a home of its own)

FIXTURES = Path(__file__).parent / "fixtures" / "analysis"
SIZE = (100, 30)


def fixture(name: str) -> Analysis:
    return Analysis.load(FIXTURES / f"{name}.json")


async def until(pilot, condition, timeout: float = 60) -> None:
    """Pause until `condition()` holds (a loaded machine may be slow)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {condition}"
        await pilot.pause(0.05)


async def settle(app, pilot) -> None:
    await asyncio.wait_for(app.workers.wait_for_complete(), 60)
    for _ in range(3):
        await pilot.pause()


def test_session_round_trips_through_json(tmp_path):
    analysis = fixture("bridge")
    settings = PlanSettings(cores=8, nic="x710", strategy="auto", overrides={"mac_map": "lock"})
    session = Session(nf="bridge", analysis=analysis, settings=settings,
                      plan=plan(analysis, 8, "x710", "auto", {"mac_map": "lock"}), step="decide",
                      results={"generate": {"files": ["main.c"]}}, source_digest="ab12")
    doc = session.to_json()
    assert set(doc) == {"schema", "kind", "nf", "source_digest", "step", "settings", "analysis",
                        "plan", "results"}
    assert json.loads(json.dumps(doc)) == doc
    assert Session.from_json(doc) == session
    path = session.save(tmp_path / "sub" / "s.json")
    assert Session.load(path) == session
    assert Session.from_json(Session().to_json()) == Session()


def test_session_moves_on_without_stale_values():
    analysis = fixture("fw")
    session = Session().with_nf("fw").with_analysis(analysis)
    assert session.source_digest  # the sample's source digest
    settings = session.settings.with_override("flow_map", "lock").with_override("gone", "shard")
    planned = session.with_plan(plan(analysis, 4, overrides={"flow_map": "lock"}), settings)
    again = planned.with_analysis(analysis)
    assert again.plan is None and dict(again.settings.overrides) == {"flow_map": "lock"}
    other = planned.with_nf("bridge")
    assert other.analysis is None and other.plan is None and not other.settings.overrides
    assert planned.with_nf("fw") is planned


@pytest.mark.parametrize("content, words", [
    ("not json", "not JSON"),
    ('{"kind": "something"}', "not a maestro session"),
    ('{"kind": "maestro-session", "schema": 99}', "schema 99"),
    ('{"kind": "maestro-session", "schema": 1, "analysis": {"nf": "x"}}', "malformed session"),
])
def test_bad_session_files_name_the_problem(tmp_path, content, words):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(SessionError, match=words):
        Session.load(path)


@pytest.mark.asyncio
async def test_save_and_reopen_a_session(tmp_path):
    path = tmp_path / "fw.session.json"
    app = Workbench(session=Session(nf="fw", analysis=fixture("fw"), step="decide"), keymap_path=None)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.current_mode == "decide" and app.session.plan is not None)
        app.screen.query_one("#decisions", DataTable).focus()
        await pilot.press("l", "plus")
        more = default_cores() + 1
        await until(pilot, lambda: app.session.settings.cores == more and app.screen.pending is None)
        await settle(app, pilot)
        assert app.session.settings.overrides == {"flow_map": "lock"}
        assert app.unsaved()
        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, PathPrompt))
        # By default sessions go to $XDG_DATA_HOME/maestro/sessions/<nf>.session.json.
        default = Path(os.environ["XDG_DATA_HOME"]) / "maestro" / "sessions" / "fw.session.json"
        assert app.screen.query_one(Input).value == str(default)
        app.screen.query_one(Input).value = str(path)
        await pilot.press("enter")
        await until(pilot, path.exists)
        saved = app.session
        assert not app.unsaved()
    assert Session.load(path) == saved.at_step("decide")

    app = Workbench(session_path=path, keymap_path=None)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.current_mode == "decide" and app.screen.shown is not None)
        await settle(app, pilot)
        assert app.session == saved.at_step("decide")
        assert app.session.plan is saved.plan or app.session.plan == saved.plan
        decisions = app.screen.query_one("#decisions", DataTable)
        assert [str(decisions.get_row_at(i)[1]) for i in range(decisions.row_count)] == ["lock"] * 3
        assert [str(decisions.get_row_at(i)[2]) for i in range(decisions.row_count)] == \
            ["you", "with flow_map", "with flow_map"]
        assert app.screen.query_one("#cores", Input).value == str(more)
        # The other steps are there too.
        await pilot.press("3")
        await until(pilot, lambda: app.current_mode == "inspect")
        assert app.screen.query_one("#objects", DataTable).row_count == 3


@pytest.mark.asyncio
async def test_open_session_from_the_app_and_bad_files(tmp_path):
    good = tmp_path / "nat.json"
    Session(nf="nat", analysis=fixture("nat"), step="inspect").save(good)
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    app = Workbench(session_path=bad, keymap_path=None)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.current_mode == "load")
        assert any("not JSON" in n.message for n in app._notifications)
        await pilot.press("ctrl+o")
        await until(pilot, lambda: isinstance(app.screen, PathPrompt))
        app.screen.query_one(Input).value = str(good)
        await pilot.press("enter")
        await until(pilot, lambda: app.current_mode == "inspect" and app.session.nf == "nat")


@pytest.mark.asyncio
async def test_reopened_session_warns_when_the_source_changed(tmp_path):
    nf = tmp_path / "fw.c"
    nf.write_text((Path(__file__).parents[1] / "sample_nfs" / "fw.c").read_text())
    analysis = fixture("fw")
    analysis = Analysis.from_json({**analysis.to_json(), "source": str(nf)})
    session = Session(nf=str(nf)).with_analysis(analysis).at_step("inspect")
    path = session.save(tmp_path / "s.json")
    nf.write_text(nf.read_text() + "\n/* edited */\n")
    app = Workbench(session_path=path, keymap_path=None)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.current_mode == "inspect")
        assert any("changed" in n.message for n in app._notifications)
        banner = app.screen.query_one("#inspect-banner", Static)
        assert banner.display and "analyze it again" in str(banner.content)
