"""The Textual workbench, `maestro-tui [NF] [--session FILE]`.

The app holds one frozen `Session` (workbench/session.py) and replaces it as
steps finish; each step is a mode with its own screen (workbench/screens/),
which follows the session and posts messages when the engineer or one of its
workers produced something.  Screens call the same functions as the
`maestro` CLI (analyses/, codegen/) and keep no pipeline logic of their own.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import time
import tomllib
from functools import partial
from pathlib import Path

from textual.app import App, SuspendNotSupported
from textual.binding import Binding
from textual.reactive import reactive

from analyses.errors import MaestroError
from analyses.nf_source import resolve_nf
from workbench.screens.analyze import AnalyzeScreen
from workbench.screens.decide import DecideScreen
from workbench.screens.generate import GenerateScreen
from workbench.screens.base import StepScreen
from workbench.screens.help import HelpScreen, binding_rows, help_text
from workbench.screens.inspect import InspectScreen
from workbench.screens.load import LoadScreen, nf_spec
from workbench.screens.palette import Command, WorkbenchCommands
from workbench.screens.path_prompt import PathPrompt
from workbench.screens.run import RunScreen
from workbench.screens.steps import STEP_IDS, STEPS, step
from workbench.screens.text_modal import TextModal, UnsavedModal
from workbench.session import Session, default_session_path, source_digest

#: The screen of each step (workbench/screens/steps.py lists the steps).
STEP_SCREENS = {"load": LoadScreen, "analyze": AnalyzeScreen, "inspect": InspectScreen,
                "decide": DecideScreen, "generate": GenerateScreen, "run": RunScreen}
_DEFAULT = object()
#: Signals that end the workbench after stopping what runs (on_stop_signal).
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)
#: How long a stopped task may take to end before the app leaves anyway.
SIGNAL_GRACE_S = 15.0


def keymap_file() -> Path | None:
    """$MAESTRO_KEYMAP, else keymap.toml or keymap.json in ~/.config/maestro/."""
    if os.environ.get("MAESTRO_KEYMAP"):
        return Path(os.environ["MAESTRO_KEYMAP"]).expanduser()
    folder = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "maestro"
    return next((folder / n for n in ("keymap.toml", "keymap.json") if (folder / n).is_file()), None)


def load_keymap(path: Path) -> dict[str, str]:
    """Binding id -> keys ("ctrl+r" or "r,ctrl+r"; a list of keys is joined).
    JSON or TOML, at top level or under "keymap"; MaestroError when malformed."""
    try:
        text = path.read_text()
        doc = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (OSError, ValueError) as exc:
        raise MaestroError(f"keymap {path}: {exc}") from None
    doc = doc.get("keymap", doc) if isinstance(doc, dict) else doc
    if not isinstance(doc, dict):
        raise MaestroError(f"keymap {path}: expected binding id = keys pairs")
    keymap = {}
    for binding_id, keys in _flatten(doc).items():
        if isinstance(keys, list) and all(isinstance(k, str) for k in keys):
            keys = ",".join(keys)
        if not isinstance(keys, str):
            raise MaestroError(f"keymap {path}: {binding_id}: keys must be a string or a list of strings")
        keymap[binding_id] = keys
    return keymap


def _flatten(doc: dict, prefix: str = "") -> dict:
    """TOML's dotted keys (load.analyze = ...) nest; binding ids do not."""
    out = {}
    for key, value in doc.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


