"""Synthetic IPv4 TCP/UDP traffic for benchmarks and equivalence checks.

`generate(profile, flows, packets, ...)` returns a list of `TracePacket`
that `codegen.trace.write_pcapng` writes to disk.  A trace is a pure
function of its parameters and `seed`.

Devices: device 0 is the LAN side, devices 1.. the WAN side (with more than
two devices each flow's WAN side is one of them, chosen at random; with one
device everything is on device 0).  LAN addresses come from `lan_net`, WAN
addresses from `wan_net`.  Packets are spaced evenly at `rate_pps`, so a
1M-packet trace at the default 1 Mpps spans one second.

Profiles:
  uniform    `flows` distinct flows, each packet picks one uniformly.  A share
             `inbound_share` (20% by default) of the flows is WAN-originated
             (WAN client -> LAN server, on the WAN device), the rest go LAN ->
             WAN on device 0.  `proto_mix` of the flows are TCP, the rest UDP.
  zipf       as uniform, but flow of rank r (1-based) has weight 1 / r**zipf_s.
  churn      `flows` flows are active at any time; `churn` new flows per second
             replace the oldest ones (default: the whole active set is replaced
             once over the trace).
  sessions   bidirectional: each flow's first packet is a LAN request on device
             0, later packets alternate with WAN replies (addresses and ports
             swapped) on the WAN device.  A reply never precedes its request.
  malformed  uniform traffic in which `malformed_fraction` of the packets are
             replaced by one of MALFORMED_KINDS, round-robin, so that each kind
             appears once the trace has at least len(MALFORMED_KINDS) bad
             packets (the count is raised to that minimum when possible).

Speed: every flow's frame is built once with `make_packet`; packets are numpy
index arrays into those frames, so 1M packets take about a second.
"""
from __future__ import annotations

import ipaddress
import math
import struct
from collections import Counter
from dataclasses import dataclass

import dpkt
import numpy as np

from analyses.errors import MaestroError
from codegen.packets import MAX_FRAME, MIN_FRAME, TCP, UDP, FiveTuple, flow_packet, mac_bytes
from codegen.trace import TracePacket

PROFILES = ("uniform", "zipf", "churn", "sessions", "malformed")

#: What the malformed profile injects (names used by tests and reports).
MALFORMED_KINDS = (
    "arp",  # non-IP: ARP request
    "ipv6",  # non-IPv4: IPv6/UDP
    "runt",  # fewer than 14 bytes: not even an Ethernet header
    "short_ip",  # 14..33 bytes: EtherType IPv4 but no full IPv4 header
    "ihl_small",  # IHL < 5
    "ihl_large",  # IHL * 4 reaches past the end of the frame
    "ip_options",  # valid IPv4 with options (IHL 6..15): L4 is shifted
    "truncated_l4",  # full IPv4 header, frame ends before/inside the ports
    "fragment",  # non-first fragment: no L4 header at all
    "bad_version",  # EtherType IPv4, version != 4
)

LAN_DEVICE = 0


def host_mac(address: int) -> bytes:
    """The MAC of the host with IPv4 `address`: 02:00 then the address, so a
    learning bridge sees each host's MAC as a source before it is a
    destination (locally administered, unicast)."""
    return b"\x02\x00" + int(address).to_bytes(4, "big")


DEFAULT_LAN_NET = "10.0.0.0/8"
#: Public unicast space without special-purpose blocks, disjoint from the LAN.
DEFAULT_WAN_NET = "32.0.0.0/3"
DEFAULT_RATE_PPS = 1_000_000

#: Server ports flows use most of the time (otherwise any port).
_SERVICE_PORTS = {
    TCP: np.array([80, 443, 22, 25, 8080, 3306]),
    UDP: np.array([53, 123, 443, 5060, 4789, 161]),
}
_WELL_KNOWN_SHARE = 0.7
_NS = 10**9
_IP = 14  # offset of the IPv4 header in a frame


@dataclass(frozen=True)
class Traffic:
    """A generated trace and how many distinct flows (sessions) it holds."""

    packets: list[TracePacket]
    flows: int

    def device_counts(self) -> dict[int, int]:
        """Packets per device, by device number."""
        return dict(sorted(Counter(p.device for p in self.packets).items()))


