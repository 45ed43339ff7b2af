"""Benchmarks of generated programs: throughput per core, strategy and traffic.

`bench` builds one program per (strategy, core count) and runs each on the
simulated NIC for every traffic profile, looping the trace for `seconds`.
A configuration's throughput is the median of its per-interval totals (the
first interval, warm-up, is left out); speedups divide by the 1-core figure
of the same strategy and traffic measured in the same run.  Strategies:
seq (the reference program, one core), sn, locks-maestro, locks-object,
locks-global, tm.
"""
from __future__ import annotations

import statistics
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from analyses.errors import MaestroError
from analyses.model import Analysis
from analyses.plan_values import DEFAULT_NIC, LOCK_KINDS
from codegen.pipeline import Pipeline
from codegen.program import run
from codegen.traffic import generate as make_traffic

#: Benchmark strategy names -> (program strategy, lock granularity, planner strategy).
STRATEGIES = {
    "seq": ("seq", "maestro", "auto"),
    "sn": ("sn", "maestro", "shared-nothing"),
    "locks": ("locks", "maestro", "locks"),
    **{f"locks-{kind}": ("locks", kind, "locks") for kind in LOCK_KINDS},
    "tm": ("tm", "maestro", "tm"),
}


@dataclass
class BenchRow:
    """One configuration's result (or why it could not run)."""

    strategy: str
    cores: int
    traffic: str
    mpps: float | None = None
    per_core_mpps: list[float] = field(default_factory=list)
    drops: int = 0
    aborts: int = 0
    speedup: float | None = None
    error: str | None = None


def bench(nf: str, analysis: Analysis, *, cores: list[int], strategies: list[str],
          traffic: list[str], seconds: float = 3.0, flows: int = 10000, packets: int = 200000,
          nic: str = DEFAULT_NIC, log: Callable[[str], None] | None = None) -> list[BenchRow]:
    """Run every configuration; see the module doc."""
    unknown = [s for s in strategies if s not in STRATEGIES]
    if unknown:
        raise MaestroError(f"unknown strategies {unknown} (one of {', '.join(STRATEGIES)})")
    traces = {t: make_traffic(t, flows, packets, seed=1) for t in traffic}
    rows: list[BenchRow] = []
    # nf may be a path: only its stem goes into the folder name
    with tempfile.TemporaryDirectory(prefix=f"maestro-bench-{Path(nf).stem}-") as tmp:
        for name in strategies:
            program_strategy, lock, planner_strategy = STRATEGIES[name]
            for n in ([1] if name == "seq" else cores):
                pipeline = Pipeline()
                try:
                    plan = pipeline.plan(analysis, cores=n, nic=nic, strategy=planner_strategy)
                    program = pipeline.generate(nf, plan, analysis, Path(tmp) / f"{name}-{n}",
                                                strategy=program_strategy, lock=lock)
                    pipeline.build(program)
                except MaestroError as exc:
                    rows += [BenchRow(name, n, t, error=str(exc).splitlines()[0]) for t in traffic]
                    continue
                for t in traffic:
                    if log:
                        log(f"{nf}: {name} on {n} core(s), {t} traffic, {seconds:g} s")
                    rows.append(_measure(program, traces[t], name, n, t, seconds))
    _speedups(rows)
    return rows


def _measure(program, trace, name: str, cores: int, traffic: str, seconds: float) -> BenchRow:
    row = BenchRow(name, cores, traffic)
    try:
        result = run(program, packets=trace, seconds=seconds, interval=0.5)
    except MaestroError as exc:
        row.error = str(exc).splitlines()[-1]
        return row
    intervals = result.stats[1:] or result.stats
    if not intervals:
        row.error = "no statistics interval completed"
        return row
    row.mpps = statistics.median(s["mpps"] for s in intervals)
    row.per_core_mpps = [statistics.median(s["lcores"][w]["mpps"] for s in intervals)
                         for w in range(len(intervals[0]["lcores"]))]
    row.drops = result.final.get("drop", 0)
    row.aborts = result.final.get("aborts", 0)
    return row


def _speedups(rows: list[BenchRow]) -> None:
    single = {(r.strategy, r.traffic): r.mpps for r in rows if r.cores == 1 and r.mpps}
    for r in rows:
        base = single.get((r.strategy, r.traffic))
        if r.mpps and base:
            r.speedup = r.mpps / base


def to_json(nf: str, rows: list[BenchRow], **meta: Any) -> dict[str, Any]:
    """The benchmark document."""
    return {"nf": nf, **meta, "results": [r.__dict__ for r in rows]}


def plot(nf: str, rows: list[BenchRow], path: Path) -> None:
    """Throughput vs cores per strategy (one line per strategy and traffic)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for key in sorted({(r.strategy, r.traffic) for r in rows}):
        points = sorted((r.cores, r.mpps) for r in rows if (r.strategy, r.traffic) == key and r.mpps)
        if points:
            ax.plot([p[0] for p in points], [p[1] for p in points], marker="o",
                    label=f"{key[0]} / {key[1]}")
    ax.set_xlabel("cores")
    ax.set_ylabel("Mpps (simulated NIC)")
    ax.set_title(f"{nf}: throughput vs cores")
    ax.legend(fontsize="small")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
