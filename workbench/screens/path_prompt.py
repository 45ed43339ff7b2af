"""Ask for a file path (saving or opening a session), with completion."""
from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label

from workbench.widgets.path_suggester import PathSuggester


class PathPrompt(ModalScreen[str | None]):
    """Returns the path typed (Enter), or None (Escape)."""

    BINDINGS = [
        Binding("escape", "dismiss(None)", "Cancel", id="prompt.cancel", tooltip="Close without a path"),
    ]

    def __init__(self, title: str, initial: str = "", suffixes: tuple[str, ...] = (".json",)) -> None:
        super().__init__()
        self.title_text = title
        self.initial = initial
        self.suffixes = suffixes

    def compose(self) -> ComposeResult:
        with Vertical(id="prompt-dialog"):
            yield Label(self.title_text, id="prompt-title")
            yield Input(self.initial, suggester=PathSuggester(self.suffixes), id="prompt-path")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value.strip() or None)
