"""NIC profiles: what a NIC's RSS hashes, how long its key is, how big its RETA.

A hash type is the tuple of packet fields the NIC feeds to Toeplitz for a
class of packets, in input order (network byte order, most significant bit
first).  Every profile here hashes IPv4 TCP/UDP packets (non-fragmented) on
the 4-tuple and other IPv4 packets (and fragments) on the address pair; the
profiles differ in key length and RETA size.
"""
from __future__ import annotations

from dataclasses import dataclass

from analyses.errors import MaestroError


@dataclass(frozen=True)
class HashType:
    """One RSS hash type: its name and its input fields as (field, bits)."""

    name: str
    fields: tuple[tuple[str, int], ...]

    @property
    def bits(self) -> int:
        """Length of the Toeplitz input in bits."""
        return sum(width for _, width in self.fields)

    def offset(self, field: str) -> int | None:
        """Bit offset of `field` in the input, None when it is not hashed."""
        position = 0
        for name, width in self.fields:
            if name == field:
                return position
            position += width
        return None

    def field_names(self) -> list[str]:
        """The input fields, in order."""
        return [name for name, _ in self.fields]


#: IPv4 TCP/UDP, non-fragmented: src ip, dst ip, src port, dst port (96 bits).
IPV4_L4 = HashType("ipv4-l4", (("ipv4.src", 32), ("ipv4.dst", 32), ("l4.sport", 16), ("l4.dport", 16)))
#: Other IPv4 packets and fragments: src ip, dst ip (64 bits).
IPV4 = HashType("ipv4", (("ipv4.src", 32), ("ipv4.dst", 32)))
HASH_TYPES = {t.name: t for t in (IPV4_L4, IPV4)}

#: Width in bits of every hashed field.
HASHED_FIELDS: dict[str, int] = dict(IPV4_L4.fields)


@dataclass(frozen=True)
class NicProfile:
    """What RSS looks like on one NIC model."""

    name: str
    title: str
    key_bytes: int
    reta_size: int
    hash_types: tuple[HashType, ...] = (IPV4_L4, IPV4)

    @property
    def reta_bits(self) -> int:
        """Hash bits that index the RETA (its low log2(size) bits)."""
        return self.reta_size.bit_length() - 1

    def hashed_fields(self) -> list[str]:
        """Every field some hash type of this NIC reads."""
        seen: list[str] = []
        for hash_type in self.hash_types:
            seen += [f for f in hash_type.field_names() if f not in seen]
        return seen


NICS: dict[str, NicProfile] = {
    "e810": NicProfile("e810", "Intel E810", 52, 512),
    "x710": NicProfile("x710", "Intel XL710", 52, 512),
    "82599": NicProfile("82599", "Intel 82599", 40, 128),
    "cx5": NicProfile("cx5", "NVIDIA/Mellanox ConnectX-5", 40, 512),
}


def nic_profile(name: str | NicProfile) -> NicProfile:
    """The profile called `name` (MaestroError naming the known ones)."""
    if isinstance(name, NicProfile):
        return name
    try:
        return NICS[name]
    except KeyError:
        raise MaestroError(f"unknown NIC {name!r} (one of {', '.join(NICS)})") from None
