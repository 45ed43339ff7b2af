"""Behaviour of the corpus NFs (tests/corpus/*.c) through the reference runner.

The corpus is written the way DPDK / libVig engineers write NFs (state
structs, CRC32 hashing, branch-free key comparisons, plain globals, lazy
expiry) to catch soundness bugs in the analysis and the parallelizer.  These
tests pin down what each NF does, from the spec comment at the top of its
file, so that a parallel version can be compared with a known-good
sequential one.  Each spec's "Expected plan" line says what a correct
parallelizer must do with it (tests/corpus/README.md has the table).
"""
from __future__ import annotations

import random
import struct
from pathlib import Path

import dpkt
import pytest

from codegen.packets import ICMP, make_packet
from codegen.reference import run_reference
from codegen.trace import TracePacket
from codegen.traffic import generate
from tests.nf_helpers import (
    LAN, MS, NF_DROP, TCP, UDP, US, WAN, checksums_valid, mac,
    malformed_frames, outputs, parse, pkt, run, with_ip_field,
)

CORPUS = Path(__file__).parent / "corpus"
NAMES = sorted(p.stem for p in CORPUS.glob("*.c"))


def go(name: str, packets, defines=None, *, sanitize=False):
    """Per-packet results of `packets` through tests/corpus/<name>.c."""
    return run(CORPUS / f"{name}.c", packets, defines, sanitize=sanitize)


def out(name: str, packets, defines=None) -> list[int]:
    return outputs(go(name, packets, defines))


def ip_header_valid(data: bytes) -> bool:
    ihl = (data[14] & 0x0F) * 4
    return dpkt.in_cksum(data[14:14 + ihl]) == 0


def test_every_corpus_nf_has_a_spec_and_an_expected_plan():
    assert len(NAMES) >= 8
    for name in NAMES:
        text = (CORPUS / f"{name}.c").read_text()
        comment = text[:text.index("*/")]
        assert comment.lstrip().startswith(f"/*\n * {name} -- "), name
        for section in ("Spec", "State", "Config", "Expected plan:"):
            assert section in comment, (name, section)


# --------------------------------------------------------------------------
# vfw
# --------------------------------------------------------------------------

FW = {"FW_EXPIRATION_TIME": 1 * MS}
IN, OUT = "10.0.0.5", "8.8.8.8"


def lan_flow(t, sport=5000, dport=53, proto=UDP, src=IN, dst=OUT, **kw):
    return pkt(LAN, t, src=src, dst=dst, sport=sport, dport=dport, proto=proto, **kw)


def reply(t, sport=53, dport=5000, proto=UDP, src=OUT, dst=IN, **kw):
    return pkt(WAN, t, src=src, dst=dst, sport=sport, dport=dport, proto=proto, **kw)


def test_vfw_passes_replies_only_to_flows_the_lan_opened():
    packets = [reply(0), lan_flow(10 * US), reply(20 * US),
               lan_flow(30 * US, proto=TCP), reply(40 * US, proto=TCP)]
    results = go("vfw", packets, FW)
    assert outputs(results) == [NF_DROP, WAN, LAN, WAN, LAN]
    assert [r.data for r in results] == [p.data for p in packets]


def test_vfw_reply_must_match_every_field_of_the_reversed_five_tuple():
    packets = [lan_flow(0)] + [
        reply(10 * US, sport=54), reply(20 * US, dport=5001), reply(30 * US, src="8.8.4.4"),
        reply(40 * US, dst="10.0.0.6"), reply(50 * US, proto=TCP),
        pkt(WAN, 60 * US, src=IN, dst=OUT, sport=5000, dport=53),  # not reversed
        reply(70 * US),
    ]
    assert out("vfw", packets, FW) == [WAN] + [NF_DROP] * 6 + [LAN]


def test_vfw_keeps_many_flows_apart():
    # 200 flows that differ in one field at a time; each reply finds its own.
    flows = [lan_flow(i, sport=6000 + i % 50, dst=f"8.8.{i // 50}.8") for i in range(200)]
    replies = [reply(1000 + i, dport=6000 + i % 50, src=f"8.8.{i // 50}.8") for i in range(200)]
    strays = [reply(2000 + i, dport=6000 + i % 50, src=f"8.8.{i // 50 + 4}.8") for i in range(50)]
    assert out("vfw", flows + replies + strays, FW) == [WAN] * 200 + [LAN] * 200 + [NF_DROP] * 50


def test_vfw_finds_ports_after_ip_options():
    opts = b"\x01\x01\x01\x00"
    packets = [lan_flow(0, ip_options=opts), reply(10 * US), reply(20 * US, sport=54, ip_options=opts),
               lan_flow(30 * US, sport=7000), reply(40 * US, dport=7000, ip_options=opts)]
    assert out("vfw", packets, FW) == [WAN, LAN, NF_DROP, WAN, LAN]


def test_vfw_refreshes_from_both_sides_and_forgets_idle_flows():
    packets = [
        lan_flow(0),
        reply(600 * US),    # refreshes
        reply(1400 * US),   # idle 0.8 ms: alive
        lan_flow(2200 * US),  # idle 0.8 ms: alive, refreshes
        reply(3000 * US),   # idle 0.8 ms
        reply(4100 * US),   # idle 1.1 ms: forgotten
        lan_flow(4200 * US), reply(4300 * US),
    ]
    assert out("vfw", packets, FW) == [WAN, LAN, LAN, WAN, LAN, NF_DROP, WAN, LAN]


def test_vfw_full_table_drops_new_flows_only():
    packets = [lan_flow(0, sport=1), lan_flow(1, sport=2), lan_flow(2, sport=3),
               lan_flow(3, sport=1), reply(4, dport=3), reply(5, dport=2),
               pkt(LAN, 6, src=IN, dst=OUT, proto=ICMP)]
    assert out("vfw", packets, {**FW, "FW_CAPACITY": 2}) == [
        WAN, WAN, NF_DROP, WAN, NF_DROP, LAN, NF_DROP]


# --------------------------------------------------------------------------
# vnat
# --------------------------------------------------------------------------

EXT = "203.0.113.1"
NAT = {"NAT_START_PORT": 2000, "NAT_CAPACITY": 16, "NAT_EXPIRATION_TIME": 1 * MS}
NAT_PORTS = range(2000, 2016)


