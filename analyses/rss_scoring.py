"""How well RSS keys and a RETA spread traffic over the cores: scoring
traffic (uniform, Zipf, sources in one /16), per-core load scores, and
the RETA candidates synthesis chooses among (analyses/rss.py)."""
from __future__ import annotations

import ipaddress
import random
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from analyses import gf2
from analyses.rss_system import PROFILES, index_windows
from analyses.toeplitz import byte_tables, hash_rows

# --- traffic for scoring ------------------------------------------------------

#: Address ranges of the LAN and WAN sides of the scoring traffic.
LAN = ipaddress.IPv4Network("10.0.0.0/8")
WAN = ipaddress.IPv4Network("32.0.0.0/3")
#: The single source /16 of the src16 profile, per side.
SRC16 = {"lan": ipaddress.IPv4Network("10.1.0.0/16"), "wan": ipaddress.IPv4Network("45.12.0.0/16")}
_SERVICE = np.array([80, 443, 22, 25, 8080, 3306, 53, 123, 5060, 4789, 161])


@dataclass(frozen=True)
class DeviceTraffic:
    """Flows arriving on one device: Toeplitz inputs (flows x 12 bytes) and
    each flow's share of the packets."""

    data: np.ndarray
    weights: np.ndarray


@lru_cache(maxsize=16)
def score_traffic(devices: int, flows: int, seed: int) -> dict[str, tuple[DeviceTraffic, ...]]:
    """Per profile, per device, `flows` random TCP/UDP flows.

    Device 0 is the LAN: sources in 10.0.0.0/8, destinations in 32.0.0.0/3,
    ephemeral source ports, mostly well-known destination ports; the other
    devices see the WAN side (sources in 32.0.0.0/3, destinations in the LAN,
    well-known source ports).  uniform: every flow the same rate; zipf: the
    same flows, rate 1/rank**1.1; src16: uniform, but every source lies in one
    /16 (10.1.0.0/16 on the LAN, 45.12.0.0/16 on the WAN side).
    """
    rng = np.random.default_rng(seed)
    out: dict[str, list[DeviceTraffic]] = {p: [] for p in PROFILES}
    for device in range(devices):
        lan_side = device == 0
        src_net, dst_net = (LAN, WAN) if lan_side else (WAN, LAN)
        src16 = SRC16["lan" if lan_side else "wan"]
        src = _addresses(rng, src_net, flows)
        dst = _addresses(rng, dst_net, flows)
        ephemeral = rng.integers(1024, 65536, size=flows)
        service = np.where(rng.random(flows) < 0.7, rng.choice(_SERVICE, size=flows),
                           rng.integers(1, 65536, size=flows))
        sport, dport = (ephemeral, service) if lan_side else (service, ephemeral)
        uniform = _pack(src, dst, sport, dport)
        ones = np.ones(flows)
        out["uniform"].append(DeviceTraffic(uniform, ones))
        ranks = rng.permutation(flows) + 1
        out["zipf"].append(DeviceTraffic(uniform, 1.0 / ranks.astype(np.float64) ** 1.1))
        out["src16"].append(DeviceTraffic(_pack(_addresses(rng, src16, flows), dst, sport, dport), ones))
    return {p: tuple(v) for p, v in out.items()}


def _addresses(rng: np.random.Generator, net: ipaddress.IPv4Network, count: int) -> np.ndarray:
    return int(net.network_address) + rng.integers(1, net.num_addresses - 1, size=count)


def _pack(src, dst, sport, dport) -> np.ndarray:
    # network order: big-endian after stacking (np.stack returns native order)
    words = np.stack([src, dst], axis=1).astype(">u4").view(np.uint8).reshape(-1, 8)
    ports = np.stack([sport, dport], axis=1).astype(">u2").view(np.uint8).reshape(-1, 4)
    data = np.concatenate([words, ports], axis=1)
    data.flags.writeable = False
    return data


@dataclass(frozen=True)
class Score:
    """How one key set and RETA spread one traffic profile over the cores."""

    profile: str
    max_mean: float
    floor: float
    distinct: tuple[int, ...]  # RETA entries reached, per device
    load: tuple[float, ...]  # share of packets per core


def key_indexes(key_sets: list[dict[int, bytes]], traffic: dict[str, tuple[DeviceTraffic, ...]],
                reta_bits: int) -> dict[str, list[np.ndarray]]:
    """RETA index of every flow under every key set: per profile, per
    device, a (key sets, flows) array."""
    devices = len(next(iter(traffic.values())))
    tables = {}
    for device in range(devices):
        windows = np.array([index_windows(ks[device], reta_bits) for ks in key_sets], dtype=np.uint32)
        tables[device] = byte_tables(windows)
    return {profile: [hash_rows(tables[d], flows.data).astype(np.int64) for d, flows in enumerate(per_device)]
            for profile, per_device in traffic.items()}


