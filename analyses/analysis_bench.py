"""Benchmark: analysis time, paths and peak memory of every sample NF.

    python -m analyses.analysis_bench [--nf fw ...] [--json FILE]

Each NF is analyzed in a fresh process, so its peak RSS is its own (angr's
import included).  Prints a table and writes JSON (default
build/bench/analysis.json).  Target on a 2-core machine: at most 10 s and
1 GB per sample NF.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from analyses.nf_source import sample_names

SECONDS_TARGET = 10.0
MEMORY_TARGET_MB = 1024.0


def _one(nf: str) -> None:
    from analyses.report import analyze

    stats = analyze(nf).stats
    print(json.dumps({"nf": nf, "paths": stats.paths, "seconds": stats.seconds,
                      "peak_rss_mb": stats.peak_rss_mb, "complete": stats.complete}))


def main(argv: list[str] | None = None) -> int:
    from codegen.reference import build_root

    parser = argparse.ArgumentParser(prog="python -m analyses.analysis_bench")
    parser.add_argument("--nf", action="append", help="NF to analyze (default: every sample)")
    parser.add_argument("--json", type=Path, default=build_root() / "bench" / "analysis.json")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        _one(args.one)
        return 0
    rows = []
    for nf in args.nf or sample_names():
        out = subprocess.run([sys.executable, "-m", "analyses.analysis_bench", "--one", nf],
                             capture_output=True, text=True, check=True).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
    table = Table(title="analysis of the sample NFs (one process each)")
    for column in ("NF", "paths", "seconds", "peak RSS MB", "within 10 s / 1 GB"):
        table.add_column(column, justify="left" if column == "NF" else "right")
    for row in rows:
        ok = row["seconds"] <= SECONDS_TARGET and row["peak_rss_mb"] <= MEMORY_TARGET_MB
        table.add_row(row["nf"], str(row["paths"]), f"{row['seconds']:.2f}",
                      f"{row['peak_rss_mb']:.0f}", "yes" if ok and row["complete"] else "NO")
    Console().print(table)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"results": rows}, indent=2))
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
