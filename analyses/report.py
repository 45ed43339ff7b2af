"""From explored paths to the analysis report (analyses/model.py).

`analyze` is the analysis stage: it explores the NF (symbex.py) and turns
the path results into an `Analysis`: accesses merged over paths, relations
between devices (same map key; fields stored in a vector cell on one path
and compared on another), and packet writes.
"""
from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path
from typing import Callable, Mapping

from analyses.angr_env import claripy

from analyses.fields import (
    byte_field,
    byte_sources,
    implied_equalities,
    input_name,
    is_packet_field,
    key_parts,
)
from analyses.conditions import Unobservable, to_python
from analyses.model import (
    Access,
    Analysis,
    ExploredPath,
    PacketWrite,
    PathCall,
    Relation,
    StateObject,
    Stats,
    Variable,
)
from analyses.nf_source import NFSource
from analyses.procedures import Event
from analyses.symbex import ASSUMPTIONS, Budgets, Exploration, PathResult, ProgressCallback, explore

#: Operations that change an object.
WRITING_OPS = frozenset({"write", "create", "update", "destroy", "expire"})


def analyze(
    spec: str | Path | NFSource,
    *,
    opt: str = "-O2",
    defines: Mapping[str, object] | None = None,
    budgets: Budgets = Budgets(),
    progress: ProgressCallback | None = None,
    cancel: Callable[[], bool] | None = None,
    workers: int | None = None,
) -> Analysis:
    """Analyze an NF (sample name or .c path) into its report (workers: see explore)."""
    return build_report(explore(spec, opt=opt, defines=defines, budgets=budgets,
                                progress=progress, cancel=cancel, workers=workers))


def build_report(ex: Exploration) -> Analysis:
    """The report of an exploration."""
    accesses = _merge_accesses(ex)
    written = {a.object for a in accesses if a.op in WRITING_OPS}
    objects = [
        StateObject(o.name, o.kind, o.capacity, o.key_size, o.elem_size, o.order, o.name in written)
        for o in sorted(ex.model.objects.values(), key=lambda o: o.order)
    ]
    global_objects, notes = _global_objects(
        ex, {a.object for a in accesses} - {o.name for o in objects}, len(objects))
    objects += global_objects
    return Analysis(
        nf=ex.nf.name,
        source=str(ex.nf.path),
        devices=ex.devices,
        paths=[_path_summary(p, ex.call_sites) for p in ex.paths],
        objects=objects,
        accesses=accesses,
        relations=_key_relations(ex) + _cell_relations(ex),
        packet_writes=[w for p in ex.paths if (w := _packet_write(p))],
        stats=Stats(len(ex.paths), round(ex.seconds, 3), round(ex.peak_rss_mb, 1),
                    ex.warnings, ex.complete, list(ASSUMPTIONS) + notes, ex.processes),
        variables=[Variable(v.name, v.symbol, v.decl, v.size,
                            any(v.address <= slot < v.address + v.size for slot in ex.handle_slots))
                   for v in ex.variables],
        inputs=dict(ex.inputs),
    )


def _global_objects(ex: Exploration, accessed: set[str], first: int) -> tuple[list[StateObject], list[str]]:
    """The NF's variables that nf_process uses, as objects of kind "global",
    and notes on the written ones that are not state (see variable_roles)."""
    roles = variable_roles(ex)
    objects, notes = [], []
    for variable in ex.variables:
        if variable.name not in accessed:
            continue
        role = roles.get(variable.name, "read-only")
        if role == "scratch":
            notes.append(f"{variable.name} ({variable.decl}) is written by nf_process, but every packet "
                         "writes it before reading it: scratch, not state (each core keeps its own copy)")
        elif role == "statistics":
            notes.append(f"{variable.name} ({variable.decl}) is written by nf_process, but what it holds "
                         "never changes how a packet is processed (no branch, output, packet field or state "
                         "key depends on it): statistics, each core keeps its own copy and the totals are "
                         "the sums over the cores")
        objects.append(StateObject(variable.name, "global", variable.count, None, variable.elem_size,
                                   first + len(objects), role == "state", variable.symbol, variable.decl))
    return objects, notes


#: A symbol standing for what a variable held at entry (analyses/memory.py).
_ENTRY_VALUE = re.compile(r"^(.+)\.cell_\d+_\d+_\d+$")


