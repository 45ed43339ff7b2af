"""Step 4, Decide: the planner's proposal per object, and the engineer's
overrides (per-object decision, strategy, cores, NIC).

Every change recomputes the plan in a thread worker (analyses.planner.plan)
that only posts `Planned`; a change the planner refuses (MaestroError)
reaches the screen's failure handler, which shows why and keeps the last plan.
"""
from __future__ import annotations

from dataclasses import replace

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import DataTable, Input, Label, Select, Static
from textual.worker import Worker, get_current_worker

from analyses import planner
from analyses.model import Analysis
from analyses.nic import NICS
from analyses.plan_groups import build_groups
from analyses.planner import Plan
from codegen.pipeline import Pipeline
from workbench.screens.base import CORES, FieldError, StepScreen, parse_field
from workbench.screens.text_modal import TextModal
from workbench.session import PlanSettings, Session
from workbench.widgets.load_bars import LoadBars
from workbench.widgets.plan_summary import decided_by, overridden_in_group, summary_text
from workbench.widgets.plan_verdict import PlanVerdict
from workbench.widgets.rss_keys import RssKeys

DECISION_STYLES = {"shard": "bold green", "replicate": "bold cyan", "lock": "bold red"}
COLUMNS = ("object", "decision", "by")
#: The override keys, one footer entry: "s c l u Override".
OVERRIDE_GROUP = Binding.Group("Override", compact=False)


