"""`maestro generate | build | run | verify`: the parallel program's life cycle."""
from __future__ import annotations

import argparse
import json
import re
import tempfile
from pathlib import Path

from rich.console import Console

from analyses.errors import MaestroError
from analyses.nf_source import resolve_nf
from analyses.plan_values import LOCK_KINDS, PROGRAM_STRATEGIES
from codegen.generator import GeneratedProgram, check_destination
from codegen.pipeline import Pipeline
from codegen.program import cores_warning, run
from codegen.safe_text import check_nf_name
from codegen.trace import read_trace
from codegen.traffic import PROFILES
from codegen.traffic import generate as make_traffic
from workbench.commands import argtypes
from workbench.commands.plan import load_analysis
from workbench.commands.run_seq import parse_defines

err = Console(stderr=True, highlight=False)


def register(subparsers) -> None:
    """Add generate, build, run and verify."""
    gen = subparsers.add_parser("generate", help="write the parallel DPDK program of a plan",
                                description="Write a complete DPDK 22.11 program (C sources, "
                                "Makefile using pkg-config libdpdk) for PLAN into DIR.")
    gen.add_argument("nf", help="sample name (fw) or path of an NF's .c file")
    gen.add_argument("--plan", type=Path, required=True, help="plan JSON (maestro plan --json)")
    gen.add_argument("--out", type=Path, required=True, help="program folder to write")
    gen.add_argument("--analysis", type=Path, help="saved analysis report (else the NF is analyzed)")
    gen.add_argument("--strategy", choices=PROGRAM_STRATEGIES, help="override the plan's strategy")
    gen.add_argument("--locks", default="maestro", choices=list(LOCK_KINDS),
                     help="lock granularity of the locks strategy: maestro (reader tokens + "
                     "writer, read mode first), object (a read-write lock per object), global")
    gen.add_argument("-D", dest="defines", action="append", default=[], metavar="NAME=VALUE",
                     help="override an NF config macro (repeatable)")
    gen.add_argument("--force", action="store_true",
                     help="replace the program DIR holds (a folder holding anything else is refused)")
    gen.set_defaults(func=run_generate)

    bld = subparsers.add_parser("build", help="build a generated program (make)")
    bld.add_argument("dir", type=Path, help="program folder written by maestro generate")
    bld.add_argument("--sanitize", action="store_true", help="build with ASan and UBSan")
    bld.set_defaults(func=run_build)

    rn = subparsers.add_parser("run", help="run a built program and show per-core throughput",
                               description="Run on the simulated NIC (a trace or generated "
                               "traffic through net_null ports) or, with --eal, on real NICs.")
    rn.add_argument("dir", type=Path, help="program folder (built)")
    source = rn.add_mutually_exclusive_group()
    source.add_argument("--trace", type=Path, help="pcap/pcapng trace for the simulated NIC")
    source.add_argument("--traffic", choices=PROFILES, default="uniform",
                        help="generate this traffic for the simulated NIC (default uniform)")
    rn.add_argument("--flows", type=argtypes.flows, default=10000)
    rn.add_argument("--packets", type=argtypes.packets, default=200000)
    rn.add_argument("--seconds", type=argtypes.seconds_or_zero, default=3.0, help="run time (0: one pass of the trace)")
    rn.add_argument("--interval", type=argtypes.seconds, default=1.0, help="seconds between stats lines")
    rn.add_argument("--eal", type=argtypes.words, help="EAL arguments for real NICs (no simulation), quoted")
    rn.add_argument("--json", action="store_true", help="print the raw JSON events")
    rn.set_defaults(func=run_run)

    ver = subparsers.add_parser("verify", help="compare the parallel program with the sequential NF",
                                description="Run the parallel program on traces and compare every "
                                "packet's output and bytes with the sequential NF (reference runner); "
                                "say which explored paths each trace reached.  TARGET is an NF "
                                "(analyzed, planned, generated and built first) or a program folder "
                                "written by maestro generate (verified as it is, with its own plan).  "
                                "The default traffic, the paths profile, drives packets down every "
                                "path it can, then adds --packets packets of the sessions profile.")
    ver.add_argument("nf", metavar="TARGET",
                     help="sample name (fw), path of an NF's .c file, or a generated program folder")
    ver.add_argument("--profile", "--traffic", dest="profiles", action="append",
                     choices=["paths", *PROFILES], help="a traffic profile (repeatable; default paths)")
    ver.add_argument("--trace", dest="traces", action="append", type=Path, default=[],
                     help="a pcap/pcapng trace of yours (repeatable)")
    ver.add_argument("--cores", type=argtypes.cores, help="worker cores (default 2; NF targets only)")
    ver.add_argument("--strategy", choices=["auto", "sn", "locks", "tm"], help="NF targets only")
    ver.add_argument("--locks", choices=list(LOCK_KINDS), help="NF targets only")
    ver.add_argument("--flows", type=argtypes.flows, default=200)
    ver.add_argument("--packets", type=argtypes.packets_or_zero, default=5000,
                     help="packets of each profile (the paths profile: added to its own)")
    ver.add_argument("--seed", type=int, default=1)
    ver.add_argument("-D", dest="defines", action="append", default=[], metavar="NAME=VALUE",
                     help="a config macro for the NF, for analysis, reference and program alike "
                     "(e.g. a smaller capacity to reach full tables; NF targets only)")
    ver.add_argument("--json", type=Path, help="write the verdicts as JSON")
    ver.set_defaults(func=run_verify)


