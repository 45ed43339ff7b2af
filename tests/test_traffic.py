"""Traffic generation (codegen.traffic), pcap/pcapng I/O (codegen.trace) and
the `maestro traffic` subcommand."""
from __future__ import annotations

import ipaddress
import random
import struct
from collections import Counter, defaultdict

import dpkt
import pytest

from analyses.errors import MaestroError
from codegen.packets import TCP, UDP, make_packet
from codegen.trace import TraceError, TracePacket, read_trace, write_pcapng
from codegen.traffic import MALFORMED_KINDS, PROFILES, generate, generate_traffic
from workbench.cli import main

LAN = ipaddress.IPv4Network("10.0.0.0/8")
PNG = dpkt.pcapng


# --- helpers ------------------------------------------------------------------


def five_tuple(frame: bytes):
    """(src, dst, sport, dport, proto) of a valid Ethernet/IPv4/TCP|UDP frame."""
    ip = dpkt.ethernet.Ethernet(frame).data
    assert isinstance(ip, dpkt.ip.IP), frame.hex()
    return (ip.src, ip.dst, ip.data.sport, ip.data.dport, ip.p)


def is_lan(addr: bytes) -> bool:
    return ipaddress.IPv4Address(addr) in LAN


def frame_kind(frame: bytes) -> str:
    """Classify a frame into MALFORMED_KINDS or "valid" (independently of
    the generator's own code)."""
    if len(frame) < 14:
        return "runt"
    ethertype = struct.unpack("!H", frame[12:14])[0]
    if ethertype == dpkt.ethernet.ETH_TYPE_ARP:
        return "arp"
    if ethertype == dpkt.ethernet.ETH_TYPE_IP6:
        return "ipv6"
    assert ethertype == dpkt.ethernet.ETH_TYPE_IP
    if len(frame) < 34:
        return "short_ip"
    version, ihl = frame[14] >> 4, frame[14] & 0xF
    if version != 4:
        return "bad_version"
    if ihl < 5:
        return "ihl_small"
    if 14 + 4 * ihl > len(frame):
        return "ihl_large"
    if struct.unpack("!H", frame[20:22])[0] & 0x1FFF:
        return "fragment"
    if len(frame) < 14 + 4 * ihl + 4:
        return "truncated_l4"
    if ihl > 5:
        return "ip_options"
    return "valid"


def top_share(packets) -> float:
    """Share of the packets that belong to the most frequent frame."""
    return Counter(p.data for p in packets).most_common(1)[0][1] / len(packets)


def pcapng_bytes(idbs, epbs, big_endian=False) -> bytes:
    """A pcapng file from dpkt block objects (SHB added)."""
    shb = PNG.SectionHeaderBlock() if big_endian else PNG.SectionHeaderBlockLE()
    return b"".join(bytes(b) for b in [shb, *idbs, *epbs])


def idb(linktype=1, tsresol=None, big_endian=False):
    opt = PNG.PcapngOption if big_endian else PNG.PcapngOptionLE
    opts = [opt(code=PNG.PCAPNG_OPT_IF_TSRESOL, data=bytes([tsresol])), opt()] if tsresol else []
    kls = PNG.InterfaceDescriptionBlock if big_endian else PNG.InterfaceDescriptionBlockLE
    return kls(linktype=linktype, opts=opts)


def epb(data, iface=0, ticks=0, big_endian=False):
    kls = PNG.EnhancedPacketBlock if big_endian else PNG.EnhancedPacketBlockLE
    return kls(iface_id=iface, ts_high=ticks >> 32, ts_low=ticks & 0xFFFFFFFF,
               pkt_data=data, opts=[])


FRAME = make_packet("10.0.0.1", "8.8.8.8", 1234, 53)


@pytest.fixture
def sample_packets():
    """Packets on 3 devices, odd lengths and times past 2**32 ns."""
    rng = random.Random(7)
    packets, time_ns = [], 5 * 10**9 + 123
    for i in range(40):
        time_ns += rng.randrange(0, 10**6)
        size = rng.choice([60, 61, 63, 64, 97, 1514, 9000])
        packets.append(TracePacket(i % 3, time_ns, make_packet(i + 1, 2, i, 80, size=size)))
    packets.append(TracePacket(1, time_ns + 1, bytes(range(256)) * 255 + b"xyz"))  # 65283 B
    packets.append(TracePacket(2, 2**63 + 7, b"\x01"))
    return packets


