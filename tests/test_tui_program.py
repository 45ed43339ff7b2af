"""The workbench's later steps with the real stack (no mocks): a build that
fails and one that is fixed, a refused generation, a transactional program
on a CPU without RTM, and a mixed plan generated, built, run and verified
whose session round-trips.  The whole flow per sample family, by keys at
80x24, is in test_tui_e2e.py."""
import json
from pathlib import Path

import pytest
from textual.widgets import DataTable, Input, OptionList, Select, Static

from analyses.model import Analysis
from codegen.generator import plan_digest
from codegen.program import check_built
from workbench.app import Workbench
from workbench.screens.generate import GenerateScreen
from workbench.screens.run import RunScreen
from workbench.session import PlanSettings, Session
from tests.test_tui_flow import SIZE, log_text, private_home, settle, static_text, until  # noqa: F401

FIXTURES = Path(__file__).parent / "fixtures" / "analysis"


def fixture(name: str) -> Analysis:
    return Analysis.load(FIXTURES / f"{name}.json")


def files_listed(screen: GenerateScreen) -> list[str]:
    files = screen.query_one("#gen-files", OptionList)
    return [str(files.get_option_at_index(i).id) for i in range(files.option_count)]


async def generate(app, pilot) -> None:
    """Go to Generate, press g, wait for the program."""
    await pilot.press("5")
    await until(pilot, lambda: isinstance(app.screen, GenerateScreen), what="Generate")
    before = app.session.results.get("generate")
    screen = app.screen
    await pilot.press("g")
    await until(pilot, lambda: not screen.running and app.session.results.get("generate") is not before,
                what="a generated program")
    await settle(app, pilot)


def fw_on_decide() -> Workbench:
    """The workbench on fw's saved analysis, at Decide with 2 cores."""
    session = Session(nf="fw", analysis=fixture("fw"), settings=PlanSettings(cores=2), step="decide")
    return Workbench(session=session, keymap_path=None)


async def to_run(app, pilot) -> RunScreen:
    """Go to Run (6) and wait for it."""
    await pilot.press("6")
    await until(pilot, lambda: isinstance(app.screen, RunScreen))
    return app.screen


async def task(app, pilot, key: str, stage: str, timeout: float = 60) -> None:
    """Press `key` on Run and wait until its task ended and `stage` is recorded."""
    screen = app.screen
    assert isinstance(screen, RunScreen)
    runs = screen.run
    await pilot.press(key)
    await until(pilot, lambda: screen.run > runs and screen.busy is None
                and stage in app.session.results, timeout, what=f"the {stage}")
    await settle(app, pilot)


async def short_run(app, pilot) -> RunScreen:
    """Run for 1.5 s, stats every 0.5 s."""
    screen = app.screen
    screen.query_one("#run-seconds", Input).value = "1.5"
    screen.query_one("#run-interval", Input).value = "0.5"
    await task(app, pilot, "r", "run")
    return screen


@pytest.mark.asyncio
async def test_failing_build_shows_the_compiler_error_and_app_stays_usable(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = fw_on_decide()
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.session.plan is not None, what="the plan")
        await generate(app, pilot)
        config = app.session.program.directory / "config.c"
        config.write_text(config.read_text() + "\nint broken = ;\n")
        screen = await to_run(app, pilot)
        await task(app, pilot, "b", "build")
        assert not app.session.built and app.session.results["build"]["ok"] is False
        error = static_text(screen.query_one("#run-error", Static))
        assert screen.query_one("#run-error", Static).display
        assert "config.c" in error and "expected expression" in error
        assert "expected expression" in log_text(screen.query_one("#run-log"))
        assert "failed" in static_text(screen.query_one("#run-status", Static))
        assert "Run fw's program" not in [c.title for c in app.palette_commands()]
        await pilot.press("r")  # not built: says so, starts nothing
        await pilot.pause(0.2)
        assert screen.busy is None and "run" not in app.session.results

        # Regenerate (the diff shows the broken line gone) and build again.
        await generate(app, pilot)
        gen = app.screen
        assert "~ config.c" in [str(o.prompt) for o in gen.query_one("#gen-files", OptionList).options]
        gen.selected = None
        gen.query_one("#gen-files", OptionList).highlighted = files_listed(gen).index("config.c")
        await pilot.pause()
        assert "-int broken = ;" in gen.query_one("#gen-view", Static).content.code
        await to_run(app, pilot)
        await task(app, pilot, "b", "build")
        assert app.session.built
        assert not screen.query_one("#run-error", Static).display


