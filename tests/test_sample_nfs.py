"""Behaviour of the sample NFs (sample_nfs/*.c) through the reference runner.

Every expectation follows from the spec comment at the top of each NF:
crafted packets with explicit times go in, and the output device, the
rewritten bytes and the checksums are checked against what the spec says.
"""
import pytest

from tests.nf_helpers import (
    LAN, MS, NF_DROP, NF_FLOOD, TCP, UDP, US, WAN, checksums_valid,
    malformed_frames, outputs, parse, pkt, run, with_ip_field,
)
from codegen.packets import make_packet
from codegen.trace import TracePacket


# --------------------------------------------------------------------------
# nop
# --------------------------------------------------------------------------

def test_nop_swaps_devices_and_keeps_bytes():
    packets = [pkt(LAN, 1), pkt(WAN, 2), pkt(WAN, 3, proto=TCP), pkt(LAN, 4, size=1500)]
    results = run("nop", packets)
    assert outputs(results) == [WAN, LAN, LAN, WAN]
    assert [r.data for r in results] == [p.data for p in packets]


# --------------------------------------------------------------------------
# sbridge: default table 02:00:00:00:00:0X on device X % 2, X = 1..4
# --------------------------------------------------------------------------

def M(x: int) -> str:
    return f"02:00:00:00:00:{x:02x}"


def test_sbridge_forwards_known_destinations_to_their_device():
    packets = [
        pkt(LAN, 1, dst_mac=M(1)),  # 01 lives on device 1
        pkt(LAN, 2, dst_mac=M(3)),  # 03 on device 1
        pkt(WAN, 3, dst_mac=M(2)),  # 02 on device 0
        pkt(WAN, 4, dst_mac=M(4)),  # 04 on device 0
    ]
    results = run("sbridge", packets)
    assert outputs(results) == [WAN, WAN, LAN, LAN]
    assert [r.data for r in results] == [p.data for p in packets]


def test_sbridge_drops_unknown_broadcast_and_same_segment_destinations():
    packets = [
        pkt(LAN, 1, dst_mac=M(9)),                 # unknown
        pkt(WAN, 2, dst_mac="ff:ff:ff:ff:ff:ff"),  # broadcast: no flooding
        pkt(LAN, 3, dst_mac=M(2)),                 # 02 is on device 0 already
        pkt(WAN, 4, dst_mac=M(1)),                 # 01 is on device 1 already
    ]
    assert outputs(run("sbridge", packets)) == [NF_DROP] * 4


def test_sbridge_does_not_learn():
    packets = [
        pkt(WAN, 1, src_mac=M(9), dst_mac=M(2)),  # 09 speaks from device 1
        pkt(LAN, 2, src_mac=M(2), dst_mac=M(9)),  # ... but is still unknown
    ]
    assert outputs(run("sbridge", packets)) == [LAN, NF_DROP]


def test_sbridge_table_is_configurable():
    table = "{{0xaa,0xbb,0xcc,0x00,0x00,0x01},0},{{0xaa,0xbb,0xcc,0x00,0x00,0x02},1}"
    packets = [
        pkt(WAN, 1, dst_mac="aa:bb:cc:00:00:01"),
        pkt(LAN, 2, dst_mac="aa:bb:cc:00:00:02"),
        pkt(LAN, 3, dst_mac=M(1)),  # in the default table only
    ]
    assert outputs(run("sbridge", packets, {"SBRIDGE_STATIC_TABLE": table})) == [LAN, WAN, NF_DROP]


# --------------------------------------------------------------------------
# bridge
# --------------------------------------------------------------------------

A, B, C, D = M(0xA), M(0xB), M(0xC), M(0xD)
BRIDGE_EXP = {"BRIDGE_EXPIRATION_TIME": 1 * MS}


def test_bridge_floods_unknown_then_forwards_after_learning():
    packets = [
        pkt(LAN, 1 * US, src_mac=A, dst_mac=B),  # B unknown: flood
        pkt(WAN, 2 * US, src_mac=B, dst_mac=A),  # A learned on LAN
        pkt(LAN, 3 * US, src_mac=A, dst_mac=B),  # B learned on WAN
        pkt(LAN, 4 * US, src_mac=A, dst_mac="ff:ff:ff:ff:ff:ff"),  # broadcast floods
        pkt(LAN, 5 * US, src_mac=C, dst_mac=A),  # A on the input segment: drop
        pkt(LAN, 6 * US, src_mac=A, dst_mac=C),  # C learned on LAN: drop
    ]
    results = run("bridge", packets, BRIDGE_EXP)
    assert outputs(results) == [NF_FLOOD, LAN, WAN, NF_FLOOD, NF_DROP, NF_DROP]
    assert [r.data for r in results] == [p.data for p in packets]


