"""The plan in words: each object's reason, the notes on the keys and the
explanation (`Plan.explanation`), from the decisions the planner made."""
from __future__ import annotations

from dataclasses import dataclass

from analyses import rss
from analyses.fields import is_packet_field
from analyses.model import Analysis, Relation
from analyses.nic import HASHED_FIELDS, IPV4_L4, NicProfile
from analyses.plan_groups import Group, KeyPart, Side
from analyses.plan_values import ObjectPlan, Plan

@dataclass
class Decision:
    decision: str
    source: str
    why: str = ""


# --- describing ---------------------------------------------------------------


def object_plans(analysis: Analysis, groups: list[Group], by_object: dict[str, Group],
                  decisions: dict[str, Decision], written: set[str],
                  live: dict[int, list[str]]) -> list[ObjectPlan]:
    out = []
    for obj in analysis.objects:
        group = by_object[obj.name]
        decision = decisions.get(group.name)
        if decision is None or (obj.name not in written and decision.source not in ("override", "incomplete",
                                                                                     "holder")):
            decision = Decision("replicate", "auto")
        shard_on = {d: live.get(d, []) for d in sorted(group.devices())} if decision.decision == "shard" else {}
        out.append(ObjectPlan(obj.name, obj.kind, decision.decision,
                              _reason(analysis, obj.name, group, decision, shard_on, written),
                              group.name, shard_on, decision.source))
    return out


def _reason(analysis: Analysis, name: str, group: Group, decision: Decision,
            shard_on: dict[int, list[str]], written: set[str]) -> str:
    """One sentence naming the accesses and fields behind a decision."""
    mine = [s for s in group.sides if s.object == name]
    if decision.decision == "replicate":
        reads = [s.describe() for s in mine] or [f"reached through {', '.join(group.follows.get(name, []))}"
                                                 if group.follows.get(name) else "never read by packets"]
        return (f"replicated: never written after nf_init ({'; '.join(reads)}), so each core "
                "reads its own copy")
    if decision.decision == "lock":
        if decision.source in ("incomplete", "holder"):
            return f"shared under a lock: {decision.why}"
        if decision.source == "override":
            return f"shared under a lock ({decision.why})"
        if decision.source == "strategy":
            return f"shared under a lock ({decision.why}): {_accesses(name, group)}"
        if name != group.name:
            return (f"shared under a lock with {group.name}, whose entries it shares "
                    f"({_accesses(name, group)}): see {group.name}")
        return f"shared under a lock: {decision.why}"
    where = "; ".join(f"device {d} by {', '.join(f) or 'nothing (constant)'}" for d, f in shard_on.items())
    if name == group.name and mine:
        unhashed = sorted({k.split('/')[0].split('~')[0] for s in mine for k in s.key
                           if is_packet_field(k) and k.split('/')[0].split('~')[0] not in HASHED_FIELDS})
        extra = f" ({', '.join(unhashed)} not hashed, ignored)" if unhashed else ""
        guards = "".join(f"; {_guard_text(rel, group)}" for rel in group.guards)
        return (f"sharded: {'; '.join(s.describe() for s in mine)}{extra}{guards}; the RSS keys send "
                f"related packets to one core (RETA index from {where})")
    via = ", ".join(group.follows.get(name, [])) or ", ".join(dict.fromkeys(k for s in mine for k in s.key))
    covered = [s for s in group.covered if s.object == name]
    guard = f"; on device {covered[0].device} it is reached by {', '.join(covered[0].key)} only for packets " \
            f"that pass the cell comparison" if covered else ""
    return (f"sharded with {group.name}: reached through {via}, the entry {group.name}'s packets own, "
            f"so it lives on their core{guard}")


def _accesses(name: str, group: Group) -> str:
    sides = [s for s in group.sides + group.covered if s.object == name]
    if sides:
        return "; ".join(f"{name} {s.describe()}" for s in sides)
    return f"reached through {', '.join(group.follows.get(name, []))}" if group.follows.get(name) else "written"


def _guard_text(rel: Relation, group: Group) -> str:
    pairs = ", ".join(f"{x} = {y}" for x, y in rel.field_pairs)
    via = rel.via.split("@", 1)[-1]
    return (f"device {rel.devices[1]} reaches {rel.object} at {via} and proceeds only when the cell's "
            f"fields match ({pairs} between devices {rel.devices[0]} and {rel.devices[1]})")


