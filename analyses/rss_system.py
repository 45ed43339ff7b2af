"""The linear-algebra side of RSS synthesis (see analyses/rss.py): what
must share a core as `Requirement`s over packet field bits, the GF(2)
system of key-bit equations they give, and keys as bytes (drawn from a
solution, the RETA index windows and the fields an index depends on)."""
from __future__ import annotations

import random
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable

from analyses import gf2
from analyses.nic import HASH_TYPES, IPV4, IPV4_L4
from analyses.toeplitz import toeplitz_hash, window

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
