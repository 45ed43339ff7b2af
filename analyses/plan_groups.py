"""Groups of state objects and the RSS requirements that shard them.

Objects reached through another object's index or value
("flow_chain.index", "flow_map.value") form a group with it (same entry,
same core).  `build_groups` makes the groups of an analysis and, for each,
the requirements (analyses/rss.py) RSS must satisfy for every pair of
packets that may reach one entry to land on one core: same key on the same
device, related fields across devices, cell relations.  Key parts are
aligned bit by bit (`KeyPart`): fields the NIC does not hash relate nothing.
"""
from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field

from analyses import rss
from analyses.fields import is_packet_field
from analyses.model import Access, Analysis, Relation
from analyses.nic import HASHED_FIELDS
from analyses.plan_values import Plan

#: Derived values that name the entry of the object that produced them.
#: ("expired": an index the core's own chain expired, an entry it owns.)
_FOLLOW = ("index", "value", "expired")
#: Operations that only read an object.
READS = ("read", "verify")
#: Operations in words ("flow_map written").
VERBS = {"read": "read", "write": "written", "create": "allocated", "update": "refreshed",
         "verify": "checked", "destroy": "freed", "expire": "expired"}


# --- key parts as bits --------------------------------------------------------

_SLICE = re.compile(r"^(.+)\[(\d+):(\d+)\]$")
_CONST = re.compile(r"(0x[0-9a-fA-F]+) \+")


@dataclass(frozen=True)
class KeyPart:
    """A key part: its width (None: unknown) and, per bit (most significant
    first), the packet field bit it equals, or None when unrelatable."""

    text: str
    width: int | None
    bits: tuple[tuple[str, int] | None, ...]


def _parse_part(part: str, offset_tag: str = "") -> KeyPart:
    if part.startswith("const:"):
        digits = part[len("const:0x"):] if part.startswith("const:0x") else ""
        return KeyPart(part, 4 * len(digits) if digits else None, (None,) * (4 * len(digits)))
    if not is_packet_field(part):
        return KeyPart(part, None, ())  # a derived value: width unknown
    base, _, mark = part.partition("~")
    name, lo, width = base, 0, None
    if m := _SLICE.match(base):
        name, lo, width = m.group(1), 8 * int(m.group(2)), 8 * (int(m.group(3)) - int(m.group(2)))
    elif "/" in base:
        name, bits = base.split("/", 1)
        width = int(bits)
    full = rss.FIELD_BITS.get(name)
    if width is None:
        width = full if full is not None else 8
    if full is None or mark in ("hash", "masked", "shuffled") or mark.startswith("hash"):
        width = None if mark == "hash" else width
        return KeyPart(part, width, (None,) * (width or 0))
    token = name if not mark or mark == "bswap" else f"{name}~{mark}{offset_tag}"
    bits = [(token, lo + k) for k in range(width)]
    if mark == "bswap":
        octets = [bits[i:i + 8] for i in range(0, width, 8)]
        bits = [b for octet in reversed(octets) for b in octet]
    return KeyPart(part, width, tuple(bits))


def _offset_tag(access: Access) -> str:
    """The constant of a "field~offset" key, so only equal offsets relate."""
    expr = (access.derived_from or {}).get("expr", "")
    m = _CONST.search(expr)
    return f"#{m.group(1)}" if m else f"#{expr}"


def _align(a: list[KeyPart], b: list[KeyPart]) -> tuple[rss.BitEq, ...]:
    """Bit equalities between two keys that are equal: part by part when
    their widths match, bit by bit when both total widths are known."""
    pairs: list[tuple[tuple[str, int] | None, tuple[str, int] | None]] = []
    if len(a) == len(b) and all(x.width == y.width for x, y in zip(a, b)):
        for x, y in zip(a, b):
            pairs += list(zip(x.bits, y.bits))
    elif all(x.width is not None for x in a + b) and sum(x.width for x in a) == sum(y.width for y in b):
        pairs = list(zip([bit for x in a for bit in x.bits], [bit for y in b for bit in y.bits]))
    runs: list[list] = []
    for x, y in pairs:
        if x is None or y is None:
            continue
        (fa, ia), (fb, ib) = x, y
        if "~" in fa or "~" in fb:  # field + constant: equal only to the same expression
            if fa != fb:
                continue
            fa = fb = fa.split("~")[0]
        if fa not in rss.FIELD_BITS or fb not in rss.FIELD_BITS:
            continue
        last = runs[-1] if runs else None
        if last and last[0] == fa and last[2] == fb and last[1] + last[4] == ia and last[3] + last[4] == ib:
            last[4] += 1
        else:
            runs.append([fa, ia, fb, ib, 1])
    return tuple(rss.BitEq(*r) for r in runs)


