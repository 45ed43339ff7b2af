"""Step 2, Analyze: symbolic execution of the chosen NF, with live progress.

The analysis (the pipeline's analyze stage, codegen/pipeline.py) runs in a
thread worker that only posts messages: `Progress` (each replaces a queued
one) and `Finished`.
Failures (compile errors with gcc's file:line, calls outside the contract,
anything else) reach the screen's one failure handler and are shown here;
an exceeded budget gives an incomplete report whose warnings are shown.
"""
from __future__ import annotations

import time

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.message import Message
from textual.widgets import Button, Input, Label, RichLog, Select, Static
from textual.worker import Worker, get_current_worker

from analyses.errors import MaestroError
from analyses.model import Analysis
from analyses.nf_source import NFSource, resolve_nf, spec_summary
from codegen.pipeline import Cancelled, Pipeline
from analyses.symbex import Budgets
from analyses.symbex import Progress as SymbexProgress
from workbench.commands import argtypes
from workbench.screens.base import SECONDS, FieldError, StepScreen, parse_field
from workbench.screens.load import display_path
from workbench.session import Session
from workbench.widgets.analysis_progress import AnalysisProgress

OPT_LEVELS = ("-O0", "-O1", "-O2", "-O3")
#: The path budget's range (the CLI's --max-paths takes any integer >= 1).
PATHS = argtypes.number(int, 1, 10_000_000, what="an integer")


def contract_failure(message: str) -> bool:
    """Whether a failed analysis stopped at the NF contract check (the file
    compiled, but defines no entry point or calls outside the contract)."""
    return "NF contract" in message and "does not compile" not in message


