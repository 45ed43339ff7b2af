"""Symbolic execution of an NF with angr: from C source to path results.

Stages (each named in progress reports and errors):
  compile  gcc builds the NF as a shared object (-g) after the contract check;
  init     nf_init runs with the state API modelled (procedures.py), which
           records every object; objects are named after the file-scope
           variables that hold their handles; map and sketch key sizes come
           from running each key-hash callback on a symbolic key;
  explore  nf_process runs on a fully symbolic packet (`pkt_<o>` per byte,
           `l4_<c>` per byte of the L4 header reached through IHL), symbolic
           length, device and time; every finished path is summarised at
           once (`PathResult`) and its state dropped.  Memory accesses are
           watched (analyses/memory.py): the NF's own variables are state
           too.  When a path writes one, exploration starts again with that
           variable's content symbolic (what earlier packets left in it),
           until no new variable is written.  All states step together
           until SUBTREES are active; each then grows alone (a subtree),
           in forked worker processes where the machine has several CPUs
           (analyses/forked.py), with the same paths, order and names as
           in one process.

Exploration stops at the first budget exceeded (seconds, paths, memory,
blocks on one path, a loop over the packet's length), reporting what was
found so far as incomplete.  Budgets are checked before every basic block,
so a stop lands within one block of the budget.  Anything the analysis
cannot follow exactly (an errored path, an unmodelled instruction or
write, a key it could not size) also makes the report incomplete, with a
warning naming the cause and the source line.
"""
from __future__ import annotations

import dataclasses
import itertools
import os
import re
import resource
import subprocess
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from analyses.angr_env import angr, bit_vector_solver, claripy, z3
from cle.backends.symbol import SymbolType
from analyses.errors import MaestroError
from analyses.forked import can_fork, default_workers, run_split
from analyses.nf_source import (
    BASE_CFLAGS,
    LIBC_ALLOWED,
    NFSource,
    build_key,
    compile_nf,
    define_flags,
    local_headers,
    private_path,
    resolve_nf,
)
from analyses.memory import GLOBAL_CELL_BASE, MemoryWatch, Region, stored_values
from analyses.procedures import (
    CELL_BASE,
    COUNTER_LIMIT,
    Call,
    MODELLED,
    ContractViolation,
    Event,
    Model,
    build_procedures,
)
from analyses.variables import Variable, read_variables
from analyses.locations import INCLUDE_DIR, RUNTIME_HEADERS, build_root as default_build_root


#: The symbolic packet: bytes named per offset, at a fixed address.
PACKET_ADDRESS = 0x5000_0000
PACKET_BYTES = 1514
#: Bytes of the L4 header, reached through IHL, live in a shadow region.
L4_ADDRESS = 0x5100_0000
L4_BYTES = 64
ETHER_HEADER = 14
#: Stack below nf_process's frame made symbolic (uninitialized) at entry.
STACK_BYTES = 0x4000
#: A path whose one branch has tested the packet length more than this many
#: times in one call is looping over the packet (one path per length, which
#: no budget covers): stopped, with the loop named.
LENGTH_CHECKS = 4
#: Rounds of exploration (each makes newly written variables symbolic).
ROUNDS = 4


class AnalysisError(MaestroError):
    """The analysis could not run or exceeded a budget (the message says which)."""


@dataclass(frozen=True)
class Budgets:
    """Limits of one exploration; exceeding one stops it, marked incomplete."""

    seconds: float = 120.0
    paths: int = 5000
    memory_mb: float = 3072.0
    blocks_per_path: int = 20000


@dataclass(frozen=True)
class Progress:
    """A progress report: stage, paths finished, paths active, elapsed seconds."""

    stage: str
    done: int
    active: int
    elapsed: float
    text: str = ""


