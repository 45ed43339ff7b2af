"""Benchmarks of generated programs: throughput per core, strategy and traffic.

`bench` builds one program per (strategy, core count) and runs each on the
simulated NIC for every traffic profile, looping the trace for `seconds`.
A configuration's throughput is the median of its per-interval totals (the
first interval, warm-up, is left out); speedups divide by the 1-core figure
of the same strategy and traffic measured in the same run.  Strategies:
seq (the reference program, one core), sn, locks-maestro, locks-object,
locks-global, tm.

Harness: for each program shape (strategy, lock granularity, cores,
devices) a null NF (it forwards every packet, keeps no state) is built and
run the same way on the first traffic profile: its ns per packet per core
is what the runtime and the simulated NIC cost, so each row states its ns
per packet with the harness and without it (the difference), figures
comparable to the sequential reference runner's.  Latency: the median over
the intervals of the p50/p99/p99.9 from injection to TX, overall and per core.

Callers that show results as they come (the workbench's Run screen) pass
`on_row`, called with each row once it is measured, and `cancel`, a
`threading.Event` that stops the benchmark between configurations, a build
(make) or a run (the program gets SIGINT): `bench` then returns the rows
measured before it, whole configurations only.
"""
from __future__ import annotations

import statistics
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from analyses.errors import MaestroError
from analyses.model import Analysis, Stats
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
    #: packets received in the run (aborts / packets: re-runs per packet)
    packets: int = 0
    speedup: float | None = None
    error: str | None = None
    #: median over the intervals of the p50/p99/p999 latency (ns), all cores
    latency_ns: dict[str, float] | None = None
    #: the same per core
    per_core_latency_ns: list[dict[str, float]] = field(default_factory=list)
    #: ns per packet on one core (cores / Mpps), with the harness
    ns_per_packet: float | None = None
    #: the null NF's ns per packet in the same program shape (the harness)
    harness_ns: float | None = None
    #: ns_per_packet - harness_ns: what the NF's own code costs
    nf_ns: float | None = None
    #: the program's state memory (bytes): per core, and in all
    state_bytes_per_core: list[int] = field(default_factory=list)
    state_bytes: int | None = None
    #: with repeats: each run's Mpps, and its speedup over the 1-core run of
    #: the same repeat (the row's figures are the median run's)
    runs_mpps: list[float] = field(default_factory=list)
    speedup_runs: list[float] = field(default_factory=list)


#: The null NF: every packet leaves on another device untouched, no state.
NULL_NF = """/* null -- the harness alone: no state, every packet forwarded (bench). */
#include "nf.h"

bool nf_init(void) { return true; }

int nf_process(uint16_t device, uint8_t *packet, uint16_t packet_length, vigor_time_t now) {
  (void)packet;
  (void)packet_length;
  (void)now;
  return device == 0 ? NF_DEVICES - 1 : 0;
}
"""


def null_analysis(devices: int) -> Analysis:
    """The analysis of NULL_NF with `devices` devices."""
    return Analysis("null", "null.c", devices, [], [], [], [], [], Stats(0, 0.0, 0.0))


