"""Path traffic makes the history a path needs across tables: a hit in one
table that the state has only together with a hit in another, where the
path needs a miss (tests/nfs/net_host.c: a host known whose /24 is not)."""
import random
import time
from pathlib import Path

from analyses.nf_source import resolve_nf
from analyses.report import build_report
from analyses.symbex import explore
from codegen.packets import make_packet
from codegen.path_traffic import _Builder
from codegen.trace import TracePacket

NET_HOST = Path(__file__).parent / "nfs" / "net_host.c"


def _outcomes(path):
    """(net outcome, host outcome) of a path: found / allocated / full."""
    seen = {}
    for call in path.calls:
        table = call.object.split("_")[0]
        if call.function == "map_get" and call.outcome == 1:
            seen[table] = "found"
        elif call.function == "dchain_allocate_new_index":
            seen[table] = "allocated" if call.outcome == 1 else "full"
    return seen.get("net"), seen.get("host")


def test_a_host_known_without_its_network_is_made_by_a_packet_that_finds_the_networks_full():
    exploration = explore(NET_HOST)
    analysis = build_report(exploration)
    builder = _Builder(resolve_nf(NET_HOST), analysis, exploration.paths, None, random.Random(1), {})
    explained = {p.id: p for p in analysis.paths}
    target = next(p for p in analysis.paths if _outcomes(p) == ("full", "found") and 1 in p.device)
    # two networks fill net_map; each host known is in one of them
    packets = [TracePacket(1, 1_000 * i, make_packet(src, "10.0.0.1")) for i, src in
               enumerate(["192.0.2.1", "198.51.100.1", "192.0.2.2"], 1)]
    cov, state = builder.replay(packets)
    assert not cov.unexplained
    packet, needs = builder.solve(builder.by_id[target.id], state, device=1)
    assert packet is None  # no known host lies outside the two networks
    [need] = needs
    assert need[0] == "fresh" and need[1] == "host_map" and need[3] == {"net_map"}
    made = builder.create(need, state, packets)
    cov, state = builder.replay(packets + made)
    assert [_outcomes(explained[p]) for p in cov.taken[len(packets)]] == [("full", "allocated")]
    packet, _ = builder.solve(builder.by_id[target.id], state, device=1)
    cov, _ = builder.replay(packets + made + [packet])
    assert cov.taken[len(packets) + len(made)] == [target.id]


def test_a_path_whose_hit_only_a_full_table_makes_is_driven_with_the_full_table_paths():
    """net_map sharded: "a /24 added while its host is known" needs a host
    made when net_map was full, so it waits for the one-core phase."""
    exploration = explore(NET_HOST)
    analysis = build_report(exploration)
    builder = _Builder(resolve_nf(NET_HOST), analysis, exploration.paths, None, random.Random(1), {})
    later = builder.needs_full_history({"net_chain"})
    full = builder.needs_full({"net_chain"})
    history = {p.id for p in analysis.paths if _outcomes(p) == ("allocated", "found")}
    assert history and history <= set(later) - set(full)
    assert all(later[p] == {"net_chain"} for p in history)
    assert not {p.id for p in analysis.paths if _outcomes(p)[0] == "found"} & set(later)


def test_a_path_that_needs_a_table_full_keeps_it_full_when_its_time_jumps():
    """"net full, host added" with both tables full: the host table gets
    room only once its oldest host expires, and the networks must not
    expire by then (they are younger): the solve's time lies between."""
    exploration = explore(NET_HOST)
    analysis = build_report(exploration)
    builder = _Builder(resolve_nf(NET_HOST), analysis, exploration.paths, None, random.Random(1), {})
    target = next(p for p in analysis.paths if _outcomes(p) == ("full", "allocated") and 1 in p.device)
    s = 1_000_000_000
    # two networks fill net_map at 0 s; a host added at 2 s while it is full;
    # at 10 s they expire and two others fill it, with 7 hosts more: host_map full
    hosts = [(0, "192.0.2.1"), (1, "198.51.100.1"), (2 * s, "203.0.113.1")]
    hosts += [(10 * s + i, f"{net}.{i}") for i, net in enumerate(["10.1.1", "10.2.2"] * 3 + ["10.1.1"], 2)]
    packets = [TracePacket(1, at, make_packet(src, "10.0.0.1")) for at, src in hosts]
    cov, state = builder.replay(packets)
    assert [_outcomes(next(p for p in analysis.paths if p.id == cov.taken[i][0]))
            for i in (2, 3)] == [("full", "allocated"), ("allocated", "allocated")]
    packet, needs = builder.solve(builder.by_id[target.id], state, device=1)
    assert not needs and 12 * s < packet.time_ns <= 20 * s  # the host of 2 s expired, the networks not
    cov, _ = builder.replay(packets + [packet])
    assert cov.taken[len(packets)] == [target.id]


def test_an_episode_makes_a_paths_history_on_its_own():
    """"net added, host found" needs a host made while net_map was full,
    then the networks expired and not the host: an episode, after a pause
    that empties both tables, fills net_map, makes the host, and reaches
    the path."""
    exploration = explore(NET_HOST)
    analysis = build_report(exploration)
    builder = _Builder(resolve_nf(NET_HOST), analysis, exploration.paths, None, random.Random(1), {})
    target = next(p for p in analysis.paths if _outcomes(p) == ("allocated", "found") and 1 in p.device)
    packets = [TracePacket(1, 1_000, make_packet("192.0.2.1", "10.0.0.1"))]
    assert target.id not in builder.replay(packets)[0].reached.get(1, [])
    trace = builder.episodes(packets, [(target.id, 1)], 1_000, time.perf_counter() + 120, None)
    assert trace[:1] == packets and trace[1].time_ns > 10_000_000_000  # the pause: every entry expired
    assert target.id in builder.replay(trace)[0].reached[1]
