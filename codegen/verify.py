"""Checking that the parallel program behaves like the sequential NF.

`compare` matches the reference runner's per-packet results (output and
bytes after processing) with the parallel program's, packet by packet.
Differences are either allowed, each kind with its justification, or
reported with the first differing packet:

- state-chosen values (any strategy): a rewritten field whose value the NF
  takes from its state (the analysis's packet writes name a dchain index or
  map value as the source, e.g. NAT's external port), plus the checksums
  that cover it.  Each core allocates from its own index space, so values
  differ; they are allowed when the output device is the same and the
  values correspond one-to-one between the two runs (per core).

Shared-nothing programs are compared with the reference run in trace order.
Programs with locks or transactions interleave packets of different cores
in an order the trace does not fix; each packet runs atomically, so the run
must equal the sequential NF run in the *serial order* the cores committed
packets in (the program records it).  The reference is run in that order:
a difference there is a real one (a broken lock, a lost update).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from analyses.errors import MaestroError
from analyses.fields import byte_field
from analyses.model import Analysis
from codegen.reference import NF_DROP, NF_FLOOD, PacketResult

#: Justifications of the allowed differences, by kind.
ALLOWED = {
    "state-chosen values": "fields the NF fills from its state (an allocated index or a "
    "stored value) differ because each core allocates from its own index space; the output "
    "is the same and the values map one-to-one between the runs",
}
#: Why a locks/tm run is compared with the reference in its commit order.
SERIAL_ORDER = ("packets of different cores interleave in an order the trace does not fix; "
                "each ran atomically, so the run is compared with the sequential NF run in the "
                "serial order the cores committed them in")
_CHECKSUMS = {"ipv4.csum", "tcp.csum", "udp.csum"}


@dataclass(frozen=True)
class ParallelResult:
    """One line of the parallel program's results file."""

    index: int
    device: int
    output: int | None  # None: the packet was lost
    data: bytes
    worker: int
    order: int


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

    @property
    def equivalent(self) -> bool:
        return self.disallowed == 0 and self.lost == 0

    def summary(self) -> str:
        """One line for humans."""
        if not self.equivalent:
            first = self.first_difference or {}
            return (f"DIFFERENT: {self.disallowed} packet(s) differ, {self.lost} lost; first at "
                    f"packet {first.get('index')}: {first.get('what')}")
        extra = ", ".join(f"{n} {kind}" for kind, n in self.allowed.items() if n)
        return (f"equivalent: {self.identical}/{self.packets} packets identical"
                + (f", allowed differences: {extra}" if extra else ""))

    def to_json(self) -> dict[str, Any]:
        return {"equivalent": self.equivalent, "packets": self.packets,
                "identical": self.identical, "allowed": self.allowed, "lost": self.lost,
                "disallowed": self.disallowed, "first_difference": self.first_difference,
                "justifications": self.justifications, "summary": self.summary()}


def read_parallel_results(path: Path) -> list[ParallelResult]:
    """The results file the program writes with --results --bytes."""
    results = []
    for line in Path(path).read_text().splitlines():
        if line.startswith("#"):
            continue
        index, device, output, _length, data, worker, order = line.split()
        value = {"drop": NF_DROP, "flood": NF_FLOOD, "lost": None}.get(output)
        results.append(ParallelResult(int(index), int(device),
                                      value if output in ("drop", "flood", "lost") else int(output),
                                      bytes.fromhex(data), int(worker), int(order)))
    return results


def state_chosen_fields(analysis: Analysis) -> set[str]:
    """Packet fields the NF writes from state-derived values (and checksums)."""
    fields = set()
    for write in analysis.packet_writes:
        for name, source in write.fields.items():
            if any(marker in source for marker in (".index", ".value", ".chosen")):
                fields.add(name)
    return fields | _CHECKSUMS if fields else set()


def _differing_fields(a: bytes, b: bytes) -> set[str]:
    return {byte_field(f"pkt_{i}_")[0] for i in range(min(len(a), len(b))) if a[i] != b[i]}


def _field_value(data: bytes, name: str) -> bytes:
    offsets = [i for i in range(len(data)) if byte_field(f"pkt_{i}_")[0] == name]
    return bytes(data[i] for i in offsets)


def serial_order(parallel: list[ParallelResult]) -> list[int]:
    """Trace indexes in the order the run committed them (lost ones last)."""
    return [p.index for p in sorted(parallel, key=lambda p: (p.output is None, p.order, p.index))]


def reference_in_order(nf, trace: list, order: list[int] | None) -> list[PacketResult]:
    """The reference runner's results, in trace order, for the trace
    replayed in `order` (a permutation of its indexes; None: trace order)."""
    from codegen.reference import run_reference

    order = order if order is not None else list(range(len(trace)))
    replayed = run_reference(nf, [trace[i] for i in order]).results
    results: list = [None] * len(trace)
    for position, index in enumerate(order):
        results[index] = replayed[position]
    return results


