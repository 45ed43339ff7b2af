"""The whole workbench flow per sample family, at 80x24, driven only by the
keys a user presses (arrows, Tab, Enter, letters, digits; Select menus
opened with Enter): load, analyze, inspect, decide, generate, build, run and
verify with the real stack (angr, z3, gcc, DPDK; nothing mocked).

- firewall-like: fw from a bare `maestro-tui` (the NF picked in the list),
  overrides, refusals, strategy, NIC and cores by key, then shared-nothing
  on 2 cores, generated, built, run and verified on the sessions profile
  and a trace of the user's own;
- bridge-like: bridge, whose MAC table cannot be sharded (locks), its plan
  explained, generated, built and run; then a long run stopped by quitting
  (q asks about the unsaved session, d discards it): no program is left;
- load balancer: lb, a mixed plan (sharded flows, locked backends,
  replicated hash ring), generated, built and run.

Runs are 1 s and the verification a few hundred packets: the point is that
every step works from the keyboard at 80x24, not throughput.  (Verifying
analyzes the program's NF copy again, so bridge and lb, verified elsewhere,
are only run here.)
"""
import asyncio
import threading
import time

import pytest
from textual.widgets import DataTable, OptionList, Static

from codegen.trace import write_pcapng
from codegen.traffic import generate as traffic
from workbench import session as session_module
from workbench.app import Workbench
from workbench.screens.analyze import AnalyzeScreen
from workbench.screens.decide import DecideScreen
from workbench.screens.generate import GenerateScreen
from workbench.screens.inspect import InspectScreen
from workbench.screens.load import LoadScreen
from workbench.screens.run import RunScreen
from workbench.widgets.access_view import AccessView
from workbench.widgets.analysis_progress import AnalysisProgress
from workbench.widgets.packet_header import DEVICE_STYLES, SEVERAL_STYLE, PacketHeader
from workbench.widgets.plan_verdict import PlanVerdict
from workbench.widgets.footer import WorkbenchFooter
from workbench.widgets.throughput import Throughput
from textual.widgets._footer import FooterKey
from tests.test_tui_flow import (choose, column, log_text, plain, press_until, private_home,  # noqa: F401
                                 settle, static_text, tab_to, type_into, until)

SIZE = (80, 24)


def files_listed(screen: GenerateScreen) -> list[str]:
    files = screen.query_one("#gen-files", OptionList)
    return [str(files.get_option_at_index(i).id) for i in range(files.option_count)]


def nothing_cut_off(app) -> None:
    """Every step stays on the step bar, and the screen's own keys, the
    steps, Esc, Tab, help and quit are in the footer, inside its 80 columns."""
    bar = app.screen.query_one("#step-bar", Static)
    assert all(str(i) in plain(bar.content) for i in range(1, 7)) and bar.content.cell_length <= SIZE[0] - 2
    footer = app.screen.query_one(WorkbenchFooter)
    shown = {k.key: k for k in footer.query(FooterKey)}
    own = {b.key for b in type(app.screen).__dict__.get("BINDINGS", []) if b.show}
    for key in own | {"1", "tab", "f1", "q"} | ({"escape"} if app.current_mode != "load" else set()):
        assert key in shown, (key, sorted(shown))
        assert shown[key].region.right <= SIZE[0], (key, shown[key].region)


async def analyzed(app, pilot, what: str = "the analysis") -> None:
    await until(pilot, lambda: isinstance(app.screen, AnalyzeScreen) and app.screen.run >= 1
                and not app.screen.running and app.session.analysis is not None, timeout=120, what=what)
    await settle(app, pilot)


async def planned(app, pilot, *keys: str) -> None:
    """Press `keys` on Decide and wait for the plan (or the refusal)."""
    screen = app.screen
    before = screen.run
    await pilot.press(*keys)
    await until(pilot, lambda: screen.run > before and screen.pending is None, what="a plan")
    await settle(app, pilot)


async def generated(app, pilot) -> None:
    """5, then g: the program of the plan."""
    await pilot.press("5")
    await until(pilot, lambda: isinstance(app.screen, GenerateScreen), what="Generate")
    screen = app.screen
    await pilot.press("g")
    await until(pilot, lambda: not screen.running and app.session.program is not None, what="the program")
    await settle(app, pilot)


