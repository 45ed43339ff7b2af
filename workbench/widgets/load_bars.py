"""Key quality: per-core load bars for each traffic profile, the max/mean
imbalance and the RETA entries the traffic reaches."""
from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from analyses.planner import Quality

#: Profile names of the planner's quality report, in words.
PROFILE_TITLES = {"uniform": "uniform", "zipf": "Zipf", "src16": "one /16"}
BAR_WIDTH = 5
_EIGHTHS = " ▏▎▍▌▋▊▉█"


def bar(share: float, scale: float, width: int = BAR_WIDTH) -> str:
    """A horizontal bar of `share` against `scale` (the bar's full length)."""
    eighths = round(width * 8 * min(share / scale, 1.0)) if scale > 0 else 0
    return ("█" * (eighths // 8) + (_EIGHTHS[eighths % 8] if eighths % 8 else "")).ljust(width)


def quality_table(quality: Quality, reta_size: int, bar_width: int = BAR_WIDTH) -> Table:
    """Rows: cores; columns: profiles; cells: a bar and the core's share
    (bar_width 0, a narrow table: the share alone, without the RETA row)."""
    table = Table(box=None, padding=(0, 1, 0, 0), show_edge=False, header_style="bold",
                  caption=f"RETA hit: entries reached per device, of {reta_size}" if bar_width else None,
                  caption_justify="left")
    table.add_column("core", justify="right")
    profiles = quality.profiles
    scale = max((max(p.load) for p in profiles if p.load), default=0.0)
    for p in profiles:
        table.add_column(PROFILE_TITLES.get(p.profile, p.profile))
    for core in range(quality.cores):
        cells = []
        for p in profiles:
            share = p.load[core] if core < len(p.load) else 0.0
            heavy = share * quality.cores > 1.25
            shown = f"{bar(share, scale, bar_width)} {share:5.1%}" if bar_width else f"{share:5.1%}"
            cells.append(Text(shown, style="yellow" if heavy else ""))
        table.add_row(str(core), *cells)
    table.add_row("max/mean", *[Text(f"{p.max_mean:.2f}" + (f" (≥{p.floor:.2f})" if p.floor > 1 else ""),
                                     style="bold") for p in profiles])
    if bar_width:
        table.add_row("RETA hit", *[Text("/".join(map(str, p.distinct))) for p in profiles])
    return table


class LoadBars(Static):
    """Shows `quality_table` of the quality given to `show` (without bars
    when the widget is too narrow for them)."""

    #: Narrower than this, the shares are shown without bars.
    BARS_FROM = 44

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id)
        self.shown: tuple[Quality | None, int] = (None, 0)

    def show(self, quality: Quality | None, reta_size: int = 0) -> None:
        self.shown = (quality, reta_size)
        bars = BAR_WIDTH if (self.size.width or self.BARS_FROM) >= self.BARS_FROM else 0
        self.update(quality_table(quality, reta_size, bars) if quality else "")

    def on_resize(self) -> None:
        self.show(*self.shown)
