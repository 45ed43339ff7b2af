"""A workbench session: where an engineer's work stands, saved as JSON.

`Session` is a frozen value: the NF being worked on, its analysis, the plan
settings (cores, NIC, strategy, per-object overrides), the plan, and the
results of later stages.  The app holds one and replaces it as steps finish;
`save`/`load` write and read it so work resumes where it stopped
(`maestro-tui --session FILE`).

JSON schema (top-level keys kept stable):

    schema         1
    kind           "maestro-session"
    nf             sample name or path of the NF's .c file (null: none chosen)
    source_digest  sha256 of the NF source the analysis was made from ("")
    step           the step the engineer was on (load, analyze, inspect, decide,
                   generate, run)
    settings       {cores, nic, strategy, overrides {object: shard|replicate|lock}}
    analysis       Analysis.to_json() or null
    plan           Plan.to_json() or null
    results        {stage: JSON document} of later stages, keyed by stage name:
                   generate  GeneratedProgram.to_json() (+ "previous": the
                             folder generated before, if any)
                   build     {ok, executable | error, seconds, log (last lines)}
                   run       {ok, traffic, seconds, interval, eal, cancelled,
                             config, final, stats (per-interval events) | error}
                   verify    Verdict.to_json() + {ok, traffic, packets, program,
                             strategy} | {ok: false, error}
                   bench     {ok, cores [1..N], strategies [codegen.bench
                             STRATEGIES names], traffic (a profile), flows,
                             packets, seconds (per point), cancelled, rows
                             [codegen.bench.BenchRow as a dict: strategy,
                             cores, traffic, mpps, per_core_mpps, speedup,
                             latency_ns, per_core_latency_ns, ns_per_packet,
                             harness_ns, nf_ns, error, ...]} | {ok: false, error}
                   A new generation drops build, run and verify; a new build
                   drops run.  A bench builds programs of its own from the
                   plan: only a new plan drops it.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

from analyses.errors import MaestroError
from analyses.model import Analysis
from analyses.planner import DEFAULT_NIC, Plan
from codegen.generator import GeneratedProgram
from codegen.program import check_built, program_digest

SCHEMA_VERSION = 1
KIND = "maestro-session"
#: The steps a session can be on (workbench/screens/steps.py).
STEP_NAMES = ("load", "analyze", "inspect", "decide", "generate", "run")
#: The results a new result of a stage makes stale.
STALE_AFTER = {"generate": ("build", "run", "verify"), "build": ("run",)}


class SessionError(MaestroError):
    """A session file that cannot be read or written (the message says why)."""


def sessions_dir() -> Path:
    """Where sessions are saved by default: $XDG_DATA_HOME/maestro/sessions,
    ~/.local/share/maestro/sessions when XDG_DATA_HOME is not set."""
    base = os.environ.get("XDG_DATA_HOME") or ""
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".local" / "share"
    return root / "maestro" / "sessions"


def default_session_path(nf: str | None) -> Path:
    """sessions_dir()/<nf>.session.json (the NF's file name without .c)."""
    name = Path(nf).stem if nf else "maestro"
    return sessions_dir() / f"{name}.session.json"


def default_cores() -> int:
    """Worker cores to plan for at first: what this machine can run, up to 4
    (a plan for more cores than the host has cannot run here)."""
    return max(1, min(4, os.cpu_count() or 1))


@dataclass(frozen=True)
class PlanSettings:
    """What the engineer asked the planner for.

    cores: worker cores; nic: NIC profile name (analyses.nic.NICS);
    strategy: auto | shared-nothing | locks | tm; overrides: object name ->
    shard | replicate | lock (objects absent are decided by the planner).
    """

    cores: int = field(default_factory=lambda: default_cores())
    nic: str = DEFAULT_NIC
    strategy: str = "auto"
    overrides: Mapping[str, str] = field(default_factory=dict)

    def with_override(self, name: str, decision: str | None) -> "PlanSettings":
        """These settings with object `name` forced to `decision` (None: the planner decides)."""
        overrides = {k: v for k, v in self.overrides.items() if k != name}
        if decision is not None:
            overrides[name] = decision
        return replace(self, overrides=overrides)

    def to_json(self) -> dict[str, Any]:
        return {"cores": self.cores, "nic": self.nic, "strategy": self.strategy,
                "overrides": dict(self.overrides)}

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> "PlanSettings":
        defaults = cls()
        return cls(int(doc.get("cores", defaults.cores)), str(doc.get("nic", defaults.nic)),
                   str(doc.get("strategy", defaults.strategy)), dict(doc.get("overrides", {})))


def schema_problems(doc: Mapping[str, Any]) -> list[str]:
    """One message per field of a session document that breaks the schema
    (types, enumerations, ranges); the analysis and plan are checked when
    they are rebuilt."""
    from analyses.nic import NICS
    from analyses.planner import DECISIONS, STRATEGIES

    problems = []

    def expect(where: str, ok: bool, wanted: str, value: Any) -> bool:
        if not ok:
            problems.append(f"{where}: expected {wanted}, got {json.dumps(value)[:60]}")
        return ok

    nf = doc.get("nf")
    expect("nf", nf is None or isinstance(nf, str) and nf != "", "a sample name or .c path, or null", nf)
    expect("source_digest", isinstance(doc.get("source_digest", ""), str), "a string",
           doc.get("source_digest"))
    expect("step", _one_of(doc.get("step", "load"), STEP_NAMES), f"one of {', '.join(STEP_NAMES)}", doc.get("step"))
    for name in ("analysis", "plan", "results"):
        value = doc.get(name)
        expect(name, value is None or isinstance(value, Mapping), "an object or null", value)
    settings = {} if doc.get("settings") is None else doc["settings"]
    if expect("settings", isinstance(settings, Mapping), "an object", settings):
        cores = settings.get("cores", 1)
        expect("settings.cores", isinstance(cores, int) and not isinstance(cores, bool) and 1 <= cores <= 64,
               "an integer in 1..64", cores)
        expect("settings.nic", _one_of(settings.get("nic", DEFAULT_NIC), NICS), f"one of {', '.join(NICS)}",
               settings.get("nic"))
        expect("settings.strategy", _one_of(settings.get("strategy", "auto"), STRATEGIES),
               f"one of {', '.join(STRATEGIES)}", settings.get("strategy"))
        overrides = {} if settings.get("overrides") is None else settings["overrides"]
        if expect("settings.overrides", isinstance(overrides, Mapping), "an object", overrides):
            for key, value in overrides.items():
                expect(f"settings.overrides.{key}", _one_of(value, DECISIONS), f"one of {', '.join(DECISIONS)}", value)
    results = doc.get("results") or {}
    if isinstance(results, Mapping):
        for stage, value in results.items():
            expect(f"results.{stage}", isinstance(value, Mapping), "an object", value)
        if isinstance(results.get("bench"), Mapping):
            problems += bench_problems(results["bench"])
    return problems


def bench_problems(doc: Mapping[str, Any]) -> list[str]:
    """One message per field of a session's bench result (results.bench)
    that breaks the schema of the module doc; what the Run screen shows of
    it must be numbers, names and lists of them."""
    from codegen.bench import STRATEGIES as BENCH_STRATEGIES
    from codegen.traffic import PROFILES

    problems: list[str] = []
    where = "results.bench"

    def expect(name: str, ok: bool, wanted: str, value: Any) -> bool:
        if not ok:
            problems.append(f"{where}.{name}: expected {wanted}, got {json.dumps(value)[:60]}")
        return ok

    def integer(value: Any, low: int, high: int) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high

    def number(value: Any, optional: bool = True) -> bool:
        if value is None:
            return optional
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)

    if not expect("ok", isinstance(doc.get("ok"), bool), "true or false", doc.get("ok")):
        return problems
    if not doc["ok"]:
        expect("error", isinstance(doc.get("error", ""), str), "a string", doc.get("error"))
        return problems
    cores = doc.get("cores", [])
    expect("cores", isinstance(cores, list) and all(integer(c, 1, 64) for c in cores),
           "a list of integers in 1..64", cores)
    strategies = doc.get("strategies", [])
    expect("strategies", isinstance(strategies, list) and all(_one_of(s, BENCH_STRATEGIES) for s in strategies),
           f"a list of {', '.join(BENCH_STRATEGIES)}", strategies)
    expect("traffic", _one_of(doc.get("traffic", "uniform"), PROFILES), f"one of {', '.join(PROFILES)}",
           doc.get("traffic"))
    for name in ("flows", "packets"):
        expect(name, integer(doc.get(name, 1), 1, 10**9), "a positive integer", doc.get(name))
    expect("seconds", number(doc.get("seconds", 1), False) and doc.get("seconds", 1) > 0, "a positive number",
           doc.get("seconds"))
    expect("cancelled", isinstance(doc.get("cancelled", False), bool), "true or false", doc.get("cancelled"))
    rows = doc.get("rows", [])
    if not expect("rows", isinstance(rows, list), "a list of rows", rows):
        return problems
    for i, row in enumerate(rows):
        at = f"rows[{i}]"
        if not expect(at, isinstance(row, Mapping), "an object", row):
            continue
        expect(f"{at}.strategy", _one_of(row.get("strategy"), BENCH_STRATEGIES),
               f"one of {', '.join(BENCH_STRATEGIES)}", row.get("strategy"))
        expect(f"{at}.cores", integer(row.get("cores"), 1, 64), "an integer in 1..64", row.get("cores"))
        expect(f"{at}.traffic", isinstance(row.get("traffic", ""), str), "a string", row.get("traffic"))
        for name in ("mpps", "speedup", "ns_per_packet", "harness_ns", "nf_ns"):
            expect(f"{at}.{name}", number(row.get(name)), "a number or null", row.get(name))
        per_core = row.get("per_core_mpps", [])
        expect(f"{at}.per_core_mpps", isinstance(per_core, list) and all(number(m, False) for m in per_core),
               "a list of numbers", per_core)
        latency = row.get("per_core_latency_ns", [])
        expect(f"{at}.per_core_latency_ns",
               isinstance(latency, list) and all(isinstance(c, Mapping) and all(number(v, False) for v in c.values())
                                                 for c in latency),
               "a list of {p50, p99, p999} in ns", latency)
        expect(f"{at}.error", row.get("error") is None or isinstance(row.get("error"), str), "a string or null",
               row.get("error"))
    return problems


