"""The symbolic-execution analysis against expectations written from the NFs' specs."""
import json
from pathlib import Path

import pytest

from analyses.errors import MaestroError
from analyses.model import Analysis
from analyses.report import analyze
from analyses.symbex import Budgets
from tests.analysis_expectations import EXPECTED, PARTS, as_reported, disputed
from tests.fresh_analysis import SAMPLES, per_sample, same_worker
from tests.fresh_analysis import fresh_analysis as report
from workbench.cli import main as maestro

TEST_NFS = Path(__file__).parent / "nfs"


def has_access(analysis, obj, op, device, key):
    return any(a.object == obj and a.op == op and device in a.device and a.key_fields == key
               for a in analysis.accesses)


def reported_sets(analysis: Analysis) -> dict[str, list]:
    """The report's parts as lists of the entries analysis_expectations
    describes (lists, so that duplicates show)."""
    sources: dict[tuple, set[str]] = {}
    for w in analysis.packet_writes:
        for name, source in w.fields.items():
            if not name.endswith(".csum"):
                sources.setdefault((tuple(w.device), name), set()).add(source)
    return {
        "objects": [(o.name, o.kind, o.capacity, o.key_size, o.elem_size, o.written)
                    for o in analysis.objects],
        "accesses": [(a.object, a.op, tuple(a.device), tuple(a.key_fields)) for a in analysis.accesses],
        "relations": [(r.object, tuple(r.devices), frozenset(map(tuple, r.field_pairs)), r.via)
                      for r in analysis.relations],
        "packet_writes": list({(tuple(w.device), w.output, frozenset(w.fields))
                               for w in analysis.packet_writes}),
        "write_sources": [(*key, frozenset(found)) for key, found in sources.items()],
    }


def _show(entry) -> str:
    return repr(tuple(sorted(entry)) if isinstance(entry, frozenset) else
                tuple(tuple(sorted(x)) if isinstance(x, frozenset) else x for x in entry))


@pytest.mark.parametrize("nf", per_sample(sorted(EXPECTED)))
def test_sample_matches_its_spec(nf):
    analysis = report(nf)
    assert analysis.stats.complete and not analysis.stats.warnings, analysis.stats.warnings
    reported = reported_sets(analysis)
    expected = as_reported(nf)
    problems = []
    for part in PARTS:
        found = reported[part]
        duplicates = sorted({_show(e) for e in found if found.count(e) > 1})
        missing = sorted(_show(e) for e in expected[part] - set(found))
        unexpected = sorted(_show(e) for e in set(found) - expected[part])
        if duplicates or missing or unexpected:
            problems.append(f"{part}:")
            problems += [f"  missing     {e}" for e in missing]
            problems += [f"  unexpected  {e}" for e in unexpected]
            problems += [f"  duplicated  {e}" for e in duplicates]
    for d in disputed(nf):
        if (d.spec is not None and d.spec in reported[d.part]) or \
                (d.reported is not None and d.reported not in reported[d.part]):
            problems.append(f"DISPUTED entry no longer reported as listed (fixed? remove it from "
                            f"DISPUTED in tests/analysis_expectations.py): {d.part} {d.reason}")
    assert not problems, f"{nf}: the analysis differs from tests/analysis_expectations.py\n" + \
        "\n".join(problems)


def test_every_sample_has_expectations():
    assert sorted(EXPECTED) == sorted(SAMPLES)


def test_objects_have_sizes_and_call_sites():
    fw = report("fw")
    assert fw.object("flow_map").key_size == 13  # the packed 5-tuple
    assert fw.object("flow_keys").elem_size == 13
    assert fw.object("flow_map").capacity == 65536
    reads = [a for a in fw.accesses if a.object == "flow_map" and a.op == "read"]
    assert all(call.startswith("fw.c:") for a in reads for call in a.calls)
    assert all(a.function == "nf_process" for a in reads)
    # The WAN lookup's path condition depends on the device and the packet's protocol.
    wan = next(a for a in reads if a.device == [1])
    assert {"device", "ipv4.proto", "eth.type"} <= set(wan.condition_fields)


@same_worker("nat")
def test_nat_rewrites_source_on_lan_and_destination_on_wan():
    nat = report("nat")
    lan = [w for w in nat.packet_writes if w.device == [0]]
    wan = [w for w in nat.packet_writes if w.device == [1]]
    assert lan and all({"ipv4.src", "l4.sport", "ipv4.csum"} <= set(w.fields) for w in lan)
    assert all(w.fields["ipv4.src"].startswith("const:") and w.output == "1" for w in lan)
    assert wan and all({"ipv4.dst", "l4.dport"} <= set(w.fields) and w.output == "0" for w in wan)
    assert all("flow_keys.cell" in w.fields["ipv4.dst"] for w in wan)
    assert not any({"ipv4.src", "ipv4.dst"} & set(w.fields) for w in report("fw").packet_writes)


def test_ipv4_options_through_ihl_still_name_ports():
    analysis = report(str(TEST_NFS / "options_ports.c"))
    assert has_access(analysis, "port_map", "read", 0, ["l4.sport", "l4.dport"])
    assert has_access(analysis, "port_map", "write", 1, ["l4.sport", "l4.dport"])


