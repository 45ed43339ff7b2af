"""Modals: a long text (the plan's explanation), scrollable; a yes/no question."""
from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static


class TextModal(ModalScreen[None]):
    """`title` and `text`; Escape or q closes it."""

    BINDINGS = [
        Binding("escape,q", "dismiss(None)", "Close", id="modal.close", tooltip="Close this window"),
    ]

    def __init__(self, title: str, text: Text | str) -> None:
        super().__init__()
        self.title_text = title
        self.body = text

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="text-modal") as scroll:
            scroll.border_title = self.title_text
            scroll.border_subtitle = "Esc: close"
            yield Static(self.body if isinstance(self.body, Text) else Text(self.body), id="text-modal-body")


class ConfirmModal(ModalScreen[bool]):
    """A yes/no question: y or Enter answers True, n or Escape False."""

    BINDINGS = [
        Binding("y,enter", "dismiss(True)", "Yes", id="confirm.yes", tooltip="Yes, go ahead"),
        Binding("n,escape", "dismiss(False)", "No", id="confirm.no", tooltip="No, do nothing"),
    ]

    def __init__(self, title: str, question: str) -> None:
        super().__init__()
        self.title_text = title
        self.question = question

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="confirm-modal") as scroll:
            scroll.border_title = self.title_text
            scroll.border_subtitle = "y: yes   n: no"
            yield Static(Text(self.question), id="text-modal-body")


class UnsavedModal(ModalScreen[str | None]):
    """Unsaved work: s saves it first ("save"), d discards it ("discard"),
    Escape or n stays (None)."""

    BINDINGS = [
        Binding("s,enter", "dismiss('save')", "Save first", id="unsaved.save", tooltip="Save the session, then go on"),
        Binding("d", "dismiss('discard')", "Discard", id="unsaved.discard", tooltip="Go on without saving"),
        Binding("n,escape", "dismiss(None)", "Stay", id="unsaved.stay", tooltip="Do nothing"),
    ]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="unsaved-modal") as scroll:
            scroll.border_title = "Unsaved session"
            scroll.border_subtitle = "s: save first   d: discard   esc: stay"
            yield Static(Text(self.question), id="text-modal-body")
