"""The core (queue) the simulated NIC gives a frame under a plan: the
Python twin of runtime/dpdk/simnic.c's `rss_hash` and queue choice.

An IPv4 frame (IHL >= 5, at least 34 bytes) hashes its source and
destination addresses, and its ports too when the device's key hashes L4
fields, the frame is TCP or UDP, not a fragment, and holds the ports; the
queue is RETA[hash mod RETA size] mod cores.  Anything else goes to queue
0, as on real NICs.  tests/test_program.py checks this twin against the
queues the generated program reports."""
from __future__ import annotations

from typing import Any, Callable, Mapping

from analyses.toeplitz import Toeplitz


def frame_hash_input(data: bytes, l4: bool) -> bytes | None:
    """The bytes a NIC hashes for a frame (None: it hashes nothing)."""
    if len(data) < 34 or data[12:14] != b"\x08\x00" or data[14] >> 4 != 4 or data[14] & 0x0F < 5:
        return None
    l4_start = 14 + (data[14] & 0x0F) * 4
    fragment = int.from_bytes(data[20:22], "big") & 0x3FFF
    with_ports = l4 and data[23] in (6, 17) and not fragment and l4_start + 4 <= len(data)
    return data[26:34] + (data[l4_start:l4_start + 4] if with_ports else b"")


def queue_function(plan: Mapping[str, Any], devices: int) -> Callable[[int, bytes], int]:
    """queue(device, frame) -> the core the plan's RSS sends the frame to."""
    from codegen.generator import rss_config

    keys, key_len, l4 = rss_config(plan, devices)
    hashers = [Toeplitz(bytes(key[:key_len])) for key in keys]
    reta = [int(c) for c in plan.get("reta") or [0]]
    cores = max(1, int(plan.get("cores", 1)))

    def queue(device: int, data: bytes) -> int:
        hashed = frame_hash_input(data, bool(l4[device]))
        if hashed is None:
            return 0
        return reta[hashers[device].hash(hashed) % len(reta)] % cores

    return queue
