"""What the analysis must report for each sample NF, exactly, written from
the NFs' specs (the comment opening each sample_nfs/*.c) and their code.

tests/test_analysis.py::test_sample_matches_its_spec compares these sets
with a fresh analysis with `==`: an access, relation, object or packet
write gained or lost fails it.

Per NF (`Expected`):
  objects        name -> (kind, capacity, key_size, elem_size, written)
  accesses       {(object, op, devices, key_fields)}: devices sorted, the
                 accesses merged over paths by (object, op, key_fields) as
                 the report merges them.  State API calls map to ops as
                 analyses/procedures.py models them: map_get read, map_put
                 write, vector_borrow read, vector_return write (only when
                 the cell changed since the borrow), dchain_allocate_new_index
                 create, dchain_rejuvenate_index update,
                 dchain_is_index_allocated verify, expire_items_single_map
                 expire on its chain, vector and map (key ()), sketch_fetch
                 read, sketch_touch_buckets write, sketch_refresh update,
                 sketch_expire expire, cht_find_preferred_available_backend
                 read on the cht (key: the hash) and a key-less verify on the
                 chain.
  relations      {(object, (device a, device b), frozenset of (field on a,
                 field on b), via)}.  Key relations ("key") pair every two
                 packet keys that can reach one map/sketch entry (distinct
                 devices or distinct fields); the report orders the two sides
                 by (device, key fields), so they are written in that order
                 here (an equality has no direction).  Cell relations
                 ("cell@<reader's key>") pair the fields a writer stored into
                 a vector cell with the packet fields a reader compares them
                 with, [writer, reader].
  packet_writes  {(devices, output, frozenset of fields)}: the distinct
                 shapes of the paths' packet rewrites.
  write_sources  {(devices, field): frozenset of sources} for the rewritten
                 fields other than checksums (whose sources are arithmetic
                 over many fields, "~hash").

`DISPUTED` lists where the analysis and the spec disagree and the analysis
looks wrong: each names the entry the spec calls for and what the analysis
reports instead.  `as_reported(nf)` is the expectation with those
differences applied, which is what the test compares with; when the
analysis is fixed the test fails and names the DISPUTED entry to remove.
"""
from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

LAN, WAN, BOTH = (0,), (1,), (0, 1)

FIVE_TUPLE = ("ipv4.src", "ipv4.dst", "l4.sport", "l4.dport", "ipv4.proto")
# fw's WAN reply, looked up as the LAN flow it answers.
REVERSED_FIVE_TUPLE = ("ipv4.dst", "ipv4.src", "l4.dport", "l4.sport", "ipv4.proto")

PARTS = ("objects", "accesses", "relations", "packet_writes", "write_sources")


class Expected(NamedTuple):
    objects: Mapping[str, tuple]
    accesses: set[tuple] | frozenset[tuple]
    relations: set[tuple] | frozenset[tuple] = frozenset()
    packet_writes: set[tuple] | frozenset[tuple] = frozenset()
    write_sources: Mapping[tuple, frozenset] = MappingProxyType({})


class Disputed(NamedTuple):
    """An entry where the analysis disagrees with the spec.  part: one of
    PARTS; spec: the entry the spec calls for (None: none); reported: what
    the analysis reports instead (None: nothing)."""

    nf: str
    part: str
    spec: Any
    reported: Any
    reason: str


# --- objects ----------------------------------------------------------------

def map_(capacity: int, key_size: int, written: bool = True) -> tuple:
    return ("map", capacity, key_size, None, written)


def vector(capacity: int, elem_size: int, written: bool = True) -> tuple:
    return ("vector", capacity, None, elem_size, written)


def dchain(capacity: int) -> tuple:
    return ("dchain", capacity, None, None, True)


# --- accesses -----------------------------------------------------------------

def expiry(chain: str, keys: str, map_name: str) -> set[tuple]:
    """expire_items_single_map(chain, keys, map, ...), first thing on every
    packet of either device."""
    return {(obj, "expire", BOTH, ()) for obj in (chain, keys, map_name)}


