"""Toeplitz hash: Microsoft's verification vectors, the symmetric key,
agreement of the three implementations, linearity; NIC profiles."""
import random

import numpy as np
import pytest

from analyses.errors import MaestroError
from analyses.nic import IPV4, IPV4_L4, NICS, nic_profile
from analyses.toeplitz import (
    MICROSOFT_KEY,
    Toeplitz,
    byte_tables,
    hash_rows,
    ipv4_input,
    toeplitz_hash,
    window,
    windows,
)

# "Verifying the RSS hash calculation" (Microsoft), IPv4 table; also the
# 82599 datasheet's RSS verification suite that DPDK's test_thash.c uses:
# (source, source port, destination, destination port, IPv4 only, with TCP ports)
MICROSOFT_IPV4 = [
    ("66.9.149.187", 2794, "161.142.100.80", 1766, 0x323E8FC2, 0x51CCC178),
    ("199.92.111.2", 14230, "65.69.140.83", 4739, 0xD718262A, 0xC626B0EA),
    ("24.19.198.95", 12898, "12.22.207.184", 38024, 0xD2D0A5DE, 0x5C2B394A),
    ("38.27.205.30", 48228, "209.142.163.6", 2217, 0x82989176, 0xAFC7327F),
    ("153.39.163.191", 44251, "202.188.127.2", 1303, 0x5D1809C5, 0x10E828A2),
]
SYMMETRIC_KEY = bytes.fromhex("6d5a" * 20)


def test_microsoft_key_is_the_published_one():
    assert MICROSOFT_KEY.hex() == (
        "6d5a56da255b0ec24167253d43a38fb0d0ca2bcbae7b30b477cb2da38030f20c6a42b73bbeac01fa")


@pytest.mark.parametrize("src, sport, dst, dport, l3, l4", MICROSOFT_IPV4)
def test_microsoft_vectors_bit_level(src, sport, dst, dport, l3, l4):
    assert toeplitz_hash(MICROSOFT_KEY, ipv4_input(src, dst)) == l3
    assert toeplitz_hash(MICROSOFT_KEY, ipv4_input(src, dst, sport, dport)) == l4


@pytest.mark.parametrize("src, sport, dst, dport, l3, l4", MICROSOFT_IPV4)
def test_microsoft_vectors_table_driven(src, sport, dst, dport, l3, l4):
    table = Toeplitz(MICROSOFT_KEY)
    assert table.hash(ipv4_input(src, dst)) == l3
    assert table.hash(ipv4_input(src, dst, sport, dport)) == l4


def test_microsoft_vectors_numpy_batch():
    rows = np.array([list(ipv4_input(s, d, sp, dp)) for s, sp, d, dp, _, _ in MICROSOFT_IPV4], dtype=np.uint8)
    tables = byte_tables(np.array([windows(MICROSOFT_KEY, 96)], dtype=np.uint32))
    assert hash_rows(tables, rows)[0].tolist() == [v[5] for v in MICROSOFT_IPV4]
    l3 = byte_tables(np.array([windows(MICROSOFT_KEY, 64)], dtype=np.uint32))
    assert hash_rows(l3, rows[:, :8])[0].tolist() == [v[4] for v in MICROSOFT_IPV4]


def test_a_wrong_key_misses_the_vectors():
    """The vectors pin the bit order: a byte-swapped key must fail them."""
    swapped = MICROSOFT_KEY[::-1]
    s, sp, d, dp, _, l4 = MICROSOFT_IPV4[0]
    assert toeplitz_hash(swapped, ipv4_input(s, d, sp, dp)) != l4


def test_symmetric_key_maps_both_directions_to_one_index():
    rng = random.Random(3)
    table = Toeplitz(SYMMETRIC_KEY)
    for _ in range(200):
        a, b = rng.getrandbits(32), rng.getrandbits(32)
        pa, pb = rng.getrandbits(16), rng.getrandbits(16)
        forward = toeplitz_hash(SYMMETRIC_KEY, ipv4_input(a, b, pa, pb))
        assert forward == toeplitz_hash(SYMMETRIC_KEY, ipv4_input(b, a, pb, pa))
        assert table.hash(ipv4_input(a, b, pa, pb)) == forward
        assert forward & 511 == table.hash(ipv4_input(b, a, pb, pa)) & 511
    # ...while the Microsoft key does not
    assert any(
        toeplitz_hash(MICROSOFT_KEY, ipv4_input(a, b, 1, 2)) != toeplitz_hash(MICROSOFT_KEY, ipv4_input(b, a, 2, 1))
        for a, b in [(1, 2), (0x0A000001, 0x20000001)])


def test_implementations_agree_on_random_keys_and_inputs():
    rng = random.Random(1)
    for _ in range(20):
        key = bytes(rng.getrandbits(8) for _ in range(52))
        data = bytes(rng.getrandbits(8) for _ in range(12))
        expected = toeplitz_hash(key, data)
        assert Toeplitz(key).hash(data) == expected
        tables = byte_tables(np.array([windows(key, 96)], dtype=np.uint32))
        assert int(hash_rows(tables, np.frombuffer(data, dtype=np.uint8)[None, :])[0, 0]) == expected


def test_hash_is_linear_in_input_and_in_key():
    rng = random.Random(2)
    key = bytes(rng.getrandbits(8) for _ in range(40))
    other = bytes(rng.getrandbits(8) for _ in range(40))
    a, b = (bytes(rng.getrandbits(8) for _ in range(12)) for _ in range(2))
    xor = bytes(x ^ y for x, y in zip(a, b))
    assert toeplitz_hash(key, xor) == toeplitz_hash(key, a) ^ toeplitz_hash(key, b)
    both = bytes(x ^ y for x, y in zip(key, other))
    assert toeplitz_hash(both, a) == toeplitz_hash(key, a) ^ toeplitz_hash(other, a)


def test_window_is_what_a_single_input_bit_contributes():
    key = MICROSOFT_KEY
    for i in (0, 1, 7, 8, 63, 95):
        data = bytearray(12)
        data[i // 8] = 0x80 >> (i % 8)
        assert toeplitz_hash(key, bytes(data)) == window(key, 8 * len(key), i)


def test_input_longer_than_the_key_allows_is_refused():
    with pytest.raises(ValueError):
        toeplitz_hash(bytes(12), bytes(12))
    with pytest.raises(ValueError):
        Toeplitz(bytes(12), input_bytes=12)


def test_nic_profiles():
    assert (NICS["e810"].key_bytes, NICS["e810"].reta_size) == (52, 512)
    assert (NICS["x710"].key_bytes, NICS["x710"].reta_size) == (52, 512)
    assert (NICS["82599"].key_bytes, NICS["82599"].reta_size, NICS["82599"].reta_bits) == (40, 128, 7)
    assert (NICS["cx5"].key_bytes, NICS["cx5"].reta_size) == (40, 512)
    assert IPV4_L4.bits == 96 and IPV4.bits == 64
    assert IPV4_L4.field_names() == ["ipv4.src", "ipv4.dst", "l4.sport", "l4.dport"]
    assert IPV4_L4.offset("l4.dport") == 80 and IPV4.offset("l4.sport") is None
    for nic in NICS.values():
        assert {t.name for t in nic.hash_types} == {"ipv4-l4", "ipv4"}
    with pytest.raises(MaestroError, match="unknown NIC"):
        nic_profile("e1000")