@dataclass
class PathResult:
    """What one finished path did, with its claripy expressions still attached.

    devices: input devices the path's conditions allow; output: the return
    value; events: accesses to state in order; calls: the state API calls
    with what they returned; writes: packet byte offsets
    (absolute "pkt" or "l4") whose content changed, with the new value;
    constraints: the path condition; stored: what the path left in each of
    the NF's variables it wrote.
    """

    id: int
    devices: list[int]
    output: claripy.ast.BV
    outputs: list[int]
    events: tuple[Event, ...]
    calls: tuple[Call, ...]
    writes: dict[tuple[str, int], claripy.ast.BV]
    constraints: list[claripy.ast.Bool]
    stored: dict[str, tuple[claripy.ast.BV, ...]] = field(default_factory=dict)
    _solver: object = None
    _components: list | None = None
    _solvers: dict = field(default_factory=dict)

    def __getstate__(self) -> dict:
        """Pickled without its solvers (z3 objects; made again when asked)."""
        return {**self.__dict__, "_solver": None, "_components": None, "_solvers": {}}

    def solver(self) -> claripy.Solver:
        """A claripy solver holding the path condition (made once)."""
        if self._solver is None:
            self._solver = claripy.Solver()
            self._solver.add(self.constraints)
        return self._solver

    def _component_solver(self, variables: frozenset[str]) -> z3.Solver | None:
        """A z3 solver holding the constraints of the path that bear on
        `variables`: those sharing a variable with them, transitively (one
        solver per such component, made once).  None: no constraint does.
        Asking only them keeps a question about a call's flag off the
        checksum and key arithmetic of the rest of the path."""
        if self._components is None:
            self._components = _components(self.constraints)
        parts = [c for c in self._components if c[0] & variables]
        if not parts:
            return None
        names = frozenset().union(*(names for names, _ in parts))
        solver = self._solvers.get(names)
        if solver is None:
            backend = claripy.backends.z3
            solver = self._solvers[names] = bit_vector_solver(backend._context)
            solver.add([backend.convert(c) for _, constraints in parts for c in constraints])
        return solver

    def values(self, expr: claripy.ast.BV, limit: int) -> list[int]:
        """Up to `limit` values `expr` may take on this path, ascending
        (asking only the constraints that bear on its variables)."""
        if not expr.symbolic:
            return [expr.concrete_value]
        backend = claripy.backends.z3
        solver = self._component_solver(frozenset(expr.variables)) or bit_vector_solver(backend._context)
        return sorted(_enumerate(solver, backend.convert(expr), limit)[0])

    def forced(self, expr: claripy.ast.BV, *, own_constraints: bool = False) -> int | None:
        """The one value `expr` has on this path, or None when it may take
        another (or the path has none).  own_constraints: ask only the
        constraints on `expr`'s variables alone (cheap: a field fixed by
        `ipv4.proto == 6` is found without the hash arithmetic that joins
        it to the other fields; a value forced only through other variables
        is missed, never one wrongly claimed, as the path is satisfiable)."""
        if not expr.symbolic:
            return expr.concrete_value
        variables = frozenset(expr.variables)
        if own_constraints:
            own = [c for c in self.constraints if c.variables and c.variables <= variables]
            if not own:
                return None
            solver = self._solvers.get(("own", variables))
            if solver is None:
                backend = claripy.backends.z3
                solver = self._solvers[("own", variables)] = bit_vector_solver(backend._context)
                solver.add([backend.convert(c) for c in own])
        else:
            solver = self._component_solver(variables)
        if solver is None:
            return None  # nothing constrains it
        found, exhausted = _enumerate(solver, claripy.backends.z3.convert(expr), 2)
        return found[0] if len(found) == 1 and exhausted else None


def _enumerate(solver: z3.Solver, term, limit: int) -> tuple[list[int], bool]:
    """Up to `limit` values of `term` under the solver's constraints (each
    excluded in turn, in a scope), and whether no other is left (the last
    check said unsat, not unknown)."""
    found: list[int] = []
    solver.push()
    try:
        while len(found) < limit and (result := solver.check()) == z3.sat:
            value = solver.model().eval(term, model_completion=True)
            found.append(value.as_long())
            solver.add(term != value)
        return found, len(found) < limit and result == z3.unsat
    finally:
        solver.pop()


def _components(constraints) -> list[tuple[frozenset[str], list]]:
    """The constraints grouped by shared variables (connected components)."""
    groups: list[tuple[set[str], list]] = []
    for constraint in constraints:
        names, members = set(constraint.variables), [constraint]
        for group in [g for g in groups if g[0] & names]:
            groups.remove(group)
            names |= group[0]
            members = group[1] + members
        groups.append((names, members))
    return [(frozenset(names), members) for names, members in groups]


