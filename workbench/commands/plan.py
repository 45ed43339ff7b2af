"""`maestro plan NF --cores N`: per-object decisions, RSS keys, proof, quality."""
from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.table import Table

from analyses.errors import MaestroError
from analyses.model import Analysis
from analyses.nic import NICS
from analyses.planner import DECISIONS, DEFAULT_NIC, STRATEGIES, Plan, plan
from analyses.plan_values import CAPACITY_POLICIES, ObjectPlan
from analyses.rss import describe_packet
from workbench.commands import argtypes


def register(subparsers) -> None:
    """Add the `plan` subcommand."""
    parser = subparsers.add_parser(
        "plan",
        help="decide per state object (shard, replicate, lock) and synthesize RSS keys",
        description="Turn the NF's analysis into a parallelization plan: per-object decisions with "
        "their reasons, one RSS key per device (proved with z3), the RETA, and load balance.",
    )
    parser.add_argument("nf", help="sample name (fw) or path of an NF's .c file")
    parser.add_argument("--cores", type=argtypes.number(int, 1, what="an integer"), required=True, help="worker cores")
    parser.add_argument("--nic", default=DEFAULT_NIC, choices=list(NICS), help=f"NIC profile (default {DEFAULT_NIC})")
    parser.add_argument("--strategy", default="auto", choices=list(STRATEGIES),
                        help="auto: shared-nothing when every written object shards, else mixed/locks")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="OBJECT=DECISION",
                        help=f"force one object's decision ({'|'.join(DECISIONS)}); repeatable")
    parser.add_argument("--capacity", default="keep", choices=list(CAPACITY_POLICIES),
                        help="each core's instance of a sharded table: keep the NF's capacity (default; "
                        "memory times the cores) or divide it by the cores where the object allows it")
    parser.add_argument("--analysis", type=Path, help="use this saved analysis report instead of analyzing")
    parser.add_argument("--json", type=Path, help="write the plan as JSON to this file")
    parser.add_argument("--seed", type=int, default=0, help="seed of the key sampling (default 0)")
    parser.add_argument("--accept-incomplete", action="store_true",
                        help="exit 0 even when the analysis is incomplete (the plan then locks every "
                             "object and shares every variable of the NF)")
    parser.set_defaults(func=run)


def parse_overrides(items: list[str]) -> dict[str, str]:
    """`OBJECT=DECISION` strings as a dict (MaestroError on bad syntax)."""
    out: dict[str, str] = {}
    for item in items:
        name, sep, decision = item.partition("=")
        if not sep or not name or not decision:
            raise MaestroError(f"bad --set {item!r}: expected OBJECT=DECISION ({'|'.join(DECISIONS)})")
        out[name] = decision
    return out


def load_analysis(nf: str, path: Path | None) -> Analysis:
    """The saved report at `path`, else a fresh analysis of `nf`."""
    if path is None:
        from codegen.pipeline import Pipeline

        Console(stderr=True, highlight=False).print(f"[dim]analyzing {nf} (angr)...[/]")
        return Pipeline().analyze(nf)
    try:
        report = Analysis.load(path)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise MaestroError(f"cannot read analysis report {path}: {exc}") from exc
    name = Path(nf).stem
    if report.nf != name:
        raise MaestroError(f"{path} is the analysis of {report.nf}, not {name}")
    return report


def run(args: argparse.Namespace) -> int:
    """Plan, print the summary, optionally write JSON."""
    overrides = parse_overrides(args.overrides)
    report = load_analysis(args.nf, args.analysis)
    result = plan(report, args.cores, args.nic, args.strategy, overrides, seed=args.seed,
                  capacity=args.capacity)
    if args.json:
        args.json.write_text(result.dumps())
    print_plan(result, Console())
    if not result.complete and not args.accept_incomplete:
        Console(stderr=True, highlight=False).print(
            "[bold red]the analysis is incomplete[/]: the plan locks everything; exit 1 "
            "(--accept-incomplete to accept it)")
        return 1
    return 0


def capacity_text(o: ObjectPlan) -> str:
    """"65536", "65536 per core" (kept), "32768 per core of 65536" (divided)."""
    if not o.capacity:
        return ""
    if o.decision != "shard":
        return str(o.capacity)
    if o.per_core_capacity and o.per_core_capacity < o.capacity:
        return f"{o.per_core_capacity} per core of {o.capacity}"
    return f"{o.capacity} per core"


def print_plan(p: Plan, console: Console) -> None:
    """Readable summary of a plan."""
    if not p.complete:
        console.print("[bold white on red] INCOMPLETE ANALYSIS [/] nothing is proved: every object and "
                      "every variable of the NF is shared under a lock.")
        for cause in p.incomplete:
            console.print(f"  [red]{cause}[/]")
    console.print(f"[bold]{p.nf}[/]: [bold]{p.strategy}[/] plan on {p.cores} cores, NIC {p.nic}"
                  + (f" (requested {p.requested})" if p.requested != "auto" else "")
                  + (f", locked objects use {p.sync}" if p.sync else ""))
    objects = Table(title="decisions", title_justify="left", show_lines=True)
    for column in ("object", "kind", "decision", "capacity", "reason"):
        objects.add_column(column, overflow="fold")
    colour = {"shard": "green", "replicate": "cyan", "lock": "yellow"}
    for o in p.objects:
        objects.add_row(o.name, o.kind, f"[{colour[o.decision]}]{o.decision}[/]", capacity_text(o), o.reason)
    if p.objects:
        console.print(objects)

    keys = Table(title="RSS keys", title_justify="left")
    for column in ("device", "key", "RETA index depends on"):
        keys.add_column(column, overflow="fold")
    for device, key in p.rss.items():
        keys.add_row(str(device), key.key, ", ".join(key.depends_on) or "nothing (one entry)")
    console.print(keys)
    per_core = len(p.reta) // max(p.cores, 1)
    round_robin = all(core == e % p.cores for e, core in enumerate(p.reta))
    console.print(f"RETA: {len(p.reta)} entries, about {per_core} per core, "
                  + ("round robin" if round_robin else "cores from a linear map of all index bits"))
    console.print(f"proof (z3): [bold]{p.proof.result}[/] in {p.proof.seconds:.2f} s, {p.proof.checks} checks"
                  + ("" if p.proof.result == "unsat" else " [red]keys NOT proved[/]"))
    s = p.synthesis
    console.print(f"synthesis: {s.seconds * 1000:.1f} ms, {s.equations} equations over GF(2), rank {s.rank}, "
                  f"solution space 2^{s.dimension}, best of {s.samples} keys")

    quality = Table(title=f"load on {p.cores} cores", title_justify="left")
    for column in ("traffic", "max/mean", "floor", "RETA entries reached (per device)"):
        quality.add_column(column)
    for q in p.quality.profiles:
        quality.add_row(q.profile, f"{q.max_mean:.2f}", f"{q.floor:.2f}", ", ".join(map(str, q.distinct)))
    console.print(quality)

    for c in p.conflicts:
        console.print(f"[yellow]not sharded[/] {', '.join(c.objects)}: {c.reason}")
        if len(c.packets) == 2:
            console.print(f"  e.g. {describe_packet(c.packets[0])}\n   and {describe_packet(c.packets[1])}")
    for note in p.notes:
        console.print(f"[dim]note:[/] {note}")
    if p.shared_variables:
        console.print(f"[yellow]one instance for all cores[/]: {', '.join(p.shared_variables)} (variables "
                      "of the NF; every packet runs under the exclusive lock)")