def test_bridge_follows_a_host_that_moved():
    packets = [
        pkt(LAN, 1 * US, src_mac=A, dst_mac=B),
        pkt(WAN, 2 * US, src_mac=B, dst_mac=A),  # A on LAN
        pkt(WAN, 3 * US, src_mac=A, dst_mac=D),  # A moves to WAN
        pkt(WAN, 4 * US, src_mac=B, dst_mac=A),  # now same segment
        pkt(LAN, 5 * US, src_mac=C, dst_mac=A),  # and reachable from LAN
    ]
    assert outputs(run("bridge", packets, BRIDGE_EXP)) == [NF_FLOOD, LAN, NF_FLOOD, NF_DROP, WAN]


def test_bridge_forgets_idle_hosts_and_keeps_active_ones():
    packets = [
        pkt(LAN, 0, src_mac=A, dst_mac=B),
        pkt(WAN, 100 * US, src_mac=B, dst_mac=A),       # A known
        pkt(LAN, 600 * US, src_mac=A, dst_mac=B),       # refreshes A (B: 500 us idle)
        pkt(WAN, 1200 * US, src_mac=D, dst_mac=A),      # A refreshed 0.6 ms ago: known
        pkt(LAN, 1300 * US, src_mac=A, dst_mac=B),      # B idle 1.2 ms > 1 ms: forgotten
        pkt(WAN, 1500 * US, src_mac=D, dst_mac=A),      # A idle 0.2 ms: still known
        pkt(WAN, 3000 * US, src_mac=D, dst_mac=A),      # A idle 1.7 ms: forgotten
    ]
    assert outputs(run("bridge", packets, BRIDGE_EXP)) == [
        NF_FLOOD, LAN, WAN, LAN, NF_FLOOD, LAN, NF_FLOOD]


def test_bridge_full_table_still_bridges_but_does_not_learn():
    packets = [
        pkt(LAN, 1, src_mac=A, dst_mac=D),
        pkt(WAN, 2, src_mac=B, dst_mac=D),
        pkt(WAN, 3, src_mac=C, dst_mac=A),  # table full: C not learned, A known
        pkt(LAN, 4, src_mac=A, dst_mac=C),  # C unknown: flood
        pkt(LAN, 5, src_mac=A, dst_mac=B),
    ]
    assert outputs(run("bridge", packets, {"BRIDGE_CAPACITY": 2})) == [
        NF_FLOOD, NF_FLOOD, LAN, NF_FLOOD, WAN]


# --------------------------------------------------------------------------
# pol: 1000-byte buckets refilled at 100 bytes per ms
# --------------------------------------------------------------------------

POL = {"POL_RATE": 100_000, "POL_BURST": 1000}
D1, D2 = "10.0.0.1", "10.0.0.2"


def wan_to(dst, t, size=100, src="1.2.3.4"):
    return pkt(WAN, t, src=src, dst=dst, size=size)


def test_pol_passes_the_burst_then_drops_per_destination():
    packets = [wan_to(D1, 0) for _ in range(11)] + [wan_to(D2, 0) for _ in range(11)]
    assert outputs(run("pol", packets, POL)) == ([LAN] * 10 + [NF_DROP]) * 2


def test_pol_charges_the_frame_length_and_passes_an_exact_fit():
    packets = [wan_to(D1, 0, size=300) for _ in range(4)] + [wan_to(D1, 0, size=100),
                                                             wan_to(D1, 0, size=60)]
    # 3 x 300 = 900; the 4th 300 does not fit; exactly 100 bytes remain.
    assert outputs(run("pol", packets, POL)) == [LAN, LAN, LAN, NF_DROP, LAN, NF_DROP]


def test_pol_refills_at_the_rate_up_to_the_burst():
    packets = [wan_to(D1, 0) for _ in range(10)]            # empties the bucket
    packets += [wan_to(D1, 1 * MS), wan_to(D1, 1 * MS)]     # 100 bytes back
    packets += [wan_to(D1, 1 * MS + 500 * US)]              # only 50 bytes back
    packets += [wan_to(D1, 1 * MS + 1000 * US)]             # 100 now
    packets += [wan_to(D1, 100 * MS) for _ in range(11)]    # long idle: full, not more
    packets += [wan_to(D2, 0)]                              # 900 bytes left
    packets += [wan_to(D2, 5 * MS) for _ in range(11)]      # +500 capped at 1000
    assert outputs(run("pol", packets, POL)) == (
        [LAN] * 10 + [LAN, NF_DROP] + [NF_DROP, LAN] + [LAN] * 10 + [NF_DROP]
        + [LAN] + [LAN] * 10 + [NF_DROP])


def test_pol_traffic_under_the_rate_always_passes_above_it_is_cut():
    # 100 bytes every ms is exactly the rate: never dropped.
    steady = [wan_to(D1, i * MS) for i in range(200)]
    assert outputs(run("pol", steady, POL)) == [LAN] * 200
    # 100 bytes every 0.5 ms is twice the rate for 100 ms: about
    # burst + rate * time = 1000 + 100 * 99.5 bytes pass, i.e. ~109 packets.
    heavy = [wan_to(D1, i * 500 * US) for i in range(200)]
    out = outputs(run("pol", heavy, POL))
    assert out[:10] == [LAN] * 10
    assert 105 <= out.count(LAN) <= 112
    assert set(out) == {LAN, NF_DROP}


