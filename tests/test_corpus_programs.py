"""The foreign-style corpus end to end: each NF's plan, its generated program
built and run, and verified against the sequential NF on traffic driven down
its explored paths (codegen/path_traffic.py)."""
from pathlib import Path

import pytest

from analyses.model import Analysis
from analyses.planner import plan
from analyses.report import analyze
from codegen.generator import generate
from codegen.program import build
from codegen.traffic import generate as traffic
from codegen.verify import prepare, verify_program, verify_traffics

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


def crc32_key_and_statistics(vfw: Analysis) -> None:
    """A CRC32-hashed 5-tuple flow table keeps its 13-byte key; a global
    only written for statistics stays per core (the plan is shared-nothing)."""
    assert vfw.object("state.flows").key_size == 13
    lan = [a for a in vfw.accesses if a.object == "state.flows" and a.op == "read" and a.device == [0]]
    assert lan and set(lan[0].key_fields) == {"ipv4.src", "ipv4.dst", "l4.sport", "l4.dport", "ipv4.proto"}
    stats = vfw.object("fw_stats")
    assert stats.kind == "global" and not stats.written
    assert any("fw_stats" in note and "statistics" in note for note in vfw.stats.assumptions)


def retry_after_erase_terminates_and_shards(quota: Analysis) -> None:
    """A retry after map_erase ends (the map model forgets erased keys)."""
    assert quota.stats.seconds < 60
    decided = plan(quota, 2, "e810").decisions()
    assert set(decided.values()) == {"shard"}, decided


def relations_through_or_are_found(vnat: Analysis) -> None:
    """Relations written with non-short-circuit `|` (vnat) are found."""
    cell = [r for r in vnat.relations if r.via.startswith("cell@")]
    assert cell and {("ipv4.dst", "ipv4.src"), ("l4.dport", "l4.sport")} <= {tuple(p) for p in cell[0].field_pairs}


def global_array_is_keyed_by_its_index_field(proto: Analysis) -> None:
    """A global array indexed by a packet field is keyed by that field
    (proto_limit: ipv4.proto, locked; dst_limit in test_soundness.py)."""
    keyed = {tuple(a.key_fields) for a in proto.accesses if a.object == "proto_hits"}
    assert keyed == {("ipv4.proto",)}
    assert plan(proto, 2, "e810").object("proto_hits").decision == "lock"


#: Expectations on a corpus NF's analysis, checked on the analysis its
#: verification made (one exploration for both).
ANALYSIS_CHECKS = {"vfw": crc32_key_and_statistics,
                   "quota": retry_after_erase_terminates_and_shards,
                   "vnat": relations_through_or_are_found,
                   "proto_limit": global_array_is_keyed_by_its_index_field}


@pytest.mark.parametrize("nf", sorted(EXPECTED))
def test_corpus_nf_is_verified_on_its_paths(nf, tmp_path):
    strategy, shared, extra = EXPECTED[nf]
    prepared = prepare(str(CORPUS / f"{nf}.c"), out_dir=tmp_path / nf, lock=LOCKS.get(nf, "maestro"))
    if nf in ANALYSIS_CHECKS:
        assert prepared.analysis.stats.complete, prepared.analysis.stats.warnings
        ANALYSIS_CHECKS[nf](prepared.analysis)
    [(_, verdict, _)] = verify_traffics(prepared, ["paths"], flows=300, packets=extra, path_seconds=10)
    info = {"plan_strategy": prepared.plan["strategy"], "complete": prepared.analysis.stats.complete}
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