def _one_of(value: Any, choices) -> bool:
    """Whether `value` is one of the names `choices` (a list is not hashable: never)."""
    return isinstance(value, str) and value in choices


def source_digest(path: str | Path) -> str:
    """sha256 of a source file ('' when it cannot be read)."""
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return ""


@dataclass(frozen=True)
class Session:
    """Where the work on one NF stands (see the module doc)."""

    nf: str | None = None
    analysis: Analysis | None = None
    settings: PlanSettings = field(default_factory=PlanSettings)
    plan: Plan | None = None
    step: str = "load"
    results: Mapping[str, Any] = field(default_factory=dict)
    source_digest: str = ""
    #: what loading the session left out, and why (not saved)
    warnings: tuple[str, ...] = field(default=(), compare=False)

    # --- moving on ----------------------------------------------------------

    def with_nf(self, spec: str) -> "Session":
        """Work on NF `spec`: a new NF drops the old one's analysis, plan and
        overrides (cores, NIC and strategy are kept)."""
        if spec == self.nf:
            return self
        return Session(nf=spec, settings=replace(self.settings, overrides={}), step=self.step)

    def with_analysis(self, analysis: Analysis) -> "Session":
        """A fresh analysis: the plan and later results are dropped, overrides
        of objects the NF no longer has too."""
        names = {o.name for o in analysis.objects}
        overrides = {k: v for k, v in self.settings.overrides.items() if k in names}
        return replace(self, analysis=analysis, plan=None, results={},
                       settings=replace(self.settings, overrides=overrides),
                       source_digest=source_digest(analysis.source))

    def with_plan(self, plan: Plan, settings: PlanSettings) -> "Session":
        """The plan computed for `settings`; later results are dropped."""
        return replace(self, plan=plan, settings=settings, results={})

    def with_program(self, program: GeneratedProgram) -> "Session":
        """The program just generated, with the digest of its files: a reopened
        session uses its folder only while the files match (Session.program)."""
        return self.with_result("generate", {**program.to_json(), "files_digest": program_digest(program)})

    def with_result(self, stage: str, doc: Mapping[str, Any]) -> "Session":
        """The result of a later stage (generate, build, run, verify); the
        results it makes stale (STALE_AFTER) are dropped."""
        stale = STALE_AFTER.get(stage, ())
        results = {k: v for k, v in self.results.items() if k not in stale and k != stage}
        results[stage] = doc
        return replace(self, results=results)

    @property
    def program(self) -> GeneratedProgram | None:
        """The generated program of the last generation (None: not generated)."""
        doc = self.results.get("generate")
        if not isinstance(doc, Mapping) or "directory" not in doc:
            return None
        try:
            return GeneratedProgram.from_json(doc, Path(str(doc["directory"])))
        except (MaestroError, KeyError, TypeError, ValueError, AttributeError):
            return None

    def untrusted_program(self) -> str:
        """Why the recorded program folder may not be used ('' if it may):
        a session is untrusted input, so its folder must hold exactly the
        files the generation recorded (their digest, Session.with_program)."""
        doc = self.results.get("generate")
        if not isinstance(doc, Mapping) or "directory" not in doc:
            return ""
        program = self.program
        if program is None:
            return f"the session's generate result is malformed (folder {doc.get('directory')})"
        if doc.get("files_digest") != program_digest(program):
            return (f"{program.directory} no longer holds the files the session's generation recorded "
                    "(changed, or not generated by maestro): generate the program again")
        return ""

    @property
    def built(self) -> bool:
        """Whether the generated program was built (its build succeeded) and
        its executable was built from the program's files as they are now."""
        doc = self.results.get("build")
        program = self.program
        if program is None or not isinstance(doc, Mapping) or doc.get("ok") is not True:
            return False
        try:
            check_built(program)
        except MaestroError:
            return False
        return True

    def at_step(self, step: str) -> "Session":
        return replace(self, step=step)

    def source_changed(self) -> bool:
        """Whether the NF source differs from the one the analysis was made from."""
        if self.analysis is None or not self.source_digest:
            return False
        return source_digest(self.analysis.source) not in ("", self.source_digest)

    # --- JSON ---------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """The JSON document (plain dicts and lists)."""
        return {
            "schema": SCHEMA_VERSION,
            "kind": KIND,
            "nf": self.nf,
            "source_digest": self.source_digest,
            "step": self.step,
            "settings": self.settings.to_json(),
            "analysis": self.analysis.to_json() if self.analysis else None,
            "plan": self.plan.to_json() if self.plan else None,
            "results": dict(self.results),
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> "Session":
        """Rebuild from `to_json` output; SessionError names what is wrong
        (every bad field, checked against the schema of the module doc)."""
        if not isinstance(doc, Mapping) or doc.get("kind") != KIND:
            raise SessionError("not a maestro session (no \"kind\": \"maestro-session\")")
        if doc.get("schema") != SCHEMA_VERSION:
            raise SessionError(f"session schema {doc.get('schema')!r} is not {SCHEMA_VERSION}")
        problems = schema_problems(doc)
        if problems:
            raise SessionError("malformed session: " + "; ".join(problems))
        try:
            session = cls(
                nf=doc.get("nf"),
                analysis=Analysis.from_json(doc["analysis"]) if doc.get("analysis") else None,
                settings=PlanSettings.from_json(doc.get("settings") or {}),
                plan=Plan.from_json(doc["plan"]) if doc.get("plan") else None,
                step=str(doc.get("step", "load")),
                results=dict(doc.get("results") or {}),
                source_digest=str(doc.get("source_digest", "")),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise SessionError(f"malformed session: {type(exc).__name__}: {exc}") from None
        problem = session.untrusted_program()
        if problem:  # the program and what was done with it are not used
            results = {k: v for k, v in session.results.items()
                       if k not in ("generate", *STALE_AFTER["generate"])}
            session = replace(session, results=results, warnings=(problem,))
        return session

    def dumps(self) -> str:
        """The JSON document as indented text."""
        return json.dumps(self.to_json(), indent=2)

    def save(self, path: str | Path) -> Path:
        """Write the session to `path` (SessionError when it cannot)."""
        path = Path(path).expanduser()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(self.dumps())
        except OSError as exc:
            raise SessionError(f"cannot write session {path}: {exc.strerror or exc}") from None
        return path

    @classmethod
    def load(cls, path: str | Path) -> "Session":
        """Read a saved session (SessionError naming the file when it cannot)."""
        path = Path(path).expanduser()
        try:
            doc = json.loads(path.read_text())
        except OSError as exc:
            raise SessionError(f"cannot read session {path}: {exc.strerror or exc}") from None
        except json.JSONDecodeError as exc:
            raise SessionError(f"{path}: not JSON ({exc})") from None
        try:
            return cls.from_json(doc)
        except SessionError as exc:
            raise SessionError(f"{path}: {exc}") from None
