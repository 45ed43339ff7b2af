"""`maestro generate | build | run | verify`: the parallel program's life cycle."""
from __future__ import annotations

import argparse
import json
import threading
from pathlib import Path

from rich.console import Console

from analyses.errors import MaestroError
from codegen.generator import LOCK_KINDS, STRATEGIES, GeneratedProgram, generate
from codegen.program import build, run
from codegen.trace import read_trace
from codegen.traffic import PROFILES
from codegen.traffic import generate as make_traffic
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
    gen.add_argument("--strategy", choices=STRATEGIES, help="override the plan's strategy")
    gen.add_argument("--locks", default="maestro", choices=list(LOCK_KINDS),
                     help="lock granularity of the locks strategy: maestro (reader tokens + "
                     "writer, read mode first), object (a read-write lock per object), global")
    gen.add_argument("-D", dest="defines", action="append", default=[], metavar="NAME=VALUE",
                     help="override an NF config macro (repeatable)")
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
    rn.add_argument("--flows", type=int, default=10000)
    rn.add_argument("--packets", type=int, default=200000)
    rn.add_argument("--seconds", type=float, default=3.0, help="run time (0: one pass of the trace)")
    rn.add_argument("--interval", type=float, default=1.0, help="seconds between stats lines")
    rn.add_argument("--eal", help="EAL arguments for real NICs (no simulation), quoted")
    rn.add_argument("--json", action="store_true", help="print the raw JSON events")
    rn.set_defaults(func=run_run)

    ver = subparsers.add_parser("verify", help="compare the parallel program with the sequential NF",
                                description="Analyze, plan, generate, build and run NF on a trace; "
                                "compare every packet's output and bytes with the reference runner, "
                                "and say which explored paths the trace reached.  The default traffic "
                                "(paths) drives packets down every path it can, then adds --packets "
                                "packets of the sessions profile.")
    ver.add_argument("nf", help="sample name (fw) or path of an NF's .c file")
    ver.add_argument("--cores", type=int, default=2)
    ver.add_argument("--strategy", default="auto", choices=["auto", "sn", "locks", "tm"])
    ver.add_argument("--locks", default="maestro", choices=list(LOCK_KINDS))
    ver.add_argument("--traffic", default="paths", choices=["paths", *PROFILES])
    ver.add_argument("--flows", type=int, default=200)
    ver.add_argument("--packets", type=int, default=5000)
    ver.add_argument("--seed", type=int, default=1)
    ver.add_argument("-D", dest="defines", action="append", default=[], metavar="NAME=VALUE",
                     help="a config macro for the NF (e.g. a smaller capacity to reach full tables)")
    ver.add_argument("--json", type=Path, help="write the verdict as JSON")
    ver.set_defaults(func=run_verify)


def run_generate(args: argparse.Namespace) -> int:
    try:
        plan = json.loads(args.plan.read_text())
    except (OSError, ValueError) as exc:
        raise MaestroError(f"cannot read plan {args.plan}: {exc}") from None
    analysis = load_analysis(args.nf, args.analysis)
    program = generate(args.nf, plan, analysis, args.out, strategy=args.strategy, lock=args.locks,
                       defines=parse_defines(args.defines))
    print(f"wrote {len(program.files)} files to {program.directory} "
          f"({program.nf}, strategy {program.strategy}, {program.cores} cores, plan {program.digest})")
    return 0


def run_build(args: argparse.Namespace) -> int:
    program = GeneratedProgram.load(args.dir)
    exe = build(program, log=lambda line: err.out(line, highlight=False),
                sanitize="-fsanitize=address,undefined" if args.sanitize else "")
    print(f"built {exe}")
    return 0


def run_run(args: argparse.Namespace) -> int:
    program = GeneratedProgram.load(args.dir)
    packets = None
    if args.eal is None:
        packets = read_trace(args.trace) if args.trace else make_traffic(
            args.traffic, args.flows, args.packets, seed=1)

    def show(event: dict) -> None:
        if args.json:
            print(json.dumps(event), flush=True)
        elif event["type"] in ("stats", "final"):
            cores = "  ".join(f"core {c['worker']}: {c['mpps']:6.2f} Mpps" for c in event["lcores"])
            tail = (f"  drop {event['drop']}  conserved {event.get('conserved')}"
                    if event["type"] == "final" else "")
            print(f"{event['t']:6.1f}s  {cores}  total {event['mpps']:6.2f} Mpps{tail}", flush=True)

    cancel = threading.Event()
    try:
        run(program, packets=packets, eal_args=args.eal.split() if args.eal else None,
            seconds=args.seconds, once=args.seconds == 0, interval=args.interval, on_event=show,
            cancel=cancel)
    except KeyboardInterrupt:
        cancel.set()
    return 0


def run_verify(args: argparse.Namespace) -> int:
    from codegen.verify import verify_nf

    verdict, info = verify_nf(args.nf, cores=args.cores, strategy=args.strategy, lock=args.locks,
                              traffic=args.traffic, flows=args.flows, packets=args.packets,
                              seed=args.seed, defines=parse_defines(args.defines))
    if not info["complete"]:
        print("the analysis is INCOMPLETE: the program locks every object; the paths below are only "
              "those the analysis explored")
    print(f"{args.nf}: {info['strategy']} program ({info['plan_strategy']} plan) on "
          f"{info['packets']} {args.traffic} packets: {verdict.summary()}")
    if verdict.parallel_coverage is not None:
        print(f"  parallel {verdict.parallel_coverage.summary()}")
    for line in verdict.never_reached():
        print(f"  never reached: {line}")
    for kind, why in verdict.justifications.items():
        print(f"  allowed: {kind}: {why}")
    if verdict.first_difference:
        print(f"  first difference: {json.dumps(verdict.first_difference)}")
    if args.json:
        args.json.write_text(json.dumps({**verdict.to_json(), **info}, indent=2))
    return 0 if verdict.equivalent else 1
