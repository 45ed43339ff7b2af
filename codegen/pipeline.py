"""The pipeline analyze -> plan -> generate -> build, as named, timed stages.

Every caller that chains stages goes through `Pipeline`: the one-shot
`maestro verify NF` (codegen/verify.py `prepare`), `maestro bench`, the CLI
commands and the workbench's screens.  One `Pipeline` has

- one progress callback, which receives `StageEvent`s: a stage starting,
  its progress (the analysis's `Progress`, a build's make lines) and its end
  with its duration;
- one cancel token (a `threading.Event`, or a function that says whether
  to stop), checked between stages and handed to the stages that can stop
  part-way (exploration, make); a cancelled pipeline raises `Cancelled`;
- errors that name their stage: a `MaestroError` raised by a stage is
  raised again as `StageError`, "build: make failed ...".

Each stage returns the frozen value of the next link of the chain, which
carries the digest of what it came from: `Analysis` (digest()), the plan
(its `analysis_digest`), `GeneratedProgram` (the plan digest), the build
(build.json: the program's file digest), verdicts (the plan digest).
"""
from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from analyses.errors import MaestroError
from analyses.model import Analysis
from analyses.plan_values import DEFAULT_NIC, Plan

#: The stages, in pipeline order.
STAGES = ("analyze", "plan", "generate", "build")


class Cancelled(MaestroError):
    """The pipeline's cancel token was set; `stage` is where it stopped."""

    def __init__(self, stage: str) -> None:
        super().__init__(f"{stage}: cancelled")
        self.stage = stage


class StageError(MaestroError):
    """A stage failed; the message starts with the stage's name."""

    def __init__(self, stage: str, error: MaestroError) -> None:
        super().__init__(f"{stage}: {error}")
        self.stage, self.error = stage, error


@dataclass(frozen=True)
class StageEvent:
    """What a pipeline reports: kind is start, progress, log or done;
    detail is the analysis's Progress (analyze) or a make line (build)."""

    stage: str
    kind: str
    seconds: float = 0.0
    detail: Any = None


Cancel = threading.Event | Callable[[], bool]


@dataclass
class Pipeline:
    """Runs stages with one progress callback and one cancel token (see the
    module doc); `timings` holds (stage, seconds) of the stages that ended."""

    progress: Callable[[StageEvent], None] | None = None
    cancel: Cancel | None = None
    timings: list[tuple[str, float]] = field(default_factory=list)

    @classmethod
    def logging(cls, log: Callable[[str], None] | None, cancel: Cancel | None = None) -> "Pipeline":
        """A pipeline whose progress is the build's lines (make and the
        compiler) handed to `log`, one string each; None: no progress."""
        return cls(progress=None if log is None else
                   (lambda event: log(event.detail) if event.kind == "log" else None), cancel=cancel)

    # --- running a stage --------------------------------------------------------

    def cancelled(self) -> bool:
        """Whether the cancel token is set."""
        if self.cancel is None:
            return False
        return self.cancel.is_set() if isinstance(self.cancel, threading.Event) else bool(self.cancel())

    def _event(self, stage: str, kind: str, seconds: float = 0.0, detail: Any = None) -> None:
        if self.progress is not None:
            self.progress(StageEvent(stage, kind, seconds, detail))

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Run the body as stage `name`: cancellation checked before and
        after, its time recorded, its MaestroError named after it."""
        if self.cancelled():
            raise Cancelled(name)
        started = time.perf_counter()
        self._event(name, "start")
        try:
            yield
        except (Cancelled, StageError):
            raise
        except MaestroError as exc:
            if self.cancelled():
                raise Cancelled(name) from None
            raise StageError(name, exc) from None
        seconds = time.perf_counter() - started
        self.timings.append((name, seconds))
        self._event(name, "done", seconds)
        if self.cancelled():
            raise Cancelled(name)

    # --- the stages -------------------------------------------------------------

    def analyze(self, nf, *, opt: str = "-O2", defines: Mapping[str, object] | None = None,
                budgets=None, explore_paths: bool = False):
        """The analysis of `nf` (a sample name, .c path or NFSource); with
        explore_paths, (analysis, exploration) so path traffic can be made."""
        from analyses.report import build_report
        from analyses.symbex import Budgets, explore

        with self.stage("analyze"):
            exploration = explore(nf, opt=opt, defines=defines, budgets=budgets or Budgets(),
                                  progress=lambda p: self._event("analyze", "progress", p.elapsed, p),
                                  cancel=self.cancelled)
            if self.cancelled():
                raise Cancelled("analyze")
            analysis = build_report(exploration)
        return (analysis, exploration) if explore_paths else analysis

    def plan(self, analysis: Analysis, *, cores: int, nic: str = DEFAULT_NIC, strategy: str = "auto",
             overrides: Mapping[str, str] | None = None, capacity: str = "keep") -> Plan:
        """The plan of `analysis` (analyses.planner.plan)."""
        from analyses.planner import plan

        with self.stage("plan"):
            return plan(analysis, cores, nic, strategy, dict(overrides or {}), capacity=capacity)

    def generate(self, nf, plan: Plan | Mapping[str, Any], analysis: Analysis, out_dir: Path, *,
                 strategy: str | None = None, lock: str = "maestro",
                 defines: Mapping[str, object] | None = None, replace: bool = True):
        """The program of `plan` written into out_dir (codegen.generator.generate)."""
        from codegen.generator import generate

        doc = plan.to_json() if isinstance(plan, Plan) else plan
        with self.stage("generate"):
            return generate(nf, doc, analysis, out_dir, strategy=strategy, lock=lock, defines=defines,
                            replace=replace)

    def build(self, program, *, sanitize: str = "") -> Path:
        """The program built (codegen.program.build): make's lines reach the
        progress callback; a set cancel token stops make."""
        from codegen.program import build

        event = self.cancel if isinstance(self.cancel, threading.Event) else None
        with self.stage("build"):
            return build(program, log=lambda line: self._event("build", "log", 0.0, line),
                         sanitize=sanitize, cancel=event)
