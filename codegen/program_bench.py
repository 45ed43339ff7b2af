"""Benchmark of the generated programs for every sample NF (simulated NIC).

    python -m codegen.program_bench [--seconds 2] [--nf fw ...]

Part 1, every NF: the seq program on one core and the shared-nothing (or,
for NFs whose plan locks, the plan's) program on 1 and 2 cores, uniform
traffic: per-core Mpps vs seq, and the 2-core/1-core speedup.
Part 2, fw, nat, pol: locks (maestro, object, global) and tm on 1 and 2
cores with uniform, Zipf and churn traffic (churn: new flows all the time,
the parallel-unfriendly case).  Prints tables; writes
codegen/bench_results/programs.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

from rich.console import Console
from rich.table import Table

from analyses.model import Analysis
from analyses.nf_source import sample_names
from codegen.bench import bench

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "analysis"
OUT = Path(__file__).parent / "bench_results" / "programs.json"
LOCKED = ("bridge", "lb")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m codegen.program_bench")
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--nf", action="append")
    parser.add_argument("--json", type=Path, default=OUT)
    parser.add_argument("--skip-locks", action="store_true")
    args = parser.parse_args(argv)
    console = Console()
    log = lambda text: console.print(f"[dim]{text}[/]")  # noqa: E731
    doc = {"machine": platform.node(), "cpus": os.cpu_count(), "seconds": args.seconds,
           "scaling": {}, "locks": {}}
    table = Table(title="seq vs parallel, uniform traffic (median Mpps of 0.5 s intervals)")
    for column in ("NF", "program", "seq 1 core", "1 core", "per-core vs seq", "2 cores",
                   "per core (2)", "speedup 2/1"):
        table.add_column(column, justify="left" if column in ("NF", "program") else "right")
    for nf in args.nf or sample_names():
        analysis = Analysis.load(FIXTURES / f"{nf}.json")
        strategy = "locks" if nf in LOCKED else "sn"
        rows = bench(nf, analysis, cores=[1, 2], strategies=["seq", strategy],
                     traffic=["uniform"], seconds=args.seconds, log=log)
        doc["scaling"][nf] = [r.__dict__ for r in rows]
        seq = next(r for r in rows if r.strategy == "seq")
        one = next(r for r in rows if r.strategy == strategy and r.cores == 1)
        two = next(r for r in rows if r.strategy == strategy and r.cores == 2)
        ratio = one.mpps / seq.mpps if one.mpps and seq.mpps else None
        table.add_row(nf, strategy, _f(seq.mpps), _f(one.mpps), _f(ratio, "{:.2f}"),
                      _f(two.mpps), " ".join(f"{m:.2f}" for m in two.per_core_mpps),
                      _f(two.speedup, "{:.2f}x"))
    console.print(table)
    if not args.skip_locks:
        locks = Table(title="lock schemes and tm (median Mpps; speedup 2/1; re-runs)")
        for column in ("NF", "strategy", "traffic", "1 core", "2 cores", "speedup", "aborts (2)", "note"):
            locks.add_column(column)
        for nf in ("fw", "nat", "pol"):
            analysis = Analysis.load(FIXTURES / f"{nf}.json")
            rows = bench(nf, analysis, cores=[1, 2],
                         strategies=["locks-maestro", "locks-object", "locks-global", "tm"],
                         traffic=["uniform", "zipf", "churn"], seconds=args.seconds, log=log)
            doc["locks"][nf] = [r.__dict__ for r in rows]
            for r2 in (r for r in rows if r.cores == 2):
                r1 = next(r for r in rows if (r.strategy, r.traffic, r.cores) == (r2.strategy, r2.traffic, 1))
                locks.add_row(nf, r2.strategy, r2.traffic, _f(r1.mpps), _f(r2.mpps),
                              _f(r2.speedup, "{:.2f}x"), str(r2.aborts), (r2.error or "")[:40])
        console.print(locks)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(doc, indent=2))
    console.print(f"wrote {args.json}")
    return 0


def _f(value, fmt="{:.2f}"):
    return fmt.format(value) if value else "-"


if __name__ == "__main__":
    raise SystemExit(main())