def nat_out(t, sport=5000, dport=53, proto=UDP, src=IN, dst=OUT, **kw):
    return pkt(LAN, t, src=src, dst=dst, sport=sport, dport=dport, proto=proto,
               payload=b"hello nat", **kw)


def nat_in(t, dport, sport=53, proto=UDP, src=OUT, dst=EXT, **kw):
    return pkt(WAN, t, src=src, dst=dst, sport=sport, dport=dport, proto=proto,
               payload=b"hello back", **kw)


def test_vnat_rewrites_the_source_and_keeps_checksums_valid():
    for proto in (UDP, TCP):
        packets = [nat_out(0, proto=proto), nat_out(1, proto=proto), nat_out(2, proto=proto, sport=5001)]
        results = go("vnat", packets, NAT)
        assert outputs(results) == [WAN] * 3
        before, after = parse(packets[0].data), parse(results[0].data)
        assert (after.src, after.dst, after.dport, after.proto) == (EXT, OUT, 53, proto)
        assert after.sport in NAT_PORTS
        assert (after.eth_src, after.eth_dst) == (before.eth_src, before.eth_dst)
        assert results[0].data.find(b"hello nat") == packets[0].data.find(b"hello nat") > 0
        assert all(checksums_valid(r.data) for r in results)
        assert parse(results[1].data).sport == after.sport
        assert parse(results[2].data).sport in NAT_PORTS and parse(results[2].data).sport != after.sport


def test_vnat_translates_replies_back():
    for proto in (UDP, TCP):
        port = parse(go("vnat", [nat_out(0, proto=proto)], NAT)[0].data).sport
        results = go("vnat", [nat_out(0, proto=proto), nat_in(10 * US, port, proto=proto)], NAT)
        assert outputs(results) == [WAN, LAN]
        back = parse(results[1].data)
        assert (back.src, back.sport, back.dst, back.dport) == (OUT, 53, IN, 5000)
        assert checksums_valid(results[1].data)


def test_vnat_wan_packet_must_match_the_flows_remote_end():
    port = parse(go("vnat", [nat_out(0)], NAT)[0].data).sport
    unused = next(p for p in NAT_PORTS if p != port)
    packets = [nat_out(0)] + [
        nat_in(10 * US, unused), nat_in(20 * US, 1999), nat_in(30 * US, 2016),
        nat_in(40 * US, port, src="8.8.4.4"),      # remote address differs
        nat_in(50 * US, port, sport=54),           # remote port differs
        nat_in(60 * US, port, proto=TCP),          # protocol differs
        nat_in(70 * US, port, dst="203.0.113.2"),  # not our address
        nat_in(80 * US, port),
    ]
    assert out("vnat", packets, NAT) == [WAN] + [NF_DROP] * 7 + [LAN]


def test_vnat_one_port_per_flow_and_drops_when_out_of_ports():
    flows = [nat_out(i, sport=4000 + i) for i in range(16)]
    flows += [nat_out(16, src="10.0.0.9", sport=4000), nat_out(17, sport=4000)]
    results = go("vnat", flows, NAT)
    assert outputs(results) == [WAN] * 16 + [NF_DROP, WAN]
    ports = [parse(r.data).sport for r in results[:16]]
    assert sorted(ports) == list(NAT_PORTS)
    assert parse(results[17].data).sport == ports[0]
    back = go("vnat", flows[:16] + [nat_in(100 + i, ports[i]) for i in range(16)], NAT)[16:]
    assert [parse(r.data).dport for r in back] == [4000 + i for i in range(16)]


def test_vnat_zero_udp_checksum_and_ip_options():
    frame = make_packet(IN, OUT, 5000, 53, UDP, payload=b"x")
    no_csum = TracePacket(LAN, 0, with_ip_field(frame, 14 + 20 + 6, b"\0\0", fix_csum=False))
    opts = TracePacket(LAN, 1, make_packet(IN, OUT, 5001, 53, TCP, ip_options=b"\x01\x01\x01\x00"))
    results = go("vnat", [no_csum, opts], NAT)
    assert outputs(results) == [WAN, WAN]
    assert parse(results[0].data).l4_csum == 0 and checksums_valid(results[0].data)
    o = parse(results[1].data)
    assert (o.ihl, o.src, o.dport) == (24, EXT, 53) and o.sport in NAT_PORTS
    assert checksums_valid(results[1].data)


def test_vnat_forgets_idle_flows_and_reuses_their_port():
    defines = {**NAT, "NAT_CAPACITY": 1}
    port = parse(go("vnat", [nat_out(0)], defines)[0].data).sport
    packets = [nat_out(0), nat_in(700 * US, port), nat_in(1500 * US, port),
               nat_out(1600 * US, sport=5001),     # no port left: the first flow lives
               nat_out(2700 * US, sport=5001),     # first flow idle 1.2 ms: its port is free
               nat_in(2800 * US, port)]            # the old reply: the port is the new flow's
    results = go("vnat", packets, defines)
    assert outputs(results) == [WAN, LAN, LAN, NF_DROP, WAN, LAN]
    assert parse(results[4].data).sport == port
    assert parse(results[5].data).dport == 5001


# --------------------------------------------------------------------------
# maglev
# --------------------------------------------------------------------------

LB = {"LB_BACKEND_EXPIRATION": 10 * MS, "LB_FLOW_EXPIRATION": 1000 * MS}
VIP = "192.0.2.100"
BACKENDS = {f"10.1.0.{i}": f"02:00:00:00:01:{i:02x}" for i in (1, 2, 3)}
B1, B2, B3 = BACKENDS


def heartbeat(t, backend, **kw):
    return pkt(LAN, t, src=backend, dst="10.1.255.255", sport=9, dport=9,
               src_mac=BACKENDS[backend], **kw)


def client(t, n, proto=TCP, **kw):
    return pkt(WAN, t, src=f"198.51.100.{n % 250 + 1}", dst=VIP, sport=10000 + n, dport=80,
               proto=proto, payload=b"GET /", **kw)


def served_by(result):
    frame = parse(result.data)
    assert result.output == LAN
    assert frame.dst in BACKENDS and mac(BACKENDS[frame.dst]) == frame.eth_dst
    assert checksums_valid(result.data)
    return frame.dst