class DecideScreen(StepScreen):
    """The plan of the session's analysis, recomputed on every change."""

    STEP = "decide"
    HOME = "#decisions"
    BINDINGS = [
        Binding("s", "override('shard')", "Shard", id="decide.shard", group=OVERRIDE_GROUP,
                tooltip="Override: shard the selected object by RSS"),
        Binding("c", "override('replicate')", "Replicate", id="decide.replicate", group=OVERRIDE_GROUP,
                tooltip="Override: replicate the selected object, a copy per core (read-only objects only)"),
        Binding("l", "override('lock')", "Lock", id="decide.lock", group=OVERRIDE_GROUP,
                tooltip="Override: share the selected object under a lock"),
        Binding("u", "override(None)", "Undo override", id="decide.auto", group=OVERRIDE_GROUP,
                tooltip="Drop the selected object's override: the planner decides it"),
        Binding("plus", "cores(1)", "Cores", key_display="+/-", id="decide.more_cores",
                tooltip="One more core"),
        Binding("minus", "cores(-1)", "Fewer cores", show=False, id="decide.fewer_cores",
                tooltip="One core fewer"),
        Binding("x", "explain", "Explain", id="decide.explain",
                tooltip="The planner's explanation of the whole plan"),
    ]

    class Planned(Message):
        """Run `run` planned `analysis` with `settings` into `plan`."""

        def __init__(self, run: int, analysis: Analysis, plan: Plan, settings: PlanSettings) -> None:
            super().__init__()
            self.run = run
            self.analysis = analysis
            self.plan = plan
            self.settings = settings

    def __init__(self) -> None:
        super().__init__()
        self.run = 0
        self.worker: Worker | None = None
        self.pending: PlanSettings | None = None
        self.pending_analysis: Analysis | None = None
        self.shown: Plan | None = None
        self.selected: str | None = None
        self.groups: tuple[Analysis | None, dict[str, list[str]]] = (None, {})

    def compose_body(self) -> ComposeResult:
        # The fields start at the session's settings: a Select posts Changed
        # when mounted, which must not re-plan a reopened session with defaults.
        settings = self.session.settings
        with Horizontal(id="decide-controls", classes="form-row"):
            yield Label("strategy", classes="option-label")
            yield Select([(s, s) for s in planner.STRATEGIES], value=settings.strategy, allow_blank=False,
                         id="strategy", compact=True,
                         tooltip="auto: shard what RSS can, lock the rest; shared-nothing, locks, tm: "
                                 "that strategy for every written object")
            yield Label("cores", classes="option-label")
            yield Input(str(settings.cores), id="cores", compact=True,
                        tooltip="Worker cores, 1 to 64 (Enter plans; + and - step)")
            yield Label("NIC", classes="option-label")
            yield Select([(n, n) for n in NICS], value=settings.nic, allow_blank=False, id="nic", compact=True,
                         tooltip="NIC profile: RSS key size and RETA size")
            yield Static("", id="plan-status")
        yield Static("", id="plan-summary")
        yield Static("", id="refusal")
        yield Static("", id="incomplete-banner")
        with Horizontal(id="decide-body"):
            with Vertical(id="decide-left"):
                table = DataTable(id="decisions", cursor_type="row", zebra_stripes=True, classes="pane")
                table.border_title = "Decisions"
                table.border_subtitle = "s c l u: override"
                yield table
                with VerticalScroll(id="reason-pane", classes="pane"):
                    yield Static("", id="reason")
            with VerticalScroll(id="decide-right", classes="pane"):
                yield PlanVerdict(id="verdict")
                quality = LoadBars(id="quality")
                quality.border_title = "Key quality: load per core"
                yield quality
                rss_keys = RssKeys(id="rss")
                rss_keys.border_title = "RSS keys"
                yield rss_keys

    # --- following the session ---------------------------------------------

    def show_session(self, session: Session) -> None:
        if session.analysis is None:
            self.shown = None
            self._show_plan(None)
            self.query_one("#plan-status", Static).update("Analyze an NF first (2).")
            self.query_one("#plan-summary", Static).update("")
            return
        if session.plan is None:
            if self.pending is None or self.pending_analysis is not session.analysis:
                self.request(session.settings)
            return
        if session.plan is not self.shown:
            self.shown = session.plan
            self._show_settings(session.settings)
            self._show_plan(session.plan)

    def _show_settings(self, settings: PlanSettings) -> None:
        with self.prevent(Select.Changed, Input.Changed):
            self.query_one("#strategy", Select).value = settings.strategy
            self.query_one("#nic", Select).value = settings.nic
            self.query_one("#cores", Input).value = str(settings.cores)

    def _show_plan(self, plan: Plan | None) -> None:
        table = self.query_one("#decisions", DataTable)
        keep = self.selected
        table.clear(columns=True)
        table.add_columns(*COLUMNS)
        settings = self.session.settings
        overrides = settings.overrides
        if plan is not None:
            for obj in plan.objects:
                by = decided_by(plan, obj.name, overrides)
                table.add_row(obj.name, Text(obj.decision, style=DECISION_STYLES.get(obj.decision, "")),
                              by, key=obj.name)
            names = [o.name for o in plan.objects]
            if keep in names:
                table.move_cursor(row=names.index(keep))
            self.selected = keep if keep in names else (names[0] if names else None)
            self.query_one("#plan-status", Static).update("")
            self.query_one("#plan-summary", Static).update(summary_text(plan, settings.strategy, overrides))
        banner = self.query_one("#incomplete-banner", Static)
        banner.display = plan is not None and not plan.complete
        if banner.display:
            banner.update(incomplete_banner(plan))
        self.query_one(PlanVerdict).show(plan, headline=False)
        self.query_one(LoadBars).show(plan.quality if plan else None, len(plan.reta) if plan else 0)
        self.query_one(RssKeys).show(plan)
        self._show_reason()

    def _show_reason(self) -> None:
        plan = self.shown
        reason = self.query_one("#reason", Static)
        if plan is None or self.selected is None:
            text = Text("This NF keeps no state: any packet may go to any core." if plan else "",
                        style="dim")
            reason.update(text)
            return
        obj = plan.object(self.selected)
        overrides = self.session.settings.overrides
        text = Text()
        text.append(obj.name, style="bold")
        text.append(f"  {obj.kind} · ")
        text.append(obj.decision, style=DECISION_STYLES.get(obj.decision, ""))
        if obj.group != obj.name:
            text.append(f" with {obj.group}")
        override = overrides.get(obj.name)
        if override:
            text.append(f"\nyour override: {override} (u: back to the planner's choice)", style="yellow")
        elif obj.source == "override" and (others := overridden_in_group(plan, obj.name, overrides)):
            text.append(f"\n{obj.decision} because you overrode {', '.join(others)}: ", style="yellow")
            text.append(self._group_words(obj.name, obj.group))
        text.append("\n" + ui_words(obj.reason))
        for device, fields in sorted(obj.shard_on.items()):
            text.append(f"\ndevice {device} shards on ", style="dim")
            text.append(", ".join(fields) or "nothing (constant)")
        reason.update(text)

    def _group_words(self, name: str, group: str) -> str:
        """Why `name` is decided with `group`'s other objects."""
        analysis = self.session.analysis
        if self.groups[0] is not analysis and analysis is not None:
            self.groups = (analysis, {m: g.follows.get(m, []) for g in build_groups(analysis)
                                      for m in g.members})
        follows = self.groups[1].get(name) or []
        how = f"reached through {', '.join(follows)}" if follows else "it shares their entries"
        return (f"{name} is in {group}'s group ({how}); the objects of a group share entries, "
                "so they are decided together")

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value is not None:
            self.selected = str(event.row_key.value)
            self._show_reason()

    # --- planning -----------------------------------------------------------

    def request(self, settings: PlanSettings) -> None:
        """Recompute the plan for `settings` (a newer request replaces an older one)."""
        analysis = self.session.analysis
        if analysis is None:
            return
        self.pending, self.pending_analysis = settings, analysis
        self.run += 1
        self.query_one("#plan-status", Static).update("planning…")
        self.worker = self.plan_worker(self.run, analysis, settings)

    @work(thread=True, exclusive=True, exit_on_error=False, group="plan", name="plan")
    def plan_worker(self, run: int, analysis: Analysis, settings: PlanSettings) -> None:
        """Plan in a thread; only posts messages."""
        worker = get_current_worker()
        result = Pipeline(cancel=lambda: worker.is_cancelled).plan(
            analysis, cores=settings.cores, nic=settings.nic, strategy=settings.strategy,
            overrides=settings.overrides)
        if not worker.is_cancelled:
            self.post_message(self.Planned(run, analysis, result, settings))

    def on_decide_screen_planned(self, message: Planned) -> None:
        if message.run != self.run:
            message.stop()
            return
        self.pending = None
        self._show_refusal("")
        # The app records plan and settings in the session (the message bubbles on).

    def show_failure(self, worker: Worker, message: str) -> None:
        if worker is not self.worker:
            return
        self.pending = None
        self._show_refusal(message)
        self._show_settings(self.session.settings)
        self.query_one("#plan-status", Static).update("refused: the last plan is kept")

    def _show_refusal(self, message: str) -> None:
        refusal = self.query_one("#refusal", Static)
        refusal.update(Text.assemble(("Refused: ", "bold"), message) if message else "")
        refusal.display = bool(message)

    @property
    def settings(self) -> PlanSettings:
        """The settings the next change starts from (the pending ones, if any)."""
        return self.pending or self.session.settings

    # --- the engineer's changes ---------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """+ and - go into a text field (the cores typed), not to the cores."""
        if action == "cores" and isinstance(self.focused, Input):
            return False
        return super().check_action(action, parameters)

    def action_override(self, decision: str | None) -> None:
        if self.selected is None:
            self.notify("Select an object first.", severity="warning")
            return
        self.request(self.settings.with_override(self.selected, decision))

    def action_cores(self, step: int) -> None:
        cores = min(64, max(1, self.settings.cores + step))
        if cores != self.settings.cores:
            self.request(replace(self.settings, cores=cores))

    def action_explain(self) -> None:
        if self.shown is not None:
            self.app.push_screen(TextModal(f"Plan of {self.shown.nf}", self.shown.explanation))

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "strategy" and event.value != self.settings.strategy:
            self.request(replace(self.settings, strategy=str(event.value)))
        elif event.select.id == "nic" and event.value != self.settings.nic:
            self.request(replace(self.settings, nic=str(event.value)))

    def submit(self, field: Input) -> None:
        """Enter in the cores field: plan for that many cores."""
        if field.id != "cores":
            return
        try:
            cores = parse_field("cores", field.value, CORES)
        except FieldError as exc:
            self._show_refusal(str(exc))
            self._show_settings(self.settings)
            return
        self.request(replace(self.settings, cores=cores))
        self.query_one("#decisions", DataTable).focus()


def ui_words(reason: str) -> str:
    """The planner's reason with its CLI options said as the screen says
    them ("--set flow_map=lock" is the override flow_map=lock here)."""
    return reason.replace("--set ", "override ").replace("--strategy ", "strategy ")


def incomplete_banner(plan: Plan) -> Text:
    """The warning a plan made from an incomplete analysis carries."""
    text = Text("⚠ INCOMPLETE ANALYSIS: nothing is proved, so nothing is sharded or replicated; every "
                "object and every variable of the NF is shared under a lock.", style="bold")
    for cause in plan.incomplete[:3]:
        text.append(f"\n  {cause}")
    if len(plan.incomplete) > 3:
        text.append(f"\n  and {len(plan.incomplete) - 3} more (2: Analyze lists them)")
    return text
