"""`maestro bench NF`: throughput of generated programs per cores, strategy, traffic."""
from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

from rich.console import Console
from rich.table import Table

from codegen.bench import STRATEGIES, BenchRow, aborts_per_packet, bench, plot, to_json
from codegen.traffic import PROFILES
from workbench.commands import argtypes
from workbench.commands.plan import load_analysis

err = Console(stderr=True, highlight=False)


def register(subparsers) -> None:
    """Add the `bench` subcommand."""
    parser = subparsers.add_parser(
        "bench", help="measure generated programs: Mpps per core, speedup over 1 core",
        description="Build and run NF for each strategy and core count on the simulated NIC, "
        "for each traffic profile; report per-core and total Mpps and the speedup over one "
        "core measured in the same run.")
    parser.add_argument("nf")
    parser.add_argument("--cores", type=argtypes.number_list(int, 1, argtypes.MAX_CORES, "an integer"), default=[1, 2], help="e.g. 1,2")
    parser.add_argument("--strategy", type=argtypes.choice_list(list(STRATEGIES)), default=["sn"],
                        help=f"comma-separated, of: {', '.join(STRATEGIES)} ('locks' = locks-maestro)")
    parser.add_argument("--traffic", type=argtypes.choice_list(PROFILES), default=["uniform"], help="e.g. uniform,zipf,churn")
    parser.add_argument("--seconds", type=argtypes.seconds, default=3.0)
    parser.add_argument("--flows", type=argtypes.flows, default=10000)
    parser.add_argument("--packets", type=argtypes.packets, default=200000)
    parser.add_argument("--analysis", type=Path, help="saved analysis report")
    parser.add_argument("--json", type=Path, help="write the results as JSON")
    parser.add_argument("--plot", type=Path, help="draw throughput vs cores to this PNG")
    parser.add_argument("--no-harness", action="store_true",
                        help="skip the null NF that measures the harness alone")
    parser.set_defaults(func=run)


def bench_table(title: str, rows: list[BenchRow]) -> Table:
    """The rows as a table: throughput, ns per packet with and without the
    harness (the null NF in the same program shape), latency, re-runs, state."""
    table = Table(title=title, caption="ns/pkt: per packet on one core; harness: the null NF's; "
                  "NF: the difference.  Latency from injection to TX, p50/p99 per core.")
    for column in ("strategy", "cores", "traffic", "Mpps", "per core", "speedup", "ns/pkt", "harness",
                   "NF ns", "p50/p99 us", "re-runs/pkt", "state MB"):
        table.add_column(column, justify="left" if column in ("strategy", "traffic") else "right")
    table.add_column("note", no_wrap=True, overflow="ellipsis", max_width=32)
    for r in rows:
        table.add_row(r.strategy, str(r.cores), r.traffic, _f(r.mpps), " ".join(f"{m:.2f}" for m in r.per_core_mpps),
                      _f(r.speedup, "{:.2f}x"), _f(r.ns_per_packet, "{:.1f}"), _f(r.harness_ns, "{:.1f}"),
                      _f(r.nf_ns, "{:.1f}"), latency_cell(r), _f(aborts_per_packet(r), "{:.3f}", zero=True),
                      _f(r.state_bytes and r.state_bytes / 2**20, "{:.1f}"), r.error or "")
    return table


def latency_cell(row: BenchRow) -> str:
    """ "p50/p99" in µs per core, one core after the other: "1.2/3.4 1.3/3.9"."""
    return " ".join(f"{c['p50'] / 1e3:.1f}/{c['p99'] / 1e3:.1f}" for c in row.per_core_latency_ns if c) or "-"


def _f(value, fmt="{:.2f}", zero=False):
    return fmt.format(value) if value or (zero and value is not None) else "-"


def run(args: argparse.Namespace) -> int:
    analysis = load_analysis(args.nf, args.analysis)
    rows = bench(args.nf, analysis, cores=args.cores, strategies=args.strategy,
                 traffic=args.traffic, seconds=args.seconds, flows=args.flows,
                 packets=args.packets, log=lambda text: err.print(f"[dim]{text}[/]"),
                 harness=not args.no_harness)
    Console().print(bench_table(f"{args.nf}: simulated NIC, median of {args.seconds:g}-second runs' "
                                "intervals", rows))
    if args.json:
        args.json.write_text(json.dumps(to_json(args.nf, rows, seconds=args.seconds,
                                                machine=platform.node()), indent=2))
    if args.plot:
        plot(args.nf, rows, args.plot)
    return 0
