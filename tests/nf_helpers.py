"""Helpers for the sample-NF behaviour tests: packets, malformed frames,
running an NF through the reference runner, parsing and checksum checks."""
from __future__ import annotations

import socket
import struct
from dataclasses import dataclass
from typing import Mapping, Sequence

import dpkt

from codegen.packets import ICMP, TCP, UDP, make_packet
from codegen.reference import NF_DROP, NF_FLOOD, PacketResult, run_reference
from codegen.trace import TracePacket

__all__ = [
    "ICMP", "TCP", "UDP", "NF_DROP", "NF_FLOOD", "LAN", "WAN", "MS", "US",
    "Frame", "run", "outputs", "pkt", "parse", "checksums_valid",
    "with_ip_field", "malformed_frames", "ip", "mac",
]

LAN = 0
WAN = 1
MS = 1_000_000  # ns
US = 1_000  # ns


def ip(addr: str) -> bytes:
    return socket.inet_aton(addr)


def mac(addr: str) -> bytes:
    return bytes(int(p, 16) for p in addr.split(":"))


def pkt(device: int, time_ns: int, src="10.0.0.1", dst="10.0.0.2", sport=1000,
        dport=2000, proto=UDP, **kwargs) -> TracePacket:
    """A TracePacket of make_packet(...) arriving on `device` at `time_ns`."""
    return TracePacket(device, time_ns, make_packet(src, dst, sport, dport, proto, **kwargs))


def run(nf: str, packets: Sequence[TracePacket], defines: Mapping[str, object] | None = None,
        *, sanitize: bool = False) -> list[PacketResult]:
    """Per-packet results of `packets` through sample `nf`."""
    result = run_reference(nf, list(packets), defines=defines, sanitize=sanitize)
    assert len(result.results) == len(packets)
    return result.results


def outputs(results: Sequence[PacketResult]) -> list[int]:
    return [r.output for r in results]


@dataclass(frozen=True)
class Frame:
    """The fields of an Ethernet/IPv4/TCP-UDP frame the tests look at."""

    eth_dst: bytes
    eth_src: bytes
    src: str
    dst: str
    sport: int
    dport: int
    proto: int
    ihl: int
    l4_csum: int


def parse(data: bytes) -> Frame:
    """Fields of an untagged IPv4 TCP/UDP frame (options honoured)."""
    ihl = (data[14] & 0x0F) * 4
    l4 = 14 + ihl
    proto = data[23]
    csum_off = l4 + (16 if proto == TCP else 6)
    sport, dport = struct.unpack("!HH", data[l4:l4 + 4])
    return Frame(
        eth_dst=data[0:6], eth_src=data[6:12],
        src=socket.inet_ntoa(data[26:30]), dst=socket.inet_ntoa(data[30:34]),
        sport=sport, dport=dport, proto=proto, ihl=ihl,
        l4_csum=struct.unpack("!H", data[csum_off:csum_off + 2])[0],
    )


def checksums_valid(data: bytes) -> bool:
    """True when the IPv4 header checksum and the TCP/UDP checksum (over the
    pseudo-header and the segment of ipv4.len) verify, computed with dpkt.
    A UDP checksum of 0 ("none") counts as valid."""
    ihl = (data[14] & 0x0F) * 4
    header = data[14:14 + ihl]
    if dpkt.in_cksum(header) != 0:
        return False
    total_len = struct.unpack("!H", data[16:18])[0]
    proto = data[23]
    segment = data[14 + ihl:14 + total_len]
    if proto == UDP and segment[6:8] == b"\0\0":
        return True
    pseudo = data[26:34] + struct.pack("!BBH", 0, proto, len(segment))
    return dpkt.in_cksum(pseudo + segment) == 0


def _fix_ip_csum(frame: bytearray) -> bytearray:
    ihl = (frame[14] & 0x0F) * 4
    frame[24:26] = b"\0\0"
    frame[24:26] = struct.pack("!H", dpkt.in_cksum(bytes(frame[14:14 + ihl])))
    return frame


def with_ip_field(frame: bytes, offset: int, value: bytes, fix_csum: bool = True) -> bytes:
    """`frame` with bytes at `offset` replaced (IPv4 checksum recomputed)."""
    out = bytearray(frame)
    out[offset:offset + len(value)] = value
    return bytes(_fix_ip_csum(out) if fix_csum else out)


def malformed_frames(src="10.0.0.1", dst="10.0.0.2", src_mac="02:00:00:00:00:0a",
                     dst_mac="02:00:00:00:00:0b") -> dict[str, tuple[str, bytes]]:
    """Frames an NF must survive, by name: (category, bytes).

    Categories: "not_eth" (shorter than an Ethernet header), "not_ip" (not a
    well-formed IPv4 header), "no_l4" (IPv4, but no TCP/UDP ports: other
    protocol, non-first fragment, ports truncated), "no_csum" (TCP with its
    ports but cut before its checksum field).
    """
    udp = make_packet(src, dst, 1111, 2222, UDP, src_mac=src_mac, dst_mac=dst_mac)
    tcp = make_packet(src, dst, 1111, 2222, TCP, src_mac=src_mac, dst_mac=dst_mac, size=0)
    eth = mac(dst_mac) + mac(src_mac)
    return {
        "one_byte": ("not_eth", b"\x02"),
        "short_13": ("not_eth", udp[:13]),
        "eth_only": ("not_ip", udp[:14]),
        "arp": ("not_ip", eth + b"\x08\x06" + bytes(46)),
        "ipv6_ethertype": ("not_ip", eth + b"\x86\xdd" + bytes(60)),
        "ip_truncated": ("not_ip", udp[:14 + 12]),
        "version_6": ("not_ip", with_ip_field(udp, 14, b"\x65")),
        "ihl_4": ("not_ip", with_ip_field(udp, 14, b"\x44", fix_csum=False)),
        "ihl_15_past_end": ("not_ip", with_ip_field(udp, 14, b"\x4f", fix_csum=False)),
        "ports_truncated": ("no_l4", udp[:14 + 20 + 2]),
        "fragment": ("no_l4", with_ip_field(udp, 20, struct.pack("!H", 100))),
        "icmp": ("no_l4", make_packet(src, dst, 7, 1, ICMP, src_mac=src_mac, dst_mac=dst_mac)),
        "gre": ("no_l4", with_ip_field(udp, 23, bytes([47]))),
        "tcp_no_checksum": ("no_csum", tcp[:14 + 20 + 10]),
    }
