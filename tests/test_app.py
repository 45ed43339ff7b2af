"""The workbench app: the Load step, the step bar, help, command palette and
keymap (no analysis runs here: analyses come from the saved fixtures)."""
import io
import json
import time
from pathlib import Path

import pytest
from rich.console import Console
from textual.widgets import OptionList, Static

from analyses.model import Analysis
from analyses.nf_source import sample_names
from workbench.app import Workbench, load_keymap
from workbench.screens.help import HelpScreen
from workbench.screens.load import LoadScreen
from workbench.screens.open_file import OpenFileScreen
from workbench.screens.palette import WorkbenchCommands
from workbench.session import Session
from workbench.widgets.step_bar import StepBar
from tests.test_tui_flow import private_home  # noqa: F401  (a home of its own)

FIXTURES = Path(__file__).parent / "fixtures" / "analysis"


async def until(pilot, condition, timeout: float = 30) -> None:
    """Pause until `condition()` holds (a loaded machine may be slow)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {condition}"
        await pilot.pause(0.05)


def fixture(name: str) -> Analysis:
    return Analysis.load(FIXTURES / f"{name}.json")


@pytest.mark.asyncio
async def test_lists_samples_and_shows_source():
    app = Workbench(keymap_path=None)
    async with app.run_test(size=(100, 30)) as pilot:
        nf_list = app.screen.query_one("#nf-list", OptionList)
        assert [nf_list.get_option_at_index(i).id for i in range(nf_list.option_count)] == sample_names()
        nf_list.focus()
        await pilot.press("down")
        await pilot.pause()
        shown = str(app.screen.query_one("#nf-summary", Static).content)
        assert sample_names()[nf_list.highlighted] in shown
        assert "nf_process" in app.screen.query_one("#source", Static).content.code
        # Highlighting only previews: nothing is chosen yet.
        assert app.session.nf is None


@pytest.mark.asyncio
async def test_unknown_nf_shows_error_and_app_keeps_running(tmp_path):
    app = Workbench(str(tmp_path / "missing.c"), keymap_path=None)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: "missing.c" in str(app.screen.query_one("#load-error", Static).content))
        error = str(app.screen.query_one("#load-error", Static).content)
        assert "missing.c" in error and "samples:" in error
        assert app.session.nf is None
        app.screen.query_one("#nf-list", OptionList).focus()
        await pilot.press("down")
        await pilot.pause()
        assert "nf_process" in app.screen.query_one("#source", Static).content.code


@pytest.mark.asyncio
async def test_nf_argument_is_chosen_and_highlighted():
    app = Workbench("fw", keymap_path=None)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, LoadScreen) and app.screen.nf is not None
                    and app.screen.nf.name == "fw")
        assert app.session.nf == "fw"
        nf_list = app.screen.query_one("#nf-list", OptionList)
        assert nf_list.get_option_at_index(nf_list.highlighted).id == "fw"
        assert "flow_map" in app.screen.query_one("#source", Static).content.code
        bar = str(app.screen.query_one(StepBar).content)
        assert "fw" in bar and "1 Load" in bar and "4 Decide" in bar


@pytest.mark.asyncio
async def test_open_any_c_file_through_the_browser(tmp_path):
    nf = tmp_path / "mine.c"
    nf.write_text("/* mine -- my own NF. */\n#include \"nf.h\"\nbool nf_init(void) { return true; }\n")
    app = Workbench(keymap_path=None)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("o")
        await until(pilot, lambda: isinstance(app.screen, OpenFileScreen))
        await pilot.click("#open-path")
        await pilot.press(*str(nf), "enter")
        await until(pilot, lambda: not isinstance(app.screen, OpenFileScreen))
        assert app.current_mode == "load"
        nf_list = app.screen.query_one("#nf-list", OptionList)
        assert nf_list.get_option_at_index(nf_list.highlighted).id == str(nf.resolve())
        assert "my own NF" in str(app.screen.query_one("#nf-summary", Static).content)


@pytest.mark.asyncio
async def test_steps_that_do_not_apply_say_what_they_need():
    app = Workbench(keymap_path=None)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("3")
        await until(pilot, lambda: any("analyze" in n.message for n in app._notifications))
        assert app.current_mode == "load"


@pytest.mark.asyncio
async def test_help_lists_the_flow_and_keys():
    app = Workbench(keymap_path=None)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("f1")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        console = Console(width=120, record=True, file=io.StringIO())
        console.print(app.screen.body)
        text = console.export_text()
        for words in ("The flow", "1 Load", "2 Analyze", "3 Inspect", "4 Decide", "5 Generate", "6 Run",
                      "load.analyze", "analyze.run", "step.stop", "field.leave", "app.back", "app.edit",
                      "decide.replicate", "generate.diff", "run.build", "run.verify", "^s", "f1 / ?",
                      "Keys", "one meaning everywhere"):
            assert words in text
        # Each key once per section: "+" and "-" on their own rows, no "+/-" display.
        assert "+/-" not in text and text.count(" - ") <= 1
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, HelpScreen))


@pytest.mark.asyncio
async def test_palette_offers_only_what_applies(tmp_path):
    app = Workbench(keymap_path=None)
    async with app.run_test(size=(100, 30)) as pilot:
        titles = [c.title for c in app.palette_commands()]
        assert not any(t.startswith(("Plan", "Inspect", "Analyze", "Save")) for t in titles)
        assert "Open an NF's .c file" in titles and any(t.startswith("Help") for t in titles)

        app.session = Session(nf="fw", analysis=fixture("fw"))
        await pilot.pause()
        titles = [c.title for c in app.palette_commands()]
        assert any(t.startswith("Plan fw") for t in titles)
        assert any(t.startswith("Inspect fw") for t in titles)
        assert "Analyze fw now" in titles and "Save the session" in titles
        assert "Explain the plan" not in titles  # no plan yet
        assert not any(t.startswith(("Generate", "Build", "Run", "Verify", "Stop")) for t in titles)

        from analyses.planner import plan
        app.session = app.session.with_plan(plan(fixture("fw"), 2), app.session.settings)
        await pilot.pause()
        titles = [c.title for c in app.palette_commands()]
        assert "Generate fw's program now" in titles and "Build fw's program" not in titles
        from codegen.generator import generate
        from codegen.program import BUILD_STAMP, program_digest

        program = generate("fw", app.session.plan.to_json(), fixture("fw"), tmp_path / "fw")
        app.session = app.session.with_program(program)
        await pilot.pause()
        titles = [c.title for c in app.palette_commands()]
        assert "Build fw's program" in titles and "Run fw's program" not in titles
        # what a build leaves (the palette reads it; nothing here runs the executable)
        program.program.write_text("")
        (program.directory / BUILD_STAMP).write_text(json.dumps(
            {"program_digest": program_digest(program), "executable": program.program.name}))
        app.session = app.session.with_result("build", {"ok": True})
        await pilot.pause()
        assert "Run fw's program" in [c.title for c in app.palette_commands()]
        app.session = app.session.with_program(program)  # a new program is not built
        assert not app.session.built and "build" not in app.session.results

        provider = WorkbenchCommands(app.screen)
        found = [hit.text async for hit in provider.search("plan")]
        assert any(str(t).startswith("Plan fw") for t in found)


@pytest.mark.asyncio
async def test_keymap_file_remaps_bindings(tmp_path):
    keymap = tmp_path / "keymap.json"
    keymap.write_text(json.dumps({"load.open": "ctrl+f", "step.inspect": ["i", "3"]}))
    assert load_keymap(keymap) == {"load.open": "ctrl+f", "step.inspect": "i,3"}
    app = Workbench(keymap_path=keymap)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: "i Inspect" in str(app.screen.query_one(StepBar).content))
        await pilot.press("o")
        await pilot.pause()
        assert not isinstance(app.screen, OpenFileScreen)
        await pilot.press("ctrl+f")
        await until(pilot, lambda: isinstance(app.screen, OpenFileScreen))


@pytest.mark.asyncio
async def test_bad_keymap_is_reported_and_ignored(tmp_path):
    keymap = tmp_path / "keymap.toml"
    keymap.write_text("load.analyze = 3\n")
    app = Workbench(keymap_path=keymap)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: any("keymap" in n.message for n in app._notifications))
        assert app.current_mode == "load"