def bench(nf: str, analysis: Analysis, *, cores: list[int], strategies: list[str],
          traffic: list[str], seconds: float = 3.0, flows: int = 10000, packets: int = 200000,
          nic: str = DEFAULT_NIC, log: Callable[[str], None] | None = None,
          harness: bool = True, defines: dict[str, object] | None = None,
          repeat: int = 1, harness_cache: dict[tuple, float | None] | None = None,
          plan_strategy: str | None = None, overrides: Mapping[str, str] | None = None,
          capacity: str = "keep", on_row: Callable[[BenchRow], None] | None = None,
          cancel: threading.Event | None = None) -> list[BenchRow]:
    """Run every configuration; see the module doc.  harness: also measure
    the null NF in each program shape (harness_ns, nf_ns).  repeat: run each
    configuration that many times (the row is the median run; runs_mpps and
    speedup_runs give the spread).  harness_cache: harness figures by program
    shape, shared between calls (a benchmark of several NFs measures each
    shape once).

    plan_strategy, overrides, capacity: the planner's settings for every
    configuration but seq (default: each strategy's own planner strategy,
    STRATEGIES, no overrides), so a caller can measure its own plan (the
    workbench's session) under several program strategies.  on_row: called
    with each row as soon as it is measured, with its harness figures and
    its speedup when the 1-core row came first (cores in rising order).
    cancel: set, the benchmark stops and returns the rows measured so far
    (the configuration it was on is left out)."""
    unknown = [s for s in strategies if s not in STRATEGIES]
    if unknown:
        raise MaestroError(f"unknown strategies {unknown} (one of {', '.join(STRATEGIES)})")
    traces = {t: make_traffic(t, flows, packets, seed=1) for t in traffic}
    rows: list[BenchRow] = []
    # nf may be a path: only its stem goes into the folder name
    stopped = (lambda: cancel.is_set()) if cancel is not None else (lambda: False)
    with tempfile.TemporaryDirectory(prefix=f"maestro-bench-{Path(nf).stem}-") as tmp:
        for name in strategies:
            program_strategy, lock, planner_strategy = STRATEGIES[name]
            for n in ([1] if name == "seq" else cores):
                if stopped():
                    break
                pipeline = Pipeline(cancel=cancel)
                try:
                    plan = pipeline.plan(analysis, cores=n, nic=nic, overrides=overrides, capacity=capacity,
                                         strategy=plan_strategy if plan_strategy and name != "seq"
                                         else planner_strategy)
                    program = pipeline.generate(nf, plan, analysis, Path(tmp) / f"{name}-{n}",
                                                strategy=program_strategy, lock=lock, defines=defines)
                    pipeline.build(program)
                except MaestroError as exc:
                    if stopped():
                        break
                    failed = [BenchRow(name, n, t, error=str(exc).splitlines()[0]) for t in traffic]
                    rows += failed
                    for row in failed if on_row else ():
                        on_row(row)
                    continue
                measured = []
                for t in traffic:
                    if log:
                        log(f"{nf}: {name} on {n} core(s), {t} traffic, {seconds:g} s")
                    runs = [_measure(program, traces[t], name, n, t, seconds, cancel)
                            for _ in range(max(1, repeat))]
                    ranked = sorted(runs, key=lambda r: r.mpps or 0.0)
                    row = ranked[(len(ranked) - 1) // 2]
                    row.runs_mpps = [r.mpps or 0.0 for r in runs]
                    measured.append(row)
                if harness and traffic and not stopped():
                    shape = (program_strategy, lock, n, analysis.devices, nic, traffic[0], flows, packets)
                    cache = harness_cache if harness_cache is not None else {}
                    if shape not in cache:
                        cost = _harness(Path(tmp) / f"null-{name}-{n}", analysis.devices, n, nic,
                                        planner_strategy, program_strategy, lock,
                                        traces[traffic[0]], seconds, log, cancel)
                        if stopped():
                            break
                        cache[shape] = cost
                    cost = cache[shape]
                    for row in measured:
                        row.harness_ns = cost
                        if row.ns_per_packet is not None and cost is not None:
                            row.nf_ns = row.ns_per_packet - cost
                if stopped():
                    break
                rows += measured
                if on_row:
                    _speedups(rows)
                    for row in measured:
                        on_row(row)
    _speedups(rows)
    return rows


def _harness(folder: Path, devices: int, cores: int, nic: str, planner_strategy: str,
             program_strategy: str, lock: str, trace, seconds: float,
             log: Callable[[str], None] | None, cancel: threading.Event | None = None) -> float | None:
    """The null NF's ns per packet per core in this program shape (None when
    it cannot be measured)."""
    source = folder.parent / "null" / "null.c"
    source.parent.mkdir(parents=True, exist_ok=True)
    source.write_text(NULL_NF)
    analysis = null_analysis(devices)
    try:
        pipeline = Pipeline(cancel=cancel)
        plan = pipeline.plan(analysis, cores=cores, nic=nic, strategy=planner_strategy)
        program = pipeline.generate(source, plan, analysis, folder, strategy=program_strategy, lock=lock,
                                    defines={"NF_DEVICES": devices} if devices != 2 else None)
        pipeline.build(program)
    except MaestroError:
        return None
    if log:
        log(f"harness: the null NF, {program_strategy} on {cores} core(s), {seconds:g} s")
    row = _measure(program, trace, "null", cores, "", seconds, cancel)
    return row.ns_per_packet


def _measure(program, trace, name: str, cores: int, traffic: str, seconds: float,
             cancel: threading.Event | None = None) -> BenchRow:
    row = BenchRow(name, cores, traffic)
    try:
        result = run(program, packets=trace, seconds=seconds, interval=0.5, cancel=cancel)
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
    row.packets = result.final.get("rx", 0)
    row.ns_per_packet = 1e3 * cores / row.mpps if row.mpps else None
    row.latency_ns = _median_latency([s.get("latency_ns") for s in intervals])
    row.per_core_latency_ns = [_median_latency([s["lcores"][w].get("latency_ns") for s in intervals]) or {}
                               for w in range(len(intervals[0]["lcores"]))]
    state = result.final.get("state") or {}
    row.state_bytes_per_core = list(state.get("per_core") or [])
    row.state_bytes = state.get("bytes")
    return row


def _median_latency(values: list[dict[str, Any] | None]) -> dict[str, float] | None:
    """Per percentile, the median over the intervals that sent packets."""
    values = [v for v in values if v]
    if not values:
        return None
    return {k: statistics.median(float(v[k]) for v in values) for k in ("p50", "p99", "p999")}


def aborts_per_packet(row: BenchRow) -> float | None:
    """Re-runs (read to write mode, TM aborts) per packet received."""
    return row.aborts / row.packets if row.packets else None


def _speedups(rows: list[BenchRow]) -> None:
    single = {(r.strategy, r.traffic): r for r in rows if r.cores == 1 and r.mpps}
    for r in rows:
        base = single.get((r.strategy, r.traffic))
        if r.mpps and base:
            r.speedup = r.mpps / base.mpps
            r.speedup_runs = [m / b for m, b in zip(r.runs_mpps, base.runs_mpps) if m and b]


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
