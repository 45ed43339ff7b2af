"""Live progress of an analysis: its stage, paths done and active, elapsed time."""
from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

#: Stages the analysis reports (analyses/symbex.py), in order; "contract"
#: is never reported (the compile stage checks it), the screen sets it when
#: the contract check refused a file that compiled.
STAGES = ("compile", "contract", "init", "explore", "done")
#: How a stage reads: symbex reports "done" when the exploration ended, then
#: the report is built from it.
LABELS = {"done": "report"}
_SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


class AnalysisProgress(Widget):
    """`✓ compile ▸ ✓ contract ▸ ✓ init ▸ explore ▸ report` and
    `paths done 12 · active 3 · 1.4 s`.

    state: idle | running | done | failed | cancelled.  A failed or cancelled
    analysis marks the stage it stopped in with ✗ (and nothing after it).
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
        if self.state in ("failed", "cancelled") and reached < 0:
            reached = 0  # stopped before the first report: in compile
        for i, stage in enumerate(STAGES):
            name = LABELS.get(stage, stage)
            if i:
                text.append(" ▸ ", style="dim")
            if i < reached or self.state == "done":
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
