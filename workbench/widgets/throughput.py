"""Live throughput of a running program: per worker core a bar, its numbers
(Mpps, packets, the NF's drops, latency p50/p99 from injection to TX) and a
sparkline of its Mpps over the run, then the total and the drops, the NF's
(its verdicts: NF_DROP) apart from the NIC's (a full TX ring refused them)."""
from __future__ import annotations

from typing import Any, Mapping

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Sparkline, Static

from workbench.widgets.load_bars import bar

BAR_WIDTH = 10
#: Points kept per sparkline.
HISTORY = 120


def count(n: int | float) -> str:
    """A packet count, short: 1234567 -> 1.23M, 600000 -> 600k."""
    n = float(n)
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.3g}{unit}"
    return f"{n:.0f}"


class ThroughputRow(Horizontal):
    """One line: a label, a bar with numbers, and a sparkline."""

    DEFAULT_CSS = """
    ThroughputRow { height: 1; }
    ThroughputRow > .tp-label { width: 7; }
    ThroughputRow > .tp-numbers { width: auto; max-width: 70; }
    ThroughputRow > Sparkline { width: 1fr; min-width: 6; margin-left: 1; }
    """

    def __init__(self, label: str, key: str) -> None:
        super().__init__(id=f"{key}-row")
        self.label = label
        self.key = key
        self.history: list[float] = []

    def compose(self) -> ComposeResult:
        yield Static(self.label, classes="tp-label")
        yield Static("", id=f"{self.key}-numbers", classes="tp-numbers")
        yield Sparkline([], id=f"{self.key}-spark")

    def show(self, stats: Mapping[str, Any], scale: float, style: str = "") -> None:
        """Show one interval's numbers (`scale`: the Mpps a full bar stands for)."""
        mpps = float(stats.get("mpps", 0.0))
        self.history = (self.history + [mpps])[-HISTORY:]
        rx, drop = int(stats.get("rx", 0)), int(stats.get("drop", 0))
        text = Text()
        text.append(bar(mpps, scale, BAR_WIDTH), style=style or "green")
        text.append(f" {mpps:6.2f} Mpps", style="bold")
        text.append(f"  rx {count(rx):>5}  NF drop {count(drop):>5}")
        if stats.get("tx_fail"):
            text.append(f"  NIC drop {count(stats['tx_fail'])}", style="yellow")
        latency = stats.get("latency_ns")
        if latency:
            text.append(f"  p50 {latency['p50'] / 1e3:.1f} p99 {latency['p99'] / 1e3:.1f} µs", style="magenta")
        if stats.get("aborts"):
            text.append(f"  aborts {count(stats['aborts'])}", style="yellow")
        self.query_one(f"#{self.key}-numbers", Static).update(text)
        self.query_one(Sparkline).data = list(self.history)


class Throughput(Vertical):
    """The per-core rows and the total of the last stats (or final) event."""

    DEFAULT_CSS = """
    Throughput { height: auto; }
    Throughput > #tp-drops { height: auto; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.cores = 0
        self.last: dict[str, Any] = {}  # the last event shown
        self.scale = 0.0

    def compose(self) -> ComposeResult:
        yield Static(Text("No run yet: r runs the built program.", style="dim"), id="tp-drops")

    async def reset(self, workers: int) -> None:
        """Empty rows for `workers` cores and the total."""
        self.cores, self.last, self.scale = workers, {}, 0.0
        await self.query(ThroughputRow).remove()
        rows = [ThroughputRow(f"core {w}", f"core-{w}") for w in range(workers)]
        rows.append(ThroughputRow("total", "total"))
        await self.mount_all(rows, before=self.query_one("#tp-drops"))
        self.query_one("#tp-drops", Static).update(Text("starting…", style="dim"))

    def show(self, event: Mapping[str, Any]) -> None:
        """Show a stats or final event of the program."""
        lcores = list(event.get("lcores") or [])
        self.last = dict(event)
        core_peak = max((float(c.get("mpps", 0.0)) for c in lcores), default=0.0)
        self.scale = max(self.scale, core_peak, 1e-9)
        for core in lcores:
            worker = int(core.get("worker", 0))
            rows = self.query(f"#core-{worker}-row").results(ThroughputRow)
            for row in rows:
                row.show(core, self.scale)
        for row in self.query("#total-row").results(ThroughputRow):
            row.show(event, self.scale * max(1, len(lcores)), style="cyan")
        rx, tx, drop = int(event.get("rx", 0)), int(event.get("tx", 0)), int(event.get("drop", 0))
        nic = sum(int(c.get("tx_fail", 0) or 0) for c in lcores)
        text = Text()
        text.append("final  " if event.get("type") == "final" else f"t {float(event.get('t', 0)):5.1f} s  ",
                    style="bold")
        text.append(f"rx {rx}  tx {tx}  ")
        # The NF's verdicts (NF_DROP) are not losses; the NIC's are.
        text.append(f"NF drops {drop}" + (f" ({drop / rx:.1%}, its verdicts)" if rx else ""),
                    style="cyan" if drop else "")
        text.append(f"  NIC drops {nic}" + (" (TX ring full)" if nic else ""), style="bold yellow" if nic else "")
        if "conserved" in event:
            text.append("  packets conserved" if event["conserved"] else "  packets NOT conserved",
                        style="green" if event["conserved"] else "bold red")
        self.query_one("#tp-drops", Static).update(text)

    def core_mpps(self) -> dict[int, float]:
        """Worker core -> Mpps of the last event shown."""
        return {int(c.get("worker", 0)): float(c.get("mpps", 0.0)) for c in self.last.get("lcores") or []}