# --- pcapng writing / reading -------------------------------------------------


def test_pcapng_round_trip(tmp_path, sample_packets):
    path = tmp_path / "t.pcapng"
    assert write_pcapng(path, sample_packets, devices=3) == len(sample_packets)
    assert read_trace(path) == sample_packets


def test_pcapng_is_standard(tmp_path, sample_packets):
    """dpkt's own pcapng Reader sees the same packets; the IDBs say dev<i>,
    Ethernet, nanoseconds."""
    path = tmp_path / "t.pcapng"
    write_pcapng(path, sample_packets, devices=3)
    with path.open("rb") as f:
        theirs = list(PNG.Reader(f))
    assert [data for _, data in theirs] == [p.data for p in sample_packets]
    assert theirs[0][0] == pytest.approx(sample_packets[0].time_ns / 1e9)

    blocks, buf = [], path.read_bytes()
    while buf:  # dpkt's block classes want exactly one block
        length = struct.unpack_from("<I", buf, 4)[0]
        blocks.append(buf[:length])
        buf = buf[length:]
    PNG.SectionHeaderBlockLE(blocks[0])
    for device in range(3):
        block = PNG.InterfaceDescriptionBlockLE(blocks[1 + device])
        opts = {o.code: o.data for o in block.opts}
        assert block.linktype == dpkt.pcap.DLT_EN10MB
        assert opts[PNG.PCAPNG_OPT_IF_NAME] == f"dev{device}".encode()
        assert opts[PNG.PCAPNG_OPT_IF_TSRESOL] == b"\x09"
    first = PNG.EnhancedPacketBlockLE(blocks[4])
    assert first.iface_id == sample_packets[0].device
    assert first.pkt_data == sample_packets[0].data


def test_write_rejects_bad_packets(tmp_path):
    path = tmp_path / "bad.pcapng"
    good = TracePacket(0, 0, FRAME)
    for bad in (TracePacket(2, 0, FRAME), TracePacket(0, 0, b""), TracePacket(0, -1, FRAME),
                TracePacket(0, 0, bytes(70000))):
        with pytest.raises(TraceError, match=r"bad\.pcapng: packet 1: "):
            write_pcapng(path, [good, bad], devices=2)
        assert not path.exists()
    with pytest.raises(TraceError, match="cannot write"):
        write_pcapng(tmp_path / "no" / "dir.pcapng", [good])


@pytest.mark.parametrize(
    "tsresol, ticks, ns",
    [(None, 1_500_000, 1_500_000_000),  # default: microseconds
     (6, 7, 7000),
     (9, 2**40 + 3, 2**40 + 3),
     (12, 123_456_789, 123_456),  # picoseconds, floored to ns
     (0x80 | 10, 3 * 1024 + 512, 3_500_000_000)],  # 2^-10 s
)
def test_pcapng_time_resolutions(tmp_path, tsresol, ticks, ns):
    for big_endian in (False, True):
        path = tmp_path / "r.pcapng"
        path.write_bytes(pcapng_bytes(
            [idb(tsresol=tsresol, big_endian=big_endian)],
            [epb(FRAME, ticks=ticks, big_endian=big_endian)], big_endian,
        ))
        assert read_trace(path) == [TracePacket(0, ns, FRAME)]


def test_classic_pcap_is_device_0(tmp_path):
    for nano in (False, True):
        path = tmp_path / "c.pcap"
        with path.open("wb") as f:
            writer = dpkt.pcap.Writer(f, nano=nano)
            writer.writepkt(FRAME, ts=1.5)
            writer.writepkt(FRAME[:-1], ts=2.25)
        assert read_trace(path) == [
            TracePacket(0, 1_500_000_000, FRAME), TracePacket(0, 2_250_000_000, FRAME[:-1])
        ]


def test_classic_pcap_big_endian(tmp_path):
    path = tmp_path / "be.pcap"
    header = dpkt.pcap.FileHdr(magic=dpkt.pcap.TCPDUMP_MAGIC_NANO, linktype=1)
    record = dpkt.pcap.PktHdr(tv_sec=3, tv_usec=17, caplen=len(FRAME), len=len(FRAME))
    path.write_bytes(bytes(header) + bytes(record) + FRAME)
    assert read_trace(path) == [TracePacket(0, 3_000_000_017, FRAME)]


# --- bad input files ----------------------------------------------------------