@dataclass
class Exploration:
    """Everything the explore stage found, before it is turned into a report."""

    nf: NFSource
    devices: int
    model: Model
    paths: list[PathResult]
    call_sites: dict[int, tuple[str, str]]
    seconds: float
    peak_rss_mb: float
    warnings: list[str] = field(default_factory=list)
    complete: bool = True
    #: the NF's variables with static storage, and those nf_process wrote
    variables: list[Variable] = field(default_factory=list)
    written: set[str] = field(default_factory=set)
    #: addresses of the words of variables that hold state handles
    handle_slots: set[int] = field(default_factory=set)
    #: what it was made from: Analysis.inputs
    inputs: dict[str, Any] = field(default_factory=dict)
    #: processes that explored at once (forked workers: SUBTREES)
    processes: int = 1


ProgressCallback = Callable[[Progress], None]


def build_shared_object(nf: NFSource, *, opt: str, defines: Mapping[str, object] | None,
                        out_root: Path) -> Path:
    """nf.so for angr (checked against the contract first)."""
    flags = [*BASE_CFLAGS, opt, "-fPIC", "-shared", "-fno-stack-protector",
             f"-I{INCLUDE_DIR}", *define_flags(defines)]
    out_dir = out_root / "analysis" / f"{nf.name}-{build_key(nf.path, *local_headers(nf, defines), *RUNTIME_HEADERS, flags)}"
    so = out_dir / f"{nf.name}.so"
    if so.is_file():
        return so
    compile_nf(nf, out_dir, defines=defines, opt=opt)
    partial = private_path(so)
    try:
        subprocess.run(["gcc", *flags, str(nf.path), "-o", str(partial)], check=True,
                       capture_output=True, text=True)
    except subprocess.CalledProcessError as exc:
        raise AnalysisError(f"{nf.path} does not build as a shared object:\n{exc.stderr}") from None
    partial.replace(so)
    return so


def nf_devices(nf: NFSource, defines: Mapping[str, object] | None) -> int:
    """NF_DEVICES as the NF's preprocessor sees it."""
    out = subprocess.run(["gcc", "-E", "-dM", f"-I{INCLUDE_DIR}", *define_flags(defines), str(nf.path)],
                         capture_output=True, text=True, check=True).stdout
    match = re.search(r"^#define NF_DEVICES (\d+)", out, re.M)
    return int(match.group(1)) if match else 2


class _Stop(Exception):
    """Raised from inside a step when a budget is exceeded (not an angr error,
    so it leaves the simulation manager instead of erroring one path)."""


