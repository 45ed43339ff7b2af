"""Subcommands of the `maestro` CLI, in the order `maestro --help` lists them."""
from workbench.commands import run_seq, traffic

#: Modules with a `register(subparsers)` function.
COMMANDS = [traffic, run_seq]
