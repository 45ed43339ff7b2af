"""Step 6, Run: build the generated program, run or benchmark it, verify it.

The bench (m) measures the session's plan with `codegen.bench`: one program
per strategy the plan allows and per core count 1..N, each run for the
seconds per point on the run's traffic, and the null NF in the same shape
(the harness); its rows fill a table as they come and a chart draws Mpps
against cores.  The body shows either the run's view (throughput, verdict)
or the bench's (table, chart); w switches, a run or verify shows the run's.

Each task runs in a thread worker that only posts messages: the build log
line by line (`BuildLine`), the program's events (`RunEvent`; a stats event
replaces a queued one) and the outcome (`Result`, which the app records in
the session).  Failures (the compiler's errors, a program that cannot start,
e.g. transactions on a CPU without Intel RTM) reach the screen's one failure
handler and are shown here; the app stays usable.  Stopping a run sets its
cancel event (the program gets SIGINT and prints its totals); leaving the
screen or the app does the same, so no program is left behind.
"""
from __future__ import annotations

import dataclasses
import shlex
import threading
import time
from pathlib import Path
from typing import Any, Mapping

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container, Horizontal, VerticalScroll
from textual.message import Message
from textual.widgets import Button, Input, Label, RichLog, Select, Static
from textual.worker import Worker

from analyses.plan_values import LOCK_KINDS, Plan
from codegen.bench import bench
from codegen.generator import GeneratedProgram
from codegen.pipeline import Pipeline
from codegen.program import cores_warning, run
from codegen.traffic import PROFILES
from codegen.traffic import generate as make_traffic
from workbench.screens.load import display_path
from workbench.screens.base import CORES, FLOWS, PACKETS, SECONDS, FieldError, StepScreen, parse_field
from workbench.screens.text_modal import ConfirmModal
from workbench.session import Session
from workbench.widgets.bench_view import BenchTable, ScalingChart
from workbench.widgets.throughput import Throughput

#: Traffic verify can generate (codegen.verify.make_traffic_for).
VERIFY_PROFILES = ("paths", *PROFILES)
#: Unreached paths listed under the verdict (the rest are counted).
UNREACHED_SHOWN = 8
LOG_TAIL = 40
#: What the status says while a task is going.
GOING = {"build": "building…", "run": "running…", "verify": "verifying…", "bench": "benchmarking…"}
#: Fields whose Enter runs the program (built) or builds it (not built yet).
RUN_FIELDS = ("run-flows", "run-packets", "run-seconds", "run-interval", "run-eal")
#: Fields whose Enter starts the bench.
BENCH_FIELDS = ("bench-cores", "bench-strategies", "bench-seconds")


def cpu_has_rtm() -> bool:
    """Whether this CPU has Intel RTM (a tm program refuses to start without it)."""
    from codegen.program_bench import RTM

    return RTM


def bench_strategies(plan: Plan) -> list[str]:
    """The bench strategies (codegen.bench.STRATEGIES) the plan allows: the
    sequential program, the plan's own program strategy (shared-nothing, or
    each lock kind when it locks), and transactions where the CPU has RTM."""
    own = {"shared-nothing": ["sn"], "tm": ["tm"]}.get(plan.strategy) or [f"locks-{k}" for k in LOCK_KINDS]
    if "tm" not in own and cpu_has_rtm():
        own.append("tm")
    return ["seq", *own]


