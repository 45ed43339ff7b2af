"""The planner: from an analysis report to a parallelization plan.

`plan(analysis, cores, nic, strategy, overrides)` decides, per state object,
whether it is sharded (each core owns the entries its packets reach; RSS
steers related packets to one core), replicated (read-only after nf_init:
one copy per core) or shared under a lock (or a transaction, strategy tm),
synthesizes one RSS key per device (analyses/rss.py) and proves it with z3.

How objects are decided:
- on an incomplete analysis (a budget stopped it, a path errored, an
  instruction or write was not modelled), nothing is proved: every object
  is shared under a lock, and so is every writable variable of the NF
  (`shared_variables`), whatever the strategy asks;
- objects nf_process never writes are replicated;
- objects reached through another object's index or value
  ("flow_chain.index", "flow_map.value") form a group with it: same entry,
  same core; a group is decided as a whole;
- a written group is sharded when RSS can keep every pair of packets that
  may reach one entry on one core: same key on the same device, related
  fields across devices, or a cell relation (NAT: a WAN packet reaches
  flow_keys through l4.dport but only proceeds when the cell's ipv4.dst,
  l4.dport equal its ipv4.src, l4.sport).  Fields the NIC does not hash
  (MACs, protocol) relate nothing; entries reached through a value stored by
  an earlier packet, a constant index, or a hash may be reached by any
  packet.  A group whose requirements leave a device's RETA index constant
  cannot be sharded and is locked (strategy auto), with the reason and a
  pair of packets from z3 that must share a core but do not;
- the NF's own variables (objects of kind "global") are decided like the
  others: a scalar every packet writes is reached at a constant index, so
  it is locked; an array indexed by a field RSS hashes can be sharded.  A
  locked variable becomes one instance for all cores (`shared_variables`,
  the generated program links every NF copy to it); the objects whose
  handles it holds are then locked with it.

JSON schema of `Plan` (top-level keys kept stable):

    schema       1
    nf           NF name
    strategy     "shared-nothing" | "mixed" | "locks" | "tm" (the result)
    requested    the strategy asked for: auto | shared-nothing | locks | tm
    sync         how locked objects are protected: "locks" | "tm" | null
    cores        worker cores N
    nic          NIC profile name (e810, x710, 82599, cx5)
    objects      [{name, kind, decision: shard|replicate|lock, reason (one
                 sentence), group (the object whose entries it follows),
                 shard_on {device: [fields]}, source: auto|strategy|override|
                 incomplete (the analysis is) | holder (a shared variable holds
                 its handle)}]
    rss          {device: {key (hex), key_bytes, hash_fields {hash type:
                 [fields]}, depends_on [fields the RETA index depends on,
                 "ipv4.src/16" for a prefix]}}
    reta         [core of each RETA entry], shared by all devices: round robin,
                 or (power-of-two cores) a linear map of all index bits when
                 it spreads the scoring traffic better; every core gets the
                 same number of entries
    proof        {result: unsat (proved) | sat | unknown, seconds, checks,
                 counterexample: null | {requirement, group, packets}}
    quality      {cores, profiles: [{profile, max_mean, floor, distinct
                 [entries reached per device], load [share per core]}],
                 depends_on {device: [fields]}}
    synthesis    {seconds, equations, rank, dimension, samples, index_bits}
    conflicts    [{objects, reason, requirement, packets}] why objects that
                 could not be sharded were locked, with two packets
    explanation  the decisions in sentences, one per line
    notes        caveats of the plan (per-core port ranges, /16 imbalance)
    complete     whether the analysis was complete (false: everything locked)
    incomplete   why it was not (the analysis's warnings), [] when complete
    shared_variables  ELF symbols of the NF variables with one instance
                 for all cores (locked globals; every writable one when the
                 analysis is incomplete)
"""
from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from analyses import rss
from analyses.errors import MaestroError
from analyses.fields import is_packet_field
from analyses.model import Access, Analysis, Relation
from analyses.nic import HASHED_FIELDS, IPV4_L4, NicProfile, nic_profile

