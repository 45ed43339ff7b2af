"""The verifier is shown to reject: real parallel runs (NAT shared-nothing,
fw under locks) are mutated the way a broken program would differ, and each
mutation must make the verdict DIFFERENT.  The unmutated runs must be
equivalent, so each test fails if the mutation were not noticed."""
from dataclasses import replace
from pathlib import Path

import pytest

from analyses.model import Analysis
from analyses.planner import plan
from codegen.checksums import region_sums
from codegen import generator
from codegen.generator import generate
from codegen.program import build
from codegen.reference import NF_DROP
from codegen.trace import TracePacket
from codegen.traffic import generate as traffic
from codegen.verify import (Binding, ParallelResult, compare, fix_l4_checksum, in_trace_order, parallel_results,
                            readdress, reference_in_order, serial_order, time_goes_back, verify_program)
from tests.nf_helpers import LAN, MS, UDP, WAN, pkt

FIXTURES = Path(__file__).parent / "fixtures" / "analysis"
SPORT = slice(34, 36)  # l4.sport of a frame without IPv4 options


def _numbered(trace: list[TracePacket]) -> list[TracePacket]:
    """Each packet with its own IPv4 id (header checksum recomputed), so two
    packets of one flow have different bytes."""
    out = []
    for index, packet in enumerate(trace):
        data = bytearray(packet.data)
        data[18:20] = (index & 0xFFFF).to_bytes(2, "big")
        data[24:26] = b"\0\0"
        total = sum(int.from_bytes(data[i:i + 2], "big") for i in range(14, 34, 2))
        while total >> 16:
            total = (total & 0xFFFF) + (total >> 16)
        data[24:26] = (~total & 0xFFFF).to_bytes(2, "big")
        out.append(TracePacket(packet.device, packet.time_ns, bytes(data)))
    return out


@pytest.fixture(scope="module")
def nat_program(tmp_path_factory):
    """NAT's shared-nothing program (2 cores) and its analysis."""
    analysis = Analysis.load(FIXTURES / "nat.json")
    program = generate("nat", plan(analysis, 2, "e810").to_json(), analysis,
                       tmp_path_factory.mktemp("nat") / "nat-sn")
    build(program)
    return analysis, program


@pytest.fixture(scope="module")
def nat(nat_program):
    """NAT's shared-nothing program on LAN traffic: each core picks external
    ports from its own index space (allowed, state-chosen differences)."""
    analysis, program = nat_program
    trace = _numbered([p for p in traffic("uniform", 64, 1500, seed=2) if p.device == 0])
    parallel, _ = parallel_results(program, trace)
    reference = reference_in_order("nat", trace, None)
    return analysis, trace, reference, in_trace_order(parallel, trace)


@pytest.fixture(scope="module")
def fw_locks(tmp_path_factory):
    """fw under object locks on sessions traffic (replies need their request)."""
    analysis = Analysis.load(FIXTURES / "fw.json")
    program = generate("fw", plan(analysis, 2, "e810").to_json(), analysis,
                       tmp_path_factory.mktemp("fw") / "fw-locks", strategy="locks", lock="object")
    build(program)
    trace = traffic("sessions", 64, 1500, seed=3)
    parallel, _ = parallel_results(program, trace)
    return analysis, trace, parallel


def _verdict(nat, parallel):
    analysis, trace, reference, _ = nat
    return compare(reference, parallel, analysis, trace)


def _translated(nat) -> list[int]:
    """Packets whose external port differs between the runs (allowed)."""
    _, _, reference, parallel = nat
    return [i for i, (r, p) in enumerate(zip(reference, parallel)) if r.data[SPORT] != p.data[SPORT]]


def test_the_unmutated_runs_are_equivalent(nat, fw_locks):
    verdict = _verdict(nat, nat[3])
    assert verdict.equivalent, verdict.to_json()
    assert verdict.allowed["state-chosen values"] == len(_translated(nat)) > 0
    analysis, trace, parallel = fw_locks
    reference = reference_in_order("fw", trace, serial_order(parallel))
    assert compare(reference, parallel, analysis, trace).equivalent
    assert {p.worker for p in parallel} == {0, 1}