def generate(
    profile: str,
    flows: int,
    packets: int,
    *,
    seed: int = 0,
    zipf_s: float = 1.1,
    churn: float | None = None,
    devices: int = 2,
    malformed_fraction: float = 0.03,
    lan_net: str = DEFAULT_LAN_NET,
    wan_net: str = DEFAULT_WAN_NET,
    rate_pps: float = DEFAULT_RATE_PPS,
    proto_mix: float = 0.5,
    inbound_share: float = 0.2,
    size: int = MIN_FRAME,
    start_ns: int = 0,
) -> list[TracePacket]:
    """A synthetic trace of `packets` packets over `flows` flows.

    See the module docstring for the profiles.  `proto_mix` is the share of
    TCP flows (the rest are UDP), `size` the length of valid frames.  Raises
    MaestroError for parameters out of range.
    """
    return generate_traffic(
        profile, flows, packets, seed=seed, zipf_s=zipf_s, churn=churn, devices=devices,
        malformed_fraction=malformed_fraction, lan_net=lan_net, wan_net=wan_net,
        rate_pps=rate_pps, proto_mix=proto_mix, inbound_share=inbound_share, size=size,
        start_ns=start_ns,
    ).packets


def generate_traffic(profile: str, flows: int, packets: int, **options) -> Traffic:
    """Like `generate`, but also reports the number of distinct flows."""
    opts = _Options(profile=profile, flows=flows, packets=packets, **options)
    opts.check()
    rng = np.random.default_rng(opts.seed)
    times = _times(opts)
    ids = _flow_ids(rng, opts, times)
    ids, total = _compact(ids)  # only flows with packets get a 5-tuple/frame
    inbound = 0.0 if opts.profile == "sessions" else opts.inbound_share
    table = _FlowTable.sample(rng, total, opts, inbound)
    replies = _replies(ids) if opts.profile == "sessions" else None
    frames, devs = table.packet_frames(ids, replies, opts.size)
    if opts.profile == "malformed":
        _corrupt(rng, table, ids, frames, opts)
    trace = list(map(TracePacket, devs.tolist(), times.tolist(), frames.tolist()))
    return Traffic(trace, total)


# --- parameters ---------------------------------------------------------------


@dataclass
class _Options:
    profile: str
    flows: int
    packets: int
    seed: int = 0
    zipf_s: float = 1.1
    churn: float | None = None
    devices: int = 2
    malformed_fraction: float = 0.03
    lan_net: str = DEFAULT_LAN_NET
    wan_net: str = DEFAULT_WAN_NET
    rate_pps: float = DEFAULT_RATE_PPS
    proto_mix: float = 0.5
    inbound_share: float = 0.2
    size: int = MIN_FRAME
    start_ns: int = 0

    def check(self) -> None:
        """Raise MaestroError for the first parameter out of range."""
        profiles = ", ".join(PROFILES)
        problems = [
            (self.profile not in PROFILES, f"unknown profile {self.profile!r} (one of {profiles})"),
            (self.packets < 0, f"packets must be >= 0, got {self.packets}"),
            (self.flows < 1, f"flows must be >= 1, got {self.flows}"),
            (self.devices < 1, f"devices must be >= 1, got {self.devices}"),
            (not 0 <= self.zipf_s < math.inf, f"zipf_s must be finite and >= 0, got {self.zipf_s}"),
            (self.churn is not None and not 0 <= self.churn < math.inf,
             f"churn must be finite and >= 0 flows/s, got {self.churn}"),
            (not 0 < self.rate_pps < math.inf, f"rate_pps must be finite and > 0, got {self.rate_pps}"),
            (not 0 <= self.proto_mix <= 1, f"proto_mix must be in [0, 1], got {self.proto_mix}"),
            (not 0 <= self.inbound_share <= 1,
             f"inbound_share must be in [0, 1], got {self.inbound_share}"),
            (not 0 <= self.malformed_fraction <= 1,
             f"malformed_fraction must be in [0, 1], got {self.malformed_fraction}"),
            (not MIN_FRAME <= self.size <= MAX_FRAME,
             f"size must be in {MIN_FRAME}..{MAX_FRAME}, got {self.size}"),
            (self.start_ns < 0, f"start_ns must be >= 0, got {self.start_ns}"),
        ]
        for bad, message in problems:
            if bad:
                raise MaestroError(f"traffic: {message}")
        for net in (self.lan_net, self.wan_net):
            _network(net)


