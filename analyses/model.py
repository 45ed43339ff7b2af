"""The analysis report: what an NF keeps, how packets key it, what it writes.

`Analysis` is the frozen, JSON-serialisable value the symbolic execution
(analyses/symbex.py) produces and the planner and the workbench consume.
Its JSON schema (top-level keys kept stable):

    nf            NF name (file stem)
    source        path of the NF's C file
    devices       number of devices (NF_DEVICES)
    paths         [Path]        one per explored nf_process path
    objects       [StateObject] allocated by nf_init, in allocation order, then
                  the NF's variables nf_process reads or writes (kind "global")
    accesses      [Access]      state calls of nf_process, merged across paths
    relations     [Relation]    fields that must be equal across devices
    packet_writes [PacketWrite] packet fields rewritten, per path
    stats         Stats         paths, seconds, peak RSS, warnings, complete
    variables     [Variable]    every writable variable with static storage

Packet fields use the canonical names of NF_CONTRACT.md ("ipv4.src",
"l4.dport", "ipv4.src/24" for a prefix).  A key is the list of its parts in
key-byte order; a part is a field name, "const:0x..", or a derived value
"<object>.index" / "<object>.value" (the dchain index or map value another
access produced), possibly with a transformation suffix such as "~bswap" or
"~hash".
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Operation classes of a state access.
OPS = ("read", "write", "create", "update", "verify", "destroy", "expire")
#: Kinds of state objects: the state API's, and "global" for a variable of
#: the NF (file-scope or static) that nf_process uses directly.
KINDS = ("map", "vector", "dchain", "cht", "sketch", "global")
#: Schema version of the JSON document.
#: A claripy symbol's process-wide number in a name such as "l4_2_1523_8" or
#: "flow_map.found_4_1589_32" (the 1523, the 1589): left out of digests.
_SYMBOL_NUMBER = re.compile(r"_\d+(_\d+)\b")

SCHEMA_VERSION = 2


@dataclass(frozen=True)
class StateObject:
    """One state object allocated by nf_init.

    name: the file-scope variable holding it ("flow_map", "levels[1].map");
    kind: one of KINDS; capacity: entries (map, vector, dchain, sketch width;
    for a cht its height * backends); key_size: bytes of a map/sketch key;
    elem_size: bytes of a vector cell; order: position among nf_init's
    allocations; written: whether nf_process ever writes it (creates,
    updates, destroys or expires count as writes).

    A "global" object is a variable of the NF: capacity is its element
    count (1 for a scalar or struct), elem_size the element's bytes, order
    follows the allocations; written means nf_process writes it and a later
    packet may read what it wrote (a variable every packet overwrites before
    reading is scratch, not state); symbol is its ELF symbol ("next.0" for a
    block-scope static) and decl its declaration ("nf.c:12").
    """

    name: str
    kind: str
    capacity: int
    key_size: int | None = None
    elem_size: int | None = None
    order: int = 0
    written: bool = False
    symbol: str | None = None
    decl: str | None = None

    @property
    def allocated(self) -> bool:
        """Whether nf_init allocates it through the state API (not a variable)."""
        return self.kind != "global"


@dataclass(frozen=True)
class Access:
    """One state call of nf_process, merged over the paths that make it.

    key_fields: the key's parts (see module doc); key_kind: "packet" when
    every part is a packet field, "derived" when it comes from another
    object, "mixed", "constant" or "none" (expiry, whole-object calls);
    derived_from: for derived keys, the object whose index/value it is and
    the packet fields that led there (NAT: {"object": "flow_chain", "via":
    ["l4.dport"], "expr": "l4.dport - 1024"}); condition_fields: fields and
    inputs the paths' conditions depend on; paths: ids of those paths;
    calls: "file:line" of the calls in the source.
    """

    object: str
    op: str
    device: list[int]
    key_fields: list[str]
    key_kind: str = "packet"
    derived_from: dict[str, Any] | None = None
    condition_fields: list[str] = field(default_factory=list)
    paths: list[int] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    function: str = ""


@dataclass(frozen=True)
class Relation:
    """Fields that must be equal across two accesses to one object.

    devices: [writer's device, reader's device]; field_pairs: [[field on the
    writer's packet, field on the reader's packet], ...] (fw: LAN ipv4.src
    with WAN ipv4.dst, ...); via: how the reader reached the entry ("key"
    for the same map key, "index:<object>" for an index lookup)."""

    object: str
    devices: list[int]
    field_pairs: list[list[str]]
    via: str = "key"


@dataclass(frozen=True)
class PacketWrite:
    """Packet fields a path rewrites, with the value's source per field."""

    path: int
    device: list[int]
    fields: dict[str, str]
    output: str


@dataclass(frozen=True)
class PathCall:
    """A state API call (or nf_checksum) of a path, as a run observes it:
    function, object ("" for nf_checksum), call site ("file:line"), and
    what it returned: ret, out (the out-pointer's value) and cell (a
    borrowed cell's content), each the analysis's symbol for it, a number
    when the path already knew it, or None when not observed; outcome: the
    return value the path requires, when it requires one (found or not)."""

    function: str
    object: str
    call: str
    ret: str | int | None = None
    out: str | int | None = None
    cell: str | None = None
    outcome: int | None = None


