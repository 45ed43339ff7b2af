"""Help (F1 or ?): the flow, step by step, and every key with what it does."""
from __future__ import annotations

from typing import Iterable, Mapping

from rich.table import Table
from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from workbench.screens.steps import STEPS

#: How the keys work, everywhere (README.md, "Keys", says the same).
KEY_SCHEME = (
    ("1 … 6", "go to a step (a step that needs an earlier one says which)"),
    ("Esc", "leave the text field you are in; else stop what runs on the screen (analysis, build, "
            "run, verify, bench); else back one step"),
    ("Tab", "next field or pane (shift+Tab: previous); the focused one is outlined"),
    ("Enter", "in a text field: the screen's main action (analyze, plan, generate, run, verify or bench)"),
    ("ctrl+p", "the command palette: what applies now"),
    ("ctrl+s / ctrl+o", "save the session (~/.local/share/maestro/sessions/ by default) / open one"),
    ("e", "the NF in $EDITOR; analyzed again when it changed"),
    ("F1 / ?", "this help"),
    ("q", "quit (asks first when the session has unsaved work)"),
    ("letters", "one meaning everywhere: a analyze · o open · s shard · c replicate (copy per core) · "
                "l lock · u undo an override · x explain · g generate · d diff · b build · r run · "
                "v verify · m bench · w the run's or the bench's view · f fields of one device"),
)


def binding_rows(app: App, bindings: Iterable[BindingType],
                 keymap: Mapping[str, str]) -> list[tuple[str, str, str, str]]:
    """(keys as shown, description, binding id, tooltip) of bindings, the keymap applied."""
    rows: dict[tuple[str, str], list[str]] = {}
    tips: dict[tuple[str, str], str] = {}
    ids: dict[tuple[str, str], str] = {}
    for binding in Binding.make_bindings(bindings):
        keys = [k.strip() for k in (keymap.get(binding.id, binding.key) if binding.id else binding.key).split(",")]
        row = (binding.action, binding.description or binding.action)
        shown = rows.setdefault(row, [])
        # The keys themselves, not a footer's combined display ("+/-"), so no key shows twice.
        shown += [d for k in keys if (d := app.get_key_display(binding.with_key(k, None))) not in shown]
        tips.setdefault(row, binding.tooltip or "")
        ids.setdefault(row, binding.id or "")
    return [(" / ".join(keys), row[1], ids[row], tips[row]) for row, keys in rows.items()]


def help_text(step_keys: Mapping[str, str],
              sections: list[tuple[str, list[tuple[str, str, str, str]]]], keymap_note: str) -> Table:
    """The flow and the keys as one table-of-tables."""
    outer = Table.grid(padding=(0, 0))
    outer.add_column()
    outer.add_row(Text("The flow", style="bold underline"))
    flow = Table(box=None, show_header=False, padding=(0, 1))
    flow.add_column(style="bold", no_wrap=True)
    flow.add_column()
    for step in STEPS:
        flow.add_row(f"{step_keys.get(step.id, step.key)} {step.title}", step.help)
    outer.add_row(flow)
    outer.add_row(Text("\nKeys", style="bold underline"))
    scheme = Table(box=None, show_header=False, padding=(0, 1))
    scheme.add_column(style="bold cyan", no_wrap=True)
    scheme.add_column()
    for keys, what in KEY_SCHEME:
        scheme.add_row(keys, what)
    outer.add_row(scheme)
    for title, rows in sections:
        if not rows:
            continue
        outer.add_row(Text(f"\n{title}", style="bold underline"))
        keys = Table(box=None, show_header=False, padding=(0, 1))
        keys.add_column(style="bold cyan", no_wrap=True, min_width=10)
        keys.add_column(no_wrap=True)
        keys.add_column(style="green", no_wrap=True)
        keys.add_column(style="dim", ratio=1)
        for row in rows:
            keys.add_row(*row)
        outer.add_row(keys)
    outer.add_row(Text(f"\n{keymap_note}", style="dim"))
    return outer


class HelpScreen(ModalScreen[None]):
    """Shows `help_text`; Escape, q or F1 closes it."""

    BINDINGS = [
        Binding("escape,q,f1", "dismiss(None)", "Close", id="help.close", tooltip="Close the help"),
    ]

    def __init__(self, body: Table) -> None:
        super().__init__()
        self.body = body

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help") as scroll:
            scroll.border_title = "maestro workbench: help"
            scroll.border_subtitle = "Esc: close"
            yield Static(self.body, id="help-body")