def expect_error(path, index, what):
    with pytest.raises(TraceError) as info:
        read_trace(path)
    message = str(info.value)
    assert path.name in message and f"packet {index}" in message, message
    assert what in message, message


def test_missing_and_foreign_files(tmp_path):
    with pytest.raises(TraceError, match="nothere.pcapng"):
        read_trace(tmp_path / "nothere.pcapng")
    for name, content in [("text.pcapng", b"hello, world\n" * 10), ("empty.pcap", b"")]:
        (tmp_path / name).write_bytes(content)
        expect_error(tmp_path / name, 0, "not a pcap or pcapng")


def test_truncated_pcapng(tmp_path, sample_packets):
    good = tmp_path / "good.pcapng"
    write_pcapng(good, sample_packets[:5], devices=3)
    buf = good.read_bytes()
    cut = tmp_path / "cut.pcapng"
    block = 32 + len(sample_packets[4].data) + (-len(sample_packets[4].data) & 3)
    for missing in (1, 4, block - 8, block - 1):  # packet 4 is the last block
        cut.write_bytes(buf[:-missing])
        expect_error(cut, 4, "truncated")


def test_truncated_pcap(tmp_path):
    good = tmp_path / "good.pcap"
    with good.open("wb") as f:
        writer = dpkt.pcap.Writer(f)
        for i in range(3):
            writer.writepkt(FRAME, ts=i)
    buf = good.read_bytes()
    cut = tmp_path / "cut.pcap"
    for missing in (1, len(FRAME), len(FRAME) + 3):
        cut.write_bytes(buf[:-missing])
        expect_error(cut, 2, "truncated")
    cut.write_bytes(buf[:10])
    with pytest.raises(TraceError, match="cut.pcap"):
        read_trace(cut)


def test_pcapng_bad_packets(tmp_path):
    path = tmp_path / "bad.pcapng"
    cases = [
        ([idb()], [epb(FRAME), epb(FRAME, iface=3)], 1, "interface id 3"),
        ([idb()], [epb(FRAME), epb(FRAME), epb(b"")], 2, "length 0"),
        ([idb()], [epb(FRAME), epb(bytes(70000))], 1, "length 70000"),
        ([idb(linktype=101)], [epb(FRAME)], 0, "linktype 101"),
        ([], [epb(FRAME)], 0, "interface id 0"),
    ]
    for idbs, epbs, index, what in cases:
        path.write_bytes(pcapng_bytes(idbs, epbs))
        expect_error(path, index, what)


def test_pcapng_corrupt_blocks(tmp_path):
    path = tmp_path / "corrupt.pcapng"
    good = pcapng_bytes([idb()], [epb(FRAME), epb(FRAME)])
    second = len(good) - len(bytes(epb(FRAME)))
    # Captured length smaller than the original length: a snapped packet.
    snapped = bytearray(good)
    struct.pack_into("<I", snapped, second + 24, len(FRAME) + 10)
    path.write_bytes(bytes(snapped))
    expect_error(path, 1, "only 60 of 70 bytes")
    # Trailing length copy that disagrees with the leading one.
    bad_trailer = bytearray(good)
    struct.pack_into("<I", bad_trailer, len(good) - 4, 999)
    path.write_bytes(bytes(bad_trailer))
    expect_error(path, 1, "trailer")
    # Captured length past the end of its block.
    too_long = bytearray(good)
    struct.pack_into("<I", too_long, second + 20, 400)
    path.write_bytes(bytes(too_long))
    expect_error(path, 1, "truncated packet")


def test_pcap_bad_packets(tmp_path):
    path = tmp_path / "bad.pcap"
    with path.open("wb") as f:
        dpkt.pcap.Writer(f, linktype=101).writepkt(FRAME, ts=0)
    expect_error(path, 0, "linktype 101")
    header = bytes(dpkt.pcap.LEFileHdr(magic=dpkt.pcap.TCPDUMP_MAGIC, linktype=1))
    empty = bytes(dpkt.pcap.LEPktHdr(caplen=0, len=0))
    path.write_bytes(header + bytes(dpkt.pcap.LEPktHdr(caplen=60, len=60)) + FRAME + empty)
    expect_error(path, 1, "length 0")