async def built(app, pilot) -> RunScreen:
    """b on Generate: to Run, and make."""
    await pilot.press("b")
    await until(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.run >= 1
                and app.screen.busy is None and "build" in app.session.results, timeout=120, what="the build")
    await settle(app, pilot)
    assert app.session.built, app.session.results["build"]
    return app.screen


async def ran(app, pilot, seconds: str = "1", every: str = "0.5") -> None:
    """Type the run's seconds and interval; Enter in a run field runs it."""
    screen = app.screen
    runs = screen.run
    await type_into(pilot, "run-interval", every)
    await pilot.press("shift+tab")  # back to the seconds
    assert app.focused.id == "run-seconds"
    await pilot.press(*seconds, "enter")
    await until(pilot, lambda: screen.run > runs and screen.busy is None and "run" in app.session.results,
                timeout=60, what="the run")
    await settle(app, pilot)


async def verified(app, pilot, packets: str, profile: str, trace: str | None = None) -> str:
    """Packets and profile by key; Enter in the trace field verifies."""
    screen = app.screen
    runs = screen.run
    await type_into(pilot, "run-packets", packets)
    await choose(pilot, "verify-traffic", profile)
    await tab_to(pilot, "verify-trace")
    if trace is not None:
        await pilot.press(*str(trace))
    await pilot.press("enter")
    await until(pilot, lambda: screen.run > runs and screen.busy is None and "verify" in app.session.results,
                timeout=120, what="the verification")
    await settle(app, pilot)
    return static_text(screen.query_one("#verdict", Static))


def assert_per_core_numbers(app, cores: int) -> None:
    screen = app.screen
    throughput = screen.query_one(Throughput)
    mpps = throughput.core_mpps()
    assert sorted(mpps) == list(range(cores)) and all(v > 0 for v in mpps.values())
    for core in range(cores):
        numbers = static_text(screen.query_one(f"#core-{core}-numbers", Static))
        assert "Mpps" in numbers and "rx" in numbers and "NF drop" in numbers
        assert len(screen.query_one(f"#core-{core}-row").history) >= 2  # a stats line, then the final
    assert "Mpps" in static_text(screen.query_one("#total-numbers", Static))
    drops = static_text(screen.query_one("#tp-drops", Static))
    assert "NF drops" in drops and "NIC drops" in drops  # the NF's verdicts apart from the NIC's losses
    run = app.session.results["run"]
    assert run["ok"] and run["final"]["conserved"] and len(run["final"]["lcores"]) == cores


