"""The proof of RSS keys with z3 (analyses/rss.py): no two packets a
requirement relates reach different RETA entries (unsat), or two that do
(a counterexample, in words by `describe_packet`)."""
from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass

from analyses.fields import FRAME_FIELDS, L4_FIELDS
from analyses.nic import HASH_TYPES, IPV4_L4, NicProfile
from analyses.rss_scoring import LAN, WAN
from analyses.rss_system import Requirement, reta_index

# --- proof --------------------------------------------------------------------

#: Widths in bits of the fields a requirement may mention.
FIELD_BITS = {name: 8 * length for name, (_, length) in (FRAME_FIELDS | L4_FIELDS).items()}


@dataclass(frozen=True)
class ProofResult:
    """z3's verdict on "two related packets reach different RETA entries":
    unsat is the proof; sat comes with a counterexample."""

    result: str
    seconds: float
    checks: int
    counterexample: dict | None = None


def prove(requirements: list[Requirement], keys: dict[int, bytes], nic: NicProfile,
          reta: list[int] | None = None, timeout_ms: int = 20000) -> ProofResult:
    """Check every requirement, for every hash-type combination: is there a
    pair of related packets whose RETA indexes differ?  One z3 query per
    case; unsat for all of them is the proof, the first sat model the
    counterexample."""
    start = time.perf_counter()
    checks = 0
    verdict = "unsat"
    for req in requirements:
        for ta, tb in req.type_pairs():
            checks += 1
            outcome, example = _check(req, ta, tb, keys, nic, reta, timeout_ms)
            if outcome == "sat":
                return ProofResult("sat", time.perf_counter() - start, checks, example)
            if outcome != "unsat":
                verdict = outcome
    return ProofResult(verdict, time.perf_counter() - start, checks, None)


def find_counterexample(requirements: list[Requirement], keys: dict[int, bytes], nic: NicProfile,
                        reta: list[int] | None = None) -> dict | None:
    """Two packets some requirement relates that RSS sends to different
    cores (different RETA entries when no RETA is given) under `keys`;
    requirements in order, TCP/UDP pairs first.  Addresses are taken from
    the usual networks when possible (LAN 10.0.0.0/8 behind device 0, the
    WAN 32.0.0.0/3 behind the others) so the example reads like traffic.
    None when every requirement holds."""
    for req in requirements:
        for ta, tb in req.type_pairs():
            for plausible in (True, False):
                outcome, example = _check(req, ta, tb, keys, nic, reta, 10000, plausible)
                if outcome == "sat":
                    return example
    return None


def _check(req: Requirement, ta: str, tb: str, keys: dict[int, bytes], nic: NicProfile,
           reta: list[int] | None, timeout_ms: int, example: bool = False) -> tuple[str, dict | None]:
    """One case.  example=True asks for packets on different cores with
    plausible addresses instead of merely different RETA entries.  Each
    check has its own z3 context: the planner may run in a worker thread
    while angr's claripy uses z3's global context in another."""
    import z3

    ctx = z3.Context()
    enc = _encode(z3, ctx, req, ta, tb, keys, nic.reta_bits, reta if example else None)
    if example:
        enc["violation"] = z3.And(enc["violation"], *_plausible(z3, enc, req))
    # Index bits are parities; eliminating the equal bits first lets the
    # simplifier cancel them instead of leaving XOR chains to the SAT core.
    solver = z3.Then("simplify", "solve-eqs", "simplify", "smt", ctx=ctx).solver()
    solver.set("timeout", timeout_ms)
    solver.add(enc["violation"])
    outcome = solver.check()
    if outcome == z3.sat:
        return "sat", _counterexample(solver.model(), enc, req, ta, tb, keys, nic, reta)
    return str(outcome), None


def _encode(z3, ctx, req: Requirement, ta: str, tb: str, keys: dict[int, bytes], reta_bits: int,
            reta: list[int] | None = None) -> dict:
    """z3 terms of one case: packets p and q as one 1-bit vector per field bit,
    the requirement's bit equalities, both RETA indexes (straight from the
    Toeplitz definition) and the violation "equal fields, different index"."""
    A, B = HASH_TYPES[ta], HASH_TYPES[tb]
    sides = {}
    for side, hash_type, names in (("p", A, [e.a for e in req.equal]), ("q", B, [e.b for e in req.equal])):
        fields = [f for f in dict.fromkeys(hash_type.field_names() + names) if f in FIELD_BITS]
        sides[side] = {f: [z3.BitVec(f"{side}_{f}_{k}", 1, ctx) for k in range(FIELD_BITS[f])] for f in fields}
    equal = [sides["p"][e.a][e.a_lo + k] == sides["q"][e.b][e.b_lo + k]
             for e in req.equal if e.a in sides["p"] and e.b in sides["q"] for k in range(e.width)]
    index_p = _z3_index(z3, ctx, [b for f in A.field_names() for b in sides["p"][f]], keys[req.a_device], reta_bits)
    index_q = _z3_index(z3, ctx, [b for f in B.field_names() for b in sides["q"][f]], keys[req.b_device], reta_bits)
    differ = z3.Or([x != y for x, y in zip(index_p, index_q)])
    if reta is not None:  # different cores, not just different entries
        table = [(e, core) for e, core in enumerate(reta)]
        core_p, core_q = (_z3_lookup(z3, ctx, z3.Concat(*idx), table) for idx in (index_p, index_q))
        differ = core_p != core_q
    return {"p": sides["p"], "q": sides["q"], "violation": z3.And(*equal, differ, ctx)}


