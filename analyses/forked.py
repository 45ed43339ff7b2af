"""Work split over forked worker processes, results back in order.

The exploration's subtrees are independent (each a state and what grows
from it), so on a multi-core machine they are explored at once: the
process forks, each child explores its share of the subtrees and sends
its results back pickled through a pipe, and the parent explores its own
share meanwhile.  Forking copies angr's project and states for free; only
the results travel.

Forking is only done where it is safe: from the main thread of a process
with no other thread (a Textual app or a worker thread holds locks a child
could inherit taken), on a system with fork.  Elsewhere, and with one
worker, the same work runs in this process, in the same order, so the
result does not depend on where it ran.
"""
from __future__ import annotations

import os
import pickle
import signal
import threading
import traceback
from typing import Callable, TypeVar

from analyses.errors import MaestroError

R = TypeVar("R")

#: Environment variable: how many processes explore (1: no fork).
WORKERS_VARIABLE = "MAESTRO_ANALYSIS_WORKERS"


class WorkerError(MaestroError):
    """A forked worker failed; the message holds its traceback."""


def default_workers() -> int:
    """$MAESTRO_ANALYSIS_WORKERS, else the CPUs this process may use (at most 4)."""
    text = os.environ.get(WORKERS_VARIABLE, "").strip()
    if text:
        try:
            return max(1, int(text))
        except ValueError:
            raise MaestroError(f"${WORKERS_VARIABLE} must be a whole number, not {text!r}") from None
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(4, cpus))


def can_fork() -> bool:
    """Whether forking is safe here (see the module doc)."""
    return (hasattr(os, "fork") and threading.current_thread() is threading.main_thread()
            and threading.active_count() == 1)


def run_split(count: int, work: Callable[[int], R], workers: int,
              in_child: Callable[[], None] | None = None) -> list[R]:
    """[work(0), ..., work(count - 1)], the tasks shared out as workers
    become free (worker 0 is this process): each takes the next task
    number from a pipe holding them all.  in_child runs first in each child
    (e.g. to silence progress reports).  A child's exception is raised
    here as WorkerError; an exception here (a cancel) kills the children."""
    workers = min(workers, count)
    if workers <= 1 or not can_fork():
        return [work(i) for i in range(count)]
    tasks, feed = os.pipe()
    os.write(feed, b"".join(i.to_bytes(_TASK_BYTES, "little") for i in range(count)))
    os.close(feed)  # readers see the end once every task is taken
    children: list[tuple[int, int, int]] = []  # (worker, pid, read end or -1)
    results: dict[int, R] = {}
    try:
        for worker in range(1, workers):
            read, write = os.pipe()
            pid = os.fork()
            if pid == 0:  # the child: tasks until none is left, then out without cleanup
                os.close(read)
                _child(tasks, work, in_child, write)
            os.close(write)
            children.append((worker, pid, read))
        results.update(_take_tasks(tasks, work))
        while children:
            worker, pid, read = children[0]
            with os.fdopen(read, "rb") as pipe:
                children[0] = (worker, pid, -1)  # closed by the with
                data = pipe.read()
            os.waitpid(pid, 0)
            children.pop(0)
            status, payload = pickle.loads(data) if data else ("error", "the worker died without a result")
            if status == "error":
                raise WorkerError(f"analysis worker {worker} failed: {payload}")
            results.update(payload)
    finally:
        os.close(tasks)
        for _, pid, read in children:
            _kill(pid)
            if read >= 0:
                os.close(read)
    return [results[i] for i in range(count)]


#: A task number in the task pipe (reads of this size from a pipe are whole).
_TASK_BYTES = 4


def _take_tasks(tasks: int, work) -> dict:
    """Task number -> work's result, for each task taken from the pipe
    until none is left."""
    done = {}
    while data := os.read(tasks, _TASK_BYTES):
        i = int.from_bytes(data, "little")
        done[i] = work(i)
    return done


def _child(tasks: int, work, in_child, write: int) -> None:
    """A child's life: tasks until none is left, the pickled results to
    `write`, exit."""
    code = 0
    try:
        if in_child:
            in_child()
        data = pickle.dumps(("ok", _take_tasks(tasks, work)))
    except BaseException:  # noqa: BLE001  (everything goes back to the parent)
        data = pickle.dumps(("error", traceback.format_exc()))
        code = 1
    try:
        with os.fdopen(write, "wb") as pipe:
            pipe.write(data)
    finally:
        os._exit(code)


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


__all__ = ["WORKERS_VARIABLE", "WorkerError", "can_fork", "default_workers", "run_split"]
