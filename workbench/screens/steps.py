"""The steps of the flow, in order, and when each applies.

The app makes one mode per step (its screen is in `workbench/app.py`'s
STEP_SCREENS); the step bar, the command palette and the help screen read this
list.  Later stages (generate, build, run, verify) plug in here: a `Step`
whose `blocked` names what is missing until the session has a plan.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from workbench.session import Session


@dataclass(frozen=True)
class Step:
    """One step: `id` (mode name and binding id suffix), `title`, its
    command palette entry (`command`, "{nf}" filled in), default `key`, what it does (`help`), why it does not apply yet (`blocked`
    returns None when it does) and whether its result is in the session."""

    id: str
    title: str
    command: str
    key: str
    help: str
    blocked: Callable[[Session], str | None]
    done: Callable[[Session], bool]

    @property
    def binding_id(self) -> str:
        return f"step.{self.id}"


def _needs_nf(session: Session) -> str | None:
    return None if session.nf else "choose an NF first (Load: Enter or a on an NF)"


def _needs_analysis(session: Session) -> str | None:
    if session.analysis is not None:
        return None
    return "analyze an NF first (Analyze: r)" if session.nf else "choose and analyze an NF first"


STEPS: tuple[Step, ...] = (
    Step("load", "Load", "Load: pick an NF or open a .c file", "1",
         "pick a sample NF or open any .c file; read its source",
         lambda s: None, lambda s: s.nf is not None),
    Step("analyze", "Analyze", "Analyze {nf}: go to the analysis", "2",
         "symbolic execution of nf_process (angr): state objects, keys, relations; "
         "live progress, cancellable",
         _needs_nf, lambda s: s.analysis is not None),
    Step("inspect", "Inspect", "Inspect {nf}'s state objects", "3",
         "the NF's state objects, their accesses per device, relations, the source "
         "lines of the calls, and the packet fields that key each object",
         _needs_analysis, lambda s: s.analysis is not None),
    Step("decide", "Decide", "Plan {nf}: decide shard / replicate / lock", "4",
         "the planner's decision per object (shard / replicate / lock), RSS keys, "
         "z3 proof, load balance; override any decision, strategy, cores, NIC",
         _needs_analysis, lambda s: s.plan is not None),
)

STEP_IDS = tuple(step.id for step in STEPS)


def step(step_id: str) -> Step:
    """The step called `step_id` (KeyError if none)."""
    for s in STEPS:
        if s.id == step_id:
            return s
    raise KeyError(step_id)