def test_bounded_loop_over_a_small_table():
    analysis = report(str(TEST_NFS / "loop_table.c"))
    assert analysis.stats.complete
    reads = {tuple(a.key_fields) for a in analysis.accesses if a.object == "rules"}
    assert reads == {(f"const:0x{i:08x}",) for i in range(4)}  # all four rules, by constant index
    assert not analysis.object("rules").written
    assert has_access(analysis, "verdict_map", "write", 0, ["ipv4.dst"])


def test_field_combination_no_sample_uses():
    analysis = report(str(TEST_NFS / "tos_dst24.c"))
    key = ["ipv4.tos", "ipv4.dst/24", "l4.sport"]
    assert has_access(analysis, "class_map", "read", 0, key)
    assert has_access(analysis, "class_map", "write", 1, key)


@pytest.mark.parametrize("nf", per_sample(["fw", "nat", "bridge"]))
def test_results_do_not_depend_on_optimization_level(nf):
    def signature(a):
        return ({(x.object, x.op, tuple(x.device), tuple(x.key_fields)) for x in a.accesses},
                {(r.object, tuple(r.devices), tuple(map(tuple, r.field_pairs))) for r in a.relations},
                {(o.name, o.kind, o.capacity, o.written) for o in a.objects})
    assert signature(report(nf, "-O0")) == signature(report(nf, "-O2"))


def test_unmodelled_call_is_an_error_naming_function_and_site(tmp_path):
    nf = tmp_path / "rand_nf.c"
    nf.write_text('#include "nf.h"\n#include <stdlib.h>\nbool nf_init(void) { return true; }\n'
                  "int nf_process(uint16_t d, uint8_t *p, uint16_t l, vigor_time_t t) {\n"
                  "  (void)p; (void)l; (void)t;\n  return rand() ? d : NF_DROP;\n}\n")
    with pytest.raises(MaestroError, match=r"rand_nf\.c:6: in nf_process\(\): calls rand\(\)"):
        analyze(nf)


def test_compile_error_reaches_the_caller(tmp_path):
    nf = tmp_path / "broken.c"
    nf.write_text('#include "nf.h"\nbool nf_init(void) { return true }\n')
    with pytest.raises(MaestroError, match=r"broken\.c:2:.*error"):
        analyze(nf)


def test_loop_budget_names_the_loop_and_keeps_partial_results():
    # Generous time: only the block budget may stop it, however loaded the machine.
    analysis = analyze(TEST_NFS / "unbounded_loop.c", budgets=Budgets(seconds=600, blocks_per_path=150))
    assert not analysis.stats.complete
    assert any("block budget of 150" in w and "unbounded_loop.c:1" in w and "nf_process" in w
               for w in analysis.stats.warnings), analysis.stats.warnings


@same_worker("hhh")
def test_path_budget_stops_with_what_was_found():
    analysis = analyze("hhh", budgets=Budgets(paths=5))
    assert not analysis.stats.complete
    assert 5 <= analysis.stats.paths < report("hhh").stats.paths
    assert any("path budget of 5" in w for w in analysis.stats.warnings)


def test_progress_and_cancel():
    stages, calls = [], []

    def progress(p):
        stages.append(p.stage)
        calls.append(p)

    analysis = analyze("psd", progress=progress, cancel=lambda: len(calls) > 8)
    assert stages[:3] == ["compile", "init", "explore"]
    assert not analysis.stats.complete and any("cancelled" in w for w in analysis.stats.warnings)
    assert all(b.elapsed >= a.elapsed for a, b in zip(calls, calls[1:]))


def test_json_round_trip_and_stable_keys(tmp_path):
    fw = report("fw")
    doc = json.loads(fw.dumps())
    for key in ("nf", "devices", "paths", "objects", "accesses", "relations", "packet_writes", "stats"):
        assert key in doc
    assert {"name", "kind", "capacity"} <= set(doc["objects"][0])
    assert {"object", "op", "device", "key_fields"} <= set(doc["accesses"][0])
    assert {"object", "devices", "field_pairs"} <= set(doc["relations"][0])
    assert {"seconds", "peak_rss_mb"} <= set(doc["stats"])
    assert Analysis.from_json(doc) == fw


def test_cli_prints_tables_and_writes_json(tmp_path, capsys):
    out = tmp_path / "fw.json"
    assert maestro(["analyze", "fw", "--json", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "flow_map" in printed and "ipv4.src=ipv4.dst" in printed
    assert Analysis.load(out).nf == "fw"


def test_uninitialized_reads_are_reported():
    analysis = analyze(TEST_NFS / "uninit_key.c")
    assert any("uninitialized memory" in w for w in analysis.stats.warnings), analysis.stats.warnings
    assert has_access(analysis, "map", "read", 0, ["ipv4.src"])  # the initialized path
    assert has_access(analysis, "map", "read", 0, ["uninitialized"])
    assert any("packet_length" in a for a in analysis.stats.assumptions)
