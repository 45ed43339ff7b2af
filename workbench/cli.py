"""The headless `maestro` command line: one subcommand per pipeline stage.

Each subcommand lives in `workbench/commands/<name>.py` and exposes
`register(subparsers)`, which adds its parser and sets `func` to a callable
taking the parsed arguments and returning an exit status.  Errors the user
can fix (`MaestroError`) are printed as one clear message, never a traceback.
"""
from __future__ import annotations

import argparse
import sys

from rich.console import Console

from analyses.errors import MaestroError
from workbench.commands import COMMANDS

#: Console for diagnostics; results go to stdout, messages to stderr.
stderr = Console(stderr=True, highlight=False, soft_wrap=True)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every registered subcommand."""
    parser = argparse.ArgumentParser(
        prog="maestro",
        description="Parallelize a sequential C network function: analyze, plan, "
        "generate, build, run and verify.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMANDS:
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of `maestro`; returns the process exit status."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        stderr.print("[red]interrupted[/]")
        return 130
    except MaestroError as exc:
        stderr.print(f"[red]error:[/] {exc}")
        return 2


if __name__ == "__main__":
    sys.exit(main())
