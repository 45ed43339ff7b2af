"""Step 1, Load: pick a sample NF (or open any .c file) and read its source."""
from __future__ import annotations

from pathlib import Path

from rich.syntax import Syntax
from textual import events
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
    HOME = "#nf-list"
    #: Below this width the list shows names only (the summary is shown above the source).
    NAMES_ONLY_BELOW = 100
    BINDINGS = [
        Binding("a", "analyze", "Analyze", id="load.analyze",
                tooltip="Work on the highlighted NF: analyze it (Enter does the same)"),
        Binding("o", "open_file", "Open", id="load.open",
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
        self.names_only = False
        self.files: dict[str, NFSource] = {}  # NFs opened from files, by spec

    def compose_body(self) -> ComposeResult:
        nf_list = OptionList(*self._options(), id="nf-list", classes="pane")
        nf_list.border_title = "NFs"
        nf_list.border_subtitle = "Enter: analyze · o: open"
        with Vertical(id="load-body"):
            yield nf_list
            with Vertical(id="source-pane"):
                yield Static("", id="load-error")
                yield Static("Pick an NF on the left.", id="nf-summary")
                with ScrollableContainer(id="source-scroll", classes="pane"):
                    yield Static("", id="source")

    def on_mount(self) -> None:
        if self.session.nf:
            # After the list's own first highlight, so the NF asked for wins.
            self.call_after_refresh(self.preview, self.session.nf)

    def _options(self) -> list[Option]:
        """The samples and the files opened, with their summaries unless
        the list is narrow (names_only)."""
        options = []
        for name in sample_names():
            markup = "[b]$name[/b]" if self.names_only else "[b]$name[/b]\n[dim]$summary[/dim]"
            options.append(Option(Content.from_markup(markup, name=name,
                                                      summary=spec_summary(resolve_nf(name))), id=name))
        for key, nf in self.files.items():
            markup = "[b]$name[/b] [dim](file)[/dim]" + ("" if self.names_only else "\n[dim]$path[/dim]")
            options.append(Option(Content.from_markup(markup, name=nf.name, path=display_path(nf.path)),
                                  id=key))
        return options

    def on_resize(self, event: events.Resize) -> None:
        names_only = event.size.width < self.NAMES_ONLY_BELOW
        if names_only == self.names_only:
            return
        self.names_only = names_only
        nf_list = self.query_one("#nf-list", OptionList)
        highlighted = nf_list.highlighted
        keep = nf_list.get_option_at_index(highlighted).id if highlighted is not None else None
        with self.prevent(OptionList.OptionHighlighted):
            nf_list.clear_options()
            nf_list.add_options(self._options())
            if keep is not None:
                nf_list.highlighted = nf_list.get_option_index(keep)

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
            self.files[key] = nf
            markup = "[b]$name[/b] [dim](file)[/dim]" + ("" if self.names_only else "\n[dim]$path[/dim]")
            nf_list.add_option(Option(Content.from_markup(markup, name=nf.name,
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
        self.query_one("#load-error", Static).display = False
        self.nf = nf
        summary = spec_summary(nf) or "(no spec comment)"
        self.query_one("#nf-summary", Static).update(Content.from_markup(
            "[b]$name[/b]  [dim]$path[/dim]\n$summary", name=nf.name,
            path=display_path(nf.path), summary=summary))
        self.query_one("#source", Static).update(
            Syntax(text, "c", line_numbers=True, theme="ansi_dark", word_wrap=False)
        )
        self.query_one("#source-pane").border_title = nf.path.name
        self.query_one("#source-pane").border_subtitle = "e: edit"
        return True

    def show_error(self, message: str) -> None:
        error = self.query_one("#load-error", Static)
        error.update(Content(message))
        error.display = bool(message)

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
