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

import random
import time
from dataclasses import dataclass, field

from analyses.nic import NicProfile
from analyses.rss_proof import FIELD_BITS, ProofResult, describe_packet, find_counterexample, prove
from analyses.rss_scoring import (
    Score,
    key_indexes,
    reta_candidates,
    score_indexes,
    score_keys,
    score_traffic,
    selection_score,
)
from analyses.rss_system import (
    ALL_TYPES,
    KEY_VARS,
    L4_ONLY,
    PROFILES,
    BitEq,
    Requirement,
    build_system,
    depends_on,
    index_windows,
    key_from_solution,
    live_fields,
    reta_index,
    requirement_rows,
)

__all__ = ["ALL_TYPES", "FIELD_BITS", "KEY_VARS", "L4_ONLY", "PROFILES", "BitEq", "ProofResult", "Requirement",
           "Score", "Synthesis", "build_system", "depends_on", "describe_packet", "evaluate",
           "find_counterexample", "index_windows", "live_fields", "prove", "requirement_rows", "reta_index",
           "synthesize"]


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
            value = selection_score(scores, nic.reta_size)
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
