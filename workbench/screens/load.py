"""Load: pick a sample NF (or open a .c path) and read its source."""
from __future__ import annotations

from rich.syntax import Syntax
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Header, OptionList, Static
from textual.widgets.option_list import Option

from analyses.errors import MaestroError
from analyses.nf_source import NFSource, resolve_nf, sample_names, spec_summary


class LoadScreen(Screen):
    """The sample NFs with their one-line descriptions, and the chosen source."""

    def __init__(self, initial_nf: str | None = None) -> None:
        super().__init__()
        self.initial_nf = initial_nf
        self.nf: NFSource | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        options = [
            Option(f"[b]{name}[/b]\n[dim]{spec_summary(resolve_nf(name))}[/dim]", id=name)
            for name in sample_names()
        ]
        nf_list = OptionList(*options, id="nf-list")
        nf_list.border_title = "Sample NFs"
        yield nf_list
        with Vertical(id="source-pane"):
            yield Static("", id="load-error")
            yield Static("Pick an NF on the left.", id="nf-summary")
            with VerticalScroll():
                yield Static("", id="source")
        yield Footer()

    def on_mount(self) -> None:
        if self.initial_nf:
            # After the list's own first highlight, so the NF asked for wins.
            self.call_after_refresh(self.show_nf, self.initial_nf)

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        self.show_nf(event.option.id)

    def show_nf(self, spec: str) -> None:
        """Show an NF's source with C highlighting, or the error naming it."""
        error = self.query_one("#load-error", Static)
        try:
            nf = resolve_nf(spec)
            text = nf.path.read_text(errors="replace")
        except (MaestroError, OSError) as exc:
            error.update(str(exc))
            return
        error.update("")
        self.nf = nf
        self.query_one("#nf-summary", Static).update(f"[b]{nf.name}[/b]  {nf.path}\n{spec_summary(nf)}")
        self.query_one("#source", Static).update(
            Syntax(text, "c", line_numbers=True, theme="ansi_dark", word_wrap=False)
        )
        self.query_one("#source-pane").border_title = nf.path.name