def hashed_parts(parts: list[KeyPart]) -> list[str]:
    """Hashed fields a key's bits come from."""
    return list(dict.fromkeys(b[0].split("~")[0] for p in parts for b in p.bits
                              if b and b[0].split("~")[0] in HASHED_FIELDS))


def _types(parts: list[KeyPart]) -> tuple[str, ...]:
    """Hash types packets reaching this key can arrive with: a key on ports
    means TCP/UDP; on addresses only, any IPv4 packet."""
    fields = {b[0].split("~")[0] for p in parts for b in p.bits if b}
    return rss.L4_ONLY if fields & {"l4.sport", "l4.dport"} else rss.ALL_TYPES


# --- groups and the accesses that reach them ----------------------------------


@dataclass
class Side:
    """One way packets of one device reach an object's entries."""

    object: str
    device: int
    key: tuple[str, ...]
    parts: list[KeyPart]
    arbitrary: str = ""  # why any packet may reach any entry, else ""
    ops: list[str] = field(default_factory=list)
    functions: list[str] = field(default_factory=list)

    def describe(self) -> str:
        """"read/written on device 0 by (ipv4.src, ...) in nf_process"."""
        ops = "/".join(dict.fromkeys(VERBS.get(op, op) for op in self.ops))
        where = f" in {'/'.join(dict.fromkeys(self.functions))}" if self.functions else ""
        key = ", ".join(self.key) if self.key else "-"
        if len(self.key) > 1:
            key = f"({key})"
        return f"{ops} on device {self.device} {'at' if self.arbitrary else 'by'} {key}{where}"


@dataclass
class Group:
    """Written objects that share entries (one reaches the other's through
    an index or a value) and how packets reach them."""

    name: str
    members: list[str]
    written: bool
    sides: list[Side] = field(default_factory=list)
    covered: list[Side] = field(default_factory=list)
    guards: list[Relation] = field(default_factory=list)
    follows: dict[str, list[str]] = field(default_factory=dict)
    requirements: list[rss.Requirement] = field(default_factory=list)
    #: device -> object -> functions that write it there (expiry aside)
    writes: dict[int, dict[str, list[str]]] = field(default_factory=dict)

    def devices(self) -> set[int]:
        out = {s.device for s in self.sides + self.covered}
        for rel in self.guards:
            out |= set(rel.devices)
        return out


def _derived(part: str) -> tuple[str, str] | None:
    """(object, what) of a derived key part, None for a packet field/constant."""
    if part.startswith("const:") or is_packet_field(part):
        return None
    base, tilde, mark = part.partition("~")
    obj, _, what = base.rpartition(".")
    # a transformed value (index + 1, a hash of it) names another entry: keep
    # the mark so that it does not count as the producer's own entry
    return (obj, what + tilde + mark) if obj else None


def build_groups(analysis: Analysis) -> list[Group]:
    """Objects grouped by shared entries, with the sides that reach them."""
    names = [o.name for o in analysis.objects]
    parent = {n: n for n in names}

    def find(n: str) -> str:
        while parent[n] != n:
            parent[n] = parent[parent[n]]
            n = parent[n]
        return n

    for access in analysis.accesses:
        for part in access.key_fields:
            if (d := _derived(part)) and d[1] in _FOLLOW and d[0] in parent and access.object in parent:
                a, b = find(access.object), find(d[0])
                if a != b:  # the earlier-allocated object names the group
                    first, second = sorted((a, b), key=names.index)
                    parent[second] = first
    members: dict[str, list[str]] = defaultdict(list)
    for n in names:
        members[find(n)].append(n)
    written = {o.name for o in analysis.objects if o.written}
    groups = {root: Group(root, ms, any(m in written for m in ms)) for root, ms in members.items()}
    for rel in analysis.relations:
        if rel.object in parent and rel.via != "key":
            groups[find(rel.object)].guards.append(rel)
    classes: dict[tuple, Side] = {}
    for access in analysis.accesses:
        if access.object not in parent or not access.key_fields or access.key_kind == "none":
            continue
        group = groups[find(access.object)]
        if access.op not in READS:
            for device in access.device:
                functions = group.writes.setdefault(device, {}).setdefault(access.object, [])
                if access.function and access.function not in functions:
                    functions.append(access.function)
        derived = [_derived(p) for p in access.key_fields]
        packet = [p for p, d in zip(access.key_fields, derived) if d is None and not p.startswith("const:")]
        # the content of a cell of the group's own vector: on a core, what
        # that core's packets stored there, so an entry of its own instance
        own = [d and (d[1] in _FOLLOW or (d[1] == "cell" and d[0] in parent and find(d[0]) == find(access.object)))
               for d in derived]
        if not packet and all(own):
            group.follows.setdefault(access.object, [])
            group.follows[access.object] += [p for p in access.key_fields if p not in group.follows[access.object]]
            continue
        tag = _offset_tag(access)
        parts = [_parse_part(p, tag) for p in access.key_fields]
        arbitrary = ""
        if not packet:
            others = [f"{d[0]}.{d[1]}" for d in derived if d and d[1] not in _FOLLOW]
            arbitrary = (f"through {', '.join(others)}, a value no packet field determines" if others
                         else "at a constant index, which every packet reaches")
        for device in access.device:
            covered = not arbitrary and _guarded(access, device, group.guards)
            sig = (access.object, device, tuple(access.key_fields), tag, covered)
            side = classes.get(sig)
            if side is None:
                side = classes[sig] = Side(access.object, device, tuple(access.key_fields), parts, arbitrary)
                (group.covered if covered else group.sides).append(side)
            side.ops.append(access.op)
            if access.function:
                side.functions.append(access.function)
    ordered = sorted(groups.values(), key=lambda g: names.index(g.name))
    for group in ordered:
        leader = next((s.object for s in group.sides if not s.arbitrary), None)
        if leader and leader != group.name:  # name the group after its keyed object
            group.name = leader
        group.requirements = group_requirements(group)
    return ordered


