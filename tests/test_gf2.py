"""GF(2) elimination against brute force on small systems."""
import itertools
import random
from collections import Counter

import pytest

from analyses import gf2


def brute_solutions(rows, nvars):
    return [x for x in range(1 << nvars) if all(gf2.parity(r & x) == 0 for r in rows)]


def random_system(rng, nvars, nrows, density=0.4):
    return [sum(1 << v for v in range(nvars) if rng.random() < density) for _ in range(nrows)]


@pytest.mark.parametrize("seed", range(30))
def test_solution_space_matches_brute_force(seed):
    rng = random.Random(seed)
    nvars = rng.randint(1, 10)
    rows = random_system(rng, nvars, rng.randint(0, 12))
    solutions = brute_solutions(rows, nvars)
    system = gf2.System(nvars, rows)
    solved = system.solved()
    assert 2 ** solved.dimension == len(solutions)
    assert system.rank + solved.dimension == nvars
    basis = solved.nullspace()
    assert len(basis) == solved.dimension
    assert all(solved.satisfies(v) and v in solutions for v in basis)
    assert gf2.rank(basis, nvars) == len(basis)  # independent
    span = {0}
    for v in basis:
        span |= {s ^ v for s in span}
    assert span == set(solutions)
    zero = solved.forced_zero()
    for var in range(nvars):
        always_zero = all(not (x >> var) & 1 for x in solutions)
        assert bool((zero >> var) & 1) == always_zero


def test_redundant_rows_are_recognised():
    system = gf2.System(4)
    assert system.add(0b0011)
    assert system.add(0b0110)
    assert not system.add(0b0101)  # the sum of the two
    assert system.reduce(0b0101) == 0 and system.reduce(0b1000) != 0
    assert system.rank == 2
    with pytest.raises(ValueError):
        system.add(1 << 4)


def test_sampling_is_uniform_over_the_solutions():
    rows = [0b110000, 0b011000, 0b000111]
    solved = gf2.System(6, rows).solved()
    solutions = brute_solutions(rows, 6)
    rng = random.Random(5)
    counts = Counter(solved.sample(rng) for _ in range(8000))
    assert set(counts) == set(solutions)
    expected = 8000 / len(solutions)
    # chi-square with len-1 degrees of freedom; a generous bound
    chi2 = sum((c - expected) ** 2 / expected for c in counts.values())
    assert chi2 < 3 * len(solutions)


def test_complete_fixes_free_variables():
    solved = gf2.System(3, [0b011]).solved()  # x0 = x1
    free = solved.free_mask
    values = {solved.complete(f) for f in range(8)}
    assert values == set(brute_solutions([0b011], 3))
    assert all(solved.complete(v) & free == v & free for v in range(8))


def test_span_helpers():
    basis = [0b1010, 0b0110]
    assert gf2.in_span(basis, 0b1100)
    assert not gf2.in_span(basis, 0b0001)
    rng = random.Random(0)
    seen = {gf2.sample_span(basis, rng) for _ in range(100)}
    assert seen == {0, 0b1010, 0b0110, 0b1100}
    assert gf2.bits_of(0b10110) == [1, 2, 4]
    assert [gf2.parity(v) for v in (0, 1, 3, 7)] == [0, 1, 0, 1]


def test_large_system_is_fast_and_consistent():
    rng = random.Random(9)
    nvars = 256
    rows = random_system(rng, nvars, 180, density=0.05)
    system = gf2.System(nvars, rows)
    solved = system.solved()
    for _ in range(20):
        assert solved.satisfies(solved.sample(rng))
    for row in rows:
        assert all(gf2.parity(row & v) == 0 for v in solved.nullspace()[:20])


def test_empty_system_has_every_vector():
    solved = gf2.System(3).solved()
    assert solved.dimension == 3 and sorted(solved.nullspace()) == [1, 2, 4]
    assert gf2.nullspace([], 0) == []
    assert list(itertools.islice(iter(gf2.nullspace([0b1], 1)), 1)) == []