@pytest.mark.asyncio
async def test_fw_from_bare_start_to_verified_by_keys(tmp_path, monkeypatch):
    # The flow starts from the default of 4 cores and comes down to 2.
    monkeypatch.setattr(session_module, "default_cores", lambda: 4)
    monkeypatch.chdir(tmp_path)
    app = Workbench(keymap_path=None)
    async with app.run_test(size=SIZE) as pilot:
        # Load: arrows to fw, Enter analyzes it.
        await until(pilot, lambda: isinstance(app.screen, LoadScreen) and app.screen.nf is not None)
        nothing_cut_off(app)
        await press_until(pilot, "down", lambda: app.screen.nf.name == "fw")
        await pilot.press("enter")
        await analyzed(app, pilot)
        screen = app.screen
        assert app.session.analysis.nf == "fw"
        assert "complete" in static_text(screen.query_one("#analyze-result", Static))
        assert "✓ report" in plain(screen.query_one(AnalysisProgress).render())
        assert not app._notifications, "no toast over the screens (the Analyze screen says it)"
        nothing_cut_off(app)

        # Inspect (Enter on the focused "Inspect state" button): the objects,
        # flow_map's accesses, relation, source lines, header.
        assert app.focused.id == "to-inspect"
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, InspectScreen))
        table = app.screen.query_one("#objects", DataTable)
        assert app.focused is table
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
        await pilot.press("f")  # the fields of device 0 only
        assert header.device == 0 and header.style_of("ipv4.src") == DEVICE_STYLES[0]
        await pilot.press("down")
        await until(pilot, lambda: view.object == "flow_keys")
        assert "flow_chain.index" in static_text(view)
        assert not header.keys.keyed and "no packet field keys it" in header.render().plain
        nothing_cut_off(app)

        # Decide: everything sharded, proved; the plan summary says what was asked.
        await pilot.press("4")
        await until(pilot, lambda: isinstance(app.screen, DecideScreen) and app.session.plan is not None
                    and app.screen.shown is app.session.plan, what="the first plan")
        await settle(app, pilot)
        screen = app.screen
        plan = app.session.plan
        assert plan.strategy == "shared-nothing" and plan.cores == 4
        decisions = screen.query_one("#decisions", DataTable)
        assert app.focused is decisions
        assert column(decisions, 0) == ["flow_map", "flow_keys", "flow_chain"]
        assert column(decisions, 1) == ["shard"] * 3
        assert column(decisions, 2) == ["planner", "with flow_map", "with flow_map"]
        summary = static_text(screen.query_one("#plan-summary", Static))
        assert "shared-nothing on 4 cores" in summary and "asked: strategy auto, no override" in summary
        verdict = static_text(screen.query_one(PlanVerdict))
        assert "unsat" in verdict and "proved" in verdict and "3 checks" in verdict
        assert "max/mean" in static_text(screen.query_one("#quality", Static))
        assert "device 0" in static_text(screen.query_one("#rss", Static))
        nothing_cut_off(app)

        # l: an override recomputes the plan at once; its group follows, and says why.
        await planned(app, pilot, "l")
        assert app.session.settings.overrides == {"flow_map": "lock"}
        assert app.session.plan.decisions() == {"flow_map": "lock", "flow_keys": "lock", "flow_chain": "lock"}
        assert column(decisions, 2) == ["you", "with flow_map", "with flow_map"]
        summary = static_text(screen.query_one("#plan-summary", Static))
        assert "locks on 4 cores" in summary and "override flow_map=lock" in summary
        await pilot.press("down")
        reason = static_text(screen.query_one("#reason", Static))
        assert "lock because you overrode flow_map" in reason and "flow_chain.index" in reason
        await pilot.press("up")
        await planned(app, pilot, "u")  # back to the planner's choice
        assert app.session.settings.overrides == {}
        assert set(app.session.plan.decisions().values()) == {"shard"}

        # c (replicate) is refused for a written object: it says why and keeps the plan.
        before = app.session.plan
        await planned(app, pilot, "c")
        refusal = screen.query_one("#refusal", Static)
        assert refusal.display and "flow_map=replicate" in static_text(refusal)
        assert "written" in static_text(refusal)
        assert app.session.plan is before and app.session.settings.overrides == {}

        # + one more core; NIC and strategy from their menus; a bad core count is refused.
        await planned(app, pilot, "plus")
        assert app.session.plan.cores == 5 and not refusal.display
        for select, value in (("nic", "82599"), ("strategy", "locks")):
            before = screen.run
            await choose(pilot, select, value)
            await until(pilot, lambda: screen.run > before and screen.pending is None)
            await settle(app, pilot)
        assert app.session.plan.nic == "82599"
        assert app.session.plan.strategy == "locks" and app.session.settings.strategy == "locks"
        await type_into(pilot, "cores", "0")
        await pilot.press("enter")
        assert "cores" in static_text(refusal) and "64" in static_text(refusal)
        assert app.session.plan.cores == 5 and screen.query_one("#cores").value == "5"

        # Back to auto, and 2 cores (Enter in the cores field plans).
        before = screen.run
        await choose(pilot, "strategy", "auto")
        await until(pilot, lambda: screen.run > before and screen.pending is None)
        await settle(app, pilot)
        await type_into(pilot, "cores", "2")
        before = screen.run
        await pilot.press("enter")
        await until(pilot, lambda: screen.run > before and screen.pending is None)
        await settle(app, pilot)
        plan = app.session.plan
        assert plan.cores == 2 and plan.strategy == "shared-nothing" and plan.nic == "82599"
        assert app.focused is decisions  # Enter planned and went back to the table
        assert "Generate fw's program now" in [c.title for c in app.palette_commands()]

        # Generate: every file of a first generation is new (+).
        await generated(app, pilot)
        screen = app.screen
        program = app.session.program
        assert program.strategy == "sn" and program.cores == 2
        assert program.directory == tmp_path / "build" / "workbench" / "fw-sn"
        listed = files_listed(screen)
        assert "config.c" in listed and "Makefile" in listed and "nf/fw.c" in listed
        prompts = [str(o.prompt) for o in screen.query_one("#gen-files", OptionList).options]
        assert all(p.startswith("+ ") for p in prompts)
        status = static_text(screen.query_one("#generate-status", Static))
        assert "fw · sn, the plan's (shared-nothing)" in status and "2 cores" in status
        await pilot.press("d")  # a new file: all of it added
        assert "new, every line added" in str(screen.query_one("#gen-view-pane").border_title)
        titles = [c.title for c in app.palette_commands()]
        assert "Build fw's program" in titles and "Run fw's program" not in titles
        nothing_cut_off(app)

        # Build (b on Generate goes to Run and builds): the log streams make's lines.
        screen = await built(app, pilot)
        log = log_text(screen.query_one("#run-log"))
        assert "make" in log and "nf_copy_1.o" in log and "built" in log
        assert "built" in static_text(screen.query_one("#run-status", Static))
        assert "Run fw's program" in [c.title for c in app.palette_commands()]
        nothing_cut_off(app)

        # Run 1 s (Enter in the seconds field), stats every 0.5 s.
        await ran(app, pilot)
        assert_per_core_numbers(app, 2)
        assert app.session.results["run"]["traffic"] == "uniform"
        assert app.session.results["run"]["seconds"] == 1

        # Verify the program on screen on the sessions profile and a trace of the user's own.
        own = tmp_path / "own.pcapng"
        write_pcapng(own, traffic("uniform", 20, 200, seed=5))
        verdict = await verified(app, pilot, "300", "sessions", own.name)  # relative: the working folder
        assert "✓ equivalent: 500/500 packets identical" in verdict and "NOT" not in verdict
        assert "sessions, 300 packets" in verdict and "own.pcapng, 200 packets" in verdict
        assert "device 0 paths █" in verdict and "device 1 paths" in verdict
        assert "never reached:" in verdict and program.digest in verdict
        doc = app.session.results["verify"]
        assert doc["equivalent"] is True and doc["plan_digest"] == program.digest
        assert [t["traffic"] for t in doc["traces"]] == ["sessions", "own.pcapng"]
        assert set(app.session.results) == {"generate", "build", "run", "verify"}
        await pilot.press("escape")  # leaves the trace field: the screen's keys are back
        assert app.focused.id == "run-log"
        nothing_cut_off(app)

        # q over unsaved work asks; d discards and quits.
        await pilot.press("q")
        await until(pilot, lambda: type(app.screen).__name__ == "UnsavedModal", what="the question")
        await pilot.press("d")
        await until(pilot, lambda: not app.is_running, what="the exit")