@pytest.mark.parametrize("field", ["ipv4.csum", "l4 checksum"])
def test_a_corrupted_checksum_next_to_a_state_chosen_value(nat, field):
    parallel = list(nat[3])
    index = _translated(nat)[0]
    data = bytearray(parallel[index].data)
    at = 24 if field == "ipv4.csum" else 34 + (16 if data[23] == 6 else 6)
    data[at] ^= 0x10
    parallel[index] = replace(parallel[index], data=bytes(data))
    verdict = _verdict(nat, parallel)
    assert not verdict.equivalent and verdict.first_difference["index"] == index
    assert "checksum does not cover" in verdict.first_difference["what"]


def test_a_checksum_left_as_the_sequential_nf_wrote_it(nat):
    """The port is the parallel program's own, the checksums the sequential
    NF's: they do not cover the parallel packet, so it differs."""
    parallel = list(nat[3])
    index = _translated(nat)[0]
    ref, data = nat[2][index].data, bytearray(parallel[index].data)
    l4 = 34 + (16 if data[23] == 6 else 6)
    data[l4:l4 + 2] = ref[l4:l4 + 2]
    parallel[index] = replace(parallel[index], data=bytes(data))
    assert region_sums(data) != region_sums(nat[3][index].data)
    assert not _verdict(nat, parallel).equivalent


def test_a_wrong_output_device(nat):
    parallel = list(nat[3])
    index = next(i for i, (r, p) in enumerate(zip(nat[2], parallel)) if r.data == p.data and r.output == 1)
    parallel[index] = replace(parallel[index], output=0)
    verdict = _verdict(nat, parallel)
    assert not verdict.equivalent and verdict.disallowed == 1
    assert "sequential output 1, parallel 0" in verdict.first_difference["what"]


def test_a_lost_packet_and_a_dropped_one(nat):
    lost = [p for p in nat[3] if p.index != 5]
    verdict = _verdict(nat, lost)
    assert not verdict.equivalent and verdict.lost == 1 and verdict.first_difference["index"] == 5
    dropped = list(nat[3])
    dropped[7] = replace(dropped[7], output=NF_DROP)  # where the NF forwarded
    assert not _verdict(nat, dropped).equivalent


def test_a_duplicated_packet(nat):
    verdict = _verdict(nat, list(nat[3]) + [nat[3][9]])
    assert not verdict.equivalent and verdict.disallowed == 1
    assert "twice" in verdict.first_difference["what"]


def test_two_packets_of_one_flow_swapped(nat):
    """Two packets of one flow came out in each other's place (their IPv4 ids
    differ; both got the same external port)."""
    parallel = list(nat[3])
    trace = nat[1]
    flow = {}
    for index, packet in enumerate(trace):
        flow.setdefault(packet.data[26:38], []).append(index)
    first, second = next(ids for ids in flow.values() if len(ids) >= 2)[:2]
    parallel[first], parallel[second] = (replace(parallel[second], index=first),
                                         replace(parallel[first], index=second))
    verdict = _verdict(nat, parallel)
    assert not verdict.equivalent
    assert "ipv4.id" in verdict.first_difference["what"]


def test_a_state_chosen_value_that_is_not_one_to_one(nat):
    """Two flows on one core given the same external port (checksums updated
    correctly, so only the one-to-one rule can catch it)."""
    parallel = list(nat[3])
    reference = nat[2]
    translated = _translated(nat)
    a = translated[0]
    b = next(i for i in translated if parallel[i].worker == parallel[a].worker
             and reference[i].data[SPORT] != reference[a].data[SPORT])
    data = bytearray(parallel[b].data)
    old, new = bytes(data[SPORT]), bytes(parallel[a].data[SPORT])
    data[SPORT] = new
    fix_l4_checksum(data, old, new)
    parallel[b] = replace(parallel[b], data=bytes(data))
    assert region_sums(data) == region_sums(nat[3][b].data)  # the checksum is right
    verdict = _verdict(nat, parallel)
    assert not verdict.equivalent and verdict.first_difference["index"] == b


def test_a_lock_program_reporting_an_order_it_did_not_use(fw_locks):
    """A reply forwarded because its request came first, reported as
    committed before everything: the sequential NF in that order drops it."""
    analysis, trace, parallel = fw_locks
    reply = next(p for p in sorted(parallel, key=lambda p: p.order) if p.device == 1 and p.output == 0)
    mutated = [replace(p, order=-1) if p is reply else p for p in parallel]
    reference = reference_in_order("fw", trace, serial_order(mutated))
    verdict = compare(reference, mutated, analysis, trace)
    assert not verdict.equivalent and verdict.first_difference["index"] == reply.index