@dataclass(frozen=True)
class ExploredPath:
    """One explored path: input device(s), output, and its accesses.

    For telling which path a run's packet took (analyses/coverage.py):
    calls: its state calls in order; condition: its path condition as a
    checked Python expression over the packet and the calls' results
    (analyses/conditions.py); outputs: its possible outputs when few, and
    output_value: the output as such an expression otherwise; unobserved:
    what the condition leaves out because a run does not observe it (an NF
    variable's value, uninitialized memory); fixed: packet fields the path
    allows one value of ("ipv4.proto": 17)."""

    id: int
    device: list[int]
    output: str
    accesses: list[str]
    condition_fields: list[str]
    calls: list[PathCall] = field(default_factory=list)
    condition: str = "True"
    outputs: list[int] = field(default_factory=list)
    output_value: str | None = None
    unobserved: list[str] = field(default_factory=list)
    fixed: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Variable:
    """A writable variable of the NF with static storage: C name (block-scope
    statics as "function.name"), ELF symbol, declaration, bytes, and whether
    it holds state API handles (then the objects it holds share its fate)."""

    name: str
    symbol: str
    decl: str
    size: int
    holds_handles: bool = False


@dataclass(frozen=True)
class Stats:
    """Cost and completeness of the exploration, its warnings (uninitialized
    reads, budgets hit, errors on a path) and the assumptions it made."""

    paths: int
    seconds: float
    peak_rss_mb: float
    warnings: list[str] = field(default_factory=list)
    complete: bool = True
    assumptions: list[str] = field(default_factory=list)
    #: processes that explored at once (peak_rss_mb is the first one's)
    processes: int = 1


@dataclass(frozen=True)
class Analysis:
    """The analysis report of one NF (see the module doc for the schema)."""

    nf: str
    source: str
    devices: int
    paths: list[ExploredPath]
    objects: list[StateObject]
    accesses: list[Access]
    relations: list[Relation]
    packet_writes: list[PacketWrite]
    stats: Stats
    variables: list[Variable] = field(default_factory=list)
    #: what the analysis was made from: {"source": digest of the NF's source
    #: and local headers, "opt": the optimisation level, "defines": -D values}
    inputs: dict[str, Any] = field(default_factory=dict)

    def object(self, name: str) -> StateObject:
        """The object called `name` (KeyError if there is none)."""
        for obj in self.objects:
            if obj.name == name:
                return obj
        raise KeyError(name)

    def accesses_to(self, name: str) -> list[Access]:
        """Accesses of object `name`, in report order."""
        return [a for a in self.accesses if a.object == name]

    def to_json(self) -> dict[str, Any]:
        """The JSON document (plain dicts and lists)."""
        doc = dataclasses.asdict(self)
        doc["schema"] = SCHEMA_VERSION
        return doc

    def digest(self) -> str:
        """A short digest of what the analysis was made from (`inputs`) and
        of what plans are made from (the NF, its devices, objects, accesses,
        relations, packet writes, variables, whether it is complete).
        Timings, path texts, derived expressions and the process-wide
        numbers claripy gives its symbols ("flow_map.found_4_1589_32": the
        1589) are left out, so the same report saved and loaded, or made
        again in another process, has the same digest."""
        doc = self.to_json()
        basis = {k: doc[k] for k in ("nf", "devices", "objects", "accesses", "relations",
                                     "packet_writes", "variables", "inputs")}
        for access in basis["accesses"]:  # the expression is cut at a length those numbers move
            (access.get("derived_from") or {}).pop("expr", None)
        basis["complete"] = self.stats.complete
        text = _SYMBOL_NUMBER.sub(r"_\1", json.dumps(basis, sort_keys=True))
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def dumps(self) -> str:
        """The JSON document as indented text."""
        return json.dumps(self.to_json(), indent=2)

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> "Analysis":
        """Rebuild from `to_json` output; KeyError/TypeError name bad fields."""
        return cls(
            nf=doc["nf"],
            source=doc.get("source", ""),
            devices=doc["devices"],
            paths=[ExploredPath(**{**p, "calls": [PathCall(**c) for c in p.get("calls", [])]})
                   for p in doc["paths"]],
            objects=[StateObject(**o) for o in doc["objects"]],
            accesses=[Access(**a) for a in doc["accesses"]],
            relations=[Relation(**r) for r in doc["relations"]],
            packet_writes=[PacketWrite(**w) for w in doc["packet_writes"]],
            stats=Stats(**doc["stats"]),
            variables=[Variable(**v) for v in doc.get("variables", [])],
            inputs=dict(doc.get("inputs") or {}),
        )

    @classmethod
    def load(cls, path: str | Path) -> "Analysis":
        """Read a saved report."""
        return cls.from_json(json.loads(Path(path).read_text()))