SCHEMA_VERSION = 2
STRATEGIES = ("auto", "shared-nothing", "locks", "tm")
DECISIONS = ("shard", "replicate", "lock")
#: Derived values that name the entry of the object that produced them.
#: ("expired": an index the core's own chain expired, an entry it owns.)
_FOLLOW = ("index", "value", "expired")
_READS = ("read", "verify")
_VERBS = {"read": "read", "write": "written", "create": "allocated", "update": "refreshed",
          "verify": "checked", "destroy": "freed", "expire": "expired"}


# --- the plan value -----------------------------------------------------------


@dataclass(frozen=True)
class ObjectPlan:
    """The decision for one state object (see the module doc)."""

    name: str
    kind: str
    decision: str
    reason: str
    group: str
    shard_on: dict[int, list[str]] = field(default_factory=dict)
    source: str = "auto"


@dataclass(frozen=True)
class DeviceKey:
    """The RSS configuration of one device."""

    key: str
    key_bytes: int
    hash_fields: dict[str, list[str]]
    depends_on: list[str]

    def key_value(self) -> bytes:
        """The key as bytes."""
        return bytes.fromhex(self.key)


@dataclass(frozen=True)
class Proof:
    """z3's verdict on the chosen keys."""

    result: str
    seconds: float
    checks: int = 0
    counterexample: dict | None = None


@dataclass(frozen=True)
class ProfileQuality:
    """Load balance on one traffic profile."""

    profile: str
    max_mean: float
    floor: float
    distinct: list[int]
    load: list[float]


@dataclass(frozen=True)
class Quality:
    """How the keys spread traffic over the cores."""

    cores: int
    profiles: list[ProfileQuality]
    depends_on: dict[int, list[str]]

    def profile(self, name: str) -> ProfileQuality:
        """The figures of one profile."""
        return next(p for p in self.profiles if p.profile == name)


@dataclass(frozen=True)
class SynthesisStats:
    """Cost and size of the key synthesis."""

    seconds: float
    equations: int
    rank: int
    dimension: int
    samples: int
    index_bits: int


@dataclass(frozen=True)
class Conflict:
    """Why objects could not be sharded, with two packets that show it."""

    objects: list[str]
    reason: str
    requirement: str = ""
    packets: list[dict] = field(default_factory=list)


@dataclass(frozen=True)
class Plan:
    """A parallelization plan (see the module doc for the JSON schema)."""

    nf: str
    strategy: str
    requested: str
    sync: str | None
    cores: int
    nic: str
    objects: list[ObjectPlan]
    rss: dict[int, DeviceKey]
    reta: list[int]
    proof: Proof
    quality: Quality
    synthesis: SynthesisStats
    conflicts: list[Conflict]
    explanation: str
    notes: list[str] = field(default_factory=list)
    complete: bool = True
    incomplete: list[str] = field(default_factory=list)
    shared_variables: list[str] = field(default_factory=list)
    #: Analysis.digest() of the report the plan was made from ("" in plans
    #: saved before it was recorded).
    analysis_digest: str = ""

    def object(self, name: str) -> ObjectPlan:
        """The decision for object `name` (KeyError if none)."""
        for obj in self.objects:
            if obj.name == name:
                return obj
        raise KeyError(name)

    def decisions(self) -> dict[str, str]:
        """Object name -> decision."""
        return {o.name: o.decision for o in self.objects}

    def keys(self) -> dict[int, bytes]:
        """Device -> RSS key bytes."""
        return {d: k.key_value() for d, k in self.rss.items()}

    def to_json(self) -> dict[str, Any]:
        """The JSON document (plain dicts and lists, string dict keys)."""
        return {
            "schema": SCHEMA_VERSION,
            "nf": self.nf,
            "strategy": self.strategy,
            "requested": self.requested,
            "sync": self.sync,
            "cores": self.cores,
            "nic": self.nic,
            "objects": [_asdict(o) | {"shard_on": {str(d): f for d, f in o.shard_on.items()}}
                        for o in self.objects],
            "rss": {str(d): _asdict(k) for d, k in self.rss.items()},
            "reta": list(self.reta),
            "proof": _asdict(self.proof),
            "quality": {
                "cores": self.quality.cores,
                "profiles": [_asdict(p) for p in self.quality.profiles],
                "depends_on": {str(d): f for d, f in self.quality.depends_on.items()},
            },
            "synthesis": _asdict(self.synthesis),
            "conflicts": [_asdict(c) for c in self.conflicts],
            "explanation": self.explanation,
            "notes": list(self.notes),
            "complete": self.complete,
            "incomplete": list(self.incomplete),
            "shared_variables": list(self.shared_variables),
            "analysis_digest": self.analysis_digest,
        }

    def dumps(self) -> str:
        """The JSON document as indented text."""
        return json.dumps(self.to_json(), indent=2)

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> "Plan":
        """Rebuild from `to_json` output."""
        quality = doc["quality"]
        return cls(
            nf=doc["nf"], strategy=doc["strategy"], requested=doc["requested"], sync=doc["sync"],
            cores=doc["cores"], nic=doc["nic"],
            objects=[ObjectPlan(**(o | {"shard_on": {int(d): f for d, f in o["shard_on"].items()}}))
                     for o in doc["objects"]],
            rss={int(d): DeviceKey(**k) for d, k in doc["rss"].items()},
            reta=list(doc["reta"]),
            proof=Proof(**doc["proof"]),
            quality=Quality(quality["cores"], [ProfileQuality(**p) for p in quality["profiles"]],
                            {int(d): f for d, f in quality["depends_on"].items()}),
            synthesis=SynthesisStats(**doc["synthesis"]),
            conflicts=[Conflict(**c) for c in doc["conflicts"]],
            explanation=doc["explanation"], notes=list(doc.get("notes", [])),
            complete=doc.get("complete", True), incomplete=list(doc.get("incomplete", [])),
            shared_variables=list(doc.get("shared_variables", [])),
            analysis_digest=str(doc.get("analysis_digest", "")),
        )

    @classmethod
    def load(cls, path: str | Path) -> "Plan":
        """Read a saved plan."""
        return cls.from_json(json.loads(Path(path).read_text()))


