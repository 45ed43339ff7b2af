"""Subcommands of the `maestro` CLI, in the order `maestro --help` lists them."""
from workbench.commands import analyze, bench, plan, program, run_seq, traffic

#: Modules with a `register(subparsers)` function.
COMMANDS = [traffic, run_seq, analyze, plan, program, bench]
