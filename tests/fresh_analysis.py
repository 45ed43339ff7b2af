"""Fresh analyses of the NFs, made once per process (one per pytest worker)
and shared by the test files that need them (test_analysis.py,
test_fixtures_fresh.py): an analysis takes 1-15 s."""
from __future__ import annotations

from functools import cache

from analyses.model import Analysis
from analyses.report import analyze

#: The sample NFs (sample_nfs/*.c), with a saved analysis each in
#: tests/fixtures/analysis.
SAMPLES = ("nop", "sbridge", "bridge", "pol", "fw", "nat", "cl", "psd", "lb", "hhh")


def fresh_analysis(nf: str, opt: str = "-O2") -> Analysis:
    """The analysis of `nf` (a sample name or a .c path) with default
    budgets, made at most once per process and `opt`."""
    return _cached(str(nf), opt)


@cache
def _cached(nf: str, opt: str) -> Analysis:
    return analyze(nf, opt=opt)