def _asdict(value) -> dict[str, Any]:
    return {k: getattr(value, k) for k in value.__dataclass_fields__}


# --- key parts as bits --------------------------------------------------------

_SLICE = re.compile(r"^(.+)\[(\d+):(\d+)\]$")
_CONST = re.compile(r"(0x[0-9a-fA-F]+) \+")


@dataclass(frozen=True)
class _Part:
    """A key part: its width (None: unknown) and, per bit (most significant
    first), the packet field bit it equals, or None when unrelatable."""

    text: str
    width: int | None
    bits: tuple[tuple[str, int] | None, ...]


def _parse_part(part: str, offset_tag: str = "") -> _Part:
    if part.startswith("const:"):
        digits = part[len("const:0x"):] if part.startswith("const:0x") else ""
        return _Part(part, 4 * len(digits) if digits else None, (None,) * (4 * len(digits)))
    if not is_packet_field(part):
        return _Part(part, None, ())  # a derived value: width unknown
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
        return _Part(part, width, (None,) * (width or 0))
    token = name if not mark or mark == "bswap" else f"{name}~{mark}{offset_tag}"
    bits = [(token, lo + k) for k in range(width)]
    if mark == "bswap":
        octets = [bits[i:i + 8] for i in range(0, width, 8)]
        bits = [b for octet in reversed(octets) for b in octet]
    return _Part(part, width, tuple(bits))


def _offset_tag(access: Access) -> str:
    """The constant of a "field~offset" key, so only equal offsets relate."""
    expr = (access.derived_from or {}).get("expr", "")
    m = _CONST.search(expr)
    return f"#{m.group(1)}" if m else f"#{expr}"


def _align(a: list[_Part], b: list[_Part]) -> tuple[rss.BitEq, ...]:
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


def _hashed(parts: list[_Part]) -> list[str]:
    """Hashed fields a key's bits come from."""
    return list(dict.fromkeys(b[0].split("~")[0] for p in parts for b in p.bits
                              if b and b[0].split("~")[0] in HASHED_FIELDS))


def _types(parts: list[_Part]) -> tuple[str, ...]:
    """Hash types packets reaching this key can arrive with: a key on ports
    means TCP/UDP; on addresses only, any IPv4 packet."""
    fields = {b[0].split("~")[0] for p in parts for b in p.bits if b}
    return rss.L4_ONLY if fields & {"l4.sport", "l4.dport"} else rss.ALL_TYPES


