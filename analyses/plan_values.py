"""The plan value (what `maestro plan --json` writes) and the names the
pipeline shares: plan strategies, decisions, program strategies, lock
kinds and the default NIC, declared once here and used by the planner,
the generator, bench, verify, the CLI and the workbench.

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
                 its handle), capacity (the NF's entries), per_core_capacity
                 (each core's instance: the same, or divided)}]
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
    analysis_digest  Analysis.digest() of the report the plan was made
                 from ("" in plans saved before it was recorded)
    overrides    {object: shard|replicate|lock} the plan was asked for
    capacity     keep | divide: each core's instance of a sharded object has
                 the NF's capacity, or that divided by the cores where the
                 object allows it (analyses/plan_capacity.py)
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 2
#: Strategies the planner can be asked for.
STRATEGIES = ("auto", "shared-nothing", "locks", "tm")
#: What a plan decides for an object.
DECISIONS = ("shard", "replicate", "lock")
#: Strategies a program can be generated for (plan strategies map onto them:
#: shared-nothing -> sn, mixed and locks -> locks, tm -> tm).
PROGRAM_STRATEGIES = ("seq", "sn", "locks", "tm")
#: Lock granularities of the locks strategy (one lock per object group,
#: per object, or one for everything).
LOCK_KINDS = ("maestro", "object", "global")
#: Capacities of each core's instance of a sharded object: the NF's, or
#: the NF's divided by the cores (analyses/plan_capacity.py).
CAPACITY_POLICIES = ("keep", "divide")
#: The NIC profile plans are made for unless one is named.
DEFAULT_NIC = "e810"


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
    #: entries of the NF's instance, and of each core's (plan_capacity.py)
    capacity: int = 0
    per_core_capacity: int = 0


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
    #: the overrides the plan was asked for (object -> shard|replicate|lock)
    overrides: dict[str, str] = field(default_factory=dict)
    #: the capacity policy of sharded objects (CAPACITY_POLICIES)
    capacity: str = "keep"

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
            "objects": [as_dict(o) | {"shard_on": {str(d): f for d, f in o.shard_on.items()}}
                        for o in self.objects],
            "rss": {str(d): as_dict(k) for d, k in self.rss.items()},
            "reta": list(self.reta),
            "proof": as_dict(self.proof),
            "quality": {
                "cores": self.quality.cores,
                "profiles": [as_dict(p) for p in self.quality.profiles],
                "depends_on": {str(d): f for d, f in self.quality.depends_on.items()},
            },
            "synthesis": as_dict(self.synthesis),
            "conflicts": [as_dict(c) for c in self.conflicts],
            "explanation": self.explanation,
            "notes": list(self.notes),
            "complete": self.complete,
            "incomplete": list(self.incomplete),
            "shared_variables": list(self.shared_variables),
            "analysis_digest": self.analysis_digest,
            "overrides": dict(self.overrides),
            "capacity": self.capacity,
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
            overrides={str(k): str(v) for k, v in (doc.get("overrides") or {}).items()},
            capacity=str(doc.get("capacity", "keep")),
        )

    @classmethod
    def load(cls, path: str | Path) -> "Plan":
        """Read a saved plan."""
        return cls.from_json(json.loads(Path(path).read_text()))


def as_dict(value) -> dict[str, Any]:
    return {k: getattr(value, k) for k in value.__dataclass_fields__}