def compare(reference: list[PacketResult], parallel: list[ParallelResult], analysis: Analysis) -> Verdict:
    """Compare per packet (both lists in trace order); see the module doc."""
    chosen = state_chosen_fields(analysis)
    mapping: dict[tuple[str, bytes], bytes] = {}
    inverse: dict[tuple[str, bytes], bytes] = {}
    allowed = {kind: 0 for kind in ALLOWED}
    identical = lost = disallowed = 0
    first = None
    for ref, par in zip(reference, parallel):
        if par.output is None:
            lost += 1
            first = first or {"index": ref.index, "what": "lost by the parallel program"}
            continue
        if ref.output == par.output and ref.data == par.data:
            identical += 1
            continue
        differing = _differing_fields(ref.data or b"", par.data)
        if ref.output == par.output and differing and differing <= chosen and \
                _consistent(ref.data, par, differing - _CHECKSUMS, mapping, inverse):
            allowed["state-chosen values"] += 1
            continue
        disallowed += 1
        if first is None:
            first = {"index": ref.index, "device": ref.device,
                     "what": f"sequential output {_name(ref.output)}, parallel {_name(par.output)}"
                     + (f"; fields differ: {', '.join(sorted(differing))}" if differing else ""),
                     "sequential": (ref.data or b"").hex(), "parallel": par.data.hex()}
    if len(parallel) != len(reference):
        disallowed += abs(len(parallel) - len(reference))
    return Verdict(len(reference), identical, allowed, lost, first, disallowed,
                   {k: v for k, v in ALLOWED.items() if allowed[k]})


def _consistent(seq: bytes, par: ParallelResult, fields: set[str], mapping: dict,
                inverse: dict) -> bool:
    """Whether the values of `fields` correspond one-to-one between the runs:
    a sequential value always becomes the same parallel value, and on one
    core a parallel value stands for one sequential value (cores allocate
    from their own index spaces, so two cores may reuse a value)."""
    for name in fields:
        a, b = _field_value(seq, name), _field_value(par.data, name)
        if mapping.setdefault((name, a), b) != b or \
                inverse.setdefault((name, par.worker, b), a) != a:
            return False
    return True


def _name(output: int | None) -> str:
    return {NF_DROP: "drop", NF_FLOOD: "flood", None: "lost"}.get(output, str(output))


def verify_nf(
    nf: str,
    *,
    cores: int = 2,
    strategy: str = "auto",
    lock: str = "maestro",
    traffic: str = "sessions",
    flows: int = 200,
    packets: int = 5000,
    seed: int = 1,
    nic: str = "82599",
    analysis: Analysis | None = None,
    out_dir: Path | None = None,
    log=None,
    cancel=None,
) -> tuple[Verdict, dict[str, Any]]:
    """Analyze, plan, generate, build and run `nf` in parallel and compare it
    with the sequential reference on one generated trace.

    strategy: auto (the plan's), sn, locks or tm.  Returns the verdict and
    what was run (program folder, plan strategy, final stats).  `cancel` (a
    threading.Event) stops the build or the run: MaestroError."""
    import tempfile

    from analyses.planner import plan as make_plan
    from analyses.report import analyze
    from codegen.generator import generate
    from codegen.program import build, run
    from codegen.traffic import generate as make_traffic

    analysis = analysis or analyze(nf)
    planner_strategy = {"auto": "auto", "sn": "shared-nothing", "locks": "locks",
                        "tm": "tm"}[strategy]
    plan = make_plan(analysis, cores=cores, nic=nic, strategy=planner_strategy).to_json()
    out_dir = out_dir or Path(tempfile.mkdtemp(prefix=f"maestro-verify-{Path(nf).stem}-"))
    program = generate(nf, plan, analysis, out_dir, strategy=None if strategy == "auto" else strategy,
                       lock=lock)
    build(program, log=log, cancel=cancel)
    trace = make_traffic(traffic, flows, packets, seed=seed)
    results = out_dir / "results.txt"
    ran = run(program, packets=trace, once=True, results=results, result_bytes=True,
              cancel=cancel)
    if cancel is not None and cancel.is_set():
        raise MaestroError(f"verification of {nf} was cancelled")
    parallel = read_parallel_results(results)
    order = serial_order(parallel) if program.strategy in ("locks", "tm") else None
    verdict = compare(reference_in_order(nf, trace, order), parallel, analysis)
    return verdict, {"program": str(program.directory), "strategy": program.strategy,
                     "plan_strategy": plan["strategy"], "final": ran.final}
