"""Checking that the parallel program behaves like the sequential NF.

`compare` matches the reference runner's per-packet results (output and
bytes after processing) with the parallel program's, packet by packet.
Differences are either allowed, each kind with its justification, or
reported with the first differing packet:

- state-chosen values (any strategy): a rewritten field whose value the NF
  takes from its state (the analysis's packet writes name a dchain index or
  map value as the source, e.g. NAT's external port).  Each core allocates
  from its own index space, so values differ; they are allowed when the
  output device is the same and the values correspond one-to-one between
  the two runs (per core) until both runs allocate anew for a packet (a
  flow expired and its index was given again);
- re-addressed replies: packets sent to the parallel program addressed to
  the value it chose (a NAT reply to its own external port), in force at
  the packet's time on the packet's core; a packet that names a flow of
  another core, or none, names a value its core never chose (readdress).

Checksums are never excused: each is recomputed (codegen/checksums.py) and
must cover the parallel packet as the sequential NF's covered its own.  A
packet lost, output twice or not in the trace is a difference.

Shared-nothing programs are compared with the reference run in trace order.
Programs with locks or transactions interleave packets of different cores
in an order the trace does not fix; each packet runs atomically, so the run
must equal the sequential NF run in the *serial order* the cores committed
packets in (the program records it).  The reference is run in that order:
a difference there is a real one (a broken lock, a lost update).

A verdict says what it covered: both runs report each packet's state calls,
which tell which explored path it took (analyses/coverage.py), and the
verdict lists the paths reached per device and those never reached, in
words.  `maestro verify` drives traffic down every path it can
(codegen/path_traffic.py); "equivalent" means equivalent on those paths.
"""
from __future__ import annotations

import heapq
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

from analyses.errors import MaestroError
from analyses.fields import FRAME_FIELDS, L4_FIELDS, byte_field, is_packet_field
from analyses.coverage import Coverage, Observation, coverage
from analyses.model import Analysis
from analyses.plan_values import DEFAULT_NIC
from codegen.pipeline import Pipeline
from codegen.calltrace import read_calls, split_calls
from codegen.checksums import CHECKSUM_FIELDS, checksum_mismatches
from codegen.program import program_digest
from codegen.reference import NF_DROP, NF_FLOOD, PacketResult
from codegen.trace import TracePacket

#: Justifications of the allowed differences, by kind.
ALLOWED = {
    "state-chosen values": "fields the NF fills from its state (an allocated index or a "
    "stored value) differ because each core allocates from its own index space; the output "
    "is the same and the values map one-to-one between the runs",
    "re-addressed replies": "packets that name a value the NF chose from its state (replies to "
    "NAT's external port) were sent to the parallel program addressed to the value it chose for "
    "the same flow, as the network would address them; the output is the same and only those "
    "fields differ",
}
#: Why the NF's table and a sharded one can fill at different moments.
PER_CORE_TABLES = ("in the parallel program each core has its own instance with the NF's capacity, so "
                   "it fills at another moment than the sequential NF's one table")
#: Why a locks/tm run is compared with the reference in its commit order.
SERIAL_ORDER = ("packets of different cores interleave in an order the trace does not fix; "
                "each ran atomically, so the run is compared with the sequential NF run in the "
                "serial order the cores committed them in")


@dataclass(frozen=True)
class ParallelResult:
    """One line of the parallel program's results file."""

    index: int
    device: int
    output: int | None  # None: the packet was lost
    data: bytes
    worker: int
    order: int
    calls: tuple = ()
    #: shared objects the packet read and wrote (bit: allocation order;
    #: -1, every object, where the run did not say)
    reads: int = -1
    writes: int = -1


