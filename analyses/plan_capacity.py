"""How big each core's instance of a sharded object is: the plan's
capacity policy.

Shared-nothing gives each core its own instance of a sharded table.  Two
policies (plan field `capacity`):

- keep (default): each instance has the NF's capacity.  A core can hold as
  many flows as the sequential NF, whatever the traffic's skew; state
  memory is the NF's times the cores.
- divide: each instance has ceil(capacity / cores) entries (what Maestro
  does): memory stays the NF's, and a core's table is full after its share
  of the flows.  Only objects whose indexes come from the state itself can
  shrink: maps, and dchains and vectors never indexed by a packet field
  (NAT's flow_keys, indexed by the external port of a WAN packet, must keep
  every index).  A group of objects that follow each other's entries is
  divided whole or not at all, so an index a dchain hands out always fits
  the vectors it indexes.
"""
from __future__ import annotations

from dataclasses import replace

from analyses.fields import is_packet_field
from analyses.model import Analysis
from analyses.plan_values import ObjectPlan

#: Kinds whose capacity can shrink without changing what an index means.
DIVISIBLE_KINDS = ("map", "dchain", "vector")


def per_core_capacities(analysis: Analysis, objects: list[ObjectPlan], cores: int,
                        policy: str) -> tuple[list[ObjectPlan], list[str]]:
    """`objects` with their capacity and each core's, under `policy`, and
    the plan notes that say which (one per divided or kept group)."""
    capacity = {o.name: o.capacity for o in analysis.objects}
    by_packet = {a.object for a in analysis.accesses
                 if any(is_packet_field(k.split("~")[0]) for k in a.key_fields)}
    groups: dict[str, list[ObjectPlan]] = {}
    for obj in objects:
        if obj.decision == "shard":
            groups.setdefault(obj.group, []).append(obj)
    divided: dict[str, int] = {}
    lines = []
    for group, members in groups.items():
        if policy != "divide" or cores == 1:
            continue
        blocking = [o for o in members if o.kind not in DIVISIBLE_KINDS or
                    (o.kind != "map" and o.name in by_packet)]
        if blocking:
            why = ", ".join(f"{o.name} ({'indexed by a packet field' if o.kind in DIVISIBLE_KINDS else o.kind})"
                            for o in blocking)
            lines.append(f"capacity of {', '.join(o.name for o in members)} kept on each core: {why} "
                         "must keep every index")
            continue
        for o in members:
            divided[o.name] = -(-capacity[o.name] // cores)
        lines.append(f"capacity of {', '.join(o.name for o in members)} divided by {cores}: "
                     + ", ".join(f"{o.name} {divided[o.name]} per core" for o in members))
    out = [replace(o, capacity=capacity.get(o.name, 0),
                   per_core_capacity=divided.get(o.name, capacity.get(o.name, 0))) for o in objects]
    if policy == "keep" and groups and cores > 1:
        lines.append("capacities kept: each core's instance of a sharded object holds as many entries "
                     "as the NF's (state memory times the cores); --capacity divide shares them out")
    return out, lines