class AnalyzeScreen(StepScreen):
    """Runs the analysis of the session's NF and shows how it went."""

    STEP = "analyze"
    HOME = "#analyze-log"
    BINDINGS = [
        Binding("a", "run", "Analyze", id="analyze.run",
                tooltip="Analyze the NF (again) with the options shown (Enter in a field does the same; "
                        "Esc stops a running analysis, its partial report dropped)"),
    ]

    class Progress(Message):
        """How far the analysis of run `run` is; a newer one replaces a queued one."""

        def __init__(self, run: int, progress: SymbexProgress) -> None:
            super().__init__()
            self.run = run
            self.progress = progress

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, AnalyzeScreen.Progress) and message.run == self.run

    class Finished(Message):
        """Run `run` ended with `analysis` (cancelled: stopped by the engineer,
        and no analysis)."""

        def __init__(self, run: int, analysis: Analysis | None, cancelled: bool) -> None:
            super().__init__()
            self.run = run
            self.analysis = analysis
            self.cancelled = cancelled

    def __init__(self) -> None:
        super().__init__()
        self.run = 0
        self.worker: Worker | None = None
        self.started = 0.0
        self.running_nf: str | None = None
        self.running = False  # a run started and not yet finished, failed or cancelled
        self.focus_inspect = False

    def compose_body(self) -> ComposeResult:
        with Vertical(id="analyze-body"):
            yield Static("", id="analyze-nf")
            with Horizontal(id="analyze-options", classes="form-row"):
                yield Label("opt", classes="option-label")
                yield Select([(o, o) for o in OPT_LEVELS], value="-O2", allow_blank=False, compact=True,
                             id="opt", tooltip="Optimization level the NF is compiled with")
                yield Label("budget s", classes="option-label")
                yield Input(f"{Budgets.seconds:g}", id="budget-seconds", compact=True,
                            tooltip="Stop exploring after this many seconds (report incomplete); "
                                    "Enter analyzes")
                yield Label("paths", classes="option-label")
                yield Input(str(Budgets.paths), id="budget-paths", compact=True,
                            tooltip="Stop exploring after this many paths (report incomplete); Enter analyzes")
                yield Button("Analyze", id="run", variant="primary", compact=True)
                yield Button("Cancel", id="cancel", disabled=True, compact=True)
            yield AnalysisProgress(id="progress")
            yield Static("", id="analyze-error")
            yield Static("", id="analyze-result")
            log = RichLog(id="analyze-log", max_lines=500, wrap=True, min_width=20, classes="pane")
            log.border_title = "Log"
            yield log
            yield Button("Inspect state ▸", id="to-inspect", disabled=True, compact=True)

    def on_mount(self) -> None:
        self.set_interval(0.2, self._tick)

    # --- following the session ---------------------------------------------

    def show_session(self, session: Session) -> None:
        if self.running and session.nf != self.running_nf:
            self.action_cancel()
        self._show_nf(session.nf)
        if not self.running:
            self._show_result(session.analysis)

    def _show_nf(self, spec: str | None) -> None:
        target = self.query_one("#analyze-nf", Static)
        if not spec:
            target.update("No NF chosen: pick one on Load (1).")
            return
        try:
            nf = resolve_nf(spec)
        except MaestroError as exc:
            target.update(Content(str(exc)))
            return
        target.update(Content.from_markup("[b]$name[/b]  [dim]$path[/dim]  $summary", name=nf.name,
                                          path=display_path(nf.path), summary=spec_summary(nf)))

    def _show_result(self, analysis: Analysis | None) -> None:
        result = self.query_one("#analyze-result", Static)
        self.query_one("#to-inspect", Button).disabled = analysis is None
        if analysis is None:
            result.update("")
            return
        progress = self.query_one(AnalysisProgress)
        if progress.state == "idle":  # a reopened session: the run happened before
            progress.state, progress.stage, progress.done = "done", "done", analysis.stats.paths
            progress.elapsed = analysis.stats.seconds
            self.query_one("#analyze-log", RichLog).write(
                f"the session's analysis of {analysis.nf}: {analysis.stats.paths} paths in "
                f"{analysis.stats.seconds:.1f} s (a: analyze again)")
        result.update(summary_text(analysis))
        if self.focus_inspect:
            self.focus_inspect = False
            self.query_one("#to-inspect", Button).focus()

    # --- running ------------------------------------------------------------

    def action_run(self) -> None:
        """Start (or restart) the analysis of the session's NF."""
        spec = self.session.nf
        error = self.query_one("#analyze-error", Static)
        if not spec:
            error.update("No NF chosen: pick one on Load (1).")
            return
        try:
            nf = resolve_nf(spec)
            budgets = Budgets(
                seconds=parse_field("budget s", self.query_one("#budget-seconds", Input).value, SECONDS),
                paths=parse_field("paths", self.query_one("#budget-paths", Input).value, PATHS))
        except (MaestroError, FieldError) as exc:
            error.update(Content(str(exc)))
            return
        opt = str(self.query_one("#opt", Select).value)
        error.update("")
        self.query_one("#analyze-result", Static).update("")
        self.query_one("#to-inspect", Button).disabled = True
        self.query_one(AnalysisProgress).reset()
        log = self.query_one("#analyze-log", RichLog)
        log.clear()
        log.write(f"analyzing {nf.name} ({display_path(nf.path)}), {opt}, "
                       f"budgets {budgets.seconds:g} s / {budgets.paths} paths")
        self.run += 1
        self.running_nf = spec
        self.started = time.monotonic()
        self.worker = self.analysis_worker(self.run, nf, opt, budgets)
        self._set_running(True)

    @work(thread=True, exclusive=True, exit_on_error=False, group="analyze", name="analysis")
    def analysis_worker(self, run: int, nf: NFSource, opt: str, budgets: Budgets) -> None:
        """Analyze in a thread; only posts messages."""
        worker = get_current_worker()
        pipeline = Pipeline(progress=lambda event: self.post_message(self.Progress(run, event.detail))
                            if event.kind == "progress" else None,
                            cancel=lambda: worker.is_cancelled)
        try:
            analysis = pipeline.analyze(nf, opt=opt, budgets=budgets)
        except Cancelled:
            self.post_message(self.Finished(run, None, True))
            return
        self.post_message(self.Finished(run, analysis, False))

    def can_stop(self) -> bool:
        return self.running and self.worker is not None and not self.worker.is_cancelled

    def action_stop(self) -> None:
        self.action_cancel()

    def action_cancel(self) -> None:
        """Stop the running analysis (the worker checks its flag between steps)."""
        if self.worker is not None and self.running and not self.worker.is_cancelled:
            self.worker.cancel()
            self.query_one("#analyze-log", RichLog).write("cancelling…")
            self.refresh_bindings()

    def submit(self, field: Input) -> None:
        self.action_run()

    def _set_running(self, running: bool) -> None:
        self.running = running
        self.query_one("#cancel", Button).disabled = not running
        self.query_one("#run", Button).label = "Re-run" if not running and self.run else "Analyze"
        self.refresh_bindings()

    def _tick(self) -> None:
        progress = self.query_one(AnalysisProgress)
        if progress.state == "running":
            progress.elapsed = max(progress.elapsed, time.monotonic() - self.started)
            progress.tick += 1

    # --- messages from the worker -------------------------------------------

    def on_analyze_screen_progress(self, message: Progress) -> None:
        message.stop()
        if message.run != self.run or (self.worker is not None and self.worker.is_cancelled):
            return  # a cancelled run stays shown in the stage it was stopped in
        p = message.progress
        progress = self.query_one(AnalysisProgress)
        if p.stage != progress.stage:
            self.query_one("#analyze-log", RichLog).write(
                f"{p.elapsed:6.1f} s  {p.stage}" + (f"  {p.text}" if p.text else ""))
        progress.stage, progress.done, progress.active = p.stage, p.done, p.active
        progress.elapsed = max(progress.elapsed, p.elapsed)

    def on_analyze_screen_finished(self, message: Finished) -> None:
        if message.run != self.run:
            message.stop()
            return
        self._set_running(False)
        progress = self.query_one(AnalysisProgress)
        log = self.query_one("#analyze-log", RichLog)
        if message.cancelled:
            message.stop()  # a cancelled run's partial report is not kept
            progress.state = "cancelled"
            log.write(f"cancelled after {progress.done} paths; nothing kept")
            self.query_one("#analyze-error", Static).update(
                "Analysis cancelled: its partial report was dropped. Press a to run it again.")
            return
        progress.state = "done"
        self.focus_inspect = True  # once the app has recorded the analysis
        stats = message.analysis.stats
        log.write(f"done: {stats.paths} paths" + ("" if stats.complete else " (incomplete)"))
        for warning in stats.warnings:
            log.write(f"warning: {warning}")
        # The app records the analysis in the session (the message bubbles on).

    def show_failure(self, worker: Worker, message: str) -> None:
        if worker is not self.worker:
            return
        self._set_running(False)
        progress = self.query_one(AnalysisProgress)
        if contract_failure(message) and progress.stage in ("", "compile"):
            progress.stage = "contract"  # it compiled: the contract check refused it
        progress.state = "failed"
        self.query_one("#analyze-error", Static).update(Content(message))
        self.query_one("#analyze-log", RichLog).write("failed: " + message.splitlines()[0])

    # --- buttons ------------------------------------------------------------

    async def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "run":
            self.action_run()
        elif event.button.id == "cancel":
            self.action_cancel()
        elif event.button.id == "to-inspect":
            await self.app.run_action("goto('inspect')")


def summary_text(analysis: Analysis) -> Text:
    """What the report holds, its completeness and warnings."""
    stats = analysis.stats
    text = Text()
    text.append(f"{analysis.nf}: ", style="bold")
    text.append(f"{len(analysis.objects)} state objects, {len(analysis.accesses)} accesses, "
                f"{len(analysis.relations)} relation{'' if len(analysis.relations) == 1 else 's'}, {stats.paths} paths, {analysis.devices} devices")
    if stats.complete:
        text.append("  complete", style="bold green")
    else:
        text.append("  INCOMPLETE", style="bold red")
        text.append(" (the analysis did not follow every path exactly: the report may miss accesses, "
                    "so the plan will lock every object; the causes are below)")
    for warning in stats.warnings:
        text.append("\n⚠ ", style="yellow")
        text.append(warning)
    return text
