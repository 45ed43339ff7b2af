"""`maestro analyze NF`: symbolic execution of the NF into its analysis report."""
from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.table import Table

from analyses.model import Analysis
from codegen.pipeline import Pipeline, StageEvent
from analyses.symbex import Budgets, Progress
from workbench.commands import argtypes
from workbench.commands.argtypes import number
from workbench.commands.run_seq import parse_defines


def register(subparsers) -> None:
    """Add the `analyze` subcommand."""
    parser = subparsers.add_parser(
        "analyze",
        help="find the NF's state, its keys and cross-device relations (angr)",
        description="Compile NF and explore nf_process symbolically: state objects, "
        "accesses with their key fields per device, relations, packet writes.",
    )
    parser.add_argument("nf", help="sample name (fw) or path of an NF's .c file")
    parser.add_argument("--json", type=Path, help="write the report as JSON to this file")
    parser.add_argument("--opt", default="-O2", choices=["-O0", "-O1", "-O2", "-O3"],
                        help="optimization level to compile the NF with (default -O2)")
    parser.add_argument("-D", dest="defines", action="append", default=[], metavar="NAME=VALUE",
                        help="override an NF config macro (repeatable)")
    parser.add_argument("--max-seconds", type=argtypes.seconds, default=Budgets.seconds, help="time budget")
    parser.add_argument("--max-paths", type=number(int, 1, what="an integer"), default=Budgets.paths, help="path budget")
    parser.add_argument("--max-memory-mb", type=number(float, 0.0, above=True), default=Budgets.memory_mb, help="memory budget")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Analyze, print the summary, optionally write JSON."""
    err = Console(stderr=True, highlight=False)

    def progress(event: StageEvent) -> None:
        if not args.quiet and event.kind == "progress":
            p: Progress = event.detail
            err.print(f"[dim]{p.elapsed:6.1f}s {p.stage:8} paths done {p.done:4} active {p.active:3} {p.text}[/]")

    budgets = Budgets(seconds=args.max_seconds, paths=args.max_paths, memory_mb=args.max_memory_mb)
    report = Pipeline(progress=progress).analyze(args.nf, opt=args.opt, defines=parse_defines(args.defines),
                                                 budgets=budgets)
    if args.json:
        args.json.write_text(report.dumps())
    print_report(report, Console())
    return 0 if report.stats.complete else 1


def print_report(report: Analysis, console: Console) -> None:
    """Readable tables of a report."""
    objects = Table(title=f"{report.nf}: state objects", title_justify="left")
    for column in ("object", "kind", "capacity", "key/elem bytes", "written by packets"):
        objects.add_column(column)
    for o in report.objects:
        objects.add_row(o.name, o.kind, str(o.capacity), str(o.key_size or o.elem_size or ""),
                        "yes" if o.written else "no (read-only after init)")
    console.print(objects)

    accesses = Table(title="accesses", title_justify="left")
    for column in ("object", "op", "devices", "key", "calls"):
        accesses.add_column(column)
    for a in sorted(report.accesses, key=lambda a: (a.object, a.op, a.device)):
        accesses.add_row(a.object, a.op, ",".join(map(str, a.device)),
                         ", ".join(a.key_fields) or "-", " ".join(a.calls))
    console.print(accesses)

    if report.relations:
        relations = Table(title="relations (fields that must agree)", title_justify="left")
        for column in ("object", "devices", "field pairs", "via"):
            relations.add_column(column)
        for r in report.relations:
            relations.add_row(r.object, f"{r.devices[0]} -> {r.devices[1]}",
                              ", ".join(f"{a}={b}" for a, b in r.field_pairs), r.via)
        console.print(relations)

    writes = sorted({(tuple(w.device), tuple(sorted(w.fields))) for w in report.packet_writes})
    for device, fields in writes:
        console.print(f"packet writes on device {','.join(map(str, device))}: {', '.join(fields)}")
    s = report.stats
    console.print(f"{s.paths} paths, {s.seconds:.2f} s, peak RSS {s.peak_rss_mb:.0f} MB"
                  + ("" if s.complete else " [red]INCOMPLETE[/]"))
    for warning in s.warnings:
        console.print(f"[yellow]warning:[/] {warning}")
