"""Generating the parallel DPDK program of a plan.

`generate` writes a self-contained program folder:

    Makefile            generated: builds `nf-<strategy>` with pkg-config libdpdk
    config.c            generated: the plan as data (decisions, keys, RETA)
    nf/<name>.c         the NF, unchanged
    runtime/            the C runtime (include/, state/, dpdk/), copied

The NF is compiled once per worker core with its entry points renamed, so
each copy has its own file-scope state (codegen/runtime/dpdk/rt.h explains
the runtime).  Generated files carry a header naming the NF, the plan
digest and the strategy.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from analyses import rss
from analyses.errors import MaestroError
from analyses.fields import FRAME_FIELDS, L4_FIELDS
from analyses.plan_capacity import DIVISIBLE_KINDS
from analyses.model import Analysis
from analyses.nf_source import NFSource, local_headers, resolve_nf
from analyses.nic import nic_profile
from analyses.planner import LOCK_KINDS, PROGRAM_STRATEGIES, Plan, plan_requirements
from codegen.runtime import RUNTIME_DIR, STATE_DIR
from codegen.safe_text import c_comment, c_string, check_name, check_nf_name, makefile_define_flags

#: Program strategies and lock kinds (analyses/plan_values.py), as the
#: runtime's enums name them (rt.h).
STRATEGIES = PROGRAM_STRATEGIES
_LOCK_ENUM = {kind: f"MAESTRO_LOCK_{kind.upper()}" for kind in LOCK_KINDS}
_PLAN_STRATEGY = {"shared-nothing": "sn", "mixed": "locks", "locks": "locks", "tm": "tm"}
_DECISIONS = {"shard": "MAESTRO_SHARD", "replicate": "MAESTRO_REPLICATE", "lock": "MAESTRO_SHARED"}
_STRATEGY_ENUM = {"seq": "MAESTRO_SEQ", "sn": "MAESTRO_SN", "locks": "MAESTRO_LOCKS",
                  "tm": "MAESTRO_TM"}
_TEMPLATES = Path(__file__).parent / "templates"
#: An ELF symbol of a C variable ("packets", "next.0" for a block-scope static).
_SYMBOL = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[0-9]+)?$")
_RUNTIME_DIRS = ("include", "state", "dpdk")


class GenerateError(MaestroError):
    """A plan that cannot be turned into a program (the message says why)."""


@dataclass(frozen=True)
class GeneratedProgram:
    """A generated program folder: where, what it runs, and its files."""

    directory: Path
    nf: str
    strategy: str
    lock: str
    cores: int
    devices: int
    digest: str
    files: tuple[str, ...]
    #: the NF's config macros (-D) it was generated with
    defines: dict[str, str] = field(default_factory=dict)

    @property
    def nf_copy(self) -> Path:
        """The NF's source as the program holds it."""
        return self.directory / "nf" / f"{self.nf}.c"

    @property
    def program(self) -> Path:
        """The executable `make` builds."""
        return self.directory / f"nf-{self.strategy}"

    def to_json(self) -> dict[str, Any]:
        return {"directory": str(self.directory), "nf": self.nf, "strategy": self.strategy,
                "lock": self.lock, "cores": self.cores, "devices": self.devices,
                "digest": self.digest, "files": list(self.files), "defines": self.defines}

    @classmethod
    def load(cls, directory: str | Path) -> "GeneratedProgram":
        """The program described by directory/program.json."""
        path = Path(directory) / "program.json"
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise GenerateError(f"{path}: not a generated program ({exc})") from None
        try:
            return cls.from_json(doc, Path(directory))
        except (MaestroError, KeyError, TypeError, ValueError) as exc:
            raise GenerateError(f"{path}: not a generated program ({exc})") from None

    @classmethod
    def from_json(cls, doc: Mapping[str, Any], directory: Path) -> "GeneratedProgram":
        """The program a program.json document describes, checked: its NF name
        and strategy are ones maestro writes, its files lie inside the folder."""
        if not isinstance(doc, Mapping):
            raise TypeError("a JSON object is expected")
        strategy = str(doc["strategy"])
        if strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy {strategy!r}")
        files = tuple(str(f) for f in doc["files"])
        outside = [f for f in files if Path(f).is_absolute() or ".." in Path(f).parts]
        if outside:
            raise ValueError(f"file {outside[0]!r} lies outside the program folder")
        defines = {str(k): str(v) for k, v in (doc.get("defines") or {}).items()}
        makefile_define_flags(defines)  # the names and values a Makefile can hold
        return cls(directory, check_nf_name(str(doc["nf"])), strategy, str(doc["lock"]),
                   int(doc["cores"]), int(doc["devices"]), str(doc["digest"]), files, defines)


