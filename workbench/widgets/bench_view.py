"""The Run screen's bench: a table that fills row by row and a scaling chart.

Rows are `codegen.bench.BenchRow`s as dicts (what the session saves): per
configuration its Mpps, Mpps per core, speedup over 1 core of the same
strategy, latency p50/p99 per core, and ns per packet with the harness, the
harness alone (the null NF) and without it.  The chart draws Mpps against
cores, one line per strategy (textual-plotext).  Both read only what they
need and skip values that are not numbers (a session is untrusted input).
"""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

from rich.text import Text
from textual.widgets import DataTable
from textual_plotext import PlotextPlot

#: (column key, label) of the table; a "note" column with the errors
#: follows once a configuration failed.
COLUMNS = (("strategy", "strategy"), ("cores", "cores"), ("mpps", "Mpps"), ("per_core", "per core"),
           ("speedup", "speedup"), ("latency", "p50/p99 µs"), ("ns", "ns/pkt"), ("harness", "harness"),
           ("nf_ns", "NF ns"))
#: Colours of the chart's lines, one per strategy in the order they come.
COLOURS = ("cyan", "green", "magenta", "yellow", "blue", "red")


def _number(value: Any) -> float | None:
    """A finite number, or None."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _cell(value: Any, fmt: str = "{:.2f}") -> str:
    number = _number(value)
    return "-" if number is None else fmt.format(number)


def row_cells(row: Mapping[str, Any]) -> list[str | Text]:
    """The table's cells of one bench row (COLUMNS, then its error if any)."""
    per_core = [m for m in (_number(v) for v in row.get("per_core_mpps") or []) if m is not None]
    latency = []
    for core in row.get("per_core_latency_ns") or []:
        if isinstance(core, Mapping) and _number(core.get("p50")) is not None \
                and _number(core.get("p99")) is not None:
            latency.append(f"{core['p50'] / 1e3:.1f}/{core['p99'] / 1e3:.1f}")
    error = row.get("error")
    return [str(row.get("strategy", "?")), str(row.get("cores", "?")), Text(_cell(row.get("mpps")), style="bold"),
            " ".join(f"{m:.2f}" for m in per_core) or "-", _cell(row.get("speedup"), "{:.2f}x"),
            " ".join(latency) or "-", _cell(row.get("ns_per_packet"), "{:.1f}"),
            _cell(row.get("harness_ns"), "{:.1f}"), _cell(row.get("nf_ns"), "{:.1f}"),
            *([Text(str(error).splitlines()[0][:80] if str(error) else "failed", style="red")] if error else [])]


class BenchTable(DataTable):
    """The bench's rows, one per configuration, in the order measured."""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes, show_cursor=False, zebra_stripes=True)
        self.rows_shown: list[Mapping[str, Any]] = []

    def on_mount(self) -> None:
        for key, label in COLUMNS:
            self.add_column(label, key=key)

    def show_rows(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Show exactly `rows` (a saved or finished bench)."""
        self.clear()
        if "note" in self.columns:
            self.remove_column("note")
        self.rows_shown = []
        for row in rows:
            self.add_bench_row(row)

    def add_bench_row(self, row: Mapping[str, Any]) -> None:
        """One more row (a configuration just measured)."""
        if not isinstance(row, Mapping):
            return
        self.rows_shown.append(row)
        cells = row_cells(row)
        if len(cells) > len(COLUMNS) and "note" not in self.columns:
            self.add_column("note", key="note", default="")
        self.add_row(*cells, *[""] * (len(self.columns) - len(cells)))


class ScalingChart(PlotextPlot):
    """Mpps against cores, one line per strategy; `series` holds what it draws
    (strategy -> [(cores, Mpps)], cores rising)."""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.series: dict[str, list[tuple[int, float]]] = {}
        self._draw()

    def show_rows(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Draw the rows that have a throughput."""
        series: dict[str, dict[int, float]] = {}
        for row in rows:
            if not isinstance(row, Mapping):
                continue
            mpps, cores = _number(row.get("mpps")), row.get("cores")
            if mpps is None or not isinstance(cores, int) or isinstance(cores, bool):
                continue
            series.setdefault(str(row.get("strategy", "?")), {})[cores] = mpps
        self.series = {name: sorted(points.items()) for name, points in series.items()}
        self._draw()
        self.refresh()

    def _draw(self) -> None:
        plt = self.plt
        plt.clear_figure()
        plt.title("Mpps vs cores")
        plt.xlabel("cores")
        if not self.series:
            return
        cores = sorted({c for points in self.series.values() for c, _ in points})
        for i, (name, points) in enumerate(self.series.items()):
            colour = COLOURS[i % len(COLOURS)]
            xs, ys = [c for c, _ in points], [m for _, m in points]
            plt.plot(xs, ys, label=name, marker="braille", color=colour)
            plt.scatter(xs, ys, marker="●", color=colour)  # a strategy of one point shows too
        plt.xticks(cores, [str(c) for c in cores])
        top = max(m for points in self.series.values() for _, m in points)
        plt.ylim(0, top * 1.15 if top > 0 else 1)