def test_damaged_files_only_raise_trace_error(tmp_path, sample_packets):
    """Every prefix and random byte damage: a trace or a TraceError, never
    another exception."""
    good = tmp_path / "good.pcapng"
    write_pcapng(good, sample_packets[:6], devices=3)
    buf = good.read_bytes()
    damaged = tmp_path / "damaged.pcapng"
    rng = random.Random(1)
    variants = [buf[:n] for n in range(0, len(buf), 7)]
    for _ in range(300):
        flipped = bytearray(buf)
        for _ in range(rng.randint(1, 3)):
            flipped[rng.randrange(len(buf))] = rng.randrange(256)
        variants.append(bytes(flipped))
    for variant in variants:
        damaged.write_bytes(variant)
        try:
            read_trace(damaged)
        except TraceError as exc:
            assert "damaged.pcapng" in str(exc)


# --- profiles -----------------------------------------------------------------


def test_every_profile_basic_properties():
    for profile in PROFILES:
        packets = generate(profile, 50, 2000, seed=3, rate_pps=2_000_000)
        assert len(packets) == 2000
        times = [p.time_ns for p in packets]
        assert times == sorted(times) and times[0] == 0
        assert times[-1] == pytest.approx(1999 * 500, abs=1)
        assert {p.device for p in packets} == {0, 1}
        assert all(60 <= len(p.data) <= 0xFFFF for p in packets if frame_kind(p.data) == "valid")


def test_uniform_flows_and_mix():
    traffic = generate_traffic("uniform", 200, 20_000, seed=1)
    packets = traffic.packets
    tuples = Counter(five_tuple(p.data) for p in packets)
    assert len(tuples) == traffic.flows == 200
    assert {t[4] for t in tuples} == {TCP, UDP}
    assert top_share(packets) < 0.02
    for pkt in packets:  # LAN clients on device 0, WAN clients on device 1
        src, dst = five_tuple(pkt.data)[:2]
        assert is_lan(src) == (pkt.device == 0) and is_lan(dst) == (pkt.device == 1)
    wan_share = sum(p.device == 1 for p in packets) / len(packets)
    assert 0.1 < wan_share < 0.3
    assert all(len(p.data) == 60 for p in packets)


def test_zipf_is_skewed():
    uniform = generate("uniform", 1000, 20_000, seed=2)
    zipf = generate("zipf", 1000, 20_000, seed=2, zipf_s=1.1)
    assert top_share(zipf) > 10 * top_share(uniform)
    assert top_share(zipf) > 0.1  # rank 1 of 1000 at s=1.1: about 1/6.5
    steeper = generate("zipf", 1000, 20_000, seed=2, zipf_s=2.0)
    assert top_share(steeper) > top_share(zipf)


