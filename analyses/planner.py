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

The plan value and its JSON schema are in analyses/plan_values.py, the
groups and their RSS requirements in analyses/plan_groups.py, the plan in
words in analyses/plan_explain.py.
"""
from __future__ import annotations

from typing import Mapping

from analyses import rss
from analyses.errors import MaestroError
from analyses.model import Analysis
from analyses.nic import HASHED_FIELDS, NicProfile, nic_profile
from analyses.plan_explain import Decision, key_notes, object_plans, with_explanation
from analyses.plan_groups import READS, VERBS, Group, build_groups, hashed_parts, plan_requirements
from analyses.plan_capacity import per_core_capacities
from analyses.plan_values import (
    CAPACITY_POLICIES,
    DECISIONS,
    DEFAULT_NIC,
    LOCK_KINDS,
    PROGRAM_STRATEGIES,
    STRATEGIES,
    Conflict,
    DeviceKey,
    ObjectPlan,
    Plan,
    ProfileQuality,
    Proof,
    Quality,
    SynthesisStats,
)

__all__ = ["DECISIONS", "DEFAULT_NIC", "LOCK_KINDS", "PROGRAM_STRATEGIES", "STRATEGIES", "Conflict",
           "DeviceKey", "ObjectPlan", "Plan", "ProfileQuality", "Proof", "Quality", "SynthesisStats",
           "build_groups", "plan", "plan_requirements"]


def plan(analysis: Analysis, cores: int, nic: str | NicProfile = DEFAULT_NIC, strategy: str = "auto",
         overrides: Mapping[str, str] | None = None, *, seed: int = 0, samples: int = 24,
         capacity: str = "keep") -> Plan:
    """The parallelization plan of `analysis` on `cores` cores (see the
    module doc).  overrides: object name -> shard | replicate | lock;
    capacity: keep | divide, the capacity of each core's instance of a
    sharded object (analyses/plan_capacity.py).
    Raises MaestroError when a strategy or an override cannot be honoured."""
    profile = nic_profile(nic)
    if strategy not in STRATEGIES:
        raise MaestroError(f"unknown strategy {strategy!r} (one of {', '.join(STRATEGIES)})")
    if capacity not in CAPACITY_POLICIES:
        raise MaestroError(f"unknown capacity policy {capacity!r} (one of {', '.join(CAPACITY_POLICIES)})")
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

    decisions: dict[str, Decision] = {}
    locked = _forced_locks(analysis, groups, by_object) if complete else {
        g.name: _incomplete_reason(analysis) for g in groups}
    for name, why in locked.items():
        if wanted.get(name) == "shard" or (strategy == "shared-nothing" and complete):
            raise MaestroError(f"{analysis.nf}: cannot shard {name}: {why}")
        decisions[name] = Decision("lock", "incomplete" if not complete else "holder", why)
    accepted: list[Group] = []
    conflicts: list[tuple[Group, str, list[rss.Requirement]]] = []
    order = [g for g in groups if wanted.get(g.name) == "shard" and g.name not in locked] + \
            [g for g in groups if g.written and g.name not in wanted and g.name not in locked]
    for group in order:
        forced = wanted.get(group.name) == "shard" or strategy == "shared-nothing"
        if wanted.get(group.name) != "shard" and strategy in ("locks", "tm"):
            decisions[group.name] = Decision("lock", "strategy", f"--strategy {strategy}")
            continue
        problem = _shard_problem(group, accepted, devices, profile)
        if problem is None:
            accepted.append(group)
            decisions[group.name] = Decision("shard", "override" if group.name in wanted else "auto")
            continue
        reason, blocking = problem
        if forced:
            what = (f"--set {origin[group.name]}=shard" if wanted.get(group.name) == "shard"
                    else "--strategy shared-nothing")
            raise MaestroError(f"{analysis.nf}: cannot honour {what}: {reason}")
        decisions[group.name] = Decision("lock", "auto", reason)
        conflicts.append((group, reason, blocking))
    for name, decision in wanted.items():
        if decision != "shard" and name in {g.name for g in groups} and name not in locked:
            decisions[name] = Decision(decision, "override", f"--set {origin[name]}={decision}")

    requirements = [r for g in accepted for r in g.requirements]
    synthesis = rss.synthesize(requirements, profile, devices, cores, samples=samples, seed=seed)
    keys, reta = synthesis.keys, synthesis.reta
    proof = rss.prove(requirements, keys, profile, reta)
    scores = rss.evaluate(keys, reta, cores)
    depends = {d: rss.depends_on(keys[d], profile.reta_bits) for d in range(devices)}

    objects = object_plans(analysis, groups, by_object, decisions, written, synthesis.live)
    objects, capacity_notes = per_core_capacities(analysis, objects, cores, capacity)
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
        conflicts=conflict_values, explanation="",
        notes=key_notes(accepted, keys, profile.reta_bits) + capacity_notes,
        complete=complete, incomplete=[] if complete else _incomplete_causes(analysis),
        shared_variables=_shared_variables(analysis, objects, complete),
        analysis_digest=analysis.digest(),
        overrides=dict(overrides or {}),
        capacity=capacity,
    )
    return with_explanation(plan_value, profile)


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


def _forced_locks(analysis: Analysis, groups: list[Group], by_object: dict[str, Group]) -> dict[str, str]:
    """Groups that must be locked whatever RSS could do: a written variable
    that also holds state handles becomes one instance for all cores, so
    the objects it holds are shared (one instance) with it."""
    forced: dict[str, str] = {}
    holders = {v.name for v in analysis.variables if v.holds_handles}
    for obj in analysis.objects:
        if obj.kind != "global" or not obj.written or obj.name not in holders:
            continue
        writes = [a for a in analysis.accesses_to(obj.name) if a.op not in READS]
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


def _check_overrides(analysis: Analysis, groups: list[Group], by_object: dict[str, Group],
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
            writes = [a for a in analysis.accesses_to(name) if a.op not in READS]
            where = f" ({writes[0].op} in {writes[0].function or 'nf_process'})" if writes else ""
            raise MaestroError(f"--set {name}=replicate: {name} is written while processing packets{where}; "
                               "per-core copies would diverge (use shard or lock)")
        if decision == "lock" and strategy == "shared-nothing" and group.written:
            raise MaestroError(f"--set {name}=lock contradicts --strategy shared-nothing")
        if decision == "shard" and not group.sides:
            raise MaestroError(f"--set {name}=shard: no packet field reaches {name}'s entries "
                               f"(only {', '.join(f'{o}' for o in group.follows) or 'expiry'}), nothing to shard on")
        if decision == "shard" and all(not hashed_parts(s.parts) for s in group.sides):
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


def _shard_problem(group: Group, accepted: list[Group], devices: int,
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


def _intrinsic_reason(group: Group, stuck: list[int]) -> str:
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
            what = "; ".join(dict.fromkeys(f"{s.object} {'/'.join(dict.fromkeys(VERBS.get(o, o) for o in s.ops))}"
                                           for s in here))
            reached.append(f"read on device {device} in {functions} through {values} ({what})")
        return (f"{'; '.join(wrote) or group.name + ' is written'}, and {'; '.join(reached)}, values no packet "
                f"field determines: no field relates the packets that meet in one entry, so RSS would have "
                f"to send every packet of device{plural} {devices} to one core")
    unhashed = [s for s in keyed if not hashed_parts(s.parts)]
    if unhashed:
        fields = ", ".join(dict.fromkeys(k for s in unhashed for k in s.key))
        where = "; ".join(s.describe() for s in unhashed)
        return (f"{group.name} is keyed by {fields} ({where}), which the NIC does not hash "
                f"(RSS hashes {', '.join(HASHED_FIELDS)}): packets with equal {fields} but any "
                f"addresses and ports must share a core, so RSS cannot spread device{plural} {devices}")
    labels = "; ".join(dict.fromkeys(r.label for r in group.requirements))
    return f"its relations leave the RETA index of device{plural} {devices} constant: {labels}"