def score_indexes(indexes: dict[str, list[np.ndarray]], traffic: dict[str, tuple[DeviceTraffic, ...]],
                  reta: list[int], cores: int) -> list[list[Score]]:
    """Per key set, per profile: max/mean core load (each device's flows
    carry the same total; a flow goes to core reta[index]), the floor any
    flow placement has (cores x the heaviest flow's share) and the RETA
    entries reached."""
    reta_arr = np.asarray(reta, dtype=np.int64)
    count = next(iter(indexes.values()))[0].shape[0]
    result: list[list[Score]] = [[] for _ in range(count)]
    for profile, per_device in indexes.items():
        loads = np.zeros((count, cores))
        distinct = np.zeros((count, len(per_device)), dtype=np.int64)
        heaviest = 0.0
        for device, index in enumerate(per_device):
            weights = traffic[profile][device].weights
            weights = weights / (weights.sum() * len(per_device))
            heaviest = max(heaviest, float(weights.max()))
            core = reta_arr[index] + cores * np.arange(count)[:, None]
            loads += np.bincount(core.ravel(), weights=np.broadcast_to(weights, core.shape).ravel(),
                                 minlength=cores * count).reshape(count, cores)
            seen = np.zeros((count, len(reta)), dtype=bool)
            seen[np.arange(count)[:, None], index] = True
            distinct[:, device] = seen.sum(axis=1)
        floor = round(max(1.0, heaviest * cores), 4)
        for k in range(count):
            result[k].append(Score(profile, float(loads[k].max() * cores), floor,
                                   tuple(int(d) for d in distinct[k]),
                                   tuple(round(float(s), 5) for s in loads[k])))
    return result


def score_keys(key_sets: list[dict[int, bytes]], traffic: dict[str, tuple[DeviceTraffic, ...]],
               reta: list[int], cores: int) -> list[list[Score]]:
    """`score_indexes` of key sets (the RETA index is the low log2(len(reta))
    hash bits whatever the keys were synthesized for)."""
    return score_indexes(key_indexes(key_sets, traffic, len(reta).bit_length() - 1), traffic, reta, cores)


def selection_score(scores: list[Score], reta_size: int) -> float:
    """Lower is better: max/mean on the uniform and /16 profiles, minus a
    bonus for RETA entries reached (keys whose index ignores the bits that
    vary lose it).  Zipf is left out: its imbalance comes from the heaviest
    flows, which no key spreads, and its noise would drown the signal."""
    kept = [s for s in scores if s.profile != "zipf"]
    spread = sum(sum(s.distinct) / (len(s.distinct) * reta_size) for s in kept)
    return sum(s.max_mean for s in kept) - 0.5 * spread


# --- the RETA -----------------------------------------------------------------


def round_robin_reta(reta_size: int, cores: int) -> list[int]:
    """RETA entry e -> core e mod cores."""
    return [e % cores for e in range(reta_size)]


def linear_reta(reta_size: int, rows: list[int]) -> list[int]:
    """RETA entry e -> core whose bit m is parity(rows[m] & e): a linear map
    of the index bits, so every core gets the same number of entries when
    the rows are independent."""
    return [sum(gf2.parity(row & e) << m for m, row in enumerate(rows)) for e in range(reta_size)]


def reta_candidates(reta_size: int, cores: int, count: int, rng: random.Random) -> list[list[int]]:
    """Round robin, and for a power-of-two number of cores `count - 1`
    random linear maps of the index bits onto the core bits.

    Round robin gives the core from the low index bits only, which the
    Toeplitz structure ties to few input bits when the index may depend on a
    narrow field (hhh's ipv4.src/24: only 3 source bits reach the low 4 index
    bits); a linear map that mixes all index bits spreads any such subspace
    evenly, and still gives every core the same number of entries."""
    out = [round_robin_reta(reta_size, cores)]
    bits = reta_size.bit_length() - 1
    core_bits = cores.bit_length() - 1
    if cores < 2 or cores & (cores - 1):
        return out
    while len(out) < count:
        rows = [rng.getrandbits(bits) for _ in range(core_bits)]
        if gf2.rank(rows, bits) == core_bits:
            out.append(linear_reta(reta_size, rows))
    return out