# --- groups and the accesses that reach them ----------------------------------


@dataclass
class _Side:
    """One way packets of one device reach an object's entries."""

    object: str
    device: int
    key: tuple[str, ...]
    parts: list[_Part]
    arbitrary: str = ""  # why any packet may reach any entry, else ""
    ops: list[str] = field(default_factory=list)
    functions: list[str] = field(default_factory=list)

    def describe(self) -> str:
        """"read/written on device 0 by (ipv4.src, ...) in nf_process"."""
        ops = "/".join(dict.fromkeys(_VERBS.get(op, op) for op in self.ops))
        where = f" in {'/'.join(dict.fromkeys(self.functions))}" if self.functions else ""
        key = ", ".join(self.key) if self.key else "-"
        if len(self.key) > 1:
            key = f"({key})"
        return f"{ops} on device {self.device} {'at' if self.arbitrary else 'by'} {key}{where}"


@dataclass
class _Group:
    """Written objects that share entries (one reaches the other's through
    an index or a value) and how packets reach them."""

    name: str
    members: list[str]
    written: bool
    sides: list[_Side] = field(default_factory=list)
    covered: list[_Side] = field(default_factory=list)
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


def build_groups(analysis: Analysis) -> list[_Group]:
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
    groups = {root: _Group(root, ms, any(m in written for m in ms)) for root, ms in members.items()}
    for rel in analysis.relations:
        if rel.object in parent and rel.via != "key":
            groups[find(rel.object)].guards.append(rel)
    classes: dict[tuple, _Side] = {}
    for access in analysis.accesses:
        if access.object not in parent or not access.key_fields or access.key_kind == "none":
            continue
        group = groups[find(access.object)]
        if access.op not in _READS:
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
                side = classes[sig] = _Side(access.object, device, tuple(access.key_fields), parts, arbitrary)
                (group.covered if covered else group.sides).append(side)
            side.ops.append(access.op)
            if access.function:
                side.functions.append(access.function)
    ordered = sorted(groups.values(), key=lambda g: names.index(g.name))
    for group in ordered:
        leader = next((s.object for s in group.sides if not s.arbitrary), None)
        if leader and leader != group.name:  # name the group after its keyed object
            group.name = leader
        group.requirements = _requirements(group)
    return ordered


def _guarded(access: Access, device: int, guards: list[Relation]) -> bool:
    """Whether a guard relation covers this access on this device: the key
    is the relation's reader key, and the access only reads or happens after
    the cell comparison."""
    key = ",".join(access.key_fields)
    for rel in guards:
        via = rel.via.split("@", 1)[1] if "@" in rel.via else rel.via.split(":", 1)[-1]
        if rel.devices[1] == device and via in (key, *access.key_fields):
            if access.op in _READS or f"{rel.object}.cell" in access.condition_fields:
                return True
    return False


def _requirements(group: _Group) -> list[rss.Requirement]:
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


# --- deciding -----------------------------------------------------------------


@dataclass
class _Decision:
    decision: str
    source: str
    why: str = ""