@pytest.mark.asyncio
async def test_generate_refusal_is_shown_and_the_program_is_kept(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    session = Session(nf="bridge", analysis=fixture("bridge"), settings=PlanSettings(cores=2), step="decide")
    app = Workbench(session=session, keymap_path=None)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.session.plan is not None, what="the plan")
        await generate(app, pilot)
        kept = app.session.program
        screen = app.screen
        screen.query_one("#gen-strategy", Select).value = "sn"
        await pilot.pause()
        assert screen.query_one("#gen-folder", Input).value.endswith("bridge-sn")
        runs = screen.run
        await pilot.press("g")
        await until(pilot, lambda: screen.run > runs and not screen.running, what="the refusal")
        await settle(app, pilot)
        error = static_text(screen.query_one("#generate-error", Static))
        assert "shared-nothing cannot keep" in error and "mac_map" in error
        assert app.session.program == kept


def cpu_has_rtm() -> bool:
    try:
        return " rtm" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


@pytest.mark.asyncio
@pytest.mark.skipif(cpu_has_rtm(), reason="this CPU has RTM: a tm run would succeed")
async def test_tm_run_without_rtm_says_why(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    session = Session(nf="bridge", analysis=fixture("bridge"), settings=PlanSettings(cores=2), step="decide")
    app = Workbench(session=session, keymap_path=None)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.session.plan is not None, what="the plan")
        await pilot.press("5")
        await until(pilot, lambda: isinstance(app.screen, GenerateScreen))
        app.screen.query_one("#gen-strategy", Select).value = "tm"
        await pilot.pause()
        await generate(app, pilot)
        assert app.session.program.strategy == "tm"
        screen = await to_run(app, pilot)
        await task(app, pilot, "b", "build")
        screen.query_one("#run-seconds", Input).value = "1"
        await task(app, pilot, "r", "run")
        assert app.session.results["run"]["ok"] is False
        assert "needs Intel RTM" in static_text(screen.query_one("#run-error", Static))
        assert screen.busy is None and not screen.query_one("#start").disabled