def fresh_choice(n_clients=40):
    """Backend of each new flow with B1, B2 and B3 alive."""
    beats = [heartbeat(0, B1), heartbeat(1, B2), heartbeat(2, B3)]
    results = go("maglev", beats + [client(1 * MS + n, n) for n in range(n_clients)], LB)
    return [served_by(r) for r in results[3:]]


def test_maglev_needs_a_backend_and_forwards_heartbeats():
    packets = [client(0, 1), heartbeat(1 * US, B1), client(2 * US, 1)]
    results = go("maglev", packets, LB)
    assert outputs(results) == [NF_DROP, WAN, LAN]
    assert results[1].data == packets[1].data
    assert served_by(results[2]) == B1
    frame, before = parse(results[2].data), parse(packets[2].data)
    assert (frame.src, frame.sport, frame.dport, frame.eth_src) == (
        before.src, before.sport, before.dport, before.eth_src)


def test_maglev_spreads_flows_and_keeps_each_on_its_backend():
    beats = [heartbeat(0, B1), heartbeat(1, B2)]
    first = [client(1 * MS + n * US, n, proto=UDP if n % 2 else TCP) for n in range(40)]
    again = [client(5 * MS + n * US, n, proto=UDP if n % 2 else TCP) for n in range(40)]
    results = go("maglev", beats + first + again, LB)
    chosen = [served_by(r) for r in results[2:42]]
    assert set(chosen) == {B1, B2}
    assert [served_by(r) for r in results[42:]] == chosen


def test_maglev_flow_key_ignores_ttl_and_flows_stick_when_a_backend_joins():
    fresh = fresh_choice()
    movers = [n for n, b in enumerate(fresh) if b == B3]
    assert movers
    packets = [heartbeat(0, B1), heartbeat(1, B2)]
    packets += [client(1 * MS + i, n, ttl=64) for i, n in enumerate(movers)]
    packets += [heartbeat(2 * MS, B3)]
    packets += [client(3 * MS + i, n, ttl=9) for i, n in enumerate(movers)]  # same flows, other TTL
    packets += [client(4 * MS + i, 100 + n) for i, n in enumerate(range(40))]
    results = go("maglev", packets, LB)
    k = len(movers)
    before = [served_by(r) for r in results[2:2 + k]]
    assert B3 not in before
    assert [served_by(r) for r in results[3 + k:3 + 2 * k]] == before
    assert B3 in [served_by(r) for r in results[3 + 2 * k:]]


def test_maglev_full_flow_table_still_balances_but_does_not_remember():
    fresh = fresh_choice()
    movers = [n for n, b in enumerate(fresh) if b == B3][:3]
    assert len(movers) == 3
    packets = [heartbeat(0, B1), heartbeat(1, B2)]
    packets += [client(1 * MS + i, n) for i, n in enumerate(movers)]
    packets += [heartbeat(2 * MS, B3)]
    packets += [client(3 * MS + i, n) for i, n in enumerate(movers)]
    results = go("maglev", packets, {**LB, "LB_FLOW_CAPACITY": 1})
    before = [served_by(r) for r in results[2:5]]
    after = [served_by(r) for r in results[6:9]]
    assert B3 not in before
    assert after == [before[0], B3, B3]  # only the first flow was recorded


def test_maglev_flow_moves_when_its_backend_expires():
    start = [heartbeat(0, B1), heartbeat(1, B2), client(1 * MS, 7)]
    chosen = served_by(go("maglev", start, LB)[2])
    other = B2 if chosen == B1 else B1
    packets = start + [heartbeat(5 * MS, other), client(9 * MS, 7),      # chosen idle 9 ms
                       heartbeat(10 * MS, other), client(11 * MS, 7),    # chosen idle 11 ms: gone
                       heartbeat(12 * MS, chosen), client(13 * MS, 7)]   # back, but the flow stays
    results = go("maglev", packets, LB)
    assert [served_by(r) for r in results if r.device == WAN] == [chosen, chosen, other, other]


def test_maglev_zero_udp_checksum_and_ip_options():
    zero = with_ip_field(client(0, 3, proto=UDP).data, 14 + 20 + 6, b"\0\0", fix_csum=False)
    opts = b"\x01\x01\x01\x00"
    packets = [heartbeat(0, B1, ip_options=opts),  # dropped: not registered
               client(1, 3),
               heartbeat(2, B1),
               client(3, 3, ip_options=opts),      # dropped
               TracePacket(WAN, 4, zero), client(5, 4, proto=UDP)]
    results = go("maglev", packets, LB)
    assert outputs(results) == [NF_DROP, NF_DROP, WAN, NF_DROP, LAN, LAN]
    assert parse(results[4].data).l4_csum == 0 and served_by(results[4]) == B1
    assert served_by(results[5]) == B1


def test_maglev_forgets_idle_flows():
    defines = {"LB_BACKEND_EXPIRATION": 100 * MS, "LB_FLOW_EXPIRATION": 5 * MS}
    fresh = fresh_choice()
    packets = [heartbeat(0, B1), heartbeat(1, B2)]
    packets += [client(1 * MS + n * US, n) for n in range(40)]
    packets += [heartbeat(2 * MS, B3)]
    packets += [client(4 * MS + n * US, n) for n in range(40)]   # idle 3 ms: remembered
    packets += [client(20 * MS + n * US, n) for n in range(40)]  # idle 16 ms: balanced afresh
    results = go("maglev", packets, defines)
    first = [served_by(r) for r in results[2:42]]
    assert [served_by(r) for r in results[43:83]] == first
    assert [served_by(r) for r in results[83:]] == fresh


# --------------------------------------------------------------------------
# connlimit: at most 3 new flows per (src, dst) pair
# --------------------------------------------------------------------------

CL = {"CL_MAX_FLOWS": 3, "CL_EXPIRATION_TIME": 1 * MS, "CL_SKETCH_CAPACITY": 1024}


def cl_flow(t, sport, src="10.0.0.1", dst="1.1.1.1", dport=80, proto=TCP):
    return pkt(LAN, t, src=src, dst=dst, sport=sport, dport=dport, proto=proto)