def _network(text: str) -> ipaddress.IPv4Network:
    try:
        return ipaddress.IPv4Network(text, strict=False)
    except ValueError as exc:
        raise MaestroError(f"traffic: bad IPv4 network {text!r}: {exc}") from exc


# --- which flow each packet belongs to ----------------------------------------


def _times(opts: _Options) -> np.ndarray:
    """Evenly spaced arrival times (ns); truncation keeps them nondecreasing."""
    step = _NS / opts.rate_pps
    return opts.start_ns + (np.arange(opts.packets, dtype=np.float64) * step).astype(np.int64)


def _flow_ids(rng: np.random.Generator, opts: _Options, times: np.ndarray) -> np.ndarray:
    """Flow index of every packet, per the profile."""
    if opts.profile == "zipf":
        weights = 1.0 / np.arange(1, opts.flows + 1, dtype=np.float64) ** opts.zipf_s
        return rng.choice(opts.flows, size=opts.packets, p=weights / weights.sum())
    offsets = rng.integers(0, opts.flows, size=opts.packets)
    if opts.profile != "churn":
        return offsets
    # Flow j is active while j - flows < started <= j: a sliding window.
    return _churn_started(opts, times) + offsets


def _churn_started(opts: _Options, times: np.ndarray) -> np.ndarray:
    """How many new flows have started by each packet's time."""
    if opts.churn is None:  # replace the active set once over the trace
        return np.arange(opts.packets, dtype=np.int64) * opts.flows // max(opts.packets, 1)
    per_ns = opts.churn / _NS
    return ((times - opts.start_ns) * per_ns).astype(np.int64)


def _compact(ids: np.ndarray) -> tuple[np.ndarray, int]:
    """Renumber the flows that have packets 0..n-1, keeping their order."""
    used, inverse = np.unique(ids, return_inverse=True)
    return inverse.astype(np.int64), len(used)


def _replies(ids: np.ndarray) -> np.ndarray:
    """True for the 2nd, 4th, ... packet of each flow (the WAN replies)."""
    count = len(ids)
    order = np.argsort(ids, kind="stable")
    ordered = ids[order]
    first = np.ones(count, dtype=bool)
    first[1:] = ordered[1:] != ordered[:-1]
    group_start = np.maximum.accumulate(np.where(first, np.arange(count), 0))
    replies = np.empty(count, dtype=bool)
    replies[order] = (np.arange(count) - group_start) % 2 == 1
    return replies


# --- the flows' 5-tuples and frames -------------------------------------------


