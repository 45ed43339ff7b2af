"""The RSS configuration of a plan: per device, the key and the fields its
RETA index depends on; the RETA's size and spread."""
from __future__ import annotations

from collections import Counter

from rich.text import Text
from textual.widgets import Static

from analyses.planner import Plan

HEX_PER_LINE = 40


def rss_text(plan: Plan) -> Text:
    """Keys (hex, wrapped), hashed fields, dependence, RETA spread."""
    text = Text()
    for device, key in sorted(plan.rss.items()):
        text.append(f"device {device}", style="bold")
        text.append(f"  {key.key_bytes}-byte key, RETA index from ")
        text.append(", ".join(key.depends_on) or "nothing (constant)",
                    style="green" if key.depends_on else "red")
        for i in range(0, len(key.key), HEX_PER_LINE):
            text.append("\n  " + key.key[i:i + HEX_PER_LINE], style="dim")
        text.append("\n")
    counts = Counter(plan.reta)
    spread = " ".join(f"{core}:{counts.get(core, 0)}" for core in range(plan.cores))
    text.append(f"RETA: {len(plan.reta)} entries, per core {spread}", style="")
    return text


class RssKeys(Static):
    """Shows `rss_text` of the plan given to `show`."""

    def show(self, plan: Plan | None) -> None:
        self.update(rss_text(plan) if plan else "")
