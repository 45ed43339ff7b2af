"""Step 5, Generate: the parallel DPDK program of the session's plan.

The program (codegen.generator.generate) is written in a thread worker that
only posts `Generated`; a plan the generator refuses (GenerateError, e.g.
shared-nothing asked for a plan that locks an object) reaches the screen's
failure handler, which shows why and keeps the last program.  The files are
listed and shown highlighted (C, Makefile, JSON); a file that changed since
the previous generation (the folder's files read before they are overwritten,
so edits by hand show too; for a new folder, the last generation kept in
memory) is marked and shown as a unified diff (d: the file itself).
"""
from __future__ import annotations

import difflib
from pathlib import Path

from rich.syntax import Syntax
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.widgets import Button, Input, Label, OptionList, Select, Static
from textual.widgets.option_list import Option
from textual.worker import Worker, get_current_worker

from analyses.errors import MaestroError
from analyses.model import Analysis
from analyses.planner import Plan
from analyses.plan_values import LOCK_KINDS, PROGRAM_STRATEGIES
from codegen.generator import GeneratedProgram, program_strategy
from codegen.pipeline import Pipeline
from workbench.screens.base import StepScreen
from workbench.screens.load import display_path
from workbench.session import Session

#: The strategy choice that means "the plan's".
FROM_PLAN = "plan"
THEME = "ansi_dark"


def default_folder(nf: str, strategy: str, session_path: Path | None = None) -> Path:
    """build/workbench/<nf>-<strategy>, under the session file's folder if
    there is one, else under the working folder (relative)."""
    name = f"{Path(nf).stem}-{strategy}"
    base = session_path.parent if session_path else Path()
    return base / "build" / "workbench" / name


def read_files(directory: Path, names: tuple[str, ...] | list[str]) -> dict[str, str]:
    """The text of each file (missing or unreadable ones are left out)."""
    contents = {}
    for name in names:
        try:
            contents[name] = (directory / name).read_text(errors="replace")
        except OSError:
            pass
    return contents


def read_program(directory: Path) -> dict[str, str]:
    """The files of the program generated in `directory` ({} if none)."""
    try:
        program = GeneratedProgram.load(directory)
    except MaestroError:
        return {}
    return read_files(directory, program.files)


def lexer(name: str) -> str:
    """The pygments lexer of a generated file."""
    if name.endswith((".c", ".h")):
        return "c"
    if name.endswith(".json"):
        return "json"
    if Path(name).name == "Makefile":
        return "make"
    return "text"


def unified_diff(name: str, before: str, after: str) -> str:
    """What changed in file `name`, as a unified diff ('' when nothing did)."""
    return "".join(difflib.unified_diff(before.splitlines(keepends=True), after.splitlines(keepends=True),
                                        fromfile=f"previous/{name}", tofile=name))


def change(name: str, before: dict[str, str], after: dict[str, str]) -> str:
    """'' (same or no previous generation), 'changed' or 'new'."""
    if not before or name not in after:
        return ""
    if name not in before:
        return "new"
    return "changed" if before[name] != after[name] else ""