@pytest.mark.asyncio
async def test_bridge_locks_by_keys(tmp_path, monkeypatch):
    import workbench.screens.run as run_module

    monkeypatch.setattr(session_module, "default_cores", lambda: 2)
    monkeypatch.chdir(tmp_path)
    ended, real = threading.Event(), run_module.run

    def tracked(*args, **kwargs):
        try:
            return real(*args, **kwargs)
        finally:
            if kwargs.get("seconds", 0) > 30:
                ended.set()

    monkeypatch.setattr(run_module, "run", tracked)
    app = Workbench("bridge", keymap_path=None)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, LoadScreen) and app.screen.nf is not None
                    and app.screen.nf.name == "bridge")
        await pilot.press("a")
        await analyzed(app, pilot)

        await pilot.press("3")
        await until(pilot, lambda: isinstance(app.screen, InspectScreen))
        table = app.screen.query_one("#objects", DataTable)
        assert column(table, 0) == ["mac_map", "mac_keys", "mac_devices", "mac_chain"]
        header = app.screen.query_one(PacketHeader)
        assert header.keys.devices("eth.src") == {0, 1} and header.keys.devices("eth.dst") == {0, 1}
        assert header.style_of("ipv4.src") is None
        text = static_text(app.screen.query_one(AccessView))
        assert "in learn()" in text and "dev 0 ↔ dev 1 (same key): eth.src = eth.src" in text

        await pilot.press("4")
        await until(pilot, lambda: isinstance(app.screen, DecideScreen) and app.session.plan is not None
                    and app.screen.shown is app.session.plan, what="the plan")
        await settle(app, pilot)
        plan = app.session.plan
        assert plan.strategy == "locks" and set(plan.decisions().values()) == {"lock"}
        verdict = static_text(app.screen.query_one(PlanVerdict))
        assert "Shared-nothing is impossible for mac_map" in verdict
        assert "eth.src" in verdict and "does not hash" in verdict
        assert "  A  dev 0 → RETA" in verdict and "  B  dev 1 → RETA" in verdict
        reason = static_text(app.screen.query_one("#reason", Static))
        assert reason.startswith("mac_map") and "keyed by eth.src, eth.dst" in reason
        assert "locks on 2 cores" in static_text(app.screen.query_one("#plan-summary", Static))
        await planned(app, pilot, "s")
        refusal = static_text(app.screen.query_one("#refusal", Static))
        assert "Refused" in refusal and "mac_map=shard" in refusal and "hash" in refusal
        assert app.session.plan is plan

        await generated(app, pilot)
        assert app.session.program.strategy == "locks"
        assert "config.c" in files_listed(app.screen)
        await built(app, pilot)
        await ran(app, pilot)
        assert_per_core_numbers(app, 2)

        # A long run, stopped by leaving the app (q, then d: discard the session).
        await type_into(pilot, "run-seconds", "60")
        await pilot.press("enter")
        await until(pilot, lambda: app.screen.busy == "run" and app.screen.query_one(Throughput).last,
                    what="stats")
        assert "Stop the run" in [c.title for c in app.palette_commands()]
        await pilot.press("escape")  # leaves the field (the run goes on)
        assert app.screen.busy == "run" and app.focused.id == "run-log"
        assert "escape" in {k for k, (_, b, _, _) in app.screen.active_bindings.items() if b.description == "Stop"}
        nothing_cut_off(app)
        started = time.monotonic()
        await pilot.press("q")
        await until(pilot, lambda: type(app.screen).__name__ == "UnsavedModal", what="the question")
        await pilot.press("d")
    assert await asyncio.to_thread(ended.wait, 20)
    assert time.monotonic() - started < 20


