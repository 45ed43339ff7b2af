"""RSS key synthesis: related packets must reach the same RETA entry.

The planner states what must share a core as `Requirement`s: packets p on
device a and q on device b whose fields satisfy some bit equalities (`BitEq`)
may touch the same state entry, so their RETA indexes must agree.  Because
Toeplitz is linear in the key for a fixed input and linear in the input for a
fixed key, "every such pair agrees" is a set of linear equations over GF(2)
in the key bits (design/RSS.md):

1. `requirement_rows`: the pairs (p, q) that satisfy the equalities form a
   subspace V of the concatenated inputs (unrelated bits are free); for each
   basis vector (u, v) of V and each constrained hash bit j, the equation
   XOR_{i in u} k_a[i+j] + XOR_{i in v} k_b[i+j] = 0.
2. `synthesize`: solve with analyses.gf2, draw keys uniformly from the
   solution space, score each (with round-robin and a few linear RETAs) on
   three traffic profiles (uniform, Zipf, sources in one /16) and keep the
   best.
3. `prove`: z3 checks that no two related packets get different RETA
   indexes under the chosen keys (unsat); a model is a counterexample.

Only the RETA index bits are constrained by default (`index_bits` = the low
log2(RETA size) bits); `index_bits=32` gives Maestro's all-bits method.
Key variables: for IPv4 only key bits 0..127 of a device matter (96 input
bits + 31), so device d's bit t is variable d * KEY_VARS + t; the remaining
key bits are drawn at random.
"""
from __future__ import annotations

import ipaddress
import random
import time
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Iterable

import numpy as np

from analyses import gf2
from analyses.fields import FRAME_FIELDS, L4_FIELDS
from analyses.nic import HASH_TYPES, IPV4, IPV4_L4, NicProfile
from analyses.toeplitz import byte_tables, hash_rows, toeplitz_hash, window

#: Key variables per device: the longest input (96 bits) plus 32.
KEY_VARS = IPV4_L4.bits + 32
#: Traffic profiles keys are scored on.
PROFILES = ("uniform", "zipf", "src16")
#: Both hash types / only the TCP/UDP one.
ALL_TYPES = (IPV4_L4.name, IPV4.name)
L4_ONLY = (IPV4_L4.name,)


@dataclass(frozen=True)
class BitEq:
    """Bits [a_lo, a_lo + width) of field `a` of packet p equal bits
    [b_lo, b_lo + width) of field `b` of packet q (bit 0 = most significant).
    Fields the NIC does not hash are kept for the z3 model and explanations;
    the linear system ignores them (which only adds pairs: conservative)."""

    a: str
    a_lo: int
    b: str
    b_lo: int
    width: int


@dataclass(frozen=True)
class Requirement:
    """Packets p on `a_device` and q on `b_device` satisfying `equal` may
    touch the same entry, so they must reach the same RETA entry.

    `a_types`/`b_types`: hash types p/q can arrive with (both when the
    entry is keyed on addresses only, else only TCP/UDP).  `label` says
    where it comes from (for explanations), `group` which state it protects.
    """

    a_device: int
    b_device: int
    equal: tuple[BitEq, ...]
    a_types: tuple[str, ...] = ALL_TYPES
    b_types: tuple[str, ...] = ALL_TYPES
    label: str = ""
    group: str = ""

    def type_pairs(self) -> list[tuple[str, str]]:
        """Every (p's hash type, q's hash type) combination, TCP/UDP first."""
        return [(ta, tb) for ta in self.a_types for tb in self.b_types]

    def devices(self) -> set[int]:
        """The devices the requirement constrains."""
        return {self.a_device, self.b_device}


def index_positions(index_bits: int) -> range:
    """Hash bit positions (0 = most significant) that form the index: the
    low `index_bits` bits of the 32-bit hash."""
    return range(32 - index_bits, 32)