def run_generate(args: argparse.Namespace) -> int:
    try:
        plan = json.loads(args.plan.read_text())
    except (OSError, ValueError) as exc:
        raise MaestroError(f"cannot read plan {args.plan}: {exc}") from None
    check_nf_name(resolve_nf(args.nf).name)  # before a long analysis
    check_destination(args.out, args.force)
    analysis = load_analysis(args.nf, args.analysis)
    program = Pipeline().generate(args.nf, plan, analysis, args.out, strategy=args.strategy, lock=args.locks,
                                  defines=parse_defines(args.defines), replace=args.force)
    print(f"wrote {len(program.files)} files to {program.directory} "
          f"({program.nf}, strategy {program.strategy}, {program.cores} cores, plan {program.digest})")
    return 0


def run_build(args: argparse.Namespace) -> int:
    program = GeneratedProgram.load(args.dir)
    pipeline = Pipeline.logging(lambda line: err.out(line, highlight=False))
    exe = pipeline.build(program, sanitize="-fsanitize=address,undefined" if args.sanitize else "")
    print(f"built {exe}")
    return 0


def run_run(args: argparse.Namespace) -> int:
    program = GeneratedProgram.load(args.dir)
    packets = None
    if args.eal is None and (warning := cores_warning(program.cores)):
        err.print(f"[yellow]warning:[/] {warning}")
    if args.eal is None:
        packets = read_trace(args.trace) if args.trace else make_traffic(
            args.traffic, args.flows, args.packets, seed=1)

    def show(event: dict) -> None:
        if args.json:
            print(json.dumps(event), flush=True)
        elif event["type"] in ("stats", "final"):
            cores = "  ".join(f"core {c['worker']}: {c['mpps']:6.2f} Mpps{latency_text(c)}"
                              for c in event["lcores"])
            tail = (f"  drop {event['drop']}  conserved {event.get('conserved')}"
                    if event["type"] == "final" else "")
            print(f"{event['t']:6.1f}s  {cores}  total {event['mpps']:6.2f} Mpps{tail}", flush=True)

    try:
        run(program, packets=packets, eal_args=args.eal,
            seconds=args.seconds, once=args.seconds == 0, interval=args.interval, on_event=show)
    except KeyboardInterrupt:
        return 0  # stopped early: the program's final line was printed
    return 0