def explore(
    spec: str | Path | NFSource,
    *,
    opt: str = "-O2",
    defines: Mapping[str, object] | None = None,
    budgets: Budgets = Budgets(),
    progress: ProgressCallback | None = None,
    cancel: Callable[[], bool] | None = None,
    build_root: Path | None = None,
    workers: int | None = None,
) -> Exploration:
    """Compile, run nf_init, explore nf_process; see the module doc.
    workers: processes exploring at once (default: $MAESTRO_ANALYSIS_WORKERS,
    else the CPUs, at most 4; see SUBTREES)."""
    workers = default_workers() if workers is None else workers

    started = time.perf_counter()
    nf = spec if isinstance(spec, NFSource) else resolve_nf(spec)

    def report(stage: str, done: int = 0, active: int = 0, text: str = "") -> None:
        if progress:
            progress(Progress(stage, done, active, time.perf_counter() - started, text))

    report("compile", text=str(nf.path))
    so = build_shared_object(nf, opt=opt, defines=defines, out_root=build_root or default_build_root())
    devices = nf_devices(nf, defines)

    report("init")
    project = angr.Project(str(so), auto_load_libs=False)
    _check_imports(project, nf)
    model = Model()
    for name, procedure in build_procedures(model).items():
        project.hook_symbol(name, procedure)
    init_state = _run_init(project, model, nf)
    base = project.loader.main_object.mapped_base
    variables = [dataclasses.replace(v, address=v.address + base)
                 for v in read_variables(so, nf.path) if not v.constant]
    slots = _name_objects(project, model, init_state, variables)
    _probe_key_sizes(project, model, init_state)

    model.phase = "process"
    symbolic: set[str] = set()
    for round_ in range(ROUNDS):
        report("explore", text="" if not round_ else
               f"again, with what earlier packets leave in {', '.join(sorted(symbolic))}")
        watch = MemoryWatch(variables, slots, set(symbolic), _regions(project),
                            lambda address: _site_text(project, address))
        paths, warnings, complete, processes = _explore_paths(
            project, init_state, devices, model, watch, budgets, started, cancel, report, workers)
        if not complete or watch.written <= symbolic:
            break
        symbolic |= watch.written
    else:
        warnings.append(f"stopped: variables written by nf_process kept changing after {ROUNDS} rounds "
                        f"({', '.join(sorted(watch.written))}); the report is incomplete")
        complete = False

    for info, call in model.key_cell_problems():
        model.incomplete.append(
            f"the analysis assumed that the keys of {info.name} live in a vector cell at the index "
            f"{info.name} maps them to (as libVig NFs keep them, and as the expirator needs), but the "
            f"map_put at {_site_text(project, call - 1)} puts a key kept elsewhere")
    call_sites = _call_sites(project, {e.call for p in paths for e in (*p.events, *p.calls)})
    warnings = (list(dict.fromkeys(model.warnings)) + [f"incomplete: {w}" for w in model.incomplete]
                + [f"incomplete: {w}" for w in watch.problems] + warnings)
    if watch.problems or model.incomplete:
        complete = False
    if not paths:
        warnings.append("no path of nf_process finished: nothing was analysed")
        complete = False
    seconds = time.perf_counter() - started
    report("done", len(paths), 0, f"{len(paths)} paths in {seconds:.1f} s")
    inputs = {"source": build_key(nf.path, *local_headers(nf, defines)), "opt": opt,
              "defines": {str(k): str(v) for k, v in sorted((defines or {}).items())}}
    return Exploration(nf, devices, model, paths, call_sites, seconds, _peak_rss_mb(),
                       warnings, complete, variables, watch.written, slots, inputs, processes)


#: The exploration steps all states together until this many are active,
#: then explores each of them (a subtree) on its own: in forked workers on
#: a multi-core machine (analyses/forked.py), else one after the other.
#: Either way the paths come out in the same order with the same names.
SUBTREES = 12
#: Each subtree numbers its fresh symbols from its own base, this far apart
#: at most (the model's counter, which also places vector cells: all bases
#: stay below COUNTER_LIMIT, so the span shrinks when there are many subtrees).
SUBTREE_SPAN = 20_000


@dataclass
class _Walked:
    """What stepping some states found: finished paths (not numbered yet),
    warnings in the order they arose, the budget stop if one, the states
    still active (when stepping stopped at a number of them), and what the
    steps added to the model and the memory watch."""

    paths: list[PathResult]
    warnings: list[str]
    stop: str | None = None
    active: list = field(default_factory=list)
    counter: int = 0
    model_warnings: list[str] = field(default_factory=list)
    key_cells_used: set[int] = field(default_factory=set)
    written: set[str] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)


