"""The steps of the flow, in order, and when each applies.

The app makes one mode per step (its screen is in `workbench/app.py`'s
STEP_SCREENS); the step bar, the command palette and the help screen read this
list.  Each `Step`'s `blocked` names what is missing until it applies
(Generate needs a plan, Run a generated program).
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
    return "analyze an NF first (Analyze: a)" if session.nf else "choose and analyze an NF first"


def _needs_plan(session: Session) -> str | None:
    if session.plan is not None:
        return None
    return "plan it first (Decide: 4)" if session.analysis is not None else _needs_analysis(session)


def _needs_program(session: Session) -> str | None:
    if session.program is not None:
        return None
    return "generate the program first (Generate: 5)" if session.plan is not None else _needs_plan(session)


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
    Step("generate", "Generate", "Generate {nf}'s parallel program", "5",
         "write the DPDK program of the plan (strategy and lock granularity overridable); "
         "browse its files, highlighted, and what changed since the last generation",
         _needs_plan, lambda s: s.program is not None),
    Step("run", "Run", "Build, run and verify {nf}'s program", "6",
         "build it (live log), run it on the simulated NIC (or a real one with EAL arguments) "
         "with live per-core throughput and drops, check it is equivalent to the sequential NF, "
         "and benchmark the plan on 1..N cores per strategy (a table and a scaling chart)",
         _needs_program, lambda s: bool((s.results.get("run") or {}).get("ok"))),
)

STEP_IDS = tuple(step.id for step in STEPS)


def step(step_id: str) -> Step:
    """The step called `step_id` (KeyError if none)."""
    for s in STEPS:
        if s.id == step_id:
            return s
    raise KeyError(step_id)