def test_pol_lan_traffic_is_not_policed_and_uses_no_credit():
    packets = [pkt(LAN, 0, src=D1, dst="1.2.3.4", size=1500) for _ in range(20)]
    packets += [wan_to(D1, 0) for _ in range(10)]
    assert outputs(run("pol", packets, POL)) == [WAN] * 20 + [LAN] * 10


def test_pol_full_table_drops_new_destinations():
    packets = [wan_to(D1, 0), wan_to(D2, 1), wan_to("10.0.0.3", 2), wan_to(D1, 3)]
    assert outputs(run("pol", packets, {**POL, "POL_CAPACITY": 2})) == [LAN, LAN, NF_DROP, LAN]


def test_pol_forgets_idle_buckets():
    defines = {**POL, "POL_CAPACITY": 1, "POL_EXPIRATION_TIME": 20 * MS}
    packets = [wan_to(D1, 0), wan_to(D2, 10 * MS), wan_to(D2, 30 * MS)]
    # D2 has no room while D1's bucket lives; D1 idle 30 ms > 20 ms frees it.
    assert outputs(run("pol", packets, defines)) == [LAN, NF_DROP, LAN]


# --------------------------------------------------------------------------
# fw
# --------------------------------------------------------------------------

FW = {"FW_EXPIRATION_TIME": 1 * MS}
IN, OUT = "10.0.0.5", "8.8.8.8"


def lan_flow(t, sport=5000, dport=53, proto=UDP, src=IN, dst=OUT):
    return pkt(LAN, t, src=src, dst=dst, sport=sport, dport=dport, proto=proto)


def reply(t, sport=53, dport=5000, proto=UDP, src=OUT, dst=IN):
    return pkt(WAN, t, src=src, dst=dst, sport=sport, dport=dport, proto=proto)


def test_fw_drops_unsolicited_wan_traffic_and_passes_replies():
    packets = [
        reply(0),                      # no flow yet
        lan_flow(10 * US),             # opens the flow
        reply(20 * US),                # its reply
        lan_flow(30 * US, proto=TCP),  # TCP flow on the same ports
        reply(40 * US, proto=TCP),
    ]
    results = run("fw", packets, FW)
    assert outputs(results) == [NF_DROP, WAN, LAN, WAN, LAN]
    assert [r.data for r in results] == [p.data for p in packets]


def test_fw_reply_must_match_the_reversed_five_tuple():
    packets = [lan_flow(0)] + [
        reply(10 * US, sport=54),              # other remote port
        reply(20 * US, dport=5001),            # other local port
        reply(30 * US, src="8.8.4.4"),         # other remote host
        reply(40 * US, dst="10.0.0.6"),        # other local host
        reply(50 * US, proto=TCP),             # other protocol
        pkt(WAN, 60 * US, src=IN, dst=OUT, sport=5000, dport=53),  # not reversed
        reply(70 * US),                        # the real reply
    ]
    assert outputs(run("fw", packets, FW)) == [WAN] + [NF_DROP] * 6 + [LAN]


def test_fw_drops_replies_after_the_flow_expired():
    packets = [
        lan_flow(0),
        reply(600 * US),   # refreshes the flow
        reply(1400 * US),  # idle 0.8 ms: alive
        reply(2500 * US),  # idle 1.1 ms: expired
        lan_flow(2600 * US),
        reply(2700 * US),  # reopened
    ]
    assert outputs(run("fw", packets, FW)) == [WAN, LAN, LAN, NF_DROP, WAN, LAN]


def test_fw_drops_non_tcp_udp_and_new_flows_when_full():
    packets = [
        pkt(LAN, 0, src=IN, dst=OUT, proto=1),  # ICMP from LAN
        lan_flow(1, sport=1), lan_flow(2, sport=2),
        lan_flow(3, sport=3),                   # table full
        lan_flow(4, sport=1),                   # known flow still passes
        reply(5, dport=3),                      # never recorded
    ]
    assert outputs(run("fw", packets, {**FW, "FW_CAPACITY": 2})) == [
        NF_DROP, WAN, WAN, NF_DROP, WAN, NF_DROP]


# --------------------------------------------------------------------------
# nat
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


def payload_at(data: bytes, payload: bytes) -> int:
    at = data.find(payload)
    assert at > 0
    return at


