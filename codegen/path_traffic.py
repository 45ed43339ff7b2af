"""Traffic that drives an NF down each of its explored paths.

`path_traffic` starts from the analysis's symbolic paths and builds a trace
in rounds, with the sequential NF as the judge:

1. each round replays the trace so far through the reference runner with
   call tracing (which path each packet took: analyses/coverage.py) and
   the state it leaves (map keys, allocated indexes, vector cells);
2. for every path not reached yet, z3 solves the path's condition joined
   with that state: a path that needs a map hit gets the key of an entry
   that exists, a path that needs a miss a key that does not, an index
   check an allocated (or free) index, a borrowed cell the content the
   cell really holds, an expiry a time past the entries' last touch;
3. when the state lacks what a path needs, the round first sends packets
   that create it: for a hit, a packet of a path that puts the key the
   path will look up; for an allocated index, a packet that allocates one;
   for a full table, as many allocating packets as the table has room
   (when that is a few hundred: lower the capacity with -D otherwise),
   from paths that allocate in no table the path needs room in where they
   can (hosts of a known /24 fill the /32 table and leave the /24 one
   room), in passes replayed until the table is full; a round fills no
   table another of its paths needs room in (that path goes first in the
   next round); a path that needs a table full keeps it full: its time may
   not let an entry of it expire (on the path's first try; later tries may,
   and their copies find it full);
   for a hit that no entry gives together with the path's misses (z3's
   unsat core names them: a /24 known whose /16 the path needs unknown), a
   new entry put by a packet that leaves the missed tables alone (one that
   finds them full, when no other does: such a path is driven with the
   full-table paths), one entry for all the hits of the conflict when one
   is not enough (a /24 and its /32 known while their /16 is not), its
   keys new to their tables and taken from z3's model with those hits
   given up (the others still bound to the state: a new /32 in a /24 it
   knows); what a path still lacks once its set-up is made is made in a
   second stage of the round, and a third (a table filled, then an entry
   made while it is full, then the path);
   a table each core of the parallel program has its own instance of (a
   sharded table) must not fill then: a round begins after a pause that
   expires every entry when one is half full, and a batch stops before a
   packet that would find it full.  Its full-table paths come last: after
   such a pause, every packet lands on one core (RSS as the plan sets it:
   codegen/rss_queue.py; the free bytes are drawn again until it does),
   so that core's table and the NF's fill together (that phase gets the
   share of the time its paths have of all, from a quarter to three
   quarters);
4. a path whose packet was sent but took another path usually waits for a
   count to pass a threshold (a sketch's estimate, a counter in an NF
   variable), as does a path no cell of the state allows (a token bucket
   drained, a count past its threshold: its packet is solved for the cell
   as it would have to be, and repeated unchanged): later rounds repeat its packet, 64 times, then 256, 1024...,
   one copy in three with a new L4 source port (a new flow between the
   same addresses, for counters of flows), one in three with a new
   destination port (for counters of ports, as a scan); odd tries send the
   copies in the same nanosecond (a burst: a token bucket emptied with no
   time to refill), even ones a step apart;
5. rounds get half of each phase's time and packets; then each path still
   not reached gets an episode of its own, where a pause empties every
   table (every chain's entries expire): the packets one round makes for
   that path alone, in two tries, in passes over the paths while time is
   left.  In a round, one path's packets refresh the entries another needs
   expired; in an episode nothing else runs, a hit whose cells do not
   allow the path (a window started too long ago) gets a fresh entry too,
   a fresh entry's creator that needs tables full gets them filled
   first, a round has one more set-up stage, and the second try makes
   fresh entries as late as their packets allow (a window such an entry
   starts still runs when the path comes, after the entries that filled
   a table expired).  Where a pause empties every table, the one-core
   phase and the episodes replay only the packets since their pause.

Bytes the condition leaves free come from a well-formed frame with random
addresses, ports and MACs, so that packets spread over the cores the way
real flows do (and cross-core pairs are exercised).  Paths still not
reached at the end are reported, each with its condition in
words (what the state or a variable's value would have to be).
"""
from __future__ import annotations

import random
import re
import time
from contextlib import contextmanager
from itertools import combinations

import dpkt
import z3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Collection, Mapping

from analyses.angr_env import bit_vector_solver, claripy
from analyses.coverage import Coverage, Observation, PathMatcher, coverage
from analyses.errors import MaestroError
from analyses.fields import byte_field
from analyses.model import Analysis
from analyses.nf_source import NFSource, resolve_nf
from analyses.report import build_report
from analyses.symbex import PathResult, explore
from codegen.packets import TCP, UDP, make_packet
from codegen.reference import RunState, run_reference
from codegen.trace import TracePacket

#: Packets between two rounds' packets, in ns (1 us).
STEP_NS = 1_000
#: At most this many state entries are offered to the solver at once (a
#: bigger disjunction costs more per check than it brings).
CANDIDATES = 16
#: A path that needs a miss avoids this many existing keys or indexes (a
#: random key rarely hits one; the replay tells if it did).
AVOIDED = 32
#: A table is filled to reach its "full" paths when it has at most this much room.
FILL_LIMIT = 512

#: How far past the earliest time it allows a packet that needs time to
#: pass comes (ns): an expiry is not decided by the order of packets
#: around it (1 ms: a thousand packets' steps).
MARGIN_NS = 1_000_000

#: Rounds a path no cell allows gets a packet solved for a cell as it would
#: have to be (its copies: 64, then 256)
FREE_CELL_TRIES = 2
#: Passes at filling a table, each replayed to see what room is left.
FILL_PASSES = 4
#: Rounds an episode of one path runs, and passes over the paths (episodes).
EPISODE_TRIES = 2
EPISODE_PASSES = 3
#: Set-up stages per round: a path's needs are made, it is solved again,
#: and what it lacks then is made in the next stage (a table filled, then an
#: entry made while it is full, then the path).
SETUP_STAGES = 3
#: Tries at a packet that lands on the core the one-core phase uses.
CORE_TRIES = 12
#: Why a table of `per_core` is not filled when the cores are not known.
PER_CORE_NOTE = "each core of the program has its own instance (which core a packet reaches is not known)"
EXPIRIES = ("expire_items_single_map", "dchain_expire_one_index")

_PKT = re.compile(r"^pkt_(\d+)_")
_L4 = re.compile(r"^l4_(\d+)_")


@dataclass
class PathTraffic:
    """The generated trace, the coverage the reference gives it, and notes."""

    packets: list[TracePacket]
    analysis: Analysis
    coverage: Coverage
    rounds: int
    notes: list[str] = field(default_factory=list)
    #: a pause after which every entry of the NF's tables has expired (ns)
    quiet_ns: int = STEP_NS


