"""Snapshots of the main screens at 100x30, from the saved analyses (no
timing or machine-specific path is shown).  Update with
`pytest tests/test_tui_snapshots.py --snapshot-update` and look at the SVGs."""
import dataclasses
import re
from pathlib import Path

import pytest

from analyses import planner
from analyses.model import Analysis
from workbench.app import Workbench
from workbench.session import PlanSettings, Session

FIXTURES = Path(__file__).parent / "fixtures" / "analysis"
SIZE = (100, 30)


def fixture(name: str) -> Analysis:
    return Analysis.load(FIXTURES / f"{name}.json")


@pytest.fixture
def steady_planner(monkeypatch):
    """The planner with its proof's seconds fixed (they vary run to run)."""
    real = planner.plan

    def plan(*args, **kwargs):
        result = real(*args, **kwargs)
        return dataclasses.replace(
            result, proof=dataclasses.replace(result.proof, seconds=0.01),
            synthesis=dataclasses.replace(result.synthesis, seconds=0.01),
            explanation=re.sub(r"\d+\.\d+ s\)", "0.01 s)", result.explanation))

    monkeypatch.setattr(planner, "plan", plan)


async def settle(pilot) -> None:
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    await pilot.pause()


def test_load_screen(snap_compare):
    assert snap_compare(Workbench("fw", keymap_path=None), terminal_size=SIZE)


def test_inspect_screen(snap_compare):
    session = Session(nf="fw", analysis=fixture("fw"), step="inspect")
    assert snap_compare(Workbench(session=session, keymap_path=None), terminal_size=SIZE)


def test_inspect_screen_one_device(snap_compare):
    session = Session(nf="nat", analysis=fixture("nat"), step="inspect")
    assert snap_compare(Workbench(session=session, keymap_path=None), terminal_size=SIZE, press=["d"])


def test_decide_screen_sharded(snap_compare, steady_planner):
    session = Session(nf="fw", analysis=fixture("fw"), step="decide", settings=PlanSettings(cores=4))
    assert snap_compare(Workbench(session=session, keymap_path=None), terminal_size=SIZE,
                        run_before=settle)


def test_decide_screen_locked(snap_compare, steady_planner):
    session = Session(nf="bridge", analysis=fixture("bridge"), step="decide",
                      settings=PlanSettings(cores=2))
    assert snap_compare(Workbench(session=session, keymap_path=None), terminal_size=SIZE,
                        run_before=settle)


def test_generate_screen(snap_compare, steady_planner, tmp_path, monkeypatch):
    """The files of fw's program and config.c, generated into a fixed
    relative folder (build/workbench/fw-sn under a temporary working folder)."""
    monkeypatch.chdir(tmp_path)
    analysis = fixture("fw")
    session = Session(nf="fw", analysis=analysis, settings=PlanSettings(cores=2), step="generate",
                      plan=planner.plan(analysis, 2, "e810", "auto", {}))

    async def generate(pilot) -> None:
        await pilot.press("g")
        await pilot.app.workers.wait_for_complete()
        for _ in range(50):
            if pilot.app.session.program is not None:
                break
            await pilot.pause(0.05)
        await settle(pilot)

    assert snap_compare(Workbench(session=session, keymap_path=None), terminal_size=SIZE,
                        run_before=generate)
