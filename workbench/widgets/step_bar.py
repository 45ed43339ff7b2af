"""The one-line bar on top of every step: the NF, and the steps of the flow."""
from __future__ import annotations

from typing import Mapping

from textual import events
from textual.content import Content
from textual.widgets import Static

from workbench.screens.steps import STEPS
from workbench.session import Session


class StepBar(Static):
    """`maestro · fw │ 1 Load ✓ › 2 Analyze ✓ › 3 Inspect › 4 Decide`.

    The current step is highlighted, steps that do not apply yet are dimmed,
    finished ones ticked; clicking a step runs the app's `goto` action.
    A narrow bar drops the "maestro" label, then the separators, then the
    titles of the steps other than the current one (`1✓ 2✓ 3 Inspect 4 5 6`):
    every step stays on screen.
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
        self.shown: tuple[Session, Mapping[str, str]] | None = None

    def show(self, session: Session, keys: Mapping[str, str]) -> None:
        """Redraw for `session`; keys: step id -> key shown before its title."""
        self.shown = (session, keys)
        width = self.content_region.width or self.app.size.width - 2
        for level in range(4):
            content = self.line(session, keys, level)
            if content.cell_length <= width:
                break
        self.update(content)

    def on_resize(self, event: events.Resize) -> None:
        if self.shown is not None:
            self.show(*self.shown)

    def line(self, session: Session, keys: Mapping[str, str], level: int = 0) -> Content:
        """The bar; each level is shorter: 1 without "maestro", 2 without
        separators, 3 with only the current step's title."""
        parts = [] if level >= 1 else [Content.from_markup("[b]maestro[/b] · ")]
        if session.nf:
            parts.append(Content.from_markup("[b $accent]$nf[/]", nf=_short(session.nf)))
        parts.append(Content(" │ " if level >= 2 else "  │ "))
        for i, step in enumerate(STEPS):
            if i:
                parts.append(Content(" ") if level >= 2 else Content.from_markup("[dim] › [/dim]"))
            blocked = step.blocked(session)
            done = step.done(session) and step.id != self.current
            if step.id == self.current:
                style = "reverse b"
            elif blocked:
                style = "dim"
            else:
                style = ""
            key = keys.get(step.id, step.key)
            if level >= 3 and step.id != self.current:
                label = f"{key}{'✓' if done else ''}"
            else:
                label = f"{key} {step.title}{' ✓' if done else ''}"
            markup = f"[{style} @click=app.goto('{step.id}')]$label[/]" if style else \
                     f"[@click=app.goto('{step.id}')]$label[/]"
            parts.append(Content.from_markup(markup, label=label))
        return Content("").join(parts)


def _short(spec: str) -> str:
    """A sample's name, or a path's file name."""
    return spec.rsplit("/", 1)[-1]