def _entry_values(*exprs) -> set[str]:
    """Variables whose entry value (`<variable>.cell_<n>`) the expressions use."""
    names: set[str] = set()
    for expr in exprs:
        if expr is not None:
            names |= {m.group(1) for v in expr.variables if (m := _ENTRY_VALUE.match(v))}
    return names


def variable_roles(ex: Exploration) -> dict[str, str]:
    """For each variable nf_process writes: "state" when what it holds at
    entry may change how some packet is processed (a branch, the output, a
    packet field, a state key or value depends on it, directly or through
    another variable); "statistics" when it is read but only feeds itself
    or other statistics (packet counters); "scratch" when no path reads
    what an earlier packet left.  When the exploration is incomplete every
    written variable is state: nothing proves otherwise."""
    variables = {v.name for v in ex.variables}
    observed: set[str] = set()
    feeds: dict[str, set[str]] = defaultdict(set)  # variable -> variables its new value uses
    read: set[str] = set()
    for path in ex.paths:
        observed |= _entry_values(path.output, *path.constraints, *path.writes.values())
        for event in path.events:
            if event.object in variables:  # the index of a variable's element
                feeds[event.object] |= _entry_values(event.key)
            else:
                observed |= _entry_values(event.key, event.stored)
        for name, values in path.stored.items():
            feeds[name] |= _entry_values(*values)
        read |= observed | set().union(*feeds.values()) if feeds else observed
    changed = True
    while changed:
        grown = observed | {u for v in observed for u in feeds.get(v, ())}
        changed, observed = grown != observed, grown
    roles = {}
    for name in ex.written:
        if not ex.complete or name in observed:
            roles[name] = "state"
        else:
            roles[name] = "statistics" if name in read else "scratch"
    return roles


def output_name(path: PathResult) -> str:
    """"drop", "flood", a device number, or the state value it comes from."""
    if len(path.outputs) == 1:
        return {-1: "drop", -2: "flood"}.get(path.outputs[0], str(path.outputs[0]))
    sources = sorted({n for v in path.output.variables if (n := input_name(v))})
    return "from " + ", ".join(sources) if sources else "any of " + str(path.outputs)


def _inputs(variables) -> list[str]:
    return sorted({n for v in variables if (n := input_name(v))})


def _event_key(event: Event) -> tuple[list[str], str, dict | None]:
    """(key parts, key kind, derived_from) of an event."""
    if event.key is None:
        return [], "none", None
    parts = key_parts(event.key)
    kinds = set()
    derived = None
    for part in parts:
        base = part.split("~")[0]
        if part.startswith("const:"):
            kinds.add("constant")
        elif is_packet_field(part):
            kinds.add("packet")
        elif base in ("device", "time", "length"):
            kinds.add("input")
        elif base == "uninitialized":
            kinds.add("uninitialized")
        else:
            kinds.add("derived")
            obj, _, what = base.rpartition(".")
            derived = {"object": obj, "what": what}
    if any("~" in p for p in parts):
        derived = {**(derived or {}), "expr": _short(event.key)}
    if len(kinds) > 1:
        kinds.discard("constant")  # padding beside a prefix, a fixed tag
    kind = kinds.pop() if len(kinds) == 1 else "mixed"
    return parts, kind, derived


def _short(expr: claripy.ast.Base, limit: int = 160) -> str:
    """At most `limit` characters of an expression, printed to a bounded
    depth (printing a whole hash expression can take minutes)."""
    text = expr.shallow_repr(max_depth=6).replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _merge_accesses(ex: Exploration) -> list[Access]:
    merged: dict[tuple, dict] = {}
    for path in ex.paths:
        for event in path.events:
            parts, kind, derived = _event_key(event)
            entry = merged.setdefault((event.object, event.op, tuple(parts)), {
                "devices": set(), "paths": [], "calls": set(), "conditions": set(),
                "kind": kind, "derived": derived, "function": "",
            })
            entry["devices"].update(path.devices)
            if path.id not in entry["paths"]:
                entry["paths"].append(path.id)
            file_line, function = ex.call_sites.get(event.call, ("?", "?"))
            entry["calls"].add(file_line)
            entry["function"] = function
            entry["conditions"].update(_inputs(event.conditions))
    return [
        Access(obj, op, sorted(e["devices"]), list(parts), e["kind"], e["derived"],
               sorted(e["conditions"]), e["paths"], sorted(e["calls"]), e["function"])
        for (obj, op, parts), e in merged.items()
    ]