class RunScreen(StepScreen):
    """Builds, runs and verifies the session's generated program."""

    STEP = "run"
    HOME = "#run-log"
    BINDINGS = [
        Binding("b", "build", "Build", id="run.build",
                tooltip="Build the generated program (make); the log streams below"),
        Binding("r", "start", "Run", id="run.run",
                tooltip="Run it for the seconds shown on the simulated NIC (or the real NIC the "
                        "EAL arguments name); live per-core throughput (Enter in a run field does the same; "
                        "Esc stops it cleanly: SIGINT, it prints its totals)"),
        Binding("v", "verify", "Verify", id="run.verify",
                tooltip="Check the program is equivalent to the sequential NF on generated traffic "
                        "(Enter in the trace field does the same)"),
        Binding("m", "bench", "Bench", id="run.bench",
                tooltip="Benchmark the plan: a program per strategy and per core count 1..N on the run's "
                        "traffic, seconds per point; a table fills row by row and a chart draws Mpps vs "
                        "cores (Enter in a bench field does the same; Esc stops it)"),
        Binding("w", "switch_view", "View", id="run.view",
                tooltip="Switch the body between the run's view (throughput, verdict) and the bench's "
                        "(table, scaling chart)"),
    ]

    class BenchPoint(Message):
        """A row the bench of task `run` just measured (a BenchRow as a dict)."""

        def __init__(self, run: int, row: dict[str, Any]) -> None:
            super().__init__()
            self.run = run
            self.row = row

    class BuildLine(Message):
        """A line of task `run`'s build log."""

        def __init__(self, run: int, line: str) -> None:
            super().__init__()
            self.run = run
            self.line = line

    class RunEvent(Message):
        """An event of the program of task `run` (config, stats, final); a
        stats event replaces a queued stats event of the same run."""

        def __init__(self, run: int, event: dict[str, Any]) -> None:
            super().__init__()
            self.run = run
            self.event = event

        def can_replace(self, message: Message) -> bool:
            return (isinstance(message, RunScreen.RunEvent) and message.run == self.run
                    and message.event.get("type") == "stats" and self.event.get("type") == "stats")

    class Result(Message):
        """Task `run` of `stage` (build, run, verify) ended with `doc` (its
        session result); `basis`: the session's generate result it started from."""

        def __init__(self, run: int, stage: str, basis: Mapping[str, Any] | None, doc: dict[str, Any],
                     payload: Any = None) -> None:
            super().__init__()
            self.run = run
            self.stage = stage
            self.basis = basis
            self.doc = doc
            self.payload = payload

    def __init__(self) -> None:
        super().__init__()
        self.run = 0
        self.busy: str | None = None  # build, run or verify while one is going
        self.worker: Worker | None = None
        self.basis: Mapping[str, Any] | None = None
        self.cancel: threading.Event | None = None
        self.stopping = False
        self.started = 0.0
        self.shown_results: dict[str, Any] = {}
        self.bench_rows: list[dict[str, Any]] = []
        self.bench_plan: Plan | None = None  # the plan the bench fields were filled for

    def compose_body(self) -> ComposeResult:
        yield Static("", id="run-program")
        with Horizontal(id="run-buttons", classes="form-row"):
            yield Button("Build", id="build", variant="primary", compact=True)
            yield Button("Run", id="start", variant="success", compact=True)
            yield Button("Stop", id="stop", variant="error", disabled=True, compact=True)
            yield Button("Verify", id="verify", compact=True)
            yield Button("Bench", id="bench", compact=True)
            yield Static("", id="run-status")
        with Container(id="run-form"):
            with Horizontal(id="run-options", classes="form-row"):
                yield Label("traffic", classes="option-label")
                yield Select([(p, p) for p in PROFILES], value="uniform", allow_blank=False, id="run-traffic",
                             compact=True, tooltip="Traffic profile of the simulated NIC (and of verify)")
                yield Label("flows", classes="option-label")
                yield Input("1000", id="run-flows", compact=True, tooltip="Distinct flows in the trace")
                yield Label("packets", classes="option-label")
                yield Input("5000", id="run-packets", compact=True,
                            tooltip="Packets in the trace (a run loops over it; verify checks each once)")
                yield Label("s", classes="option-label")
                yield Input("3", id="run-seconds", compact=True,
                            tooltip="How long a run lasts (0 with EAL arguments: until stopped); Enter runs")
                yield Label("every", classes="option-label")
                yield Input("1.0", id="run-interval", compact=True, tooltip="Seconds between stats lines")
            with Horizontal(id="run-more", classes="form-row"):
                yield Label("EAL", classes="option-label")
                yield Input("", id="run-eal", placeholder="real NIC: EAL args", compact=True,
                            tooltip="DPDK EAL arguments of a real NIC (e.g. -l 0-3 -a 0000:01:00.0); "
                                    "empty: the simulated NIC")
                yield Label("verify on", classes="option-label")
                yield Select([(p, p) for p in VERIFY_PROFILES], value="paths", allow_blank=False,
                             id="verify-traffic", compact=True,
                             tooltip="Traffic verify checks: paths drives packets down every explored path "
                                     "(then adds the packets shown of the sessions profile)")
                yield Label("+ trace", classes="option-label")
                yield Input("", id="verify-trace", placeholder="pcap (optional)", compact=True,
                            tooltip="A trace of yours, checked too (coverage of all traces together); "
                                    "Enter verifies")
            with Horizontal(id="bench-options", classes="form-row"):
                yield Label("bench 1 to", classes="option-label")
                yield Input("", id="bench-cores", compact=True,
                            tooltip="The bench measures 1, 2, … up to this many cores (default: the plan's)")
                yield Label("cores, strategies", classes="option-label")
                yield Input("", id="bench-strategies", compact=True,
                            tooltip="Comma-separated: those the plan allows (seq: the sequential program; "
                                    "the plan's own; tm where the CPU has RTM)")
                yield Label("s/point", classes="option-label")
                yield Input("1", id="bench-seconds", compact=True,
                            tooltip="Seconds each configuration runs (on the traffic, flows and packets "
                                    "above); Enter benchmarks")
        yield Static("", id="run-error")
        # Wide: the log on the left, throughput and verdict on the right;
        # narrow: throughput on top, log and verdict side by side (app.tcss).
        with Container(id="run-body"):
            throughput = Throughput(id="throughput")
            throughput.border_title = "Throughput per core"
            yield throughput
            log = RichLog(id="run-log", max_lines=2000, wrap=True, min_width=20, classes="pane")
            log.border_title = "Log"
            yield log
            with VerticalScroll(id="verdict-pane", classes="pane") as pane:
                pane.border_title = "Verdict"
                yield Static(Text("v: check equivalence with the sequential NF", style="dim"),
                             id="verdict")
            table = BenchTable(id="bench-table", classes="pane")
            table.border_title = "Bench"
            yield table
            chart = ScalingChart(id="bench-chart", classes="pane")
            chart.border_title = "Scaling"
            yield chart

    # --- following the session ---------------------------------------------

    def show_session(self, session: Session) -> None:
        program = session.program
        self._show_program(session, program)
        self._show_bench_defaults(session)
        self._show_buttons()
        if self.busy is None:
            self._show_saved(session)

    def _show_bench_defaults(self, session: Session) -> None:
        """The bench fields for a new plan: up to its cores, every strategy
        it allows (a saved bench then puts back its own, _show_saved_bench)."""
        if session.plan is None or session.plan is self.bench_plan:
            return
        self.bench_plan = session.plan
        with self.prevent(Input.Changed):
            self.query_one("#bench-cores", Input).value = str(session.plan.cores)
            self.query_one("#bench-strategies", Input).value = ",".join(bench_strategies(session.plan))

    def _show_program(self, session: Session, program: GeneratedProgram | None) -> None:
        target = self.query_one("#run-program", Static)
        if program is None:
            target.update("Generate the program first (5).")
            return
        build = session.results.get("build") or {}
        state = ("built" if session.built else "build failed" if build.get("ok") is False else "not built")
        style = {"built": "green", "build failed": "red"}.get(state, "yellow")
        text = Text()
        text.append(program.nf, style="bold")
        text.append(" · " + program.strategy + (f" ({program.lock} locks)" if program.strategy == "locks" else ""))
        text.append(" · ")
        text.append(f"{program.cores} core{'s' if program.cores != 1 else ''}", style="bold")
        text.append(f" · {program.devices} devices · {display_path(program.directory)} · ")
        text.append(state, style=style)
        target.update(text)

    def _show_buttons(self) -> None:
        session = self.session
        busy = self.busy is not None
        self.query_one("#build", Button).disabled = busy or session.program is None
        self.query_one("#start", Button).disabled = busy or not session.built
        self.query_one("#verify", Button).disabled = busy or session.program is None
        self.query_one("#bench", Button).disabled = busy or session.program is None or session.plan is None
        self.query_one("#stop", Button).disabled = self.busy is None
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Build, run and verify are shown dimmed when they cannot start."""
        if action in ("build", "verify"):
            return None if self.busy is not None or self.session.program is None else True
        if action == "start":
            return None if self.busy is not None or not self.session.built else True
        if action == "bench":
            return None if self.busy is not None or self.session.program is None or self.session.plan is None \
                else True
        if action == "switch_view":  # dimmed until there is a bench to look at
            return True if self.bench_rows or self.busy == "bench" or self.bench_view else None
        return super().check_action(action, parameters)

    @property
    def bench_view(self) -> bool:
        """Whether the body shows the bench (table, chart) rather than the run."""
        return self.query_one("#run-body").has_class("-bench")

    def show_view(self, bench: bool) -> None:
        """Show the bench's view (table, chart) or the run's (throughput, verdict)."""
        self.query_one("#run-body").set_class(bench, "-bench")
        self.refresh_bindings()

    def action_switch_view(self) -> None:
        """Switch between the run's view and the bench's."""
        self.show_view(not self.bench_view)

    def can_stop(self) -> bool:
        return self.busy is not None and self.cancel is not None and not self.cancel.is_set()

    def submit(self, field: Input) -> None:
        """Enter in a field: verify (the trace field), else run the program,
        or build it first when it is not built."""
        if field.id == "verify-trace":
            self.action_verify()
        elif field.id in BENCH_FIELDS:
            self.action_bench()
        elif not self.session.built:
            self.notify("Not built yet: building it first (Enter again runs it).", timeout=4)
            self.action_build()
        else:
            self.call_later(self.action_start)

    def _show_saved(self, session: Session) -> None:
        """What a reopened session (or another screen) recorded."""
        for stage in ("run", "verify", "bench"):
            doc = session.results.get(stage)
            if doc is self.shown_results.get(stage):
                continue
            self.shown_results[stage] = doc
            if stage == "bench":
                self._show_saved_bench(doc)
                continue
            if doc and doc.get("ok"):
                self.call_after_refresh(self.query_one("#run-log", RichLog).write, saved_line(stage, doc))
            if stage == "run" and doc:
                self._show_run_options(doc)
            if stage == "run" and doc and doc.get("final"):
                self.call_later(self._show_saved_run, doc)
            elif stage == "verify" and doc:
                self.call_after_refresh(self._show_verdict, doc)  # once the pane has its width

    def _show_run_options(self, doc: Mapping[str, Any]) -> None:
        """The options of a recorded run back in their fields, so a reopened
        session runs again as it ran (values the fields cannot hold are skipped)."""
        with self.prevent(Input.Changed, Select.Changed):
            if doc.get("traffic") in PROFILES:
                self.query_one("#run-traffic", Select).value = doc["traffic"]
            for name in ("flows", "packets", "seconds", "interval"):
                value = doc.get(name)
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    self.query_one(f"#run-{name}", Input).value = f"{value:g}"
            eal = doc.get("eal")
            if isinstance(eal, list) and all(isinstance(a, str) for a in eal):
                self.query_one("#run-eal", Input).value = shlex.join(eal)

    def _show_saved_bench(self, doc: Mapping[str, Any] | None) -> None:
        """A recorded bench: its rows in the table and the chart, its
        options in the fields, and the bench's view."""
        rows = [dict(r) for r in (doc or {}).get("rows") or [] if isinstance(r, Mapping)] \
            if doc and doc.get("ok") else []
        self.bench_rows = rows
        self.query_one(BenchTable).show_rows(rows)
        self.query_one(ScalingChart).show_rows(rows)
        if not rows:
            self.show_view(False)
            return
        with self.prevent(Input.Changed):
            cores = [c for c in doc.get("cores") or [] if isinstance(c, int) and not isinstance(c, bool)]
            if cores:
                self.query_one("#bench-cores", Input).value = str(max(cores))
            strategies = [s for s in doc.get("strategies") or [] if isinstance(s, str)]
            if strategies:
                self.query_one("#bench-strategies", Input).value = ",".join(strategies)
            seconds = doc.get("seconds")
            if isinstance(seconds, (int, float)) and not isinstance(seconds, bool):
                self.query_one("#bench-seconds", Input).value = f"{seconds:g}"
        self.call_after_refresh(self.query_one("#run-log", RichLog).write, bench_line(doc, rows))
        self.show_view(True)

    async def _show_saved_run(self, doc: Mapping[str, Any]) -> None:
        throughput = self.query_one(Throughput)
        if throughput.last:
            return
        await throughput.reset(len(doc["final"].get("lcores") or []))
        for event in [*(doc.get("stats") or []), doc["final"]]:
            throughput.show(event)

    # --- tasks --------------------------------------------------------------

    def _begin(self, task: str) -> tuple[int, GeneratedProgram] | None:
        """Start `task` if nothing else runs and there is a program."""
        if self.busy is not None:
            self.notify(f"A {self.busy} is going on: wait for it or stop it (Esc).", severity="warning")
            return None
        program = self.session.program
        if program is None:
            self.notify("Generate the program first (5).", severity="warning")
            return None
        if task != "bench" and not self._trusted(program, task):  # the bench builds programs of its own
            return None
        self.run += 1
        self.busy = task
        self.basis = self.session.results.get("generate")
        self.started = time.monotonic()
        self._show_error("")
        self.query_one("#run-status", Static).update(GOING.get(task, f"{task}…"))
        if task != "build":
            self.show_view(task == "bench")
        self._show_buttons()
        return self.run, program

    def _trusted(self, program: GeneratedProgram, task: str) -> bool:
        """Whether `task` may run make or the executable in the program's
        folder: yes for a folder generated in this run of the app; for one a
        session named, only once the engineer says so (then `task` starts)."""
        trusted: set[Path] = getattr(self.app, "trusted_programs", set())
        if program.directory in trusted:
            return True

        def answered(yes: bool | None) -> None:
            if yes:
                trusted.add(program.directory)
                {"build": self.action_build, "verify": self.action_verify}.get(
                    task, lambda: self.run_worker(self.action_start()))()

        what = "run make and the program" if task != "run" else "run the program"
        self.app.push_screen(ConfirmModal(
            "A program this session did not generate",
            f"{program.directory} comes from the opened session, not from a generation in this "
            f"workbench.  Its Makefile and executable can run any command.  {what.capitalize()} "
            f"in it?  (y: yes, n: no)"), answered)
        return False

    def _end(self, status: str | Text) -> None:
        self.busy = None
        self.worker = None
        self.query_one("#run-status", Static).update(status)
        self._show_buttons()

    def action_build(self) -> None:
        """Build the program (make), streaming the log."""
        begun = self._begin("build")
        if begun is None:
            return
        run_id, program = begun
        log = self.query_one("#run-log", RichLog)
        log.clear()
        log.write(f"make -C {display_path(program.directory)}")
        self.cancel = threading.Event()
        self.worker = self.build_worker(run_id, self.basis, program, self.cancel)

    @work(thread=True, exit_on_error=False, group="run", name="build")
    def build_worker(self, run_id: int, basis, program: GeneratedProgram,
                     cancel: threading.Event) -> None:
        """Build in a thread; only posts messages.  `cancel` stops make."""
        started = time.monotonic()
        lines: list[str] = []

        def line(text: str) -> None:
            lines.append(text)
            self.post_message(self.BuildLine(run_id, text))

        pipeline = Pipeline.logging(line, cancel)
        executable = pipeline.build(program)
        self.post_message(self.Result(run_id, "build", basis, {
            "ok": True, "executable": str(executable), "seconds": round(time.monotonic() - started, 2),
            "log": lines[-LOG_TAIL:]}))

    def _options(self, *, run: bool = True) -> dict[str, Any] | None:
        """The options shown, or None (the problem is shown, naming the
        field).  run=False: what verify uses (traffic, flows, packets), so a
        run field it does not read cannot stop it."""
        value = lambda name: self.query_one(f"#run-{name}", Input).value  # noqa: E731
        try:
            options: dict[str, Any] = {
                "traffic": str(self.query_one("#run-traffic", Select).value),
                "flows": parse_field("flows", value("flows"), FLOWS),
                "packets": parse_field("packets", value("packets"), PACKETS),
            }
            if run:
                eal_text = value("eal")
                try:
                    eal = shlex.split(eal_text)
                except ValueError as exc:
                    raise FieldError(f"EAL: {exc} in {eal_text!r}") from None
                options["seconds"] = 0.0 if eal and value("seconds").strip() in ("", "0") \
                    else parse_field("s (seconds)", value("seconds"), SECONDS)
                options["interval"] = parse_field("every (seconds)", value("interval"), SECONDS)
                options["eal"] = eal
        except FieldError as exc:
            self._show_error(str(exc))
            return None
        if options.get("seconds", 0) > 86_400:
            self._show_error("s (seconds): at most a day (86400)")
            return None
        return options

    async def action_start(self) -> None:
        """Run (benchmark) the built program with the options shown."""
        if not self.session.built:
            self.notify("Build the program first (b).", severity="warning")
            return
        options = self._options()
        if options is None:
            return
        begun = self._begin("run")
        if begun is None:
            return
        run_id, program = begun
        if not options["eal"] and (warning := cores_warning(program.cores)):
            self.notify(warning, title="More cores than CPUs", severity="warning", timeout=8)
        self.cancel = threading.Event()
        self.stopping = False
        await self.query_one(Throughput).reset(program.cores)
        where = ("EAL " + " ".join(options["eal"])) if options["eal"] else \
            f"simulated NIC, {options['packets']} {options['traffic']} packets over {options['flows']} flows"
        self.query_one("#run-log", RichLog).write(
            f"run {program.program.name}: {program.cores} core{'s' if program.cores != 1 else ''}, {where}, "
            f"{options['seconds']:g} s, stats every {options['interval']:g} s")
        self.worker = self.program_worker(run_id, self.basis, program, options, self.cancel)

    @work(thread=True, exit_on_error=False, group="run", name="run")
    def program_worker(self, run_id: int, basis, program: GeneratedProgram, options: dict[str, Any],
                   cancel: threading.Event) -> None:
        """Run in a thread; only posts messages.  `cancel` stops the program."""
        packets = None
        if not options["eal"]:
            packets = make_traffic(options["traffic"], options["flows"], options["packets"], seed=1,
                                   devices=program.devices)
        result = run(program, packets=packets, eal_args=options["eal"] or None,
                     seconds=options["seconds"], interval=options["interval"],
                     on_event=lambda event: self.post_message(self.RunEvent(run_id, event)),
                     cancel=cancel)
        self.post_message(self.Result(run_id, "run", basis, {
            "ok": True, **options, "cancelled": self.stopping, "build_digest": result.build_digest,
            "config": result.config,
            "final": result.final, "stats": result.stats[-60:]}))

    def _bench_options(self) -> dict[str, Any] | None:
        """The bench's options (the run's traffic, flows and packets, and the
        bench fields), or None (the problem is shown, naming the field)."""
        options = self._options(run=False)
        plan = self.session.plan
        if options is None or plan is None:
            return None
        allowed = bench_strategies(plan)
        try:
            cores = parse_field("bench cores", self.query_one("#bench-cores", Input).value, CORES)
            names = [n.strip() for n in self.query_one("#bench-strategies", Input).value.split(",") if n.strip()]
            refused = [n for n in names if n not in allowed]
            if refused or not names:
                raise FieldError(f"strategies: {', '.join(refused) or 'none given'}: the plan allows "
                                 f"{', '.join(allowed)}")
            seconds = parse_field("s/point", self.query_one("#bench-seconds", Input).value, SECONDS)
        except FieldError as exc:
            self._show_error(str(exc))
            return None
        if seconds > 3600:
            self._show_error("s/point: at most an hour (3600)")
            return None
        return {**options, "cores": list(range(1, cores + 1)), "strategies": list(dict.fromkeys(names)),
                "seconds": seconds}

    def action_bench(self) -> None:
        """Benchmark the session's plan: each strategy on 1..N cores (see the module doc)."""
        options = self._bench_options()
        if options is None:
            return
        begun = self._begin("bench")
        if begun is None:
            return
        run_id, _ = begun
        session = self.session
        self.bench_rows = []
        self.query_one(BenchTable).show_rows([])
        self.query_one(ScalingChart).show_rows([])
        if warning := cores_warning(max(options["cores"])):
            self.notify(warning, title="More cores than CPUs", severity="warning", timeout=8)
        self.query_one("#run-log", RichLog).write(
            f"bench {Path(session.nf or '').stem}: {', '.join(options['strategies'])} on 1 to "
            f"{max(options['cores'])} cores, {options['packets']} {options['traffic']} packets over "
            f"{options['flows']} flows, {options['seconds']:g} s a point, and the null NF in each shape (the harness)")
        self.cancel = threading.Event()
        self.stopping = False
        self.worker = self.bench_worker(run_id, self.basis, session.nf, session.analysis, session.plan,
                                        dict(session.settings.overrides), session.settings.strategy,
                                        session.settings.nic, options, self.cancel)

    @work(thread=True, exit_on_error=False, group="run", name="bench")
    def bench_worker(self, run_id: int, basis, nf: str, analysis, plan: Plan, overrides: dict[str, str],
                     strategy: str, nic: str, options: dict[str, Any], cancel: threading.Event) -> None:
        """Benchmark in a thread; only posts messages.  `cancel` stops it
        (the rows measured so far are kept)."""
        rows = bench(nf, analysis, cores=options["cores"], strategies=options["strategies"],
                     traffic=[options["traffic"]], seconds=options["seconds"], flows=options["flows"],
                     packets=options["packets"], nic=nic, plan_strategy=strategy, overrides=overrides,
                     capacity=plan.capacity, cancel=cancel,
                     log=lambda line: self.post_message(self.BuildLine(run_id, line)),
                     on_row=lambda row: self.post_message(self.BenchPoint(run_id, dataclasses.asdict(row))))
        self.post_message(self.Result(run_id, "bench", basis, {
            "ok": True, **options, "cancelled": cancel.is_set(),
            "rows": [dataclasses.asdict(r) for r in rows]}))

    def action_stop(self) -> None:
        """Stop the running program (it exits cleanly and prints its totals),
        the build (make is stopped) or the verification."""
        if self.busy is not None and self.cancel is not None and not self.cancel.is_set():
            self.stopping = True
            self.cancel.set()
            self.query_one("#run-status", Static).update("stopping…")
            self.refresh_bindings()

    def action_verify(self) -> None:
        """Check the program on screen, as generated and built (its own
        plan), against the sequential NF on the verify traffic and trace."""
        options = self._options(run=False)
        if options is None:
            return
        traffics = [str(self.query_one("#verify-traffic", Select).value)]
        trace = self.query_one("#verify-trace", Input).value.strip()
        if trace:
            path = Path(trace).expanduser()
            if not path.is_file():
                self._show_error(f"verify trace {trace}: no such file")
                return
            traffics.append(str(path))
        begun = self._begin("verify")
        if begun is None:
            return
        run_id, program = begun
        self.query_one("#verdict", Static).update(Text("verifying…", style="dim"))
        self.query_one("#run-log", RichLog).write(
            f"verify {program.nf} ({program.strategy}, {program.cores} cores, plan {program.digest}) on "
            f"{' and '.join(Path(t).name for t in traffics)}: the program and the sequential NF, packet by packet")
        self.cancel = threading.Event()
        self.worker = self.verify_worker(run_id, self.basis, program, traffics, options, self.cancel)

    @work(thread=True, exit_on_error=False, group="run", name="verify")
    def verify_worker(self, run_id: int, basis, program: GeneratedProgram, traffics: list[str],
                      options: dict[str, Any], cancel: threading.Event) -> None:
        """Verify in a thread; only posts messages.  `cancel` stops its build or run."""
        from codegen.verify import prepare_built, verification_json, verify_traffics

        prepared = prepare_built(program.directory, cancel=cancel,
                                 log=lambda line: self.post_message(self.BuildLine(run_id, line)))
        results = verify_traffics(prepared, traffics, flows=options["flows"], packets=options["packets"],
                                  cancel=cancel)
        self.post_message(self.Result(run_id, "verify", basis,
                                      {"ok": True, **verification_json(prepared, results)}))

    # --- messages from the workers ------------------------------------------

    def on_run_screen_build_line(self, message: BuildLine) -> None:
        message.stop()
        if message.run == self.run:
            self.query_one("#run-log", RichLog).write(message.line)

    def on_run_screen_bench_point(self, message: BenchPoint) -> None:
        message.stop()
        if message.run != self.run:
            return
        self.bench_rows.append(message.row)
        self.query_one(BenchTable).add_bench_row(message.row)
        self.query_one(ScalingChart).show_rows(self.bench_rows)
        row = message.row
        self.query_one("#run-status", Static).update(
            f"benchmarking… {row.get('strategy')} on {row.get('cores')} core{'s' if row.get('cores') != 1 else ''}: "
            + (f"{float(row['mpps']):.2f} Mpps" if row.get("mpps") else "failed"))
        self.refresh_bindings()

    def on_run_screen_run_event(self, message: RunEvent) -> None:
        message.stop()
        if message.run != self.run:
            return
        event = message.event
        throughput = self.query_one(Throughput)
        if event.get("type") == "config":
            self.query_one("#run-log", RichLog).write(
                f"started: {event.get('workers')} worker{'s' if event.get('workers') != 1 else ''}, "
                f"strategy {event.get('strategy')}, "
                + ("simulated NIC" if event.get("simulated") else "real NIC"))
        elif event.get("type") in ("stats", "final"):
            throughput.show(event)
            if event.get("type") == "stats":
                self.query_one("#run-status", Static).update(
                    f"running… {float(event.get('t', 0)):.1f} s, {float(event.get('mpps', 0)):.2f} Mpps")

    def on_run_screen_result(self, message: Result) -> None:
        if message.run != self.run:
            message.stop()
            return
        doc = message.doc
        if not doc.get("ok"):
            return  # a failure: shown by show_failure already
        elapsed = time.monotonic() - self.started
        log = self.query_one("#run-log", RichLog)
        if message.stage == "build":
            log.write(f"built {display_path(Path(doc['executable']))} in {doc['seconds']:.1f} s")
            self._end(Text(f"built in {doc['seconds']:.1f} s: r runs it", style="green"))
        elif message.stage == "run":
            final = doc.get("final") or {}
            self.query_one(Throughput).show(final)
            self.shown_results["run"] = doc
            log.write(f"{'stopped' if doc.get('cancelled') else 'done'}: {final.get('rx', 0)} packets, "
                           f"{float(final.get('mpps', 0)):.2f} Mpps in {elapsed:.1f} s")
            self._end(Text(f"{'stopped' if doc.get('cancelled') else 'ran'}: "
                           f"{float(final.get('mpps', 0)):.2f} Mpps total", style="green"))
        elif message.stage == "verify":
            self.shown_results["verify"] = doc
            self._show_verdict(doc)
            for one in doc.get("traces") or [doc]:
                log.write(f"verify, {one.get('traffic', '')}: {one.get('summary', '')}")
            self._end(Text("equivalent" if doc.get("equivalent") else "NOT equivalent",
                           style="green" if doc.get("equivalent") else "bold red"))
        elif message.stage == "bench":
            rows = doc.get("rows") or []
            if not rows:  # stopped before a point was measured: nothing to record
                message.stop()
                log.write("bench stopped before any configuration was measured")
                self._end(Text("bench stopped", style="yellow"))
                return
            self.shown_results["bench"] = doc
            self.bench_rows = list(rows)
            self.query_one(BenchTable).show_rows(rows)  # the final speedups
            self.query_one(ScalingChart).show_rows(rows)
            log.write(f"{'stopped' if doc.get('cancelled') else 'done'}: " + bench_line(doc, rows, saved=False))
            self._end(Text(f"{'bench stopped' if doc.get('cancelled') else 'benched'}: "
                           f"{len(rows)} point{'s' if len(rows) != 1 else ''}, best "
                           f"{max((r.get('mpps') or 0.0) for r in rows):.2f} Mpps in {elapsed:.0f} s",
                           style="yellow" if doc.get("cancelled") else "green"))
        # The app records the result in the session (the message bubbles on).

    def show_failure(self, worker: Worker, message: str) -> None:
        if worker is not self.worker:
            return
        stage = self.busy or worker.name
        self._show_error(message)
        for line in message.splitlines()[:60]:
            self.query_one("#run-log", RichLog).write(line)
        if stage == "verify":
            self.query_one("#verdict", Static).update(Text.assemble(("verify failed: ", "bold red"),
                                                                    message.splitlines()[0]))
        doc = {"ok": False, "error": message}
        self.post_message(self.Result(self.run, stage, self.basis, doc))
        self._end(Text(f"{stage} failed", style="bold red"))

    def _show_error(self, message: str) -> None:
        error = self.query_one("#run-error", Static)
        error.update(Text.assemble(("Failed: ", "bold"), message) if message else "")
        error.display = bool(message)

    def _show_verdict(self, doc: Mapping[str, Any]) -> None:
        verdict = self.query_one("#verdict", Static)
        if not doc.get("ok", True):
            verdict.update(Text.assemble(("verify failed: ", "bold red"), str(doc.get("error", ""))))
            return
        # The coverage bars fit the pane beside "device 0 paths " and the counts.
        width = self.query_one("#verdict-pane").content_region.width
        verdict.update(verdict_text(doc, max(6, min(20, width - 24)) if width else 20))

    # --- buttons and leaving ------------------------------------------------

    async def on_button_pressed(self, event: Button.Pressed) -> None:
        actions = {"build": self.action_build, "stop": self.action_stop, "verify": self.action_verify,
                   "bench": self.action_bench}
        if event.button.id == "start":
            await self.action_start()
        elif event.button.id in actions:
            actions[event.button.id]()

    def stop_all(self) -> None:
        """Stop a running program (the app calls this when it exits)."""
        if self.cancel is not None:
            self.stopping = True
            self.cancel.set()

    def on_unmount(self) -> None:
        self.stop_all()


