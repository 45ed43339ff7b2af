"""Linear algebra over GF(2) on Python ints: elimination, nullspace, sampling.

A vector (or a homogeneous equation) is an int whose bit v is the
coefficient of variable v.  `System` keeps a row echelon form keyed by each
row's lowest set bit (its pivot); adding a row reduces it against the
pivots, so adding is cheap and redundant equations are recognised at once.
`solved()` gives the reduced form: each pivot variable as the XOR of free
(non-pivot) variables, from which the nullspace basis and uniform samples
follow.  Rows of a few hundred bits make every operation a handful of
machine-word XORs.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Iterable


def bits_of(value: int) -> list[int]:
    """Positions of the set bits of `value`, lowest first."""
    out = []
    while value:
        low = value & -value
        out.append(low.bit_length() - 1)
        value ^= low
    return out


def parity(value: int) -> int:
    """XOR of the bits of `value`."""
    return value.bit_count() & 1


class System:
    """A homogeneous linear system A x = 0 over GF(2) in `nvars` variables."""

    def __init__(self, nvars: int, rows: Iterable[int] = ()):
        self.nvars = nvars
        self.pivots: dict[int, int] = {}  # lowest set bit -> row
        for row in rows:
            self.add(row)

    def copy(self) -> "System":
        """An independent copy."""
        other = System(self.nvars)
        other.pivots = dict(self.pivots)
        return other

    @property
    def rank(self) -> int:
        """Number of independent equations."""
        return len(self.pivots)

    def reduce(self, row: int) -> int:
        """`row` minus its component in the row space (0 iff implied)."""
        pivots = self.pivots
        while row:
            low = (row & -row).bit_length() - 1
            pivot = pivots.get(low)
            if pivot is None:
                return row
            row ^= pivot
        return 0

    def add(self, row: int) -> bool:
        """Add equation `row`; False when it was already implied."""
        if row >> self.nvars:
            raise ValueError(f"equation mentions variable {row.bit_length() - 1} >= {self.nvars}")
        reduced = self.reduce(row)
        if not reduced:
            return False
        self.pivots[(reduced & -reduced).bit_length() - 1] = reduced
        return True

    def add_all(self, rows: Iterable[int]) -> int:
        """Add every row; returns how many were independent."""
        return sum(self.add(row) for row in rows)

    def solved(self) -> "Solved":
        """The reduced row echelon form (see `Solved`)."""
        pivot_mask = 0
        for p in self.pivots:
            pivot_mask |= 1 << p
        reduced: dict[int, int] = {}
        # Highest pivot first: a row only holds pivots above its own, which
        # are already reduced, so each XOR removes one and adds free bits only.
        for p in sorted(self.pivots, reverse=True):
            row = self.pivots[p]
            others = row & pivot_mask & ~(1 << p)
            while others:
                q = others.bit_length() - 1
                row ^= reduced[q]
                others &= ~(1 << q)
            reduced[p] = row
        free_mask = ((1 << self.nvars) - 1) & ~pivot_mask
        return Solved(self.nvars, reduced, free_mask)


@dataclass(frozen=True)
class Solved:
    """A system in reduced form: variable p (a pivot) equals the XOR of the
    free variables set in `rows[p]` (other than p); free variables are
    arbitrary.  The solution space has dimension `dimension`."""

    nvars: int
    rows: dict[int, int]
    free_mask: int

    @property
    def dimension(self) -> int:
        """Dimension of the solution space (number of free variables)."""
        return self.free_mask.bit_count()

    def forced_zero(self) -> int:
        """Mask of the variables that are 0 in every solution."""
        mask = 0
        for p, row in self.rows.items():
            if row == 1 << p:
                mask |= 1 << p
        return mask

    def complete(self, free_values: int) -> int:
        """The solution with these values of the free variables."""
        x = free_values & self.free_mask
        solution = x
        for p, row in self.rows.items():
            if parity(row & x):
                solution |= 1 << p
        return solution

    def sample(self, rng: random.Random) -> int:
        """A solution drawn uniformly: uniform free values determine a
        solution one-to-one."""
        return self.complete(rng.getrandbits(self.nvars) if self.nvars else 0)

    def nullspace(self) -> list[int]:
        """A basis of the solution space, one vector per free variable."""
        basis = {f: 1 << f for f in bits_of(self.free_mask)}
        for p, row in self.rows.items():
            for f in bits_of(row & ~(1 << p)):
                basis[f] |= 1 << p
        return [basis[f] for f in sorted(basis)]

    def satisfies(self, x: int) -> bool:
        """Whether x solves the system."""
        return all(parity(row & x) == 0 for row in self.rows.values())


def rank(rows: Iterable[int], nvars: int | None = None) -> int:
    """Rank of a set of vectors."""
    rows = list(rows)
    width = nvars if nvars is not None else max((r.bit_length() for r in rows), default=0)
    return System(width, rows).rank


def nullspace(rows: Iterable[int], nvars: int) -> list[int]:
    """A basis of {x : row . x = 0 for every row}."""
    return System(nvars, rows).solved().nullspace()


def in_span(basis: Iterable[int], vector: int) -> bool:
    """Whether `vector` is a combination of `basis`."""
    basis = list(basis)
    width = max([vector.bit_length()] + [b.bit_length() for b in basis])
    return System(width, basis).reduce(vector) == 0


def sample_span(basis: list[int], rng: random.Random) -> int:
    """A uniform element of the span of an independent `basis`."""
    result = 0
    for vector, pick in zip(basis, bits_of_int(rng.getrandbits(len(basis)) if basis else 0, len(basis))):
        if pick:
            result ^= vector
    return result


def bits_of_int(value: int, count: int) -> list[int]:
    """The low `count` bits of value, lowest first, as 0/1."""
    return [(value >> i) & 1 for i in range(count)]