def _key_relations(ex: Exploration) -> list[Relation]:
    """Map/sketch keys built from different fields (or on different devices):
    packets whose fields agree position by position reach one entry."""
    kinds = {o.name: o.kind for o in ex.model.objects.values()}
    keyed: dict[str, set[tuple[int, tuple[str, ...]]]] = defaultdict(set)
    for path in ex.paths:
        for event in path.events:
            if event.key is None or kinds.get(event.object) not in ("map", "sketch"):
                continue
            parts, kind, _ = _event_key(event)
            if kind == "packet":
                for device in path.devices:
                    keyed[event.object].add((device, tuple(parts)))
    relations = []
    for obj, keys in keyed.items():
        keys = sorted(keys)
        for i, (dev_a, parts_a) in enumerate(keys):
            for dev_b, parts_b in keys[i + 1:]:
                if len(parts_a) != len(parts_b) or (dev_a == dev_b and parts_a == parts_b):
                    continue
                relations.append(Relation(obj, [dev_a, dev_b],
                                          [list(p) for p in zip(parts_a, parts_b)], "key"))
    return relations


def _cell_bytes(expr: claripy.ast.BV) -> list[tuple[str, int, str, int]]:
    """(symbol, byte index in memory order, field, byte in field) for the
    bytes of expr that are whole packet bytes or whole bytes of a cell."""
    sources = byte_sources(expr)
    if sources is None:
        return []
    out = []
    for src in sources:
        if src.symbol is None or src.mask != 0xFF:
            out.append(("", 0, "", 0))
            continue
        if found := byte_field(src.symbol):
            out.append(("packet", 0, found[0], found[1]))
        else:
            size = int(src.symbol.rsplit("_", 1)[1]) // 8
            out.append((src.symbol, size - 1 - src.low // 8, "", 0))
    return out


def _path_equalities(path: PathResult, cells: set[str]) -> list[claripy.ast.Bool]:
    """Equalities between packet bytes and bytes of a cell the path read
    that its condition implies: written plainly, or as `|`/`&`/xor
    combinations (analyses/fields.implied_equalities); an equality nested
    in a combination the rules do not cover is kept when z3 proves that the
    path condition implies it."""
    found = [e for c in path.constraints for e in implied_equalities(c)]
    known = {hash(e) for e in found}
    candidates = []
    for constraint in path.constraints:
        names = constraint.variables
        if not (names & cells and any(byte_field(n) for n in names)):
            continue
        for sub in constraint.children_asts():
            if sub.op == "__eq__" and hash(sub) not in known and sub.variables & cells \
                    and any(byte_field(n) for n in sub.variables):
                known.add(hash(sub))
                candidates.append(sub)
    if candidates:
        solver = claripy.Solver()
        solver.add(path.constraints)
        found += [c for c in candidates if not solver.satisfiable(extra_constraints=[claripy.Not(c)])]
    return found


def _cell_relations(ex: Exploration) -> list[Relation]:
    """Fields a path stores into a vector cell, paired with the fields
    another path compares with the same bytes of that vector's cell."""
    stored: dict[str, dict[int, set[tuple[int, str]]]] = defaultdict(lambda: defaultdict(set))
    compared: dict[str, dict[int, set[tuple[int, str, str]]]] = defaultdict(lambda: defaultdict(set))
    for path in ex.paths:
        cells = {e.cell.args[0]: e for e in path.events if e.cell is not None and e.op == "read"}
        for event in path.events:
            if event.op == "write" and event.stored is not None and event.cell is not None:
                for i, (symbol, _, name, _) in enumerate(_cell_bytes(event.stored)):
                    if symbol == "packet":
                        for device in path.devices:
                            stored[event.object][i].add((device, name))
        for equality in _path_equalities(path, set(cells)) if cells else ():
            left, right = (_cell_bytes(side) for side in equality.args)
            if len(left) != len(right):
                continue
            for a, b in zip(left + right, right + left):
                if a[0] in cells and b[0] == "packet":
                    reader = cells[a[0]]
                    via = ",".join(key_parts(reader.key)) if reader.key is not None else "?"
                    for device in path.devices:
                        compared[reader.object][a[1]].add((device, b[2], via))
    relations: dict[tuple, set[tuple[str, str]]] = defaultdict(set)
    for obj, by_byte in compared.items():
        for i, readers in by_byte.items():
            for dev_w, field_w in stored[obj].get(i, ()):
                for dev_r, field_r, via in readers:
                    relations[(obj, dev_w, dev_r, via)].add((field_w, field_r))
    return [
        Relation(obj, [dev_w, dev_r], [list(p) for p in sorted(pairs)], f"cell@{via}")
        for (obj, dev_w, dev_r, via), pairs in sorted(relations.items())
    ]


def _packet_write(path: PathResult) -> PacketWrite | None:
    if not path.writes:
        return None
    by_field: dict[str, list[tuple[int, claripy.ast.BV]]] = defaultdict(list)
    for (region, offset), value in sorted(path.writes.items()):
        name = byte_field(f"{region}_{offset}_")[0]
        by_field[name].append((offset, value))
    fields = {}
    for name, values in by_field.items():
        expr = claripy.Concat(*(v for _, v in values)) if len(values) > 1 else values[0][1]
        fields[name] = " ".join(key_parts(expr))
    return PacketWrite(path.id, path.devices, fields, output_name(path))


def _path_summary(path: PathResult, call_sites: dict[int, tuple[str, str]]) -> ExploredPath:
    conditions = set()
    for constraint in path.constraints:
        conditions |= constraint.variables
    calls = [PathCall(c.function, c.object, call_sites.get(c.call, ("?", "?"))[0],
                      _result(c.ret), _result(c.out), _result(c.cell), _outcome(path, c.ret))
             for c in path.calls]
    bound = {x for c in calls for x in (c.ret, c.out, c.cell) if isinstance(x, str)}
    kept, unobserved = [], set()
    for constraint in path.constraints:
        try:
            kept.append(to_python(constraint, bound))
        except Unobservable as exc:
            unobserved.add(_unobserved_kind(str(exc)))
    output_value = None
    if len(path.outputs) > 1 or path.output.symbolic:
        try:
            output_value = to_python(path.output, bound)
        except Unobservable as exc:
            unobserved.add(_unobserved_kind(str(exc)))
    return ExploredPath(path.id, path.devices, output_name(path),
                        [f"{e.object}:{e.op}" for e in path.events], _inputs(conditions),
                        calls, " and ".join(kept) or "True",
                        path.outputs if not path.output.symbolic else [], output_value, sorted(unobserved),
                        _fixed_fields(path, conditions))


def _fixed_fields(path: PathResult, variables: set[str]) -> dict[str, int]:
    """Packet fields of the frame (no options) that constraints on the field
    alone hold to one value (words for the path's description; a field
    fixed only through a hash or a key is left out)."""
    by_field: dict[str, dict[int, claripy.ast.BV]] = defaultdict(dict)
    for name in variables:
        if (found := byte_field(name)) and not name.startswith("l4_") and not found[0].startswith("pkt["):
            by_field[found[0]][found[1]] = claripy.BVS(name, 8, explicit_name=True)
    fixed = {}
    for name, parts in sorted(by_field.items())[:12]:
        if len(parts) != max(parts) + 1:
            continue  # only some bytes of the field
        value = claripy.Concat(*(parts[i] for i in sorted(parts))) if len(parts) > 1 else parts[0]
        forced = path.forced(value, own_constraints=True)
        if forced is not None:
            fixed[name] = forced
    return fixed


_FLAG = re.compile(r"\.(found|ret)_\d+_\d+_\d+$")


def _outcome(path: PathResult, ret) -> int | None:
    """The value a call's 0/1 result must have on this path, if one."""
    if ret is None or not ret.symbolic or ret.op != "BVS" or not _FLAG.search(ret.args[0]):
        return ret.concrete_value if ret is not None and not ret.symbolic else None
    return path.forced(ret)


def _result(value) -> str | int | None:
    """A call result as the report keeps it: the symbol's name, a number, None."""
    if value is None:
        return None
    if value.op == "BVS":
        return value.args[0]
    if not value.symbolic:
        return value.concrete_value
    return None


def _unobserved_kind(what: str) -> str:
    """"packets_seen (an NF variable)" from the name of what was left out."""
    if what.startswith("mem_"):
        return "uninitialized memory"
    if m := _ENTRY_VALUE.match(what):
        return f"the value of {m.group(1)}"
    return what.split("_")[0] if not what.startswith(("too long", "operation")) else what
