"""`maestro bench NF`: throughput of generated programs per cores, strategy, traffic."""
from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

from rich.console import Console
from rich.table import Table

from codegen.bench import STRATEGIES, bench, plot, to_json
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
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    analysis = load_analysis(args.nf, args.analysis)
    rows = bench(args.nf, analysis, cores=args.cores, strategies=args.strategy,
                 traffic=args.traffic, seconds=args.seconds, flows=args.flows,
                 packets=args.packets, log=lambda text: err.print(f"[dim]{text}[/]"))
    table = Table(title=f"{args.nf}: simulated NIC, median of {args.seconds:g}-second runs' intervals")
    for column in ("strategy", "cores", "traffic", "Mpps", "per core", "speedup", "aborts"):
        table.add_column(column)
    table.add_column("note", no_wrap=True, overflow="ellipsis", max_width=32)
    for r in rows:
        table.add_row(r.strategy, str(r.cores), r.traffic, f"{r.mpps:.2f}" if r.mpps else "-",
                      " ".join(f"{m:.2f}" for m in r.per_core_mpps),
                      f"{r.speedup:.2f}x" if r.speedup else "-", str(r.aborts), r.error or "")
    Console().print(table)
    if args.json:
        args.json.write_text(json.dumps(to_json(args.nf, rows, seconds=args.seconds,
                                                machine=platform.node()), indent=2))
    if args.plot:
        plot(args.nf, rows, args.plot)
    return 0