def plan(analysis: Analysis, cores: int, nic: str | NicProfile = "e810", strategy: str = "auto",
         overrides: Mapping[str, str] | None = None, *, seed: int = 0, samples: int = 24) -> Plan:
    """The parallelization plan of `analysis` on `cores` cores (see the
    module doc).  overrides: object name -> shard | replicate | lock.
    Raises MaestroError when a strategy or an override cannot be honoured."""
    profile = nic_profile(nic)
    if strategy not in STRATEGIES:
        raise MaestroError(f"unknown strategy {strategy!r} (one of {', '.join(STRATEGIES)})")
    if not 1 <= cores <= profile.reta_size:
        raise MaestroError(f"cores must be in 1..{profile.reta_size} ({profile.title} RETA size), got {cores}")
    devices = max(analysis.devices, 1)
    groups = build_groups(analysis)
    by_object = {m: g for g in groups for m in g.members}
    complete = analysis.stats.complete
    if not complete:
        _refuse_on_incomplete(analysis, strategy, dict(overrides or {}))
    wanted, origin = _check_overrides(analysis, groups, by_object, dict(overrides or {}), strategy)
    written = {o.name for o in analysis.objects if o.written}

    decisions: dict[str, _Decision] = {}
    locked = _forced_locks(analysis, groups, by_object) if complete else {
        g.name: _incomplete_reason(analysis) for g in groups}
    for name, why in locked.items():
        if wanted.get(name) == "shard" or (strategy == "shared-nothing" and complete):
            raise MaestroError(f"{analysis.nf}: cannot shard {name}: {why}")
        decisions[name] = _Decision("lock", "incomplete" if not complete else "holder", why)
    accepted: list[_Group] = []
    conflicts: list[tuple[_Group, str, list[rss.Requirement]]] = []
    order = [g for g in groups if wanted.get(g.name) == "shard" and g.name not in locked] + \
            [g for g in groups if g.written and g.name not in wanted and g.name not in locked]
    for group in order:
        forced = wanted.get(group.name) == "shard" or strategy == "shared-nothing"
        if wanted.get(group.name) != "shard" and strategy in ("locks", "tm"):
            decisions[group.name] = _Decision("lock", "strategy", f"--strategy {strategy}")
            continue
        problem = _shard_problem(group, accepted, devices, profile)
        if problem is None:
            accepted.append(group)
            decisions[group.name] = _Decision("shard", "override" if group.name in wanted else "auto")
            continue
        reason, blocking = problem
        if forced:
            what = (f"--set {origin[group.name]}=shard" if wanted.get(group.name) == "shard"
                    else "--strategy shared-nothing")
            raise MaestroError(f"{analysis.nf}: cannot honour {what}: {reason}")
        decisions[group.name] = _Decision("lock", "auto", reason)
        conflicts.append((group, reason, blocking))
    for name, decision in wanted.items():
        if decision != "shard" and name in {g.name for g in groups} and name not in locked:
            decisions[name] = _Decision(decision, "override", f"--set {origin[name]}={decision}")

    requirements = [r for g in accepted for r in g.requirements]
    synthesis = rss.synthesize(requirements, profile, devices, cores, samples=samples, seed=seed)
    keys, reta = synthesis.keys, synthesis.reta
    proof = rss.prove(requirements, keys, profile, reta)
    scores = rss.evaluate(keys, reta, cores)
    depends = {d: rss.depends_on(keys[d], profile.reta_bits) for d in range(devices)}

    objects = _object_plans(analysis, groups, by_object, decisions, written, synthesis.live)
    sharded_written = [o for o in objects if o.decision == "shard" and o.name in written]
    locked_written = [o for o in objects if o.decision == "lock" and o.name in written]
    if not complete:
        result = "tm" if strategy == "tm" else "locks"
    elif not locked_written:
        result = "shared-nothing"
    elif not sharded_written:
        result = "tm" if strategy == "tm" else "locks"
    else:
        result = "mixed"
    sync = ("tm" if strategy == "tm" else "locks") if any(o.decision == "lock" for o in objects) \
        or not complete else None

    conflict_values = []
    for group, reason, blocking in conflicts:
        example = rss.find_counterexample(blocking, keys, profile, reta)
        conflict_values.append(Conflict(
            group.members if len(group.members) > 1 else [group.name], reason,
            example["requirement"] if example else "", example["packets"] if example else []))
    quality = Quality(cores, [ProfileQuality(s.profile, round(s.max_mean, 4), s.floor, list(s.distinct),
                                             list(s.load)) for s in scores], depends)
    plan_value = Plan(
        nf=analysis.nf, strategy=result, requested=strategy, sync=sync, cores=cores, nic=profile.name,
        objects=objects,
        rss={d: DeviceKey(keys[d].hex(), profile.key_bytes,
                          {t.name: t.field_names() for t in profile.hash_types}, depends[d])
             for d in range(devices)},
        reta=reta,
        proof=Proof(proof.result, round(proof.seconds, 4), proof.checks, proof.counterexample),
        quality=quality,
        synthesis=SynthesisStats(round(synthesis.seconds, 4), synthesis.equations, synthesis.rank,
                                 synthesis.dimension, synthesis.samples, synthesis.index_bits),
        conflicts=conflict_values, explanation="", notes=_notes(accepted, keys, profile.reta_bits),
        complete=complete, incomplete=[] if complete else _incomplete_causes(analysis),
        shared_variables=_shared_variables(analysis, objects, complete),
        analysis_digest=analysis.digest(),
    )
    return _with_explanation(plan_value, profile)