def plan_digest(plan: Mapping[str, Any]) -> str:
    """A short digest of the plan's decisions (named in generated headers):
    timings ("seconds" anywhere in the document) are left out, so planning
    the same thing again gives the same digest."""
    def steady(value: Any) -> Any:
        if isinstance(value, Mapping):
            return {k: steady(v) for k, v in value.items() if k != "seconds"}
        if isinstance(value, list):
            return [steady(v) for v in value]
        return value

    return hashlib.sha256(json.dumps(steady(plan), sort_keys=True).encode()).hexdigest()[:12]


def program_strategy(plan: Mapping[str, Any], strategy: str | None) -> str:
    """The program strategy: an explicit one, else the plan's."""
    if strategy is not None:
        if strategy not in STRATEGIES:
            raise GenerateError(f"unknown strategy {strategy!r} (one of {', '.join(STRATEGIES)})")
        return strategy
    return _PLAN_STRATEGY.get(plan.get("strategy", ""), "locks")


def generate(
    nf: str | Path | NFSource,
    plan: Mapping[str, Any],
    analysis: Analysis,
    out_dir: str | Path,
    *,
    strategy: str | None = None,
    lock: str = "maestro",
    defines: Mapping[str, object] | None = None,
    replace: bool = True,
) -> GeneratedProgram:
    """Write the program of `plan` for `nf` into out_dir (see module doc).

    out_dir must be new, empty, or hold a program maestro generated, which
    is replaced only when `replace` is set (`maestro generate --force`).

    strategy: seq (one core, no synchronisation), sn, locks or tm; by default
    the plan's.  lock: the locks strategy's granularity (maestro, object,
    global).  For sn, every object must be sharded or replicated.
    """
    source = nf if isinstance(nf, NFSource) else resolve_nf(nf)
    check_nf_name(source.name)  # it names nf/<name>.c in the Makefile
    check_plan(plan)
    check_plan_matches(plan, source, analysis)
    check_destination(Path(out_dir), replace)
    try:
        context = _context(source, plan, analysis, strategy, lock, defines)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise GenerateError(f"the plan is malformed ({type(exc).__name__}: {exc})") from None
    try:
        return _write(source, plan, analysis, Path(out_dir), context, lock, defines)
    except OSError as exc:
        raise GenerateError(f"cannot write the program into {out_dir}: "
                            f"{exc.strerror or exc} ({exc.filename or out_dir})") from None


def check_plan(plan: Any) -> None:
    """GenerateError naming the first field of a plan document that is not
    what `maestro plan --json` writes (types and ranges)."""
    if not isinstance(plan, Mapping):
        raise GenerateError(f"the plan is not a JSON object (got {type(plan).__name__}): "
                            "expected the output of maestro plan --json")
    cores = plan.get("cores")
    if isinstance(cores, bool) or not isinstance(cores, int) or not 1 <= cores <= 64:
        raise GenerateError(f"the plan's \"cores\" is {cores!r}: expected an integer in 1..64")
    for name, kind in (("objects", list), ("rss", Mapping), ("reta", list)):
        if name in plan and plan[name] is not None and not isinstance(plan[name], kind):
            raise GenerateError(f"the plan's {name!r} is a {type(plan[name]).__name__}, "
                                f"not a JSON {'array' if kind is list else 'object'}")
    for index, obj in enumerate(plan.get("objects") or []):
        if not isinstance(obj, Mapping) or not isinstance(obj.get("name"), str):
            raise GenerateError(f"the plan's objects[{index}] has no \"name\"")
    reta = plan.get("reta") or []
    if not all(isinstance(c, int) and not isinstance(c, bool) and 0 <= c < cores for c in reta):
        raise GenerateError(f"the plan's \"reta\" holds an entry that is not a core in 0..{cores - 1}")
    if len(reta) > 512 or (reta and len(reta) & (len(reta) - 1)):
        raise GenerateError(f"the plan's \"reta\" has {len(reta)} entries: expected a power of 2 up to 512")