@dataclass
class _FlowTable:
    """Per flow (arrays): client and server address/port, protocol, side."""

    client: np.ndarray
    server: np.ndarray
    cport: np.ndarray
    sport: np.ndarray
    proto: np.ndarray
    inbound: np.ndarray  # WAN client -> LAN server
    wan_device: np.ndarray
    ip_id: np.ndarray

    @classmethod
    def sample(cls, rng: np.random.Generator, count: int, opts: _Options, inbound_share: float):
        """`count` distinct random flows."""
        lan, wan = _network(opts.lan_net), _network(opts.wan_net)
        proto = np.where(rng.random(count) < opts.proto_mix, TCP, UDP).astype(np.int64)
        inbound = rng.random(count) < inbound_share
        lan_addr, wan_addr = _addresses(rng, lan, count), _addresses(rng, wan, count)
        cport = rng.integers(1024, 65536, size=count)
        sport = _service_ports(rng, proto)
        _make_distinct(rng, lan, lan_addr, wan_addr, cport, sport, proto, inbound)
        wan_device = 1 + rng.integers(0, max(opts.devices - 1, 1), size=count)
        if opts.devices == 1:
            wan_device[:] = LAN_DEVICE
        return cls(
            client=np.where(inbound, wan_addr, lan_addr),
            server=np.where(inbound, lan_addr, wan_addr),
            cport=cport, sport=sport, proto=proto, inbound=inbound, wan_device=wan_device,
            ip_id=rng.integers(0, 0x10000, size=count),
        )

    def five_tuple(self, flow: int, reply: bool = False) -> FiveTuple:
        """The request (client -> server) 5-tuple of a flow, or its reply."""
        ft = FiveTuple(
            int(self.client[flow]), int(self.server[flow]),
            int(self.cport[flow]), int(self.sport[flow]), int(self.proto[flow]),
        )
        return ft.reversed() if reply else ft

    def device(self, reply: bool) -> np.ndarray:
        """Per flow, the device its requests (or replies) arrive on."""
        from_wan = self.inbound != reply
        return np.where(from_wan, self.wan_device, LAN_DEVICE)

    def frames(self, flows: np.ndarray, reply: bool, size: int) -> np.ndarray:
        """Object array: the frame of each flow in `flows`, None elsewhere."""
        out = np.empty(len(self.proto), dtype=object)
        for flow in flows.tolist():
            ft = self.five_tuple(flow, reply)
            out[flow] = flow_packet(
                ft, src_mac=host_mac(ft.src), dst_mac=host_mac(ft.dst),
                ip_id=(int(self.ip_id[flow]) + reply) & 0xFFFF, size=size,
            )
        return out

    def packet_frames(self, ids: np.ndarray, replies: np.ndarray | None, size: int):
        """Object array of each packet's frame and int array of its device."""
        frames = self.frames(np.unique(ids), False, size)[ids]
        devices = self.device(False)[ids]
        if replies is not None and replies.any():
            back = self.frames(np.unique(ids[replies]), True, size)[ids]
            frames = np.where(replies, back, frames)
            devices = np.where(replies, self.device(True)[ids], devices)
        return frames, devices


def _addresses(rng: np.random.Generator, net: ipaddress.IPv4Network, count: int) -> np.ndarray:
    """Random host addresses (ints) of `net`, avoiding network/broadcast."""
    base, span = int(net.network_address), net.num_addresses
    low, high = (1, span - 1) if span > 2 else (0, span)
    return base + rng.integers(low, high, size=count)


def _service_ports(rng: np.random.Generator, proto: np.ndarray) -> np.ndarray:
    """Mostly well-known server ports of the flow's protocol, else any port."""
    count = len(proto)
    ports = rng.integers(1, 65536, size=count)
    pick = rng.random(count) < _WELL_KNOWN_SHARE
    for number, choices in _SERVICE_PORTS.items():
        rows = pick & (proto == number)
        ports[rows] = rng.choice(choices, size=int(rows.sum()))
    return ports


def _make_distinct(rng, lan, lan_addr, wan_addr, cport, sport, proto, inbound, rounds=50):
    """Resample LAN address and client port until no two flows share a
    5-tuple in either direction (in place)."""
    u64 = np.uint64
    for _ in range(rounds):
        # Key by LAN/WAN side, not client/server, so that no flow is the
        # reverse of another one.
        lan_port = np.where(inbound, sport, cport).astype(u64)
        wan_port = np.where(inbound, cport, sport).astype(u64)
        keys = np.stack(
            [(lan_addr.astype(u64) << u64(32)) | wan_addr.astype(u64),
             (lan_port << u64(24)) | (wan_port << u64(8)) | proto.astype(u64)],
            axis=1,
        )
        _, first = np.unique(keys, axis=0, return_index=True)
        dup = np.ones(len(keys), dtype=bool)
        dup[first] = False
        if not dup.any():
            return
        lan_addr[dup] = _addresses(rng, lan, int(dup.sum()))
        cport[dup] = rng.integers(1024, 65536, size=int(dup.sum()))
    raise MaestroError(
        f"traffic: cannot make {len(keys)} distinct flows in {lan}; use a larger lan_net"
    )


# --- malformed packets --------------------------------------------------------


def _corrupt(rng: np.random.Generator, table: _FlowTable, ids: np.ndarray,
             frames: np.ndarray, opts: _Options) -> None:
    """Replace a `malformed_fraction` of `frames` (in place), kinds round-robin."""
    total = len(frames)
    count = round(opts.malformed_fraction * total)
    if opts.malformed_fraction > 0:
        count = max(count, min(len(MALFORMED_KINDS), total))
    where = rng.choice(total, size=count, replace=False)
    kinds = rng.permutation(np.resize(np.arange(len(MALFORMED_KINDS)), count))
    for pos, kind in zip(where.tolist(), kinds.tolist()):
        mutate = _MUTATORS[MALFORMED_KINDS[kind]]
        frames[pos] = mutate(frames[pos], table.five_tuple(int(ids[pos])), rng, opts.size)