def test_connlimit_refuses_the_flow_over_the_pair_limit():
    packets = [cl_flow(i * US, 1000 + i) for i in range(3)]
    packets += [cl_flow(10 * US, 1003), cl_flow(11 * US, 1003)]
    packets += [cl_flow(12 * US, 1000), cl_flow(13 * US, 1002)]
    packets += [cl_flow(14 * US, 1000, dport=81), cl_flow(15 * US, 1000, proto=UDP)]
    results = go("connlimit", packets, CL)
    assert outputs(results) == [WAN] * 3 + [NF_DROP] * 2 + [WAN] * 2 + [NF_DROP] * 2
    assert [r.data for r in results] == [p.data for p in packets]


def test_connlimit_limits_each_pair_and_never_the_wan():
    packets = [cl_flow(i * US, 1000 + i) for i in range(4)]
    packets += [cl_flow(10 * US + i * US, 1000 + i, dst="2.2.2.2") for i in range(3)]
    packets += [cl_flow(20 * US + i * US, 1000 + i, src="10.0.0.2") for i in range(3)]
    packets += [pkt(WAN, 30 * US + i * US, src="1.1.1.1", dst="10.0.0.1", sport=80,
                    dport=2000 + i, proto=TCP) for i in range(10)]
    packets += [TracePacket(WAN, 50 * US, b"\x00" * 20)]
    assert out("connlimit", packets, CL) == [WAN] * 3 + [NF_DROP] + [WAN] * 6 + [LAN] * 11


def test_connlimit_pair_allowed_again_after_its_buckets_expire():
    packets = [cl_flow(i * US, 1000 + i) for i in range(4)]
    packets += [cl_flow(2 * MS, 1003)]
    packets += [cl_flow(2 * MS + i * US, 1010 + i) for i in range(1, 4)]
    assert out("connlimit", packets, CL) == [WAN] * 3 + [NF_DROP] + [WAN] * 3 + [NF_DROP]


def test_connlimit_known_flows_keep_their_pairs_count_alive():
    # Only flow 1000 stays active; 1001 and 1002 expire, but the pair's count
    # is of flows opened, and the active flow refreshes its buckets.
    packets = [cl_flow(i * US, 1000 + i) for i in range(3)]
    packets += [cl_flow(k * 600 * US, 1000) for k in range(1, 6)]
    packets += [cl_flow(3 * MS + 100 * US, 1003)]
    assert out("connlimit", packets, CL) == [WAN] * 3 + [WAN] * 5 + [NF_DROP]


def test_connlimit_caps_the_flows_tracked_at_once():
    defines = {**CL, "CL_MAX_LIVE": 4}
    packets = [cl_flow(i * US, 1000, dst=f"1.1.1.{i + 1}") for i in range(4)]  # A B C D
    packets += [cl_flow(10 * US, 1000, dst="1.1.1.5")]    # E: 4 flows tracked
    packets += [cl_flow(20 * US, 1000, dst="1.1.1.1")]    # A is known
    packets += [cl_flow(600 * US, 1000, dst="1.1.1.1")]   # A refreshed
    # At 1.5 ms B, C, D are 1.5 ms idle and forgotten, A (0.9 ms) lives: 1 tracked.
    packets += [cl_flow(1500 * US + i, 1000, dst=f"1.1.1.{5 + i}") for i in range(4)]
    assert out("connlimit", packets, defines) == [WAN] * 4 + [NF_DROP] + [WAN] * 2 + [WAN] * 3 + [NF_DROP]


def test_connlimit_flow_refused_by_the_cap_is_not_counted_for_its_pair():
    defines = {**CL, "CL_MAX_LIVE": 3}
    packets = [cl_flow(0, 1), cl_flow(1, 2), cl_flow(2, 1, dst="2.2.2.2")]  # P1 P2 Q1
    packets += [cl_flow(10 * US, 3)]                     # P3: cap reached
    packets += [cl_flow(600 * US, 1), cl_flow(601 * US, 2)]  # P1 P2 alive, P's buckets too
    packets += [cl_flow(1500 * US, 3)]                   # Q1 forgotten: P3 is P's 3rd flow
    packets += [cl_flow(1501 * US, 4, dst="3.3.3.3")]    # cap again
    assert out("connlimit", packets, defines) == [WAN] * 3 + [NF_DROP] + [WAN] * 3 + [NF_DROP]


def test_connlimit_full_table_drops_new_flows():
    packets = [cl_flow(0, 1, dst="1.1.1.1"), cl_flow(1, 1, dst="2.2.2.2"),
               cl_flow(2, 1, dst="3.3.3.3"), cl_flow(3, 1, dst="1.1.1.1")]
    assert out("connlimit", packets, {**CL, "CL_CAPACITY": 2}) == [WAN, WAN, NF_DROP, WAN]


# --------------------------------------------------------------------------
# csum_loop / csum_helper: identical specs
# --------------------------------------------------------------------------

GUARD = {"GUARD_MAX_BAD": 3, "GUARD_EXPIRATION": 1 * MS}
CSUM_NFS = ("csum_loop", "csum_helper")


def l4_csum_off(frame: bytes) -> int:
    ihl = (frame[14] & 0x0F) * 4
    return 14 + ihl + (16 if frame[23] == TCP else 6)


def correct_l4_csum(frame: bytes) -> int:
    """The L4 checksum of `frame` over ipv4.len, as dpkt computes it (0 may come out)."""
    ihl = (frame[14] & 0x0F) * 4
    total = struct.unpack("!H", frame[16:18])[0]
    seg = bytearray(frame[14 + ihl:14 + total])
    off = l4_csum_off(frame) - 14 - ihl
    seg[off:off + 2] = b"\0\0"
    pseudo = frame[26:34] + struct.pack("!BBH", 0, frame[23], len(seg))
    return dpkt.in_cksum(pseudo + bytes(seg))


def set_l4_csum(frame: bytes, value: int) -> bytes:
    off = l4_csum_off(frame)
    return frame[:off] + struct.pack("!H", value) + frame[off + 2:]


def stored_csum(frame: bytes) -> int:
    off = l4_csum_off(frame)
    return struct.unpack("!H", frame[off:off + 2])[0]


def zero_sum_frame(proto) -> bytes:
    """A frame whose L4 checksum computes to 0 (payload word chosen for it)."""
    base = make_packet("10.0.0.1", "10.0.0.2", 1234, 5678, proto, payload=b"\0\0abc")
    word = correct_l4_csum(base)
    frame = make_packet("10.0.0.1", "10.0.0.2", 1234, 5678, proto,
                        payload=struct.pack("!H", word) + b"abc")
    assert correct_l4_csum(frame) == 0
    return frame