def requirement_rows(req: Requirement, index_bits: int) -> set[int]:
    """The linear equations (ints over key variables) of one requirement."""
    rows: set[int] = set()
    for ta, tb in req.type_pairs():
        rows |= _pair_rows(req.a_device, req.b_device, req.equal, ta, tb, index_bits)
    return rows


@lru_cache(maxsize=4096)
def _pair_rows(a_dev: int, b_dev: int, equal: tuple[BitEq, ...], ta: str, tb: str,
               index_bits: int) -> frozenset[int]:
    A, B = HASH_TYPES[ta], HASH_TYPES[tb]
    na, nb = A.bits, B.bits
    # V = pairs (p, q) with the hashed equal bits equal: p is bits 0..na-1
    # of a vector, q bits na..na+nb-1.  Bits of unhashed fields are dropped.
    eqs = []
    for e in equal:
        oa, ob = A.offset(e.a), B.offset(e.b)
        if oa is None or ob is None:
            continue
        for k in range(e.width):
            eqs.append((1 << (oa + e.a_lo + k)) | (1 << (na + ob + e.b_lo + k)))
    basis = gf2.nullspace(eqs, na + nb)
    rows = set()
    a_base, b_base = a_dev * KEY_VARS, b_dev * KEY_VARS
    for v in basis:
        # Input bit i of p XORs key bit k_a[i+j] into hash bit j, so the
        # vector's equation for j is its key-variable image shifted by j.
        image = ((v & ((1 << na) - 1)) << a_base) ^ ((v >> na) << b_base)
        if image:
            rows.update(image << j for j in index_positions(index_bits))
    return frozenset(rows)


def build_system(requirements: Iterable[Requirement], devices: int, index_bits: int) -> tuple[gf2.System, int]:
    """The system of all requirements and the number of distinct equations."""
    rows: set[int] = set()
    for req in requirements:
        rows |= requirement_rows(req, index_bits)
    system = gf2.System(devices * KEY_VARS)
    system.add_all(sorted(rows))
    return system, len(rows)


def live_fields(solved: gf2.Solved, device: int, index_bits: int) -> list[str]:
    """Hashed fields the RETA index of `device` may depend on in some
    solution (empty: the index is the same for every packet)."""
    zero = solved.forced_zero()
    out = []
    for name, width in IPV4_L4.fields:
        offset = IPV4_L4.offset(name)
        for i in range(offset, offset + width):
            if any(not (zero >> (device * KEY_VARS + i + j)) & 1 for j in index_positions(index_bits)):
                out.append(name)
                break
    return out


# --- keys ---------------------------------------------------------------------


def key_from_solution(solution: int, device: int, key_bytes: int, rng: random.Random) -> bytes:
    """Device `device`'s key: its KEY_VARS constrained bits from `solution`,
    the rest random."""
    bits = (solution >> (device * KEY_VARS)) & ((1 << KEY_VARS) - 1)
    key_bits = 8 * key_bytes
    # variable t is key bit t, counted from the most significant bit
    value = int(format(bits, f"0{KEY_VARS}b")[::-1], 2) << (key_bits - KEY_VARS)
    value |= rng.getrandbits(key_bits - KEY_VARS)
    return value.to_bytes(key_bytes, "big")


def index_windows(key: bytes, index_bits: int, hash_type=IPV4_L4) -> list[int]:
    """Per input bit, what it XORs into the RETA index."""
    mask = (1 << index_bits) - 1
    return [window(key, 8 * len(key), i) & mask for i in range(hash_type.bits)]


def reta_index(key: bytes, data: bytes, reta_size: int) -> int:
    """The RETA index of a Toeplitz input under `key`."""
    return toeplitz_hash(key, data) & (reta_size - 1)