def test_a_malformed_ihl_has_no_l4_fields_to_readdress():
    """A WAN packet whose IHL is under 5 has no L4 header: re-addressing its
    "destination port" once wrote into the IPv4 header (bytes 20-21 with
    IHL 1), which the comparison then reported as a difference in
    ipv4.frag of a packet both runs dropped (vnat, found by path traffic)."""
    good = bytearray(traffic("uniform", 1, 1, seed=2)[0].data)
    bad = bytearray(good)
    port = bytes(good[36:38])
    bad[14] = 0x41  # IPv4, IHL 1: "l4.dport" would be bytes 20-21 (ipv4.frag)
    bad[20:22] = port
    bindings = [Binding(-1, port, 0, b"\x12\x34")]
    trace = [TracePacket(1, 0, bytes(good)), TracePacket(1, 1, bytes(bad))]
    out, changed = readdress(trace, {1: {"l4.dport"}}, bindings, {0: 0, 1: 0})
    assert out[0].data[36:38] == b"\x12\x34" and changed == {0: {"l4.dport"}}
    assert out[1].data == bytes(bad)


def _expiring_flows_and_replies():
    """16 LAN flows, then (after they expire) 16 new ones, and replies from
    each new remote to each of the first 32 external ports."""
    remotes = [f"198.51.{i}.{7 * i + 1}" for i in range(32)]
    requests = [pkt(LAN, i * MS, src=f"10.0.0.{i + 1}", dst=remote, sport=5000 + i, dport=80, proto=UDP)
                for i, remote in enumerate(remotes[:16])]
    later = 11_000 * MS  # past NAT_EXPIRATION_TIME
    requests += [pkt(LAN, later + i * MS, src=f"10.0.1.{i + 1}", dst=remote, sport=6000 + i, dport=80,
                     proto=UDP) for i, remote in enumerate(remotes[16:])]
    replies = [pkt(WAN, later + 20 * MS + n * 100_000, src=remote, dst="203.0.113.1", sport=80,
                   dport=port, proto=UDP)
               for n, (remote, port) in enumerate((r, p) for r in remotes[16:] for p in range(1024, 1056))]
    return requests, replies


def test_flows_that_expire_and_come_back_on_other_cores_are_equivalent(nat_program):
    """After NAT's flows expire, new flows get the freed external ports in
    another order per core than the sequential NF's: a sequential port then
    stands for another parallel one (a new binding when both runs allocate).
    Replies from each new remote to every port: the one to its own flow's
    port is translated, the others name a flow of another remote (perhaps
    on another core) and are dropped, by both runs (found in CI: the
    verifier once re-addressed them with a value map that ignored time and
    cores, and said DIFFERENT on a correct program)."""
    analysis, program = nat_program
    requests, replies = _expiring_flows_and_replies()
    verdict, _ = verify_program(program, analysis, requests + replies)
    assert verdict.equivalent, verdict.to_json()
    assert verdict.allowed["re-addressed replies"] and verdict.allowed["state-chosen values"], verdict.to_json()
    translated = [i for i, ids in verdict.reference_coverage.taken.items() if i >= len(requests)
                  and any(p.device == [1] and p.outputs == [0] for p in analysis.paths if p.id in ids)]
    assert len(translated) == 16  # each new remote's own reply, on its core


def test_a_reply_names_no_flow_on_a_core_its_flow_does_not_live_on():
    """readdress: a reply naming the sequential port of a flow on core 1
    but sent to core 0 gets a port core 0 never chose (so no flow there
    answers it); sent to core 1 it gets the flow's parallel port; once the
    parallel port is given to another flow, the old sequential port is
    stale and names no flow either (a port core 1 never chose)."""
    wan = [pkt(WAN, t, src="198.51.100.1", dst="203.0.113.1", sport=80, dport=1024, proto=UDP)
           for t in range(4)]
    bindings = [Binding(0, b"\x04\x00", 1, b"\x04\x05"), Binding(0, b"\x04\x01", 0, b"\x04\x00"),
                Binding(2, b"\x04\x07", 1, b"\x04\x05"), Binding(2, b"\x04\x09", 1, b"\x04\x00")]
    out, changed = readdress(wan, {1: {"l4.dport"}}, bindings, {1: 0, 2: 1, 3: 1})
    ports = [bytes(p.data[36:38]) for p in out]
    assert ports[0] == b"\x04\x00" and 0 not in changed  # before any binding: unused on core 0
    assert ports[1] == b"\x04\x01"  # 0x0400 is core 0's port of another flow: the next unused one
    assert ports[2] == b"\x04\x05"  # the flow's own port on its core
    assert ports[3] == b"\x04\x01" and changed[3] == {"l4.dport"}  # 0x0405 was given again


