"""Step 5, Generate: the parallel DPDK program of the session's plan.

The program (codegen.generator.generate) is written in a thread worker that
only posts `Generated`; a plan the generator refuses (GenerateError, e.g.
shared-nothing asked for a plan that locks an object) reaches the screen's
failure handler, which shows why and keeps the last program.  The files are
listed and shown highlighted (C, Makefile, JSON); a file that changed since
the previous generation (the folder's files read before they are overwritten,
so edits by hand show too; for a new folder, the last generation kept in
memory) is marked and shown as a unified diff (d: the file itself); on a
first generation every file is new (+; d: the file as added lines).
"""
from __future__ import annotations

import difflib
from pathlib import Path

from rich.syntax import Syntax
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container, Horizontal, VerticalScroll
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
from workbench.session import Session, sessions_dir

#: The strategy choice that means "the plan's".
FROM_PLAN = "plan"
THEME = "ansi_dark"
#: Program strategies in words.
STRATEGY_WORDS = {"seq": "sequential (one core)", "sn": "shared-nothing", "locks": "locks",
                  "tm": "transactional memory"}


def default_folder(nf: str, strategy: str, session_path: Path | None = None) -> Path:
    """build/workbench/<nf>-<strategy>, under the session file's folder if
    there is one (and it is not the default sessions folder, which holds
    sessions only), else under the working folder (relative)."""
    name = f"{Path(nf).stem}-{strategy}"
    base = Path()
    if session_path is not None and session_path.expanduser().parent.resolve() != sessions_dir().resolve():
        base = session_path.parent
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


def unified_diff(name: str, before: str | None, after: str) -> str:
    """What changed in file `name`, as a unified diff ('' when nothing did;
    before None: the file is new, every line added)."""
    return "".join(difflib.unified_diff((before or "").splitlines(keepends=True),
                                        after.splitlines(keepends=True),
                                        fromfile="/dev/null" if before is None else f"previous/{name}",
                                        tofile=name))


def change(name: str, before: dict[str, str] | None, after: dict[str, str]) -> str:
    """'' (the same, or before is None: no earlier generation known),
    'changed' or 'new' (not in the earlier generation; on a first
    generation, before == {}, every file)."""
    if before is None or name not in after:
        return ""
    if name not in before:
        return "new"
    return "changed" if before[name] != after[name] else ""