@pytest.mark.asyncio
async def test_lb_mixed_plan_by_keys(tmp_path, monkeypatch):
    monkeypatch.setattr(session_module, "default_cores", lambda: 2)
    monkeypatch.chdir(tmp_path)
    app = Workbench("lb", keymap_path=None)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, LoadScreen) and app.screen.nf is not None
                    and app.screen.nf.name == "lb")
        await pilot.press("a")
        await analyzed(app, pilot)
        await pilot.press("4")
        await until(pilot, lambda: isinstance(app.screen, DecideScreen) and app.session.plan is not None
                    and app.screen.shown is app.session.plan, what="the plan")
        await settle(app, pilot)
        plan = app.session.plan
        decisions = plan.decisions()
        assert plan.strategy == "mixed"
        assert decisions["flow_map"] == "shard" and decisions["backend_map"] == "lock"
        assert decisions["cht"] == "replicate"
        table = app.screen.query_one("#decisions", DataTable)
        by = dict(zip(column(table, 0), column(table, 2)))
        assert by["backend_chain"] == "with backend_map" and by["flow_chain"] == "with flow_map"
        assert by["flow_map"] == by["backend_map"] == by["cht"] == "planner"
        assert "mixed on 2 cores" in static_text(app.screen.query_one("#plan-summary", Static))

        await generated(app, pilot)
        assert app.session.program.strategy == "locks"
        await built(app, pilot)
        await ran(app, pilot)
        assert_per_core_numbers(app, 2)
        await pilot.press("escape")  # out of the seconds field
        nothing_cut_off(app)
