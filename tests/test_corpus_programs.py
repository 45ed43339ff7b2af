"""The foreign-style corpus end to end: each NF's plan, its generated program
built and run, and verified against the sequential NF on traffic driven down
its explored paths (codegen/path_traffic.py)."""
from pathlib import Path

import pytest

from analyses.planner import plan
from analyses.report import analyze
from codegen.generator import generate
from codegen.program import build
from codegen.traffic import generate as traffic
from codegen.verify import verify_nf, verify_program

CORPUS = Path(__file__).parent / "corpus"

#: NF -> (plan strategy, NF variables shared by every core, extra sessions packets)
#: maglev's mixed plan runs with per-object locks: maestro locks keep expiry
#: core-local, which can order a shared chain differently from the
#: sequential NF when timestamps go backwards in the serial order (README).
LOCKS = {"maglev": "object"}
EXPECTED = {
    "vfw": ("shared-nothing", [], 0),
    "vnat": ("shared-nothing", [], 0),
    "quota": ("shared-nothing", [], 0),
    "csum_helper": ("shared-nothing", [], 0),
    "maglev": ("mixed", [], 0),
    "connlimit": ("locks", ["state"], 0),
    "scrub": ("locks", ["next_id.0"], 0),
    "proto_limit": ("locks", ["proto_epoch", "proto_hits"], 20000),
    "rare": ("locks", ["packets_seen"], 20000),
    "csum_loop": ("locks", ["state"], 2000),  # incomplete: everything locked and shared
}


@pytest.mark.parametrize("nf", sorted(EXPECTED))
def test_corpus_nf_is_verified_on_its_paths(nf, tmp_path):
    strategy, shared, extra = EXPECTED[nf]
    verdict, info = verify_nf(str(CORPUS / f"{nf}.c"), out_dir=tmp_path / nf, packets=extra,
                              flows=300, path_seconds=15, lock=LOCKS.get(nf, "maestro"))
    assert info["plan_strategy"] == strategy
    assert verdict.equivalent, verdict.to_json()
    plan_doc = (tmp_path / nf / "plan.json").read_text()
    for symbol in shared:
        assert f'"{symbol}"' in plan_doc
    cov = verdict.reference_coverage
    reached = sum(len(ids) for ids in cov.reached.values())
    assert reached >= 2, cov.summary()
    if info["complete"]:
        assert not cov.unexplained, cov.summary()  # every packet took an explored path
    else:  # the paths past the payload loop were never explored: the verdict says so
        assert cov.unexplained and "took no explored path" in verdict.summary()
    if extra >= 20000:
        assert verdict.packets >= 20000


def test_per_copy_counters_would_be_caught(tmp_path):
    """rare with its packet budget left per copy (the naive program): the
    verification on 20,000 packets tells it from the sequential NF."""
    analysis = analyze(CORPUS / "rare.c")
    doc = plan(analysis, 2, "e810").to_json()
    doc["shared_variables"] = []
    program = generate(str(CORPUS / "rare.c"), doc, analysis, tmp_path / "rare-naive")
    build(program)
    verdict, _ = verify_program(program, analysis, traffic("uniform", 500, 20000, seed=4))
    assert not verdict.equivalent and verdict.disallowed > 1000
