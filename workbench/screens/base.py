"""What every step screen shares: the step bar, the footer, following the
session, and the one handler that turns a failed worker into a message."""
from __future__ import annotations

import traceback
from typing import ClassVar, Protocol, cast

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer
from textual.worker import Worker, WorkerState

from analyses.errors import MaestroError
from workbench.session import Session
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


class StepScreen(Screen):
    """A screen of one step.  Subclasses set STEP, compose their body in
    `compose_body`, redraw in `show_session`, and show failures of their
    workers in `show_failure`."""

    STEP: ClassVar[str] = ""

    def compose(self) -> ComposeResult:
        yield StepBar(self.STEP)
        yield from self.compose_body()
        yield Footer()

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

    def _session_changed(self, session: Session) -> None:
        self.query_one(StepBar).show(session, self.workbench.step_keys())
        self.show_session(session)

    def show_session(self, session: Session) -> None:
        """Redraw what depends on the session (called on every change)."""

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
