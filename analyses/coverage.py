"""Which analysis path each packet of a run took, and which paths a run reached.

A run (the reference runner with --calls, or a parallel program verifying)
reports for every packet the state calls it made and what they returned
(codegen/runtime/state/calltrace.h).  A packet took path P when:

- it arrived on one of P's devices and left as P's output says;
- its calls are P's calls: same functions on the same objects (by
  allocation order), from the same source lines, in the same order, and
  returning what P already knew when P knew it;
- P's condition (analyses/conditions.py) holds on the packet's bytes,
  length, device and time, with P's call results bound to what the calls
  returned.

Paths are disjoint, so a packet matches one path, unless the condition had
to leave something out that the run does not observe (an NF variable's
value): then it may match several, which the coverage reports as such.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Iterable

from analyses.conditions import Condition
from analyses.model import Analysis, ExploredPath, PathCall

NF_DROP, NF_FLOOD = -1, -2


@dataclass(frozen=True)
class ObservedCall:
    """One state call of a packet in a run (site: "file.c:line" or "?")."""

    function: str
    object: int
    site: str
    ret: int
    out: int
    cell: bytes | None = None


@dataclass(frozen=True)
class Observation:
    """A packet of a run: as it arrived, its output and its state calls."""

    index: int
    device: int
    time: int
    data: bytes
    output: int
    calls: tuple[ObservedCall, ...]


@dataclass(frozen=True)
class Coverage:
    """Paths a run reached: per device, the explored paths that may take a
    packet arriving there and those some packet took; `ambiguous`: paths
    packets may have taken but that are told apart from others only by
    values a run does not observe (not counted as reached); the packets no
    path explains (a sign the analysis missed behaviour)."""

    paths: dict[int, list[int]]
    reached: dict[int, list[int]]
    ambiguous: list[int]
    unexplained: list[int]
    described: dict[int, str] = field(default_factory=dict)
    #: packet index -> the paths it took
    taken: dict[int, list[int]] = field(default_factory=dict)

    def summary(self) -> str:
        """"paths reached: device 0 12/14, device 1 7/7"."""
        parts = [f"device {d} {len(self.reached.get(d, []))}/{len(ids)}" for d, ids in sorted(self.paths.items())]
        text = "paths reached: " + ", ".join(parts)
        maybe = self.maybe()
        if maybe:
            text += f" (and maybe {len(maybe)} more, told apart only by values a run does not observe)"
        if self.unexplained:
            text += f"; {len(self.unexplained)} packet(s) took no explored path"
        return text

    def maybe(self) -> list[int]:
        """Ambiguous paths no packet reached unambiguously."""
        return [p for p in self.ambiguous if not any(p in ids for ids in self.reached.values())]

    def missed(self) -> dict[int, list[int]]:
        """Per device, the paths no packet took."""
        return {d: [p for p in ids if p not in self.reached.get(d, [])] for d, ids in self.paths.items()}

    def complete(self) -> bool:
        """Whether every path was reached on every device that allows it."""
        return not any(self.missed().values())

    def union(self, other: "Coverage") -> "Coverage":
        """What two runs over traces of the same analysis reached together
        (packet indexes, which belong to each trace, are left out)."""
        reached = {d: sorted(set(self.reached.get(d, [])) | set(other.reached.get(d, [])))
                   for d in self.paths}
        return Coverage(self.paths, reached, sorted(set(self.ambiguous) | set(other.ambiguous)),
                        self.unexplained + other.unexplained, {**self.described, **other.described})

    def to_json(self) -> dict:
        return {"paths": {str(d): ids for d, ids in self.paths.items()},
                "reached": {str(d): ids for d, ids in self.reached.items()},
                "missed": {str(d): ids for d, ids in self.missed().items()},
                "ambiguous": self.ambiguous, "unexplained": self.unexplained[:20],
                "summary": self.summary(),
                "missed_paths": {str(p): text for p, text in self.described.items()
                                 if any(p in ids for ids in self.missed().values())}}


class PathMatcher:
    """Matches observed packets to the paths of one analysis."""

    def __init__(self, analysis: Analysis):
        self.analysis = analysis
        self.order = {o.name: o.order for o in analysis.objects if o.allocated}
        self.conditions = {p.id: Condition.compile(p.condition, f"path {p.id} condition")
                           for p in analysis.paths}
        self.outputs = {p.id: Condition.compile(p.output_value, f"path {p.id} output")
                        for p in analysis.paths if p.output_value}
        self.by_signature: dict[tuple, list[ExploredPath]] = {}
        for path in analysis.paths:
            self.by_signature.setdefault(self._signature(path.calls), []).append(path)

    def _signature(self, calls: Iterable[PathCall]) -> tuple:
        return tuple((c.function, self.order.get(c.object, -1)) for c in calls)

    def match(self, packet: Observation) -> list[int]:
        """The paths the packet may have taken (normally one)."""
        signature = tuple((c.function, c.object) for c in packet.calls)
        found = []
        for path in self.by_signature.get(signature, ()):
            if packet.device in path.device and self._takes(path, packet):
                found.append(path.id)
        return found

    def _takes(self, path: ExploredPath, packet: Observation) -> bool:
        results: dict[str, int] = {}
        for expected, seen in zip(path.calls, packet.calls):
            if "?" not in (expected.call, seen.site) and _line(expected.call) != _line(seen.site):
                return False
            for symbol, value in ((expected.ret, seen.ret), (expected.out, seen.out)):
                if not _bind(symbol, value, results):
                    return False
            if isinstance(expected.cell, str) and seen.cell is not None:
                results[expected.cell] = int.from_bytes(seen.cell, "big")
        try:
            if not self.conditions[path.id](packet.data, results, packet.device, packet.time):
                return False
            if path.outputs:
                return packet.output in path.outputs
            value = self.outputs[path.id](packet.data, results, packet.device, packet.time) \
                if path.id in self.outputs else None
        except KeyError:  # a result the run did not report (a cell too large)
            return True
        return value is None or _signed(value) == packet.output


@lru_cache(maxsize=4096)
def _line(site: str) -> str:
    """`file.c:12` of a call site given with any folder."""
    file, _, line = site.rpartition(":")
    return f"{Path(file).name}:{line}"


def _bind(symbol, value: int, results: dict[str, int]) -> bool:
    """Bind a result symbol (its width is its name's last part), or check a
    value the path knew."""
    if symbol is None:
        return True
    if isinstance(symbol, int):
        return (value & 0xFFFFFFFF) == (symbol & 0xFFFFFFFF)
    width = int(symbol.rsplit("_", 1)[1])
    results[symbol] = value & ((1 << width) - 1)
    return True


def _signed(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value >> 31 else value


def coverage(analysis: Analysis, packets: Iterable[Observation],
             matcher: PathMatcher | None = None) -> Coverage:
    """Which paths the packets took (see the module doc); `matcher`: one
    made for `analysis` before (compiling its conditions takes a while)."""
    matcher = matcher or PathMatcher(analysis)
    paths = {d: [p.id for p in analysis.paths if d in p.device] for d in range(analysis.devices)}
    reached: dict[int, set[int]] = {d: set() for d in paths}
    ambiguous: set[int] = set()
    unexplained = []
    taken = {}
    for packet in packets:
        ids = matcher.match(packet)
        taken[packet.index] = ids
        if not ids:
            unexplained.append(packet.index)
        elif len(ids) > 1:
            ambiguous.update(ids)
        else:
            reached.setdefault(packet.device, set()).update(ids)
    described = {p.id: describe_path(p) for p in analysis.paths}
    return Coverage(paths, {d: sorted(ids) for d, ids in reached.items()}, sorted(ambiguous),
                    unexplained, described, taken)


_OUTCOMES = {
    "map_get": {1: "found", 0: "not found"},
    "dchain_allocate_new_index": {1: "allocated", 0: "full"},
    "dchain_is_index_allocated": {1: "allocated", 0: "not allocated"},
    "dchain_rejuvenate_index": {1: "refreshed", 0: "not allocated"},
    "dchain_expire_one_index": {1: "expired one", 0: "none expired"},
    "cht_find_preferred_available_backend": {1: "a backend", 0: "no backend"},
    "sketch_fetch": {1: "over threshold", 0: "under threshold"},
    "sketch_touch_buckets": {1: "counted", 0: "not counted"},
}


def describe_path(path: ExploredPath) -> str:
    """The path in words: "device 1 -> 0: map_get flow_map (found),
    dchain_rejuvenate_index flow_chain; depends on eth.type, ipv4.proto"."""
    calls = []
    for call in path.calls:
        if call.function in ("vector_return", "sketch_compute_hashes"):
            continue
        outcome = _OUTCOMES.get(call.function, {}).get(call.outcome) if call.outcome is not None else None
        calls.append(f"{call.function} {call.object}".rstrip() + (f" ({outcome})" if outcome else ""))
    fields = [f for f in path.condition_fields if "." in f and not f.split(".")[1].startswith(
        ("found", "value", "index", "ret", "cell", "chosen", "expired", "size"))]
    text = f"device {'/'.join(map(str, path.device))} -> {path.output}"
    if path.fixed:
        text += " with " + ", ".join(f"{name}={value:#x}" if value > 255 else f"{name}={value}"
                                     for name, value in path.fixed.items())
    if calls:
        text += ": " + ", ".join(calls)
    if fields:
        text += "; depends on " + ", ".join(fields)
    if path.unobserved:
        text += f" (and on {', '.join(path.unobserved)})"
    return text