def path_traffic(
    nf: str | Path | NFSource,
    *,
    defines: Mapping[str, object] | None = None,
    seed: int = 1,
    rounds: int = 8,
    max_packets: int = 20000,
    paths: list[PathResult] | None = None,
    analysis: Analysis | None = None,
    progress: Callable[[str], None] | None = None,
    no_fill: Mapping[str, str] | None = None,
    per_core: Collection[str] = (),
    queue_of: Callable[[int, bytes], int] | None = None,
    seconds: float = 60.0,
) -> PathTraffic:
    """A trace reaching every path it can (see the module doc).  `paths`/
    `analysis`: an exploration already made (else the NF is explored).
    no_fill: tables never filled, with why; per_core: tables each core of
    the program has its own instance of, with the NF's capacity (a sharded
    table): their full-table paths are driven last, all on one core
    (`queue_of(device, frame)`: the core the program gives a frame), after
    a pause that expires every entry, so that core's table and the NF's one
    fill together (without queue_of they are not driven); seconds: solving
    stops after this long (the notes say so)."""
    source = nf if isinstance(nf, NFSource) else resolve_nf(nf)
    if paths is None or analysis is None:
        exploration = explore(source, defines=defines)
        paths, analysis = exploration.paths, build_report(exploration)
    capacity = {o.name: o.capacity for o in analysis.objects}
    # (a bigger table is not filled at all, and its note says so)
    fillable = {t for t in per_core if capacity.get(t, 0) <= FILL_LIMIT}
    unfilled = {**{t: PER_CORE_NOTE for t in fillable}, **dict(no_fill or {})}
    builder = _Builder(source, analysis, paths, defines, random.Random(seed), unfilled, queue_of)
    deadline = time.perf_counter() + seconds
    periods = builder.periods
    last = builder.needs_full_history(fillable) if queue_of else {}
    if queue_of:  # those tables must not fill before the one-core phase
        builder.guarded = {t: periods[t] for t in fillable if t in periods}
    # the one-core phase gets the share of the time and packets its paths
    # have of all, from a quarter to three quarters (hhh: most paths need
    # some level's table full)
    share = min(0.75, max(0.25, len(last) / len(paths))) if last else 0.0
    # each phase: rounds for half its time and packets, then an episode for
    # each path still not reached
    first_packets, first_end = int(max_packets * (1 - share)), deadline - seconds * share
    packets, done = builder.rounds([], rounds, first_packets // 2, (time.perf_counter() + first_end) / 2,
                                   progress, skip=set(last))
    cov, _ = builder.replay(packets)
    packets = builder.episodes(packets, sorted((p, d) for d, ids in cov.missed().items() for p in ids
                                               if p not in last), first_packets, first_end, progress)
    cov, _ = builder.replay(packets)
    tail = {(p, d) for d, ids in cov.missed().items() for p in ids if p in last}
    if tail and packets and len(packets) < max_packets:
        tables = set().union(*(last[p] for p, _ in tail))
        if not tables <= set(periods):
            builder.notes.append(f"{', '.join(sorted(tables - set(periods)))} never expire: their full-table "
                                 "paths are not driven on one core (each core's table fills at its own moment)")
        else:
            # a copy of the last packet, on its core, once every entry expired:
            # from there that core's tables and the NF's ones hold the same
            builder.core = queue_of(packets[-1].device, packets[-1].data)
            builder.time += max(periods.values()) + STEP_NS
            packets.append(TracePacket(packets[-1].device, builder.time, packets[-1].data))
            builder.guarded = {}
            for table in sorted(tables):
                builder.unfilled.pop(table, None)
            if progress:
                progress(f"full tables on core {builder.core}: {', '.join(sorted(tables))}")
            # (its replays start at the pause where that empties every
            # table: the trace before leaves nothing the paths depend on)
            start = len(packets) - 1 if builder.pause_empties() else 0
            middle = (time.perf_counter() + deadline) / 2
            later, more = builder.rounds(packets[start:], rounds, (max_packets + len(packets)) // 2 - start,
                                         middle, progress, only={p for p, _ in tail})
            packets = packets[:start] + later
            done += more
            cov, _ = builder.replay(later)
            packets = builder.episodes(packets, sorted((p, d) for d, ids in cov.missed().items()
                                                       for p in ids if (p, d) in tail),
                                       max_packets, deadline, progress)
    cov, _ = builder.replay(packets)
    notes = []
    for device, ids in cov.missed().items():
        for p in ids:
            notes.append(f"path {p} not reached on device {device}: {cov.described[p]}")
    quiet = max(periods.values(), default=0) + STEP_NS
    return PathTraffic(packets, analysis, cov, done, notes + list(dict.fromkeys(builder.notes)), quiet)


def expiry_periods(paths: list[PathResult]) -> dict[str, int]:
    """table -> how long an entry lives untouched (ns): `now - key` of the
    NF's expiry calls, where that is a constant."""
    periods: dict[str, int] = {}
    for path in paths:
        now = _inputs(path).get("time")
        for call in path.calls:
            if now is not None and call.key is not None and call.function in EXPIRIES:
                period = claripy.simplify(now - call.key)
                if not period.symbolic and call.object not in periods:
                    periods[call.object] = claripy.backends.concrete.convert(period).value
    return periods