def test_nat_rewrites_the_source_with_valid_checksums():
    for proto in (UDP, TCP):
        packets = [nat_out(0, proto=proto), nat_out(1, proto=proto)]
        results = run("nat", packets, NAT)
        assert outputs(results) == [WAN, WAN]
        before, after = parse(packets[0].data), parse(results[0].data)
        assert after.src == EXT and after.sport in NAT_PORTS
        assert (after.dst, after.dport, after.proto) == (before.dst, before.dport, proto)
        assert after.eth_dst == before.eth_dst and after.eth_src == before.eth_src
        assert payload_at(results[0].data, b"hello nat") == payload_at(packets[0].data, b"hello nat")
        assert results[0].data[24:26] != packets[0].data[24:26]  # the checksum had to change
        assert checksums_valid(results[0].data) and checksums_valid(results[1].data)
        assert parse(results[1].data).sport == after.sport  # same flow, same port


def test_nat_reverses_the_translation_on_replies():
    for proto in (UDP, TCP):
        first = run("nat", [nat_out(0, proto=proto)], NAT)[0]
        port = parse(first.data).sport
        packets = [nat_out(0, proto=proto), nat_in(10 * US, port, proto=proto)]
        results = run("nat", packets, NAT)
        assert outputs(results) == [WAN, LAN]
        back = parse(results[1].data)
        assert (back.src, back.sport, back.dst, back.dport) == (OUT, 53, IN, 5000)
        assert checksums_valid(results[1].data)
        assert payload_at(results[1].data, b"hello back") == payload_at(packets[1].data, b"hello back")


def test_nat_refuses_unknown_wan_traffic():
    port = parse(run("nat", [nat_out(0)], NAT)[0].data).sport
    unused = next(p for p in NAT_PORTS if p != port)
    packets = [nat_out(0)] + [
        nat_in(10 * US, unused),                # port of no flow
        nat_in(20 * US, 1999),                  # below the range
        nat_in(30 * US, 2016),                  # above the range
        nat_in(40 * US, port, src="8.8.4.4"),   # wrong remote host
        nat_in(50 * US, port, sport=54),        # wrong remote port
        nat_in(60 * US, port, proto=TCP),       # wrong protocol
        nat_in(70 * US, port, dst="203.0.113.2"),  # not our address
        nat_in(80 * US, port),                  # the real reply
    ]
    assert outputs(run("nat", packets, NAT)) == [WAN] + [NF_DROP] * 7 + [LAN]


def test_nat_gives_each_flow_its_own_port_and_drops_when_out_of_ports():
    flows = [nat_out(i, sport=4000 + i) for i in range(16)]
    flows += [nat_out(16, src="10.0.0.9", sport=4000)]  # 17th flow: no port left
    flows += [nat_out(17, sport=4000)]                  # first flow again
    results = run("nat", flows, NAT)
    assert outputs(results) == [WAN] * 16 + [NF_DROP, WAN]
    ports = [parse(r.data).sport for r in results[:16]]
    assert sorted(ports) == list(NAT_PORTS)
    assert parse(results[17].data).sport == ports[0]
    # Replies reach each flow through its own port.
    replies = [nat_in(100 + i, ports[i]) for i in range(16)]
    back = run("nat", flows[:16] + replies, NAT)[16:]
    assert [parse(r.data).dport for r in back] == [4000 + i for i in range(16)]


def test_nat_keeps_a_zero_udp_checksum_and_handles_ip_options():
    out = make_packet(IN, OUT, 5000, 53, UDP, payload=b"x")
    no_csum = TracePacket(LAN, 0, with_ip_field(out, 14 + 20 + 6, b"\0\0", fix_csum=False))
    opts = TracePacket(LAN, 1, make_packet(IN, OUT, 5001, 53, TCP, ip_options=b"\x01\x01\x01\x00"))
    results = run("nat", [no_csum, opts], NAT)
    assert outputs(results) == [WAN, WAN]
    assert parse(results[0].data).l4_csum == 0 and checksums_valid(results[0].data)
    with_opts = parse(results[1].data)
    assert with_opts.ihl == 24 and with_opts.src == EXT and with_opts.sport in NAT_PORTS
    assert with_opts.dport == 53 and checksums_valid(results[1].data)


def test_nat_forgets_idle_flows():
    port = parse(run("nat", [nat_out(0)], NAT)[0].data).sport
    packets = [
        nat_out(0),
        nat_in(700 * US, port),    # refreshes
        nat_in(1500 * US, port),   # idle 0.8 ms: alive
        nat_in(2600 * US, port),   # idle 1.1 ms: expired
    ]
    assert outputs(run("nat", packets, NAT)) == [WAN, LAN, LAN, NF_DROP]


# --------------------------------------------------------------------------
# cl: at most 3 new flows per (src, dst) pair
# --------------------------------------------------------------------------

CL = {"CL_MAX_FLOWS": 3, "CL_EXPIRATION_TIME": 1 * MS, "CL_SKETCH_CAPACITY": 1024}


def cl_flow(t, sport, src="10.0.0.1", dst="1.1.1.1", dport=80):
    return pkt(LAN, t, src=src, dst=dst, sport=sport, dport=dport, proto=TCP)


