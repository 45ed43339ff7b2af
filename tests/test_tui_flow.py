"""The workbench flow with real analyses and plans: load -> analyze ->
inspect -> decide for fw and bridge; overrides, refusals; failing,
incomplete and cancelled analyses; cancellation on exit."""
import asyncio
import io
import itertools
import threading
import time
from pathlib import Path

import pytest

from workbench.session import default_cores
from rich.console import Console
from textual.widgets import DataTable, Input, OptionList, Select, Static

from workbench.app import Workbench
from workbench.screens.analyze import AnalyzeScreen
from workbench.screens.decide import DecideScreen
from workbench.screens.load import LoadScreen
from workbench.widgets.access_view import AccessView
from workbench.widgets.analysis_progress import AnalysisProgress
from workbench.widgets.packet_header import DEVICE_STYLES, SEVERAL_STYLE, PacketHeader
from workbench.widgets.plan_verdict import PlanVerdict

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


@pytest.mark.asyncio
async def test_fw_load_analyze_inspect_decide():
    app = Workbench("fw", keymap_path=None)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        await analyze(app, pilot)
        assert app.session.analysis is not None and app.session.analysis.nf == "fw"
        assert app.screen.query_one(AnalysisProgress).state == "done"
        assert "complete" in static_text(app.screen.query_one("#analyze-result", Static))

        # Inspect (Enter on the focused "Inspect state" button): the objects,
        # flow_map's accesses, relation, source lines, header.
        await pilot.press("enter")
        await until(pilot, lambda: app.current_mode == "inspect")
        table = app.screen.query_one("#objects", DataTable)
        assert column(table, 0) == ["flow_map", "flow_keys", "flow_chain"]
        assert column(table, 1) == ["map", "vector", "dchain"]
        assert column(table, 5) == ["written"] * 3
        view = app.screen.query_one(AccessView)
        assert view.object == "flow_map"
        text = static_text(view)
        assert "dev 0" in text and "(ipv4.src, ipv4.dst, l4.sport, l4.dport, ipv4.proto)" in text
        assert "dev 1" in text and "(ipv4.dst, ipv4.src, l4.dport, l4.sport, ipv4.proto)" in text
        assert "dev 0 ↔ dev 1 (same key): ipv4.src = ipv4.dst · ipv4.dst = ipv4.src" in text
        assert "fw.c:107  if (map_get(flow_map, &flow, &index))" in text
        assert "when device, eth.type" in text

        header = app.screen.query_one(PacketHeader)
        for name in ("ipv4.src", "ipv4.dst", "l4.sport", "l4.dport", "ipv4.proto"):
            assert header.keys.devices(name) == {0, 1}
            assert header.style_of(name) == SEVERAL_STYLE
        assert header.style_of("eth.src") is None and header.style_of("ipv4.ttl") is None
        rendered = header.render()
        styled = {rendered.plain[s.start:s.end].strip() for s in rendered.spans if s.style == SEVERAL_STYLE}
        assert {"source address", "destination address", "source port", "dest. port", "proto"} <= styled
        await pilot.press("d")  # device 0 only
        assert header.device == 0 and header.style_of("ipv4.src") == DEVICE_STYLES[0]

        table.focus()
        await pilot.press("down")
        await until(pilot, lambda: view.object == "flow_keys")
        assert "flow_chain.index" in static_text(view)
        assert not header.keys.keyed and "no packet field keys it" in header.render().plain

        # Decide: everything sharded, proved.
        await decide(app, pilot)
        screen = app.screen
        assert isinstance(screen, DecideScreen)
        plan = app.session.plan
        assert plan is not None and plan.strategy == "shared-nothing"
        decisions = screen.query_one("#decisions", DataTable)
        assert column(decisions, 0) == ["flow_map", "flow_keys", "flow_chain"]
        assert column(decisions, 1) == ["shard"] * 3
        verdict = static_text(screen.query_one(PlanVerdict))
        assert "shared-nothing" in verdict and "unsat" in verdict and "proved" in verdict
        assert "max/mean" in static_text(screen.query_one("#quality", Static))
        assert "device 0" in static_text(screen.query_one("#rss", Static))

        # An override recomputes the plan at once.
        decisions.focus()
        await replan(app, pilot, "l")
        assert app.session.settings.overrides == {"flow_map": "lock"}
        assert app.session.plan.decisions() == {"flow_map": "lock", "flow_keys": "lock", "flow_chain": "lock"}
        assert column(decisions, 2)[0] == "override"
        await replan(app, pilot, "a")  # back to the planner's choice
        assert app.session.settings.overrides == {}
        assert set(app.session.plan.decisions().values()) == {"shard"}

        # A refused override says why and keeps the plan.
        before = app.session.plan
        await replan(app, pilot, "r")
        refusal = screen.query_one("#refusal", Static)
        assert refusal.display and "flow_map=replicate" in static_text(refusal)
        assert "written" in static_text(refusal)
        assert app.session.plan is before and app.session.settings.overrides == {}

        # Cores, strategy and NIC recompute too.
        await replan(app, pilot, "plus")
        more = default_cores() + 1
        assert app.session.plan.cores == more and app.session.settings.cores == more
        assert not refusal.display
        before = screen.run
        screen.query_one("#strategy", Select).value = "locks"
        await until(pilot, lambda: screen.run > before and screen.pending is None)
        await settle(app, pilot)
        assert app.session.plan.strategy == "locks" and app.session.settings.strategy == "locks"
        before = screen.run
        screen.query_one("#nic", Select).value = "82599"
        await until(pilot, lambda: screen.run > before and screen.pending is None)
        await settle(app, pilot)
        assert app.session.plan.nic == "82599"
        cores = screen.query_one("#cores", Input)
        cores.value = "0"
        before = screen.run
        await cores.action_submit()
        await until(pilot, lambda: screen.run > before and screen.pending is None)
        await settle(app, pilot)
        assert "cores" in static_text(refusal) and "128" in static_text(refusal)
        assert app.session.plan.cores == more and cores.value == str(more)