def wan(t, frame):
    return TracePacket(WAN, t, frame)


def bad(frame):
    return set_l4_csum(frame, stored_csum(frame) ^ 0x0101)


@pytest.mark.parametrize("name", CSUM_NFS)
def test_csum_fills_in_the_lan_checksum_over_the_whole_segment(name):
    frames = [
        make_packet(IN, OUT, 5000, 53, UDP, payload=b"odd"),          # odd length
        make_packet(IN, OUT, 5000, 80, TCP, payload=bytes(range(200)) * 7),
        make_packet(IN, OUT, 5000, 80, TCP, payload=b"x" * 33, ip_options=b"\x01\x01\x01\x00"),
        make_packet(IN, OUT, 5000, 53, UDP, payload=b"pad"),          # padded to 60 bytes
        make_packet(IN, OUT, 5000, 53, UDP, payload=b"tail") + b"\xff\xfe\xfd",  # trailer
    ]
    packets = [TracePacket(LAN, i, set_l4_csum(f, 0xdead)) for i, f in enumerate(frames)]
    results = go(name, packets, GUARD)
    assert outputs(results) == [WAN] * len(frames)
    for frame, r in zip(frames, results):
        assert checksums_valid(r.data)
        assert stored_csum(r.data) == correct_l4_csum(frame)
        off = l4_csum_off(frame)
        assert r.data[:off] == frame[:off] and r.data[off + 2:] == frame[off + 2:]


@pytest.mark.parametrize("name", CSUM_NFS)
def test_csum_a_zero_result_is_0xffff_for_udp_and_0_for_tcp(name):
    packets = [TracePacket(LAN, 0, set_l4_csum(zero_sum_frame(UDP), 0x1234)),
               TracePacket(LAN, 1, set_l4_csum(zero_sum_frame(TCP), 0x1234))]
    results = go(name, packets, GUARD)
    assert outputs(results) == [WAN, WAN]
    assert [stored_csum(r.data) for r in results] == [0xFFFF, 0]
    # Both forms verify on the WAN side.
    back = go(name, [wan(0, results[0].data), wan(1, results[1].data)], GUARD)
    assert outputs(back) == [LAN, LAN]


@pytest.mark.parametrize("name", CSUM_NFS)
def test_csum_checks_wan_packets_and_blocks_repeat_offenders(name):
    good = make_packet("6.6.6.6", IN, 53, 5000, UDP, payload=b"reply")
    good_tcp = make_packet("6.6.6.6", IN, 80, 5000, TCP, payload=b"x" * 11)
    other = make_packet("7.7.7.7", IN, 53, 5000, UDP, payload=b"reply")
    nocsum = set_l4_csum(good, 0)
    packets = [wan(0, good), wan(1, good_tcp), wan(2, nocsum),
               wan(3, bad(good)), wan(4, bad(good_tcp)), wan(5, good),   # 2 bad: not blocked
               wan(6, bad(good)),                                        # 3rd bad: blocked
               wan(7, good), wan(8, nocsum), wan(9, other), wan(10, bad(other)), wan(11, other)]
    results = go(name, packets, GUARD)
    assert outputs(results) == [LAN, LAN, LAN, NF_DROP, NF_DROP, LAN, NF_DROP,
                                NF_DROP, NF_DROP, LAN, NF_DROP, LAN]
    assert [r.data for r in results] == [p.data for p in packets]


@pytest.mark.parametrize("name", CSUM_NFS)
def test_csum_block_lasts_until_the_last_bad_packet_expires(name):
    good = make_packet("6.6.6.6", IN, 53, 5000, UDP, payload=b"reply")
    packets = [wan(0, bad(good)), wan(600 * US, bad(good)), wan(1200 * US, bad(good)),  # refreshed
               wan(1300 * US, good),     # blocked
               wan(2100 * US, good),     # still blocked: blocked drops do not refresh
               wan(2201 * US, good)]     # last bad packet 1.001 ms ago: forgotten
    assert out(name, packets, GUARD) == [NF_DROP] * 5 + [LAN]
    # Without a refresh inside the window, the count restarts.
    spaced = [wan(0, bad(good)), wan(1100 * US, bad(good)), wan(2200 * US, bad(good)),
              wan(2300 * US, good)]
    assert out(name, spaced, GUARD) == [NF_DROP] * 3 + [LAN]


@pytest.mark.parametrize("name", CSUM_NFS)
def test_csum_drops_segments_that_do_not_fit_and_full_table_counts_nothing(name):
    udp = make_packet(IN, OUT, 5000, 53, UDP, payload=b"abcdef", size=0)
    tcp = make_packet(IN, OUT, 5000, 80, TCP, size=0)
    long_len = with_ip_field(udp, 16, struct.pack("!H", len(udp) - 14 + 1))    # past the frame
    short_udp = with_ip_field(udp, 16, struct.pack("!H", 20 + 7))               # < UDP header
    short_tcp = with_ip_field(tcp, 16, struct.pack("!H", 20 + 19))              # < TCP header
    packets = [TracePacket(d, i, f) for i, (d, f) in enumerate(
        [(LAN, long_len), (LAN, short_udp), (LAN, short_tcp), (WAN, long_len), (LAN, udp), (LAN, tcp)])]
    assert out(name, packets, GUARD) == [NF_DROP] * 4 + [WAN, WAN]
    a = make_packet("6.6.6.6", IN, 53, 5000, UDP, payload=b"r")
    b = make_packet("7.7.7.7", IN, 53, 5000, UDP, payload=b"r")
    packets = [wan(i, bad(a)) for i in range(3)] + [wan(10 + i, bad(b)) for i in range(3)]
    packets += [wan(20, a), wan(21, b)]
    assert out(name, packets, {**GUARD, "GUARD_CAPACITY": 1}) == [NF_DROP] * 6 + [NF_DROP, LAN]