def _z3_lookup(z3, ctx, index, table: list[tuple[int, int]]):
    """table[index] as a z3 term (an if-then-else chain over the entries)."""
    width = max(c for _, c in table).bit_length() or 1
    term = z3.BitVecVal(table[-1][1], width, ctx)
    for entry, core in reversed(table[:-1]):
        term = z3.If(index == entry, z3.BitVecVal(core, width, ctx), term, ctx)
    return term


def _plausible(z3, enc: dict, req: Requirement) -> list:
    """Addresses from the LAN (device 0's sources, the others'
    destinations: 10.0.0.0/8) and the WAN (32.0.0.0/3)."""
    out = []
    for side, device in (("p", req.a_device), ("q", req.b_device)):
        fields = enc[side]
        for name, lan in (("ipv4.src", device == 0), ("ipv4.dst", device != 0)):
            if name not in fields:
                continue
            net = LAN if lan else WAN
            prefix = int(net.network_address) >> (32 - net.prefixlen)
            for k in range(net.prefixlen):
                out.append(fields[name][k] == (prefix >> (net.prefixlen - 1 - k)) & 1)
    return out


def _z3_index(z3, ctx, bits: list, key: bytes, reta_bits: int) -> list:
    """The RETA index of input `bits` (1-bit vectors, most significant
    first), most significant bit first: index bit r is hash bit j = 31 - r,
    the XOR of the input bits i whose key bit k[i + j] is set.  (bvxor is
    flattened by z3's rewriter, so equal bits cancel once substituted.)"""
    key_bits = 8 * len(key)
    key_int = int.from_bytes(key, "big")
    out = []
    for r in reversed(range(reta_bits)):
        j = 31 - r
        terms = [x for i, x in enumerate(bits) if (key_int >> (key_bits - 1 - (i + j))) & 1]
        bit = z3.BitVecVal(0, 1, ctx)
        for t in terms:
            bit = bit ^ t
        out.append(bit)
    return out


def _counterexample(model, enc, req: Requirement, ta: str, tb: str, keys: dict[int, bytes],
                    nic: NicProfile, reta: list[int] | None) -> dict:
    packets = []
    for side, device, hash_type in (("p", req.a_device, ta), ("q", req.b_device, tb)):
        values = {f: int("".join(str(bit_value(model, b)) for b in v), 2) for f, v in enc[side].items()}
        data = b"".join(values[f].to_bytes(w // 8, "big") for f, w in HASH_TYPES[hash_type].fields)
        index = reta_index(keys[device], data, nic.reta_size)  # the reference hash, not z3's
        packets.append({
            "device": device, "hash": hash_type,
            "fields": {f: format_field(f, v) for f, v in values.items()},
            "reta": index, "core": reta[index] if reta else None,
        })
    return {"requirement": req.label, "group": req.group, "packets": packets}


def bit_value(model, term) -> int:
    """The value of a 1-bit term in a z3 model (unconstrained: 0)."""
    return model.eval(term, model_completion=True).as_long()


def format_field(name: str, value: int) -> str | int:
    """A field value the way people write it."""
    if name.startswith("ipv4.") and FIELD_BITS.get(name) == 32:
        return str(ipaddress.IPv4Address(value))
    if name.startswith("eth.") and FIELD_BITS.get(name) == 48:
        return ":".join(f"{b:02x}" for b in value.to_bytes(6, "big"))
    if name.startswith("l4.") or name == "ipv4.proto":
        return value
    return hex(value)


def describe_packet(packet: dict) -> str:
    """One packet of a counterexample in words."""
    f = packet["fields"]
    text = f"{f.get('ipv4.src', '?')}"
    if packet["hash"] == IPV4_L4.name:
        text += f":{f.get('l4.sport', '?')} -> {f.get('ipv4.dst', '?')}:{f.get('l4.dport', '?')}"
    else:
        text += f" -> {f.get('ipv4.dst', '?')} (not TCP/UDP)"
    extra = [f"{k}={v}" for k, v in f.items() if k not in HASH_TYPES[IPV4_L4.name].field_names()]
    if extra:
        text += " " + " ".join(extra)
    core = f", core {packet['core']}" if packet.get("core") is not None else ""
    return f"{text} on device {packet['device']} (RETA entry {packet['reta']}{core})"