def _explore_paths(project: angr.Project, init_state: angr.SimState, devices: int, model: Model,
                   watch: MemoryWatch, budgets: Budgets, started: float,
                   cancel: Callable[[], bool] | None, report, workers: int
                   ) -> tuple[list[PathResult], list[str], bool, int]:
    """One exploration of nf_process: (paths, warnings, complete, the
    processes that explored)."""
    state, device = _process_state(project, init_state, devices, watch)
    limits = {"cancel": cancel, "paths": 0}

    def check(_state=None) -> None:
        if limits["cancel"] and limits["cancel"]():
            raise _Stop("cancelled")
        if time.perf_counter() - started > budgets.seconds:
            raise _Stop(f"time budget of {budgets.seconds:g} s exceeded")
        if _current_rss_mb() > budgets.memory_mb:
            raise _Stop(f"memory budget of {budgets.memory_mb:g} MB exceeded")

    def walk(states: list, until: int | None, shown: int) -> _Walked:
        simgr = project.factory.simulation_manager(states)
        found = _Walked([], [])
        try:
            while simgr.active and (until is None or len(simgr.active) < until):
                check()
                if exceeded := _exceeded(budgets, limits["paths"] + len(found.paths), simgr):
                    raise _Stop(exceeded)
                simgr.step()
                found.paths += [_summarise(0, finished, device, devices) for finished in simgr.deadended]
                simgr.drop(stash="deadended")
                found.warnings += [f"incomplete: {_describe_error(project, e)}" for e in simgr.errored]
                simgr.drop(stash="errored")
                if simgr.unconstrained:
                    found.warnings.append(f"incomplete: {len(simgr.unconstrained)} path(s) jumped to an "
                                          "address the analysis cannot determine")
                    simgr.drop(stash="unconstrained")
                report("explore", shown + len(found.paths), len(simgr.active))
        except _Stop as stop:
            found.stop = str(stop)
        found.active = list(simgr.active)
        return found

    def subtree(i: int) -> _Walked:
        """Subtree i alone, its symbols numbered from its own base; what it
        adds to the model and the watch is taken back out into the result,
        so the merge below adds it in subtree order wherever it ran."""
        model.counter = counter + (i + 1) * span
        claripy.ast.base.var_counter = itertools.count(variables + (i + 1) * 10 * SUBTREE_SPAN)
        before = (len(model.warnings), set(model.key_cells_used), set(watch.written), len(watch.problems))
        found = walk([trunk.active[i]], None, len(trunk.paths))
        found.counter = model.counter
        found.model_warnings = model.warnings[before[0]:]
        found.key_cells_used = model.key_cells_used - before[1]
        found.written = watch.written - before[2]
        found.problems = watch.problems[before[3]:]
        del model.warnings[before[0]:], watch.problems[before[3]:]
        model.key_cells_used.intersection_update(before[1])
        watch.written.intersection_update(before[2])
        found.active = []
        return found

    def quiet() -> None:  # a forked worker reports nothing and cannot be cancelled but by a kill
        nonlocal report
        report, limits["cancel"] = (lambda *args, **kwargs: None), None

    state.inspect.b("irsb", when=angr.BP_BEFORE, action=check)
    state.inspect.b("exit", when=angr.BP_BEFORE, action=_count_length_branch)
    trunk = walk([state], SUBTREES, 0)
    limits["paths"] = len(trunk.paths)
    counter, variables = model.counter, next(claripy.ast.base.var_counter)
    span = min(SUBTREE_SPAN, (COUNTER_LIMIT - counter) // (len(trunk.active) + 1))
    parts = run_split(len(trunk.active), subtree, workers, in_child=quiet) if not trunk.stop else []
    processes = min(workers, len(parts)) if parts and can_fork() else 1
    claripy.ast.base.var_counter = itertools.count(variables + (len(parts) + 1) * 10 * SUBTREE_SPAN)
    paths, warnings, stops = list(trunk.paths), list(trunk.warnings), [trunk.stop] if trunk.stop else []
    for part in parts:
        paths += part.paths
        warnings += part.warnings
        stops += [part.stop] if part.stop else []
        model.counter = max(model.counter, part.counter)
        model.warnings += part.model_warnings
        model.key_cells_used |= part.key_cells_used
        watch.written |= part.written
        watch.problems += part.problems
    for number, path in enumerate(paths):
        path.id = number
        if uninitialized := _uninitialized(path):
            warnings.append(f"path {path.id} uses uninitialized memory "
                            f"({', '.join(uninitialized)}): the NF reads something it never wrote")
    if len(paths) > budgets.paths and not stops:
        stops.append(f"path budget of {budgets.paths} exceeded")
    if stops:
        warnings.append(f"stopped: {stops[0]}; the report holds the {len(paths)} paths finished before, "
                        "and is incomplete")
        return paths, warnings, False, processes
    return paths, warnings, not any(w.startswith("incomplete") for w in warnings), processes


def _regions(project: angr.Project) -> list[Region]:
    """Where nf_process may write besides the stack and the NF's variables."""
    return [
        Region(PACKET_ADDRESS, PACKET_ADDRESS + PACKET_BYTES, "packet"),
        Region(L4_ADDRESS, L4_ADDRESS + L4_BYTES, "L4 header"),
        Region(CELL_BASE, GLOBAL_CELL_BASE, "vector cells"),
        Region(GLOBAL_CELL_BASE, GLOBAL_CELL_BASE + 0x10_0000_0000, "variable cells"),
    ]


def _check_imports(project: angr.Project, nf: NFSource) -> None:
    """Every external the NF uses must be modelled (the contract check names
    the call site; this guards NFs compiled by other means)."""
    allowed = set(MODELLED) | LIBC_ALLOWED | {"__cxa_finalize", "__gmon_start__",
                                              "_ITM_deregisterTMCloneTable",
                                              "_ITM_registerTMCloneTable"}
    unmodelled = sorted(set(project.loader.main_object.imports) - allowed)
    if unmodelled:
        raise AnalysisError(f"{nf.path}: calls {', '.join(unmodelled)}, which the analysis does "
                            "not model (outside the NF contract)")


def _run_init(project: angr.Project, model: Model, nf: NFSource) -> angr.SimState:
    """Run nf_init to its end; the one path where it returns true."""
    symbol = project.loader.find_symbol("nf_init")
    state = project.factory.call_state(symbol.rebased_addr, add_options=_OPTIONS)
    simgr = project.factory.simulation_manager(state)
    simgr.run(n=200000)
    if simgr.errored:
        raise AnalysisError(f"{nf.path}: nf_init: {_describe_error(project, simgr.errored[0])}")
    ends = [s for s in simgr.deadended if not s.solver.eval(s.regs.rax[7:0] == 0)]
    if not ends:
        raise AnalysisError(f"{nf.path}: nf_init never returns true")
    if len(ends) > 1:
        model.warnings.append(f"nf_init has {len(ends)} successful paths; the first is used")
    return ends[0]


def _name_objects(project: angr.Project, model: Model, state: angr.SimState,
                  variables: list[Variable]) -> set[int]:
    """Name each object after the variable (or member, "state.flows") that
    holds its handle; returns the addresses of those handle words."""
    by_handle = model.objects
    slots: set[int] = set()
    holders = [(v.address, v.size, v.field_at) for v in variables]
    known = {v.address for v in variables}
    for symbol in project.loader.main_object.symbols:
        if symbol.type == SymbolType.TYPE_OBJECT and symbol.rebased_addr not in known:
            holders.append((symbol.rebased_addr, symbol.size,
                            lambda offset, s=symbol: s.name if s.size == 8 else f"{s.name}[{offset // 8}]"))
    for address, size, name_at in holders:
        for offset in range(0, size - 7, 8):
            word = state.memory.load(address + offset, 8, endness="Iend_LE", inspect=False)
            if word.symbolic:
                continue
            info = by_handle.get(state.solver.eval(word))
            if info is not None:
                slots.add(address + offset)
                if not info.name:
                    info.name = name_at(offset)
    for info in by_handle.values():
        if not info.name:
            info.name = f"{info.kind}#{info.order}"
            model.warnings.append(f"the {info.kind} allocated {info.order + 1}th in nf_init is not "
                                  "kept in a file-scope variable")
    return slots


def _probe_key_sizes(project: angr.Project, model: Model, init: angr.SimState) -> None:
    """Key size of each map/sketch: the bytes its key-hash callback reads.
    A probe that does not run to its end leaves the size unknown, and the
    analysis incomplete: a key sized too short relates too few fields."""
    probe = 0x6000_0000
    for info in model.objects.values():
        if info.khash is None:
            continue
        state = project.factory.call_state(info.khash, probe, base_state=init, add_options=_OPTIONS)
        state.memory.store(probe, claripy.BVS("keyprobe", 8 * 256))
        reads: list[int] = []

        def on_read(s: angr.SimState, reads=reads) -> None:
            address = s.inspect.mem_read_address
            if not address.symbolic:
                a = s.solver.eval(address)
                if probe <= a < probe + 256:
                    reads.append(a - probe + s.solver.eval(s.inspect.mem_read_length))

        state.inspect.b("mem_read", when=angr.BP_AFTER, action=on_read)
        simgr = project.factory.simulation_manager(state)
        simgr.run(n=10000)
        if simgr.errored or simgr.active or not simgr.deadended:
            why = (_describe_error(project, simgr.errored[0]) if simgr.errored
                   else "it did not return within 10,000 blocks")
            symbol = project.loader.find_symbol(info.khash)
            model.incomplete.append(f"could not size the key of {info.name}: its hash function "
                                    f"{symbol.name if symbol else hex(info.khash)}() did not run to its "
                                    f"end ({why})")
            info.key_size = max(reads, default=0) or None
            continue
        info.key_size = max(reads, default=0) or None
        if info.key_size is None:
            model.warnings.append(f"could not size the key of {info.name}: its hash reads no key bytes")


# Uninitialized memory reads as fresh `mem_...` symbols, so they can be
# reported; registers (callee-saved values of the caller) read as zero.
_OPTIONS = {
    angr.options.ZERO_FILL_UNCONSTRAINED_REGISTERS,
    angr.options.SYMBOL_FILL_UNCONSTRAINED_MEMORY,
}
#: What the exploration assumes about its inputs (reported with the stats).
ASSUMPTIONS = (
    f"packet_length <= {PACKET_BYTES} (a maximal untagged Ethernet frame)",
    "device < NF_DEVICES",
    "L4 bytes reached through IHL are named relative to the L4 header (l4_<c>)",
)


def _process_state(project: angr.Project, init: angr.SimState, devices: int, watch: MemoryWatch):
    """The entry state of nf_process with the symbolic inputs in place and
    its memory accesses watched."""
    device = claripy.BVS("device", 16)
    length = claripy.BVS("length", 16)
    now = claripy.BVS("time", 64)
    symbol = project.loader.find_symbol("nf_process")
    state = project.factory.call_state(
        symbol.rebased_addr, device.zero_extend(48), PACKET_ADDRESS, length.zero_extend(48), now,
        base_state=init, add_options=_OPTIONS,
    )
    for offset in range(PACKET_BYTES):
        state.memory.store(PACKET_ADDRESS + offset, claripy.BVS(f"pkt_{offset}", 8))
    for offset in range(L4_BYTES):
        state.memory.store(L4_ADDRESS + offset, claripy.BVS(f"l4_{offset}", 8))
    # nf_init left values on the stack; a local read before it is written
    # must show up as uninitialized, not as nf_init's leftovers.
    rsp = state.solver.eval(state.regs.rsp)
    state.memory.store(rsp - STACK_BYTES, claripy.BVS("mem_stack", 8 * STACK_BYTES))
    state.solver.add(device < devices, length <= PACKET_BYTES)
    state.globals["events"] = ()
    watch.fill_symbolic(state)
    ihl = state.memory.load(PACKET_ADDRESS + ETHER_HEADER, 1, inspect=False)
    watch.l4_start = PACKET_ADDRESS + ETHER_HEADER + (ihl & 0x0F).zero_extend(56) * 4
    watch.l4_address, watch.l4_bytes = L4_ADDRESS, L4_BYTES
    watch.install(state)
    return state, device


def _exceeded(budgets: Budgets, paths: int, simgr) -> str | None:
    """The path and per-path budgets (time and memory are checked per block)."""
    if paths >= budgets.paths:
        return f"path budget of {budgets.paths} exceeded"
    for state in simgr.active:
        if state.history.depth > budgets.blocks_per_path:
            return (f"block budget of {budgets.blocks_per_path} on one path exceeded in "
                    f"{_hottest_block(state)} (a loop the analysis cannot bound)")
        if _length_checks(state) > LENGTH_CHECKS:
            return (f"nf_process loops over the packet's length (or its IPv4/UDP length field) in "
                    f"{_hottest_block(state)}: one path "
                    "per packet length, which no budget can cover. A checksum over the payload "
                    "belongs in nf_checksum() (nf.h), which the analysis summarises; other loops "
                    "need a constant bound")
    return None


def _hottest_block(state: angr.SimState) -> str:
    """"f() at file.c:12" of the block a path visited most lately (its loop)."""
    loop = Counter(list(state.history.bbl_addrs)[-200:]).most_common(1)[0][0]
    file_line, function = _call_sites(state.project, {loop + 1}).get(loop + 1, ("?", "?"))
    return f"{function}() at {file_line}"


#: Symbols that stand for a length of the packet: the frame's, the IPv4
#: total length, the UDP length.  A loop bounded by one walks the payload.
_LENGTHS = ("length_", "pkt_16_", "pkt_17_", "l4_4_", "l4_5_")


def _count_length_branch(state: angr.SimState) -> None:
    """Before each branch: when its condition tests a packet length, count
    it for the branch instruction, in this call of its function (a helper
    called from several places tests the length once per call; a loop
    bounded by the length tests it once per turn)."""
    guard = state.inspect.exit_guard
    if guard is None or not guard.symbolic or not any(v.startswith(_LENGTHS) for v in guard.variables):
        return
    counts = dict(state.globals.get("length_checks", {}))
    branch = (state.scratch.ins_addr or state.addr or 0, state.callstack.ret_addr)
    counts[branch] = counts.get(branch, 0) + 1
    state.globals["length_checks"] = counts


def _length_checks(state: angr.SimState) -> int:
    """The most times one branch of the path tested the packet length."""
    return max(state.globals.get("length_checks", {}).values(), default=0)


def _summarise(index: int, state: angr.SimState, device, devices: int) -> PathResult:
    """Keep what a finished path did; the state itself is dropped."""
    output = state.regs.rax[31:0]
    writes = {}
    for region, base, size in (("pkt", PACKET_ADDRESS, 128), ("l4", L4_ADDRESS, L4_BYTES)):
        whole = state.memory.load(base, size, inspect=False, disable_actions=True)
        for offset, value in enumerate(whole.chop(8)):
            if not (value.op == "BVS" and value.args[0].startswith(f"{region}_{offset}_")):
                writes[(region, offset)] = value
    path = PathResult(
        id=index,
        devices=[],
        output=output,
        outputs=[],
        events=state.globals.get("events", ()),
        calls=state.globals.get("calls", ()),
        writes=writes,
        constraints=list(state.solver.constraints),
        stored=stored_values(state),
    )
    path.devices = path.values(device, devices + 1)
    path.outputs = [o - (1 << 32) if o >= 1 << 31 else o for o in path.values(output, 4)]
    return path


def _uninitialized(path: PathResult) -> list[str]:
    """Symbols angr made up for memory the NF read before writing it."""
    names = set(path.output.variables)
    for constraint in path.constraints:
        names |= constraint.variables
    for event in path.events:
        for expr in (event.key, event.stored):
            if expr is not None:
                names |= expr.variables
    return sorted(n for n in names if n.startswith("mem_"))[:3]


def _describe_error(project: angr.Project, errored) -> str:
    """"error at file.c:12 in f(): what went wrong" for an errored path."""
    error = errored.error
    address = error.call - 1 if isinstance(error, ContractViolation) else errored.state.addr
    return f"error at {_site_text(project, address)}: {error}"


def _site_text(project: angr.Project, address: int) -> str:
    """"file.c:12 in f()" of an instruction address."""
    file_line, function = _call_sites(project, {address + 1}).get(address + 1, ("?", "?"))
    return f"{file_line} in {function}()"


def _call_sites(project: angr.Project, addresses: set[int]) -> dict[int, tuple[str, str]]:
    """file:line and function of each return address (the call before it)."""
    addresses = sorted(a for a in addresses if a)
    if not addresses:
        return {}
    base = project.loader.main_object.mapped_base
    out = subprocess.run(["addr2line", "-f", "-e", project.filename,
                          *(hex(a - 1 - base) for a in addresses)],
                         capture_output=True, text=True).stdout.splitlines()
    sites = {}
    for address, function, location in zip(addresses, out[0::2], out[1::2]):
        file, _, line = location.rpartition(":")
        sites[address] = (f"{Path(file).name}:{line.split()[0]}", function)
    return sites


def _current_rss_mb() -> float:
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return 0.0


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
