"""Benchmark: analysis time, paths and peak memory of every sample NF and
of the foreign-style corpus (tests/corpus).

    python -m analyses.analysis_bench [--nf fw ...] [--repeat N] [--json FILE]

Each NF is analyzed in a fresh process, so its peak RSS is its own (angr's
import included; with forked explorers, the first process's); seconds are
the whole analysis, exploration and report, the median of --repeat runs
(these 2-core VMs vary by a third from minute to minute).  `processes`:
how many explored at once (analyses/forked.py).
Prints a table and writes JSON (default build/bench/analysis.json).
Targets on a 2-core machine: at most 10 s and 1 GB per sample NF, 30 s per
corpus NF.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from analyses.nf_source import SAMPLE_DIR, sample_names

SECONDS_TARGET = 10.0
CORPUS_SECONDS_TARGET = 30.0
MEMORY_TARGET_MB = 1024.0
#: The foreign-style NFs of the tests.
CORPUS_DIR = SAMPLE_DIR.parent / "tests" / "corpus"


def _one(nf: str) -> None:
    import time

    from analyses.report import analyze

    started = time.perf_counter()
    stats = analyze(nf).stats
    print(json.dumps({"nf": nf, "paths": stats.paths, "seconds": round(time.perf_counter() - started, 2),
                      "peak_rss_mb": stats.peak_rss_mb, "complete": stats.complete,
                      "processes": stats.processes}))


def main(argv: list[str] | None = None) -> int:
    from analyses.locations import build_root

    parser = argparse.ArgumentParser(prog="python -m analyses.analysis_bench")
    parser.add_argument("--nf", action="append", help="NF to analyze (default: every sample)")
    parser.add_argument("--json", type=Path, default=build_root() / "bench" / "analysis.json")
    parser.add_argument("--repeat", type=int, default=3, help="runs per NF (the median is shown)")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        _one(args.one)
        return 0
    rows = []
    names = args.nf or [*sample_names(), *(str(p) for p in sorted(CORPUS_DIR.glob("*.c")))]
    for nf in names:
        runs = []
        for _ in range(max(1, args.repeat)):
            out = subprocess.run([sys.executable, "-m", "analyses.analysis_bench", "--one", nf],
                                 capture_output=True, text=True, check=True).stdout
            runs.append(json.loads(out.strip().splitlines()[-1]))
        row = {**runs[0], "seconds": statistics.median(r["seconds"] for r in runs),
               "runs_s": [r["seconds"] for r in runs], "peak_rss_mb": max(r["peak_rss_mb"] for r in runs)}
        row["target_s"] = CORPUS_SECONDS_TARGET if nf.endswith(".c") else SECONDS_TARGET
        rows.append(row)
    table = Table(title="analysis time per NF (one process each; corpus NFs are paths)")
    for column in ("NF", "paths", "seconds (median)", "runs", "processes", "peak RSS MB", "complete",
                   "within target"):
        table.add_column(column, justify="left" if column == "NF" else "right")
    for row in rows:
        ok = row["seconds"] <= row["target_s"] and row["peak_rss_mb"] <= MEMORY_TARGET_MB
        table.add_row(Path(row["nf"]).stem, str(row["paths"]), f"{row['seconds']:.2f}",
                      " ".join(f"{s:.1f}" for s in row["runs_s"]), str(row["processes"]),
                      f"{row['peak_rss_mb']:.0f}", "yes" if row["complete"] else "NO",
                      f"{'yes' if ok else 'NO'} ({row['target_s']:g} s)")
    Console().print(table)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"results": rows}, indent=2))
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