def latency_text(stats: dict) -> str:
    """ " (p50/p99/p99.9 1.2/3.4/5.6 us)" of a core's or a run's latency, or ""."""
    latency = stats.get("latency_ns")
    if not latency:
        return ""
    return " (p50/p99/p99.9 " + "/".join(f"{latency[k] / 1e3:.1f}" for k in ("p50", "p99", "p999")) + " us)"


def run_verify(args: argparse.Namespace) -> int:
    for trace in args.traces:
        if not trace.is_file():
            raise MaestroError(f"--trace {trace}: no such file")
    if (Path(args.nf) / "program.json").is_file():
        return _verify(args, None)
    # An NF target's program is generated into a temporary folder, removed after.
    with tempfile.TemporaryDirectory(prefix="maestro-verify-") as tmp:
        return _verify(args, Path(tmp) / "program")


def _verify(args: argparse.Namespace, out_dir: Path | None) -> int:
    """Verify args.nf (a program folder when out_dir is None, else an NF
    whose program is generated into out_dir); print the verdicts."""
    from codegen.verify import combined_coverage, prepare, prepare_built, verification_json, verify_traffics

    traffics = [*(args.profiles or []), *(str(t) for t in args.traces)] or ["paths"]
    empty = [p for p in args.profiles or [] if p != "paths"] if args.packets == 0 else []
    if empty:  # the paths profile makes its own packets, then adds --packets more
        raise MaestroError(f"--packets 0: the {empty[0]} profile would verify no packet")
    if out_dir is None:
        fixed = [name for name, value in (("--cores", args.cores), ("--strategy", args.strategy),
                                          ("--locks", args.locks), ("-D", args.defines)) if value]
        if fixed:
            raise MaestroError(f"{args.nf} is a generated program: its plan and build fix "
                               f"{', '.join(fixed)}; generate it again to change them")
        prepared = prepare_built(Path(args.nf), log=lambda line: err.out(line, highlight=False))
    else:
        prepared = prepare(args.nf, cores=args.cores or 2, strategy=args.strategy or "auto",
                           lock=args.locks or "maestro", defines=parse_defines(args.defines),
                           out_dir=out_dir, explore_paths=True,
                           log=lambda line: err.out(line, highlight=False))
    program, analysis = prepared.program, prepared.analysis
    if not analysis.stats.complete:
        print("the analysis is INCOMPLETE: the paths below are only those the analysis explored")
    print(f"{program.nf}: {program.strategy} program ({prepared.plan.get('strategy')} plan "
          f"{program.digest}) in {program.directory}" + ("" if out_dir is None else " (removed after)"))
    results = verify_traffics(prepared, traffics, flows=args.flows, packets=args.packets, seed=args.seed)
    for sent, _verdict, _final in results:
        if not sent.packets:  # "0/0 identical" proves nothing
            raise MaestroError(f"{sent.label}: no packets to verify")
    for sent, verdict, _final in results:
        print(f"{sent.label}, {len(sent.packets)} packets: {verdict.summary()}")
        for note in sent.notes:
            if not re.match(r"path \d+ not reached", note):  # listed under "never reached"
                print(f"  traffic: {note}")
        if verdict.parallel_coverage is not None:
            print(f"  parallel {verdict.parallel_coverage.summary()}")
        for kind, why in verdict.justifications.items():
            print(f"  allowed: {kind}: {why}")
        if verdict.first_difference:
            print(f"  first difference: {json.dumps(verdict.first_difference)}")
    together = combined_coverage(results)
    if together is not None:
        if len(results) > 1:
            print(f"all traces: {together.summary()}")
        for device, ids in sorted(together.missed().items()):
            for path in ids:
                print(f"  never reached: path {path} (device {device}): {together.described.get(path, '')}")
    doc = verification_json(prepared, results)
    if args.json:
        args.json.write_text(json.dumps(doc, indent=2))
    equivalent = doc["equivalent"]
    print("equivalent" if equivalent else "DIFFERENT")
    return 0 if equivalent else 1
