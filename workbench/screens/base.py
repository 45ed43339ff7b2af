"""What every step screen shares: the step bar, the footer, following the
session, the keys every step has (Tab between fields, Enter in a field for
the screen's main action, Esc to leave a field or stop what runs), and the
one handler that turns a failed worker into a message."""
from __future__ import annotations

import traceback
from typing import ClassVar, Protocol, cast

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Input, Select
from textual.worker import Worker, WorkerState

from analyses.errors import MaestroError
from workbench.commands import argtypes
from workbench.session import Session
from workbench.widgets.footer import WorkbenchFooter
from workbench.widgets.step_bar import StepBar


class WorkbenchApp(Protocol):
    """What screens use of the app (workbench/app.py)."""

    session: Session

    def step_keys(self) -> dict[str, str]: ...


def describe_error(error: BaseException | None) -> str:
    """The message to show for a worker's exception: a MaestroError's own
    message; for anything else its type, message and where it was raised."""
    if error is None:
        return "failed (no error recorded)"
    if isinstance(error, MaestroError):
        return str(error)
    where = traceback.extract_tb(error.__traceback__)[-1:] if error.__traceback__ else []
    at = f" (at {where[0].filename}:{where[0].lineno})" if where else ""
    return f"unexpected {type(error).__name__}: {error}{at}"


class FieldError(ValueError):
    """A form field holds a value the screen cannot use (the message names it)."""


def parse_field(label: str, text: str, parse) -> object:
    """`text` of the field called `label` parsed by an argtypes parser
    (workbench/commands/argtypes.py: the CLI's ranges); FieldError naming
    the field otherwise."""
    import argparse

    try:
        return parse(text.strip())
    except (argparse.ArgumentTypeError, ValueError) as exc:
        raise FieldError(f"{label}: {exc}") from None


#: Parsers of the numbers the forms take (the CLI's ranges).
SECONDS = argtypes.seconds
PACKETS = argtypes.packets
FLOWS = argtypes.flows
CORES = argtypes.cores


class StepScreen(Screen):
    """A screen of one step.  Subclasses set STEP, compose their body in
    `compose_body`, redraw in `show_session`, and show failures of their
    workers in `show_failure`.  A screen with a task that can be stopped
    says so in `can_stop` and stops it in `action_stop`; Enter in one of its
    text fields runs `submit(field)` (the screen's main action)."""

    STEP: ClassVar[str] = ""
    #: The widget focused when the screen opens and when Esc leaves a field.
    HOME: ClassVar[str] = ""

    BINDINGS = [
        Binding("tab", "app.focus_next", "Next", id="focus.next",
                tooltip="Focus the next field or pane (shift+tab: the previous one)"),
        Binding("shift+tab", "app.focus_previous", "Previous", show=False, id="focus.previous",
                tooltip="Focus the previous field or pane"),
        Binding("escape", "leave_field", "Leave field", id="field.leave",
                tooltip="Leave the text field (its value is kept) for the screen's main pane"),
        Binding("escape", "stop", "Stop", id="step.stop",
                tooltip="Stop what runs on this screen (the analysis; the build, run, verification or bench)"),
    ]

    def compose(self) -> ComposeResult:
        yield StepBar(self.STEP)
        yield from self.compose_body()
        yield WorkbenchFooter()

    def compose_body(self) -> ComposeResult:
        yield from ()

    @property
    def workbench(self) -> WorkbenchApp:
        return cast(WorkbenchApp, self.app)

    @property
    def session(self) -> Session:
        return self.workbench.session

    def on_mount(self) -> None:
        # Textual calls the on_mount of every class in the MRO: subclasses
        # define their own without calling this one.
        self.watch(self.app, "session", self._session_changed)
        if self.HOME:
            self.query_one(self.HOME).focus()

    def _session_changed(self, session: Session) -> None:
        self.query_one(StepBar).show(session, self.workbench.step_keys())
        self.show_session(session)
        self.refresh_bindings()

    def show_session(self, session: Session) -> None:
        """Redraw what depends on the session (called on every change)."""

    # --- keys every step has -------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "leave_field":
            return isinstance(self.focused, (Input, Select)) and bool(self.HOME)
        if action == "stop":
            return self.can_stop()
        return True

    def can_stop(self) -> bool:
        """Whether a task of this screen runs and can be stopped (Esc)."""
        return False

    def action_stop(self) -> None:
        """Stop the task that runs (see can_stop)."""

    def action_leave_field(self) -> None:
        if self.HOME:
            self.query_one(self.HOME).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Enter in a text field: the screen's main action."""
        event.stop()
        self.submit(event.input)

    def submit(self, field: Input) -> None:
        """The main action for Enter in `field` (none by default)."""

    def home_widget(self) -> Widget | None:
        return self.query_one(self.HOME) if self.HOME else None

    # --- failures -------------------------------------------------------------

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The one failure handler: a worker of this screen raised."""
        if event.state != WorkerState.ERROR:
            return
        error = event.worker.error
        if not isinstance(error, MaestroError):
            self.log.error("".join(traceback.format_exception(error)) if error else "worker failed")
        self.show_failure(event.worker, describe_error(error))

    def show_failure(self, worker: Worker, message: str) -> None:
        """Show a failed worker's message (default: a notification)."""
        self.notify(message, title=f"{worker.name or 'task'} failed", severity="error", timeout=10)