def test_sessions_replies_follow_requests():
    packets = generate("sessions", 100, 5000, seed=4)
    seen: dict[tuple, int] = defaultdict(int)  # request 5-tuple -> packets so far
    for pkt in packets:
        ft = five_tuple(pkt.data)
        request = ft if is_lan(ft[0]) else (ft[1], ft[0], ft[3], ft[2], ft[4])
        nth = seen[request]
        if nth % 2 == 0:  # request: LAN client on device 0
            assert ft == request and pkt.device == 0
        else:  # reply: swapped addresses and ports, on device 1
            assert ft == (request[1], request[0], request[3], request[2], request[4])
            assert pkt.device == 1
        seen[request] += 1
    assert len(seen) == 100
    assert sum(n // 2 for n in seen.values()) > 2000  # replies are plentiful


def test_churn_flows_come_and_go():
    flows, count = 50, 20_000  # 20 ms at 1 Mpps
    packets = generate("churn", flows, count, seed=5, churn=10_000)  # 200 new flows
    first_seen: dict[tuple, int] = {}
    for index, pkt in enumerate(packets):
        first_seen.setdefault(five_tuple(pkt.data), index)
    assert flows + 150 < len(first_seen) <= flows + 201
    late = sorted(first_seen.values())
    assert sum(i > count // 2 for i in late) > 80  # new flows keep appearing
    head = {five_tuple(p.data) for p in packets[:1000]}
    tail = {five_tuple(p.data) for p in packets[-1000:]}
    assert len(head) <= flows + 10 and not head & tail  # old flows stopped
    default = generate_traffic("churn", flows, count, seed=5)
    assert 1.8 * flows < default.flows <= 2 * flows


def test_malformed_kinds_and_fraction():
    for count, fraction in ((1000, 0.03), (4000, 0.05)):
        packets = generate("malformed", 100, count, seed=6, malformed_fraction=fraction)
        kinds = Counter(frame_kind(p.data) for p in packets)
        assert set(kinds) == {"valid", *MALFORMED_KINDS}, kinds
        assert count - kinds["valid"] == round(fraction * count)
        assert all(len(p.data) > 0 for p in packets)
    small = generate("malformed", 10, 20, seed=6)  # 3% of 20 raised to one of each
    assert sum(frame_kind(p.data) != "valid" for p in small) == len(MALFORMED_KINDS)
    clean = generate("malformed", 10, 500, malformed_fraction=0)
    assert {frame_kind(p.data) for p in clean} == {"valid"}


def test_ip_options_frames_are_valid():
    packets = generate("malformed", 20, 2000, seed=8, malformed_fraction=0.2)
    with_options = [p.data for p in packets if frame_kind(p.data) == "ip_options"]
    assert with_options
    for frame in with_options:
        ip = dpkt.ethernet.Ethernet(frame).data
        assert 6 <= ip.hl <= 15 and dpkt.in_cksum(bytes(frame[14 : 14 + 4 * ip.hl])) == 0
        assert ip.data.sport and ip.data.dport


def test_deterministic_for_a_seed():
    for profile in PROFILES:
        assert generate(profile, 30, 500, seed=9) == generate(profile, 30, 500, seed=9)
        assert generate(profile, 30, 500, seed=9) != generate(profile, 30, 500, seed=10)


def test_devices_size_and_rate_options():
    one = generate("sessions", 10, 300, devices=1)
    assert {p.device for p in one} == {0}
    three = generate("uniform", 100, 3000, devices=3, size=128, rate_pps=1000)
    assert {p.device for p in three} == {0, 1, 2}
    assert {len(p.data) for p in three} == {128}
    assert three[1].time_ns - three[0].time_ns == 1_000_000
    assert generate("zipf", 10, 0) == []


def test_bad_parameters():
    for kwargs in ({"profile": "bursty"}, {"packets": -1}, {"flows": 0}, {"rate_pps": 0},
                   {"malformed_fraction": 1.5}, {"lan_net": "10.0.0.300/8"}, {"size": 20}):
        args = {"profile": "uniform", "flows": 10, "packets": 10, **kwargs}
        with pytest.raises(MaestroError):
            generate(args.pop("profile"), args.pop("flows"), args.pop("packets"), **args)


def test_flows_are_distinct_in_a_tiny_address_space():
    packets = generate("uniform", 2000, 20_000, lan_net="10.0.0.1/32", wan_net="1.2.3.4/32")
    tuples = {five_tuple(p.data) for p in packets}
    canonical = {t if is_lan(t[0]) else (t[1], t[0], t[3], t[2], t[4]) for t in tuples}
    assert len(tuples) == len(canonical) == 2000


def test_100k_zipf_trace_round_trip(tmp_path):
    packets = generate("zipf", 10_000, 100_000, seed=11)
    path = tmp_path / "big.pcapng"
    assert write_pcapng(path, packets) == 100_000
    assert read_trace(path) == packets


# --- CLI ----------------------------------------------------------------------


def test_cli_writes_a_trace(tmp_path, capsys):
    out = tmp_path / "trace.pcapng"
    status = main(["traffic", "--profile", "sessions", "--flows", "20", "--packets", "400",
                   "--seed", "3", "--rate", "1000", "-o", str(out)])
    assert status == 0
    packets = read_trace(out)
    assert len(packets) == 400 and packets[1].time_ns == 1_000_000
    assert packets == generate("sessions", 20, 400, seed=3, rate_pps=1000)
    summary = capsys.readouterr().out
    assert "400 packets" in summary and "20 flows" in summary and "dev1" in summary


def test_cli_bad_arguments(tmp_path, capsys):
    out = str(tmp_path / "t.pcapng")
    for argv in (["--packets", "-5"], ["--flows", "0"], ["--profile", "bursty"],
                 ["--zipf-s", "abc"], ["--malformed-fraction", "2"]):
        with pytest.raises(SystemExit) as info:
            main(["traffic", *argv, "-o", out])
        assert info.value.code == 2
    capsys.readouterr()
    assert main(["traffic", "--packets", "10", "-o", str(tmp_path / "no" / "t.pcapng")]) == 2
    message = " ".join(capsys.readouterr().err.split())  # rich may wrap it
    assert "cannot write" in message and "t.pcapng" in message
