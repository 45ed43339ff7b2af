"""Packet traces: the in-memory packet, pcap/pcapng files, and the replay file.

A trace is a sequence of `TracePacket`: the device the packet arrives on,
its timestamp in nanoseconds and its bytes (starting at the Ethernet header).
On disk it is a pcapng file whose interface id is the device.  The C
programs (reference runner, simulated NIC) read the *replay* format written
by `write_replay`, which the Python side produces after validating a trace.

Replay format (all little-endian):
    header:  8 bytes magic b"MTRACE1\\0", u32 packet count, u32 reserved (0)
    records: u64 time_ns, u16 device, u16 length, `length` bytes of packet
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from analyses.errors import MaestroError

REPLAY_MAGIC = b"MTRACE1\0"
_REPLAY_HEADER = struct.Struct("<8sII")
_REPLAY_RECORD = struct.Struct("<QHH")


@dataclass(frozen=True)
class TracePacket:
    """One packet of a trace: arrival device, time (ns) and frame bytes."""

    device: int
    time_ns: int
    data: bytes


class TraceError(MaestroError):
    """A trace that cannot be read; the message names the file and packet."""


def write_replay(path: str | Path, packets: Sequence[TracePacket]) -> None:
    """Write `packets` in the replay format read by the C runtime."""
    chunks = [_REPLAY_HEADER.pack(REPLAY_MAGIC, len(packets), 0)]
    for index, pkt in enumerate(packets):
        if not 0 <= pkt.device <= 0xFFFF or not 0 < len(pkt.data) <= 0xFFFF:
            raise TraceError(
                f"packet {index}: device {pkt.device} / length {len(pkt.data)} out of range"
            )
        chunks.append(_REPLAY_RECORD.pack(pkt.time_ns, pkt.device, len(pkt.data)))
        chunks.append(pkt.data)
    Path(path).write_bytes(b"".join(chunks))


def replay_size(packets: Iterable[TracePacket]) -> int:
    """Bytes the replay file of `packets` takes (for progress and checks)."""
    return _REPLAY_HEADER.size + sum(_REPLAY_RECORD.size + len(p.data) for p in packets)