def check_plan_matches(plan: Mapping[str, Any], source: NFSource, analysis: Analysis) -> None:
    """GenerateError unless the plan was made for this NF from this analysis,
    and its RSS keys still satisfy what its sharded objects require: z3
    proves them again, so a plan whose keys or RETA were edited is refused
    with the requirement they break, never turned into a program."""
    if plan.get("nf") != source.name or analysis.nf != source.name:
        raise GenerateError(f"the plan is for the NF {plan.get('nf')!r} and the analysis for "
                            f"{analysis.nf!r}, not for {source.name!r}: plan {source.name} first")
    recorded = plan.get("analysis_digest") or ""
    if recorded and recorded != analysis.digest():
        raise GenerateError(f"the plan was made from another analysis of {source.name} (digest {recorded}, "
                            f"this analysis is {analysis.digest()}): plan again from this analysis, "
                            "or pass the analysis the plan was made from (--analysis)")
    try:
        value = Plan.from_json(dict(plan))
        keys = value.keys()
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise GenerateError(f"the plan is malformed ({type(exc).__name__}: {exc})") from None
    requirements = plan_requirements(analysis, value)
    if not requirements:
        return
    proof = rss.prove(requirements, keys, nic_profile(value.nic), value.reta)
    if proof.result != "unsat":
        example = proof.counterexample or {}
        raise GenerateError(
            f"the plan's RSS keys do not keep its sharded objects on one core: z3 "
            f"{'finds a counterexample' if proof.result == 'sat' else 'could not prove them (' + proof.result + ')'}"
            + (f" to {example['requirement']}" if example.get("requirement") else "")
            + (f" ({'; '.join(rss.describe_packet(p) for p in example['packets'])})" if example.get("packets") else "")
            + ": plan again (the keys were edited, or the plan is for another NIC or analysis)")


def _context(source: NFSource, plan: Mapping[str, Any], analysis: Analysis, strategy: str | None,
             lock: str, defines: Mapping[str, object] | None) -> dict[str, Any]:
    """What the templates are rendered with (GenerateError for what cannot be generated)."""
    strategy = program_strategy(plan, strategy)
    if lock not in LOCK_KINDS:
        raise GenerateError(f"unknown lock granularity {lock!r} (one of {', '.join(LOCK_KINDS)})")
    cores = 1 if strategy == "seq" else int(plan["cores"])
    objects = _objects(plan, analysis, strategy)
    shared_variables = _shared_variables(plan, strategy)
    keys, key_len, rss_l4 = rss_config(plan, analysis.devices)
    reta = [int(c) for c in plan.get("reta") or [0]]
    if strategy == "seq":
        reta = [0] * len(reta)
    digest = plan_digest(plan)
    context = {
        "nf": source.name, "digest": digest, "strategy_name": strategy,
        "strategy_enum": _STRATEGY_ENUM[strategy], "lock_enum": _LOCK_ENUM[lock],
        "cores": cores, "devices": analysis.devices, "objects": objects, "keys": keys,
        "key_len": key_len, "rss_l4": rss_l4, "reta": reta, "program": f"nf-{strategy}",
        "nf_defines": makefile_define_flags(defines), "shared_variables": shared_variables,
        "state_sources": [p.stem for p in sorted(STATE_DIR.glob("*.c"))],
        "writes": packet_write_ranges(analysis),
    }
    context["nf_header_files"] = nf_headers(source, defines)
    context["nf_headers"] = " ".join(name for name, _ in context["nf_header_files"])
    return context


