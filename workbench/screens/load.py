"""Step 1, Load: pick a sample NF (or open any .c file) and read its source."""
from __future__ import annotations

from pathlib import Path

from rich.syntax import Syntax
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import ScrollableContainer, Vertical
from textual.content import Content
from textual.message import Message
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option, OptionDoesNotExist

from analyses.errors import MaestroError
from analyses.nf_source import SAMPLE_DIR, NFSource, resolve_nf, sample_names, spec_summary
from workbench.screens.base import StepScreen
from workbench.screens.open_file import OpenFileScreen
from workbench.session import Session


def nf_spec(nf: NFSource) -> str:
    """How the session names an NF: a sample's name, else its absolute path."""
    return nf.name if nf.path.parent == SAMPLE_DIR.resolve() and nf.name in sample_names() else str(nf.path)


def display_path(path: Path) -> str:
    """A path relative to the working folder when under it, else absolute."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


class LoadScreen(StepScreen):
    """The sample NFs with their one-line descriptions, and the chosen source."""

    STEP = "load"
    BINDINGS = [
        Binding("a", "analyze", "Analyze", id="load.analyze",
                tooltip="Work on the highlighted NF: analyze it (Enter does the same)"),
        Binding("o", "open_file", "Open .c", id="load.open",
                tooltip="Open any NF's .c file (path with completion, or a file browser)"),
    ]

    class Chosen(Message):
        """The engineer picked the NF `spec` (sample name or .c path) to work on."""

        def __init__(self, spec: str) -> None:
            super().__init__()
            self.spec = spec

    def __init__(self) -> None:
        super().__init__()
        self.nf: NFSource | None = None  # the NF shown (highlighted), not necessarily chosen
        self.chosen: str | None = None  # the session's NF when last seen

    def compose_body(self) -> ComposeResult:
        options = [
            Option(Content.from_markup("[b]$name[/b]\n[dim]$summary[/dim]", name=name,
                                       summary=spec_summary(resolve_nf(name))), id=name)
            for name in sample_names()
        ]
        nf_list = OptionList(*options, id="nf-list")
        nf_list.border_title = "Sample NFs"
        nf_list.border_subtitle = "Enter: analyze · o: open .c"
        with Vertical(id="load-body"):
            yield nf_list
            with Vertical(id="source-pane"):
                yield Static("", id="load-error")
                yield Static("Pick an NF on the left.", id="nf-summary")
                with ScrollableContainer(id="source-scroll"):
                    yield Static("", id="source")

    def on_mount(self) -> None:
        if self.session.nf:
            # After the list's own first highlight, so the NF asked for wins.
            self.call_after_refresh(self.preview, self.session.nf)

    def show_session(self, session: Session) -> None:
        if session.nf and session.nf != self.chosen:
            self.preview(session.nf)
        self.chosen = session.nf

    # --- showing ------------------------------------------------------------

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if event.option.id:
            self.show_nf(event.option.id)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option.id and self.show_nf(event.option.id):
            self.action_analyze()

    def preview(self, spec: str) -> None:
        """Highlight NF `spec` in the list (adding a file that is not a sample)."""
        try:
            nf = resolve_nf(spec)
        except MaestroError as exc:
            self.show_error(str(exc))
            return
        nf_list = self.query_one("#nf-list", OptionList)
        key = nf_spec(nf)
        if not _has(nf_list, key):
            nf_list.add_option(Option(Content.from_markup(
                "[b]$name[/b] [dim](file)[/dim]\n[dim]$path[/dim]", name=nf.name,
                path=display_path(nf.path)), id=key))
        nf_list.highlighted = nf_list.get_option_index(key)
        self.show_nf(key)

    def show_nf(self, spec: str) -> bool:
        """Show an NF's source with C highlighting, or the error naming it."""
        try:
            nf = resolve_nf(spec)
            text = nf.path.read_text(errors="replace")
        except (MaestroError, OSError) as exc:
            self.show_error(str(exc))
            return False
        self.query_one("#load-error", Static).update("")
        self.nf = nf
        summary = spec_summary(nf) or "(no spec comment)"
        self.query_one("#nf-summary", Static).update(Content.from_markup(
            "[b]$name[/b]  [dim]$path[/dim]\n$summary", name=nf.name,
            path=display_path(nf.path), summary=summary))
        self.query_one("#source", Static).update(
            Syntax(text, "c", line_numbers=True, theme="ansi_dark", word_wrap=False)
        )
        self.query_one("#source-pane").border_title = nf.path.name
        return True

    def show_error(self, message: str) -> None:
        self.query_one("#load-error", Static).update(Content(message))

    # --- actions ------------------------------------------------------------

    def action_analyze(self) -> None:
        """Choose the highlighted NF; the app moves on to analyzing it."""
        if self.nf is None:
            self.notify("Pick an NF first.", severity="warning")
            return
        self.post_message(self.Chosen(nf_spec(self.nf)))

    def action_open_file(self) -> None:
        start = Path.cwd()
        self.app.push_screen(OpenFileScreen(start), self._opened)

    def _opened(self, path: Path | None) -> None:
        if path is not None:
            self.preview(str(path))


def _has(nf_list: OptionList, key: str) -> bool:
    try:
        nf_list.get_option_index(key)
    except OptionDoesNotExist:
        return False
    return True
