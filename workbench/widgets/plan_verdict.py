"""The plan's verdict: the resulting strategy, z3's proof of the RSS keys,
why shared-nothing is impossible (with two packets that show it), notes."""
from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from analyses.planner import Plan

#: How z3's answer reads: unsat means no pair of related packets splits.
PROOF_WORDS = {
    "unsat": ("proved", "green"),
    "sat": ("NOT proved: related packets may split", "red"),
    "unknown": ("unknown (z3 gave up)", "yellow"),
}


def packet_text(label: str, packet: dict) -> Text:
    """`A  dev 0 → RETA 163 → core 1  ipv4.src=10.1.2.3 l4.sport=80 ...`."""
    text = Text(f"  {label}  ", style="bold")
    core = packet.get("core")
    text.append(f"dev {packet.get('device', '?')} → RETA {packet.get('reta', '?')}"
                + (f" → core {core}" if core is not None else ""), style="magenta")
    fields = packet.get("fields", {})
    text.append("  " + " ".join(f"{k}={v}" for k, v in fields.items()))
    if packet.get("hash"):
        text.append(f"  ({packet['hash']})", style="dim")
    return text


def plural(n: int, word: str) -> str:
    """"1 check", "3 checks"."""
    return f"{n} {word}{'' if n == 1 else 's'}"


def verdict_text(plan: Plan, *, show_seconds: bool = True, headline: bool = True) -> Text:
    """The verdict of a plan as rich text (headline: the strategy, cores and
    NIC first; the Decide screen shows them in its summary instead)."""
    text = Text()
    if not plan.complete:
        text.append("INCOMPLETE ANALYSIS", style="bold red")
        text.append(": every object is locked (nothing proved)\n")
    if headline:
        style = "bold green" if plan.strategy == "shared-nothing" else "bold yellow"
        text.append(plan.strategy, style=style)
        text.append(f" on {plan.cores} cores, {plan.nic}\n")
    if plan.sync == "tm":
        text.append("locked objects use transactional memory\n")
    words, colour = PROOF_WORDS.get(plan.proof.result, (plan.proof.result, "yellow"))
    sharded = any(o.decision == "shard" for o in plan.objects)
    text.append("z3 proof: ", style="bold")
    if sharded:
        text.append(f"{plan.proof.result}", style=f"bold {colour}")
        text.append(f" ({words}), {plural(plan.proof.checks, 'check')}")
        if show_seconds:
            text.append(f", {plan.proof.seconds:.2f} s")
    else:
        text.append("nothing sharded, nothing to prove", style="dim")
    if plan.proof.counterexample:
        example = plan.proof.counterexample
        text.append(f"\ncounterexample ({example.get('requirement', '')}):", style="red")
        for label, packet in zip("AB", example.get("packets", [])):
            text.append("\n")
            text.append(packet_text(label, packet))
    for conflict in plan.conflicts:
        text.append("\n\nShared-nothing is impossible for ", style="bold red")
        text.append(", ".join(conflict.objects), style="bold")
        text.append("\n" + conflict.reason)
        if len(conflict.packets) == 2:
            text.append("\nThese two packets may reach one entry but RSS sends them to different cores"
                        + (f" ({conflict.requirement})" if conflict.requirement else "") + ":", style="dim")
            for label, packet in zip("AB", conflict.packets):
                text.append("\n")
                text.append(packet_text(label, packet))
    for note in plan.notes:
        text.append("\nnote: ", style="yellow")
        text.append(note)
    return text


class PlanVerdict(Static):
    """Shows `verdict_text` of the plan given to `show` (None: none yet)."""

    def show(self, plan: Plan | None, *, headline: bool = True) -> None:
        self.update(verdict_text(plan, headline=headline) if plan else Text("No plan yet.", style="dim"))