@pytest.mark.asyncio
async def test_bridge_locks_with_the_mac_explanation():
    app = Workbench("bridge", keymap_path=None)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        await analyze(app, pilot)
        await pilot.press("3")
        await until(pilot, lambda: app.current_mode == "inspect")
        table = app.screen.query_one("#objects", DataTable)
        assert column(table, 0) == ["mac_map", "mac_keys", "mac_devices", "mac_chain"]
        header = app.screen.query_one(PacketHeader)
        assert header.keys.devices("eth.src") == {0, 1} and header.keys.devices("eth.dst") == {0, 1}
        assert header.style_of("ipv4.src") is None
        text = static_text(app.screen.query_one(AccessView))
        assert "in learn()" in text and "dev 0 ↔ dev 1 (same key): eth.src = eth.src" in text

        await decide(app, pilot)
        plan = app.session.plan
        assert plan.strategy == "locks" and set(plan.decisions().values()) == {"lock"}
        verdict = static_text(app.screen.query_one(PlanVerdict))
        assert "Shared-nothing is impossible for mac_map" in verdict
        assert "eth.src" in verdict and "does not hash" in verdict
        assert "  A  dev 0 → RETA" in verdict and "  B  dev 1 → RETA" in verdict
        reason = static_text(app.screen.query_one("#reason", Static))
        assert reason.startswith("mac_map") and "keyed by eth.src, eth.dst" in reason

        app.screen.query_one("#decisions", DataTable).focus()
        await replan(app, pilot, "s")
        refusal = static_text(app.screen.query_one("#refusal", Static))
        assert "Refused" in refusal and "mac_map=shard" in refusal and "hash" in refusal
        assert app.session.plan is plan


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
        assert app.screen.query_one(AnalysisProgress).state == "failed"
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
        assert app.screen.query_one(AnalysisProgress).state == "cancelled"
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