def _rand(rng: np.random.Generator, low: int, high: int) -> int:
    """A random int in [low, high)."""
    return int(rng.integers(low, high))


def _fix_ip_checksum(frame: bytearray) -> bytes:
    """Recompute the IPv4 header checksum of a 20-byte-header frame."""
    frame[_IP + 10 : _IP + 12] = b"\0\0"
    frame[_IP + 10 : _IP + 12] = struct.pack("!H", dpkt.in_cksum(bytes(frame[_IP : _IP + 20])))
    return bytes(frame)


def _pad(frame: bytes, size: int) -> bytes:
    return frame + bytes(max(size - len(frame), 0))


def _arp(frame, flow, rng, size):
    arp = dpkt.arp.ARP(
        sha=frame[6:12], spa=struct.pack("!I", flow.src), tpa=struct.pack("!I", flow.dst)
    )
    eth = dpkt.ethernet.Ethernet(
        src=frame[6:12], dst=mac_bytes("ff:ff:ff:ff:ff:ff"),
        type=dpkt.ethernet.ETH_TYPE_ARP, data=arp,
    )
    return _pad(bytes(eth), size)


def _ipv6(frame, flow, rng, size):
    udp = dpkt.udp.UDP(sport=flow.sport, dport=flow.dport, ulen=8)
    ip6 = dpkt.ip6.IP6(
        src=b"\xfd" + rng.bytes(15), dst=b"\xfd" + rng.bytes(15), nxt=UDP, hlim=64, data=udp
    )
    eth = dpkt.ethernet.Ethernet(
        src=frame[6:12], dst=frame[0:6], type=dpkt.ethernet.ETH_TYPE_IP6, data=ip6
    )
    return _pad(bytes(eth), size)


def _runt(frame, flow, rng, size):
    return frame[: _rand(rng, 1, 14)]  # never empty: traces reject 0-byte packets


def _short_ip(frame, flow, rng, size):
    return frame[: _rand(rng, 14, 34)]


def _ihl_small(frame, flow, rng, size):
    out = bytearray(frame)
    out[_IP] = 0x40 | _rand(rng, 0, 5)
    return bytes(out)


def _ihl_large(frame, flow, rng, size):
    ihl = _rand(rng, 6, 16)
    out = bytearray(frame[: min(len(frame), _IP + 4 * ihl - 1)])  # >= 37 bytes
    out[_IP] = 0x40 | ihl
    return bytes(out)


def _ip_options(frame, flow, rng, size):
    words = _rand(rng, 1, 11)  # IHL 6..15
    options = b"\x01" * (4 * words - 1) + b"\x00"  # NOPs, then end of options
    return frame[:12] + flow_packet(flow, ip_options=options, size=size)[12:]


def _truncated_l4(frame, flow, rng, size):
    return frame[: _IP + 20 + _rand(rng, 0, 4)]  # 0..3 bytes of the ports


def _fragment(frame, flow, rng, size):
    out = bytearray(frame)
    more = _rand(rng, 0, 2) << 13
    out[_IP + 6 : _IP + 8] = struct.pack("!H", more | _rand(rng, 1, 0x2000))
    return _fix_ip_checksum(out)


def _bad_version(frame, flow, rng, size):
    out = bytearray(frame)
    version = (4 + _rand(rng, 1, 16)) % 16  # any but 4
    out[_IP] = (version << 4) | 5
    return _fix_ip_checksum(out)


_MUTATORS = {
    "arp": _arp, "ipv6": _ipv6, "runt": _runt, "short_ip": _short_ip,
    "ihl_small": _ihl_small, "ihl_large": _ihl_large, "ip_options": _ip_options,
    "truncated_l4": _truncated_l4, "fragment": _fragment, "bad_version": _bad_version,
}
assert set(_MUTATORS) == set(MALFORMED_KINDS)