class GenerateScreen(StepScreen):
    """Generates the program of the session's plan and shows its files."""

    STEP = "generate"
    BINDINGS = [
        Binding("g", "generate", "Generate", id="generate.run",
                tooltip="Write the program of the plan into the folder shown"),
        Binding("d", "toggle_diff", "Diff/file", id="generate.diff",
                tooltip="Show what changed in the file since the last generation, or the file itself"),
        Binding("b", "build", "Build", id="generate.build",
                tooltip="Go to Run and build the generated program"),
    ]

    class Generated(Message):
        """Run `run` generated `program` from `plan`: its files' `contents` and
        those of the generation before (`before`, {} if none)."""

        def __init__(self, run: int, plan: Plan, program: GeneratedProgram,
                     contents: dict[str, str], before: dict[str, str]) -> None:
            super().__init__()
            self.run = run
            self.plan = plan
            self.program = program
            self.contents = contents
            self.before = before

    def __init__(self) -> None:
        super().__init__()
        self.run = 0
        self.worker: Worker | None = None
        self.running = False
        self.program: GeneratedProgram | None = None
        self.contents: dict[str, str] = {}
        self.before: dict[str, str] = {}
        self.selected: str | None = None
        self.show_diff = True
        self.folder_default: str | None = None  # the folder input follows the strategy until edited

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="generate-controls"):
            yield Label("strategy", classes="option-label")
            yield Select([("the plan's", FROM_PLAN), *[(s, s) for s in PROGRAM_STRATEGIES]], value=FROM_PLAN,
                         allow_blank=False, id="gen-strategy",
                         tooltip="seq: one core; sn: shared-nothing; locks; tm: transactions (Intel RTM)")
            yield Label("locks", classes="option-label")
            yield Select([(k, k) for k in LOCK_KINDS], value="maestro", allow_blank=False, id="gen-lock",
                         tooltip="Lock granularity of the locks strategy")
            yield Label("folder", classes="option-label")
            yield Input("", id="gen-folder", tooltip="Where the program is written")
            yield Button("Generate", id="generate", variant="primary")
        yield Static("", id="generate-status")
        yield Static("", id="generate-error")
        with Horizontal(id="generate-body"):
            files = OptionList(id="gen-files")
            files.border_title = "Files"
            files.border_subtitle = "~ changed · + new"
            yield files
            with VerticalScroll(id="gen-view-pane"):
                yield Static("", id="gen-view")

    def on_mount(self) -> None:
        self.query_one("#gen-files", OptionList).focus()

    # --- following the session ---------------------------------------------

    def show_session(self, session: Session) -> None:
        self._follow_folder()
        program = session.program
        if program is None:
            if not self.running:
                status = ("Press g to generate the program of the plan."
                          if session.plan is not None else "Plan the NF first (4).")
                self.query_one("#generate-status", Static).update(status)
            if self.program is not None and session.plan is None:
                self.program = None
                self._show_files()
            return
        if self.program is None or self.program.to_json() != program.to_json():
            # A reopened session (or one generated elsewhere): read the folder,
            # and show the options it was generated with.
            self.program = program
            self._show_options(program)
            self.contents = read_program(program.directory)
            self.before = {}
            self._show_files()
        self._show_status()

    def _show_options(self, program: GeneratedProgram) -> None:
        """The strategy, lock kind and folder `program` was generated with."""
        plan = self.session.plan
        planned = program_strategy(plan.to_json(), None) if plan is not None else None
        with self.prevent(Select.Changed, Input.Changed):
            self.query_one("#gen-strategy", Select).value = (
                FROM_PLAN if program.strategy == planned else program.strategy)
            if program.lock in LOCK_KINDS:
                self.query_one("#gen-lock", Select).value = program.lock
            self.query_one("#gen-folder", Input).value = str(program.directory)
        self.folder_default = None  # the folder is the program's, not the default

    def strategy(self) -> str:
        """The program strategy chosen (the plan's resolved)."""
        chosen = str(self.query_one("#gen-strategy", Select).value)
        if chosen != FROM_PLAN:
            return chosen
        plan = self.session.plan
        return program_strategy(plan.to_json(), None) if plan is not None else "sn"

    def _follow_folder(self) -> None:
        """Point the folder input at the default folder, unless it was edited."""
        if not self.session.nf:
            return
        folder = self.query_one("#gen-folder", Input)
        default = str(default_folder(self.session.nf, self.strategy(),
                                     getattr(self.app, "session_path", None)))
        if folder.value in ("", self.folder_default):
            with self.prevent(Input.Changed):
                folder.value = default
        self.folder_default = default

    def _show_status(self) -> None:
        program = self.program
        if program is None:
            return
        strategy = program.strategy + (f", {program.lock} locks" if program.strategy == "locks" else "")
        self.query_one("#generate-status", Static).update(Content.from_markup(
            "[b]$nf[/b] · $strategy · $cores core(s) · $devices devices · plan $digest → "
            "[b]$folder[/b]  [dim](b: build)[/dim]", nf=program.nf, strategy=strategy,
            cores=str(program.cores), devices=str(program.devices), digest=program.digest,
            folder=display_path(program.directory)))

    def _show_files(self) -> None:
        files = self.query_one("#gen-files", OptionList)
        files.clear_options()
        program = self.program
        if program is None:
            self.query_one("#gen-view", Static).update("")
            return
        marks = {"changed": ("~ ", "yellow"), "new": ("+ ", "green")}
        for name in program.files:
            mark, style = marks.get(change(name, self.before, self.contents), ("  ", ""))
            files.add_option(Option(Text(mark + name, style=style), id=name))
        names = list(program.files)
        first_changed = next((n for n in names if change(n, self.before, self.contents)), None)
        keep = self.selected if self.selected in names else first_changed or (
            "config.c" if "config.c" in names else names[0] if names else None)
        self.selected = keep
        if keep is not None:
            files.highlighted = names.index(keep)
        self._show_file()

    def _show_file(self) -> None:
        view = self.query_one("#gen-view", Static)
        pane = self.query_one("#gen-view-pane", VerticalScroll)
        name = self.selected
        if name is None or name not in self.contents:
            view.update(Text(f"{name}: not readable" if name else "", style="dim"))
            return
        kind = change(name, self.before, self.contents)
        if kind == "changed" and self.show_diff:
            diff = unified_diff(name, self.before[name], self.contents[name])
            view.update(Syntax(diff, "diff", theme=THEME, word_wrap=False))
            pane.border_title = f"{name}: changed since the last generation"
            pane.border_subtitle = "d: the file"
        else:
            view.update(Syntax(self.contents[name], lexer(name), line_numbers=True, theme=THEME,
                               word_wrap=False))
            pane.border_title = name + (" (new)" if kind == "new" else "")
            pane.border_subtitle = "d: what changed" if kind == "changed" else ""
        pane.scroll_home(animate=False)

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if event.option.id and event.option.id != self.selected:
            self.selected = event.option.id
            self.show_diff = True
            self._show_file()

    def action_toggle_diff(self) -> None:
        self.show_diff = not self.show_diff
        self._show_file()

    # --- generating -----------------------------------------------------------

    def action_generate(self) -> None:
        """Generate the program of the session's plan with the options shown."""
        session = self.session
        if session.plan is None or session.analysis is None or not session.nf:
            self.notify("Plan the NF first (Decide: 4).", severity="warning")
            return
        chosen = str(self.query_one("#gen-strategy", Select).value)
        lock = str(self.query_one("#gen-lock", Select).value)
        folder = self.query_one("#gen-folder", Input).value.strip()
        if not folder:
            self._show_error("Name the folder to write the program into.")
            return
        self._show_error("")
        self.run += 1
        self.running = True
        self.query_one("#generate-status", Static).update("generating…")
        previous = dict(self.contents) if self.contents else None
        self.worker = self.generate_worker(self.run, session.nf, session.plan, session.analysis,
                                           Path(folder).expanduser().resolve(),
                                           None if chosen == FROM_PLAN else chosen, lock, previous)

    @work(thread=True, exclusive=True, exit_on_error=False, group="generate", name="generate")
    def generate_worker(self, run: int, nf: str, plan: Plan, analysis: Analysis, folder: Path,
                        strategy: str | None, lock: str, previous: dict[str, str] | None) -> None:
        """Generate in a thread; only posts messages.  `previous`: the last
        generation's files, compared with when `folder` holds no program yet."""
        worker = get_current_worker()
        before = read_program(folder) or previous or {}
        program = Pipeline(cancel=lambda: worker.is_cancelled).generate(nf, plan, analysis, folder,
                                                                        strategy=strategy, lock=lock)
        contents = read_files(program.directory, program.files)
        if not worker.is_cancelled:
            self.post_message(self.Generated(run, plan, program, contents, before))

    def on_generate_screen_generated(self, message: Generated) -> None:
        if message.run != self.run:
            message.stop()
            return
        self.running = False
        self.program, self.contents, self.before = message.program, message.contents, message.before
        self.show_diff = True
        self._show_files()
        self._show_status()
        changed = [n for n in message.program.files if change(n, self.before, self.contents)]
        if self.before:
            self.notify(f"{len(changed)} file(s) changed since the last generation"
                        if changed else "Nothing changed since the last generation.",
                        title="Generated")
        # The app records the program in the session (the message bubbles on).

    def show_failure(self, worker: Worker, message: str) -> None:
        if worker is not self.worker:
            return
        self.running = False
        self._show_error(message)
        self.query_one("#generate-status", Static).update(
            "generation failed" + (": the last program is kept" if self.program else ""))

    def _show_error(self, message: str) -> None:
        error = self.query_one("#generate-error", Static)
        error.update(Text.assemble(("Cannot generate: ", "bold"), message) if message else "")
        error.display = bool(message)

    # --- the engineer's changes ---------------------------------------------

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "gen-strategy":
            self._follow_folder()

    async def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "generate":
            self.action_generate()

    def action_build(self) -> None:
        # On the app's queue: switching modes from inside this screen's handler would wait on it.
        self.app.call_later(self.app.run_action, "build")