class GenerateScreen(StepScreen):
    """Generates the program of the session's plan and shows its files."""

    STEP = "generate"
    HOME = "#gen-files"
    BINDINGS = [
        Binding("g", "generate", "Generate", id="generate.run",
                tooltip="Write the program of the plan into the folder shown (Enter in the folder field "
                        "does the same)"),
        Binding("d", "toggle_diff", "Diff/file", id="generate.diff",
                tooltip="Show what changed in the file since the last generation (a new file: all of it "
                        "added), or the file itself"),
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
        #: The earlier generation's files ({}: none, a first generation; None: not known)
        self.before: dict[str, str] | None = None
        self.selected: str | None = None
        self.toggled = False  # d: the other view of the selected file
        self.folder_default: str | None = None  # the folder input follows the strategy until edited
        self.planned: str | None = None  # the plan's program strategy the options show

    def compose_body(self) -> ComposeResult:
        # Two rows when narrow, one when wide (app.tcss).
        with Container(id="generate-controls"):
            with Horizontal(id="gen-row-options", classes="form-row"):
                yield Label("strategy", classes="option-label")
                yield Select(self._strategy_options(None), value=FROM_PLAN, allow_blank=False, compact=True,
                             id="gen-strategy",
                             tooltip="the plan's, or: seq one core; sn shared-nothing; locks; tm "
                                     "transactions (Intel RTM)")
                yield Label("locks", classes="option-label")
                yield Select([(k, k) for k in LOCK_KINDS], value="maestro", allow_blank=False, compact=True,
                             id="gen-lock", tooltip="Lock granularity of the locks strategy")
            with Horizontal(id="gen-row-folder", classes="form-row"):
                yield Label("folder", classes="option-label")
                yield Input("", id="gen-folder", compact=True,
                            tooltip="Where the program is written (Enter generates)")
                yield Button("Generate", id="generate", variant="primary", compact=True)
        yield Static("", id="generate-status")
        yield Static("", id="generate-error")
        with Horizontal(id="generate-body"):
            files = OptionList(id="gen-files", classes="pane")
            files.border_title = "Files"
            files.border_subtitle = "~ changed · + new"
            yield files
            with VerticalScroll(id="gen-view-pane", classes="pane"):
                yield Static("", id="gen-view")

    @staticmethod
    def _strategy_options(planned: str | None) -> list[tuple[str, str]]:
        return [(f"plan's ({planned})" if planned else "plan's", FROM_PLAN),
                *[(s, s) for s in PROGRAM_STRATEGIES]]

    def _show_planned(self) -> None:
        """Name the plan's program strategy in the strategy choice."""
        plan = self.session.plan
        planned = program_strategy(plan.to_json(), None) if plan is not None else None
        if planned == self.planned:
            return
        self.planned = planned
        select = self.query_one("#gen-strategy", Select)
        value = select.value
        with self.prevent(Select.Changed):
            select.set_options(self._strategy_options(planned))
            select.value = value if value != Select.BLANK else FROM_PLAN

    # --- following the session ---------------------------------------------

    def show_session(self, session: Session) -> None:
        self._show_planned()
        self._follow_folder()
        program = session.program
        if program is None:
            if not self.running:
                self.query_one("#generate-status", Static).update(self._pending_status())
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
            self.before = None
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

    def _pending_status(self) -> Text:
        """Before a generation: what g will write."""
        plan = self.session.plan
        if plan is None:
            return Text("Plan the NF first (4).")
        text = Text("g (or Enter in the folder) generates the program of the plan: ")
        text.append_text(self._strategy_words(self.strategy(), plan.strategy))
        return text

    def _strategy_words(self, strategy: str, plan_strategy: str) -> Text:
        """`sn, the plan's` or `locks instead of the plan's shared-nothing`."""
        planned = program_strategy(self.session.plan.to_json(), None) if self.session.plan else None
        if planned is None or strategy == planned:
            return Text(f"{strategy}, the plan's ({plan_strategy})")
        return Text(f"{strategy} instead of the plan's {STRATEGY_WORDS.get(planned, planned)}", style="yellow")

    def _show_status(self) -> None:
        program = self.program
        if program is None:
            return
        text = Text()
        text.append(program.nf, style="bold")
        text.append(" · ")
        plan = self.session.plan
        text.append_text(self._strategy_words(program.strategy, plan.strategy) if plan else Text(program.strategy))
        if program.strategy == "locks":
            text.append(f", {program.lock} locks")
        text.append(f" · {program.cores} core{'s' if program.cores != 1 else ''} · {program.devices} devices"
                    f" · plan {program.digest} → ")
        text.append(display_path(program.directory), style="bold")
        text.append("  (b: build)", style="dim")
        self.query_one("#generate-status", Static).update(text)

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
        # A changed file shows its diff first, a new one the file (d: the other view).
        show_diff = bool(kind) and (kind == "changed") != self.toggled
        if show_diff:
            previous = self.before.get(name) if self.before is not None else None
            diff = unified_diff(name, previous, self.contents[name])
            view.update(Syntax(diff, "diff", theme=THEME, word_wrap=False))
            pane.border_title = f"{name}: " + ("changed since the last generation" if kind == "changed"
                                               else "new, every line added")
            pane.border_subtitle = "d: the file"
        else:
            view.update(Syntax(self.contents[name], lexer(name), line_numbers=True, theme=THEME,
                               word_wrap=False))
            pane.border_title = name + (" (new)" if kind == "new" else "")
            pane.border_subtitle = "d: what changed" if kind else ""
        pane.scroll_home(animate=False)

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if event.option.id and event.option.id != self.selected:
            self.selected = event.option.id
            self.toggled = False
            self._show_file()

    def action_toggle_diff(self) -> None:
        """d: the diff of the selected file, or the file itself."""
        name = self.selected
        if name is None or name not in self.contents:
            self.notify("No file selected: generate the program first (g).", severity="warning")
            return
        if self.before is None:
            self.notify("No earlier generation to compare with (this program comes from the opened "
                        "session): g generates it again and shows what changed.", timeout=6)
            return
        if not change(name, self.before, self.contents):
            self.notify(f"{name} did not change since the last generation.", timeout=4)
            return
        self.toggled = not self.toggled
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
        self.toggled = False
        self._show_files()
        self._show_status()
        changed = [n for n in message.program.files if change(n, self.before, self.contents)]
        if self.before:
            n = len(changed)
            self.notify(f"{n} file{'' if n == 1 else 's'} changed since the last generation"
                        if changed else "Nothing changed since the last generation.",
                        title="Generated", timeout=4)
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
            if self.program is None and not self.running:
                self.query_one("#generate-status", Static).update(self._pending_status())

    def submit(self, field: Input) -> None:
        """Enter in the folder field: generate."""
        self.action_generate()

    async def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "generate":
            self.action_generate()

    def action_build(self) -> None:
        # On the app's queue: switching modes from inside this screen's handler would wait on it.
        self.app.call_later(self.app.run_action, "build")
