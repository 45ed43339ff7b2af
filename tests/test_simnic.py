"""The cheap simulated NIC: recycled mbufs, latency, the bytes it restores.

Packets are laid out once per queue and delivered again on every pass
over the trace; only the bytes the NF may write are restored in between
(config.c's maestro_write_*, from the analysis).  A pass must therefore
give every packet the same output and bytes as the first pass did, for an
NF that rewrites packets (nat); the control below shows that without the
restore it would not.
"""
import dataclasses
import re
from functools import lru_cache
from pathlib import Path

import pytest

from analyses.model import Analysis
from analyses.planner import plan
from codegen.generator import generate, packet_write_ranges
from codegen.program import build, run
from codegen.traffic import generate as traffic
from codegen.verify import read_parallel_results

FIXTURES = Path(__file__).parent / "fixtures" / "analysis"


@lru_cache(maxsize=None)
def analysis(nf):
    return Analysis.load(FIXTURES / f"{nf}.json")


def built(nf, folder, cores=2):
    doc = plan(analysis(nf), cores=cores, nic="82599").to_json()
    program = generate(nf, doc, analysis(nf), folder, strategy="sn")
    build(program)
    return program


def passes_of(program, packets, passes, tmp_path, **options):
    """Per pass, each packet's (output, digest of its bytes after the NF)."""
    results = tmp_path / "results.txt"
    final = run(program, packets=packets, passes=passes, results=results, **options).final
    assert final["processed_once"] == passes * len(packets) and final["conserved"]
    rows = sorted(read_parallel_results(results), key=lambda r: r.index)
    assert [r.index for r in rows] == list(range(passes * len(packets)))
    n = len(packets)
    return [[(r.output, r.data) for r in rows[p * n:(p + 1) * n]] for p in range(passes)], final


@pytest.fixture(scope="module")
def nat_program(tmp_path_factory):
    return built("nat", tmp_path_factory.mktemp("nat") / "nat")


@pytest.mark.parametrize("layout", ["layout", "window"])
def test_every_pass_over_the_trace_gives_nat_the_same_packets(layout, nat_program, tmp_path):
    program = nat_program
    packets = traffic("uniform", 200, 3000, seed=3) + traffic("malformed", 20, 200, seed=4)
    runs, final = passes_of(program, packets, 3, tmp_path, sim_layout=layout)
    assert final["simnic"]["mode"] == layout
    rewritten = sum(1 for (output, _), packet in zip(runs[0], packets) if output == 1)
    assert rewritten > 1000  # LAN packets leave on the WAN with new addresses
    assert runs[1] == runs[0] and runs[2] == runs[0]


def test_without_restoring_the_written_bytes_a_second_pass_differs(tmp_path):
    """The control: the same program told the NF writes nothing sees its own
    rewritten packets on the second pass (new flows, other bytes)."""
    program = built("nat", tmp_path / "nat")
    config = program.directory / "config.c"
    text = config.read_text()
    text, n = re.subn(r"maestro_write_(frame|l4)_hi = \d+", r"maestro_write_\1_hi = 0", text)
    assert n == 2
    config.write_text(text)
    build(program)
    packets = traffic("uniform", 200, 3000, seed=3)
    runs, _ = passes_of(program, packets, 2, tmp_path, sim_layout="layout")
    assert runs[1] != runs[0]


def test_write_ranges_come_from_the_analysis():
    assert packet_write_ranges(analysis("nat")) == {
        "known": True, "frame": (24, 34), "l4": (0, 18),
        "note": "frame bytes [24, 34), L4 bytes [0, 18)"}
    assert packet_write_ranges(analysis("fw"))["note"] == "none"
    incomplete = dataclasses.replace(
        analysis("fw"), stats=dataclasses.replace(analysis("fw").stats, complete=False))
    assert packet_write_ranges(incomplete)["known"] is False


def test_latency_percentiles_per_core_in_every_stats_line(tmp_path):
    program = built("fw", tmp_path / "fw")
    result = run(program, packets=traffic("uniform", 500, 20000, seed=2), seconds=1.2, interval=0.3)
    assert len(result.stats) >= 2
    for event in [*result.stats, result.final]:
        for latency in [event["latency_ns"], *(c["latency_ns"] for c in event["lcores"])]:
            assert 0 < latency["p50"] <= latency["p99"] <= latency["p999"]
            assert latency["packets"] > 0
    final = result.final
    assert final["latency_ns"]["packets"] == final["tx"]  # every packet sent has its latency
    assert [c["latency_ns"]["packets"] for c in final["lcores"]] == [c["tx"] for c in final["lcores"]]


TESTPMD_PERIODS = """
Port statistics ====================================
  ######################## NIC statistics for port 0  ########################
  Rx-pps:            0          Rx-bps:            0
  ######################## NIC statistics for port 1  ########################
  Rx-pps:            0          Rx-bps:            0
Port statistics ====================================
  Rx-pps:     18000000          Rx-bps:            0
  Rx-pps:     18000000          Rx-bps:            0
Port statistics ====================================
  Rx-pps:     20209667          Rx-bps:            0
  Tx-pps:     20209635          Tx-bps:            0
  Rx-pps:     20209627          Rx-bps:            0
Port statistics ====================================
  Rx-pps:     19000000          Rx-bps:            0
  Rx-pps:     19500000          Rx-bps:            0
"""


def test_testpmd_rate_is_the_median_of_both_ports_after_warm_up():
    from codegen.testpmd import parse_periods

    result = parse_periods(TESTPMD_PERIODS)
    assert result.periods == [36.0, 40.419294, 38.5]  # the zero period left out
    assert result.mpps == (40.419294 + 38.5) / 2  # the first period (warm-up) left out too
    assert parse_periods("EAL: cannot init").error.startswith("testpmd printed no statistics")
