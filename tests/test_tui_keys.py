"""The workbench's key scheme and its guards, on saved analyses (nothing is
built or run here): a letter means one thing on every screen, Esc leaves a
field, stops or goes back, Tab and the steps are in the footer; bad input in
any field is refused with the field's name and never crashes; e opens the NF
in $EDITOR and analyzes it again when it changed; quitting or opening over an
unsaved session asks first."""
import contextlib
import json
import os
from pathlib import Path

import pytest
from textual.binding import Binding
from textual.widgets import Input, Static

from analyses import planner
from analyses.model import Analysis
from codegen.generator import generate
from codegen.program import BUILD_STAMP, program_digest
from workbench.app import STEP_SCREENS, Workbench
from workbench.screens.base import StepScreen
from workbench.screens.path_prompt import PathPrompt
from workbench.screens.text_modal import UnsavedModal
from workbench.session import PlanSettings, Session
from tests.test_tui_flow import plain, private_home, settle, static_text, tab_to, type_into, until  # noqa: F401

FIXTURES = Path(__file__).parent / "fixtures" / "analysis"
SIZE = (80, 24)


def fixture(name: str) -> Analysis:
    return Analysis.load(FIXTURES / f"{name}.json")


def footer_keys(app) -> dict[str, str]:
    """Key -> description of what the footer shows."""
    return {key: b.description for key, (_, b, _, _) in app.screen.active_bindings.items() if b.show}


def test_a_letter_means_one_thing_on_every_screen():
    meanings: dict[str, set[str]] = {}
    for bindings in [Workbench.BINDINGS, StepScreen.BINDINGS,
                     *[cls.__dict__.get("BINDINGS", []) for cls in STEP_SCREENS.values()]]:
        for binding in Binding.make_bindings(bindings):
            for key in binding.key.split(","):
                if len(key) == 1 and key.isalpha():
                    meanings.setdefault(key, set()).add(binding.description)
    assert {k: v for k, v in meanings.items() if len(v) > 1} == {}
    assert meanings["a"] == {"Analyze"} and meanings["b"] == {"Build"} and meanings["e"] == {"Edit"}
    # Written down once for readers too: the README's Keys section names each letter.
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    keys_section = readme[readme.index("### Keys"):]
    assert [k for k in meanings if f"`{k}`" not in keys_section] == []


@pytest.mark.asyncio
async def test_esc_leaves_a_field_then_goes_back_and_the_footer_shows_steps_and_tab():
    session = Session(nf="fw", analysis=fixture("fw"), step="decide", settings=PlanSettings(cores=2))
    app = Workbench(session=session, keymap_path=None)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.current_mode == "decide" and app.session.plan is not None)
        await settle(app, pilot)
        keys = footer_keys(app)
        assert keys["1"] == "Steps" and keys["tab"] == "Next" and keys["escape"] == "Back"
        assert keys["s"] == "Shard" and keys["x"] == "Explain"
        await type_into(pilot, "cores", "3")
        assert footer_keys(app)["escape"] == "Leave field"
        await pilot.press("escape")  # leaves the field, its value kept, nothing planned
        assert app.focused.id == "decisions" and app.current_mode == "decide"
        assert app.session.plan.cores == 2
        for mode in ("inspect", "analyze", "load"):
            await pilot.press("escape")
            await until(pilot, lambda: app.current_mode == mode, what=mode)
        assert "escape" not in footer_keys(app)  # nothing before Load
        await pilot.press("escape")
        await pilot.pause()
        assert app.current_mode == "load"


def built_session(tmp_path: Path) -> Session:
    """fw planned and generated in tmp_path, with what a build leaves (the
    executable is never run here)."""
    analysis = fixture("fw")
    plan = planner.plan(analysis, 2, "e810", "auto", {})
    program = generate("fw", plan.to_json(), analysis, tmp_path / "fw-sn")
    program.program.write_text("")
    (program.directory / BUILD_STAMP).write_text(json.dumps(
        {"program_digest": program_digest(program), "executable": program.program.name}))
    return Session(nf="fw", analysis=analysis, settings=PlanSettings(cores=2), plan=plan, step="run") \
        .with_program(program).with_result("build", {"ok": True})