def key_notes(accepted: list[Group], keys: dict[int, bytes], reta_bits: int) -> list[str]:
    notes = []
    for group in accepted:
        for rel in group.guards:
            notes.append(
                f"{group.name}: entries reached through {rel.via.split('@', 1)[-1]} are allocated per core, "
                "so values derived from them (e.g. external ports) may repeat on different cores for "
                "packets the keys keep apart")
    coarsest: dict[int, tuple[int, Group, Side, KeyPart]] = {}
    for group in accepted:
        for side in group.sides:
            for part in side.parts:
                prefix = _prefix_limit(part, keys.get(side.device), reta_bits)
                if prefix and prefix < coarsest.get(side.device, (99,))[0]:
                    coarsest[side.device] = (prefix, group, side, part)
    for prefix, group, side, part in coarsest.values():
        notes.append(
            f"{side.object} is keyed by {part.text} on device {side.device}, and the RETA index there "
            f"depends on nothing else: all packets from one /{prefix} share a core, so traffic from a "
            f"single /{prefix} cannot spread (--set {group.name}=lock shards the rest on finer keys)")
    if any(r.a_types == rss.L4_ONLY for g in accepted for r in g.requirements):
        notes.append("the NIC hashes IPv4 fragments on addresses only: a first fragment carrying ports "
                     "may reach another core than the rest of its flow")
    return list(dict.fromkeys(notes))


def _prefix_limit(part: KeyPart, key: bytes | None, reta_bits: int) -> int | None:
    """n when `part` is a prefix field/n and the key's RETA index depends on
    no input bit outside that prefix."""
    bits = [b for b in part.bits if b]
    if key is None or not bits or "/" not in part.text.split("~")[0]:
        return None
    name = bits[0][0]
    offset = IPV4_L4.offset(name)
    if offset is None:
        return None
    allowed = {offset + k for _, k in bits}
    windows = rss.index_windows(key, reta_bits)
    if all(i in allowed for i, w in enumerate(windows) if w):
        return len(bits)
    return None


def with_explanation(p: Plan, profile: NicProfile) -> Plan:
    lines = []
    shard = [o.name for o in p.objects if o.decision == "shard"]
    lock = [o.name for o in p.objects if o.decision == "lock"]
    rep = [o.name for o in p.objects if o.decision == "replicate"]
    headline = {
        "shared-nothing": "every written object is sharded by RSS" if shard else "no object is written by packets",
        "mixed": "some objects are sharded by RSS and the others shared under a lock",
        "locks": "no written object can be sharded; they are shared under locks",
        "tm": "written objects are shared under transactional memory",
    }[p.strategy]
    if not p.complete:
        headline = ("the analysis is INCOMPLETE, so nothing is proved: every object and every variable "
                    "of the NF is shared under " + ("transactional memory" if p.strategy == "tm" else "a lock"))
    lines.append(f"{p.nf}: {p.strategy} plan on {p.cores} cores ({profile.title}): {headline}"
                 + (f" (requested: {p.requested})" if p.requested != "auto" else "") + ".")
    lines += [f"Incomplete: {cause}" for cause in p.incomplete]
    if p.shared_variables:
        lines.append(f"One instance for all cores (variables of the NF): {', '.join(p.shared_variables)}; "
                     "nf_process reads and writes them directly, which no lock can intercept, so every "
                     "packet runs under the exclusive lock (or in a transaction).")
    if shard:
        checks = f"{p.proof.checks} check{'s' if p.proof.checks != 1 else ''}"
        lines.append(f"Sharded: {', '.join(shard)}; z3 {'proves' if p.proof.result == 'unsat' else 'does not prove'} "
                     f"the RSS keys keep related packets on one core ({p.proof.result}, {checks}, "
                     f"{p.proof.seconds:.2f} s).")
    if rep:
        lines.append(f"Replicated (read-only after nf_init): {', '.join(rep)}.")
    if lock:
        lines.append(f"Locked: {', '.join(lock)}.")
    for o in p.objects:
        lines.append(f"{o.name}: {o.reason}.")
    for c in p.conflicts:
        line = f"Shared-nothing is impossible for {', '.join(c.objects)} (reason above)"
        if len(c.packets) == 2:
            a, b = c.packets
            line += (f": for example {rss.describe_packet(a)} and {rss.describe_packet(b)} may reach the "
                     f"same entry ({c.requirement}) but RSS sends them to different cores")
        lines.append(line + ".")
    round_robin = all(core == e % p.cores for e, core in enumerate(p.reta))
    lines.append(f"RETA: {len(p.reta)} entries shared by all devices, "
                 + ("round robin over the cores." if round_robin else
                    "each core's entries chosen by a linear map of all index bits (spreads keys on narrow "
                    "fields better than round robin)."))
    uniform = p.quality.profile("uniform")
    lines.append(f"Load on {p.cores} cores, max/mean: uniform {uniform.max_mean:.2f}, "
                 f"zipf {p.quality.profile('zipf').max_mean:.2f}, one source /16 "
                 f"{p.quality.profile('src16').max_mean:.2f}; RETA index depends on "
                 + "; ".join(f"device {d}: {', '.join(f) or 'nothing'}" for d, f in p.quality.depends_on.items())
                 + ".")
    lines += [f"Note: {n}." for n in p.notes]
    return Plan(**{**{k: getattr(p, k) for k in p.__dataclass_fields__}, "explanation": "\n".join(lines)})
