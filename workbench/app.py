"""The Textual workbench, `maestro-tui [NF]`.

The app only composes screens; every screen calls the same functions as the
`maestro` CLI (analyses/, codegen/) and keeps no pipeline logic of its own.
"""
from __future__ import annotations

import argparse

from textual.app import App
from textual.binding import Binding

from workbench.screens.load import LoadScreen


class Workbench(App):
    """Walks an engineer from an NF to its parallel version."""

    TITLE = "maestro"
    SUB_TITLE = "parallelize a network function"
    CSS_PATH = "app.tcss"
    BINDINGS = [
        Binding("q", "quit", "Quit", id="quit", tooltip="Leave the workbench"),
    ]

    def __init__(self, nf: str | None = None) -> None:
        super().__init__()
        self.initial_nf = nf

    def on_mount(self) -> None:
        self.push_screen(LoadScreen(self.initial_nf))


def main(argv: list[str] | None = None) -> None:
    """Entry point of `maestro-tui`."""
    parser = argparse.ArgumentParser(prog="maestro-tui", description=__doc__)
    parser.add_argument("nf", nargs="?", help="sample name (fw) or path of an NF's .c file")
    args = parser.parse_args(argv)
    Workbench(args.nf).run()


if __name__ == "__main__":
    main()
