"""Internet checksums of a frame, as the verifier checks them.

An NF that rewrites a field and updates the checksum incrementally (RFC
1624, `nf_csum_update16/32`) keeps the one's-complement sum of the region
the checksum covers (header and checksum field together) unchanged.  So
two frames whose fields differ are both correctly checksummed relative to
each other exactly when their regions sum to the same value: that is what
`checksum_mismatches` compares (and how the NF treated each checksum).  It recomputes; it never excuses a checksum
field because another field differs.
"""
from __future__ import annotations

#: Checksum fields, as the field names of analyses/fields.py call them.
CHECKSUM_FIELDS = frozenset({"ipv4.csum", "tcp.csum", "udp.csum"})


def _sum16(data: bytes | bytearray, start: int, end: int, alignment: int) -> int:
    """One's-complement sum of the 16-bit words of data[start:end], words
    aligned on `alignment` (a missing last byte is a zero pad)."""
    total = 0
    for offset in range(start, end):
        total += data[offset] << (8 if (offset - alignment) % 2 == 0 else 0)
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def _normal(value: int) -> int:
    """0x0000 and 0xFFFF are the same number in one's complement."""
    return 0 if value == 0xFFFF else value


def region_sums(data: bytes | bytearray) -> dict[str, int]:
    """Per checksum of the frame (untagged IPv4; TCP or UDP, first fragment
    only), the one's-complement sum of what it covers, checksum included.
    A UDP checksum of zero (none) has no entry."""
    sums: dict[str, int] = {}
    if len(data) < 34 or data[12:14] != b"\x08\x00" or data[14] >> 4 != 4:
        return sums
    ihl = (data[14] & 0x0F) * 4
    if ihl < 20 or 14 + ihl > len(data):
        return sums
    sums["ipv4.csum"] = _normal(_sum16(data, 14, 14 + ihl, 14))
    proto, l4 = data[23], 14 + ihl
    fragment = int.from_bytes(data[20:22], "big") & 0x1FFF
    name = {6: "tcp.csum", 17: "udp.csum"}.get(proto)
    end = min(len(data), 14 + int.from_bytes(data[16:18], "big"))
    csum_at = l4 + (16 if proto == 6 else 6)
    if name is None or fragment or csum_at + 2 > end:
        return sums
    if proto == 17 and data[csum_at:csum_at + 2] == b"\0\0":
        return sums  # no UDP checksum
    pseudo = _sum16(data, 26, 34, 26) + proto + (end - l4)
    total = pseudo + _sum16(data, l4, end, l4)
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    sums[name] = _normal(total)
    return sums


def _field(data: bytes | bytearray, name: str) -> bytes | None:
    """The bytes of checksum field `name` (None when the frame has none)."""
    if name not in region_sums(data):
        return None
    if name == "ipv4.csum":
        return bytes(data[24:26])
    at = 14 + (data[14] & 0x0F) * 4 + (16 if name == "tcp.csum" else 6)
    return bytes(data[at:at + 2])


def checksum_mismatches(seq_in: bytes, seq_out: bytes, par_in: bytes, par_out: bytes) -> list[str]:
    """The checksums the parallel program did not handle as the sequential
    NF did, each recomputed: where the NF kept the region's sum (an
    incremental update, or nothing to update), the parallel output must keep
    the sum of the packet it received; where the NF left the checksum field
    as it was although the region changed, the parallel output must too;
    any other handling must give the sequential NF's bytes."""
    wrong = []
    before, after = region_sums(seq_in), region_sums(seq_out)
    par_before, par_after = region_sums(par_in), region_sums(par_out)
    for name in sorted(set(after) | set(par_after) | set(before)):
        if name in before and before.get(name) == after.get(name):
            ok = par_after.get(name) == par_before.get(name)
        elif _field(seq_out, name) == _field(seq_in, name):
            ok = _field(par_out, name) == _field(par_in, name)
        else:
            ok = _field(par_out, name) == _field(seq_out, name)
        if not ok:
            wrong.append(name)
    return wrong