def test_cl_refuses_the_flow_over_the_limit():
    packets = [cl_flow(i * US, 1000 + i) for i in range(3)]   # 3 flows: admitted
    packets += [cl_flow(10 * US, 1003), cl_flow(11 * US, 1003)]  # 4th: refused
    packets += [cl_flow(12 * US, 1000), cl_flow(13 * US, 1002)]  # admitted flows go on
    packets += [cl_flow(14 * US, 1000, dport=81)]               # other port = other flow
    results = run("cl", packets, CL)
    assert outputs(results) == [WAN] * 3 + [NF_DROP] * 2 + [WAN] * 2 + [NF_DROP]
    assert [r.data for r in results] == [p.data for p in packets]


def test_cl_limits_each_pair_separately_and_never_limits_wan():
    packets = [cl_flow(i * US, 1000 + i) for i in range(4)]
    packets += [cl_flow(10 * US + i * US, 1000 + i, dst="2.2.2.2") for i in range(3)]
    packets += [cl_flow(20 * US + i * US, 1000 + i, src="10.0.0.2") for i in range(3)]
    packets += [pkt(WAN, 30 * US + i * US, src="1.1.1.1", dst="10.0.0.1", sport=80,
                    dport=2000 + i, proto=TCP) for i in range(10)]
    packets += [TracePacket(WAN, 50 * US, b"\x00" * 20)]
    assert outputs(run("cl", packets, CL)) == [WAN] * 3 + [NF_DROP] + [WAN] * 6 + [LAN] * 11


def test_cl_allows_the_pair_again_after_expiry():
    packets = [cl_flow(i * US, 1000 + i) for i in range(4)]
    packets += [cl_flow(2 * MS, 1003)]       # pair silent 2 ms > 1 ms
    packets += [cl_flow(2 * MS + i * US, 1010 + i) for i in range(1, 4)]
    assert outputs(run("cl", packets, CL)) == [WAN] * 3 + [NF_DROP] + [WAN] * 3 + [NF_DROP]


def test_cl_active_flows_keep_the_count_alive():
    # Only flow 1000 stays active (every 0.6 ms); 1001 and 1002 expire, but the
    # pair's count is of flows opened and is not decremented.
    packets = [cl_flow(i * US, 1000 + i) for i in range(3)]
    packets += [cl_flow(k * 600 * US, 1000) for k in range(1, 6)]
    packets += [cl_flow(3 * MS + 100 * US, 1003)]
    assert outputs(run("cl", packets, CL)) == [WAN] * 3 + [WAN] * 5 + [NF_DROP]


# --------------------------------------------------------------------------
# psd: at most 4 distinct destination ports per source
# --------------------------------------------------------------------------

PSD = {"PSD_THRESHOLD": 4, "PSD_EXPIRATION_TIME": 1 * MS}


def probe(t, dport, src="6.6.6.6", proto=TCP):
    return pkt(WAN, t, src=src, dst="10.0.0.1", sport=40000, dport=dport, proto=proto)


def test_psd_blocks_a_scanner():
    packets = [probe(i * US, 1 + i) for i in range(4)]   # 4 ports: fine
    packets += [probe(10 * US, 5)]                        # 5th port: over
    packets += [probe(11 * US, 1), probe(12 * US, 2)]     # blocked on every port
    packets += [probe(13 * US, 1, src="6.6.6.7")]         # another source is not
    results = run("psd", packets, PSD)
    assert outputs(results) == [LAN] * 4 + [NF_DROP] * 3 + [LAN]
    assert [r.data for r in results] == [p.data for p in packets]


def test_psd_does_not_block_a_client_using_few_ports():
    ports = [80, 443, 80, 8080, 443, 22] * 10  # 4 distinct ports, 60 packets
    packets = [probe(i * 10 * US, p, src="7.7.7.7", proto=UDP if i % 2 else TCP)
               for i, p in enumerate(ports)]
    assert outputs(run("psd", packets, PSD)) == [LAN] * len(packets)


def test_psd_unblocks_after_the_source_goes_quiet():
    packets = [probe(i * US, 1 + i) for i in range(5)]          # blocked at port 5
    packets += [probe(500 * US * k, 1) for k in range(1, 7)]    # keeps trying: stays blocked
    packets += [probe(5 * MS, 6)]                               # silent 2 ms: forgotten
    packets += [probe(5 * MS + i * US, 7 + i) for i in range(1, 4)]
    packets += [probe(5 * MS + 10 * US, 20)]                    # 5th port again
    # One source slot: the returning source reuses its old entry's cell.
    assert outputs(run("psd", packets, {**PSD, "PSD_CAPACITY": 1})) == (
        [LAN] * 4 + [NF_DROP] + [NF_DROP] * 6 + [LAN] * 4 + [NF_DROP])


