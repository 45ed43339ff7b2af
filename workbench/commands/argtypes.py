"""Argument types for the CLI: every number is range-checked by argparse.

A bad value stops the parser with exit status 2 and one line naming the
option and the range, before anything runs (no hang on `--seconds nan`, no
traceback on `--packets 10000000000`).
"""
from __future__ import annotations

import argparse
import math
import shlex

#: Upper bounds that keep a run within memory: a trace of MAX_PACKETS
#: minimal frames takes about 10 GB; MAX_FLOWS frames are built one per flow.
MAX_PACKETS = 100_000_000
MAX_FLOWS = 10_000_000
#: Worker cores a program can have (codegen/runtime/dpdk/rt.h MAESTRO_MAX_WORKERS).
MAX_CORES = 64


def number(kind, low=None, high=None, *, what: str = "a number", above: bool = False):
    """An argparse type: `kind` (int or float) parsed from text, finite, in
    [low, high] ((low, high] with above=True); None leaves a side open."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if kind is float and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text} is not a finite number")
        too_low = low is not None and (value <= low if above else value < low)
        if too_low or (high is not None and value > high):
            lower = "" if low is None else (f"> {low}" if above else f">= {low}")
            upper = "" if high is None else f"<= {high}"
            raise argparse.ArgumentTypeError(f"{text} must be {' and '.join(filter(None, (lower, upper)))}")
        return value

    return parse


#: Common option types.
seconds = number(float, 0.0, what="a number of seconds", above=True)
seconds_or_zero = number(float, 0.0, what="a number of seconds")
packets = number(int, 1, MAX_PACKETS, what="an integer")
packets_or_zero = number(int, 0, MAX_PACKETS, what="an integer")
flows = number(int, 1, MAX_FLOWS, what="an integer")
cores = number(int, 1, MAX_CORES, what="an integer")


def number_list(kind, low=None, high=None, what="a number"):
    """An argparse type: comma-separated values of `number(kind, low, high)`, at least one."""
    one = number(kind, low, high, what=what)

    def parse(text: str):
        values = [one(x.strip()) for x in text.split(",") if x.strip()]
        if not values:
            raise argparse.ArgumentTypeError(f"{text!r}: expected a comma-separated list")
        return values

    return parse


def choice_list(choices):
    """An argparse type: comma-separated names, each one of `choices`, at least one."""

    def parse(text: str):
        values = [x.strip() for x in text.split(",") if x.strip()]
        bad = [v for v in values if v not in choices]
        if bad or not values:
            raise argparse.ArgumentTypeError(
                f"{(bad or [text])[0]!r} is not one of {', '.join(choices)}")
        return values

    return parse


def words(text: str) -> list[str]:
    """An argparse type: shell-like words (shlex), at least one (an EAL argument string)."""
    try:
        values = shlex.split(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: {exc}") from None
    if not values:
        raise argparse.ArgumentTypeError("an empty argument string")
    return values


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr (no usage block)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")