def depends_on(key: bytes, index_bits: int, hash_type=IPV4_L4) -> list[str]:
    """The input fields (or the bits of them) the RETA index depends on:
    "ipv4.src", "ipv4.src/9" (a prefix) or "ipv4.src[5 of 32 bits]"."""
    windows = index_windows(key, index_bits, hash_type)
    out = []
    for name, width in hash_type.fields:
        offset = hash_type.offset(name)
        used = [k for k in range(width) if windows[offset + k]]
        if not used:
            continue
        if len(used) == width:
            out.append(name)
        elif used == list(range(len(used))):
            out.append(f"{name}/{len(used)}")
        else:
            out.append(f"{name}[{len(used)} of {width} bits]")
    return out


# --- traffic for scoring ------------------------------------------------------

_LAN = ipaddress.IPv4Network("10.0.0.0/8")
_WAN = ipaddress.IPv4Network("32.0.0.0/3")
#: The single source /16 of the src16 profile, per side.
SRC16 = {"lan": ipaddress.IPv4Network("10.1.0.0/16"), "wan": ipaddress.IPv4Network("45.12.0.0/16")}
_SERVICE = np.array([80, 443, 22, 25, 8080, 3306, 53, 123, 5060, 4789, 161])


@dataclass(frozen=True)
class DeviceTraffic:
    """Flows arriving on one device: Toeplitz inputs (flows x 12 bytes) and
    each flow's share of the packets."""

    data: np.ndarray
    weights: np.ndarray


@lru_cache(maxsize=16)
def score_traffic(devices: int, flows: int, seed: int) -> dict[str, tuple[DeviceTraffic, ...]]:
    """Per profile, per device, `flows` random TCP/UDP flows.

    Device 0 is the LAN: sources in 10.0.0.0/8, destinations in 32.0.0.0/3,
    ephemeral source ports, mostly well-known destination ports; the other
    devices see the WAN side (sources in 32.0.0.0/3, destinations in the LAN,
    well-known source ports).  uniform: every flow the same rate; zipf: the
    same flows, rate 1/rank**1.1; src16: uniform, but every source lies in one
    /16 (10.1.0.0/16 on the LAN, 45.12.0.0/16 on the WAN side).
    """
    rng = np.random.default_rng(seed)
    out: dict[str, list[DeviceTraffic]] = {p: [] for p in PROFILES}
    for device in range(devices):
        lan_side = device == 0
        src_net, dst_net = (_LAN, _WAN) if lan_side else (_WAN, _LAN)
        src16 = SRC16["lan" if lan_side else "wan"]
        src = _addresses(rng, src_net, flows)
        dst = _addresses(rng, dst_net, flows)
        ephemeral = rng.integers(1024, 65536, size=flows)
        service = np.where(rng.random(flows) < 0.7, rng.choice(_SERVICE, size=flows),
                           rng.integers(1, 65536, size=flows))
        sport, dport = (ephemeral, service) if lan_side else (service, ephemeral)
        uniform = _pack(src, dst, sport, dport)
        ones = np.ones(flows)
        out["uniform"].append(DeviceTraffic(uniform, ones))
        ranks = rng.permutation(flows) + 1
        out["zipf"].append(DeviceTraffic(uniform, 1.0 / ranks.astype(np.float64) ** 1.1))
        out["src16"].append(DeviceTraffic(_pack(_addresses(rng, src16, flows), dst, sport, dport), ones))
    return {p: tuple(v) for p, v in out.items()}


def _addresses(rng: np.random.Generator, net: ipaddress.IPv4Network, count: int) -> np.ndarray:
    return int(net.network_address) + rng.integers(1, net.num_addresses - 1, size=count)


def _pack(src, dst, sport, dport) -> np.ndarray:
    # network order: big-endian after stacking (np.stack returns native order)
    words = np.stack([src, dst], axis=1).astype(">u4").view(np.uint8).reshape(-1, 8)
    ports = np.stack([sport, dport], axis=1).astype(">u2").view(np.uint8).reshape(-1, 4)
    data = np.concatenate([words, ports], axis=1)
    data.flags.writeable = False
    return data