def learned(map_name: str, keys: str, chain: str, devices: tuple, key: tuple) -> set[tuple]:
    """The libVig idiom every stateful sample uses for an entry keyed by
    packet fields: map_get(key); found: dchain_rejuvenate_index(value); not
    found: dchain_allocate_new_index, vector_borrow(keys, index), copy the
    key into the cell, map_put(key in the cell, index), vector_return (the
    cell changed: a write)."""
    return {
        (map_name, "read", devices, key),
        (chain, "update", devices, (f"{map_name}.value",)),
        (chain, "create", devices, (f"{chain}.index",)),
        (keys, "read", devices, (f"{chain}.index",)),
        (map_name, "write", devices, key),
        (keys, "write", devices, (f"{chain}.index",)),
    }


def borrowed_and_changed(vec: str, devices: tuple, *indexes: str) -> set[tuple]:
    """A vector cell read and written back changed, at each index source."""
    return {(vec, op, devices, (index,)) for index in indexes for op in ("read", "write")}


def key_relation(obj: str, devices: tuple, a: tuple, b: tuple) -> tuple:
    return (obj, devices, frozenset(zip(a, b)), "key")


# --- packet writes ----------------------------------------------------------

def rewrites(devices: tuple, output: str, *fields: str) -> set[tuple]:
    """A rewrite of `fields` plus the IPv4 checksum, with the TCP checksum,
    the UDP checksum, or neither (a UDP checksum of 0 means "none" and stays
    0)."""
    base = frozenset(fields) | {"ipv4.csum"}
    return {(devices, output, base), (devices, output, base | {"tcp.csum"}),
            (devices, output, base | {"udp.csum"})}


EXPECTED: dict[str, Expected] = {}

# nop: no state, never parses or modifies the packet.
EXPECTED["nop"] = Expected(objects={}, accesses=set())

# sbridge: a static MAC table filled by nf_init, only read afterwards (so
# neither object is written); both devices look up eth.dst, then the entry's
# cell (device) at the index the map gave.  A table_entries cell is
# {6-byte MAC, uint16 device}, packed: 8 bytes.  Frames are never modified.
EXPECTED["sbridge"] = Expected(
    objects={"table_map": map_(64, 6, written=False),
             "table_entries": vector(64, 8, written=False)},
    accesses={("table_map", "read", BOTH, ("eth.dst",)),
              ("table_entries", "read", BOTH, ("table_map.value",))},
    # No packet writes table_map: nothing must agree between two lookups.
    relations=set(),
)

# bridge: every frame, on either device, learns eth.src (found: refresh and,
# when the host moved, rewrite its device cell; new: record the MAC and its
# device) and then looks up eth.dst, reading its device cell.
EXPECTED["bridge"] = Expected(
    objects={"mac_map": map_(65536, 6), "mac_keys": vector(65536, 6),
             "mac_devices": vector(65536, 2), "mac_chain": dchain(65536)},
    accesses={
        *expiry("mac_chain", "mac_keys", "mac_map"),
        *learned("mac_map", "mac_keys", "mac_chain", BOTH, ("eth.src",)),
        # found source (host moved) and forwarding lookup: mac_map.value;
        # a new source's device: mac_chain.index.
        ("mac_devices", "read", BOTH, ("mac_map.value",)),
        ("mac_devices", "write", BOTH, ("mac_map.value",)),
        *borrowed_and_changed("mac_devices", BOTH, "mac_chain.index"),
        ("mac_map", "read", BOTH, ("eth.dst",)),
    },
    # mac_map is written with eth.src on both devices and read with eth.src
    # and eth.dst on both: an entry learned from one frame's source is the
    # one another frame's destination (or, after the host moved, source)
    # reaches.
    relations={
        key_relation("mac_map", (0, 0), ("eth.dst",), ("eth.src",)),
        key_relation("mac_map", (1, 1), ("eth.dst",), ("eth.src",)),
        key_relation("mac_map", (0, 1), ("eth.src",), ("eth.dst",)),  # learned on 0, forwards 1's frames
        key_relation("mac_map", (0, 1), ("eth.dst",), ("eth.src",)),  # learned on 1, forwards 0's frames
        key_relation("mac_map", (0, 1), ("eth.src",), ("eth.src",)),  # a host moving between devices
    },
)