def test_csum_loop_and_csum_helper_agree_on_random_traffic():
    rng = random.Random(5)
    packets = []
    for i in range(600):
        proto = rng.choice((TCP, UDP))
        frame = make_packet(f"10.0.{rng.randrange(4)}.{rng.randrange(1, 255)}",
                            f"8.8.{rng.randrange(4)}.8", rng.randrange(1, 65536),
                            rng.randrange(1, 65536), proto,
                            payload=bytes(rng.randrange(256) for _ in range(rng.randrange(0, 90))),
                            ip_options=rng.choice((b"", b"", b"\x01\x01\x01\x00")))
        device = rng.choice((LAN, WAN))
        roll = rng.random()
        if roll < 0.3:
            frame = bad(frame)
        elif roll < 0.4:
            frame = set_l4_csum(frame, 0)
        elif roll < 0.45:
            frame = frame + bytes(rng.randrange(256) for _ in range(rng.randrange(1, 9)))
        packets.append(TracePacket(device, i * 10 * US, frame))
    packets += generate("malformed", 50, 400, seed=3, malformed_fraction=0.3, start_ns=10 * MS)
    loop, helper = go("csum_loop", packets, GUARD), go("csum_helper", packets, GUARD)
    assert [(r.output, r.data) for r in loop] == [(r.output, r.data) for r in helper]
    assert {LAN, WAN, NF_DROP} <= set(outputs(loop))


# --------------------------------------------------------------------------
# rare: global packet budget
# --------------------------------------------------------------------------

def test_rare_default_budget_is_6000_packets_over_both_devices():
    frame = make_packet("10.0.0.1", "10.0.0.2", 1, 2)
    packets = [TracePacket(i % 2, i, frame) for i in range(6002)]
    assert out("rare", packets) == [WAN, LAN] * 3000 + [NF_DROP] * 2


def test_rare_every_frame_counts_and_ipv4_within_budget_passes_unchanged():
    arp = mac("ff:ff:ff:ff:ff:ff") + mac("02:00:00:00:00:01") + b"\x08\x06" + bytes(46)
    packets = [pkt(LAN, 0), pkt(WAN, 1), TracePacket(LAN, 2, arp), TracePacket(WAN, 3, b"\x01"),
               pkt(LAN, 4, proto=ICMP), pkt(WAN, 5), pkt(LAN, 6), pkt(WAN, 7)]
    results = go("rare", packets, {"RARE_BUDGET": 6})
    assert outputs(results) == [WAN, LAN, NF_DROP, NF_DROP, WAN, LAN, NF_DROP, NF_DROP]
    assert [r.data for r in results] == [p.data for p in packets]


def test_rare_budget_of_one():
    assert out("rare", [pkt(WAN, 0), pkt(WAN, 1), pkt(LAN, 2)], {"RARE_BUDGET": 1}) == [
        LAN, NF_DROP, NF_DROP]


# --------------------------------------------------------------------------
# proto_limit: per-protocol cap per window
# --------------------------------------------------------------------------

PROTO = {"PROTO_LIMIT": 3, "PROTO_WINDOW": 1 * MS}


def test_proto_limit_caps_each_protocol_over_both_devices():
    packets = [pkt(LAN, 0, proto=UDP), pkt(WAN, 1, proto=UDP, sport=7), pkt(LAN, 2, proto=UDP, src="9.9.9.9"),
               pkt(WAN, 3, proto=UDP, dst="1.2.3.4"),           # 4th UDP: over
               pkt(LAN, 4, proto=TCP), pkt(LAN, 5, proto=TCP), pkt(WAN, 6, proto=TCP),
               pkt(WAN, 7, proto=TCP),                           # 4th TCP
               pkt(LAN, 8, proto=ICMP), pkt(WAN, 9, proto=ICMP)]
    results = go("proto_limit", packets, PROTO)
    assert outputs(results) == [WAN, LAN, WAN, NF_DROP, WAN, WAN, LAN, NF_DROP, WAN, LAN]
    assert [r.data for r in results] == [p.data for p in packets]


def test_proto_limit_counts_other_protocols_and_fragments_by_ipv4_proto():
    gre = with_ip_field(make_packet("10.0.0.1", "10.0.0.2", 1, 2, UDP), 23, bytes([47]))
    frag = with_ip_field(make_packet("10.0.0.1", "10.0.0.2", 1, 2, UDP), 20, struct.pack("!H", 100))
    packets = [TracePacket(LAN, i, gre) for i in range(4)]
    packets += [TracePacket(WAN, 10 + i, frag) for i in range(3)] + [pkt(LAN, 20, proto=UDP)]
    assert out("proto_limit", packets, PROTO) == [WAN] * 3 + [NF_DROP] + [LAN] * 3 + [NF_DROP]


def test_proto_limit_windows_restart_the_count():
    packets = [pkt(LAN, i, proto=UDP) for i in range(3)]
    packets += [pkt(LAN, 1 * MS - 1, proto=UDP)]                      # same window
    packets += [pkt(LAN, 1 * MS + i, proto=UDP) for i in range(4)]    # next window
    packets += [pkt(LAN, 5 * MS, proto=UDP)]                          # a later one
    assert out("proto_limit", packets, PROTO) == [WAN] * 3 + [NF_DROP] + [WAN] * 3 + [NF_DROP, WAN]


def test_proto_limit_does_not_count_frames_that_are_not_ipv4():
    frames = malformed_frames()
    broken = [frames[k][1] for k in ("short_13", "eth_only", "arp", "ip_truncated", "version_6",
                                     "ihl_4", "ihl_15_past_end")]
    packets = [TracePacket(LAN, i, f) for i, f in enumerate(broken)]
    packets += [pkt(LAN, 10 + i, proto=UDP) for i in range(3)]
    assert out("proto_limit", packets, PROTO) == [NF_DROP] * len(broken) + [WAN] * 3


def test_proto_limit_default_is_1000_per_second():
    packets = [pkt(WAN, i * US, proto=UDP, sport=i) for i in range(1001)] + [pkt(WAN, 2 * MS, proto=TCP)]
    packets += [pkt(WAN, 1000 * MS, proto=UDP)]
    assert out("proto_limit", packets) == [LAN] * 1000 + [NF_DROP, LAN, LAN]


# --------------------------------------------------------------------------
# dst_limit: per-host (low byte of ipv4.dst) cap per window, WAN only
# --------------------------------------------------------------------------

DST = {"DST_LIMIT": 3, "DST_WINDOW": 1 * MS}


def inbound(t, dst, src="1.2.3.4", **kw):
    return pkt(WAN, t, src=src, dst=dst, **kw)


