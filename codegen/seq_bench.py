"""Benchmark: the sequential reference runner's packets per second per NF.

    python -m codegen.seq_bench [--packets 1000000] [--flows 10000] [--repeat 3]

Generates one Zipf trace (timing the generation and the pcapng write), then
replays it through every sample NF `--repeat` times and reports the median
rate of the nf_process loop (the runner times only that loop).  Prints a
table and writes JSON (default build/bench/seq_runner.json).
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from analyses.nf_source import sample_names
from analyses.locations import build_root
from codegen.reference import build_reference, run_replay
from codegen.trace import read_trace, write_pcapng, write_replay
from codegen.traffic import generate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m codegen.seq_bench", description=__doc__.split("\n")[0])
    parser.add_argument("--packets", type=int, default=1_000_000)
    parser.add_argument("--flows", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--nf", action="append", help="NF to measure (default: every sample)")
    parser.add_argument("--json", type=Path, default=build_root() / "bench" / "seq_runner.json")
    args = parser.parse_args(argv)
    console = Console()

    with tempfile.TemporaryDirectory(prefix="maestro-bench-") as tmp:
        pcap = Path(tmp) / "zipf.pcapng"
        start = time.perf_counter()
        packets = generate("zipf", args.flows, args.packets, seed=1)
        generated = time.perf_counter() - start
        write_pcapng(pcap, packets)
        written = time.perf_counter() - start
        start = time.perf_counter()
        packets = read_trace(pcap)
        read = time.perf_counter() - start
        replay = Path(tmp) / "zipf.replay"
        write_replay(replay, packets)
        console.print(
            f"zipf trace: {args.packets:,} packets, {args.flows:,} flows: generated in "
            f"{generated:.2f} s, generated + written (pcapng) in {written:.2f} s, read back in {read:.2f} s"
        )
        rows = []
        for name in args.nf or sample_names():
            exe = build_reference(name)
            runs = [run_replay(name, exe, replay, per_packet=False).totals for _ in range(args.repeat)]
            pps = [r["pps"] for r in runs]
            rows.append({
                "nf": name,
                "median_mpps": statistics.median(pps) / 1e6,
                "min_mpps": min(pps) / 1e6,
                "max_mpps": max(pps) / 1e6,
                "forwarded": runs[0]["forwarded"],
                "dropped": runs[0]["dropped"],
                "flooded": runs[0]["flooded"],
            })

    table = Table(title=f"sequential reference runner, {args.packets:,}-packet Zipf trace, median of {args.repeat}")
    for column in ("NF", "Mpps (median)", "min", "max", "forwarded", "dropped", "flooded"):
        table.add_column(column, justify="left" if column == "NF" else "right")
    for row in rows:
        table.add_row(row["nf"], f"{row['median_mpps']:.2f}", f"{row['min_mpps']:.2f}",
                      f"{row['max_mpps']:.2f}", f"{row['forwarded']:.0f}", f"{row['dropped']:.0f}",
                      f"{row['flooded']:.0f}")
    console.print(table)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({
        "machine": platform.node(), "cpu": platform.processor(), "packets": args.packets,
        "flows": args.flows, "trace_generate_seconds": generated,
        "trace_generate_and_write_seconds": written, "trace_read_seconds": read,
        "results": rows,
    }, indent=2))
    console.print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
