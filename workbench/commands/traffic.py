"""`maestro traffic`: generate a synthetic trace and write it as pcapng."""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from rich.console import Console

from analyses.errors import MaestroError
from codegen.packets import MAX_FRAME, MIN_FRAME
from codegen.trace import write_pcapng
from codegen.traffic import DEFAULT_RATE_PPS, PROFILES, generate_traffic
from workbench.commands import argtypes
from workbench.commands.argtypes import number

#: Results go to stdout (errors are printed by the CLI's main on stderr).
stdout = Console(highlight=False)


def register(subparsers) -> None:
    """Add the `traffic` subcommand."""
    parser = subparsers.add_parser(
        "traffic",
        help="generate a synthetic trace (pcapng)",
        description="Generate IPv4 TCP/UDP traffic for a profile and write it as pcapng: "
        "one interface per device (0 = LAN, 1 = WAN), nanosecond timestamps.  The paths profile "
        "analyzes NF and builds packets that drive it down each explored path (entries created "
        "before the packets that look them up), then prints which paths it reached.",
    )
    parser.add_argument("--profile", choices=["paths", *PROFILES], default="uniform", help="traffic shape")
    parser.add_argument("nf", nargs="?", help="the NF (sample name or .c file): required by --profile paths")
    parser.add_argument("-D", dest="defines", action="append", default=[], metavar="NAME=VALUE",
                        help="a config macro of the NF (paths profile), e.g. a small capacity")
    parser.add_argument("--flows", type=argtypes.flows, default=1000,
                        help="distinct flows (active at a time, for churn)")
    parser.add_argument("--packets", type=argtypes.packets_or_zero, default=100_000,
                        help="packets in the trace")
    parser.add_argument("--seed", type=int, default=0, help="random seed (same seed, same trace)")
    parser.add_argument("--zipf-s", type=number(float, 0.0), default=1.1,
                        help="Zipf exponent: rank r has weight 1/r^s (zipf profile)")
    parser.add_argument("--churn-rate", type=number(float, 0.0), default=None,
                        help="new flows per second (churn profile; default: replace the "
                        "active flows once over the trace)")
    parser.add_argument("--rate", type=number(float, 0.0, above=True), default=DEFAULT_RATE_PPS,
                        help="packets per second, i.e. the timestamp spacing")
    parser.add_argument("--malformed-fraction", type=number(float, 0.0, 1.0), default=0.03,
                        help="share of bad packets (malformed profile)")
    parser.add_argument("--devices", type=number(int, 1, 0xFFFF, what="an integer"), default=2,
                        help="devices: 0 is the LAN side, the others the WAN side")
    parser.add_argument("--size", type=number(int, MIN_FRAME, MAX_FRAME, what="an integer"),
                        default=MIN_FRAME, help=f"frame length in bytes ({MIN_FRAME}..{MAX_FRAME})")
    parser.add_argument("-o", "--output", type=Path, required=True, help="pcapng file to write")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Generate the trace, write it, print a one-line summary."""
    if args.profile == "paths":
        return run_paths(args)
    if args.nf:
        raise MaestroError(f"an NF ({args.nf}) is only used by --profile paths")
    start = time.perf_counter()
    traffic = generate_traffic(
        args.profile, args.flows, args.packets, seed=args.seed, zipf_s=args.zipf_s,
        churn=args.churn_rate, rate_pps=args.rate, malformed_fraction=args.malformed_fraction,
        devices=args.devices, size=args.size,
    )
    written = write_pcapng(args.output, traffic.packets, devices=args.devices)
    seconds = time.perf_counter() - start
    per_device = ", ".join(f"dev{d} {n:,}" for d, n in traffic.device_counts().items())
    stdout.print(
        f"wrote {written:,} packets, {traffic.flows:,} flows ({per_device or 'none'}) "
        f"to {args.output} in {seconds:.2f} s",
        markup=False,  # file names may contain [brackets]
        soft_wrap=True,  # one line, whatever the terminal width
    )
    return 0


def run_paths(args: argparse.Namespace) -> int:
    """`--profile paths NF`: traffic from the NF's explored paths."""
    from codegen.path_traffic import path_traffic
    from workbench.commands.run_seq import parse_defines

    if not args.nf:
        raise MaestroError("--profile paths needs the NF: maestro traffic --profile paths NF -o FILE")
    start = time.perf_counter()
    errors = Console(stderr=True, highlight=False)
    generated = path_traffic(args.nf, defines=parse_defines(args.defines), seed=args.seed,
                             progress=lambda text: errors.print(f"[dim]{text}[/]"))
    written = write_pcapng(args.output, generated.packets, devices=generated.analysis.devices)
    stdout.print(f"wrote {written:,} packets to {args.output} in {time.perf_counter() - start:.1f} s; "
                 f"{generated.coverage.summary()}", markup=False, soft_wrap=True)
    for note in generated.notes:
        stdout.print(f"  {note}", markup=False, soft_wrap=True)
    return 0