async def enter_in(pilot, field_id: str, value: str) -> None:
    """Put `value` in a field, focus it and press Enter (the keys themselves
    are driven in test_tui_e2e.py; this is about what a value does)."""
    field = pilot.app.screen.query_one(f"#{field_id}", Input)
    field.value = value
    field.focus()
    await pilot.press("enter")
    await pilot.pause()


@pytest.mark.asyncio
async def test_bad_input_is_refused_with_the_field_named(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = Workbench(session=built_session(tmp_path), keymap_path=None)
    async with app.run_test(size=SIZE) as pilot:
        # Run: Enter in each field with a bad value starts nothing and names the field.
        await until(pilot, lambda: app.current_mode == "run")
        app.trusted_programs.add(app.session.program.directory)
        screen = app.screen
        error = screen.query_one("#run-error", Static)
        good = {"run-flows": "1000", "run-packets": "5000", "run-seconds": "1", "run-interval": "1.0", "run-eal": ""}
        for field, value, words in (("run-flows", "0", "flows"), ("run-packets", "1e12", "packets"),
                                    ("run-packets", "many", "packets"), ("run-seconds", "nan", "s (seconds)"),
                                    ("run-seconds", "-1", "s (seconds)"), ("run-interval", "0", "every"),
                                    ("run-eal", "-a 'unbalanced", "EAL")):
            await enter_in(pilot, field, value)
            assert error.display and words in static_text(error), (field, value, static_text(error))
            assert screen.busy is None and "run" not in app.session.results
            screen.query_one(f"#{field}", Input).value = good[field]
        # The bench's fields (Enter benchmarks): the same, and strategies the plan does not allow.
        for field, value, words in (("bench-cores", "0", "bench cores"), ("bench-cores", "many", "bench cores"),
                                    ("bench-seconds", "nan", "s/point"), ("bench-seconds", "1e9", "s/point"),
                                    ("bench-strategies", "sn,yolo", "strategies: yolo: the plan allows seq, sn"),
                                    ("bench-strategies", " , ", "strategies: none given")):
            kept = {"bench-cores": "2", "bench-seconds": "1", "bench-strategies": "seq,sn"}
            await enter_in(pilot, field, value)
            assert error.display and words in static_text(error), (field, value, static_text(error))
            assert screen.busy is None and "bench" not in app.session.results
            screen.query_one(f"#{field}", Input).value = kept[field]
        await enter_in(pilot, "verify-trace", "missing.pcap")
        assert "missing.pcap: no such file" in static_text(error) and screen.busy is None

        # Generate: an empty folder, then a folder that is a file.
        await pilot.press("escape", "5")
        await until(pilot, lambda: app.current_mode == "generate")
        screen = app.screen
        await pilot.press("d")  # a reopened program: nothing to compare with, says so
        await until(pilot, lambda: any("No earlier generation" in n.message for n in app._notifications))
        await enter_in(pilot, "gen-folder", " ")
        assert "Name the folder" in static_text(screen.query_one("#generate-error", Static))
        (tmp_path / "a-file").write_text("x")
        await enter_in(pilot, "gen-folder", "a-file")
        await until(pilot, lambda: not screen.running and screen.query_one("#generate-error", Static).display)
        assert "a-file" in static_text(screen.query_one("#generate-error", Static))

        # Decide: cores out of range or not a number.
        await pilot.press("escape", "4")
        await until(pilot, lambda: app.current_mode == "decide")
        screen = app.screen
        for value in ("abc", "99", "-3", ""):
            await enter_in(pilot, "cores", value)
            refusal = static_text(screen.query_one("#refusal", Static))
            assert "cores" in refusal and screen.query_one("#cores", Input).value == "2", (value, refusal)
        assert app.session.plan.cores == 2

        # Analyze: budgets that are not positive finite numbers.
        await pilot.press("escape", "2")
        await until(pilot, lambda: app.current_mode == "analyze")
        screen = app.screen
        for field, value, words in (("budget-seconds", "abc", "budget s"), ("budget-seconds", "inf", "budget s"),
                                    ("budget-seconds", "0", "budget s"), ("budget-paths", "1.5", "paths")):
            await enter_in(pilot, field, value)
            assert words in static_text(screen.query_one("#analyze-error", Static)) and not screen.running
            screen.query_one(f"#{field}", Input).value = "120" if field == "budget-seconds" else "5000"
        assert app.is_running and app.session.analysis is not None


@pytest.fixture
def editor(tmp_path, monkeypatch):
    """$EDITOR: a script that appends a comment to the file it is given; the
    app's suspend (which a headless test terminal cannot do) does nothing."""
    script = tmp_path / "edit.sh"
    script.write_text('#!/bin/sh\necho "/* edited */" >> "$1"\n')
    script.chmod(0o755)
    monkeypatch.setenv("EDITOR", str(script))
    monkeypatch.delenv("VISUAL", raising=False)
    monkeypatch.setattr(Workbench, "suspend", lambda self: contextlib.nullcontext())
    return script


@pytest.mark.asyncio
async def test_e_opens_the_nf_in_the_editor_and_analyzes_it_again(tmp_path, editor, monkeypatch):
    nf = tmp_path / "mine.c"
    nf.write_text((Path(__file__).parents[1] / "sample_nfs" / "nop.c").read_text())
    app = Workbench(str(nf), keymap_path=None)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.screen.nf is not None and app.session.nf is not None)
        await pilot.press("e")
        await until(pilot, lambda: app.current_mode == "analyze" and app.screen.run == 1
                    and app.session.analysis is not None, what="the analysis of the edited file")
        assert nf.read_text().endswith("/* edited */\n")
        assert any("changed: analyzing it again" in n.message for n in app._notifications)
        analysis = app.session.analysis
        monkeypatch.setenv("EDITOR", "true")  # opened and left unchanged: nothing runs
        await pilot.press("e")
        await until(pilot, lambda: any("unchanged" in n.message for n in app._notifications))
        assert app.screen.run == 1 and app.session.analysis is analysis
        monkeypatch.setenv("EDITOR", "/nonexistent/editor")
        await pilot.press("e")
        await until(pilot, lambda: any("cannot start" in n.message for n in app._notifications))
        assert app.is_running


