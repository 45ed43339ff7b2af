"""Exploration split over forked workers (analyses/forked.py, SUBTREES in
analyses/symbex.py): the same report as one process, tasks shared out and
back in order, a worker's failure named, a cancel reaching the workers."""
from __future__ import annotations

import os
import re
import threading
import time

import pytest

from analyses.forked import WorkerError, can_fork, default_workers, run_split
from analyses.report import analyze
from analyses.symbex import Budgets
from tests.fresh_analysis import fresh_analysis, same_worker

pytestmark = pytest.mark.skipif(not can_fork(), reason="forking is not safe in this test process")

_SYMBOL_NUMBER = re.compile(r"_\d+(_\d+)\b")


def _conditions(analysis) -> list[list[str]]:
    """Each path's condition as its sorted conjuncts, claripy's numbers out
    (their order and numbers vary between processes)."""
    return [sorted(_SYMBOL_NUMBER.sub(r"_\1", p.condition).split(" and ")) for p in analysis.paths]


@same_worker("nat")
def test_two_processes_report_what_one_does():
    if default_workers() < 2:
        pytest.skip("one CPU: the default analysis does not fork")
    two = fresh_analysis("nat")  # default workers
    one = analyze("nat", workers=1)
    assert one.stats.processes == 1 and two.stats.processes == 2
    assert two.digest() == one.digest()
    assert _conditions(two) == _conditions(one)
    assert [[c.function for c in p.calls] for p in two.paths] == [[c.function for c in p.calls] for p in one.paths]
    assert two.stats.warnings == one.stats.warnings and two.stats.complete


def _task(i: int) -> tuple[int, int]:
    time.sleep(0.02)
    return i, os.getpid()


def test_tasks_are_shared_out_and_come_back_in_order():
    results = run_split(12, _task, 3)
    assert [i for i, _ in results] == list(range(12))
    assert len({pid for _, pid in results}) > 1  # children did some
    assert not any(p for p in os.listdir("/proc") if p.isdigit() and _is_zombie_child(int(p)))


def _is_zombie_child(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[0] == "Z" and int(fields[1]) == os.getpid()


def _fails_in_a_child(i: int) -> int:
    if os.getpid() != _PARENT:
        raise ValueError(f"subtree {i} went wrong")
    time.sleep(0.2)  # the parent is slow: the child takes a task
    return i


_PARENT = os.getpid()


def test_a_worker_failure_is_raised_with_its_traceback():
    with pytest.raises(WorkerError, match=r"(?s)analysis worker 1 failed: .*subtree \d+ went wrong"):
        run_split(8, _fails_in_a_child, 2)


def test_one_worker_or_a_thread_runs_in_this_process():
    assert run_split(4, _task, 1) == [(i, os.getpid()) for i in range(4)]
    out = []
    thread = threading.Thread(target=lambda: out.append(run_split(4, _task, 4)))
    thread.start()
    thread.join()
    assert out == [[(i, os.getpid()) for i in range(4)]]


def test_a_cancel_stops_the_workers_too():
    calls = []

    def cancel() -> bool:
        calls.append(1)
        return len(calls) > 400  # after the split: the parent's own subtrees see it

    started = time.perf_counter()
    analysis = analyze("hhh", workers=2, cancel=cancel, budgets=Budgets(seconds=60))
    assert not analysis.stats.complete
    assert any("cancelled" in w for w in analysis.stats.warnings)
    assert time.perf_counter() - started < 30
    assert not any(p for p in os.listdir("/proc") if p.isdigit() and _is_zombie_child(int(p)))


def test_workers_from_the_environment(monkeypatch):
    monkeypatch.setenv("MAESTRO_ANALYSIS_WORKERS", "3")
    assert default_workers() == 3
    monkeypatch.setenv("MAESTRO_ANALYSIS_WORKERS", "many")
    with pytest.raises(Exception, match="MAESTRO_ANALYSIS_WORKERS must be a whole number"):
        default_workers()