@dataclass(frozen=True)
class Verdict:
    """The outcome of a comparison."""

    packets: int
    identical: int
    allowed: dict[str, int]
    lost: int
    first_difference: dict[str, Any] | None
    disallowed: int
    justifications: dict[str, str] = field(default_factory=dict)
    #: paths the sequential and the parallel runs reached
    reference_coverage: Coverage | None = None
    parallel_coverage: Coverage | None = None

    @property
    def equivalent(self) -> bool:
        return self.disallowed == 0 and self.lost == 0

    def summary(self) -> str:
        """One line for humans, with what the comparison covered."""
        reached = f"; sequential {self.reference_coverage.summary()}" if self.reference_coverage else \
            "; coverage not measured"
        if not self.equivalent:
            first = self.first_difference or {}
            return (f"DIFFERENT: {self.disallowed} packet(s) differ, {self.lost} lost; first at "
                    f"packet {first.get('index')}: {first.get('what')}{reached}")
        extra = ", ".join(f"{n} {kind}" for kind, n in self.allowed.items() if n)
        return (f"equivalent: {self.identical}/{self.packets} packets identical"
                + (f", allowed differences: {extra}" if extra else "") + reached)

    def never_reached(self) -> list[str]:
        """The paths no packet of the sequential run took, in words."""
        cov = self.reference_coverage
        if cov is None:
            return []
        return [f"path {p} (device {d}): {cov.described.get(p, '')}"
                for d, ids in sorted(cov.missed().items()) for p in ids]

    def to_json(self) -> dict[str, Any]:
        return {"equivalent": self.equivalent, "packets": self.packets,
                "identical": self.identical, "allowed": self.allowed, "lost": self.lost,
                "disallowed": self.disallowed, "first_difference": self.first_difference,
                "justifications": self.justifications, "summary": self.summary(),
                "coverage": {"sequential": self.reference_coverage.to_json() if self.reference_coverage else None,
                             "parallel": self.parallel_coverage.to_json() if self.parallel_coverage else None},
                "never_reached": self.never_reached()}


def read_parallel_results(path: Path, executable: Path | None = None) -> list[ParallelResult]:
    """The results file the program writes with --results --bytes (with each
    packet's state calls, call sites resolved in `executable`)."""
    results, call_texts = [], []
    for line in Path(path).read_text().splitlines():
        if line.startswith("#"):
            continue
        line, calls = split_calls(line)
        fields = line.split()
        if len(fields) not in (7, 9):
            raise MaestroError(f"{path}: malformed result line {line[:80]!r}")
        index, device, output, _length, data, worker, order = fields[:7]
        reads, writes = (int(f, 16) for f in fields[7:]) if len(fields) == 9 else (-1, -1)
        value = {"drop": NF_DROP, "flood": NF_FLOOD, "lost": None}.get(output)
        results.append(ParallelResult(int(index), int(device),
                                      value if output in ("drop", "flood", "lost") else int(output),
                                      bytes.fromhex(data), int(worker), int(order), (), reads, writes))
        call_texts.append(calls)
    if executable is not None and any(call_texts):
        results = [replace(r, calls=c) for r, c in zip(results, read_calls(call_texts, executable))]
    return results


def state_chosen_fields(analysis: Analysis) -> set[str]:
    """Packet fields the NF writes from state-derived values (the checksums
    that cover them are recomputed by the comparison, not listed here)."""
    fields = set()
    for write in analysis.packet_writes:
        for name, source in write.fields.items():
            if any(marker in source for marker in (".index", ".value", ".chosen")):
                fields.add(name)
    return fields


def reply_fields(analysis: Analysis) -> dict[int, set[str]]:
    """Per device, the packet fields that name a state-chosen value: keys of
    the form `field~offset` (an index is the field minus a constant, as
    NAT's external port), when the NF writes state-chosen values."""
    if not state_chosen_fields(analysis):
        return {}
    found: dict[int, set[str]] = {}
    for access in analysis.accesses:
        for part in access.key_fields:
            if part.endswith("~offset") and is_packet_field(part):
                for device in access.device:
                    found.setdefault(device, set()).add(part.split("~")[0])
    return found


@dataclass(frozen=True)
class Binding:
    """A state-chosen value both runs wrote into the same packet: the
    sequential value, and the parallel one with the core that chose it."""

    index: int  # the packet's trace index
    seq: bytes
    worker: int
    par: bytes


class LiveBindings:
    """Which sequential value stands for which (core, parallel value) as the
    trace goes on: a one-to-one map per core, where a new binding of either
    side ends the old one (a flow expired and its index was given again)."""

    def __init__(self) -> None:
        self.by_seq: dict[bytes, Binding] = {}
        self.by_par: dict[tuple[int, bytes], Binding] = {}

    def bind(self, binding: Binding) -> None:
        for old in (self.by_seq.get(binding.seq), self.by_par.get((binding.worker, binding.par))):
            if old is not None:
                if self.by_seq.get(old.seq) is old:
                    del self.by_seq[old.seq]
                if self.by_par.get((old.worker, old.par)) is old:
                    del self.by_par[(old.worker, old.par)]
        self.by_seq[binding.seq] = binding
        self.by_par[(binding.worker, binding.par)] = binding

    def agrees(self, binding: Binding) -> bool:
        """Whether `binding` is the one in force on both sides (or neither
        side is bound yet)."""
        seq, par = self.by_seq.get(binding.seq), self.by_par.get((binding.worker, binding.par))
        if seq is None and par is None:
            return True
        return seq is par and (seq.worker, seq.par) == (binding.worker, binding.par)


