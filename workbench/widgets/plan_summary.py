"""What was asked and what the plan decided, in one place: the strategy,
cores, NIC and overrides asked for, the plan's strategy, and who decided
each object (the planner, the engineer's override, the override of another
object of its group, the strategy, an incomplete analysis)."""
from __future__ import annotations

from typing import Mapping

from rich.text import Text

from analyses.planner import Plan

STRATEGY_STYLES = {"shared-nothing": "bold green", "mixed": "bold yellow", "locks": "bold red",
                   "tm": "bold magenta"}
#: How each source of a decision reads in the table's "by" column.
SOURCE_WORDS = {"auto": "planner", "strategy": "strategy", "incomplete": "incomplete analysis",
                "holder": "handle holder"}


def overridden_in_group(plan: Plan, name: str, overrides: Mapping[str, str]) -> list[str]:
    """The objects of `name`'s group (other than it) the engineer overrode."""
    group = plan.object(name).group
    names = {o.name for o in plan.objects}
    return [n for n in overrides if n != name and n in names and plan.object(n).group == group]


def decided_by(plan: Plan, name: str, overrides: Mapping[str, str]) -> str:
    """Who decided object `name`: "you" (its override), "with X" (it
    follows X, the object of its group you overrode, or the group's leader
    the planner decided), "planner", "strategy"..."""
    obj = plan.object(name)
    if obj.source == "override":
        if name in overrides:
            return "you"
        others = overridden_in_group(plan, name, overrides)
        return f"with {', '.join(others)}" if others else "override"
    if obj.group != name:
        return f"with {obj.group}"
    return SOURCE_WORDS.get(obj.source, obj.source)


def summary_text(plan: Plan, strategy: str, overrides: Mapping[str, str]) -> Text:
    """`shared-nothing on 2 cores · e810 · asked: auto, no override`."""
    text = Text()
    text.append(plan.strategy, style=STRATEGY_STYLES.get(plan.strategy, "bold"))
    text.append(f" on {plan.cores} core{'s' if plan.cores != 1 else ''} · {plan.nic}")
    text.append(" · asked: ", style="dim")
    text.append(f"strategy {strategy}")
    if overrides:
        text.append(", override" + ("s " if len(overrides) > 1 else " "))
        text.append(", ".join(f"{k}={v}" for k, v in overrides.items()), style="yellow")
        text.append(" (u undoes)", style="dim")
    else:
        text.append(", no override", style="dim")
    return text
