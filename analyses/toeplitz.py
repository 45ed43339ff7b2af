"""The Toeplitz hash of RSS, bit by bit and table-driven.

For input bits x[0..n-1] (network order, most significant bit first) and
key bits k[0..], hash bit j (0 = most significant of the 32) is
XOR_i x[i] AND k[i+j].  Equivalently the hash is the XOR, over the input
bits that are set, of the 32-bit key window k[i..i+31] that starts at the
bit: this module's `window`.  The NIC's RETA index is the low
log2(RETA size) bits of the hash.

`toeplitz_hash` is the literal definition (slow, the reference);
`Toeplitz` precomputes one 256-entry table per input byte (fast, what the
simulated NIC uses: once per flow); `byte_tables`/`hash_rows` do the same for
many keys and many packets at once with numpy (scoring candidate keys).
"""
from __future__ import annotations

import ipaddress
import struct

import numpy as np

#: Microsoft's RSS verification key (40 bytes), also DPDK's default.
MICROSOFT_KEY = bytes.fromhex(
    "6d5a56da255b0ec24167253d43a38fb0d0ca2bcbae7b30b477cb2da38030f20c6a42b73bbeac01fa"
)
_MASK32 = 0xFFFFFFFF


def toeplitz_hash(key: bytes, data: bytes) -> int:
    """The 32-bit Toeplitz hash of `data` under `key`, straight from the
    definition (hash bit j = XOR_i x[i] AND k[i+j]); the reference."""
    key_bits = 8 * len(key)
    if 8 * len(data) + 32 > key_bits:
        raise ValueError(f"a {len(key)}-byte key hashes at most {len(key) - 4} input bytes")
    k = [(key[t // 8] >> (7 - t % 8)) & 1 for t in range(key_bits)]
    x = [(data[i // 8] >> (7 - i % 8)) & 1 for i in range(8 * len(data))]
    result = 0
    for j in range(32):
        bit = 0
        for i, xi in enumerate(x):
            bit ^= xi & k[i + j]
        result |= bit << (31 - j)
    return result


def window(key: bytes | int, key_bits: int, i: int) -> int:
    """The 32-bit key window k[i..i+31]: what input bit i XORs into the hash.
    `key` is the key's bytes or its big-endian integer of `key_bits` bits."""
    key_int = int.from_bytes(key, "big") if isinstance(key, (bytes, bytearray)) else key
    return (key_int >> (key_bits - 32 - i)) & _MASK32


def windows(key: bytes, input_bits: int) -> list[int]:
    """`window` of every input bit 0..input_bits-1."""
    key_int = int.from_bytes(key, "big")
    return [window(key_int, 8 * len(key), i) for i in range(input_bits)]


class Toeplitz:
    """Table-driven Toeplitz for one key: one 256-entry table per input byte,
    so a hash costs one lookup and XOR per input byte."""

    def __init__(self, key: bytes, input_bytes: int = 12):
        if 8 * input_bytes + 32 > 8 * len(key):
            raise ValueError(f"a {len(key)}-byte key hashes at most {len(key) - 4} input bytes")
        self.key = bytes(key)
        per_bit = windows(self.key, 8 * input_bytes)
        self.tables: list[list[int]] = []
        for byte in range(input_bytes):
            table = [0] * 256
            for bit in range(8):  # the byte's MSB is input bit 8*byte
                w = per_bit[8 * byte + bit]
                step = 0x80 >> bit
                for value in range(256):
                    if value & step:
                        table[value] ^= w
            self.tables.append(table)

    def hash(self, data: bytes) -> int:
        """The hash of `data` (at most `input_bytes` bytes)."""
        result = 0
        for table, value in zip(self.tables, data):
            result ^= table[value]
        return result


def ipv4_input(src: int | str, dst: int | str, sport: int | None = None,
               dport: int | None = None) -> bytes:
    """The Toeplitz input of an IPv4 packet: src, dst (and sport, dport for
    TCP/UDP), network order.  Addresses as ints (host order) or strings."""
    data = struct.pack("!II", int(ipaddress.IPv4Address(src)), int(ipaddress.IPv4Address(dst)))
    if sport is not None or dport is not None:
        data += struct.pack("!HH", sport or 0, dport or 0)
    return data


def byte_tables(bit_windows: np.ndarray) -> np.ndarray:
    """Per-byte lookup tables for many keys at once.

    bit_windows: (keys, input_bits) uint32, the (possibly masked) window of
    each input bit.  Returns (keys, input_bits // 8, 256) uint32: entry
    [k, t, v] is the XOR of the windows of the bits set in value v at byte t.
    """
    keys, bits = bit_windows.shape
    per_byte = bit_windows.reshape(keys, bits // 8, 8)
    tables = np.zeros((keys, bits // 8, 256), dtype=np.uint32)
    for bit in range(8):  # doubling: values with bit (7 - bit) set reuse those without
        size = 1 << bit
        tables[:, :, size : 2 * size] = tables[:, :, :size] ^ per_byte[:, :, 7 - bit, None]
    return tables


def hash_rows(tables: np.ndarray, data: np.ndarray) -> np.ndarray:
    """Hash every row of `data` ((packets, bytes) uint8) under every key of
    `tables` (from byte_tables); returns (keys, packets) uint32."""
    keys = tables.shape[0]
    result = np.zeros((keys, data.shape[0]), dtype=np.uint32)
    for byte in range(data.shape[1]):
        result ^= tables[:, byte, :][:, data[:, byte]]
    return result
