"""The Textual workbench, `maestro-tui [NF] [--session FILE]`.

The app holds one frozen `Session` (workbench/session.py) and replaces it as
steps finish; each step is a mode with its own screen (workbench/screens/),
which follows the session and posts messages when the engineer or one of its
workers produced something.  Screens call the same functions as the
`maestro` CLI (analyses/, codegen/) and keep no pipeline logic of their own.
"""
from __future__ import annotations

import argparse
import json
import os
import tomllib
from functools import partial
from pathlib import Path

from textual.app import App
from textual.binding import Binding
from textual.reactive import reactive

from analyses.errors import MaestroError
from analyses.nf_source import resolve_nf
from workbench.screens.analyze import AnalyzeScreen
from workbench.screens.decide import DecideScreen
from workbench.screens.generate import GenerateScreen
from workbench.screens.help import HelpScreen, binding_rows, help_text
from workbench.screens.inspect import InspectScreen
from workbench.screens.load import LoadScreen
from workbench.screens.palette import Command, WorkbenchCommands
from workbench.screens.path_prompt import PathPrompt
from workbench.screens.run import RunScreen
from workbench.screens.steps import STEPS, step
from workbench.screens.text_modal import TextModal
from workbench.session import Session

#: The screen of each step (workbench/screens/steps.py lists the steps).
STEP_SCREENS = {"load": LoadScreen, "analyze": AnalyzeScreen, "inspect": InspectScreen,
                "decide": DecideScreen, "generate": GenerateScreen, "run": RunScreen}
_DEFAULT = object()


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
    BINDINGS = [
        *[Binding(s.key, f"goto('{s.id}')", s.title, id=s.binding_id, show=False,
                  tooltip=f"Go to step {i}, {s.title}") for i, s in enumerate(STEPS, 1)],
        Binding("f1,question_mark", "help", "Help", id="app.help",
                tooltip="The flow and every key"),
        Binding("ctrl+s", "save_session", "Save", id="session.save",
                tooltip="Save the session (NF, analysis, overrides, plan, program, build, run and verify results) as JSON"),
        Binding("ctrl+o", "open_session", "Open session", id="session.open", show=False,
                tooltip="Reopen a saved session"),
        Binding("q", "quit", "Quit", id="app.quit",
                tooltip="Leave the workbench (a running analysis is cancelled, a running program stopped)"),
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
        if session is None and self.session_path and self.session_path.exists():
            try:
                session = Session.load(self.session_path)
                self.startup_errors.extend(session.warnings)
            except MaestroError as exc:
                self.startup_errors.append(str(exc))
        self.set_reactive(Workbench.session, session or Session())

    async def on_mount(self) -> None:
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

    # --- what the steps produced --------------------------------------------

    async def on_load_screen_chosen(self, message: LoadScreen.Chosen) -> None:
        self.session = self.session.with_nf(message.spec)
        await self.switch_mode("analyze")
        screen = self.screen
        if isinstance(screen, AnalyzeScreen) and self.session.analysis is None \
                and not (screen.running and screen.running_nf == self.session.nf):
            screen.action_run()

    def on_analyze_screen_finished(self, message: AnalyzeScreen.Finished) -> None:
        self.session = self.session.with_analysis(message.analysis)
        key = self.step_keys()["inspect"]
        self.notify(f"{message.analysis.nf}: {len(message.analysis.objects)} state objects. "
                    f"Press {key} to inspect them.", title="Analysis finished")

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

    def action_save_session(self) -> None:
        default = self.session_path or Path(f"{Path(self.session.nf or 'maestro').stem}.session.json")
        self.push_screen(PathPrompt("Save the session to:", str(default)), self._save_to)

    def _save_to(self, path: str | None) -> None:
        if not path:
            return
        try:
            self.session_path = self.session.at_step(self.current_mode).save(path)
        except MaestroError as exc:
            self.notify(str(exc), severity="error", timeout=10)
            return
        self.notify(f"Session saved to {self.session_path}", title="Saved")

    def action_open_session(self) -> None:
        default = str(self.session_path or "")
        self.push_screen(PathPrompt("Open the session in:", default), self._open_from)

    async def _open_from(self, path: str | None) -> None:
        if not path:
            return
        try:
            session = Session.load(path)
        except MaestroError as exc:
            self.notify(str(exc), severity="error", timeout=10)
            return
        await self.open_session(session, Path(path))

    async def open_session(self, session: Session, path: Path | None = None) -> None:
        """Resume `session` at its step."""
        self.session_path = path or self.session_path
        self.session = session
        for warning in session.warnings:
            self.notify(warning, severity="warning", timeout=10)
        target = session.step if session.step in STEP_SCREENS and not step(session.step).blocked(session) \
            else "load"
        await self.switch_mode(target)
        if session.source_changed():
            self.notify("The NF source changed since the saved analysis: analyze it again.",
                        severity="warning", timeout=10)

    # --- help and the palette -----------------------------------------------

    def action_help(self) -> None:
        sections = [("Everywhere", binding_rows(self, self.BINDINGS, self.keymap))]
        sections += [(s.title, binding_rows(self, STEP_SCREENS[s.id].BINDINGS, self.keymap)) for s in STEPS]
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
        if self.running_program():
            commands.append(Command("Stop the run", "the program stops cleanly and prints its totals",
                                    self.action_stop_run))
        commands.append(Command("Open an NF's .c file", "any NF written against the contract",
                                self.action_open_nf_file))
        if session.nf:
            commands.append(Command("Save the session", "NF, analysis, overrides, plan and results as JSON",
                                    self.action_save_session))
        commands.append(Command("Open a saved session", "resume where it stopped", self.action_open_session))
        commands.append(Command("Help: the flow and the keys", "F1 or ?", self.action_help))
        return commands


def main(argv: list[str] | None = None) -> None:
    """Entry point of `maestro-tui`."""
    parser = argparse.ArgumentParser(prog="maestro-tui", description=__doc__.splitlines()[0])
    parser.add_argument("nf", nargs="?", help="sample name (fw) or path of an NF's .c file")
    parser.add_argument("--session", metavar="FILE",
                        help="reopen the session saved in FILE (or start one to be saved there)")
    args = parser.parse_args(argv)
    Workbench(args.nf, session_path=args.session).run()


if __name__ == "__main__":
    main()