# pol: LAN frames pass untouched; WAN IPv4 frames are policed by the bucket of
# ipv4.dst (a new destination gets a full bucket, written at the chain's
# index; then the bucket is refilled and charged: always written back).
EXPECTED["pol"] = Expected(
    objects={"dst_map": map_(65536, 4), "dst_keys": vector(65536, 4),
             "dst_buckets": vector(65536, 16), "dst_chain": dchain(65536)},
    accesses={
        *expiry("dst_chain", "dst_keys", "dst_map"),
        *learned("dst_map", "dst_keys", "dst_chain", WAN, ("ipv4.dst",)),
        *borrowed_and_changed("dst_buckets", WAN, "dst_chain.index", "dst_map.value"),
    },
)

# fw: LAN packets open or refresh their 5-tuple's flow; WAN packets only look
# up (and refresh) the reversed 5-tuple.  flow_chain's refresh uses the map's
# value on both devices, so it is one access on (0, 1).
EXPECTED["fw"] = Expected(
    objects={"flow_map": map_(65536, 13), "flow_keys": vector(65536, 13),
             "flow_chain": dchain(65536)},
    accesses={
        *expiry("flow_chain", "flow_keys", "flow_map"),
        ("flow_map", "read", LAN, FIVE_TUPLE),
        ("flow_chain", "update", BOTH, ("flow_map.value",)),
        ("flow_chain", "create", LAN, ("flow_chain.index",)),
        ("flow_keys", "read", LAN, ("flow_chain.index",)),
        ("flow_map", "write", LAN, FIVE_TUPLE),
        ("flow_keys", "write", LAN, ("flow_chain.index",)),
        ("flow_map", "read", WAN, REVERSED_FIVE_TUPLE),
    },
    relations={key_relation("flow_map", (0, 1), FIVE_TUPLE, REVERSED_FIVE_TUPLE)},
)

# nat: LAN packets as fw's, then rewritten (source address and port); WAN
# packets reach the flow by index = l4.dport - NAT_START_PORT (verify,
# borrow, refresh), are checked against the stored flow (ipv4.src, l4.sport,
# ipv4.proto against the flow's destination address, port and proto; the
# cell is not changed, so no write) and rewritten back.
NAT_INDEX = ("l4.dport~offset",)
EXPECTED["nat"] = Expected(
    objects={"flow_map": map_(32768, 13), "flow_keys": vector(32768, 13),
             "flow_chain": dchain(32768)},
    accesses={
        *expiry("flow_chain", "flow_keys", "flow_map"),
        *learned("flow_map", "flow_keys", "flow_chain", LAN, FIVE_TUPLE),
        ("flow_chain", "verify", WAN, NAT_INDEX),
        ("flow_keys", "read", WAN, NAT_INDEX),
        ("flow_chain", "update", WAN, NAT_INDEX),
    },
    # The LAN stores its 5-tuple; the WAN reply's source, source port and
    # proto must equal the stored destination, destination port and proto.
    relations={("flow_keys", (0, 1),
                frozenset({("ipv4.dst", "ipv4.src"), ("l4.dport", "l4.sport"),
                           ("ipv4.proto", "ipv4.proto")}),
                "cell@l4.dport~offset")},
    packet_writes=rewrites(LAN, "1", "ipv4.src", "l4.sport") | rewrites(WAN, "0", "ipv4.dst", "l4.dport"),
    write_sources={
        (LAN, "ipv4.src"): frozenset({"const:0xcb007101"}),  # NAT_EXTERNAL_IP
        # hton16(NAT_START_PORT + index): an offset and a byte swap, "~hash"
        # (arithmetic); the index is the map's value or the new chain index.
        (LAN, "l4.sport"): frozenset({"flow_map.value~hash", "flow_chain.index~hash"}),
        (WAN, "ipv4.dst"): frozenset({"flow_keys.cell"}),
        (WAN, "l4.dport"): frozenset({"flow_keys.cell"}),
    },
)