def value_bindings(reference: list[PacketResult], parallel: list[ParallelResult], analysis: Analysis,
                   trace: Sequence[TracePacket], sent: Sequence[TracePacket]) -> list[Binding]:
    """The state-chosen values both runs wrote into the same packet, in trace
    order (`parallel` in trace order too, see in_trace_order; `trace` and
    `sent` what each run received)."""
    fields = sorted(state_chosen_fields(analysis) - CHECKSUM_FIELDS)
    found = []
    for index, (ref, par) in enumerate(zip(reference, parallel)):
        if ref.data and par.output is not None and ref.output == par.output:
            found += [b for name in fields
                      if (b := written_value(index, name, ref, par, trace[index], sent[index]))]
    return found


def written_value(index: int, name: str, ref: PacketResult, par: ParallelResult,
                  seq_in: TracePacket, par_in: TracePacket) -> Binding | None:
    """The values of field `name` in both runs' output of a packet, when
    either run rewrote it (a field the NF left as it came, such as a
    reply's source port, names no state-chosen value)."""
    a, b = _span(ref.data or b"", name), _span(par.data, name)
    if not (a and b):
        return None
    seq, par_value = bytes(ref.data[a[0]:a[1]]), bytes(par.data[b[0]:b[1]])
    if seq == seq_in.data[a[0]:a[1]] and par_value == par_in.data[b[0]:b[1]]:
        return None
    return Binding(index, seq, par.worker, par_value)


def readdress(trace: list[TracePacket], fields: dict[int, set[str]], bindings: Sequence[Binding],
              workers: Mapping[int, int]) -> tuple[list[TracePacket], dict[int, set[str]]]:
    """The trace as the parallel program should receive it, and the fields
    changed per packet index.  A packet that names, in `fields`, a value the
    sequential NF chose for a flow (NAT's external port) names instead the
    value the parallel run chose for that flow, when the flow lives on the
    core the packet goes to (`workers`: trace index -> core of the last
    run).  When the value names no live flow, or one on another core (a
    foreign or stale reply: the sequential NF must not accept it on a
    correct plan), the packet names a value its core never chose, so it
    names no flow in the parallel run either.  L4 checksums are updated."""
    used: dict[int, set[bytes]] = {}
    for binding in bindings:
        used.setdefault(binding.worker, set()).add(binding.par)
    live, pending = LiveBindings(), list(bindings)
    out, changed, next_binding = [], {}, 0
    for index, packet in enumerate(trace):
        while next_binding < len(pending) and pending[next_binding].index < index:
            live.bind(pending[next_binding])
            next_binding += 1
        data = bytearray(packet.data)
        core = workers.get(index)
        for name in fields.get(packet.device, ()) if core is not None else ():
            span = _span(data, name)
            if not span:
                continue
            old = bytes(data[span[0]:span[1]])
            bound = live.by_seq.get(old)
            if bound is not None and bound.worker == core:
                new = bound.par
            else:
                new = _unused(old, used.get(core, set()))
            if new != old:
                data[span[0]:span[1]] = new
                fix_l4_checksum(data, old, new)
                changed.setdefault(index, set()).add(name)
        if bytes(data) != packet.data:
            packet = TracePacket(packet.device, packet.time_ns, bytes(data))
        out.append(packet)
    return out, changed


def _unused(value: bytes, used: set[bytes]) -> bytes:
    """`value`, or the next value of its width (wrapping) not in `used`."""
    width = 8 * len(value)
    number = int.from_bytes(value, "big")
    for step in range(len(used) + 1):
        candidate = ((number + step) % (1 << width)).to_bytes(len(value), "big")
        if candidate not in used:
            return candidate
    return value


def _span(data: bytes | bytearray, name: str) -> tuple[int, int] | None:
    """[start, end) of a field in a frame (L4 fields through IHL)."""
    if name in FRAME_FIELDS:
        start, length = FRAME_FIELDS[name]
    elif name in L4_FIELDS and len(data) > 14 and data[14] & 0x0F >= 5:
        # an IHL under 5 (a malformed header the NF refuses) puts no L4
        # header anywhere: reading one would name IPv4 header bytes
        start, length = L4_FIELDS[name]
        start += 14 + (data[14] & 0x0F) * 4
    else:
        return None
    return (start, start + length) if start + length <= len(data) else None


