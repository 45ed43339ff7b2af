"""The one-line bar on top of every step: the NF, and the steps of the flow."""
from __future__ import annotations

from typing import Mapping

from textual.content import Content
from textual.widgets import Static

from workbench.screens.steps import STEPS
from workbench.session import Session


class StepBar(Static):
    """`maestro · fw │ 1 Load ✓ › 2 Analyze ✓ › 3 Inspect › 4 Decide`.

    The current step is highlighted, steps that do not apply yet are dimmed,
    finished ones ticked; clicking a step runs the app's `goto` action.
    """

    DEFAULT_CSS = """
    StepBar {
        height: 1;
        width: 1fr;
        background: $panel;
        color: $text;
        padding: 0 1;
    }
    """

    def __init__(self, current: str, *, id: str | None = "step-bar") -> None:
        super().__init__("", id=id)
        self.current = current

    def show(self, session: Session, keys: Mapping[str, str]) -> None:
        """Redraw for `session`; keys: step id -> key shown before its title."""
        parts = [Content.from_markup("[b]maestro[/b]")]
        if session.nf:
            parts.append(Content.from_markup(" · [b $accent]$nf[/]", nf=_short(session.nf)))
        parts.append(Content("  │ "))
        for i, step in enumerate(STEPS):
            if i:
                parts.append(Content.from_markup("[dim] › [/dim]"))
            blocked = step.blocked(session)
            tick = " ✓" if step.done(session) and step.id != self.current else ""
            if step.id == self.current:
                style = "reverse b"
            elif blocked:
                style = "dim"
            else:
                style = ""
            label = f"{keys.get(step.id, step.key)} {step.title}{tick}"
            markup = f"[{style} @click=app.goto('{step.id}')]$label[/]" if style else \
                     f"[@click=app.goto('{step.id}')]$label[/]"
            parts.append(Content.from_markup(markup, label=label))
        self.update(Content("").join(parts))


def _short(spec: str) -> str:
    """A sample's name, or a path's file name."""
    return spec.rsplit("/", 1)[-1]