def test_psd_blocked_source_is_not_counted_further():
    # Room for 6 (source, port) pairs: the scanner takes 5 before it is
    # blocked; its later probes must not take the 6th from another source.
    packets = [probe(i * US, 1 + i) for i in range(5)]
    packets += [probe(10 * US + i * US, 100 + i) for i in range(5)]
    packets += [probe(20 * US, 80, src="7.7.7.7")]
    assert outputs(run("psd", packets, {**PSD, "PSD_PORT_CAPACITY": 6})) == (
        [LAN] * 4 + [NF_DROP] * 6 + [LAN])


def test_psd_full_pair_table_drops_until_idle_pairs_expire():
    packets = [probe(0, 1), probe(1 * US, 2)]                 # fills the 2 pair slots
    packets += [probe(10 * US, 80, src="7.7.7.7")]            # no room: fail closed
    packets += [probe(2 * MS, 80, src="7.7.7.7")]             # 6.6.6.6's pairs expired
    assert outputs(run("psd", packets, {**PSD, "PSD_PORT_CAPACITY": 2})) == [
        LAN, LAN, NF_DROP, LAN]


def test_psd_lan_traffic_is_forwarded_and_not_counted():
    packets = [pkt(LAN, i * US, src="6.6.6.6", dst="1.1.1.1", dport=100 + i) for i in range(10)]
    packets += [probe(20 * US + i * US, 1 + i) for i in range(4)]
    assert outputs(run("psd", packets, PSD)) == [WAN] * 10 + [LAN] * 4


# --------------------------------------------------------------------------
# lb: backends on the LAN send heartbeats, clients on the WAN
# --------------------------------------------------------------------------

LB = {"LB_BACKEND_EXPIRATION": 10 * MS, "LB_FLOW_EXPIRATION": 1000 * MS}
VIP = "192.0.2.100"
BACKENDS = {f"10.1.0.{i}": f"02:00:00:00:01:{i:02x}" for i in (1, 2, 3)}
B1, B2, B3 = BACKENDS


def heartbeat(t, backend):
    return pkt(LAN, t, src=backend, dst="10.1.255.255", sport=9, dport=9,
               src_mac=BACKENDS[backend])


def client(t, n, proto=TCP):
    return pkt(WAN, t, src=f"198.51.100.{n % 250 + 1}", dst=VIP, sport=10000 + n, dport=80,
               proto=proto, payload=b"GET /")


def served_by(result):
    """The backend a forwarded client packet was sent to (checks MAC and IP agree)."""
    frame = parse(result.data)
    assert result.output == LAN
    assert frame.dst in BACKENDS and bytes.fromhex(BACKENDS[frame.dst].replace(":", "")) == frame.eth_dst
    assert checksums_valid(result.data)
    return frame.dst


def test_lb_drops_clients_without_backends_and_forwards_heartbeats():
    packets = [client(0, 1), heartbeat(1 * US, B1), client(2 * US, 1)]
    results = run("lb", packets, LB)
    assert outputs(results) == [NF_DROP, WAN, LAN]
    assert results[1].data == packets[1].data
    assert served_by(results[2]) == B1
    frame, before = parse(results[2].data), parse(packets[2].data)
    assert (frame.src, frame.sport, frame.dport, frame.eth_src) == (
        before.src, before.sport, before.dport, before.eth_src)


def test_lb_spreads_flows_and_keeps_each_on_its_backend():
    beats = [heartbeat(0, B1), heartbeat(1, B2)]
    first = [client(1 * MS + n * US, n, proto=UDP if n % 2 else TCP) for n in range(40)]
    again = [client(5 * MS + n * US, n, proto=UDP if n % 2 else TCP) for n in range(40)]
    results = run("lb", beats + first + again, LB)
    chosen = [served_by(r) for r in results[2:42]]
    assert set(chosen) == {B1, B2}
    assert [served_by(r) for r in results[42:]] == chosen


def test_lb_flow_sticks_when_a_backend_joins():
    beats = [heartbeat(0, B1), heartbeat(1, B2)]
    flows = [client(1 * MS + n * US, n) for n in range(40)]
    joined = [heartbeat(2 * MS, B3)]
    later = [client(3 * MS + n * US, n) for n in range(40)]
    fresh = [client(4 * MS + n * US, 100 + n) for n in range(40)]
    results = run("lb", beats + flows + joined + later + fresh, LB)
    before = [served_by(r) for r in results[2:42]]
    after = [served_by(r) for r in results[43:83]]
    new_flows = [served_by(r) for r in results[83:]]
    assert B3 in new_flows  # B3 does take new flows...
    assert after == before  # ...but existing flows stay where they are