@dataclass(frozen=True)
class Score:
    """How one key set and RETA spread one traffic profile over the cores."""

    profile: str
    max_mean: float
    floor: float
    distinct: tuple[int, ...]  # RETA entries reached, per device
    load: tuple[float, ...]  # share of packets per core


def key_indexes(key_sets: list[dict[int, bytes]], traffic: dict[str, tuple[DeviceTraffic, ...]],
                reta_bits: int) -> dict[str, list[np.ndarray]]:
    """RETA index of every flow under every key set: per profile, per
    device, a (key sets, flows) array."""
    devices = len(next(iter(traffic.values())))
    tables = {}
    for device in range(devices):
        windows = np.array([index_windows(ks[device], reta_bits) for ks in key_sets], dtype=np.uint32)
        tables[device] = byte_tables(windows)
    return {profile: [hash_rows(tables[d], flows.data).astype(np.int64) for d, flows in enumerate(per_device)]
            for profile, per_device in traffic.items()}


def score_indexes(indexes: dict[str, list[np.ndarray]], traffic: dict[str, tuple[DeviceTraffic, ...]],
                  reta: list[int], cores: int) -> list[list[Score]]:
    """Per key set, per profile: max/mean core load (each device's flows
    carry the same total; a flow goes to core reta[index]), the floor any
    flow placement has (cores x the heaviest flow's share) and the RETA
    entries reached."""
    reta_arr = np.asarray(reta, dtype=np.int64)
    count = next(iter(indexes.values()))[0].shape[0]
    result: list[list[Score]] = [[] for _ in range(count)]
    for profile, per_device in indexes.items():
        loads = np.zeros((count, cores))
        distinct = np.zeros((count, len(per_device)), dtype=np.int64)
        heaviest = 0.0
        for device, index in enumerate(per_device):
            weights = traffic[profile][device].weights
            weights = weights / (weights.sum() * len(per_device))
            heaviest = max(heaviest, float(weights.max()))
            core = reta_arr[index] + cores * np.arange(count)[:, None]
            loads += np.bincount(core.ravel(), weights=np.broadcast_to(weights, core.shape).ravel(),
                                 minlength=cores * count).reshape(count, cores)
            seen = np.zeros((count, len(reta)), dtype=bool)
            seen[np.arange(count)[:, None], index] = True
            distinct[:, device] = seen.sum(axis=1)
        floor = round(max(1.0, heaviest * cores), 4)
        for k in range(count):
            result[k].append(Score(profile, float(loads[k].max() * cores), floor,
                                   tuple(int(d) for d in distinct[k]),
                                   tuple(round(float(s), 5) for s in loads[k])))
    return result


def score_keys(key_sets: list[dict[int, bytes]], traffic: dict[str, tuple[DeviceTraffic, ...]],
               reta: list[int], cores: int) -> list[list[Score]]:
    """`score_indexes` of key sets (the RETA index is the low log2(len(reta))
    hash bits whatever the keys were synthesized for)."""
    return score_indexes(key_indexes(key_sets, traffic, len(reta).bit_length() - 1), traffic, reta, cores)


def _selection_score(scores: list[Score], reta_size: int) -> float:
    """Lower is better: max/mean on the uniform and /16 profiles, minus a
    bonus for RETA entries reached (keys whose index ignores the bits that
    vary lose it).  Zipf is left out: its imbalance comes from the heaviest
    flows, which no key spreads, and its noise would drown the signal."""
    kept = [s for s in scores if s.profile != "zipf"]
    spread = sum(sum(s.distinct) / (len(s.distinct) * reta_size) for s in kept)
    return sum(s.max_mean for s in kept) - 0.5 * spread


# --- the RETA -----------------------------------------------------------------


def round_robin_reta(reta_size: int, cores: int) -> list[int]:
    """RETA entry e -> core e mod cores."""
    return [e % cores for e in range(reta_size)]