# cl: WAN frames pass untouched; LAN flows as fw's, plus the (src, dst) pair's
# sketch: refreshed for a known flow, fetched for a new one and, once the
# flow is recorded, touched.
PAIR = ("ipv4.src", "ipv4.dst")
EXPECTED["cl"] = Expected(
    objects={"flow_map": map_(65536, 13), "flow_keys": vector(65536, 13),
             "flow_chain": dchain(65536), "pair_sketch": ("sketch", 65536, 8, None, True)},
    accesses={
        *expiry("flow_chain", "flow_keys", "flow_map"),
        ("pair_sketch", "expire", BOTH, ()),
        *learned("flow_map", "flow_keys", "flow_chain", LAN, FIVE_TUPLE),
        ("pair_sketch", "update", LAN, PAIR),
        ("pair_sketch", "read", LAN, PAIR),
        ("pair_sketch", "write", LAN, PAIR),
    },
)

# psd: LAN frames pass; WAN TCP/UDP packets count distinct l4.dport per
# ipv4.src.  The source's count cell: zeroed when the source is new (chain
# index), then read and, for a new (src, port) pair, incremented.
EXPECTED["psd"] = Expected(
    objects={"src_map": map_(65536, 4), "src_keys": vector(65536, 4),
             "src_counts": vector(65536, 4), "src_chain": dchain(65536),
             "port_map": map_(262144, 6), "port_keys": vector(262144, 6),
             "port_chain": dchain(262144)},
    accesses={
        *expiry("src_chain", "src_keys", "src_map"),
        *expiry("port_chain", "port_keys", "port_map"),
        *learned("src_map", "src_keys", "src_chain", WAN, ("ipv4.src",)),
        *learned("port_map", "port_keys", "port_chain", WAN, ("ipv4.src", "l4.dport")),
        *borrowed_and_changed("src_counts", WAN, "src_chain.index", "src_map.value"),
    },
)

# lb: LAN packets are backend heartbeats (backend_map by ipv4.src, the
# backend's {ip, mac} written at its new slot); WAN packets are client flows:
# a known flow reads its recorded backend slot (flow_backends at the map's
# value) and verifies it in backend_chain; otherwise the cht picks a backend
# by the flow's hash (a read of cht, a key-less verify of backend_chain) and
# the flow is re-pointed (flow_map.value) or recorded (flow_chain.index).
# The chosen backend's cell (at the cht's choice or the recorded slot) is
# read to rewrite the packet; nothing writes cht after nf_init.
EXPECTED["lb"] = Expected(
    objects={"flow_map": map_(65536, 13), "flow_keys": vector(65536, 13),
             "flow_backends": vector(65536, 4), "flow_chain": dchain(65536),
             "backend_map": map_(32, 4), "backend_ips": vector(32, 4),
             "backends": vector(32, 10), "backend_chain": dchain(32),
             "cht": ("cht", 97 * 32, None, 4, False)},
    accesses={
        *expiry("flow_chain", "flow_keys", "flow_map"),
        *expiry("backend_chain", "backend_ips", "backend_map"),
        *learned("backend_map", "backend_ips", "backend_chain", LAN, ("ipv4.src",)),
        *borrowed_and_changed("backends", LAN, "backend_chain.index"),
        *learned("flow_map", "flow_keys", "flow_chain", WAN, FIVE_TUPLE),
        *borrowed_and_changed("flow_backends", WAN, "flow_map.value", "flow_chain.index"),
        ("backend_chain", "verify", WAN, ("flow_backends.cell",)),
        # A hash has no byte order: its parts are the fields, sorted.
        ("cht", "read", WAN, tuple(sorted(f"{f}~hash" for f in FIVE_TUPLE))),
        ("backend_chain", "verify", WAN, ()),
        ("backends", "read", WAN, ("backend_chain.chosen",)),
        ("backends", "read", WAN, ("flow_backends.cell",)),
    },
    # flow_map is keyed on the WAN only and backend_map on the LAN only;
    # backends written by heartbeats are reached from the WAN through a slot
    # the chain chose, not through packet fields: no relation.
    packet_writes=rewrites(WAN, "0", "eth.dst", "ipv4.dst"),
    write_sources={(WAN, "eth.dst"): frozenset({"backends.cell"}),
                   (WAN, "ipv4.dst"): frozenset({"backends.cell"})},
)