def saved_line(stage: str, doc: Mapping[str, Any]) -> str:
    """The log's line for a run or verification a reopened session recorded."""
    if stage == "run":
        return (f"the session's run: {doc.get('seconds', 0):g} s of {doc.get('traffic', '?')} traffic, "
                f"{float((doc.get('final') or {}).get('mpps', 0)):.2f} Mpps")
    traces = [f"{t.get('traffic', '')}, {'equivalent' if t.get('equivalent') else 'NOT equivalent'} "
              f"({t.get('identical', 0)}/{t.get('packets', 0)} identical)" for t in doc.get("traces") or []]
    return "the session's verification: " + ("; ".join(traces) or str(doc.get("equivalent")))


def bench_line(doc: Mapping[str, Any], rows: list[Mapping[str, Any]], saved: bool = True) -> str:
    """The log's line for a bench: its points and the best of each strategy."""
    best: dict[str, tuple[float, int]] = {}
    for row in rows:
        mpps, cores = row.get("mpps"), row.get("cores")
        if isinstance(mpps, (int, float)) and isinstance(cores, int) and mpps > best.get(str(row.get("strategy")),
                                                                                            (-1.0, 0))[0]:
            best[str(row.get("strategy"))] = (float(mpps), cores)
    points = f"{len(rows)} point{'s' if len(rows) != 1 else ''}"
    summary = ", ".join(f"{name} {mpps:.2f} Mpps ({cores} core{'s' if cores != 1 else ''})"
                        for name, (mpps, cores) in best.items())
    return (f"{'the session' + chr(39) + 's bench: ' if saved else ''}{points} of {doc.get('traffic', '?')} traffic, "
            f"{doc.get('seconds', 0):g} s each; best: {summary or 'none'}")