@pytest.mark.asyncio
async def test_quitting_or_opening_over_unsaved_work_asks(tmp_path):
    app = Workbench(session=Session(nf="fw", analysis=fixture("fw"), step="inspect"), keymap_path=None)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.current_mode == "inspect")
        assert app.unsaved()
        await pilot.press("q")
        await until(pilot, lambda: isinstance(app.screen, UnsavedModal))
        assert "analysis" in static_text(app.screen.query_one(Static))
        await pilot.press("n")  # stay
        await until(pilot, lambda: not isinstance(app.screen, UnsavedModal))
        assert app.is_running

        # Choosing another NF asks too; n keeps the work.
        await pilot.press("1")
        await until(pilot, lambda: app.current_mode == "load")
        await pilot.press("down", "enter")
        await until(pilot, lambda: isinstance(app.screen, UnsavedModal))
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, UnsavedModal))
        assert app.session.nf == "fw" and app.session.analysis is not None

        # ctrl+o: s saves first (in the default sessions folder), then asks which session to open.
        await pilot.press("ctrl+o")
        await until(pilot, lambda: isinstance(app.screen, UnsavedModal))
        await pilot.press("s")
        await until(pilot, lambda: isinstance(app.screen, PathPrompt))
        saved = Path(os.environ["XDG_DATA_HOME"]) / "maestro" / "sessions" / "fw.session.json"
        assert app.screen.query_one(Input).value == str(saved)
        await pilot.press("enter")
        await until(pilot, lambda: saved.exists() and isinstance(app.screen, PathPrompt)
                    and "Open" in str(app.screen.query_one("#prompt-title").content))
        assert not app.unsaved()
        await pilot.press("escape")
        await pilot.press("q")  # saved: no question
        await until(pilot, lambda: not app.is_running, what="the exit")
    assert Session.load(saved).analysis == fixture("fw")