# hhh: LAN frames pass; every WAN IPv4 packet is counted at each level
# against ipv4.src/L (a uint32_t key in network order with the host bits
# zero: the prefix, then constant zero bytes).  A counter cell is initialised
# when the prefix is new (chain index) and always updated (bytes += length).
HHH_KEYS = {16: ("ipv4.src/16", "const:0x0000"), 24: ("ipv4.src/24", "const:0x00"),
            32: ("ipv4.src",)}
EXPECTED["hhh"] = Expected(
    objects={name: spec for level in HHH_KEYS for name, spec in (
        (f"prefix{level}_map", map_(65536, 4)), (f"prefix{level}_keys", vector(65536, 4)),
        (f"prefix{level}_counters", vector(65536, 16)), (f"prefix{level}_chain", dchain(65536)))},
    accesses={access for level, key in HHH_KEYS.items() for access in (
        *expiry(f"prefix{level}_chain", f"prefix{level}_keys", f"prefix{level}_map"),
        *learned(f"prefix{level}_map", f"prefix{level}_keys", f"prefix{level}_chain", WAN, key),
        *borrowed_and_changed(f"prefix{level}_counters", WAN,
                              f"prefix{level}_chain.index", f"prefix{level}_map.value"))},
)


DISPUTED: list[Disputed] = [
    Disputed(
        "nat", "relations",
        spec=("flow_keys", (0, 1), frozenset({("ipv4.dst", "ipv4.src"), ("l4.dport", "l4.sport"),
                                              ("ipv4.proto", "ipv4.proto")}), "cell@l4.dport~offset"),
        reported=("flow_keys", (0, 1), frozenset({("ipv4.dst", "ipv4.src"), ("l4.dport", "l4.sport")}),
                  "cell@l4.dport~offset"),
        reason="the WAN check ip->proto != flow->proto is lost: on each path the proto is already "
               "fixed (6 or 17, by the checksum offset), so the condition reads cell.proto == 6 and "
               "the packet-cell equality is only implied, which _path_equalities does not find",
    ),
    Disputed(
        "sbridge", "relations", spec=None,
        reported=key_relation("table_map", (0, 1), ("eth.dst",), ("eth.dst",)),
        reason="pairs two lookups of a table no packet writes (table_map is read-only); "
               "model.Relation is [writer, reader] (harmless: the planner replicates it)",
    ),
    Disputed(
        "bridge", "relations", spec=None,
        reported=key_relation("mac_map", (0, 1), ("eth.dst",), ("eth.dst",)),
        reason="pairs two lookups by eth.dst, neither of which writes (mac_map is written with "
               "eth.src only); model.Relation is [writer, reader] (harmless: implied through the "
               "eth.src relations)",
    ),
]


def expected_sets(nf: str) -> dict[str, set]:
    """The spec's expectation of `nf`, each part as a set of hashable entries."""
    e = EXPECTED[nf]
    return {
        "objects": {(name, *spec) for name, spec in e.objects.items()},
        "accesses": set(e.accesses),
        "relations": set(e.relations),
        "packet_writes": set(e.packet_writes),
        "write_sources": {(*key, sources) for key, sources in e.write_sources.items()},
    }


def disputed(nf: str) -> list[Disputed]:
    return [d for d in DISPUTED if d.nf == nf]


def as_reported(nf: str) -> dict[str, set]:
    """The expectation with the DISPUTED differences applied: what the
    analysis reports today."""
    sets = expected_sets(nf)
    for d in disputed(nf):
        if d.spec is not None:
            sets[d.part].discard(d.spec)
        if d.reported is not None:
            sets[d.part].add(d.reported)
    return sets
