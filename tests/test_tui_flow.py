"""The workbench flow with real analyses: failing (a compile error, a call
outside the contract), incomplete and cancelled analyses; cancellation on
exit; the helpers the other workbench tests share.  The whole flow per
sample family, driven by keys at 80x24, is in test_tui_e2e.py."""
import asyncio
import io
import itertools
import threading
import time
from pathlib import Path

import pytest
from rich.console import Console
from textual.widgets import DataTable, Input, OptionList, RichLog, Static

from workbench.app import Workbench
from workbench.screens.analyze import AnalyzeScreen
from workbench.screens.decide import DecideScreen
from workbench.screens.load import LoadScreen
from workbench.widgets.analysis_progress import AnalysisProgress

SIZE = (100, 30)
#: An NF whose exploration never ends within the default budgets.
SLOW_NF = Path(__file__).parent / "nfs" / "unbounded_loop.c"


def plain(renderable) -> str:
    """What a rich renderable reads as (wide, so nothing wraps)."""
    console = Console(width=200, record=True, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


def static_text(widget: Static) -> str:
    return plain(widget.content)


def log_text(widget: RichLog) -> str:
    """What a log shows, its wrapped lines joined with single spaces."""
    return " ".join(" ".join(strip.text for strip in widget.lines).split())


@pytest.fixture(autouse=True)
def private_home(tmp_path, monkeypatch):
    """The workbench saves sessions under $XDG_DATA_HOME (~/.local/share) by
    default: the tests give it a home of their own, never the real one."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    return home


async def press_until(pilot, key: str, condition, limit: int = 40) -> None:
    """Press `key` until `condition()` holds (at most `limit` times)."""
    for _ in range(limit):
        if condition():
            return
        await pilot.press(key)
    assert condition(), f"{key} pressed {limit} times without reaching {condition}"


async def tab_to(pilot, widget_id: str) -> None:
    """Tab (or shift+Tab, whichever is shorter) until the widget `widget_id`
    has the focus (keys only)."""
    app = pilot.app
    chain = app.screen.focus_chain
    ids = [w.id for w in chain]
    if app.focused is not None and app.focused in chain and widget_id in ids:
        ahead = (ids.index(widget_id) - chain.index(app.focused)) % len(chain)
        key = "tab" if ahead <= len(chain) - ahead else "shift+tab"
    else:
        key = "tab"
    await press_until(pilot, key, lambda: app.focused is not None and app.focused.id == widget_id)


async def type_into(pilot, widget_id: str, text: str) -> None:
    """Tab to a text field, clear it (End, ctrl+u) and type `text`."""
    await tab_to(pilot, widget_id)
    await pilot.press("end", "ctrl+u", *text)
    assert pilot.app.focused.value == text


async def choose(pilot, select_id: str, value: str) -> None:
    """Tab to a Select, open it (Enter), arrow to `value`, Enter."""
    app = pilot.app
    await tab_to(pilot, select_id)
    select = app.focused
    values = [v for _, v in select._options]
    await pilot.press("enter")
    await until(pilot, lambda: app.focused is not select, what="the open menu")
    menu = app.focused
    target = values.index(value)
    key = "down" if (menu.highlighted or 0) < target else "up"
    await press_until(pilot, key, lambda: menu.highlighted == target)
    await pilot.press("enter")
    await until(pilot, lambda: select.value == value, what=f"{select_id} = {value}")

async def until(pilot, condition, timeout: float = 60, what: str = "") -> None:
    """Pause until `condition()` holds (a loaded machine may be slow)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        await pilot.pause(0.05)


async def ready(app, pilot) -> None:
    """The Load screen shows the NF given on the command line."""
    await until(pilot, lambda: isinstance(app.screen, LoadScreen) and app.screen.nf is not None
                and app.session.nf is not None and app.screen.nf.name in app.session.nf)


async def settle(app, pilot, timeout: float = 60) -> None:
    """Every worker ended, and the app's and the screen's messages handled."""
    await asyncio.wait_for(app.workers.wait_for_complete(), timeout)
    quiet, deadline = 0, time.monotonic() + 10
    while quiet < 3 and time.monotonic() < deadline:
        await pilot.pause(0.02)
        busy = not app._message_queue.empty() or not app.screen._message_queue.empty()
        quiet = 0 if busy else quiet + 1


def column(table: DataTable, index: int) -> list[str]:
    return [str(table.get_row_at(i)[index]) for i in range(table.row_count)]


async def analyze(app, pilot, key: str = "a", outcome: str = "done", runs_before: int = 0) -> None:
    """Press `key` (it starts an analysis) and wait for the run to end in `outcome`."""
    await pilot.press(key)

    def ended() -> bool:
        screen = app.screen
        return (isinstance(screen, AnalyzeScreen) and screen.run > runs_before and not screen.running
                and screen.query_one(AnalysisProgress).state == outcome
                and (outcome != "done" or app.session.analysis is not None))

    await until(pilot, ended, what=f"an analysis that ends {outcome}")
    await settle(app, pilot)


async def replan(app, pilot, *keys: str) -> None:
    """Press `keys` on Decide and wait for the plan (or the refusal)."""
    screen = app.screen
    before = screen.run
    await pilot.press(*keys)
    await until(pilot, lambda: screen.run > before and screen.pending is None, what="a plan")
    await settle(app, pilot)


async def decide(app, pilot) -> None:
    """Go to Decide and wait for its first plan."""
    await pilot.press("4")
    await until(pilot, lambda: isinstance(app.screen, DecideScreen) and app.session.plan is not None
                and app.screen.shown is app.session.plan, what="the first plan")
    await settle(app, pilot)


BROKEN = """/* broken -- does not compile. */
#include "nf.h"
bool nf_init(void) { return true; }
int nf_process(uint16_t device, uint8_t *packet, uint16_t length, vigor_time_t now) {
  return undeclared_thing + device;
}
"""

OUTSIDE = """/* outside -- calls outside the contract. */
#include "nf.h"
#include <stdlib.h>
bool nf_init(void) { return true; }
int nf_process(uint16_t device, uint8_t *packet, uint16_t length, vigor_time_t now) {
  (void)packet; (void)length; (void)now;
  return rand() ? device : NF_DROP;
}
"""


@pytest.mark.asyncio
@pytest.mark.parametrize("source, expected", [
    (BROKEN, ["does not compile", "nf.c:5", "undeclared_thing"]),
    (OUTSIDE, ["nf.c:7", "calls rand()", "outside the NF contract"]),
])
async def test_failing_analysis_shows_error_and_app_stays_usable(tmp_path, source, expected):
    nf = tmp_path / "nf.c"
    nf.write_text(source)
    app = Workbench(str(nf), keymap_path=None)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        await analyze(app, pilot, outcome="failed")
        error = static_text(app.screen.query_one("#analyze-error", Static))
        for words in expected:
            assert words in error
        progress = app.screen.query_one(AnalysisProgress)
        assert progress.state == "failed"
        # A call outside the contract fails the contract check, not the compilation.
        stage = "contract" if "outside the NF contract" in expected else "compile"
        assert f"✗ {stage}" in plain(progress.render())
        assert ("✓ compile" in plain(progress.render())) == (stage == "contract")
        assert app.session.analysis is None

        # Pick another NF and analyze it.
        await pilot.press("1")
        await until(pilot, lambda: app.current_mode == "load")
        nf_list = app.screen.query_one("#nf-list", OptionList)
        nf_list.focus()
        nf_list.highlighted = nf_list.get_option_index("nop")
        await until(pilot, lambda: app.screen.nf is not None and app.screen.nf.name == "nop")
        await analyze(app, pilot, "enter", runs_before=1)  # Enter on an NF analyzes it
        assert app.session.nf == "nop" and app.session.analysis.nf == "nop"
        assert static_text(app.screen.query_one("#analyze-error", Static)).strip() == ""


@pytest.mark.asyncio
async def test_exceeded_budget_gives_an_incomplete_report_with_its_warning():
    app = Workbench(str(SLOW_NF), keymap_path=None)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        await pilot.press("2")
        await until(pilot, lambda: app.current_mode == "analyze")
        screen = app.screen
        assert isinstance(screen, AnalyzeScreen)
        screen.query_one("#budget-seconds", Input).value = "1"
        await pilot.click("#run")
        await until(pilot, lambda: screen.run == 1 and not screen.running and app.session.analysis is not None)
        await settle(app, pilot)
        result = static_text(screen.query_one("#analyze-result", Static))
        assert "INCOMPLETE" in result and "stopped:" in result
        assert app.session.analysis is not None and not app.session.analysis.stats.complete
        await pilot.press("3")
        await until(pilot, lambda: app.current_mode == "inspect")
        banner = app.screen.query_one("#inspect-banner", Static)
        assert banner.display and "INCOMPLETE" in static_text(banner)


async def _wait_for_explore(app, pilot, timeout: float = 60) -> None:
    await until(pilot, lambda: isinstance(app.screen, AnalyzeScreen)
                and app.screen.query_one(AnalysisProgress).stage == "explore", timeout, "exploration")


@pytest.mark.asyncio
async def test_cancel_a_running_analysis():
    app = Workbench(str(SLOW_NF), keymap_path=None)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        await pilot.press("a")
        await _wait_for_explore(app, pilot)
        assert app.screen.running
        titles = [c.title for c in app.palette_commands()]
        assert "Cancel the analysis" in titles
        started = time.monotonic()
        await pilot.press("escape")
        await until(pilot, lambda: not app.screen.running, timeout=30)
        await settle(app, pilot, timeout=30)
        assert time.monotonic() - started < 30
        progress = app.screen.query_one(AnalysisProgress)
        assert progress.state == "cancelled"
        shown = plain(progress.render())
        assert "cancelled" in shown and "✗ explore" in shown and "✓ report" not in shown
        assert "cancelled" in static_text(app.screen.query_one("#analyze-error", Static))
        assert app.session.analysis is None and not app.screen.running


@pytest.mark.asyncio
async def test_choosing_another_nf_replaces_a_running_analysis():
    app = Workbench(str(SLOW_NF), keymap_path=None)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        await pilot.press("a")
        await _wait_for_explore(app, pilot)
        slow = app.screen.worker
        await pilot.press("1")
        await until(pilot, lambda: app.current_mode == "load")
        nf_list = app.screen.query_one("#nf-list", OptionList)
        nf_list.focus()
        nf_list.highlighted = nf_list.get_option_index("nop")
        await until(pilot, lambda: app.screen.nf is not None and app.screen.nf.name == "nop")
        await analyze(app, pilot, "enter", runs_before=1)
        assert slow.is_cancelled
        assert app.session.nf == "nop" and app.session.analysis.nf == "nop"


@pytest.mark.asyncio
async def test_quitting_cancels_the_analysis(monkeypatch):
    from codegen.pipeline import Pipeline

    ended = threading.Event()
    real = Pipeline.analyze

    def tracked(*args, **kwargs):
        try:
            return real(*args, **kwargs)
        finally:
            ended.set()

    monkeypatch.setattr(Pipeline, "analyze", tracked)
    app = Workbench(str(SLOW_NF), keymap_path=None)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        await pilot.press("a")
        await _wait_for_explore(app, pilot)
        worker = app.screen.worker
        await pilot.press("q")
    assert worker.is_cancelled
    assert await asyncio.to_thread(ended.wait, 30)


@pytest.mark.asyncio
async def test_pipeline_messages_come_in_order():
    """Load posts Chosen; the analysis worker Progress (coalesced) then
    Finished; the plan worker Planned."""
    kinds = (LoadScreen.Chosen, AnalyzeScreen.Progress, AnalyzeScreen.Finished, DecideScreen.Planned)
    seen = []

    def hook(message):
        if isinstance(message, kinds):
            seen.append(type(message).__name__)

    app = Workbench("nop", keymap_path=None)
    async with app.run_test(size=SIZE, message_hook=hook) as pilot:
        await ready(app, pilot)
        await analyze(app, pilot)
        await decide(app, pilot)
        assert app.session.plan.objects == []
        assert "keeps no state" in static_text(app.screen.query_one("#reason", Static))
    assert [k for k, _ in itertools.groupby(seen)] == ["Chosen", "Progress", "Finished", "Planned"]