def _guarded(access: Access, device: int, guards: list[Relation]) -> bool:
    """Whether a guard relation covers this access on this device: the key
    is the relation's reader key, and the access only reads or happens after
    the cell comparison."""
    key = ",".join(access.key_fields)
    for rel in guards:
        via = rel.via.split("@", 1)[1] if "@" in rel.via else rel.via.split(":", 1)[-1]
        if rel.devices[1] == device and via in (key, *access.key_fields):
            if access.op in READS or f"{rel.object}.cell" in access.condition_fields:
                return True
    return False


def group_requirements(group: Group) -> list[rss.Requirement]:
    """What the group needs from RSS: keyed sides of one object pairwise;
    sides that may reach any entry against every side; guard relations."""
    reqs: list[rss.Requirement] = []
    sides = group.sides
    for i, a in enumerate(sides):
        for b in sides[i:]:
            if a.arbitrary or b.arbitrary:
                equal: tuple = ()
                why = a if a.arbitrary else b
                other = b if why is a else a
                label = (f"{why.object} {why.describe()} and {other.object} {other.describe()}: "
                         f"{why.object} is reached {why.arbitrary}")
            elif a.object == b.object:
                equal = _align(a.parts, b.parts)
                label = f"{a.object}: {a.describe()} and {b.describe()}" if a is not b else \
                    f"{a.object}: {a.describe()} (packets with equal keys)"
            else:  # two keyed objects that share entries, no known relation
                equal = ()
                label = f"{a.object} ({a.describe()}) and {b.object} ({b.describe()}) share entries"
            reqs.append(rss.Requirement(
                a.device, b.device, equal,
                rss.ALL_TYPES if a.arbitrary else _types(a.parts),
                rss.ALL_TYPES if b.arbitrary else _types(b.parts), label, group.name))
    for rel in group.guards:
        writer = [_parse_part(x) for x, _ in rel.field_pairs]
        reader = [_parse_part(y) for _, y in rel.field_pairs]
        pairs = ", ".join(f"{x} = {y}" for x, y in rel.field_pairs)
        label = (f"{rel.object} cell relation: device {rel.devices[0]}'s {', '.join(x for x, _ in rel.field_pairs)} "
                 f"stored in the cell, compared on device {rel.devices[1]} ({pairs})")
        reqs.append(rss.Requirement(rel.devices[0], rel.devices[1], _align(writer, reader),
                                    _types(writer), _types(reader), label, group.name))
    # Cross-device and arbitrary requirements first: they make the best examples.
    reqs.sort(key=lambda r: (r.a_device == r.b_device and bool(r.equal), not r.equal))
    return reqs


def plan_requirements(analysis: Analysis, plan_value: "Plan") -> list[rss.Requirement]:
    """The RSS requirements of the groups a plan shards (what its keys
    satisfy), e.g. to synthesize other keys for them."""
    sharded = {o.group for o in plan_value.objects if o.decision == "shard"}
    return [r for g in build_groups(analysis) if g.name in sharded for r in g.requirements]