def _write(source: NFSource, plan: Mapping[str, Any], analysis: Analysis, out: Path,
           context: dict[str, Any], lock: str, defines: Mapping[str, object] | None) -> GeneratedProgram:
    """Write the program's files into `out` (see the module doc); the
    program's files are exactly those written (nothing else in the folder)."""
    strategy, cores, digest = context["strategy_name"], context["cores"], context["digest"]
    written: list[str] = []

    def put(name: str, text: str | None = None, copy_of: Path | None = None) -> None:
        # A file whose content is unchanged is left as it is, so its mtime
        # tells make that what was built from it is current: regenerating
        # with another lock kind rebuilds config.o, not the whole program.
        target = out / name
        target.parent.mkdir(parents=True, exist_ok=True)
        data = copy_of.read_bytes() if copy_of is not None else (text or "").encode()
        if not (target.is_file() and target.read_bytes() == data):
            target.write_bytes(data)
        written.append(name)

    out.mkdir(parents=True, exist_ok=True)
    env = Environment(loader=FileSystemLoader(_TEMPLATES), undefined=StrictUndefined,
                      keep_trailing_newline=True)
    env.filters.update(c_string=c_string, c_comment=c_comment)
    put("config.c", env.get_template("config.c.j2").render(context))
    put("Makefile", env.get_template("Makefile.j2").render(context))
    put(f"nf/{source.name}.c", copy_of=source.path)  # GeneratedProgram.nf_copy
    for name, header in context["nf_header_files"]:  # beside the copy, as the NF includes them
        put(name, copy_of=header)
    for sub in _RUNTIME_DIRS:
        for path in sorted((RUNTIME_DIR / sub).iterdir()):
            if path.suffix in (".c", ".h", ".sh"):
                put(f"runtime/{sub}/{path.name}", copy_of=path)
    put("plan.json", json.dumps(plan, indent=2))
    program = GeneratedProgram(out, source.name, strategy, lock, cores, analysis.devices, digest,
                               tuple(sorted(written)), {str(k): str(v) for k, v in (defines or {}).items()})
    (out / "program.json").write_text(json.dumps(program.to_json(), indent=2))
    return program


def nf_headers(source: NFSource, defines: Mapping[str, object] | None) -> list[tuple[str, Path]]:
    """(name in the program, header) for each local header the NF includes:
    nf/<its path from the NF's folder>.  A header outside the NF's folder,
    or with a name a Makefile cannot hold, is refused."""
    folder = source.path.parent
    out = []
    for header in local_headers(source, defines):
        if not header.is_relative_to(folder):
            raise GenerateError(f"{source.path} includes {header}, outside the NF's folder: the "
                                "program copies headers from the NF's folder (and below) only")
        relative = header.relative_to(folder)
        for part in relative.parts:
            check_name(part, f"the header {relative}")
        out.append((f"nf/{relative.as_posix()}", header))
    return out


def check_destination(out: Path, replace: bool) -> bool:
    """Refuse to write into a folder holding anything but a maestro program,
    or a program unless `replace` is set.  True: `out` holds a program to
    replace (its files are overwritten; its executable, built from the old
    files, is then refused by codegen.program.check_built until rebuilt)."""
    if not out.exists():
        return False
    if not out.is_dir():
        raise GenerateError(f"{out} exists and is not a folder")
    if not any(out.iterdir()):
        return False
    if not (out / "program.json").is_file():
        raise GenerateError(f"{out} is not empty and holds no program maestro generated (no "
                            "program.json): choose a new or empty folder")
    if not replace:
        raise GenerateError(f"{out} holds a program maestro generated: --force replaces it")
    GeneratedProgram.load(out)  # a program.json maestro cannot read is not replaced
    return True


_BYTE_NAME = re.compile(r"^(pkt|l4)\[(\d+)\]$")


def packet_write_ranges(analysis: Analysis) -> dict[str, Any]:
    """The packet bytes the NF may write, for the simulated NIC (which
    restores only those before it delivers a packet again): `frame`, a
    [lo, hi) of frame offsets, and `l4`, one of offsets from the L4 header's
    start ((0, 0): none).  `known` is False when the analysis is incomplete
    or names a write it cannot place: then the whole frame is restored."""
    frame, l4 = [1 << 16, 0], [1 << 16, 0]

    def cover(span: list[int], start: int, length: int) -> None:
        span[0], span[1] = min(span[0], start), max(span[1], start + length)

    unplaced = []
    for write in analysis.packet_writes:
        for name in write.fields:
            if name in FRAME_FIELDS:
                cover(frame, *FRAME_FIELDS[name])
            elif name in L4_FIELDS:
                cover(l4, *L4_FIELDS[name])
            elif m := _BYTE_NAME.match(name):
                cover(frame if m.group(1) == "pkt" else l4, int(m.group(2)), 1)
            else:
                unplaced.append(name)
    known = analysis.stats.complete and not unplaced
    ranges = [tuple(span) if span[0] < span[1] else (0, 0) for span in (frame, l4)]
    if not known:
        note = ("unknown: the analysis is incomplete" if not analysis.stats.complete else
                f"unknown: {unplaced[0]} has no place in the frame") + ", the whole frame"
    elif ranges == [(0, 0), (0, 0)]:
        note = "none"
    else:
        note = f"frame bytes [{ranges[0][0]}, {ranges[0][1]}), L4 bytes [{ranges[1][0]}, {ranges[1][1]})"
    return {"known": known, "frame": ranges[0], "l4": ranges[1], "note": note}


