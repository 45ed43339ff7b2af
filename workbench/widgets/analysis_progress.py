"""Live progress of an analysis: its stage, paths done and active, elapsed time."""
from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

#: Stages the analysis reports (analyses/symbex.py), in order.
STAGES = ("compile", "init", "explore", "done")
_SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


class AnalysisProgress(Widget):
    """`✓ compile ▸ ✓ init ▸ explore ▸ done` and `paths done 12 · active 3 · 1.4 s`.

    state: idle | running | done | failed | cancelled.
    """

    DEFAULT_CSS = """
    AnalysisProgress {
        height: 2;
        padding: 0 1;
    }
    """

    state: reactive[str] = reactive("idle")
    stage: reactive[str] = reactive("")
    done: reactive[int] = reactive(0)
    active: reactive[int] = reactive(0)
    elapsed: reactive[float] = reactive(0.0)
    tick: reactive[int] = reactive(0)

    def reset(self) -> None:
        self.state, self.stage, self.done, self.active, self.elapsed = "running", "", 0, 0, 0.0

    def render(self) -> Text:
        text = Text()
        reached = STAGES.index(self.stage) if self.stage in STAGES else -1
        for i, name in enumerate(STAGES):
            if i:
                text.append(" ▸ ", style="dim")
            if i < reached or (name == "done" and self.state == "done"):
                text.append(f"✓ {name}", style="green")
            elif i == reached and self.state == "running":
                text.append(f"{_SPINNER[self.tick % len(_SPINNER)]} {name}", style="bold reverse")
            elif i == reached and self.state in ("failed", "cancelled"):
                text.append(f"✗ {name}", style="bold red")
            else:
                text.append(name, style="dim")
        label = {"idle": "not run", "running": "running", "done": "finished",
                 "failed": "failed", "cancelled": "cancelled"}[self.state]
        text.append(f"   {label}", style="bold" if self.state == "running" else "dim")
        text.append(f"\npaths done {self.done} · active {self.active}")
        if self.state != "idle":
            text.append(f" · {self.elapsed:.1f} s")
        return text
