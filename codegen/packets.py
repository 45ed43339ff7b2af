"""Building Ethernet/IPv4/TCP/UDP frames for traces and tests (with dpkt).

Addresses are given as dotted strings or ints, MACs as "aa:bb:..." strings
or 6 bytes.  Checksums are computed by dpkt, so frames are valid on the wire.
"""
from __future__ import annotations

import ipaddress
import socket
import struct
from dataclasses import dataclass

import dpkt

TCP = dpkt.ip.IP_PROTO_TCP
UDP = dpkt.ip.IP_PROTO_UDP
ICMP = dpkt.ip.IP_PROTO_ICMP

#: Ethernet + IPv4 + UDP headers of a minimal frame; 60 bytes with padding.
MIN_FRAME = 60
#: The longest frame generated programs carry (a jumbo frame; the simulated
#: NIC's SIM_MAX_FRAME in codegen/runtime/dpdk/simnic.h).
MAX_FRAME = 9216


def mac_bytes(mac: str | bytes) -> bytes:
    """6 bytes of a MAC given as "aa:bb:cc:dd:ee:ff" or bytes."""
    if isinstance(mac, bytes):
        if len(mac) != 6:
            raise ValueError(f"MAC must be 6 bytes, got {len(mac)}")
        return mac
    parts = mac.split(":")
    if len(parts) != 6:
        raise ValueError(f"bad MAC {mac!r}")
    return bytes(int(p, 16) for p in parts)


def ip_bytes(ip: str | int) -> bytes:
    """4 bytes (network order) of an IPv4 address given as str or int."""
    if isinstance(ip, int):
        return struct.pack("!I", ip)
    return socket.inet_aton(str(ipaddress.IPv4Address(ip)))


@dataclass(frozen=True)
class FiveTuple:
    """An IPv4 flow: addresses as ints (host order), ports, protocol."""

    src: int
    dst: int
    sport: int
    dport: int
    proto: int = UDP

    def reversed(self) -> "FiveTuple":
        """The reply direction: addresses and ports swapped."""
        return FiveTuple(self.dst, self.src, self.dport, self.sport, self.proto)


def make_packet(
    src: str | int,
    dst: str | int,
    sport: int = 0,
    dport: int = 0,
    proto: int = UDP,
    *,
    src_mac: str | bytes = "02:00:00:00:00:01",
    dst_mac: str | bytes = "02:00:00:00:00:02",
    tcp_flags: int = dpkt.tcp.TH_ACK,
    payload: bytes = b"",
    ttl: int = 64,
    ip_id: int = 0,
    ip_options: bytes = b"",
    size: int = MIN_FRAME,
) -> bytes:
    """One Ethernet/IPv4 frame with a TCP, UDP or ICMP (echo) payload.

    `size` pads the frame with zero payload bytes up to that length (the
    60-byte Ethernet minimum by default); `ip_options` must be a multiple of 4
    bytes and moves the L4 header accordingly.
    """
    if proto == TCP:
        l4 = dpkt.tcp.TCP(sport=sport, dport=dport, flags=tcp_flags, data=payload)
    elif proto == UDP:
        l4 = dpkt.udp.UDP(sport=sport, dport=dport, data=payload)
    elif proto == ICMP:
        l4 = dpkt.icmp.ICMP(type=8, data=dpkt.icmp.ICMP.Echo(id=sport, seq=dport, data=payload))
    else:
        l4 = payload
    if len(ip_options) % 4:
        raise ValueError("IPv4 options must be a multiple of 4 bytes")
    ip = dpkt.ip.IP(
        src=ip_bytes(src), dst=ip_bytes(dst), p=proto, ttl=ttl, id=ip_id, data=l4
    )
    if ip_options:
        ip.opts = ip_options
        ip.hl = 5 + len(ip_options) // 4
    if hasattr(l4, "ulen"):
        l4.ulen = len(bytes(l4))
    ip.len = ip.__hdr_len__ + len(ip_options) + len(bytes(l4))
    eth = dpkt.ethernet.Ethernet(
        src=mac_bytes(src_mac), dst=mac_bytes(dst_mac), type=dpkt.ethernet.ETH_TYPE_IP, data=ip
    )
    frame = bytes(eth)
    if len(frame) < size:
        frame += bytes(size - len(frame))
    return frame


def flow_packet(flow: FiveTuple, **kwargs) -> bytes:
    """make_packet() for a FiveTuple."""
    return make_packet(flow.src, flow.dst, flow.sport, flow.dport, flow.proto, **kwargs)
