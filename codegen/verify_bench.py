"""Report: how much of each NF the default verification reaches.

    python -m codegen.verify_bench [--nf fw ...] [-D NF:NAME=VALUE ...] [--json FILE]

For each sample NF (or those named), what `maestro verify NF --cores 2
--packets 0` does: analyze, plan (auto), generate, build, drive the paths
profile through the program and the sequential NF.  Prints per NF the
plan, the paths reached per device (sequential run, in the cores' commit
order for a lock program), the paths told apart only by values a run does
not observe, the unreached paths that need a sharded table full (driven
last, on one core, where the capacity is small enough), the share reached
of all paths, of the rest (those left out) and in the trace's own order,
the verdict and the seconds, and
writes JSON (default build/bench/verify.json).  `-D fw:FW_CAPACITY=4`
sets a config macro for one NF, `--locks lb:object` the lock scheme of its
program (default maestro); SAMPLE_DEFINES are used unless
--no-sample-defines (-D adds to them or overrides them).
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from analyses.nf_source import sample_names

#: Config macros that keep each sample's verification small enough to reach
#: its paths: tables of 64 entries (4 for the bridges, whose table is not
#: sharded), thresholds a few packets reach.
SAMPLE_DEFINES: dict[str, dict[str, str]] = {
    "bridge": {"BRIDGE_CAPACITY": "4"},
    "sbridge": {"SBRIDGE_CAPACITY": "4"},
    "cl": {"CL_MAX_FLOWS": "4", "CL_CAPACITY": "64"},
    "fw": {"FW_CAPACITY": "64"},
    "lb": {"LB_FLOW_CAPACITY": "64"},
    "nat": {"NAT_CAPACITY": "64"},
    "pol": {"POL_CAPACITY": "64", "POL_BURST": "10000"},
    "psd": {"PSD_THRESHOLD": "4", "PSD_CAPACITY": "64", "PSD_PORT_CAPACITY": "64"},
    "hhh": {"HHH_CAPACITY_16": "4", "HHH_CAPACITY_24": "8", "HHH_CAPACITY_32": "16", "HHH_LIMIT_16": "6000", "HHH_LIMIT_24": "3000", "HHH_LIMIT_32": "1500"},
}


def verify_one(nf: str, defines: dict[str, str], path_seconds: float, lock: str = "maestro") -> dict:
    """One NF's verification on its paths, as a row (`lock`: the lock scheme
    of a plan that locks objects)."""
    from codegen.verify import full_sharded_tables, prepare, verify_traffics

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="maestro-verify-") as tmp:  # no folder left behind
        prepared = prepare(nf, cores=2, lock=lock, defines=defines or None, out_dir=Path(tmp) / nf)
        [(sent, verdict, _)] = verify_traffics(prepared, ["paths"], packets=0, path_seconds=path_seconds)
    cov = verdict.reference_coverage
    reached = {d: len(cov.reached.get(d, [])) for d in cov.paths}
    total = {d: len(ids) for d, ids in cov.paths.items()}
    needs_full = full_sharded_tables(prepared.analysis, prepared.plan)
    per_core = sum(1 for ids in cov.missed().values() for p in ids if p in needs_full)
    return {"nf": nf, "defines": defines, "plan": prepared.plan.get("strategy"), "lock": lock,
            "program": prepared.program.strategy, "packets": len(sent.packets),
            "reached": reached, "paths": total, "maybe": len(cov.maybe()), "per_core_full": per_core,
            "share": round(sum(reached.values()) / max(1, sum(total.values())), 3),
            # the paths sharding makes differ by design (a per-core table full) left out
            "share_comparable": round(sum(reached.values()) / max(1, sum(total.values()) - per_core), 3),
            # what the NF reaches on the trace in its own order (a lock
            # program's verdict counts the cores' commit order)
            "share_trace": round(sum(len(ids) for ids in sent.coverage.reached.values())
                                 / max(1, sum(total.values())), 3) if sent.coverage else None,
            "equivalent": verdict.equivalent, "summary": verdict.summary(),
            "never_reached": verdict.never_reached(), "notes": sent.notes,
            "seconds": round(time.perf_counter() - started, 1)}


def main(argv: list[str] | None = None) -> int:
    from analyses.locations import build_root

    parser = argparse.ArgumentParser(prog="python -m codegen.verify_bench")
    parser.add_argument("--nf", action="append", help="NF to verify (default: every sample)")
    parser.add_argument("-D", dest="defines", action="append", default=[], metavar="NF:NAME=VALUE",
                        help="a config macro for one NF (repeatable)")
    parser.add_argument("--path-seconds", type=float, default=60.0, help="path traffic budget per NF")
    parser.add_argument("--locks", action="append", default=[], metavar="NF:KIND",
                        help="the lock scheme for one NF's program (default maestro; repeatable)")
    parser.add_argument("--no-sample-defines", action="store_true", help="no SAMPLE_DEFINES")
    parser.add_argument("--json", type=Path, default=build_root() / "bench" / "verify.json")
    args = parser.parse_args(argv)
    defines = {} if args.no_sample_defines else {nf: dict(d) for nf, d in SAMPLE_DEFINES.items()}
    for item in args.defines:
        nf, _, define = item.partition(":")
        name, _, value = define.partition("=")
        if not (nf and name and value):
            parser.error(f"-D {item}: expected NF:NAME=VALUE")
        defines.setdefault(nf, {})[name] = value
    locks = dict(item.partition(":")[::2] for item in args.locks)
    rows = []
    table = Table(title="verification on the paths profile (2 cores, sequential run's coverage)")
    for column in ("NF", "-D", "plan", "packets", "paths reached", "maybe", "unreached: full sharded table",
                   "share", "share of the rest", "share in trace order", "verdict", "s"):
        table.add_column(column)
    for nf in args.nf or sample_names():
        row = verify_one(nf, defines.get(nf, {}), args.path_seconds, locks.get(nf) or "maestro")
        rows.append(row)
        table.add_row(nf, " ".join(f"{k}={v}" for k, v in row["defines"].items()),
                      row["plan"] + (f" ({row['lock']} locks)" if row["program"] == "locks" else ""),
                      str(row["packets"]),
                      ", ".join(f"dev {d} {row['reached'][d]}/{row['paths'][d]}" for d in sorted(row["paths"])),
                      str(row["maybe"]), str(row["per_core_full"]), f"{row['share']:.0%}",
                      f"{row['share_comparable']:.0%}",
                      f"{row['share_trace']:.0%}" if row["share_trace"] is not None else "-",
                      "equivalent" if row["equivalent"] else "DIFFERENT", f"{row['seconds']:.0f}")
    Console().print(table)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"results": rows}, indent=2))
    print(f"wrote {args.json}")
    return 0 if all(r["equivalent"] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