def _incomplete_causes(analysis: Analysis) -> list[str]:
    """Why the analysis is incomplete: its warnings that say so."""
    causes = [w for w in analysis.stats.warnings if w.startswith(("incomplete", "stopped", "error", "no path",
                                                                  "could not"))]
    return causes or analysis.stats.warnings or ["the analysis says it is incomplete"]


def _incomplete_reason(analysis: Analysis) -> str:
    first = _incomplete_causes(analysis)[0]
    more = len(_incomplete_causes(analysis)) - 1
    return (f"the analysis of {analysis.nf} is incomplete ({first}" + (f"; and {more} more" if more else "")
            + "): paths it did not explore may write any object, so none is sharded or replicated")


def _refuse_on_incomplete(analysis: Analysis, strategy: str, overrides: Mapping[str, str]) -> None:
    """Strategies and overrides an incomplete analysis cannot support."""
    if strategy == "shared-nothing":
        raise MaestroError(f"{analysis.nf}: --strategy shared-nothing needs a complete analysis; "
                           f"{_incomplete_reason(analysis)}")
    for name, decision in overrides.items():
        if decision in ("shard", "replicate"):
            raise MaestroError(f"--set {name}={decision}: {_incomplete_reason(analysis)}")


def _forced_locks(analysis: Analysis, groups: list[_Group], by_object: dict[str, _Group]) -> dict[str, str]:
    """Groups that must be locked whatever RSS could do: a written variable
    that also holds state handles becomes one instance for all cores, so
    the objects it holds are shared (one instance) with it."""
    forced: dict[str, str] = {}
    holders = {v.name for v in analysis.variables if v.holds_handles}
    for obj in analysis.objects:
        if obj.kind != "global" or not obj.written or obj.name not in holders:
            continue
        writes = [a for a in analysis.accesses_to(obj.name) if a.op not in _READS]
        where = f" ({', '.join(sorted({c for a in writes for c in a.calls}))})" if writes else ""
        held = [o.name for o in analysis.objects if o.allocated and o.name.startswith((f"{obj.name}.", f"{obj.name}["))]
        forced[by_object[obj.name].name] = (
            f"nf_process writes {obj.name}{where}, which also holds the handles of {', '.join(held)}: "
            f"one instance of {obj.name} serves every core")
        for name in held:
            forced[by_object[name].name] = (
                f"its handle lives in {obj.name}, which nf_process writes{where}: one instance of "
                f"{obj.name} serves every core, so {name} is one shared instance too")
    return forced


def _shared_variables(analysis: Analysis, objects: list[ObjectPlan], complete: bool) -> list[str]:
    """ELF symbols of the NF variables the program keeps as one instance."""
    if not complete:
        return [v.symbol for v in analysis.variables]
    locked = {o.name for o in objects if o.kind == "global" and o.decision == "lock"}
    return [o.symbol for o in analysis.objects if o.name in locked and o.symbol]


