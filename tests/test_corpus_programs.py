"""The foreign-style corpus end to end: each NF's plan, its generated program
built and run, and verified against the sequential NF on traffic driven down
its explored paths (codegen/path_traffic.py)."""
from pathlib import Path

import pytest

from analyses.model import Analysis
from analyses.planner import plan
from analyses.errors import MaestroError
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


def static_counter_is_a_locked_global(rare: Analysis) -> None:
    """A plain `static` counter is a global object, written, never sharded;
    its budget path (hidden if the analysis took nf_init's 0 as constant) is
    explored."""
    seen = rare.object("packets_seen")
    assert seen.kind == "global" and seen.written and seen.symbol == "packets_seen"
    assert any(p.output == "drop" for p in rare.paths)
    decided = plan(rare, 2, "e810")
    assert decided.object("packets_seen").decision == "lock" and "packets_seen" in decided.shared_variables
    assert decided.strategy != "shared-nothing"


def block_scope_static_is_named_after_its_function(scrub: Analysis) -> None:
    obj = scrub.object("next_ip_id.next_id")
    assert obj.kind == "global" and obj.written and obj.symbol.startswith("next_id.")
    assert obj.symbol in plan(scrub, 2, "e810").shared_variables


def struct_of_handles_and_a_counter_is_shared(conn: Analysis) -> None:
    """A global struct holding state handles and a counter is shared, and
    the objects it holds are locked (the reason names the handle)."""
    decided = plan(conn, 2, "e810")
    assert "state" in decided.shared_variables
    assert {o.name: o.decision for o in decided.objects} == {o.name: "lock" for o in conn.objects}
    assert "handle" in decided.object("state.flows").reason


def payload_loop_stops_and_locks_everything(loop: Analysis) -> None:
    """A checksum loop over the payload stops the analysis, naming the loop
    and the helper; the incomplete analysis locks every object, shares
    every variable and refuses shared-nothing and shard overrides."""
    stop = next(w for w in loop.stats.warnings if "loops over the packet's length" in w)
    assert "csum_loop.c:" in stop and "nf_checksum" in stop
    assert loop.stats.seconds < 60
    decided = plan(loop, 2, "e810")
    assert not decided.complete and decided.incomplete
    assert set(decided.decisions().values()) == {"lock"}
    assert set(decided.shared_variables) == {v.symbol for v in loop.variables}
    with pytest.raises(MaestroError, match="complete analysis"):
        plan(loop, 2, "e810", strategy="shared-nothing")
    with pytest.raises(MaestroError, match="incomplete"):
        plan(loop, 2, "e810", overrides={"state.srcs": "shard"})


#: Expectations on a corpus NF's analysis, checked on the analysis its
#: verification made (one exploration for both).  Every NF but csum_loop
#: must be complete.
ANALYSIS_CHECKS = {"vfw": crc32_key_and_statistics,
                   "quota": retry_after_erase_terminates_and_shards,
                   "vnat": relations_through_or_are_found,
                   "proto_limit": global_array_is_keyed_by_its_index_field,
                   "rare": static_counter_is_a_locked_global,
                   "scrub": block_scope_static_is_named_after_its_function,
                   "connlimit": struct_of_handles_and_a_counter_is_shared,
                   "csum_loop": payload_loop_stops_and_locks_everything}


@pytest.mark.parametrize("nf", sorted(EXPECTED))
def test_corpus_nf_is_verified_on_its_paths(nf, tmp_path):
    strategy, shared, extra = EXPECTED[nf]
    prepared = prepare(str(CORPUS / f"{nf}.c"), out_dir=tmp_path / nf, lock=LOCKS.get(nf, "maestro"))
    if nf != "csum_loop":
        assert prepared.analysis.stats.complete, prepared.analysis.stats.warnings
    if nf in ANALYSIS_CHECKS:
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
    if nf == "rare":
        per_copy_counters_would_be_caught(prepared.analysis, tmp_path)


def per_copy_counters_would_be_caught(analysis: Analysis, tmp_path) -> None:
    """rare with its packet budget left per copy (the naive program): the
    verification on 20,000 packets tells it from the sequential NF."""
    doc = plan(analysis, 2, "e810").to_json()
    doc["shared_variables"] = []
    program = generate(str(CORPUS / "rare.c"), doc, analysis, tmp_path / "rare-naive")
    build(program)
    verdict, _ = verify_program(program, analysis, traffic("uniform", 500, 20000, seed=4))
    assert not verdict.equivalent and verdict.disallowed > 1000