def fix_l4_checksum(data: bytearray, old: bytes, new: bytes) -> None:
    """RFC 1624 update of the TCP/UDP checksum for a 16-bit word change."""
    if len(data) < 34 or len(old) != 2:
        return
    proto = data[23]
    span = _span(data, "tcp.csum" if proto == 6 else "udp.csum" if proto == 17 else "")
    if span is None or (proto == 17 and data[span[0]:span[1]] == b"\0\0"):
        return
    csum = int.from_bytes(data[span[0]:span[1]], "big")
    total = (~csum & 0xFFFF) + (~int.from_bytes(old, "big") & 0xFFFF) + int.from_bytes(new, "big")
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    data[span[0]:span[1]] = (~total & 0xFFFF).to_bytes(2, "big")


def _differing_fields(a: bytes, b: bytes) -> set[str]:
    return {byte_field(f"pkt_{i}_")[0] for i in range(min(len(a), len(b))) if a[i] != b[i]}


def _field_value(data: bytes, name: str) -> bytes:
    offsets = [i for i in range(len(data)) if byte_field(f"pkt_{i}_")[0] == name]
    return bytes(data[i] for i in offsets)


def serial_order(parallel: list[ParallelResult], trace: Sequence[TracePacket] | None = None) -> list[int]:
    """Trace indexes in a serial order the run is equivalent to (lost ones
    last).  The cores' commit order fixes the order of each core's packets
    and of two packets of different cores where one wrote a shared object
    the other touched; among the rest, the earliest timestamp goes first
    (given the trace).  Why: a core may run far ahead of another in trace
    time, and a table sharded per core is one table in the sequential NF,
    whose expiry must see time go forward as each core's table did."""
    first: dict[int, ParallelResult] = {}
    for p in sorted(parallel, key=lambda p: (p.output is None, p.order, p.index)):
        first.setdefault(p.index, p)  # a duplicated packet once
    committed = [p for p in first.values() if p.output is not None]
    lost = [p.index for p in first.values() if p.output is None]
    after: dict[int, set[int]] = {p.index: set() for p in committed}  # index -> packets that must follow
    last_of_worker: dict[int, int] = {}
    last_writer: dict[int, int] = {}
    readers: dict[int, list[int]] = {}  # object -> packets that read it since its last writer
    for p in committed:
        before = {last_of_worker[p.worker]} if p.worker in last_of_worker else set()
        last_of_worker[p.worker] = p.index
        for obj in _bits(p.reads | p.writes):
            if obj in last_writer:
                before.add(last_writer[obj])
            if p.writes & (1 << obj):
                before.update(readers.pop(obj, ()))
                last_writer[obj] = p.index
            else:
                readers.setdefault(obj, []).append(p.index)
        before.discard(p.index)
        for earlier in before:
            after[earlier].add(p.index)
    waiting = {i: 0 for i in after}
    for followers in after.values():
        for i in followers:
            waiting[i] += 1
    key = (lambda i: (trace[i].time_ns, i)) if trace is not None else \
        (lambda i: (first[i].order, i))
    ready = [key(i) for i, n in waiting.items() if n == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        *_, index = heapq.heappop(ready)
        order.append(index)
        for i in after[index]:
            waiting[i] -= 1
            if waiting[i] == 0:
                heapq.heappush(ready, key(i))
    return order + lost


def _bits(mask: int) -> range | list[int]:
    """The object ids of a mask (every id for -1, which conflicts with all)."""
    if mask < 0:
        return range(64)
    return [b for b in range(mask.bit_length()) if mask >> b & 1]


def reference_in_order(nf, trace: list, order: list[int] | None, *, defines=None,
                       calls: bool = False) -> list[PacketResult]:
    """The reference runner's results, in trace order, for the trace
    replayed in `order` (a permutation of its indexes; None: trace order)."""
    from codegen.reference import run_reference

    order = order if order is not None else list(range(len(trace)))
    replayed = run_reference(nf, [trace[i] for i in order], defines=defines, calls=calls).results
    results: list = [None] * len(trace)
    for position, index in enumerate(order):
        results[index] = replayed[position]
    return results


def compare(reference: list[PacketResult], parallel: list[ParallelResult], analysis: Analysis,
            trace: Sequence[TracePacket], sent: Sequence[TracePacket] | None = None,
            readdressed: dict[int, set[str]] | None = None) -> Verdict:
    """Compare per packet; see the module doc.  `reference` is in trace
    order; `parallel` holds one result per trace index, in any order (a
    missing index is a lost packet, a repeated one a duplicate).  `trace` is
    what the sequential NF received, `sent` what the parallel program
    received (default: the same); readdressed: fields of packets the
    parallel run received re-addressed (readdress), a difference in just
    those is allowed.  Checksums are never excused: they are recomputed
    (codegen/checksums.py) and must cover the parallel packet as the
    sequential NF's covered its own."""
    readdressed = readdressed or {}
    sent = sent if sent is not None else trace
    chosen = state_chosen_fields(analysis)
    live = {name: LiveBindings() for name in chosen - CHECKSUM_FIELDS}
    allowed = {kind: 0 for kind in ALLOWED}
    identical = lost = disallowed = 0
    first = None
    by_index: dict[int, ParallelResult] = {}
    for par in parallel:
        if par.index in by_index or not 0 <= par.index < len(reference):
            disallowed += 1
            first = first or {"index": par.index, "what": "the parallel program output this packet twice"
                              if par.index in by_index else "the parallel program output a packet not in the trace"}
        else:
            by_index[par.index] = par
    for index, ref in enumerate(reference):  # trace order
        par = by_index.get(index)
        if par is None or par.output is None:
            lost += 1
            first = first or {"index": index, "what": "lost by the parallel program"}
            continue
        if ref.output == par.output and ref.data == par.data:
            identical += 1
            _bind(live, index, ref, par, trace[index], sent[index])
            continue
        differing = _differing_fields(ref.data or b"", par.data)
        kind = None
        if ref.output == par.output and differing - CHECKSUM_FIELDS:
            changed = differing - CHECKSUM_FIELDS
            if changed <= chosen and _bind(live, index, ref, par, trace[index], sent[index]):
                kind = "state-chosen values"
            elif changed <= readdressed.get(index, set()):
                kind = "re-addressed replies"
        wrong = checksum_mismatches(trace[index].data, ref.data or b"", sent[index].data, par.data) \
            if kind else []
        if kind and not wrong:
            allowed[kind] += 1
            continue
        disallowed += 1
        if first is None:
            what = f"sequential output {_name(ref.output)}, parallel {_name(par.output)}" + \
                (f"; fields differ: {', '.join(sorted(differing))}" if differing else "")
            if wrong:
                what += f"; {kind} allowed, but the checksum does not cover them: {', '.join(wrong)}"
            first = {"index": index, "device": ref.device, "what": what,
                     "sequential": (ref.data or b"").hex(), "parallel": par.data.hex()}
    return Verdict(len(reference), identical, allowed, lost, first, disallowed,
                   {k: v for k, v in ALLOWED.items() if allowed[k]})


def _bind(live: dict[str, LiveBindings], index: int, ref: PacketResult, par: ParallelResult,
          seq_in: TracePacket, par_in: TracePacket) -> bool:
    """Record the state-chosen values of a packet both runs output alike;
    whether they agree with the values in force: a sequential value always
    stands for the same parallel value on one core (cores allocate from
    their own index spaces, so two cores may reuse a value) until both runs
    allocate anew for a packet (a flow expired and a new one came)."""
    fresh = _allocates(ref.calls) and _allocates(par.calls)
    agree = True
    for name, bindings in live.items():
        if binding := written_value(index, name, ref, par, seq_in, par_in):
            agree = agree and (fresh or bindings.agrees(binding))
            bindings.bind(binding)
    return agree


def _allocates(calls) -> bool:
    return any(c.function == "dchain_allocate_new_index" and c.ret == 1 for c in calls)


def _name(output: int | None) -> str:
    return {NF_DROP: "drop", NF_FLOOD: "flood", None: "lost"}.get(output, str(output))


def in_trace_order(parallel: Sequence[ParallelResult], trace: Sequence[TracePacket]) -> list[ParallelResult]:
    """The first result of each trace index (a lost one where none)."""
    first: dict[int, ParallelResult] = {}
    for par in parallel:
        first.setdefault(par.index, par)
    return [first.get(i) or ParallelResult(i, p.device, None, b"", 0, 0) for i, p in enumerate(trace)]


def observations(trace: Sequence[TracePacket], outputs: Sequence) -> list[Observation]:
    """What a run did with each trace packet, for coverage: `outputs` are
    PacketResult or ParallelResult (their output and calls), in trace order."""
    return [Observation(i, p.device, p.time_ns, p.data, r.output if r.output is not None else -99, r.calls)
            for i, (p, r) in enumerate(zip(trace, outputs))]


def parallel_results(program, packets: Sequence[TracePacket], *, cancel=None) -> tuple[list[ParallelResult], Any]:
    """Run a built program once over `packets` on the simulated NIC: each
    packet's result (with its state calls) and the run (RunResult)."""
    import tempfile

    from codegen.program import run

    with tempfile.TemporaryDirectory(prefix="maestro-verify-") as tmp:
        results = Path(tmp) / "results.txt"
        ran = run(program, packets=packets, once=True, results=results, result_bytes=True, cancel=cancel,
                  in_trace_time=True)
        if cancel is not None and cancel.is_set():
            raise MaestroError(f"verification of {program.nf} was cancelled")
        return read_parallel_results(results, program.program), ran


def verify_program(program, analysis: Analysis, trace: list[TracePacket], *, defines=None,
                   cancel=None) -> tuple[Verdict, Any]:
    """Run a built program once over `trace` and compare it with the
    sequential NF (in its commit order for locks and tm); the verdict says
    which paths each run reached.  Returns (verdict, the run's final stats)."""
    source = program.nf_copy
    defines = program.defines if defines is None else defines
    replies = reply_fields(analysis) if program.strategy not in ("locks", "tm") else {}
    sent, readdressed = trace, {}
    if replies:
        reference = reference_in_order(source, trace, None, defines=defines, calls=True)
    for attempt in range(3 if replies else 1):  # until the values the replies name are the run's own
        parallel, ran = parallel_results(program, sent, cancel=cancel)
        if not replies:
            break
        ordered = in_trace_order(parallel, sent)
        again, changed = readdress(trace, replies, value_bindings(reference, ordered, analysis, trace, sent),
                                   {r.index: r.worker for r in ordered if r.output is not None})
        if again == sent or attempt == 2:  # `sent` and `readdressed` stay those of the last run
            break
        sent, readdressed = again, changed
    order = serial_order(parallel, trace) if program.strategy in ("locks", "tm") else None
    if order is not None or not replies:
        reference = reference_in_order(source, trace, order, defines=defines, calls=True)
    verdict = compare(reference, parallel, analysis, trace, sent, readdressed)
    reached = coverage(analysis, observations(trace, reference))
    first = verdict.first_difference
    if first is not None and (why := _full_table(analysis, program, reached.taken.get(first["index"], []))):
        first = {**first, "why": why}
    elif first is not None and (late := time_goes_back(trace, order or list(range(len(trace))),
                                                       first["index"])) is not None:
        first = {**first, "why": (f"packet {late} is stamped before a packet the sequential NF ran earlier "
                                  "(the trace's time goes back there): a table the plan shards expires by "
                                  "the clock of its core's packets, the NF's one table by all packets', so "
                                  "they can expire differently")}
    verdict = replace(verdict, reference_coverage=reached, first_difference=first,
                      parallel_coverage=coverage(analysis, observations(sent, in_trace_order(parallel, sent))))
    return verdict, ran.final


def time_goes_back(trace: list[TracePacket], order: list[int], until: int) -> int | None:
    """The last packet (trace index) committed, in `order`, after one with a
    later timestamp, up to packet `until` (the nearest likely cause of a
    difference there); None when time never goes back."""
    latest, found = None, None
    for index in order:
        stamp = trace[index].time_ns
        if latest is not None and stamp < latest:
            found = index
        latest = stamp if latest is None else max(latest, stamp)
        if index == until:
            break
    return found


def sharded_objects(plan: Mapping[str, Any]) -> set[str]:
    """The objects a plan (JSON) shards."""
    return {o["name"] for o in plan.get("objects", []) if o.get("decision") == "shard"}


def full_sharded_tables(analysis: Analysis, plan: Mapping[str, Any]) -> dict[int, str]:
    """Paths that need a table the plan shards to be full: path id -> the
    table (path traffic fills those only on one core: PER_CORE_TABLES)."""
    sharded = sharded_objects(plan)
    return {path.id: call.object for path in analysis.paths for call in reversed(path.calls)
            if call.function == "dchain_allocate_new_index" and call.outcome == 0 and call.object in sharded}


def _full_table(analysis: Analysis, program, path_ids: list[int]) -> str:
    """Why a packet differs when the sequential NF found a sharded table full."""
    full = full_sharded_tables(analysis, json.loads((program.directory / "plan.json").read_text()))
    for path_id in path_ids:
        if path_id in full:
            return (f"the sequential NF found {full[path_id]} full; {PER_CORE_TABLES} (a difference "
                    "sharding makes when a table fills)")
    return ""


@dataclass
class Traffic:
    """One trace verification runs: what it is called, its packets, what
    generating it could not do, and (path traffic) the paths the sequential
    NF takes on it in trace order (a lock program's verdict counts those
    of the cores' commit order)."""

    label: str
    packets: list[TracePacket]
    notes: list[str] = field(default_factory=list)
    coverage: Coverage | None = None


def make_traffic_for(kind: str, *, nf, analysis: Analysis, plan: dict[str, Any], exploration=None,
                     defines=None, flows: int = 200, packets: int = 5000, seed: int = 1,
                     path_seconds: float = 60.0) -> Traffic:
    """The trace of one traffic kind: "paths" (driven down every explored
    path it can, codegen/path_traffic.py, then, once every entry expired,
    `packets` packets of the sessions profile), a profile of
    codegen/traffic.py (both stamped in bursts: in_bursts), or a
    pcap/pcapng file (a path, as it is).  Tables the plan
    shards are filled by path traffic last, on one core (each core has its
    own); not at all where the plan divides their capacity among cores."""
    from codegen.path_traffic import path_traffic
    from codegen.rss_queue import queue_function
    from codegen.trace import read_trace
    from codegen.traffic import PROFILES
    from codegen.traffic import generate as make_traffic

    if kind == "paths":
        divided = {o["name"]: o["per_core_capacity"] for o in plan.get("objects", [])
                   if o.get("decision") == "shard" and o.get("per_core_capacity", 0) not in (0, o.get("capacity"))}
        generated = path_traffic(nf, defines=defines, seed=seed,
                                 paths=exploration.paths if exploration else None,
                                 analysis=analysis if exploration else None,
                                 no_fill={name: f"each core's instance holds {size} entries, so it fills at "
                                          "another moment than the sequential NF's one table"
                                          for name, size in divided.items()},
                                 per_core=sharded_objects(plan) - set(divided),
                                 queue_of=queue_function(plan, analysis.devices),
                                 seconds=path_seconds)
        trace = generated.packets
        if packets:
            trace = trace + _after(in_bursts(make_traffic("sessions", flows, packets, seed=seed)), trace,
                                   generated.quiet_ns)
        return Traffic("paths", trace, generated.notes, generated.coverage)
    if kind in PROFILES:
        return Traffic(kind, in_bursts(make_traffic(kind, flows, packets, seed=seed, devices=analysis.devices)))
    return Traffic(Path(kind).name, read_trace(Path(kind)))


@dataclass
class Prepared:
    """A program ready to verify: its plan, the analysis of its NF and the
    exploration behind it (for path traffic)."""

    program: Any  # GeneratedProgram
    plan: dict[str, Any]
    analysis: Analysis
    exploration: Any = None


def prepare(nf: str, *, cores: int = 2, strategy: str = "auto", lock: str = "maestro", nic: str = DEFAULT_NIC,
            defines=None, out_dir: Path | None = None, analysis: Analysis | None = None,
            explore_paths: bool = True, log=None, cancel=None) -> Prepared:
    """Analyze (explore), plan, generate and build `nf` (codegen/pipeline.py).
    strategy: auto (the plan's), sn, locks or tm.  Without explore_paths, a
    given analysis is used (no path traffic can be made then).  log: a
    function given each make line; cancel: the pipeline's cancel token."""
    import tempfile

    from analyses.nf_source import resolve_nf
    from codegen.safe_text import check_nf_name

    check_nf_name(resolve_nf(nf).name)  # refused before a long analysis
    pipeline = Pipeline.logging(log, cancel)
    exploration = None
    if explore_paths:
        analysis, exploration = pipeline.analyze(nf, defines=defines, explore_paths=True)
    elif analysis is None:
        analysis = pipeline.analyze(nf, defines=defines)
    planner_strategy = {"auto": "auto", "sn": "shared-nothing", "locks": "locks",
                        "tm": "tm"}[strategy]
    plan = pipeline.plan(analysis, cores=cores, nic=nic, strategy=planner_strategy).to_json()
    out_dir = out_dir or Path(tempfile.mkdtemp(prefix=f"maestro-verify-{Path(nf).stem}-"))
    program = pipeline.generate(nf, plan, analysis, out_dir, strategy=None if strategy == "auto" else strategy,
                                lock=lock, defines=defines)
    pipeline.build(program)
    return Prepared(program, plan, analysis, exploration)


def prepare_built(directory: Path, *, log=None, cancel=None) -> Prepared:
    """The program generated in `directory` as it is (its own plan, NF copy
    and -D values; built first when its executable is missing or was not
    built from the files now there, see codegen.program.check_built).  The NF
    copy is explored again for the paths and their coverage."""
    from codegen.generator import GeneratedProgram
    from codegen.program import RunError, check_built

    pipeline = Pipeline.logging(log, cancel)
    program = GeneratedProgram.load(directory)
    try:
        plan = json.loads((program.directory / "plan.json").read_text())
    except (OSError, ValueError) as exc:
        raise MaestroError(f"{program.directory / 'plan.json'}: cannot read the program's plan ({exc})") from None
    try:
        check_built(program)
    except RunError:
        pipeline.build(program)
    analysis, exploration = pipeline.analyze(program.nf_copy, defines=program.defines, explore_paths=True)
    return Prepared(program, plan, analysis, exploration)


def verify_traffics(prepared: Prepared, traffics: Sequence[str], *, flows: int = 200, packets: int = 5000,
                    seed: int = 1, path_seconds: float = 60.0,
                    cancel=None) -> list[tuple[Traffic, Verdict, Any]]:
    """Verify a prepared program on each of `traffics` (make_traffic_for):
    per trace, the traffic, its verdict and the run's final stats."""
    program = prepared.program
    verdicts = []
    for kind in traffics:
        sent = make_traffic_for(kind, nf=program.nf_copy, analysis=prepared.analysis, plan=prepared.plan,
                                exploration=prepared.exploration, defines=program.defines, flows=flows,
                                packets=packets, seed=seed, path_seconds=path_seconds)
        verdict, final = verify_program(program, prepared.analysis, sent.packets, cancel=cancel)
        verdicts.append((sent, verdict, final))
    return verdicts


def combined_coverage(results: Sequence[tuple[Traffic, Verdict, Any]]) -> Coverage | None:
    """What the sequential runs of several traces reached together."""
    together = None
    for _, verdict, _ in results:
        if verdict.reference_coverage is not None:
            together = verdict.reference_coverage if together is None else \
                together.union(verdict.reference_coverage)
    return together


def verification_json(prepared: Prepared, results: Sequence[tuple[Traffic, Verdict, Any]]) -> dict[str, Any]:
    """One document for a verification on several traces: the program and
    its plan digest, each trace's verdict, and the coverage of them all."""
    program, together = prepared.program, combined_coverage(results)
    return {"equivalent": all(verdict.equivalent for _, verdict, _ in results),
            "program": str(program.directory), "strategy": program.strategy,
            "plan_strategy": prepared.plan.get("strategy"), "plan_digest": program.digest,
            "build_digest": program_digest(program),
            "complete": prepared.analysis.stats.complete,
            "coverage": together.to_json() if together else None,
            "traces": [{"traffic": sent.label, "packets": len(sent.packets), "notes": sent.notes[:50],
                        **verdict.to_json()} for sent, verdict, _ in results]}


def verify_nf(nf: str, *, cores: int = 2, strategy: str = "auto", lock: str = "maestro",
              traffic: str = "paths", flows: int = 200, packets: int = 5000, seed: int = 1,
              nic: str = DEFAULT_NIC, analysis: Analysis | None = None, out_dir: Path | None = None,
              log=None, cancel=None, defines=None,
              path_seconds: float = 60.0) -> tuple[Verdict, dict[str, Any]]:
    """prepare `nf` and verify it on one traffic (make_traffic_for).
    Returns the verdict and what was run (program folder, plan strategy,
    final stats, traffic notes).  `cancel` (a threading.Event) stops the
    build or the run: MaestroError."""
    prepared = prepare(nf, cores=cores, strategy=strategy, lock=lock, nic=nic, defines=defines,
                       out_dir=out_dir, analysis=analysis, explore_paths=traffic == "paths",
                       log=log, cancel=cancel)
    [(sent, verdict, final)] = verify_traffics(prepared, [traffic], flows=flows, packets=packets, seed=seed,
                                               path_seconds=path_seconds, cancel=cancel)
    return verdict, {"program": str(prepared.program.directory), "strategy": prepared.program.strategy,
                     "plan_strategy": prepared.plan["strategy"], "final": final,
                     "packets": len(sent.packets), "complete": prepared.analysis.stats.complete,
                     "traffic_notes": sent.notes}


#: Packets of a generated profile stamped alike, as a NIC's RX burst is.
VERIFY_BURST = 8


def in_bursts(packets: list[TracePacket], size: int = VERIFY_BURST) -> list[TracePacket]:
    """`packets` with each run of `size` stamped as its first.  The program
    runs in trace time (simnic.h sim_paced): only packets stamped alike run
    on several cores at once, so a profile's evenly spaced packets would
    never meet on two cores."""
    return [TracePacket(p.device, packets[i - i % size].time_ns, p.data) for i, p in enumerate(packets)]


def _after(extra: list[TracePacket], trace: list[TracePacket], pause: int = 1_000) -> list[TracePacket]:
    """`extra` shifted to start `pause` ns after the last packet of `trace`."""
    start = max((p.time_ns for p in trace), default=0) + pause
    return [TracePacket(p.device, p.time_ns + start, p.data) for p in extra]