def test_dst_limit_caps_inbound_packets_per_host_byte():
    packets = [inbound(0, "10.0.0.7"), inbound(1, "10.0.0.7", src="5.5.5.5"),
               inbound(2, "10.0.0.7", proto=TCP),
               inbound(3, "10.0.0.7", proto=ICMP),       # 4th to .7
               inbound(4, "10.0.0.8"), inbound(5, "10.0.0.8"), inbound(6, "7.0.0.10")]
    results = go("dst_limit", packets, DST)
    assert outputs(results) == [LAN] * 3 + [NF_DROP] + [LAN] * 3
    assert [r.data for r in results] == [p.data for p in packets]


def test_dst_limit_hosts_with_the_same_last_byte_share_a_count():
    packets = [inbound(0, "10.0.0.7"), inbound(1, "10.0.1.7"), inbound(2, "192.168.9.7"),
               inbound(3, "10.0.0.7"), inbound(4, "172.16.0.7"),
               inbound(5, "10.0.7.1"), inbound(6, "7.7.7.6")]  # other hosts: .1, .6
    assert out("dst_limit", packets, DST) == [LAN] * 3 + [NF_DROP] * 2 + [LAN] * 2


def test_dst_limit_lan_is_never_limited_or_parsed():
    packets = [pkt(LAN, i, src="10.0.0.7", dst="10.0.0.7") for i in range(10)]
    packets += [TracePacket(LAN, 20, b"\x01"), TracePacket(LAN, 21, bytes(30))]
    packets += [inbound(30 + i, "10.0.0.7") for i in range(4)]
    assert out("dst_limit", packets, DST) == [WAN] * 12 + [LAN] * 3 + [NF_DROP]


def test_dst_limit_windows_and_malformed_frames():
    frames = malformed_frames(dst="10.0.0.7")
    broken = [TracePacket(WAN, i, frames[k][1]) for i, k in enumerate(
        ("short_13", "arp", "ip_truncated", "ihl_4", "version_6"))]
    packets = broken + [inbound(10 + i, "10.0.0.7") for i in range(4)]
    packets += [inbound(1 * MS + i, "10.0.0.7") for i in range(4)]
    packets += [TracePacket(WAN, 3 * MS, frames["fragment"][1]), TracePacket(WAN, 3 * MS, frames["icmp"][1])]
    assert out("dst_limit", packets, DST) == [NF_DROP] * 5 + ([LAN] * 3 + [NF_DROP]) * 2 + [LAN, LAN]


# --------------------------------------------------------------------------
# quota: per-flow packets per session, lazy expiry with retry
# --------------------------------------------------------------------------

Q = {"QUOTA_PACKETS": 3, "QUOTA_IDLE": 1 * MS}


def up(t, sport=5000, dport=80, src=IN, dst=OUT, proto=TCP, **kw):
    return pkt(LAN, t, src=src, dst=dst, sport=sport, dport=dport, proto=proto, **kw)


def test_quota_caps_each_flow():
    packets = [up(i) for i in range(4)]
    packets += [up(10, sport=5001), up(11, dport=81), up(12, src="10.0.0.6"),
                up(13, dst="8.8.4.4"), up(14, proto=UDP)]
    packets += [up(20)]
    results = go("quota", packets, Q)
    assert outputs(results) == [WAN] * 3 + [NF_DROP] + [WAN] * 5 + [NF_DROP]
    assert [r.data for r in results] == [p.data for p in packets]


def test_quota_stale_session_is_replaced_by_a_fresh_one():
    packets = [up(i) for i in range(4)]                        # quota spent at t=3
    packets += [up(1 * MS + 3)]                                # idle exactly 1 ms: same session
    packets += [up(2 * MS + 4 + i) for i in range(4)]          # idle 1 ms + 1: new session
    assert out("quota", packets, Q) == [WAN] * 3 + [NF_DROP] * 2 + [WAN] * 3 + [NF_DROP]


def test_quota_dropped_packets_keep_the_session_alive():
    packets = [up(i) for i in range(3)]
    packets += [up(k * 600 * US) for k in range(1, 8)]         # every 0.6 ms: still over quota
    packets += [up(7 * 600 * US + 1 * MS + 1)]                 # silence of 1 ms + 1 ns
    assert out("quota", packets, Q) == [WAN] * 3 + [NF_DROP] * 7 + [WAN]


def test_quota_full_table_evicts_only_a_stale_session():
    defines = {**Q, "QUOTA_CAPACITY": 2}
    A, B, C = 1, 2, 3
    packets = [up(0, sport=A), up(1, sport=B),
               up(10 * US, sport=C),            # full, A and B live: dropped
               up(600 * US, sport=A),           # A refreshed (2nd packet)
               up(1100 * US, sport=C),          # B idle 1.099 ms: evicted, C opens
               up(1200 * US, sport=B),          # A and C live: dropped
               up(1300 * US, sport=A),          # A's 3rd packet
               up(1301 * US, sport=A),          # A over quota
               up(1302 * US, sport=C), up(1303 * US, sport=C), up(1304 * US, sport=C)]
    assert out("quota", packets, defines) == [
        WAN, WAN, NF_DROP, WAN, WAN, NF_DROP, WAN, NF_DROP, WAN, WAN, NF_DROP]


def test_quota_cycles_through_many_sessions_in_a_small_table():
    defines = {**Q, "QUOTA_CAPACITY": 2, "QUOTA_PACKETS": 1}
    packets, expected = [], []
    for cycle in range(6):
        t = cycle * 2 * MS
        for sport in (1, 2):
            packets += [up(t + 2 * sport, sport=sport), up(t + 2 * sport + 1, sport=sport)]
            expected += [WAN, NF_DROP]
    assert out("quota", packets, defines) == expected


def test_quota_wan_passes_and_malformed_lan_is_dropped():
    frames = malformed_frames()
    packets = [TracePacket(WAN, 0, b"\x01"), pkt(WAN, 1, proto=ICMP)]
    packets += [TracePacket(LAN, 2 + i, frames[k][1]) for i, k in enumerate(
        ("arp", "ihl_4", "fragment", "icmp", "ports_truncated"))]
    assert out("quota", packets, Q) == [LAN, LAN] + [NF_DROP] * 5


# --------------------------------------------------------------------------
# scrub: TTL floor and a global IPv4 ID sequence
# --------------------------------------------------------------------------

SCRUB = {"SCRUB_MIN_TTL": 64, "SCRUB_FIRST_ID": 100}