class _Builder:
    """Solves paths against the state of the trace so far."""

    def __init__(self, source: NFSource, analysis: Analysis, paths: list[PathResult],
                 defines: Mapping[str, object] | None, rng: random.Random, unfilled: dict[str, str],
                 queue_of: Callable[[int, bytes], int] | None = None):
        self.source, self.analysis, self.defines, self.rng = source, analysis, defines, rng
        #: tables not to fill, with why
        self.unfilled = unfilled
        self.queue_of = queue_of
        #: the core every packet must land on (None: any)
        self.core: int | None = None
        #: tables the trace must not fill (each core has its own), with
        #: how long their entries live: a round starts after a pause that
        #: expires them all when one is half full, and a batch stops before
        #: a packet that would find one full
        self.guarded: dict[str, int] = {}
        self.by_id = {p.id: p for p in paths}
        #: table -> how long its entries live untouched (ns)
        self.periods = expiry_periods(paths)
        allocated = sorted((o for o in analysis.objects if o.allocated), key=lambda o: o.order)
        self.order = {o.name: o.order for o in allocated}
        self.objects = {o.name: o for o in allocated}
        self.key_sizes = [o.key_size or 0 for o in allocated]
        self.notes: list[str] = []
        self.time = 0
        self.outcomes: dict[tuple, tuple[bool, bool]] = {}
        self.solvers: dict[int, _PathSolver] = {}
        self.mentions: dict[int, set[str]] = {}
        #: (path id, expiry count symbol) -> whether the path tests it
        self.count_tests: dict[tuple[int, str], bool] = {}
        #: matches each replay's packets to the paths (made once)
        self.matcher = _RememberingMatcher(analysis)
        #: (function, object) -> the paths that make it succeed (_paths_calling)
        self.callers: dict[tuple[str, str], list[PathResult]] = {}
        #: per path, the tries made with its cells free (_tests_cells)
        self.free_tries: dict[int, int] = {}
        #: (object, path id) of each path's writes
        self.writes = {(a.object, p) for a in analysis.accesses if a.op == "write" for p in a.paths}
        #: indexes offered to a path's index symbols in the solve under way
        self.offered: dict[frozenset, list[int]] = {}
        #: the solve under way's hits, misses and room an expiry must make,
        #: each under a literal that tells which of them conflict when it is
        #: unsatisfiable: literal, ("hit", "miss", "room" or "full", the call)
        self.tracked: list[tuple] = []
        #: whether an episode is under way (episodes), and whether its fresh
        #: entries are made at the latest time their packet allows (its
        #: second try), else the earliest
        self.episode = self.late_entries = False
        #: paths whose table a round did not fill (another path needed room in it)
        self.waiting: set[int] = set()
        #: tables -> the paths that need some of them full (needs_full)
        self.full_needs: dict[frozenset, dict[int, frozenset[str]]] = {}

    def rounds(self, packets: list[TracePacket], rounds: int, max_packets: int, deadline: float,
               progress: Callable[[str], None] | None, skip: set[int] = frozenset(),
               only: set[int] | None = None) -> tuple[list[TracePacket], int]:
        """`packets` and up to `rounds` rounds more aimed at the paths not
        reached (those of `only`, else all but `skip`); how many ran."""
        packets, given_up, done = list(packets), {}, 0
        for done in range(1, rounds + 1):
            if time.perf_counter() > deadline:
                self.notes.append(f"stopped after {done - 1} rounds: the budget of traffic generation")
                break
            cov, state = self.replay(packets)
            if self.half_full(state) and packets:
                self.time += max(self.guarded.values()) + STEP_NS
                packets.append(TracePacket(packets[-1].device, self.time, packets[-1].data))
                cov, state = self.replay(packets)
            missed = sorted((p, d) for d, ids in cov.missed().items() for p in ids
                            if (p in only if only is not None else p not in skip))
            if progress:
                progress(f"round {done}: {cov.summary()}")
            todo = [t for t in missed if given_up.get(t, 0) < 6]
            if not todo or len(packets) >= max_packets:
                break
            batch = self.round([(p, d, given_up.get((p, d), 0)) for p, d in todo], state,
                               max_packets - len(packets), deadline, packets)
            for t in todo:
                given_up[t] = given_up.get(t, 0) + 1
            batch = self.unfilling(packets, batch[: max_packets - len(packets)])
            if not batch:
                break
            packets += batch
        return packets, done

    def episodes(self, packets: list[TracePacket], targets: list[tuple[int, int]], max_packets: int,
                 deadline: float, progress: Callable[[str], None] | None) -> list[TracePacket]:
        """`packets` and an episode for each (path, device) of `targets`
        not reached yet: after a pause that expires every entry, the
        packets one round makes for that path alone (its set-up stages:
        a table filled, an entry made while it is full...), twice at most;
        up to EPISODE_PASSES passes over the paths while time is left.
        A history no other path's packets disturb (in a round, a packet
        for one path refreshes the entries another needed to expire)."""
        if not packets or not self.pause_empties():
            return packets
        quiet = max(self.periods.values()) + STEP_NS
        reached: set[int] = set()
        # passes over the targets while time is left (the solves draw other
        # free bytes, the fills other creators)
        for _ in range(EPISODE_PASSES):
            for path_id, device in targets:
                if time.perf_counter() > deadline or len(packets) >= max_packets:
                    break
                if path_id in reached:
                    continue
                self.time = packets[-1].time_ns + quiet
                episode = [TracePacket(packets[-1].device, self.time, packets[-1].data)]
                self.episode = True
                # (the state a pause leaves: the episode's own packets)
                state = self.replay(episode)[1]
                for tries in range(EPISODE_TRIES):
                    # the second try makes its entries late: young when the path comes
                    self.late_entries = tries % 2 == 1
                    batch = self.round([(path_id, device, tries)], state, max_packets - len(packets) - len(episode),
                                       deadline, episode)
                    batch = self.unfilling(episode, batch)  # (no guarded table full)
                    if not batch:
                        break
                    episode += batch
                    cov, state = self.replay(episode)
                    reached |= {p for ids in cov.taken.values() for p in ids}
                    if path_id in reached:
                        break
                self.episode = self.late_entries = False
                packets = packets + episode
                if progress:
                    progress(f"episode for path {path_id}: {len(episode)} packets, "
                             f"{'reached' if path_id in reached else 'not reached'}")
        return packets

    def pause_empties(self) -> bool:
        """Whether a pause of the longest expiry period empties every table
        (every chain has entries that expire)."""
        chains = {name for name, o in self.objects.items() if o.kind == "dchain"}
        return bool(self.periods) and chains <= set(self.periods)

    def unfilling(self, packets: list[TracePacket], batch: list[TracePacket]) -> list[TracePacket]:
        """`batch` up to its first packet that finds a guarded table full."""
        full = set(self.needs_full(self.guarded.keys()))
        if not full or not batch:
            return batch
        taken = self.replay(packets + batch)[0].taken
        for i in range(len(batch)):
            if full & set(taken.get(len(packets) + i, ())):
                return batch[:i]
        return batch

    def needs_full(self, tables: Collection[str]) -> dict[int, frozenset[str]]:
        """Paths that need some of `tables` full: path id -> those tables
        (worked out once per set of tables: each round and each fresh
        entry asks for the guarded ones)."""
        key = frozenset(tables)
        if key not in self.full_needs:
            found: dict[int, set[str]] = {}
            for path in self.by_id.values():
                for call in path.calls:
                    if call.function == "dchain_allocate_new_index" and call.object in key \
                            and call.ret is not None and self._outcome(path, call.ret)[1]:
                        found.setdefault(path.id, set()).add(call.object)
            self.full_needs[key] = {p: frozenset(t) for p, t in found.items()}
        return self.full_needs[key]

    def needs_full_history(self, tables: set[str]) -> dict[int, set[str]]:
        """Paths that need some of `tables` full, or an entry only a packet
        that finds one full makes: a hit in one map with a miss in another
        where every path that puts such a key and not the other finds one
        of `tables` full (a /24 known while its /16 is not: made while the
        /16 table was full).  Path id -> those tables."""
        full = self.needs_full(tables)
        found = {p: set(t) for p, t in full.items()}
        for path in self.by_id.values():
            lookups = [(c.object, self._outcome(path, c.ret)) for c in path.calls
                       if c.function == "map_get" and c.ret is not None and c.ret.op == "BVS"]
            misses = frozenset(obj for obj, (_, miss) in lookups if miss)
            for obj, (hit, _) in lookups:
                creators = [c for c in self._paths_calling("map_put", obj) if not self._touches(c, misses)]
                if hit and misses and creators and all(c.id in full for c in creators):
                    found.setdefault(path.id, set()).update(*(full[c.id] for c in creators))
        return found

    def half_full(self, state: RunState) -> bool:
        """Whether a guarded table holds half its capacity or more."""
        return any(2 * len(state.chains.get(self.order[t], {})) >= self.objects[t].capacity for t in self.guarded)

    def on_core(self, packet: TracePacket) -> bool:
        """Whether the packet lands on the core the phase uses (any: True)."""
        return self.core is None or self.queue_of(packet.device, packet.data) == self.core

    def replay(self, packets: list[TracePacket]) -> tuple[Coverage, RunState]:
        run = run_reference(self.source, packets, defines=self.defines, calls=True, with_bytes=False,
                            state_keys=self.key_sizes)
        observed = [Observation(r.index, r.device, p.time_ns, p.data, r.output, r.calls)
                    for r, p in zip(run.results, packets)]
        self.time = max((p.time_ns for p in packets), default=0)
        return coverage(self.analysis, observed, self.matcher), run.state

    def round(self, todo: list[tuple[int, int, int]], state: RunState, budget: int,
              deadline: float, packets: list[TracePacket] = ()) -> list[TracePacket]:
        """One packet per (path, device, tries so far), and the packets that
        set up what it needs; repeated when an earlier try did not reach it.
        Paths whose state had to be set up are solved again once it is (the
        trace so far, `packets`, and the set-up packets replayed), up to
        SETUP_STAGES times (one more in an episode).  A packet
        that needs time to pass (an expiry) goes at the end of the round, so
        the paths solved after it still find the entries it lets expire.
        Stops at `deadline` (time.perf_counter)."""
        batch: list[TracePacket] = []
        late: list[list[TracePacket]] = []
        # the paths whose table was not filled last round go first
        todo = sorted(todo, key=lambda t: t[0] not in self.waiting)
        self.waiting = set()

        def emit(path_id: int, device: int, tries: int, state: RunState, setup: bool) -> None:
            path = self.by_id[path_id]
            before = self.time
            packet, needs = self.solve(path, state, device=device, lenient=tries >= 1)
            free_cells = packet is None and tries and not needs and self._tests_cells(path)
            if free_cells:
                # no cell holds what the path needs (a drained token bucket,
                # a count past a threshold): a packet for a cell as it
                # would have to be, whose exact copies may make it so (two
                # tries: the cell may be one no packet makes)
                self.free_tries[path_id] = self.free_tries.get(path_id, 0) + 1
                packet, needs = self.solve(path, state, device=device, free_cells=True)
            if needs and setup:
                wanted.extend(needs)
                pending.append((path_id, device, tries))
                return
            if packet is None:
                return
            group = [packet]
            if tries and not needs:
                copies = self.repeat(packet, min(64 * 4 ** (tries - 1), max((budget - len(batch)) // 2, 0)),
                                     burst=tries % 2 == 1, vary=not free_cells)
                group += [p for p in copies if self.on_core(p)]
            if any(c.function == "nf_checksum" for c in path.calls):
                group.append(_with_checksums(packet))
            if packet.time_ns > before + STEP_NS and not needs:
                late.append(group)
                self.time = before
            else:
                batch.extend(group)

        # stages: what the state lacks is made, the paths that lacked it are
        # solved again, and what they lack then (an entry made while a table
        # is full, once it is full) is made in the next stage
        made: set[tuple] = set()
        filled: set[str] = set()  # tables filled this round
        kept: set[str] = set()  # tables a path whose fill was made needs room in
        stages = SETUP_STAGES + (1 if self.episode else 0)  # (an episode: one more, for a window's entry)
        for stage in range(stages):
            wanted: list[tuple] = []
            pending: list[tuple[int, int, int]] = []
            for path_id, device, tries in todo:
                if time.perf_counter() > deadline or len(batch) >= budget:
                    break
                emit(path_id, device, tries, state, setup=stage < stages - 1)
            # indexes (a backend's heartbeat) before entries (a flow that may
            # need one), so an entry is younger than what it refers to
            for need in sorted(wanted, key=lambda n: n[0] in ("entry", "fresh")):
                if need[0] in ("index", "full"):  # one table filled (an index taken) once per round
                    if need[:2] in made:
                        continue
                    if need[0] == "full":  # (not one another path needs room in; later rounds serve it)
                        if need[1] in kept or need[3] & filled:
                            self.waiting.add(need[-1].id)
                            continue
                        filled.add(need[1])
                        kept |= need[3]
                    made.add(need[:2])
                batch += self.create(need, state, list(packets) + batch)
            if not pending or time.perf_counter() > deadline:
                break
            state = self.replay(list(packets) + batch)[1]
            todo = pending
        for group in sorted(late, key=lambda g: g[0].time_ns):
            shift = max(0, self.time + STEP_NS - group[0].time_ns)
            batch += [TracePacket(p.device, p.time_ns + shift, p.data) for p in group]
            self.time = batch[-1].time_ns
        return batch

    def repeat(self, first: TracePacket, count: int, burst: bool = False, vary: bool = True
               ) -> list[TracePacket]:
        """`count` more copies of a packet, one in three with a new L4 source
        port (a new flow with the same addresses), one in three with a new
        destination port (a scan), unless not `vary`; one step apart in time
        (a burst: all at the first one's time, for paths that need no time
        to pass)."""
        packets = []
        offset = 14 + (first.data[14] & 0x0F) * 4 if len(first.data) > 34 and vary else None
        for i in range(count):
            data = bytearray(first.data)
            port = offset + 2 * (i % 3 - 1) if offset is not None and i % 3 else None
            if port is not None and port + 2 <= len(data):
                data[port:port + 2] = self.rng.randrange(1024, 65536).to_bytes(2, "big")
            self.time += 0 if burst else STEP_NS
            packets.append(TracePacket(first.device, self.time, bytes(data)))
        return packets

    # --- solving one path ---------------------------------------------------

    def solve(self, path: PathResult, state: RunState, extra=(), device: int | None = None,
              free_cells: bool = False, lenient: bool = False, latest: bool = False
              ) -> tuple[TracePacket | None, list[tuple]]:
        """A packet taking `path` (arriving on `device`) from `state` (None
        when unsatisfiable), and what the state lacks for it; free_cells:
        the vector cells it borrows may hold anything, not the state's;
        lenient: a full table it needs may be one its time lets entries
        expire from; latest: at the latest time the path allows within the
        shortest expiry period (else the earliest)."""
        solver = self._solver(path)
        with solver.scope():
            return self._solve(solver, path, state, extra, device, free_cells, lenient, latest)

    def _solver(self, path: PathResult) -> "_PathSolver":
        if path.id not in self.solvers:
            self.solvers[path.id] = _PathSolver(path.constraints)
        return self.solvers[path.id]

    def _solve(self, solver: "_PathSolver", path: PathResult, state: RunState, extra, device: int | None,
               free_cells: bool = False, lenient: bool = False, latest: bool = False
               ) -> tuple[TracePacket | None, list[tuple]]:
        self.offered, self.tracked = {}, []
        solver.add(list(extra))
        symbols = _inputs(path)
        if device is not None and "device" in symbols:
            solver.add(symbols["device"] == device)
        needs: list[tuple] = []
        for position, call in enumerate(path.calls):
            if free_cells and call.function == "vector_borrow":
                continue
            needs += [(*need, path) for need in self._bind(solver, call, state, path, path.calls[:position])]
        # a table filled for the path must not fill the ones it allocates in
        kept = self._allocating(path)
        needs = [(*need[:3], kept, path) if need[0] == "full" else need for need in needs]
        if "time" in symbols:  # time never goes back; a packet may come at the same time (a burst)
            solver.add(claripy.SGE(symbols["time"], self.time))
        if "length" in symbols:  # a trace holds frames of at least one byte
            solver.add(symbols["length"] >= 1)
        literals = [literal for literal, _ in self.tracked]
        if not solver.satisfiable(extra_constraints=literals):
            # lenient: a table that would have to stay full is a wish (a path
            # tried before: without it the copies of a repeat may find it full)
            core = {str(c) for c in solver.z3.unsat_core()}
            wishes = {str(literal) for literal, (kind, _) in self.tracked if kind == "full"}
            literals = [literal for literal in literals if str(literal) not in wishes]
            if not lenient or not core & wishes or not solver.satisfiable(extra_constraints=literals):
                return None, needs or self._conflict(solver, path, literals, state)
        solver.add(literals, variables=set())
        if latest and "time" in symbols:
            self._latest(solver, symbols["time"])
        # the one-core phase: other free bytes until the packet lands on its
        # core (the state bound once)
        before = self.time
        for _ in range(1 if self.core is None else CORE_TRIES):
            with solver.scope():
                base = self._base_frame()
                self._prefer(solver, symbols, base)
                packet = self._packet(solver, symbols, base, path)
            if self.on_core(packet):
                return packet, needs
            self.time = before
        return None, needs

    def _latest(self, solver: "_PathSolver", now) -> None:
        """Bind the packet's time to the latest the solver allows, within
        the shortest expiry period from now (a binary search, to a step)."""
        span = min(self.periods.values(), default=0)
        low, step = self.time, 1 << max(span.bit_length() - 1, 0)
        while step >= STEP_NS:
            if low + step <= self.time + span and solver.satisfiable(extra_constraints=[claripy.SGE(now, low + step)]):
                low += step
            step >>= 1
        solver.add(claripy.SGE(now, low))

    def _track(self, solver: "_PathSolver", constraint, kind: str, call, variables: set[str] | None = None) -> None:
        """Add a call's hit, miss, room, full or cell constraint under a
        literal of its own (`variables`: those of a z3 constraint)."""
        literal = z3.Bool(f"track_{len(self.tracked)}", ctx=claripy.backends.z3._context)
        solver.add(z3.Implies(literal, _to_z3(constraint)),
                   variables=constraint.variables if variables is None else variables)
        self.tracked.append((literal, (kind, call)))

    def _conflict(self, solver: "_PathSolver", path: PathResult, literals: list, state: RunState
                  ) -> list[tuple]:
        """What the state lacks when no entry it holds gives a hit the path
        needs together with its misses, or with the room an expiry must make
        (a prefix known at /24 whose /16 is known too, when the path needs
        the /16 unknown; a /32 older than every /24, when it needs a /24 to
        expire first): a new entry for the hit, or for all the hits that
        conflict in turn (a /24 and its /32, both known while the /16 is
        not: the core names one, and without it the other), made by one
        packet that puts no key in those tables (none: nothing is sent).
        The cells the hits borrow are left free then (a new entry holds
        what its packet writes), its keys are new to their tables, and
        z3's model gives them.  In an episode, hits whose cells conflict
        count too (a window started too long ago)."""
        dropped: dict[str, object] = {}  # the hits given up: literal -> call
        avoid: set[str] = set()

        def without(names: set[str]) -> list:
            """The literals but those named and the cells their hits borrow,
            and the hits' keys new ones (an entry made anew)."""
            calls = [call for _, call in self._tracked_calls(names)]
            given = [call.out.variables for call in calls if call.out is not None]
            gone = names | {str(literal) for literal, (kind, call) in self.tracked if kind == "cell"
                            and any(call.key.variables and call.key.variables <= v for v in given)}
            new = [call.key != _value(k, call.key.size()) for call in calls
                   for k in state.maps.get(self.order.get(call.object, -1), {}) if len(k) * 8 == call.key.size()]
            return [x for x in literals if str(x) not in gone] + new

        def fresh(calls) -> list[tuple]:
            # the keys the new entry needs, from the model: consistent with
            # the hits the state still gives (a /32 in the /24 it knows)
            model = solver.z3.model()
            keys = tuple(claripy.BVV(model.eval(_to_z3(c.key), model_completion=True).as_long(), c.key.size())
                         for c in calls)
            return [("fresh", calls[0].object, tuple(calls), frozenset(avoid), keys, path)]

        for _ in range(len(self.tracked)):
            core = {str(c) for c in solver.z3.unsat_core()}
            avoid |= {call.object for literal, (kind, call) in self.tracked
                      if kind in ("miss", "room") and str(literal) in core}
            # (in an episode, also a hit whose cells do not allow the path:
            # a window too old, where a new entry starts its own)
            cells = [call.key.variables for literal, (kind, call) in self.tracked
                     if self.episode and kind == "cell" and str(literal) in core and call.key.variables]
            hits = {str(literal): call for literal, (kind, call) in self.tracked
                    if kind == "hit" and str(literal) not in dropped and (str(literal) in core or any(
                        call.out is not None and v <= call.out.variables for v in cells))}
            if not hits or not (avoid or cells):
                return []
            # one hit at a time while that is enough, then two... (the cells
            # a new entry will hold are those its packet writes: free)
            for size in range(1, len(hits) + 1):
                for names in combinations(hits, size):
                    chosen = {**dropped, **{name: hits[name] for name in names}}
                    if solver.satisfiable(extra_constraints=without(set(chosen))):
                        return fresh(list(chosen.values()))
            dropped.update(hits)  # (the last check's core names the hits in the way then)
        return []

    def _tracked_calls(self, names: set[str]) -> list[tuple[str, object]]:
        """(literal name, call) of the tracked constraints named."""
        return [(str(literal), call) for literal, (_, call) in self.tracked if str(literal) in names]

    def _outcome(self, path: PathResult, ret) -> tuple[bool, bool]:
        """(the path needs ret true, needs it false): worked out once per call."""
        key = (path.id, hash(ret))
        if key not in self.outcomes:
            forced = path.forced(ret)
            self.outcomes[key] = (forced is not None and forced != 0, forced == 0)
        return self.outcomes[key]

    def _bind(self, solver: "_PathSolver", call, state: RunState, path: PathResult,
              earlier: tuple = ()) -> list[tuple]:
        """Constraints tying the call's results to the state; returns what is missing."""
        order = self.order.get(call.object, -1)
        ret = call.ret if call.ret is not None and call.ret.op == "BVS" else None
        needs_true, needs_false = self._outcome(path, ret) if ret is not None else (False, False)
        if call.function == "map_get" and call.key is not None:
            entries = list(state.maps.get(order, {}).items())
            self.rng.shuffle(entries)
            key = call.key
            if needs_true:
                picked = [(k, v) for k, v in entries if len(k) * 8 == key.size()][:CANDIDATES]
                bound = call.out is not None and call.out.symbolic
                # an expiry earlier in the packet erases the entries whose
                # index it finds too old: those that are hit must not be
                expiry = next((c for c in reversed(earlier) if c.function == "expire_items_single_map"
                               and call.object in c.args and c.key is not None), None)
                stamps = state.chains.get(self.order.get(expiry.object, -1), {}) if expiry else {}
                options = [claripy.And(key == _value(k, key.size()), *([call.out == v] if bound else []),
                                       *([claripy.Not(claripy.SGT(expiry.key, stamps[v]))] if v in stamps else []))
                           for k, v in picked]
                if not options:
                    return [("entry", call.object, call)]
                if bound:  # the index the value is: later calls of the packet pick among these
                    self.offered[frozenset(call.out.variables)] = [v for _, v in picked]
                self._track(solver, claripy.Or(*options), "hit", call)
            elif needs_false:
                avoided = [key != _value(k, key.size()) for k, _ in entries[:AVOIDED] if len(k) * 8 == key.size()]
                if avoided:
                    self._track(solver, claripy.And(*avoided), "miss", call)
        elif call.function in ("dchain_is_index_allocated", "dchain_rejuvenate_index", "dchain_free_index") \
                and call.key is not None:
            allocated = list(state.chains.get(order, {}).items())
            self.rng.shuffle(allocated)
            # an expiry earlier in the same packet frees the indexes touched before its time
            expiry = _expiry_before(earlier, call.object)

            def alive(stamp):
                return claripy.Not(claripy.SGT(expiry.key, stamp)) if expiry else claripy.true()

            if needs_true:
                offered = self.offered.get(frozenset(call.key.variables))
                if offered is not None:  # an index a map value names: those the map offered
                    allocated = [(a, t) for a, t in allocated if a in set(offered)] or allocated
                if not allocated:
                    return [("index", call.object, call)]
                self.offered[frozenset(call.key.variables)] = [a for a, _ in allocated[:CANDIDATES]]
                solver.add(claripy.Or(*(claripy.And(call.key == a, alive(t)) for a, t in allocated[:CANDIDATES])))
            elif needs_false:
                solver.add([claripy.Or(call.key != a, claripy.Not(alive(t))) for a, t in allocated[:AVOIDED]])
        elif call.function == "dchain_allocate_new_index":
            stamps = list(state.chains.get(order, {}).values())
            room = self.objects[call.object].capacity - len(stamps)
            if needs_false and room > 0:
                return [("full", call.object, room)]
            if needs_false and (expiry := _expiry_before(earlier, call.object)):
                # full it stays: the expiry before frees no entry (no time jump past the oldest)
                self._track(solver, claripy.And(*(claripy.Not(claripy.SGT(expiry.key, t)) for t in stamps)),
                            "full", call)
            if needs_true and room <= 0:
                # room only if the path's expiry frees some: a later time
                expiry = _expiry_before(earlier, call.object)
                stamps = stamps[:256]
                if expiry and stamps:
                    self._track(solver, claripy.Or(*(claripy.SGT(expiry.key, t) for t in stamps)), "room", call)
                else:
                    self.notes.append(f"{call.object} is full: paths that allocate in it are not reached")
        elif call.function in EXPIRIES and call.key is not None \
                and ret is not None and self._count_tested(path, call):
            stamps = list(state.chains.get(order, {}).values())[:256]
            if call.function == "expire_items_single_map":
                # how many stamps lie below the threshold, as a chain of
                # choices over the distinct stamps (no adders for z3)
                count = claripy.BVV(0, 32)
                for below, stamp in enumerate(sorted(stamps), 1):
                    count = claripy.If(claripy.SGT(call.key, stamp), claripy.BVV(below, 32), count)
                solver.add(ret == count)
            else:
                solver.add(ret == (claripy.If(claripy.SGT(call.key, min(stamps)), claripy.BVV(1, 32),
                                              claripy.BVV(0, 32)) if stamps else claripy.BVV(0, 32)))
        elif call.function == "vector_borrow" and call.cell is not None and call.key is not None:
            cells = state.vectors.get(order, {})
            width = call.cell.size()
            # the cells at the indexes an earlier call of this packet was
            # offered (a flow's index, then its key cell), else any
            offered = self.offered.get(frozenset(call.key.variables))
            picks = [i for i in offered if i in cells] if offered else list(cells)
            if not offered:  # later borrows at the same index pick among the same
                self.rng.shuffle(picks)
                self.offered[frozenset(call.key.variables)] = picks[:CANDIDATES]
            # (built in z3: a claripy term per option costs most of a solve)
            key, cell = _to_z3(call.key), _to_z3(call.cell)
            options = [z3.And(key == i, cell == int.from_bytes(cells[i], "big"))
                       for i in picks[:CANDIDATES] if len(cells[i]) * 8 == width]
            if len(cells) <= FILL_LIMIT:  # a cell never written holds zeros
                options.append(z3.And(*(key != i for i in cells), cell == 0))
            self._track(solver, z3.Or(*options) if options else z3.BoolVal(False, ctx=claripy.backends.z3._context),
                        "cell", call, variables=call.key.variables | call.cell.variables)
        elif call.function == "cht_find_preferred_available_backend" and call.args:
            # a backend alive (allocated, not expired earlier in the packet),
            # or none; which one the table prefers for the packet's hash is
            # left to chance (encoding the hash's remainder costs z3 more
            # than a few tries do)
            chain = call.args[0]
            backends = list(state.chains.get(self.order.get(chain, -1), {}).items())
            self.rng.shuffle(backends)
            expiry = _expiry_before(earlier, chain)

            def alive(stamp):
                return claripy.Not(claripy.SGT(expiry.key, stamp)) if expiry else claripy.true()

            if needs_true and not backends:
                return [("index", chain, call)]
            if needs_true and call.out is not None:
                self.offered[frozenset(call.out.variables)] = [b for b, _ in backends[:CANDIDATES]]
                solver.add(claripy.Or(*(claripy.And(call.out == b, alive(t)) for b, t in backends[:CANDIDATES])))
            elif needs_false:
                solver.add([claripy.Not(alive(t)) for _, t in backends])
        elif call.function == "map_size" and ret is not None:
            solver.add(ret == len(state.maps.get(order, {})))
        return []

    def _tests_cells(self, path: PathResult) -> bool:
        """Whether the path's condition tests the value of a cell it borrows
        and writes (a counter: its packet's copies change it), and was not
        tried FREE_CELL_TRIES times so already."""
        if self.free_tries.get(path.id, 0) >= FREE_CELL_TRIES:
            return False
        mentioned = set().union(*(c.variables for c in path.constraints))
        return any(
            c.function == "vector_borrow" and c.cell is not None and c.cell.variables & mentioned
            and (c.object, path.id) in self.writes for c in path.calls)

    def _count_tested(self, path: PathResult, call) -> bool:
        """Whether the path uses an expiry's count: as a call's key, or in
        a condition that asks more of it than any count allows (0 to the
        chain's capacity).  Only then is it bound to the state (a chain of
        choices over the stamps: hhh's three chains of 64 cost most of a
        solve, and nothing tests them)."""
        name = call.ret.args[0]
        if (path.id, name) not in self.count_tests:
            own = [c for c in path.constraints if name in c.variables]
            capacity = getattr(self.objects.get(call.object), "capacity", None)
            self.count_tests[(path.id, name)] = name in self._mentioned(path) and (
                not own or capacity is None or any(c.variables != {name} for c in own)
                or satisfiable([claripy.ULE(call.ret, capacity), claripy.Not(claripy.And(*own))]))
        return self.count_tests[(path.id, name)]

    def _mentioned(self, path: PathResult) -> set[str]:
        """Symbols the path's condition or its calls' keys use: a call
        result outside them (an expiry count nothing tests) needs no binding."""
        if path.id not in self.mentions:
            names: set[str] = set()
            for expr in (*path.constraints, *(c.key for c in path.calls if c.key is not None)):
                names |= expr.variables
            self.mentions[path.id] = names
        return self.mentions[path.id]

    def create(self, need: tuple, state: RunState, history: list[TracePacket]) -> list[TracePacket]:
        """Packets that create what a path needs (see the module doc), after
        `history` (the trace that left `state`)."""
        kind, obj = need[0], need[1]
        if kind in ("entry", "fresh"):
            # a fresh entry: by a packet that puts no key where the path needs a miss
            calls, path = (need[2] if kind == "fresh" else (need[2],)), need[-1]
            avoid = need[3] if kind == "fresh" else frozenset()
            wanted = list(need[4]) if kind == "fresh" else self._key_wanted(need[2], path)
            # (not one that needs a table full that must not fill yet)
            barred = self.needs_full(self.guarded.keys())
            fallback: list[TracePacket] = []  # a packet solved without all it needs
            chain = None  # a creator that needs only tables full, with its needs
            for creator in self._paths_calling("map_put", obj):
                puts = [next((c for c in creator.calls if c.function == "map_put" and c.object == call.object), None)
                        for call in calls]
                if wanted is None or None in puts or any(p.key.size() != w.size() for p, w in zip(puts, wanted)) \
                        or self._touches(creator, avoid) or creator.id in barred:
                    continue
                extra = [p.key == w for p, w in zip(puts, wanted)]
                packet, needs = self.solve(creator, state, extra=extra, latest=self.late_entries)
                if packet is not None and not needs:
                    return [packet]
                fallback = fallback or ([packet] if packet is not None else [])
                if self.episode and needs and all(n[0] == "full" and n[1] not in self.unfilled for n in needs):
                    chain = (creator, extra, needs)
                    break
            if chain is not None:
                # in an episode (a short trace to replay), the tables the
                # creator needs full filled first (the /16s a /24 known
                # without its /16 needs), then the creator
                creator, extra, needs = chain
                made: list[TracePacket] = []
                for full in needs:
                    made += self.create(full, state, list(history) + made)
                packet, needs = self.solve(creator, self.replay(list(history) + made)[1], extra=extra,
                                           latest=self.late_entries)
                if packet is not None and not needs:
                    return made + [packet]
            return fallback
        if kind == "index":
            for creator in self._paths_calling("dchain_allocate_new_index", obj):
                packet, _ = self.solve(creator, state)
                if packet is not None:
                    return [packet]
            return []
        if kind == "full":
            room = need[2]
            if obj in self.unfilled:
                self.notes.append(f"{obj}'s full-table paths are not driven: {self.unfilled[obj]}")
                return []
            if room > FILL_LIMIT:
                self.notes.append(f"{obj} holds {self.objects[obj].capacity} entries, too many to fill: its "
                                  "full-table paths are not reached (lower its capacity with -D to test them)")
                return []
            # creators that allocate in no table the path needs room in first
            # (a /32 filled by hosts of /24s known: the /24 table keeps room);
            # filled in passes, each replayed, until the table is full (a
            # source blocked after a few ports fills no more)
            kept = need[3]
            creators = sorted(self._paths_calling("dchain_allocate_new_index", obj),
                              key=lambda c: bool(self._allocating(c) & kept))
            made: list[TracePacket] = []
            for _ in range(FILL_PASSES):
                packets = self._fill_pass(creators, state, room, hold=bool(kept))
                if not packets:
                    break
                made += packets
                state = self.replay(list(history) + made)[1]
                room = self.objects[obj].capacity - len(state.chains.get(self.order[obj], {}))
                if room <= 0:
                    break
            return made
        return []

    def _fill_pass(self, creators: list[PathResult], state: RunState, room: int, hold: bool
                   ) -> list[TracePacket]:
        """Up to `room` packets of the first creator that gives some: each
        solved packet followed by variants of it (see _variants)."""
        for creator in creators:
            packets = []
            while len(packets) < room:
                packet, _ = self.solve(creator, state)
                if packet is None:
                    break
                packets += [packet] + self._variants(packet, creator, room - len(packets) - 1, hold=hold)
            if packets:
                return packets
        return []

    def _touches(self, path: PathResult, tables: Collection[str]) -> bool:
        """Whether the path may put a key in one of `tables` (maps), find
        one there, or take an index of one (chains)."""
        return any(c.object in tables and (
            c.function == "map_put"
            or c.function in ("map_get", "dchain_allocate_new_index") and c.ret is not None
            and not self._outcome(path, c.ret)[1]) for c in path.calls)

    def _allocating(self, path: PathResult) -> frozenset[str]:
        """The chains the path takes an index of (the allocations it needs to succeed)."""
        return frozenset(c.object for c in path.calls if c.function == "dchain_allocate_new_index"
                         and c.ret is not None and self._outcome(path, c.ret)[0])

    def _variants(self, packet: TracePacket, path: PathResult, count: int, hold: bool = False
                  ) -> list[TracePacket]:
        """Up to `count` copies of a packet of `path` with other random bytes
        where the key it puts in a map is free of the path's condition: new
        entries taking the same path, without a solve each (on the core the
        phase uses); hold: the bytes of the keys it finds stay too (a host of
        a known /24 varies its last byte, so the /24 table keeps its room;
        else a port scan's source, blocked after a few ports, would fill
        no table)."""
        puts = [c.key for c in path.calls if c.function == "map_put" and c.key is not None]
        if not puts or count <= 0:
            return []
        constrained = set().union(*(c.variables for c in path.constraints),
                                  *(c.key.variables for c in path.calls if hold and c.function == "map_get"
                                    and c.key is not None and c.ret is not None and self._outcome(path, c.ret)[0]))
        offsets = sorted({o for leaf in puts[0].leaf_asts() if leaf.op == "BVS" and leaf.args[0] not in constrained
                          for o in [_frame_offset(leaf.args[0], packet.data)] if o is not None})
        variants: list[TracePacket] = []
        for _ in range(8 * count):
            if len(variants) >= count or not offsets:
                break
            data = bytearray(packet.data)
            for offset in offsets:
                data[offset] = self.rng.getrandbits(8)
            self.time += STEP_NS
            variant = TracePacket(packet.device, self.time, bytes(data))
            if self.on_core(variant):
                variants.append(variant)
        return variants

    def _key_wanted(self, call, path: PathResult) -> list | None:
        """The key the lookup `call` of `path` will use, with the packet
        solved freely (on the phase's core), in a list (None: no packet)."""
        solver = self._solver(path)
        for _ in range(1 if self.core is None else CORE_TRIES):
            with solver.scope():
                if not solver.satisfiable():
                    return None
                base = self._base_frame()
                self._prefer(solver, _inputs(path), base)
                before = self.time  # (the path's packet is not sent: its time is not taken)
                on_core = self.on_core(self._packet(solver, _inputs(path), base, path))
                self.time = before
                if on_core:
                    return [claripy.BVV(solver.eval(call.key, 1)[0], call.key.size())]
        return None

    def _paths_calling(self, function: str, obj: str) -> list[PathResult]:
        """Paths that make `function` on `obj` and return it success, those
        with the fewest constraints first."""
        if (function, obj) not in self.callers:
            found = []
            for path in self.by_id.values():
                for call in path.calls:
                    if call.function == function and call.object == obj:
                        # an allocation the path may see succeed (its
                        # flag's own constraints decide: cheap)
                        ok = call.ret if function == "dchain_allocate_new_index" else None
                        if ok is None or not self._outcome(path, ok)[1]:
                            found.append(path)
                        break
            self.callers[(function, obj)] = found
        found = list(self.callers[(function, obj)])
        # the simplest first (the quickest to solve, the surest to take)
        self.rng.shuffle(found)
        return sorted(found, key=lambda p: len(p.constraints))

    # --- frames -------------------------------------------------------------

    def _base_frame(self) -> bytes:
        """A well-formed frame with random addresses, ports and MACs."""
        r = self.rng
        proto = r.choice((TCP, UDP))
        return make_packet(r.getrandbits(32), r.getrandbits(32),
                           r.randrange(1024, 65536), r.randrange(1, 65536), proto,
                           src_mac=bytes([2, 0]) + r.getrandbits(32).to_bytes(4, "big"),
                           dst_mac=bytes([2, 0]) + r.getrandbits(32).to_bytes(4, "big"),
                           size=r.choice((64, 64, 128, 512)))

    def _prefer(self, solver: "_PathSolver", symbols: dict, base: bytes) -> None:
        """Make the free bytes those of `base` where the path allows it,
        field by field."""
        by_field: dict[str, list] = {}
        for name, symbol in symbols.items():
            if m := _PKT.match(name):
                offset = int(m.group(1))
            elif m := _L4.match(name):
                offset = 34 + int(m.group(1))
            else:
                continue
            if offset < len(base):
                field_name = (byte_field(name) or ("?",))[0]
                by_field.setdefault(field_name, []).append(symbol == base[offset])
        wishes = list(by_field.values())
        if "length" in symbols:
            wishes.append([symbols["length"] == len(base)])
        if "time" in symbols:
            wishes.append([symbols["time"] == self.time + STEP_NS])
            # else as soon as the path allows (not at the end of time)
            wishes += [[claripy.SLE(symbols["time"], self.time + span)] for span in (10 ** 9, 10 ** 11, 10 ** 13)]
        # A wish on symbols no constraint mentions cannot conflict: granted
        # without asking the solver (each check costs tens of ms on big paths).
        constrained = solver.variables
        free = [w for w in wishes if not any(c.variables & constrained for c in w)]
        wishes = [w for w in wishes if any(c.variables & constrained for c in w)]
        solver.add([c for w in free for c in w])
        _grant(solver, wishes)
        if "time" in symbols and solver.satisfiable():
            # a time that had to jump (an expiry) keeps clear of the bound
            # by a margin where the path allows: packets of other cores
            # around it may commit in another order than their timestamps
            at = solver.eval(symbols["time"], 1)[0]
            if at > self.time + STEP_NS:
                _grant(solver, [[claripy.SGE(symbols["time"], at + MARGIN_NS),
                                 claripy.SLE(symbols["time"], at + 2 * MARGIN_NS)]])

    def _packet(self, solver: "_PathSolver", symbols: dict, base: bytes, path: PathResult) -> TracePacket:
        values = {name: solver.eval(symbol, 1)[0] for name, symbol in symbols.items()}
        length = values.get("length", len(base))
        frame = bytearray(base[:length].ljust(length, b"\0"))
        # the IP header's bytes first: the L4 bytes' place depends on its IHL
        for pattern in (_PKT, _L4):
            for name, value in values.items():
                if pattern.match(name) and (offset := _frame_offset(name, frame)) is not None:
                    frame[offset] = value
        device = values.get("device", path.devices[0])
        time = max(values.get("time", self.time + STEP_NS), self.time)
        self.time = time
        return TracePacket(device, time, bytes(frame))


class _RememberingMatcher(PathMatcher):
    """A PathMatcher that remembers its answers: each round replays the
    trace so far, whose packets it matched in the rounds before."""

    def __init__(self, analysis: Analysis) -> None:
        super().__init__(analysis)
        self.known: dict[Observation, list[int]] = {}

    def match(self, packet: Observation) -> list[int]:
        if packet not in self.known:
            self.known[packet] = super().match(packet)
        return self.known[packet]


def _frame_offset(name: str, frame: bytes) -> int | None:
    """Where a packet symbol's byte lies in a frame (None: past its end)."""
    if m := _PKT.match(name):
        offset = int(m.group(1))
    elif (m := _L4.match(name)) and len(frame) > 14:
        offset = 14 + (frame[14] & 0x0F) * 4 + int(m.group(1))
    else:
        return None
    return offset if offset < len(frame) else None


def _with_checksums(packet: TracePacket) -> TracePacket:
    """The packet with valid IPv4 and TCP/UDP checksums (for paths that
    check them: the solver chose the checksum result freely)."""
    try:
        frame = dpkt.ethernet.Ethernet(packet.data)
        ip = frame.data
        if not isinstance(ip, dpkt.ip.IP):
            return packet
        ip.sum = 0
        if isinstance(ip.data, (dpkt.tcp.TCP, dpkt.udp.UDP)):
            ip.data.sum = 0
        fixed = bytes(frame)
    except (dpkt.UnpackError, ValueError, AttributeError):
        return packet
    return TracePacket(packet.device, packet.time_ns, fixed[:len(packet.data)].ljust(len(packet.data), b"\0"))


def _inputs(path: PathResult) -> dict[str, claripy.ast.BV]:
    """The input symbols a path's condition and its calls' arguments use:
    name -> symbol; the length, device and time under those names."""
    found: dict[str, claripy.ast.BV] = {}
    exprs = [*path.constraints, *(c.key for c in path.calls if c.key is not None)]
    for expr in exprs:
        for leaf in expr.leaf_asts():
            if leaf.op != "BVS":
                continue
            name = leaf.args[0]
            for prefix in ("length", "device", "time"):
                if name.startswith(prefix + "_"):
                    found[prefix] = leaf
            if _PKT.match(name) or _L4.match(name):
                found[name] = leaf
    return found


def satisfiable(constraints) -> bool:
    """z3's answer on a solver of their own (a path's cached claripy solver,
    PathResult.solver, after path traffic's other solves, once answered
    unsat for a satisfiable extra constraint: psd; not understood).  The
    solver is put in incremental mode (a scope) before it checks: z3's
    one-shot checks slow down with every incremental solver alive in the
    same context (a tenth of a second each, for a trivial formula, with
    hhh's 70 path solvers; z3 4.13), incremental ones do not."""
    solver = bit_vector_solver(claripy.backends.z3._context)
    solver.push()
    solver.add([_to_z3(c) for c in constraints])
    result = solver.check()
    if result == z3.unknown:
        raise MaestroError(f"path traffic: z3 could not decide a path condition ({solver.reason_unknown()})")
    return result == z3.sat


class _PathSolver:
    """One path's constraints in a z3 solver kept across solves: each solve
    adds its bindings in a scope (push/pop), so z3 keeps what it learnt
    about the path (a fresh solver costs tens of ms per check on a NAT's
    paths, a scoped check a fraction of that).  Offers the calls solving
    makes of a claripy solver: add, satisfiable, eval; `variables`: the
    names its constraints use."""

    def __init__(self, constraints) -> None:
        # claripy builds z3 terms in a context per thread (the workbench
        # solves in a worker thread): the solver must live in the same one
        self.z3 = bit_vector_solver(claripy.backends.z3._context)
        self.base = list(constraints)
        self.z3.add([_to_z3(c) for c in self.base])
        self.variables: set[str] = set().union(*(c.variables for c in self.base))
        self.model = None

    @contextmanager
    def scope(self):
        saved = set(self.variables)
        self.z3.push()
        try:
            yield self
        finally:
            self.z3.pop()
            self.variables, self.model = saved, None

    def add(self, constraints, variables: set[str] | None = None) -> None:
        """Add claripy constraints, or z3 terms with the `variables` they use."""
        constraints = list(constraints) if isinstance(constraints, (list, tuple)) else [constraints]
        self.variables |= variables if variables is not None else set().union(*(c.variables for c in constraints))
        self.z3.add([_to_z3(c) for c in constraints])
        self.model = None

    def satisfiable(self, extra_constraints=()) -> bool:
        sat = self.z3.check(*[_to_z3(c) for c in extra_constraints]) == z3.sat
        self.model = self.z3.model() if sat and not extra_constraints else None
        return sat

    def eval(self, expr, n: int = 1) -> list[int]:
        if self.model is None and not self.satisfiable():
            raise MaestroError("path traffic: evaluating an unsatisfiable path")
        return [self.model.eval(_to_z3(expr), model_completion=True).as_long()]


def _expiry_before(earlier, chain: str):
    """The last expiry of `chain` among a path's earlier calls (None: none)."""
    expiries = [c for c in earlier if c.function in EXPIRIES and c.object == chain and c.key is not None]
    return expiries[-1] if expiries else None


def _grant(solver: _PathSolver, wishes: list[list]) -> None:
    """Add the wishes the solver allows: all at once, else one by one."""
    everything = [c for w in wishes for c in w]
    if not everything or solver.satisfiable(extra_constraints=everything):
        solver.add(everything)
        return
    for wish in wishes:
        if solver.satisfiable(extra_constraints=wish):
            solver.add(wish)


def _to_z3(expr):
    """The z3 term of a claripy expression (a constant truth value as a z3
    one: claripy converts those to Python booleans); a z3 term as it is."""
    if isinstance(expr, z3.ExprRef):
        return expr
    term = claripy.backends.z3.convert(expr)
    return z3.BoolVal(term, ctx=claripy.backends.z3._context) if isinstance(term, bool) else term


def _value(data: bytes, bits: int) -> claripy.ast.BV:
    return claripy.BVV(int.from_bytes(data, "big"), bits)


__all__ = ["PathTraffic", "path_traffic", "MaestroError"]
