"""Fresh analyses of the NFs, made once per process (one per pytest worker)
and shared by the test files that need them (test_analysis.py,
test_fixtures_fresh.py): an analysis takes 1-15 s."""
from __future__ import annotations

from functools import cache

import pytest

from analyses.model import Analysis
from analyses.report import analyze

#: The sample NFs (sample_nfs/*.c), with a saved analysis each in
#: tests/fixtures/analysis.
SAMPLES = ("nop", "sbridge", "bridge", "pol", "fw", "nat", "cl", "psd", "lb", "hhh")


def fresh_analysis(nf: str, opt: str = "-O2") -> Analysis:
    """The analysis of `nf` (a sample name or a .c path) with default
    budgets, made at most once per process and `opt`."""
    return _cached(str(nf), opt)


def same_worker(nf: str) -> pytest.MarkDecorator:
    """The mark that runs a test on the pytest-xdist worker that runs the
    other tests of `nf`'s fresh analysis (`--dist loadgroup`), which then
    analyzes it once."""
    return pytest.mark.xdist_group(f"analysis-{nf}")


def per_sample(names) -> list:
    """Parameters `nf` for each of `names`, each marked same_worker."""
    return [pytest.param(nf, marks=same_worker(nf)) for nf in names]


@cache
def _cached(nf: str, opt: str) -> Analysis:
    return analyze(nf, opt=opt)