@pytest.mark.asyncio
async def test_override_generate_build_verify_then_the_session_round_trips(tmp_path, monkeypatch):
    """The artifact chain in the workbench: cl with pair_sketch locked by hand
    (a mixed plan, NIC 82599), generated, built and verified: the verdict
    names the plan digest of the program on screen and no second program is
    built; the session saved then reopened keeps every setting and result."""
    monkeypatch.chdir(tmp_path)
    session = Session(nf="cl", analysis=fixture("cl"), settings=PlanSettings(cores=2, nic="82599"),
                      step="decide")
    app = Workbench(session=session, keymap_path=None)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.session.plan is not None, what="the plan")
        table = app.screen.query_one("#decisions", DataTable)
        table.focus()
        table.move_cursor(row=[o.name for o in app.session.plan.objects].index("pair_sketch"))
        await pilot.press("l")
        await until(pilot, lambda: app.session.plan.decisions()["pair_sketch"] == "lock", what="the override")
        plan = app.session.plan
        assert plan.strategy == "mixed" and plan.nic == "82599"
        assert app.session.settings.overrides == plan.overrides == {"pair_sketch": "lock"}

        await generate(app, pilot)
        program = app.session.program
        assert program.strategy == "locks" and program.digest == plan_digest(plan.to_json())
        app.screen.query_one("#gen-lock", Select).value = "object"
        await generate(app, pilot)  # again, with per-object locks
        program = app.session.program
        assert program.lock == "object"
        await pilot.press("b")
        await until(pilot, lambda: isinstance(app.screen, RunScreen) and app.session.built
                    and app.screen.busy is None, what="the build")
        await settle(app, pilot)
        app.screen.query_one("#run-packets", Input).value = "400"
        await short_run(app, pilot)
        app.screen.query_one("#verify-traffic", Select).value = "sessions"
        await task(app, pilot, "v", "verify")
        doc = app.session.results["verify"]
        assert doc["equivalent"] is True and doc["plan_digest"] == program.digest
        assert doc["build_digest"] == app.session.results["run"]["build_digest"] == check_built(program)
        assert program.digest in static_text(app.screen.query_one("#verdict", Static))
        assert not [p for p in tmp_path.rglob("*-verify*")], "verify built a second program"

        saved = app.session.at_step("run").save(tmp_path / "cl.session.json")
    first = saved.read_text()
    again = Session.load(saved).save(tmp_path / "again.session.json").read_text()
    assert json.loads(again) == json.loads(first)

    # Reopened: the NIC, lock kind, folder and run options are shown, and
    # visiting Decide keeps the program, build, run and verify results.
    app = Workbench(session_path=saved, keymap_path=None)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, RunScreen), what="the Run screen")
        await settle(app, pilot)
        assert app.screen.query_one("#run-seconds", Input).value == "1.5"
        assert app.screen.query_one("#run-packets", Input).value == "400"
        assert app.session.built and program.digest in static_text(app.screen.query_one("#verdict", Static))
        assert "built" in static_text(app.screen.query_one("#run-program", Static))
        assert not app.screen.query_one("#start").disabled
        await pilot.press("4")
        await until(pilot, lambda: app.current_mode == "decide", what="Decide")
        await settle(app, pilot)
        assert app.screen.query_one("#nic", Select).value == "82599"
        assert app.session.plan.to_json() == plan.to_json()
        await pilot.press("5")
        await until(pilot, lambda: isinstance(app.screen, GenerateScreen), what="Generate")
        await settle(app, pilot)
        assert app.screen.query_one("#gen-lock", Select).value == "object"
        assert app.screen.query_one("#gen-folder", Input).value == str(program.directory)
        assert set(app.session.results) == {"generate", "build", "run", "verify"}
        assert json.loads(app.session.save(tmp_path / "third.session.json").read_text()) == json.loads(first)


@pytest.mark.asyncio
async def test_sigterm_stops_the_run_shows_its_final_line_and_saves_the_session(tmp_path, monkeypatch):
    """A SIGTERM to the workbench (kill, a closing tmux pane, systemd) while
    a program runs: the program is stopped and its final line shown, the
    session is saved with it, and the app leaves; nothing keeps running."""
    import os
    import signal
    import subprocess

    monkeypatch.chdir(tmp_path)
    app = fw_on_decide()
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.session.plan is not None, what="the plan")
        await generate(app, pilot)
        screen = await to_run(app, pilot)
        await task(app, pilot, "b", "build")
        screen.query_one("#run-seconds", Input).value = "60"
        screen.query_one("#run-interval", Input).value = "0.3"
        await pilot.press("r")
        await until(pilot, lambda: screen.busy == "run", 30, what="the program running")
        await pilot.pause(1.5)
        os.kill(os.getpid(), signal.SIGTERM)
        await until(pilot, lambda: bool(app.exit_report), 30, what="the app leaving")
        assert "stopped:" in log_text(screen.query_one("#run-log"))  # the final line, shown
    report = app.exit_report
    assert report.startswith("maestro-tui: SIGTERM") and "run stopped" in report and "conserved True" in report
    saved = json.loads(app.session_path.read_text())
    assert saved["results"]["run"]["final"]["conserved"] is True and app.session_path.is_relative_to(tmp_path)
    left = subprocess.run(["pgrep", "-f", str(app.session.program.directory)], capture_output=True, text=True)
    assert left.stdout == ""