def test_a_nat_whose_wan_key_sends_replies_to_another_core_is_caught(tmp_path, monkeypatch):
    """NAT sharded with a WAN key that hashes the remote endpoint otherwise
    than the LAN key: replies reach a core their flow does not live on.
    generate refuses the plan (z3); made anyway, the verifier re-addresses
    each reply for its own core, where no flow answers it, and says
    DIFFERENT (the sequential NF translates it)."""
    analysis = Analysis.load(FIXTURES / "nat.json")
    doc = plan(analysis, 2, "e810").to_json()
    doc["rss"]["1"]["key"] = "".join(reversed(doc["rss"]["1"]["key"]))
    monkeypatch.setattr(generator, "check_plan_matches", lambda *args: None)
    program = generate("nat", doc, analysis, tmp_path / "nat-wrong")
    monkeypatch.undo()
    build(program)
    requests, replies = _expiring_flows_and_replies()
    verdict, _ = verify_program(program, analysis, requests + replies)
    assert not verdict.equivalent and verdict.first_difference["device"] == WAN, verdict.to_json()
    assert "sequential output 0, parallel drop" in verdict.first_difference["what"]


def test_a_serial_order_whose_time_goes_back_is_named():
    """A sharded table expires by its core's clock: a difference after a
    packet the serial order runs behind a later-stamped one is explained by
    that packet."""
    trace = [TracePacket(0, t, b"\0" * 60) for t in (10, 20, 30, 40)]
    assert time_goes_back(trace, [0, 1, 2, 3], 3) is None
    assert time_goes_back(trace, [0, 2, 1, 3], 3) == 1  # 1 (t=20) committed after 2 (t=30)
    assert time_goes_back(trace, [0, 2, 1, 3], 2) is None  # nothing went back before packet 2
    assert time_goes_back(trace, [1, 0, 3, 2], 2) == 2  # the nearest before the difference


def test_the_serial_order_keeps_the_commit_order_only_where_packets_conflict():
    """Packets that touched no shared object another one wrote go in trace
    time; a write keeps its commit order with what touched the object
    before it, and each core keeps its own order."""
    trace = [TracePacket(0, t, b"\0" * 60) for t in (30, 10, 20)]
    parallel = [ParallelResult(0, 0, 0, b"", worker=0, order=0, reads=0b1, writes=0),
                ParallelResult(1, 0, 0, b"", worker=1, order=1, reads=0, writes=0),
                ParallelResult(2, 0, 0, b"", worker=1, order=2, reads=0b1, writes=0b1)]
    assert serial_order(parallel, trace) == [1, 0, 2]  # 2 wrote what 0 read: after it
    assert serial_order(parallel) == [0, 1, 2]  # without times: the commit order
    unknown = [replace(p, reads=-1, writes=-1) for p in parallel]  # a run that did not say
    assert serial_order(unknown, trace) == [0, 1, 2]
    read_only = [replace(p, writes=0) for p in parallel]
    assert serial_order(read_only, trace) == [1, 2, 0]  # readers only: 2 stays behind 1, its core's
    lost = [replace(parallel[1], output=None)] + [parallel[0], parallel[2]]
    assert serial_order(lost, trace)[-1] == 1


def test_a_verification_run_commits_in_trace_time(fw_locks):
    """The simulated NIC paces the cores by the trace's time (simnic.h
    sim_paced): the commit order never goes back in time, though both
    cores worked."""
    _, trace, parallel = fw_locks
    committed = sorted(parallel, key=lambda p: p.order)
    stamps = [trace[p.index].time_ns for p in committed]
    assert stamps == sorted(stamps)
    assert {p.worker for p in parallel} == {0, 1}
