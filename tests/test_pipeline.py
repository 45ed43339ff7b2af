"""The pipeline: named, timed stages with one progress callback and one
cancel token; errors carry the stage's name."""
import threading
from pathlib import Path

import pytest

from analyses.model import Analysis
from codegen.pipeline import Cancelled, Pipeline, StageError

FIXTURES = Path(__file__).parent / "fixtures" / "analysis"


def fixture(name: str) -> Analysis:
    return Analysis.load(FIXTURES / f"{name}.json")


def test_stages_report_their_start_end_and_time(tmp_path):
    events = []
    pipeline = Pipeline(progress=events.append)
    plan = pipeline.plan(fixture("fw"), cores=2)
    program = pipeline.generate("fw", plan, fixture("fw"), tmp_path / "fw")
    assert program.digest and (tmp_path / "fw" / "config.c").is_file()
    assert [(e.stage, e.kind) for e in events] == [("plan", "start"), ("plan", "done"),
                                                  ("generate", "start"), ("generate", "done")]
    assert [name for name, _ in pipeline.timings] == ["plan", "generate"]
    assert all(seconds >= 0 for _, seconds in pipeline.timings)


def test_a_failing_stage_is_named_in_its_error(tmp_path):
    plan = Pipeline().plan(fixture("fw"), cores=2)
    with pytest.raises(StageError, match=r"^generate: the plan is for the NF 'fw'") as caught:
        Pipeline().generate("nat", plan, fixture("nat"), tmp_path / "nat")
    assert caught.value.stage == "generate"
    with pytest.raises(StageError, match=r"^plan: cores must be in 1\.\."):
        Pipeline().plan(fixture("fw"), cores=100000)


def test_one_cancel_token_stops_between_and_inside_stages(tmp_path):
    stop = threading.Event()
    stop.set()
    with pytest.raises(Cancelled, match="^plan: cancelled"):
        Pipeline(cancel=stop).plan(fixture("fw"), cores=2)

    # Set while the exploration runs: it stops there, and nothing is returned.
    stop = threading.Event()
    seen = []

    def progress(event):
        seen.append(event)
        if event.kind == "progress" and event.detail.stage == "explore":
            stop.set()

    with pytest.raises(Cancelled) as caught:
        Pipeline(progress=progress, cancel=stop).analyze("fw")
    assert caught.value.stage == "analyze"
    assert seen[0].kind == "start" and not any(e.kind == "done" for e in seen)
