"""`maestro run-seq NF TRACE`: the sequential reference runner over a trace."""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import sh

from analyses.errors import MaestroError
from analyses.nf_source import resolve_nf
from codegen.reference import ReferenceError, build_reference
from codegen.trace import read_trace, write_replay


def parse_defines(items: list[str]) -> dict[str, str]:
    """`NAME=VALUE` strings (repeatable -D options) as a dict."""
    defines = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not name.isidentifier():
            raise MaestroError(f"bad -D {item!r}: expected NAME=VALUE with NAME a C identifier")
        defines[name] = value if sep else "1"
    return defines


def register(subparsers) -> None:
    """Add the `run-seq` subcommand."""
    parser = subparsers.add_parser(
        "run-seq",
        help="replay a trace through the NF on one core (the reference)",
        description="Build NF with the state library and the reference runner, replay "
        "TRACE (pcap/pcapng; interface id = device) and print one line per packet: "
        "index, input device, output (device|drop|flood), length, digest of the bytes after.",
    )
    parser.add_argument("nf", help="sample name (fw) or path of an NF's .c file")
    parser.add_argument("trace", type=Path, help="pcap or pcapng trace")
    parser.add_argument("--bytes", action="store_true", help="print packet bytes instead of digests")
    parser.add_argument("--totals-only", action="store_true", help="print only the totals line")
    parser.add_argument("--sanitize", action="store_true", help="build with ASan and UBSan")
    parser.add_argument("-D", dest="defines", action="append", default=[], metavar="NAME=VALUE",
                        help="override an NF config macro (repeatable)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Build, replay and stream the runner's output to stdout."""
    nf = resolve_nf(args.nf)
    packets = read_trace(args.trace)  # a bad trace is reported before a build
    exe = build_reference(nf, defines=parse_defines(args.defines), sanitize=args.sanitize)
    flags = [*(["--bytes"] if args.bytes else []), *(["--no-packets"] if args.totals_only else [])]
    with tempfile.TemporaryDirectory(prefix="maestro-seq-") as tmp:
        replay = Path(tmp) / "trace.replay"
        write_replay(replay, packets)
        try:
            sh.Command(str(exe))(*flags, str(replay), _out=sys.stdout, _err=sys.stderr)
        except sh.ErrorReturnCode as exc:
            raise ReferenceError(f"the reference run of {nf.name} failed (exit {exc.exit_code})") from None
    return 0
