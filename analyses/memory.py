"""What nf_process's memory accesses touch, watched during exploration.

Every load and store of a path passes through `MemoryWatch.on_access`
(an angr breakpoint before the access), which:

- redirects packet bytes reached through IHL to the L4 shadow region
  (`l4_<c>` symbols, so IPv4 options do not change field names);
- records each access to one of the NF's variables with static storage
  (analyses/variables.py) as an `Event` on a `global` object: key = the
  element index for arrays (an expression over packet fields when the
  index is symbolic), the byte offset otherwise.  Words that hold state
  API handles are not state and are not recorded.  Accesses through a
  symbolic index go to a per-path cell per index expression, whose content
  is a fresh symbol (`<variable>.cell_<n>`): any value the element may
  hold, so every path is explored;
- notes every write it cannot place (a symbolic address outside the
  packet and the variables, a concrete one outside the packet, the stack,
  state cells and the variables): the analysis is then incomplete.

Variables the exploration treats as written (`symbolic`) start each path
with fresh symbols instead of the value nf_init left, so that paths that
depend on what earlier packets stored are explored too.
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Callable

from analyses.angr_env import angr, claripy
from analyses.procedures import CELL_BASE, CELL_END, Event, condition_variables
from analyses.variables import Variable

#: Cells of variables reached through a symbolic index.
GLOBAL_CELL_BASE = CELL_END
GLOBAL_CELL_STRIDE = 0x1_0000
#: Addresses at or above this are angr's stack.
STACK_FLOOR = 0x7FF0_0000_0000


@dataclass(frozen=True)
class Region:
    """A range of addresses [start, end) and what it is."""

    start: int
    end: int
    what: str


@dataclass
class MemoryWatch:
    """Classifies the memory accesses of nf_process (see the module doc).

    variables: the NF's variables, rebased; handle_slots: addresses of the
    8-byte words holding state handles; symbolic: names of the variables
    whose content starts symbolic; regions: other places a write may go;
    describe: file:line of an instruction address."""

    variables: list[Variable]
    handle_slots: set[int]
    symbolic: set[str]
    regions: list[Region]
    describe: Callable[[int], str]
    l4_start: object = None
    l4_address: int = 0
    l4_bytes: int = 0
    #: variables some path wrote (drives the next exploration round)
    written: set[str] = field(default_factory=set)
    #: causes of incompleteness, each once
    problems: list[str] = field(default_factory=list)
    counter: int = 0

    def __post_init__(self) -> None:
        self.variables = sorted(self.variables, key=lambda v: v.address)
        self._starts = [v.address for v in self.variables]

    # ---- set-up ----

    def install(self, state: angr.SimState) -> None:
        """Breakpoints on every load and store of `state` and its successors."""
        state.inspect.b("mem_read", when=angr.BP_BEFORE, action=lambda s: self.on_access(s, "read"))
        state.inspect.b("mem_write", when=angr.BP_BEFORE, action=lambda s: self.on_access(s, "write"))

    def fill_symbolic(self, state: angr.SimState) -> None:
        """Give every symbolic variable fresh content (handle words kept)."""
        for variable in self.variables:
            if variable.name not in self.symbolic:
                continue
            start = variable.address
            for chunk_start, chunk_end in _gaps(start, start + variable.size, self.handle_slots):
                size = chunk_end - chunk_start
                state.memory.store(chunk_start, self.fresh(variable, size), inspect=False)

    def fresh(self, variable: Variable, size: int) -> claripy.ast.BV:
        """A new symbol for bytes of `variable` the path has not written."""
        self.counter += 1
        return claripy.BVS(f"{variable.name}.cell_{self.counter}", 8 * size)

    # ---- the breakpoint ----

    def on_access(self, state: angr.SimState, kind: str) -> None:
        address = getattr(state.inspect, f"mem_{kind}_address")
        if not isinstance(address, claripy.ast.BV):
            return
        size = self._length(state, kind)
        if address.symbolic:
            if self._redirect_l4(state, kind, address):
                return
            self._symbolic_access(state, kind, address, size)
            return
        value = address.concrete_value
        variable = self._variable_at(value)
        if variable is not None:
            offset = value - variable.address
            if not all(a in self.handle_slots for a in _words(value, size)):
                key = (claripy.BVV(offset // variable.elem_size, 32) if variable.count > 1
                       else claripy.BVV(offset, 32))
                self._record(state, variable, kind, key, (value, size))
            return
        if kind == "write" and not self._known(value):
            self._problem(state, f"a write to {value:#x}, outside the packet, the stack and the NF's "
                                 "variables")

    def _length(self, state: angr.SimState, kind: str) -> int:
        length = getattr(state.inspect, f"mem_{kind}_length")
        if length is None and kind == "write":
            expr = state.inspect.mem_write_expr
            return expr.size() // 8 if expr is not None else 1
        if isinstance(length, claripy.ast.BV):
            return length.concrete_value if not length.symbolic else 1
        return int(length or 1)

    def _redirect_l4(self, state: angr.SimState, kind: str, address) -> bool:
        if self.l4_start is None:
            return False
        offsets = state.solver.eval_upto(address - self.l4_start, 2)
        if len(offsets) == 1 and offsets[0] < self.l4_bytes:
            setattr(state.inspect, f"mem_{kind}_address", claripy.BVV(self.l4_address + offsets[0], 64))
            return True
        return False

    def _symbolic_access(self, state: angr.SimState, kind: str, address, size: int) -> None:
        sample = state.solver.eval(address)
        variable = self._variable_at(sample)
        if variable is None:
            if kind == "write":
                self._problem(state, "a write through a pointer the analysis cannot resolve (it "
                                     "would pick one address of many)")
            return
        low, high = variable.address, variable.address + variable.size
        if state.solver.satisfiable(extra_constraints=[claripy.Or(address < low, address + size > high)]):
            self._problem(state, f"an index that may fall outside {variable.name} "
                                 f"({variable.count} elements of {variable.elem_size} bytes)")
            state.solver.add(address >= low, address + size <= high)
        stride = variable.elem_size
        index, within = element_index(address - low, stride)
        if within is None:
            options = state.solver.eval_upto((address - low) % stride, 2)
            within = options[0] if len(options) == 1 else None
        if within is None:
            # an array inside the element (a struct's `rx[device]`): cells of
            # the access's size, one per offset expression
            stride = size
            index, within = element_index(address - low, stride)
            if within is None:
                self._problem(state, f"an access to {variable.name} at an offset the analysis cannot "
                                     "split into an element and a position in it")
                return
        cells = dict(state.globals.get("global_cells", {}))
        key = (variable.name, stride, hash(index))
        if key not in cells:
            base = GLOBAL_CELL_BASE + GLOBAL_CELL_STRIDE * len(cells)
            state.memory.store(base, self.fresh(variable, stride), inspect=False)
            cells[key] = base
            state.globals["global_cells"] = cells
        cell = cells[key]
        setattr(state.inspect, f"mem_{kind}_address", claripy.BVV(cell + within, 64))
        self._record(state, variable, kind, index, (cell + within, size))

    # ---- bookkeeping ----

    def _record(self, state: angr.SimState, variable: Variable, kind: str, key, written) -> None:
        if kind == "write":
            self.written.add(variable.name)
            writes = dict(state.globals.get("global_writes", {}))
            writes[written] = variable.name
            state.globals["global_writes"] = writes
        call = (state.scratch.ins_addr or state.addr or 0) + 1
        event = Event(variable.name, kind, key, call=call, conditions=condition_variables(state))
        state.globals["events"] = state.globals.get("events", ()) + (event,)

    def _variable_at(self, address: int) -> Variable | None:
        i = bisect.bisect_right(self._starts, address) - 1
        if i >= 0:
            variable = self.variables[i]
            if address < variable.address + variable.size:
                return variable
        return None

    def _known(self, address: int) -> bool:
        return address >= STACK_FLOOR or any(r.start <= address < r.end for r in self.regions)

    def _problem(self, state: angr.SimState, what: str) -> None:
        where = self.describe(state.scratch.ins_addr or state.addr or 0)
        text = f"{what} at {where}"
        if text not in self.problems:
            self.problems.append(text)


def stored_values(state: angr.SimState) -> dict[str, tuple[claripy.ast.BV, ...]]:
    """What a finished path left in the variables it wrote, per variable."""
    out: dict[str, list] = {}
    for (address, size), name in state.globals.get("global_writes", {}).items():
        out.setdefault(name, []).append(
            state.memory.load(address, size, inspect=False, disable_actions=True))
    return {name: tuple(values) for name, values in out.items()}


def element_index(offset: claripy.ast.BV, elem_size: int) -> tuple[claripy.ast.BV, int | None]:
    """(element index, byte within the element) of a byte offset into an
    array: `x * elem_size + c` gives (x + c // elem_size, c % elem_size) with
    zero extensions dropped, so the index names the packet field; anything
    else gives (offset / elem_size, None)."""
    offset = claripy.simplify(offset)
    constant = 0
    rest = offset
    if rest.op == "__add__":
        consts = [a for a in rest.args if not a.symbolic]
        others = [a for a in rest.args if a.symbolic]
        if len(others) == 1:
            constant = sum(c.concrete_value for c in consts)
            rest = others[0]
    scaled = _unscale(rest, elem_size)
    if scaled is None:
        return offset // claripy.BVV(elem_size, offset.size()), None
    index = scaled
    if constant // elem_size:
        index = index + claripy.BVV(constant // elem_size, index.size())
    return _strip_extension(index), constant % elem_size


def _unscale(expr: claripy.ast.BV, elem_size: int) -> claripy.ast.BV | None:
    """x when expr is x * elem_size (as a product, a shift or a concat of zeros)."""
    if elem_size == 1:
        return expr
    if expr.op in ("ZeroExt", "SignExt"):
        inner = _unscale(expr.args[1], elem_size)
        return None if inner is None else inner
    if expr.op == "__mul__" and len(expr.args) == 2:
        consts = [a for a in expr.args if not a.symbolic]
        others = [a for a in expr.args if a.symbolic]
        if len(consts) == 1 and len(others) == 1 and consts[0].concrete_value % elem_size == 0:
            factor = consts[0].concrete_value // elem_size
            return others[0] if factor == 1 else others[0] * factor
    if expr.op == "__lshift__" and not expr.args[1].symbolic:
        factor = 1 << expr.args[1].concrete_value
        if factor % elem_size == 0:
            return expr.args[0] if factor == elem_size else expr.args[0] * (factor // elem_size)
    if expr.op == "Concat" and not expr.args[-1].symbolic and expr.args[-1].concrete_value == 0:
        factor = 1 << expr.args[-1].size()
        if factor % elem_size == 0:
            inner = claripy.Concat(*expr.args[:-1]) if len(expr.args) > 2 else expr.args[0]
            return inner if factor == elem_size else inner * (factor // elem_size)
    return None


def _strip_extension(expr: claripy.ast.BV) -> claripy.ast.BV:
    while expr.op == "ZeroExt":
        expr = expr.args[1]
    if expr.op == "Concat" and not expr.args[0].symbolic and expr.args[0].concrete_value == 0:
        rest = expr.args[1:]
        return _strip_extension(claripy.Concat(*rest) if len(rest) > 1 else rest[0])
    return expr


def _words(address: int, size: int) -> list[int]:
    """The 8-byte-aligned words an access touches."""
    first = address - address % 8
    return list(range(first, address + max(size, 1), 8))


def _gaps(start: int, end: int, slots: set[int]) -> list[tuple[int, int]]:
    """[start, end) without the 8-byte handle words in `slots`."""
    out, cursor = [], start
    for slot in sorted(s for s in slots if start <= s < end):
        if slot > cursor:
            out.append((cursor, slot))
        cursor = max(cursor, slot + 8)
    if cursor < end:
        out.append((cursor, end))
    return out


__all__ = ["MemoryWatch", "Region", "element_index", "stored_values", "CELL_BASE"]