def ip_id(data: bytes) -> int:
    return struct.unpack("!H", data[18:20])[0]


def same_but_id_ttl_csum(a: bytes, b: bytes) -> bool:
    def strip(x):
        return x[:18] + x[20:22] + x[23:24] + x[26:]
    return strip(a) == strip(b)


def test_scrub_numbers_lan_packets_in_arrival_order():
    packets = [pkt(LAN, 0, proto=UDP, ip_id=7), pkt(LAN, 1, proto=TCP, src="10.0.0.9", ip_id=7),
               pkt(WAN, 2, ip_id=55), pkt(LAN, 3, proto=ICMP, ip_id=0), pkt(LAN, 4, ip_id=100)]
    results = go("scrub", packets, SCRUB)
    assert outputs(results) == [WAN, WAN, LAN, WAN, WAN]
    assert [ip_id(r.data) for r in results] == [100, 101, 55, 102, 103]
    assert results[2].data == packets[2].data
    for p, r in zip(packets, results):
        assert ip_header_valid(r.data) and same_but_id_ttl_csum(p.data, r.data)
    assert checksums_valid(results[0].data) and checksums_valid(results[1].data)


def test_scrub_raises_low_ttls_only():
    packets = [pkt(LAN, i, ttl=ttl) for i, ttl in enumerate((1, 63, 64, 65, 255))]
    packets += [pkt(WAN, 10, ttl=3)]
    results = go("scrub", packets, SCRUB)
    assert [r.data[22] for r in results] == [64, 64, 64, 65, 255, 3]
    assert all(ip_header_valid(r.data) for r in results)


def test_scrub_fragments_keep_their_id_and_take_no_number():
    base = make_packet(IN, OUT, 1, 2, UDP, ip_id=4242, ttl=10)
    mf = with_ip_field(base, 20, struct.pack("!H", 0x2000))
    later = with_ip_field(base, 20, struct.pack("!H", 0x0010))
    df = with_ip_field(base, 20, struct.pack("!H", 0x4000))
    packets = [TracePacket(LAN, i, f) for i, f in enumerate((mf, base, later, df))]
    results = go("scrub", packets, SCRUB)
    assert outputs(results) == [WAN] * 4
    assert [ip_id(r.data) for r in results] == [4242, 100, 4242, 101]
    assert [r.data[22] for r in results] == [64] * 4
    assert all(ip_header_valid(r.data) for r in results)


def test_scrub_sequence_wraps_and_non_ipv4_passes():
    arp = mac("ff:ff:ff:ff:ff:ff") + mac("02:00:00:00:00:01") + b"\x08\x06" + bytes(46)
    frames = malformed_frames()
    packets = [pkt(LAN, 0), TracePacket(LAN, 1, arp), TracePacket(WAN, 2, arp),
               TracePacket(LAN, 3, frames["ihl_4"][1]), TracePacket(WAN, 4, frames["one_byte"][1]),
               pkt(LAN, 5), pkt(LAN, 6)]
    results = go("scrub", packets, {"SCRUB_FIRST_ID": 65535})
    assert outputs(results) == [WAN, WAN, LAN, NF_DROP, NF_DROP, WAN, WAN]
    assert [ip_id(results[i].data) for i in (0, 5, 6)] == [65535, 0, 1]
    assert results[1].data == arp and results[2].data == arp


# --------------------------------------------------------------------------
# Every corpus NF: malformed frames under ASan + UBSan
# --------------------------------------------------------------------------

def _forward(device):
    return WAN if device == LAN else LAN


def _expect(name, label, category, device):
    if name == "vfw":
        return WAN if (category == "no_csum" and device == LAN) else NF_DROP
    if name in ("vnat", "maglev", "csum_loop", "csum_helper"):
        return NF_DROP
    if name in ("connlimit", "quota"):
        if device == WAN:
            return LAN
        return WAN if category == "no_csum" else NF_DROP
    if name == "rare":
        non_ip_type = category == "not_eth" or label in ("arp", "ipv6_ethertype")
        return NF_DROP if non_ip_type else _forward(device)
    if name == "proto_limit":
        return NF_DROP if category in ("not_eth", "not_ip") else _forward(device)
    if name == "dst_limit":
        if device == LAN:
            return WAN
        return NF_DROP if category in ("not_eth", "not_ip") else LAN
    if name == "scrub":
        if category == "not_eth":
            return NF_DROP
        if label in ("arp", "ipv6_ethertype"):
            return _forward(device)
        return NF_DROP if category == "not_ip" else _forward(device)
    raise AssertionError(f"no expectation for {name}")


@pytest.mark.parametrize("name", NAMES)
def test_malformed_frames_are_survived_and_handled_per_spec(name):
    frames = malformed_frames(src="10.9.9.9", dst="10.8.8.8",
                              src_mac="02:00:00:00:00:0e", dst_mac="02:00:00:00:00:01")
    valid = [pkt(LAN, 0, src="10.9.9.9", dst="10.8.8.8", sport=1111, dport=2222,
                 src_mac="02:00:00:00:00:0e", dst_mac="02:00:00:00:00:01")]
    packets, expected = list(valid), []
    t = 10
    for device in (LAN, WAN):
        for label, (category, data) in frames.items():
            packets.append(TracePacket(device, t, data))
            expected.append((label, device, _expect(name, label, category, device)))
            t += 10
    results = go(name, packets, sanitize=True)
    got = [(label, device, r.output) for (label, device, _), r in zip(expected, results[1:])]
    assert got == expected
    if name != "scrub":  # scrub renumbers LAN IPv4 packets; the others rewrite none of these
        assert [r.data for r in results[1:]] == [p.data for p in packets[1:]]


@pytest.fixture(scope="module")
def malformed_trace():
    return generate("malformed", 300, 4000, seed=7, malformed_fraction=0.15)


@pytest.mark.parametrize("name", NAMES)
def test_survives_malformed_traffic_under_sanitizers(name, malformed_trace):
    result = run_reference(CORPUS / f"{name}.c", malformed_trace, sanitize=True, with_bytes=False)
    totals = result.totals
    assert totals["packets"] == len(malformed_trace) == len(result.results)
    assert totals["invalid"] == 0
    assert totals["forwarded"] + totals["dropped"] + totals["flooded"] == len(malformed_trace)