class Workbench(App):
    """Walks an engineer from an NF to its parallel version."""

    TITLE = "maestro"
    SUB_TITLE = "parallelize a network function"
    CSS_PATH = "app.tcss"
    MODES = dict(STEP_SCREENS)
    COMMANDS = App.COMMANDS | {WorkbenchCommands}
    #: Narrow or short terminals get their own layouts (app.tcss: .-narrow, .-short).
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-medium"), (120, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (30, "-tall")]
    BINDINGS = [
        # The footer shows the steps once, as "1-6 Steps" (the step bar shows each key).
        *[Binding(s.key, f"goto('{s.id}')", s.title if i > 1 else "Steps", id=s.binding_id, show=i == 1,
                  key_display=f"{STEPS[0].key}-{STEPS[-1].key}" if i == 1 else None,
                  tooltip=f"Go to step {i}, {s.title}") for i, s in enumerate(STEPS, 1)],
        Binding("escape", "back", "Back", id="app.back",
                tooltip="Back one step (Run → Generate → Decide → Inspect → Analyze → Load)"),
        Binding("e", "edit_nf", "Edit", id="app.edit",
                tooltip="Open the NF's .c file in $VISUAL or $EDITOR; when it changed, analyze it again"),
        Binding("f1,question_mark", "help", "Help", id="app.help",
                tooltip="The flow and every key"),
        Binding("ctrl+s", "save_session", "Save", id="session.save",
                tooltip="Save the session (NF, analysis, overrides, plan, program, build, run and verify "
                        "results) as JSON, by default in ~/.local/share/maestro/sessions/"),
        Binding("ctrl+o", "open_session", "Open session", id="session.open", show=False,
                tooltip="Reopen a saved session (asks first when this one has unsaved work)"),
        Binding("q", "quit", "Quit", id="app.quit",
                tooltip="Leave the workbench (asks first when the session has unsaved work; a running "
                        "analysis is cancelled, a running program stopped)"),
    ]

    session: reactive[Session] = reactive(Session, always_update=True, init=False)

    def __init__(self, nf: str | None = None, *, session: Session | None = None,
                 session_path: str | Path | None = None, keymap_path: object = _DEFAULT) -> None:
        super().__init__()
        self.initial_nf = nf
        self.session_path = Path(session_path) if session_path else None
        self.keymap_path = keymap_file() if keymap_path is _DEFAULT else keymap_path
        self.keymap: dict[str, str] = {}
        self.startup_errors: list[str] = []
        #: Program folders generated in this run of the app: make and the
        #: executable run there without asking (a session's folders are asked about).
        self.trusted_programs: set[Path] = set()
        #: The session as last saved or opened (None: never): quitting or
        #: opening another one over unsaved work asks first.
        self.saved_session: Session | None = None
        #: Signals this app handles, the one that ended it, and what main()
        #: prints after it (on_stop_signal).
        self.watched_signals: list[int] = []
        self.stopped_by: str | None = None
        self.exit_report = ""
        if session is None and self.session_path and self.session_path.exists():
            try:
                session = Session.load(self.session_path)
                self.saved_session = session
                self.startup_errors.extend(session.warnings)
            except MaestroError as exc:
                self.startup_errors.append(str(exc))
        self.set_reactive(Workbench.session, session or Session())

    async def on_mount(self) -> None:
        self.watch_signals()
        if isinstance(self.keymap_path, Path):
            try:
                self.keymap = load_keymap(self.keymap_path)
                self.set_keymap(self.keymap)
            except MaestroError as exc:
                self.startup_errors.append(str(exc))
        nf_error = None
        if self.initial_nf:
            try:
                resolve_nf(self.initial_nf)
                self.session = self.session.with_nf(self.initial_nf)
            except MaestroError as exc:
                nf_error = str(exc)
        start = self.session.step if self.session.step in STEP_SCREENS else "load"
        if nf_error or step(start).blocked(self.session):
            start = "load"
        await self.switch_mode(start)
        if nf_error and isinstance(self.screen, LoadScreen):
            self.screen.show_error(nf_error)
        for error in self.startup_errors:
            self.notify(error, severity="error", timeout=10)
        if self.session.source_changed():
            self.notify("The NF source changed since the saved analysis: analyze it again.",
                        severity="warning", timeout=10)

    def step_keys(self) -> dict[str, str]:
        """Step id -> the key that goes there (the keymap applied)."""
        return {s.id: self.keymap.get(s.binding_id, s.key).split(",")[0] for s in STEPS}

    # --- moving between steps -----------------------------------------------

    def action_goto(self, step_id: str) -> None:
        """Go to a step, or say what it needs first."""
        target = step(step_id)
        if reason := target.blocked(self.session):
            self.notify(f"{target.title}: {reason}", severity="warning")
            return
        self.switch_mode(step_id)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "back":  # nothing before Load
            return self.current_mode in STEP_IDS and self.current_mode != STEP_IDS[0]
        return True

    def action_back(self) -> None:
        """Esc: back one step in the flow."""
        if self.current_mode in STEP_IDS and self.current_mode != STEP_IDS[0]:
            self.action_goto(STEP_IDS[STEP_IDS.index(self.current_mode) - 1])

    async def action_analyze(self) -> None:
        """Go to Analyze and (re)run the analysis of the session's NF."""
        if not self.session.nf:
            self.action_goto("analyze")
            return
        await self.switch_mode("analyze")
        if isinstance(self.screen, AnalyzeScreen):
            self.screen.action_run()

    def action_cancel_analysis(self) -> None:
        for worker in self.workers:
            if worker.group == "analyze" and worker.is_running:
                worker.cancel()

    def run_screen(self) -> RunScreen | None:
        """The Run screen while one of its tasks (build, run, verify) is going."""
        for worker in self.workers:
            if worker.group == "run" and worker.is_running and isinstance(worker.node, RunScreen):
                return worker.node
        return None

    def running_program(self) -> bool:
        screen = self.run_screen()
        return screen is not None and screen.busy == "run"

    async def action_generate(self) -> None:
        """Go to Generate and generate the program of the plan."""
        await self._on_step("generate", "action_generate")

    async def action_build(self) -> None:
        """Go to Run and build the generated program."""
        await self._on_step("run", "action_build")

    async def action_run_program(self) -> None:
        """Go to Run and run the built program."""
        await self._on_step("run", "action_start")

    async def action_verify(self) -> None:
        """Go to Run and verify the generated program."""
        await self._on_step("run", "action_verify")

    def action_stop_run(self) -> None:
        if (screen := self.run_screen()) is not None:
            screen.action_stop()

    async def _on_step(self, step_id: str, action: str) -> None:
        target = step(step_id)
        if reason := target.blocked(self.session):
            self.notify(f"{target.title}: {reason}", severity="warning")
            return
        await self.switch_mode(step_id)
        if self.current_mode == step_id:
            self.screen.call_later(getattr(self.screen, action))  # on the screen's own queue

    def on_unmount(self) -> None:
        """No program is left running when the app ends."""
        for worker in self.workers:
            if isinstance(worker.node, RunScreen):
                worker.node.stop_all()
        for sig in self.watched_signals:
            with contextlib.suppress(RuntimeError, ValueError):
                asyncio.get_running_loop().remove_signal_handler(sig)

    # --- signals: stop what runs, keep the results, then leave ----------------

    def watch_signals(self) -> None:
        """SIGTERM, SIGHUP and SIGINT (sent with kill: in the terminal ctrl+c
        is a key) end the workbench as an operator would: see on_stop_signal."""
        loop = asyncio.get_running_loop()
        for sig in STOP_SIGNALS:
            try:
                loop.add_signal_handler(sig, self.on_stop_signal, sig)
            except (NotImplementedError, RuntimeError, ValueError):  # not the main thread
                continue
            self.watched_signals.append(sig)

    def on_stop_signal(self, sig: int) -> None:
        """Stop the build, run or verification going on (a program prints
        its final line, which the Run screen shows), save the session, then
        exit; `exit_report` says what happened, for main() to print."""
        self.stopped_by = signal.Signals(sig).name
        screen = self.run_screen()
        if screen is not None:
            self.notify(f"{self.stopped_by}: stopping the {screen.busy}, then leaving", severity="warning")
            screen.action_stop()
        deadline = time.monotonic() + SIGNAL_GRACE_S

        def leave_when_stopped() -> None:
            # the task's worker ends before its result reaches the screen,
            # which then ends the task (busy None): wait for both
            going = self.run_screen() is not None or (screen is not None and screen.busy)
            if going and time.monotonic() < deadline:
                self.set_timer(0.1, leave_when_stopped)
                return
            self.exit_report = self._signal_report()
            self.exit()

        leave_when_stopped()

    def _signal_report(self) -> str:
        """What main() prints after a signal: the last run's final line and
        where the session went (saved when it held work)."""
        parts = [f"maestro-tui: {self.stopped_by}"]
        run = self.session.results.get("run") or {}
        if final := run.get("final"):
            parts.append(f"run {'stopped' if run.get('cancelled') else 'done'}: {final.get('rx', 0)} packets, "
                         f"{float(final.get('mpps', 0)):.2f} Mpps, conserved {final.get('conserved')}")
        if self.session.analysis is not None:
            try:
                self.session_path = self.session.at_step(self.current_mode).save(self.default_session_path())
                parts.append(f"session saved in {self.session_path}")
            except MaestroError as exc:
                parts.append(f"session NOT saved: {exc}")
        return "; ".join(parts)

    # --- what the steps produced --------------------------------------------

    async def on_load_screen_chosen(self, message: LoadScreen.Chosen) -> None:
        if message.spec != self.session.nf and self.unsaved():
            self.ask_unsaved(f"work on {Path(message.spec).stem} instead", partial(self._choose, message.spec))
            return
        await self._choose(message.spec)

    async def _choose(self, spec: str) -> None:
        self.session = self.session.with_nf(spec)
        await self.switch_mode("analyze")
        screen = self.screen
        if isinstance(screen, AnalyzeScreen) and self.session.analysis is None \
                and not (screen.running and screen.running_nf == self.session.nf):
            screen.action_run()

    def on_analyze_screen_finished(self, message: AnalyzeScreen.Finished) -> None:
        self.session = self.session.with_analysis(message.analysis)
        if self.current_mode != "analyze":  # the Analyze screen shows it itself
            key = self.step_keys()["inspect"]
            self.notify(f"{message.analysis.nf}: {len(message.analysis.objects)} state objects "
                        f"({key}: inspect them)", title="Analysis finished", timeout=4)

    def on_decide_screen_planned(self, message: DecideScreen.Planned) -> None:
        if message.analysis is self.session.analysis:
            self.session = self.session.with_plan(message.plan, message.settings)

    def on_generate_screen_generated(self, message: GenerateScreen.Generated) -> None:
        if message.plan is self.session.plan:
            self.session = self.session.with_program(message.program)
            self.trusted_programs.add(message.program.directory)

    def on_run_screen_result(self, message: RunScreen.Result) -> None:
        basis = self.session.results.get("generate")
        if basis is not None and message.basis is basis:
            self.session = self.session.with_result(message.stage, message.doc)

    # --- sessions -----------------------------------------------------------

    def unsaved(self) -> bool:
        """Whether the session holds work (an analysis or more) that was not
        saved since it was last saved or opened."""
        if self.session.analysis is None:
            return False
        saved = self.saved_session
        return saved is None or self.session.at_step("load") != saved.at_step("load")

    def ask_unsaved(self, what: str, then) -> None:
        """Ask before `what` drops unsaved work: save first (then `then`),
        discard it (then `then`), or stay."""
        async def answered(choice: str | None) -> None:
            if choice == "discard":
                await _call(then)
            elif choice == "save":
                self.action_save_session(then=then)

        nf = Path(self.session.nf).stem if self.session.nf else "this NF"
        self.push_screen(UnsavedModal(
            f"The session of {nf} has unsaved work ({self.session_summary()}). "
            f"Save it before you {what}?"), answered)

    def session_summary(self) -> str:
        """What the session holds, in words: "analysis, plan, program, build"."""
        session = self.session
        parts = [name for name, held in (("analysis", session.analysis), ("plan", session.plan)) if held]
        parts += [{"generate": "program"}.get(k, k) for k in ("generate", "build", "run", "verify", "bench")
                  if k in session.results]
        return ", ".join(parts) or "nothing yet"

    def default_session_path(self) -> Path:
        """Where ctrl+s proposes to save: the session's file, else
        ~/.local/share/maestro/sessions/<nf>.session.json ($XDG_DATA_HOME)."""
        return self.session_path or default_session_path(self.session.nf)

    def action_save_session(self, then=None) -> None:
        def saved(path: str | None) -> None:
            if self._save_to(path) and then is not None:
                self.call_later(then)

        self.push_screen(PathPrompt("Save the session to:", str(self.default_session_path())), saved)

    def _save_to(self, path: str | None) -> bool:
        if not path:
            return False
        try:
            session = self.session.at_step(self.current_mode)
            self.session_path = session.save(path)
        except MaestroError as exc:
            self.notify(str(exc), severity="error", timeout=10)
            return False
        self.saved_session = self.session
        self.notify(f"Session saved to {self.session_path}", title="Saved")
        return True

    def action_open_session(self) -> None:
        if self.unsaved():
            self.ask_unsaved("open another session", self._ask_open)
            return
        self._ask_open()

    def _ask_open(self) -> None:
        default = str(self.session_path or default_session_path(None).parent) + ("" if self.session_path else "/")
        self.push_screen(PathPrompt("Open the session in:", default), self._open_from)

    async def _open_from(self, path: str | None) -> None:
        if not path:
            return
        try:
            session = Session.load(path)
        except MaestroError as exc:
            self.notify(str(exc), severity="error", timeout=10)
            return
        await self.open_session(session, Path(path).expanduser())

    async def open_session(self, session: Session, path: Path | None = None) -> None:
        """Resume `session` at its step."""
        self.session_path = path or self.session_path
        self.session = session
        self.saved_session = session
        for warning in session.warnings:
            self.notify(warning, severity="warning", timeout=10)
        target = session.step if session.step in STEP_SCREENS and not step(session.step).blocked(session) \
            else "load"
        await self.switch_mode(target)
        if session.source_changed():
            self.notify("The NF source changed since the saved analysis: analyze it again.",
                        severity="warning", timeout=10)

    async def action_quit(self) -> None:
        """q: leave, asking first when the session has unsaved work."""
        if self.unsaved():
            self.ask_unsaved("quit", self.exit)
            return
        self.exit()

    # --- the NF in an editor --------------------------------------------------

    def nf_to_edit(self) -> Path | None:
        """The NF `e` opens: the one highlighted on Load, else the session's."""
        screen = self.screen
        if isinstance(screen, LoadScreen) and screen.nf is not None:
            return screen.nf.path
        if not self.session.nf:
            return None
        try:
            return resolve_nf(self.session.nf).path
        except MaestroError:
            return None

    def editor_command(self) -> list[str] | None:
        """$VISUAL, else $EDITOR, else the first of vi, nano found (None: none)."""
        for name in ("VISUAL", "EDITOR"):
            value = os.environ.get(name, "").strip()
            if value:
                try:
                    return shlex.split(value)
                except ValueError:
                    self.notify(f"${name} is not a command line: {value}", severity="error")
                    return None
        found = next((shutil.which(n) for n in ("vi", "nano") if shutil.which(n)), None)
        return [found] if found else None

    async def action_edit_nf(self) -> None:
        """e: open the NF in the editor (the app is suspended meanwhile);
        when the file changed, the session's NF is analyzed again."""
        path = self.nf_to_edit()
        if path is None:
            self.notify("Pick an NF first (1: Load).", severity="warning")
            return
        command = self.editor_command()
        if command is None:
            self.notify("No editor: set $EDITOR (or $VISUAL).", severity="error", timeout=8)
            return
        before = source_digest(path)
        try:
            with self.suspend():
                status = subprocess.call([*command, str(path)])
        except SuspendNotSupported:
            self.notify("This terminal cannot hand the screen to an editor.", severity="error")
            return
        except OSError as exc:
            self.notify(f"cannot start {command[0]}: {exc.strerror or exc}", severity="error", timeout=8)
            return
        self.refresh()
        if status != 0:
            self.notify(f"{Path(command[0]).name} exited with status {status}", severity="warning")
        if source_digest(path) == before:
            self.notify(f"{path.name}: unchanged", timeout=3)
            return
        screen = self.screen
        chosen = self.session.nf is not None and self.nf_to_edit_is_session(path)
        if isinstance(screen, LoadScreen):
            screen.show_nf(nf_spec(resolve_nf(str(path))) if not chosen else self.session.nf)
        if chosen:
            self.notify(f"{path.name} changed: analyzing it again", timeout=4)
            await self.action_analyze()
        else:
            self.notify(f"{path.name} changed", timeout=3)

    def nf_to_edit_is_session(self, path: Path) -> bool:
        try:
            return resolve_nf(self.session.nf).path.resolve() == path.resolve()
        except MaestroError:
            return False

    # --- help and the palette -----------------------------------------------

    def action_help(self) -> None:
        steps = {s.binding_id for s in STEPS}  # "The flow" lists them with their keys
        everywhere = [b for b in self.BINDINGS if not (isinstance(b, Binding) and b.id in steps)]
        sections = [("Everywhere", binding_rows(self, [*everywhere, *StepScreen.BINDINGS], self.keymap))]
        sections += [(s.title, binding_rows(self, STEP_SCREENS[s.id].__dict__.get("BINDINGS", []), self.keymap))
                     for s in STEPS]
        note = (f"Keys are remappable by binding id in {self.keymap_path}" if isinstance(self.keymap_path, Path)
                else "Keys are remappable: ~/.config/maestro/keymap.json (or .toml, or $MAESTRO_KEYMAP) "
                     'maps binding ids to keys, e.g. {"load.analyze": "ctrl+r"}')
        self.push_screen(HelpScreen(help_text(self.step_keys(), sections, note)))

    def action_explain(self) -> None:
        if self.session.plan is not None:
            self.push_screen(TextModal(f"Plan of {self.session.plan.nf}", self.session.plan.explanation))

    async def action_open_nf_file(self) -> None:
        await self.switch_mode("load")
        if isinstance(self.screen, LoadScreen):
            self.screen.action_open_file()

    def palette_commands(self) -> list[Command]:
        """The commands that apply now (the palette offers only these)."""
        session = self.session
        name = Path(session.nf).stem if session.nf else ""
        running = any(w.group == "analyze" and w.is_running for w in self.workers)
        commands = [Command(s.command.format(nf=name), s.help, partial(self.action_goto, s.id))
                    for s in STEPS if s.id != self.current_mode and not s.blocked(session)]
        if session.nf and not running:
            commands.append(Command(f"Analyze {name} now", "run the analysis (again)", self.action_analyze))
        if running:
            commands.append(Command("Cancel the analysis", "stop it; its partial report is dropped",
                                    self.action_cancel_analysis))
        if session.plan is not None:
            commands.append(Command("Explain the plan", "the planner's reasons, object by object",
                                    self.action_explain))
            commands.append(Command(f"Generate {name}'s program now",
                                    "write the DPDK program of the plan", self.action_generate))
        busy = self.run_screen() is not None
        if session.program is not None and not busy:
            commands.append(Command(f"Build {name}'s program", "make, the log streaming",
                                    self.action_build))
            commands.append(Command(f"Verify {name}'s program",
                                    "is it equivalent to the sequential NF?", self.action_verify))
        if session.built and not busy:
            commands.append(Command(f"Run {name}'s program", "live per-core throughput",
                                    self.action_run_program))
        if session.program is not None and not busy:
            commands.append(Command(f"Bench {name}'s plan", "Mpps per strategy on 1..N cores, a scaling chart",
                                    partial(self._on_step, "run", "action_bench")))
        if self.running_program():
            commands.append(Command("Stop the run", "the program stops cleanly and prints its totals",
                                    self.action_stop_run))
        commands.append(Command("Open an NF's .c file", "any NF written against the contract",
                                self.action_open_nf_file))
        if session.nf:
            commands.append(Command(f"Edit {name} in $EDITOR", "e: analyzed again when it changed",
                                    self.action_edit_nf))
        if session.nf:
            commands.append(Command("Save the session", "NF, analysis, overrides, plan and results as JSON",
                                    self.action_save_session))
        commands.append(Command("Open a saved session", "resume where it stopped", self.action_open_session))
        commands.append(Command("Help: the flow and the keys", "F1 or ?", self.action_help))
        return commands


async def _call(then) -> None:
    """Call `then` and await it when it is a coroutine function."""
    result = then()
    if hasattr(result, "__await__"):
        await result


def main(argv: list[str] | None = None) -> None:
    """Entry point of `maestro-tui`."""
    parser = argparse.ArgumentParser(prog="maestro-tui", description=__doc__.splitlines()[0])
    parser.add_argument("nf", nargs="?", help="sample name (fw) or path of an NF's .c file")
    parser.add_argument("--session", metavar="FILE",
                        help="reopen the session saved in FILE (or start one to be saved there); "
                             "ctrl+s saves in ~/.local/share/maestro/sessions/ by default")
    args = parser.parse_args(argv)
    app = Workbench(args.nf, session_path=args.session)
    app.run()
    if app.exit_report:
        print(app.exit_report)


if __name__ == "__main__":
    main()
