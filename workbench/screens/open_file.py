"""Open any NF: a path input with completion, and a browser of .c files."""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

from textual.app import ComposeResult
from textual.binding import Binding
from textual.content import Content
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DirectoryTree, Input, Label, Static

from workbench.widgets.path_suggester import PathSuggester


class CSourceTree(DirectoryTree):
    """A directory tree showing folders and .c files only (no hidden entries)."""

    def filter_paths(self, paths: Iterable[Path]) -> Iterable[Path]:
        return [p for p in paths if not p.name.startswith(".") and (p.is_dir() or p.suffix == ".c")]


class OpenFileScreen(ModalScreen[Path | None]):
    """Returns the chosen .c file, or None when dismissed."""

    BINDINGS = [
        Binding("escape", "dismiss(None)", "Close", id="open.close", tooltip="Close without opening"),
    ]

    def __init__(self, root: Path | None = None) -> None:
        super().__init__()
        self.root = root or Path.cwd()

    def compose(self) -> ComposeResult:
        with Vertical(id="open-dialog"):
            yield Label("Open an NF (.c): type a path (→ completes) or pick it below", id="open-title")
            yield Input(placeholder="path/to/nf.c", suggester=PathSuggester(), id="open-path")
            yield Static("", id="open-error")
            yield CSourceTree(self.root, id="open-tree")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        path = Path(event.value).expanduser()
        if path.is_dir():
            self.query_one(CSourceTree).path = path
        elif path.is_file() and path.suffix == ".c":
            self.dismiss(path)
        else:
            self.query_one("#open-error", Static).update(Content(f"{event.value}: not a .c file or a folder"))

    def on_directory_tree_file_selected(self, event: DirectoryTree.FileSelected) -> None:
        event.stop()
        self.dismiss(event.path)