def coverage_bar(reached: int, total: int, width: int = 20) -> Text:
    """█████░░░ 12/14: paths a verification reached on one device."""
    filled = round(width * reached / total) if total else width
    style = "green" if reached == total else "yellow" if reached * 2 >= total else "red"
    return Text.assemble((("█" * filled), style), ("░" * (width - filled), "dim"), f" {reached}/{total}")


def verdict_text(doc: Mapping[str, Any], bar_width: int = 20) -> Text:
    """A saved verification (RunScreen.verify_worker's document): the
    headline, each trace's verdict, coverage bars per device, and the paths
    never reached."""
    text = Text()
    traces = doc.get("traces") or [doc]
    equivalent = bool(doc.get("equivalent"))
    text.append("✓ equivalent" if equivalent else "✗ NOT equivalent",
                style="bold green" if equivalent else "bold red")
    # The headline says how: identical packets, and the allowed differences by kind.
    packets = sum(int(t.get("packets", 0) or 0) for t in traces)
    identical = sum(int(t.get("identical", 0) or 0) for t in traces)
    kinds: dict[str, int] = {}
    for one in traces:
        for kind, n in (one.get("allowed") or {}).items():
            kinds[kind] = kinds.get(kind, 0) + int(n or 0)
    allowed = sum(kinds.values())
    text.append(f": {identical}/{packets} packets identical", style="bold")
    if allowed:
        text.append(f", {allowed} allowed difference{'' if allowed == 1 else 's'}", style="bold yellow")
        text.append(" (" + ", ".join(f"{kind} {n}" for kind, n in kinds.items() if n) + ")", style="yellow")
    if not equivalent:
        differ = sum(int(t.get("disallowed", 0) or 0) for t in traces)
        lost = sum(int(t.get("lost", 0) or 0) for t in traces)
        text.append(f", {differ} differ, {lost} lost", style="bold red")
    text.append(f"\nprogram {doc.get('strategy', '?')}, plan {doc.get('plan_digest', '?')}\n", style="dim")
    if doc.get("complete") is False:
        text.append("the analysis is INCOMPLETE: paths past where it stopped are not listed\n", style="bold red")
    for one in traces:
        text.append(f"{one.get('traffic', '')}, {one.get('packets', 0)} packets: ", style="bold")
        text.append(f"{one.get('identical', 0)}/{one.get('packets', 0)} identical")
        for kind, n in (one.get("allowed") or {}).items():
            if n:
                text.append(f", {n} {kind}", style="yellow")
        if not one.get("equivalent"):
            text.append(f", {one.get('disallowed', 0)} differ, {one.get('lost', 0)} lost", style="bold red")
        text.append("\n")
    coverage = doc.get("coverage") or {}
    paths, reached = coverage.get("paths") or {}, coverage.get("reached") or {}
    for device in sorted(paths, key=int):
        text.append(f"device {device} paths ")
        text.append_text(coverage_bar(len(reached.get(device, [])), len(paths[device]), bar_width))
        text.append("\n")
    missed = list((coverage.get("missed_paths") or {}).items())
    if missed:
        text.append("never reached:\n", style="bold")
        for path, words in missed[:UNREACHED_SHOWN]:
            text.append(f"  path {path}: ", style="bold")
            text.append(f"{words}\n", style="dim")
        if len(missed) > UNREACHED_SHOWN:
            text.append(f"  … and {len(missed) - UNREACHED_SHOWN} more (maestro verify lists them all)\n",
                        style="dim")
    for one in traces:
        for kind, why in (one.get("justifications") or {}).items():
            text.append(f"allowed, {kind}: ", style="yellow")
            text.append(f"{why}\n", style="dim")
        first = one.get("first_difference")
        if first and not one.get("equivalent"):
            text.append(f"first difference ({one.get('traffic', '')}): packet {first.get('index')}", style="bold")
            if "device" in first:
                text.append(f" (device {first['device']})")
            text.append(f": {first.get('what', '')}\n")
            for side in ("sequential", "parallel"):
                if first.get(side) is not None:
                    text.append(f"{side:>10} ", style="bold")
                    text.append(first[side][:96] + ("…" if len(first[side]) > 96 else "") + "\n")
    text.rstrip()
    return text