def linear_reta(reta_size: int, rows: list[int]) -> list[int]:
    """RETA entry e -> core whose bit m is parity(rows[m] & e): a linear map
    of the index bits, so every core gets the same number of entries when
    the rows are independent."""
    return [sum(gf2.parity(row & e) << m for m, row in enumerate(rows)) for e in range(reta_size)]


def reta_candidates(reta_size: int, cores: int, count: int, rng: random.Random) -> list[list[int]]:
    """Round robin, and for a power-of-two number of cores `count - 1`
    random linear maps of the index bits onto the core bits.

    Round robin gives the core from the low index bits only, which the
    Toeplitz structure ties to few input bits when the index may depend on a
    narrow field (hhh's ipv4.src/24: only 3 source bits reach the low 4 index
    bits); a linear map that mixes all index bits spreads any such subspace
    evenly, and still gives every core the same number of entries."""
    out = [round_robin_reta(reta_size, cores)]
    bits = reta_size.bit_length() - 1
    core_bits = cores.bit_length() - 1
    if cores < 2 or cores & (cores - 1):
        return out
    while len(out) < count:
        rows = [rng.getrandbits(bits) for _ in range(core_bits)]
        if gf2.rank(rows, bits) == core_bits:
            out.append(linear_reta(reta_size, rows))
    return out


# --- synthesis ----------------------------------------------------------------


@dataclass(frozen=True)
class Synthesis:
    """The chosen keys and RETA, and how they were found."""

    keys: dict[int, bytes]
    reta: list[int]
    index_bits: int
    equations: int
    rank: int
    dimension: int
    samples: int
    seconds: float
    live: dict[int, list[str]] = field(default_factory=dict)
    scores: list[Score] = field(default_factory=list)


def synthesize(requirements: list[Requirement], nic: NicProfile, devices: int, cores: int, *,
               index_bits: int | None = None, samples: int = 24, retas: int = 8, seed: int = 0,
               flows: int = 2048) -> Synthesis:
    """Keys (one per device) under which every requirement holds and a RETA:
    the best of `samples` uniform draws from the solution space times
    `retas` RETA candidates (retas=1: round robin) on the scoring traffic.
    index_bits: hash bits constrained (default: the RETA bits)."""
    start = time.perf_counter()
    bits = nic.reta_bits if index_bits is None else index_bits
    system, equations = build_system(requirements, devices, bits)
    solved = system.solved()
    rng = random.Random(seed)
    candidates = []
    for _ in range(max(1, samples)):
        solution = solved.sample(rng)
        candidates.append({d: key_from_solution(solution, d, nic.key_bytes, rng) for d in range(devices)})
    traffic = score_traffic(devices, flows, seed + 1)
    indexes = key_indexes(candidates, traffic, nic.reta_bits)
    best = (float("inf"), 0, [], [])
    for reta in reta_candidates(nic.reta_size, cores, max(1, retas), rng):
        scored = score_indexes(indexes, traffic, reta, cores)
        for k, scores in enumerate(scored):
            value = _selection_score(scores, nic.reta_size)
            if value < best[0] - 1e-9:
                best = (value, k, reta, scores)
    _, chosen, reta, scores = best
    return Synthesis(
        keys=candidates[chosen], reta=reta, index_bits=bits, equations=equations, rank=system.rank,
        dimension=solved.dimension, samples=len(candidates), seconds=time.perf_counter() - start,
        live={d: live_fields(solved, d, bits) for d in range(devices)}, scores=scores,
    )


def evaluate(keys: dict[int, bytes], reta: list[int], cores: int, *, flows: int = 32768,
             seed: int = 7) -> list[Score]:
    """Quality of keys and a RETA on fresh scoring traffic (not the
    selection's)."""
    return score_keys([keys], score_traffic(len(keys), flows, seed), reta, cores)[0]


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
            net = _LAN if lan else _WAN
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
