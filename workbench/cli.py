"""The headless `maestro` command line: one subcommand per pipeline stage.

Each subcommand lives in `workbench/commands/<name>.py` and exposes
`register(subparsers)`, which adds its parser and sets `func` to a callable
taking the parsed arguments and returning an exit status.  Errors the user
can fix (`MaestroError`) are printed as one clear message, never a traceback.
"""
from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading

from rich.console import Console
from rich.markup import escape

from analyses.errors import MaestroError
from workbench.commands import COMMANDS
from workbench.commands.argtypes import OneLineParser

#: Console for diagnostics; results go to stdout, messages to stderr.
stderr = Console(stderr=True, highlight=False, soft_wrap=True)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every registered subcommand."""
    parser = OneLineParser(
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
        with terminate_as_interrupt():
            return int(args.func(args) or 0)
    except KeyboardInterrupt:
        stderr.print("[red]interrupted[/]")
        return 130
    except MaestroError as exc:
        stderr.print(f"[red]error:[/] {escape(str(exc))}")
        return 2
    except MemoryError:
        stderr.print("[red]error:[/] out of memory (use fewer packets or flows)")
        return 2
    except OSError as exc:  # a file the command was given: name it, no traceback
        stderr.print(f"[red]error:[/] {escape(str(exc.filename or ''))}: {escape(exc.strerror or str(exc))}")
        return 2


#: How often an interrupt is raised again while the command has not begun
#: to stop (s).
REINTERRUPT_S = 1.0


@contextlib.contextmanager
def terminate_as_interrupt():
    """SIGTERM raises KeyboardInterrupt like SIGINT while the command runs, so
    both stop it the same way: programs get SIGINT and print their totals,
    temporary folders are removed (Python's default SIGTERM leaves them).

    An exception raised while Python runs a `__del__` method is printed and
    swallowed ("Exception ignored in"), and z3 frees its terms that way all
    the time: an interrupt landing there would leave the command running (a
    SIGTERM'd verify went on with its 200,000 packets).  So after either
    signal the interrupt is raised again every REINTERRUPT_S until one is
    being handled (an `except` or `finally` on its way up: the cleanup)."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return

    def interrupt(signum, frame):
        signal.setitimer(signal.ITIMER_REAL, REINTERRUPT_S)
        raise KeyboardInterrupt

    def again(signum, frame):
        if isinstance(sys.exc_info()[1], KeyboardInterrupt):
            signal.setitimer(signal.ITIMER_REAL, REINTERRUPT_S)  # being handled: watch on
            return
        interrupt(signum, frame)

    def unraisable(info):
        # an interrupt a destructor swallowed is raised again: no traceback
        # ("Exception ignored in ...") for the user to read
        if not isinstance(info.exc_value, KeyboardInterrupt):
            hook(info)

    hook, sys.unraisablehook = sys.unraisablehook, unraisable
    previous = {sig: signal.signal(sig, handler) for sig, handler in (
        (signal.SIGTERM, interrupt), (signal.SIGINT, interrupt), (signal.SIGALRM, again))}
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sys.unraisablehook = hook


if __name__ == "__main__":
    sys.exit(main())