def test_lb_forgets_idle_flows():
    # Flows idle longer than LB_FLOW_EXPIRATION are balanced afresh: those
    # that B3 would take as new flows move to B3 once forgotten.
    defines = {"LB_BACKEND_EXPIRATION": 100 * MS, "LB_FLOW_EXPIRATION": 5 * MS}
    beats = [heartbeat(0, B1), heartbeat(1, B2), heartbeat(2, B3)]
    fresh = [served_by(r) for r in run("lb", beats + [client(1 * MS, n) for n in range(40)],
                                       defines)[3:]]
    assert B3 in fresh
    packets = beats[:2] + [client(1 * MS + n * US, n) for n in range(40)]
    packets += [heartbeat(2 * MS, B3)]
    packets += [client(4 * MS + n * US, n) for n in range(40)]   # idle 3 ms: remembered
    packets += [heartbeat(20 * MS, b) for b in (B1, B2, B3)]
    packets += [client(20 * MS + n * US, n) for n in range(40)]  # idle 16 ms: forgotten
    results = run("lb", packets, defines)
    first = [served_by(r) for r in results[2:42]]
    assert B3 not in first
    assert [served_by(r) for r in results[43:83]] == first
    assert [served_by(r) for r in results[86:]] == fresh


def test_lb_flow_moves_only_when_its_backend_expires():
    # Two backend slots, so a backend that comes back gets its old slot.
    two_slots = {**LB, "LB_BACKEND_CAPACITY": 2, "LB_CHT_HEIGHT": 5}
    # Find which backend the flow lands on with both alive.
    start = [heartbeat(0, B1), heartbeat(1, B2), client(1 * MS, 7)]
    chosen = served_by(run("lb", start, two_slots)[2])
    other = B2 if chosen == B1 else B1
    packets = list(start)
    t = 1 * MS
    # Both heartbeat every 4 ms up to 8 ms; then only `other` goes on.
    for k in range(1, 9):
        t = k * 4 * MS
        if t <= 8 * MS:
            packets.append(heartbeat(t, chosen))
        packets.append(heartbeat(t + 1, other))
        packets.append(client(t + 2, 7))
    # chosen's last heartbeat: 8 ms; it expires after 18 ms.
    packets.append(heartbeat(40 * MS, chosen))      # it comes back (in its old slot)
    packets.append(client(41 * MS, 7))
    results = run("lb", packets, two_slots)
    served = [served_by(r) for r in results if r.device == WAN]
    times = [p.time_ns for p in packets if p.device == WAN]
    expected = [chosen if tm <= 18 * MS else other for tm in times]
    expected[-1] = other  # the flow now records `other`, which is alive
    assert served == expected
    assert chosen in served and other in served


# --------------------------------------------------------------------------
# hhh: 1 ms windows; /32 <= 1000 B, /24 <= 2500 B, /16 <= 4000 B
# --------------------------------------------------------------------------

HHH = {"HHH_WINDOW": 1 * MS, "HHH_LIMIT_32": 1000, "HHH_LIMIT_24": 2500, "HHH_LIMIT_16": 4000}


def from_wan(t, src, size=100):
    return pkt(WAN, t, src=src, dst="10.0.0.1", size=size)


def test_hhh_drops_a_heavy_host_and_passes_a_light_one():
    packets = []
    for i in range(15):
        packets.append(from_wan(i * 10 * US, "1.1.1.1"))
        if i % 3 == 0:
            packets.append(from_wan(i * 10 * US + 1, "2.2.2.2"))
    results = run("hhh", packets, HHH)
    heavy = [r.output for r, p in zip(results, packets) if parse(p.data).src == "1.1.1.1"]
    light = [r.output for r, p in zip(results, packets) if parse(p.data).src == "2.2.2.2"]
    assert heavy == [LAN] * 10 + [NF_DROP] * 5  # 1000 bytes is the limit, not over it
    assert light == [LAN] * 5
    assert [r.data for r in results] == [p.data for p in packets]


def test_hhh_window_restarts():
    packets = [from_wan(i * 10 * US, "1.1.1.1") for i in range(12)]
    packets += [from_wan(1 * MS + i * 10 * US, "1.1.1.1") for i in range(12)]
    assert outputs(run("hhh", packets, HHH)) == ([LAN] * 10 + [NF_DROP] * 2) * 2


def test_hhh_drops_a_heavy_slash24_made_of_light_hosts():
    packets = [from_wan(i * US, f"5.5.5.{i % 3 + 1}") for i in range(27)]  # 9 each
    packets += [from_wan(30 * US, "5.5.5.200"), from_wan(31 * US, "5.5.6.1")]
    assert outputs(run("hhh", packets, HHH)) == [LAN] * 25 + [NF_DROP] * 2 + [NF_DROP, LAN]


def test_hhh_drops_a_heavy_slash16_made_of_light_slash24s():
    packets = [from_wan(i * US, f"9.9.{i % 6}.1") for i in range(48)]  # 8 per /24
    packets += [from_wan(60 * US, "9.9.200.1"), from_wan(61 * US, "9.10.0.1")]
    assert outputs(run("hhh", packets, HHH)) == [LAN] * 40 + [NF_DROP] * 8 + [NF_DROP, LAN]