def _check_overrides(analysis: Analysis, groups: list[_Group], by_object: dict[str, _Group],
                     overrides: dict[str, str], strategy: str) -> tuple[dict[str, str], dict[str, str]]:
    """Validate --set overrides; returns group name -> decision and group
    name -> the object the user named."""
    names = [o.name for o in analysis.objects]
    wanted: dict[str, str] = {}
    origin: dict[str, str] = {}
    for name, decision in overrides.items():
        if name not in by_object:
            raise MaestroError(f"--set {name}={decision}: {analysis.nf} has no object {name!r} "
                               f"(objects: {', '.join(names) or 'none'})")
        if decision not in DECISIONS:
            raise MaestroError(f"--set {name}={decision}: the decision must be one of {', '.join(DECISIONS)}")
        obj = analysis.object(name)
        group = by_object[name]
        if decision == "replicate" and obj.written:
            writes = [a for a in analysis.accesses_to(name) if a.op not in _READS]
            where = f" ({writes[0].op} in {writes[0].function or 'nf_process'})" if writes else ""
            raise MaestroError(f"--set {name}=replicate: {name} is written while processing packets{where}; "
                               "per-core copies would diverge (use shard or lock)")
        if decision == "lock" and strategy == "shared-nothing" and group.written:
            raise MaestroError(f"--set {name}=lock contradicts --strategy shared-nothing")
        if decision == "shard" and not group.sides:
            raise MaestroError(f"--set {name}=shard: no packet field reaches {name}'s entries "
                               f"(only {', '.join(f'{o}' for o in group.follows) or 'expiry'}), nothing to shard on")
        if decision == "shard" and all(not _hashed(s.parts) for s in group.sides):
            keys = ", ".join(dict.fromkeys(k for s in group.sides for k in s.key))
            why = ("values computed from packet fields, which RSS cannot relate" if "~" in keys
                   else "which the NIC does not hash")
            raise MaestroError(f"--set {name}=shard: {group.name} is keyed by {keys}, {why} "
                               f"(RSS hashes {', '.join(HASHED_FIELDS)})")
        if group.written or decision != "replicate":
            key = group.name
            if key in wanted and wanted[key] != decision:
                raise MaestroError(f"--set {name}={decision} conflicts with --set {origin[key]}={wanted[key]}: "
                                   f"{name} and {origin[key]} share entries (group {group.name}) and are "
                                   "decided together")
            wanted[key], origin[key] = decision, name
    return wanted, origin


def _shard_problem(group: _Group, accepted: list[_Group], devices: int,
                   profile: NicProfile) -> tuple[str, list[rss.Requirement]] | None:
    """None when the group can be sharded together with `accepted`, else
    (the reason, the requirements to show a counterexample for)."""
    bits = profile.reta_bits
    alone, _ = rss.build_system(group.requirements, devices, bits)
    solved = alone.solved()
    stuck = [d for d in sorted(group.devices()) if not rss.live_fields(solved, d, bits)]
    if stuck:
        return _intrinsic_reason(group, stuck), group.requirements
    together = [r for g in accepted for r in g.requirements] + group.requirements
    system, _ = rss.build_system(together, devices, bits)
    solved = system.solved()
    for g in accepted + [group]:
        stuck = [d for d in sorted(g.devices()) if not rss.live_fields(solved, d, bits)]
        if stuck:
            d = stuck[0]
            others = ", ".join(a.name for a in accepted)
            mine = "; ".join(dict.fromkeys(r.label for r in group.requirements))
            theirs = "; ".join(dict.fromkeys(r.label for a in accepted for r in a.requirements))
            before, _ = rss.build_system([r for a in accepted for r in a.requirements], devices, bits)
            allowed_mine = ", ".join(rss.live_fields(alone.solved(), d, bits)) or "nothing"
            allowed_theirs = ", ".join(rss.live_fields(before.solved(), d, bits)) or "nothing"
            return (f"sharding {group.name} together with {others} leaves the RETA index of device {d} "
                    f"constant ({group.name} lets it depend on {allowed_mine} only, {others} on "
                    f"{allowed_theirs} only): {mine} conflicts with {theirs}",
                    group.requirements)
    return None