def _shared_variables(plan: Mapping[str, Any], strategy: str) -> list[str]:
    """The NF variables every copy shares (ELF symbols), checked against the
    strategy: shared-nothing cannot keep one instance for all cores."""
    symbols = [str(s) for s in plan.get("shared_variables") or []]
    for symbol in symbols:
        if not _SYMBOL.match(symbol):
            raise GenerateError(f"the plan shares a variable named {symbol!r}, which is not a C symbol")
    if symbols and strategy == "sn":
        raise GenerateError(f"shared-nothing cannot keep the NF variables {', '.join(symbols)} as one "
                            "instance for all cores: the plan shares them (use the plan's strategy)")
    return [] if strategy == "seq" else symbols


def _objects(plan: Mapping[str, Any], analysis: Analysis, strategy: str) -> list[dict]:
    """The objects nf_init allocates, in allocation order, with the plan's
    decisions (the NF's variables are not allocated: see _shared_variables)."""
    decided = {o["name"]: o for o in plan.get("objects", [])}
    objects = []
    for obj in sorted((o for o in analysis.objects if o.allocated), key=lambda o: o.order):
        entry = decided.get(obj.name)
        if entry is None:
            raise GenerateError(f"the plan has no decision for object {obj.name} "
                                "(was it made from another analysis?)")
        decision = entry["decision"]
        if decision not in _DECISIONS:
            raise GenerateError(f"object {obj.name}: unknown decision {decision!r}")
        if strategy == "sn" and decision == "lock":
            raise GenerateError(f"shared-nothing cannot keep {obj.name} shared: the plan locks it "
                                f"({entry.get('reason', 'no reason given')})")
        objects.append({"name": obj.name, "kind": obj.kind, "decision_enum": _DECISIONS[decision],
                        "reason": entry.get("reason", ""), "per_core": _per_core(entry, obj, decision)})
    return objects


def _per_core(entry: Mapping[str, Any], obj, decision: str) -> int:
    """The capacity of each core's instance of a sharded object when the
    plan divides it (analyses/plan_capacity.py); 0: the NF's own."""
    per_core = entry.get("per_core_capacity", 0)
    if decision != "shard" or not per_core or per_core == obj.capacity:
        return 0
    if obj.kind not in DIVISIBLE_KINDS:
        raise GenerateError(f"object {obj.name}: a {obj.kind} keeps its capacity on each core "
                            f"(only {', '.join(DIVISIBLE_KINDS)} can be divided)")
    if not isinstance(per_core, int) or not 0 < per_core < obj.capacity:
        raise GenerateError(f"object {obj.name}: per_core_capacity {per_core!r} is not between 1 and "
                            f"its capacity {obj.capacity}")
    return per_core


def rss_config(plan: Mapping[str, Any], devices: int) -> tuple[list[list[int]], int, list[int]]:
    """Per device: key bytes (padded to 52), the key length, whether L4 ports are hashed."""
    keys, lengths, l4 = [], set(), []
    for device in range(devices):
        entry = (plan.get("rss") or {}).get(str(device)) or (plan.get("rss") or {}).get(device)
        if entry is None:
            raise GenerateError(f"the plan has no RSS key for device {device}")
        key = bytes.fromhex(entry["key"])
        lengths.add(len(key))
        keys.append(list(key) + [0] * (52 - len(key)))
        fields = entry.get("hash_fields", {})
        flat = [f for fs in (fields.values() if isinstance(fields, dict) else [fields]) for f in fs]
        l4.append(int(any(f.startswith("l4.") for f in flat)))
    if len(lengths) > 1:
        raise GenerateError(f"RSS keys of different lengths {sorted(lengths)} in one plan")
    return keys, lengths.pop() if lengths else 40, l4
