"""Benchmark of the generated programs for every sample NF (simulated NIC).

    python -m codegen.program_bench [--seconds 2] [--repeat 1] [--nf fw ...]
                                    [--skip-locks] [--no-testpmd]

Peer: DPDK's dpdk-testpmd in io-forward mode on the same two net_null ports,
one forwarding core, run before and after the programs (codegen/testpmd.py);
every 1-core figure is also given as a ratio of it (the ceiling of any
DPDK program on this machine).
Part 1, every NF: the sequential reference runner on the same trace (its
nf_process loop alone), the seq program on one core and the shared-nothing
(or, for NFs whose plan locks, the plan's) program on 1 and 2 cores, uniform
traffic: Mpps, ratios, speedup 2/1 (with its spread over --repeat runs), ns
per packet with and without the harness (the null NF in the same program
shape), latency p50/p99 per core, state memory per core.
Part 2, fw, nat, pol: shared-nothing, the three lock schemes (and tm where
the CPU has RTM) on 1 and 2 cores with uniform, Zipf and churn traffic,
with re-runs per packet and the spread of the 2-core Mpps over the repeats.
Prints tables; writes codegen/bench_results/programs.json.
Measure as ratios within one run: absolute Mpps drift between runs.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

from analyses.model import Analysis
from analyses.nf_source import sample_names
from codegen.bench import BenchRow, aborts_per_packet, bench
from codegen.reference import build_reference, run_replay
from codegen.testpmd import run_testpmd
from codegen.trace import write_replay
from codegen.traffic import generate as make_traffic

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "analysis"
OUT = Path(__file__).parent / "bench_results" / "programs.json"
LOCKED = ("bridge", "lb")
FLOWS, PACKETS = 10000, 200000  # bench()'s defaults: the reference runner gets the same trace
RTM = "rtm" in Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m codegen.program_bench")
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--repeat", type=int, default=1, help="runs of each configuration (median, spread)")
    parser.add_argument("--nf", action="append")
    parser.add_argument("--json", type=Path, default=OUT)
    parser.add_argument("--skip-locks", action="store_true")
    parser.add_argument("--no-testpmd", action="store_true")
    args = parser.parse_args(argv)
    console = Console(width=None if sys.stdout.isatty() else 220)
    log = lambda text: console.print(f"[dim]{text}[/]")  # noqa: E731
    doc = {"machine": platform.node(), "cpus": os.cpu_count(), "seconds": args.seconds,
           "repeat": args.repeat, "load_before": os.getloadavg(), "testpmd": {}, "scaling": {},
           "reference_mpps": {}, "locks": {}}
    peers = []
    if not args.no_testpmd:
        log("testpmd io-forward, two net_null ports, one forwarding core")
        peers.append(run_testpmd(args.seconds))
    trace = make_traffic("uniform", FLOWS, PACKETS, seed=1)
    scaling: dict[str, list[BenchRow]] = {}
    harness: dict = {}  # the null NF per program shape, measured once in this run
    for nf in args.nf or sample_names():
        analysis = Analysis.load(FIXTURES / f"{nf}.json")
        strategy = "locks" if nf in LOCKED else "sn"
        scaling[nf] = bench(nf, analysis, cores=[1, 2], strategies=["seq", strategy], traffic=["uniform"],
                            seconds=args.seconds, flows=FLOWS, packets=PACKETS, log=log, repeat=args.repeat,
                            harness_cache=harness)
        doc["scaling"][nf] = [r.__dict__ for r in scaling[nf]]
        doc["reference_mpps"][nf] = reference_mpps(nf, trace)
    if not args.no_testpmd:
        log("testpmd io-forward again")
        peers.append(run_testpmd(args.seconds))
    periods = [p for peer in peers for p in peer.periods[1:]]
    peer_mpps = statistics.median(periods) if periods else None
    doc["testpmd"] = {"mpps": peer_mpps, "runs": [p.__dict__ for p in peers]}
    console.print(_peer_line(peers, peer_mpps))
    console.print(scaling_table(scaling, doc["reference_mpps"], peer_mpps))
    if not args.skip_locks:
        strategies = ["sn", "locks-maestro", "locks-object", "locks-global"] + (["tm"] if RTM else [])
        locks: dict[str, list[BenchRow]] = {}
        for nf in ("fw", "nat", "pol"):
            if args.nf and nf not in args.nf:
                continue
            analysis = Analysis.load(FIXTURES / f"{nf}.json")
            locks[nf] = bench(nf, analysis, cores=[1, 2], strategies=strategies,
                              traffic=["uniform", "zipf", "churn"], seconds=args.seconds, flows=FLOWS,
                              packets=PACKETS, log=log, harness=False, repeat=args.repeat)
            doc["locks"][nf] = [r.__dict__ for r in locks[nf]]
        console.print(locks_table(locks))
    doc["load_after"] = os.getloadavg()
    console.print(f"load average before {_load(doc['load_before'])}, after {_load(doc['load_after'])} "
                  f"({os.cpu_count()} CPUs): a loaded machine lowers every figure")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(doc, indent=2))
    console.print(f"wrote {args.json}")
    return 0


def reference_mpps(nf: str, trace, runs: int = 5) -> float | None:
    """The sequential reference runner's Mpps on `trace` (its nf_process loop
    alone), median of `runs`."""
    exe = build_reference(nf)
    with tempfile.TemporaryDirectory(prefix="maestro-bench-ref-") as tmp:
        replay = Path(tmp) / "trace.replay"
        write_replay(replay, trace)
        rates = [run_replay(nf, exe, replay, with_bytes=False, per_packet=False).totals.get("pps", 0)
                 for _ in range(runs)]
    return statistics.median(rates) / 1e6 if any(rates) else None


def scaling_table(scaling: dict[str, list[BenchRow]], reference: dict[str, float | None],
                  peer: float | None) -> Table:
    table = Table(title="generated programs, uniform traffic (median Mpps of 0.5 s intervals; "
                        "ratios within this run)",
                  caption="ref: the sequential reference runner on the same trace.  vs testpmd: the "
                          "1-core Mpps over testpmd io-forward's.  ns/pkt, harness (null NF), NF: per "
                          "packet on 1 core.  p50/p99: latency per core on 2 cores.")
    for column in ("NF", "program", "ref", "seq 1c", "1 core", "vs ref", "vs testpmd", "2 cores",
                   "speedup (spread)", "ns/pkt", "harness", "NF ns", "p50/p99 us (2c)", "state MB/core"):
        table.add_column(column, justify="left" if column in ("NF", "program") else "right")
    for nf, rows in scaling.items():
        seq = next((r for r in rows if r.strategy == "seq"), BenchRow("seq", 1, ""))
        one = next((r for r in rows if r.strategy != "seq" and r.cores == 1), BenchRow("?", 1, ""))
        two = next((r for r in rows if r.strategy != "seq" and r.cores == 2), BenchRow("?", 2, ""))
        ref = reference.get(nf)
        table.add_row(
            nf, one.strategy, _f(ref), _f(seq.mpps), _f(one.mpps),
            _f(one.mpps and ref and one.mpps / ref, "{:.0%}"),
            _f(one.mpps and peer and one.mpps / peer, "{:.0%}"), _f(two.mpps),
            _speedup(two), _f(one.ns_per_packet, "{:.1f}"), _f(one.harness_ns, "{:.1f}"),
            _f(one.nf_ns, "{:.1f}"), _latency(two),
            " ".join(f"{b / 2**20:.1f}" for b in two.state_bytes_per_core) or "-")
    return table


def locks_table(locks: dict[str, list[BenchRow]]) -> Table:
    table = Table(title="lock schemes (median Mpps; speedup 2/1; re-runs per packet on 2 cores)",
                  caption="spread: min-max of the 2-core Mpps over the repeats; a difference smaller "
                          "than the spreads is noise.")
    for column in ("NF", "traffic", "strategy", "1 core", "2 cores", "spread (2c)", "speedup",
                   "re-runs/pkt", "p50/p99 us (2c)", "note"):
        table.add_column(column, justify="left" if column in ("NF", "traffic", "strategy", "note")
                         else "right")
    for nf, rows in locks.items():
        for traffic in ("uniform", "zipf", "churn"):
            for r2 in (r for r in rows if r.cores == 2 and r.traffic == traffic):
                r1 = next((r for r in rows if (r.strategy, r.traffic, r.cores) == (r2.strategy, traffic, 1)),
                          BenchRow(r2.strategy, 1, traffic))
                spread = (f"{min(r2.runs_mpps):.2f}-{max(r2.runs_mpps):.2f}"
                          if len(r2.runs_mpps) > 1 else "-")
                table.add_row(nf, traffic, r2.strategy, _f(r1.mpps), _f(r2.mpps), spread,
                              _f(r2.speedup, "{:.2f}x"), _f(aborts_per_packet(r2), "{:.4f}", zero=True),
                              _latency(r2), (r2.error or r1.error or "")[:40])
    return table


def _peer_line(peers, mpps: float | None) -> str:
    if not peers:
        return "testpmd: skipped (--no-testpmd)"
    if mpps is None:
        return f"testpmd: no figure ({next((p.error for p in peers if p.error), '')[:200]})"
    return (f"testpmd io-forward, 2 net_null ports, 1 forwarding core: {mpps:.2f} Mpps "
            f"(median of {sum(len(p.periods[1:]) for p in peers)} one-second periods, before and after)")


def _speedup(row: BenchRow) -> str:
    if not row.speedup:
        return "-"
    if len(row.speedup_runs) > 1:
        return f"{row.speedup:.2f}x ({min(row.speedup_runs):.2f}-{max(row.speedup_runs):.2f})"
    return f"{row.speedup:.2f}x"


def _latency(row: BenchRow) -> str:
    return " ".join(f"{c['p50'] / 1e3:.1f}/{c['p99'] / 1e3:.1f}" for c in row.per_core_latency_ns if c) or "-"


def _load(load) -> str:
    return "/".join(f"{x:.1f}" for x in load)


def _f(value, fmt="{:.2f}", zero=False):
    return fmt.format(value) if value or (zero and value is not None) else "-"


if __name__ == "__main__":
    raise SystemExit(main())