def test_hhh_counts_dropped_bytes_at_every_level():
    # 5.5.5.1 offers 3000 B: only 1000 pass its /32, but all 3000 count for
    # its /24, so a fresh neighbour is over the /24 limit at once.
    packets = [from_wan(i * US, "5.5.5.1") for i in range(30)] + [from_wan(40 * US, "5.5.5.2")]
    assert outputs(run("hhh", packets, HHH)) == [LAN] * 10 + [NF_DROP] * 21


def test_hhh_lan_traffic_is_forwarded_and_not_counted():
    packets = [pkt(LAN, i, src="1.1.1.1", dst="8.8.8.8", size=1500) for i in range(5)]
    packets += [from_wan(10 + i, "1.1.1.1") for i in range(10)]
    assert outputs(run("hhh", packets, HHH)) == [WAN] * 5 + [LAN] * 10


def test_hhh_full_table_drops_until_an_idle_prefix_expires():
    defines = {**HHH, "HHH_CAPACITY": 2, "HHH_EXPIRATION_TIME": 5 * MS}
    packets = [from_wan(0, "1.1.1.1"), from_wan(1, "1.1.1.2"),
               from_wan(2, "1.1.1.3"),                     # /32 table full
               from_wan(3 * MS, "1.1.1.2"),                # keeps 1.1.1.2 alive
               from_wan(6 * MS, "1.1.1.3")]                # 1.1.1.1 idle 6 ms: freed
    assert outputs(run("hhh", packets, defines)) == [LAN, LAN, NF_DROP, LAN, LAN]


def test_hhh_levels_have_their_own_capacity():
    defines = {**HHH, "HHH_CAPACITY_16": 1, "HHH_CAPACITY_24": 3}
    packets = [from_wan(0, "1.1.1.1"),
               from_wan(1, "2.2.2.2"),                          # a second /16: no room (its /24 is counted)
               from_wan(2, "1.1.2.1"),                          # same /16, a third /24
               from_wan(3, "1.1.3.1"),                          # a third /24: no room
               from_wan(4, "1.1.1.2")]                          # known /24, a new host
    assert outputs(run("hhh", packets, defines)) == [LAN, NF_DROP, LAN, NF_DROP, LAN]


# --------------------------------------------------------------------------
# Every NF: malformed frames
# --------------------------------------------------------------------------

def _expect_nop(category, device):
    return WAN if device == LAN else LAN


def _expect_sbridge(category, device):
    # Frames go to 02:00:00:00:00:01, which lives on device 1.
    if category == "not_eth":
        return NF_DROP
    return WAN if device == LAN else NF_DROP


def _expect_bridge(category, device):
    return NF_DROP if category == "not_eth" else NF_FLOOD  # the destination never speaks


def _expect_policing_wan(ip_needed_only):
    def expect(category, device):
        if device == LAN:
            return WAN
        if category in ("not_eth", "not_ip"):
            return NF_DROP
        if category == "no_l4" and not ip_needed_only:
            return NF_DROP
        return LAN
    return expect


def _expect_fw(category, device):
    return WAN if (category == "no_csum" and device == LAN) else NF_DROP


def _expect_nat(category, device):
    return NF_DROP


def _expect_cl(category, device):
    if device == WAN:
        return LAN
    return WAN if category == "no_csum" else NF_DROP


def _expect_lb(category, device):
    return WAN if (category == "no_csum" and device == LAN) else NF_DROP


EXPECT = {
    "nop": _expect_nop,
    "sbridge": _expect_sbridge,
    "bridge": _expect_bridge,
    "pol": _expect_policing_wan(ip_needed_only=True),
    "fw": _expect_fw,
    "nat": _expect_nat,
    "cl": _expect_cl,
    "psd": _expect_policing_wan(ip_needed_only=False),
    "lb": _expect_lb,
    "hhh": _expect_policing_wan(ip_needed_only=True),
}


@pytest.mark.parametrize("name", sorted(EXPECT))
def test_malformed_frames_are_survived_and_handled_per_spec(name):
    frames = malformed_frames(src="10.9.9.9", dst="10.8.8.8",
                              src_mac="02:00:00:00:00:0e", dst_mac="02:00:00:00:00:01")
    # Valid traffic first so that the malformed frames meet live state
    # (an lb backend, fw/nat/cl flows, bridge entries, counters).
    valid = [pkt(LAN, 0, src="10.9.9.9", dst="10.8.8.8", sport=1111, dport=2222,
                 src_mac="02:00:00:00:00:0e", dst_mac="02:00:00:00:00:01")]
    packets, expected = list(valid), []
    t = 10
    for device in (LAN, WAN):
        for label, (category, data) in frames.items():
            packets.append(TracePacket(device, t, data))
            expected.append((label, device, EXPECT[name](category, device)))
            t += 10
    results = run(name, packets, sanitize=True)
    got = [(label, device, r.output) for (label, device, _), r in zip(expected, results[1:])]
    assert got == expected
    # None of these frames is rewritten.
    assert [r.data for r in results[1:]] == [p.data for p in packets[1:]]