def _intrinsic_reason(group: _Group, stuck: list[int]) -> str:
    """Why a group alone cannot be sharded, naming accesses and fields."""
    arbitrary = [s for s in group.sides if s.arbitrary]
    keyed = [s for s in group.sides if not s.arbitrary]
    if arbitrary and not keyed and all(k.startswith("const:") for s in arbitrary for k in s.key):
        functions = ", ".join(f"{f}()" for f in dict.fromkeys(f for s in arbitrary for f in s.functions))
        return (f"{', '.join(dict.fromkeys(s.object for s in arbitrary))} is one value (not indexed by any "
                f"packet field) that nf_process reads and writes in {functions or 'nf_process()'}: each packet "
                "may depend on what any earlier packet left there, so no RSS key can split the packets "
                "that meet there")
    devices = " and ".join(map(str, stuck))
    plural = "s" if len(stuck) > 1 else ""
    if arbitrary:
        wrote = []
        for device, objects in sorted(group.writes.items()):
            names = [o for o in group.members if o in objects]
            functions = ", ".join(dict.fromkeys(f for o in names for f in objects[o])) or "nf_process"
            keys = [f"{s.object} keyed by {', '.join(s.key)}" for s in keyed if s.device == device]
            wrote.append(f"{', '.join(names)} {'are' if len(names) > 1 else 'is'} written on device {device} "
                         f"in {functions}" + (f" ({'; '.join(dict.fromkeys(keys))})" if keys else ""))
        reached = []
        for device in sorted({s.device for s in arbitrary}):
            here = [s for s in arbitrary if s.device == device]
            functions = ", ".join(dict.fromkeys(f for s in here for f in s.functions)) or "nf_process"
            values = ", ".join(dict.fromkeys(k for s in here for k in s.key)) or "a constant index"
            what = "; ".join(dict.fromkeys(f"{s.object} {'/'.join(dict.fromkeys(_VERBS.get(o, o) for o in s.ops))}"
                                           for s in here))
            reached.append(f"read on device {device} in {functions} through {values} ({what})")
        return (f"{'; '.join(wrote) or group.name + ' is written'}, and {'; '.join(reached)}, values no packet "
                f"field determines: no field relates the packets that meet in one entry, so RSS would have "
                f"to send every packet of device{plural} {devices} to one core")
    unhashed = [s for s in keyed if not _hashed(s.parts)]
    if unhashed:
        fields = ", ".join(dict.fromkeys(k for s in unhashed for k in s.key))
        where = "; ".join(s.describe() for s in unhashed)
        return (f"{group.name} is keyed by {fields} ({where}), which the NIC does not hash "
                f"(RSS hashes {', '.join(HASHED_FIELDS)}): packets with equal {fields} but any "
                f"addresses and ports must share a core, so RSS cannot spread device{plural} {devices}")
    labels = "; ".join(dict.fromkeys(r.label for r in group.requirements))
    return f"its relations leave the RETA index of device{plural} {devices} constant: {labels}"


# --- describing ---------------------------------------------------------------


def _object_plans(analysis: Analysis, groups: list[_Group], by_object: dict[str, _Group],
                  decisions: dict[str, _Decision], written: set[str],
                  live: dict[int, list[str]]) -> list[ObjectPlan]:
    out = []
    for obj in analysis.objects:
        group = by_object[obj.name]
        decision = decisions.get(group.name)
        if decision is None or (obj.name not in written and decision.source not in ("override", "incomplete",
                                                                                     "holder")):
            decision = _Decision("replicate", "auto")
        shard_on = {d: live.get(d, []) for d in sorted(group.devices())} if decision.decision == "shard" else {}
        out.append(ObjectPlan(obj.name, obj.kind, decision.decision,
                              _reason(analysis, obj.name, group, decision, shard_on, written),
                              group.name, shard_on, decision.source))
    return out


def _reason(analysis: Analysis, name: str, group: _Group, decision: _Decision,
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


def _accesses(name: str, group: _Group) -> str:
    sides = [s for s in group.sides + group.covered if s.object == name]
    if sides:
        return "; ".join(f"{name} {s.describe()}" for s in sides)
    return f"reached through {', '.join(group.follows.get(name, []))}" if group.follows.get(name) else "written"


def _guard_text(rel: Relation, group: _Group) -> str:
    pairs = ", ".join(f"{x} = {y}" for x, y in rel.field_pairs)
    via = rel.via.split("@", 1)[-1]
    return (f"device {rel.devices[1]} reaches {rel.object} at {via} and proceeds only when the cell's "
            f"fields match ({pairs} between devices {rel.devices[0]} and {rel.devices[1]})")


def _notes(accepted: list[_Group], keys: dict[int, bytes], reta_bits: int) -> list[str]:
    notes = []
    for group in accepted:
        for rel in group.guards:
            notes.append(
                f"{group.name}: entries reached through {rel.via.split('@', 1)[-1]} are allocated per core, "
                "so values derived from them (e.g. external ports) may repeat on different cores for "
                "packets the keys keep apart")
    coarsest: dict[int, tuple[int, _Group, _Side, _Part]] = {}
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


def _prefix_limit(part: _Part, key: bytes | None, reta_bits: int) -> int | None:
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


def _with_explanation(p: Plan, profile: NicProfile) -> Plan:
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
