"""angr SimProcedures for the NF contract's state API.

Each procedure stands for one library call as a summary: nothing of the
library's own code is executed.  During nf_init they allocate objects (a
fake handle per object) and let the NF fill vectors concretely; during
nf_process they record an `Event` (object, operation, key expression, call
site) on the path and return fresh symbols for every result the library
decides (found / not found, allocation success, the index or value, expired
counts), so both outcomes are explored.

Fresh symbols are named `<object>.<what>_<n>` so that analyses/fields.py can
tell a value derived from state ("flow_chain.index") from packet bytes.

The summaries are consistent along a path: a key put into a map is found
there again (with its value) until erased, an erased key is not found, an
index freed from a dchain is not allocated, and so on; expiry forgets what
the path knew of the expired objects.  Allocation arguments are checked as
the state library checks them, so a capacity the library refuses is an
error of the analysis, naming the call, not a failure at run time.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from analyses.angr_env import angr, claripy

#: Where object handles, vector cells and key probes live in the NF's
#: address space (far from the loaded NF and angr's stack and heap).
HANDLE_BASE = 0x7000_0000
INIT_VECTOR_BASE = 0x10_0000_0000
INIT_VECTOR_STRIDE = 0x1000_0000
CELL_BASE = 0x20_0000_0000
CELL_STRIDE = 0x1_0000
#: Where vector cells end (the NF variables' cells follow: memory.py).
CELL_END = 0x30_0000_0000
#: How far the model's counter may go (it places each vector cell).
COUNTER_LIMIT = (CELL_END - CELL_BASE) // CELL_STRIDE - 1

#: Capacities the state library accepts (codegen/runtime/state/*.c).
MAX_CAPACITY = 1 << 30
MAX_SKETCH_CAPACITY = 1 << 28

#: Functions of the state API modelled here (analyses/nf_source.STATE_API).
MODELLED = (
    "map_allocate map_get map_put map_erase map_size vector_allocate "
    "vector_borrow vector_return dchain_allocate dchain_allocate_new_index "
    "dchain_rejuvenate_index dchain_expire_one_index dchain_is_index_allocated "
    "dchain_free_index expire_items_single_map cht_fill_cht "
    "cht_find_preferred_available_backend sketch_allocate sketch_compute_hashes "
    "sketch_refresh sketch_fetch sketch_touch_buckets sketch_expire nf_checksum"
).split()


@dataclass
class ObjectInfo:
    """What nf_init allocated: kind, sizes, callbacks, and (later) its name."""

    handle: int
    kind: str
    capacity: int
    order: int
    elem_size: int | None = None
    key_size: int | None = None
    khash: int | None = None
    name: str = ""


@dataclass(frozen=True)
class Call:
    """One call of the state API (or nf_checksum) on a path, as the runtime
    can observe it: function, object (its name; "" for nf_checksum), return
    address, and what it returned: `ret` (the return value), `out` (the
    value written through its out-pointer: a map value, an index) and, for
    vector_borrow, `cell` (the content of the borrowed cell); `key`: what
    it was called with (a map key, an index, an expiry time, a hash);
    `args`: its other arguments where traffic needs them (the chain of
    alive backends of a consistent-hashing lookup, the map an expiry
    erases from)."""

    function: str
    object: str
    call: int
    ret: Any = None
    out: Any = None
    cell: Any = None
    key: Any = None
    args: tuple = ()


@dataclass(frozen=True)
class Event:
    """One state call on a path: the key is a claripy expression (map key
    bytes, vector/dchain index, sketch key), `stored` the cell content a
    vector_return wrote, `call` the return address of the call."""

    object: str
    op: str
    key: Any = None
    stored: Any = None
    cell: Any = None
    call: int = 0
    conditions: frozenset = frozenset()


class ContractViolation(angr.errors.SimProcedureError):
    """A state call the library would refuse; `call` is its return address."""

    def __init__(self, message: str, call: int):
        super().__init__(message)
        self.call = call


@dataclass
class Model:
    """The objects nf_init allocated and the phase being explored;
    `incomplete` lists what the model could not follow exactly."""

    objects: dict[int, ObjectInfo] = field(default_factory=dict)
    phase: str = "init"
    counter: int = 0
    warnings: list[str] = field(default_factory=list)
    incomplete: list[str] = field(default_factory=list)
    #: map handle -> (vector handle, byte offset): where the map's keys live,
    #: at the index the map maps them to (libVig's layout, which the
    #: expirator relies on); learned from map_put and expire_items_single_map
    key_cells: dict[int, tuple[int, int]] = field(default_factory=dict)
    #: map handle -> a map_put that does not follow that layout (call address)
    key_cell_breaks: dict[int, int] = field(default_factory=dict)
    #: maps whose layout some path relied on
    key_cells_used: set[int] = field(default_factory=set)

    def key_cell_problems(self) -> list[tuple[ObjectInfo, int]]:
        """Maps whose key layout a path relied on but some map_put broke."""
        return [(self.objects[m], self.key_cell_breaks[m])
                for m in sorted(self.key_cells_used & set(self.key_cell_breaks))]

    def new(self, kind: str, capacity: int, **extra) -> ObjectInfo:
        """Register an allocation of nf_init and give it a handle."""
        info = ObjectInfo(HANDLE_BASE + 0x100 * len(self.objects), kind, capacity,
                          len(self.objects), **extra)
        self.objects[info.handle] = info
        return info

    def info(self, state: angr.SimState, handle: claripy.ast.BV) -> ObjectInfo:
        """The object a handle argument refers to."""
        if handle.symbolic:
            raise angr.errors.SimValueError("a state object handle is symbolic")
        address = state.solver.eval(handle)
        if address not in self.objects:
            raise angr.errors.SimValueError(f"{address:#x} is not a state object handle")
        return self.objects[address]

    def fresh(self, owner: ObjectInfo, what: str, bits: int = 32) -> claripy.ast.BV:
        """A new symbol for a result the library decides."""
        self.counter += 1
        return claripy.BVS(f"{owner.name or owner.kind}.{what}_{self.counter}", bits)


#: A map entry the path erased (map_entries value).
_ABSENT = object()


def _events(state: angr.SimState) -> tuple[Event, ...]:
    return state.globals.get("events", ())


def condition_variables(state: angr.SimState) -> frozenset:
    """The symbols the path condition so far depends on."""
    names = set()
    for constraint in state.solver.constraints:
        names |= constraint.variables
    return frozenset(names)


def _bits(value):
    """A call's result as an expression (ints and None as given)."""
    return value[31:0] if isinstance(value, claripy.ast.BV) and value.size() > 32 else value


def _bool(model: Model, state: angr.SimState, owner: ObjectInfo, what: str) -> claripy.ast.BV:
    value = model.fresh(owner, what)
    state.solver.add(claripy.Or(value == 0, value == 1))
    return value


def _index(model: Model, state: angr.SimState, owner: ObjectInfo, what: str, bound: int) -> claripy.ast.BV:
    value = model.fresh(owner, what)
    state.solver.add(claripy.SGE(value, 0), claripy.SLT(value, bound))
    return value


def build_procedures(model: Model) -> dict[str, angr.SimProcedure]:
    """One SimProcedure instance per modelled function, sharing `model`."""

    class StateCall(angr.SimProcedure):
        """Base: argument helpers and event recording."""

        def info(self, handle):
            return model.info(self.state, handle)

        def int_arg(self, value, bits=32) -> int:
            value = value[bits - 1 : 0]
            if value.symbolic:
                raise angr.errors.SimValueError(f"{self.display_name}: a size argument is symbolic")
            return self.state.solver.eval(value)

        def called(self, owner: ObjectInfo | None, ret=None, out=None, cell=None, key=None, args=()) -> None:
            """Note this call and what it returned on the path (Call)."""
            if model.phase != "process":
                return
            call = Call(self.display_name, owner.name if owner else "", self.call_address(),
                        _bits(ret), _bits(out), cell, key, args)
            self.state.globals["calls"] = self.state.globals.get("calls", ()) + (call,)

        def record(self, owner: ObjectInfo, op: str, key=None, **extra) -> None:
            if model.phase != "process":
                return
            call = self.state.solver.eval(self.state.memory.load(self.state.regs.rsp, 8, endness="Iend_LE"))
            event = Event(owner.name, op, key, call=call, conditions=condition_variables(self.state), **extra)
            self.state.globals["events"] = _events(self.state) + (event,)

        def store_int(self, pointer, value, bits=32) -> None:
            self.state.memory.store(pointer, value if isinstance(value, claripy.ast.BV)
                                    else claripy.BVV(value, bits), endness="Iend_LE")

        def load_key(self, owner: ObjectInfo, pointer):
            return self.state.memory.load(pointer, owner.key_size or 1)

        def call_address(self) -> int:
            return self.state.solver.eval(self.state.memory.load(self.state.regs.rsp, 8, endness="Iend_LE"))

        def capacity(self, value, what: str, limit: int = MAX_CAPACITY) -> int:
            """An allocation size the library accepts, else ContractViolation."""
            number = self.int_arg(value)
            if not 0 < number <= limit:
                raise ContractViolation(
                    f"{self.display_name}: {what} {number} is outside 1..{limit} (2^{limit.bit_length() - 1}), "
                    "which the state library refuses (nf_init would fail)", self.call_address())
            return number

        def known(self, table: str) -> dict:
            """What this path knows of map entries or dchain indexes."""
            return self.state.globals.get(table, {})

        def learn(self, table: str, key, value) -> None:
            if model.phase != "process":  # later packets may have changed nf_init's entries
                return
            entries = dict(self.known(table))
            entries[key] = value
            self.state.globals[table] = entries

        def forget(self, table: str, handle: int) -> None:
            self.state.globals[table] = {k: v for k, v in self.known(table).items() if k[0] != handle}

    # ---- allocation (nf_init) ----

    class map_allocate(StateCall):
        def run(self, keq, khash, capacity, map_out):
            khash_addr = self.state.solver.eval(khash)
            info = model.new("map", self.capacity(capacity, "capacity"), khash=khash_addr)
            self.store_int(map_out, info.handle, 64)
            return 1

    class vector_allocate(StateCall):
        def run(self, elem_size, capacity, init_elem, vector_out):
            size = self.int_arg(elem_size)
            if size <= 0 or size >= 1 << 31:
                raise ContractViolation(f"vector_allocate: element size {size} is not positive, "
                                        "which the state library refuses", self.call_address())
            info = model.new("vector", self.capacity(capacity, "capacity"), elem_size=size)
            self.store_int(vector_out, info.handle, 64)
            return 1

    class dchain_allocate(StateCall):
        def run(self, index_range, chain_out):
            info = model.new("dchain", self.capacity(index_range, "index range"))
            self.store_int(chain_out, info.handle, 64)
            return 1

    class sketch_allocate(StateCall):
        def run(self, kh, capacity, threshold, sketch_out):
            info = model.new("sketch", self.capacity(capacity, "capacity", MAX_SKETCH_CAPACITY),
                             khash=self.state.solver.eval(kh))
            self.store_int(sketch_out, info.handle, 64)
            return 1

    class cht_fill_cht(StateCall):
        def run(self, cht, height, backends):
            info = self.info(cht)
            rows, columns = self.int_arg(height), self.int_arg(backends)
            why = ("the backend capacity is 0" if columns == 0 else
                   f"the height {rows} is not a prime larger than the backend capacity {columns}"
                   if rows <= columns or any(rows % d == 0 for d in range(2, int(rows ** 0.5) + 1))
                   else f"its cells are {info.elem_size} bytes, not 4" if info.elem_size != 4
                   else f"{rows} x {columns} cells do not fit its {info.capacity}" if rows * columns > info.capacity
                   else "")
            if why:
                raise ContractViolation(f"cht_fill_cht: {why}, so the state library refuses it "
                                        "(nf_init would fail)", self.call_address())
            info.kind = "cht"
            info.capacity = rows * columns
            return 1

    # ---- maps ----

    class MapCall(StateCall):
        """Base of the map calls: what the path knows of the map's entries."""

        def entry(self, owner: ObjectInfo, key_value):
            """The value the path put for this key, _ABSENT if it erased it,
            None if it knows nothing: the same key expression, or one the
            path condition proves equal to it."""
            entries = self.known("map_entries")
            known = entries.get((owner.handle, hash(key_value)))
            if known is not None:
                return known[1]
            for (handle, _), (other, value) in entries.items():
                if handle == owner.handle and other.size() == key_value.size() and \
                        not self.state.solver.satisfiable(extra_constraints=[other != key_value]):
                    return value
            return None

        def remember(self, owner: ObjectInfo, key_value, value) -> None:
            self.learn("map_entries", (owner.handle, hash(key_value)), (key_value, value))

        def key_layout(self, owner: ObjectInfo, key, value) -> None:
            """Check (and learn) that map_put's key lives in a vector cell at
            the index it is put with (model.key_cells)."""
            where = self.cell_of(self.state.solver.eval(key), value[31:0]) if not key.symbolic else None
            learned = model.key_cells.setdefault(owner.handle, where) if where else None
            if where is None or learned != where:
                model.key_cell_breaks.setdefault(owner.handle, self.call_address())

        def cell_of(self, address: int, value) -> tuple[int, int] | None:
            """(vector handle, offset) when `address` lies in the cell of a
            vector at index `value`."""
            if model.phase != "process":
                for info in model.objects.values():
                    base = INIT_VECTOR_BASE + INIT_VECTOR_STRIDE * info.order
                    if info.kind == "vector" and base <= address < base + info.capacity * info.elem_size:
                        index, offset = divmod(address - base, info.elem_size)
                        if not value.symbolic and value.concrete_value == index:
                            return info.handle, offset
                return None
            for (handle, _), (cell, _, index) in self.state.globals.get("cells", {}).items():
                elem = model.objects[handle].elem_size
                if cell <= address < cell + elem and hash(index) == hash(value):
                    return handle, address - cell
            return None

    class map_get(MapCall):
        def run(self, map_, key, value_out):
            owner = self.info(map_)
            key_value = self.load_key(owner, key)
            self.record(owner, "read", key_value)
            entry = self.entry(owner, key_value)
            if entry is not None:  # put or erased earlier on this path
                if entry is not _ABSENT:
                    self.store_int(value_out, entry)
                found = claripy.BVV(0 if entry is _ABSENT else 1, 32)
                self.called(owner, found, None if entry is _ABSENT else entry, key=key_value)
                return found
            found = _bool(model, self.state, owner, "found")
            value = _index(model, self.state, owner, "value", owner.capacity)
            self.store_int(value_out, value)
            self.learn("found_keys", (owner.handle, hash(value)), key_value)
            self.called(owner, found, value, key=key_value)
            return found

    class map_put(MapCall):
        def run(self, map_, key, value):
            owner = self.info(map_)
            key_value = self.load_key(owner, key)
            self.record(owner, "write", key_value, stored=value[31:0])
            self.key_layout(owner, key, value)
            if self.entry(owner, key_value) in (None, _ABSENT):
                self.remember(owner, key_value, value[31:0])
            self.called(owner, key=key_value)

    class map_erase(MapCall):
        def run(self, map_, key, trash):
            owner = self.info(map_)
            key_value = self.load_key(owner, key)
            self.record(owner, "destroy", key_value)
            self.remember(owner, key_value, _ABSENT)
            self.called(owner, key=key_value)

    class map_size(StateCall):
        def run(self, map_):
            owner = self.info(map_)
            self.record(owner, "read")
            size = _index(model, self.state, owner, "size", owner.capacity + 1)
            self.called(owner, size)
            return size

    # ---- vectors ----

    class vector_borrow(StateCall):
        def run(self, vector, index, val_out):
            owner = self.info(vector)
            index = index[31:0]
            if model.phase != "process":
                if index.symbolic:
                    raise angr.errors.SimValueError("vector_borrow in nf_init with a symbolic index")
                base = INIT_VECTOR_BASE + INIT_VECTOR_STRIDE * owner.order
                self.store_int(val_out, base + self.state.solver.eval(index) * owner.elem_size, 64)
                return
            cells = dict(self.state.globals.get("cells", {}))
            key = (owner.handle, hash(index))
            if key not in cells:
                if model.counter + 1 >= COUNTER_LIMIT:
                    raise angr.errors.SimValueError("more vector cells on one path than the analysis places")
                address = CELL_BASE + CELL_STRIDE * (model.counter + 1)
                content = model.fresh(owner, "cell", 8 * owner.elem_size)
                self.state.memory.store(address, content)
                cells[key] = (address, content, index)
                self.state.globals["cells"] = cells
                self.keys_in(owner, address, index)
            address, content, _ = cells[key]
            self.record(owner, "read", index, cell=content)
            self.store_int(val_out, address, 64)
            self.called(owner, cell=content, key=index)

        def keys_in(self, owner: ObjectInfo, address: int, index) -> None:
            """A cell at an index a map lookup returned holds the looked-up
            key, where that map keeps its keys (model.key_cells)."""
            found = self.known("found_keys")
            for handle, (vector, offset) in model.key_cells.items():
                key_value = found.get((handle, hash(index)))
                if vector == owner.handle and key_value is not None:
                    stored = self.state.memory.load(address + offset, key_value.size() // 8, inspect=False)
                    self.state.solver.add(stored == key_value)
                    model.key_cells_used.add(handle)

    class vector_return(StateCall):
        def run(self, vector, index, value):
            owner = self.info(vector)
            if model.phase != "process":
                return
            cell = self.state.globals.get("cells", {}).get((owner.handle, hash(index[31:0])))
            if cell is None:
                model.warnings.append(f"vector_return of {owner.name} without a matching borrow")
                return
            address, content, _ = cell
            now = self.state.memory.load(address, owner.elem_size)
            if hash(now) != hash(content):
                self.record(owner, "write", index[31:0], stored=now, cell=content)
            self.called(owner)

    # ---- double chains ----

    class ChainCall(StateCall):
        """Base of the dchain calls that consult what the path knows."""

        def allocated(self, owner: ObjectInfo, index):
            """What the path knows of `index`: 1, 0 or None (unknown)."""
            return self.known("dchain_indexes").get((owner.handle, hash(index[31:0])))

    class dchain_allocate_new_index(StateCall):
        def run(self, chain, index_out, time):
            owner = self.info(chain)
            ok = _bool(model, self.state, owner, "found")
            index = _index(model, self.state, owner, "index", owner.capacity)
            self.record(owner, "create", index)
            self.store_int(index_out, index)
            self.learn("dchain_indexes", (owner.handle, hash(index)), ok)
            self.called(owner, ok, index, key=time[63:0])
            return ok

    class dchain_rejuvenate_index(ChainCall):
        def run(self, chain, index, time):
            owner = self.info(chain)
            self.record(owner, "update", index[31:0])
            known = self.allocated(owner, index)
            ret = known if known is not None else _bool(model, self.state, owner, "ret")
            self.called(owner, ret, key=index[31:0])
            return ret

    class dchain_expire_one_index(StateCall):
        def run(self, chain, index_out, time):
            owner = self.info(chain)
            self.record(owner, "expire")
            self.forget("dchain_indexes", owner.handle)
            expired = _index(model, self.state, owner, "expired", owner.capacity)
            self.store_int(index_out, expired)
            ret = _bool(model, self.state, owner, "ret")
            self.called(owner, ret, expired, key=time[63:0])
            return ret

    class dchain_is_index_allocated(ChainCall):
        def run(self, chain, index):
            owner = self.info(chain)
            self.record(owner, "verify", index[31:0])
            known = self.allocated(owner, index)
            found = known if known is not None else _bool(model, self.state, owner, "found")
            self.called(owner, found, key=index[31:0])
            return found

    class dchain_free_index(ChainCall):
        def run(self, chain, index):
            owner = self.info(chain)
            self.record(owner, "destroy", index[31:0])
            known = self.allocated(owner, index)
            self.learn("dchain_indexes", (owner.handle, hash(index[31:0])), claripy.BVV(0, 32))
            ret = known if known is not None else _bool(model, self.state, owner, "ret")
            self.called(owner, ret, key=index[31:0])
            return ret

    class expire_items_single_map(StateCall):
        def run(self, chain, vector, map_, time):
            for handle in (chain, vector, map_):
                self.record(self.info(handle), "expire")
            # the expirator erases the key stored at the start of the cell
            layout = (self.info(vector).handle, 0)
            if model.key_cells.setdefault(self.info(map_).handle, layout) != layout:
                model.key_cell_breaks.setdefault(self.info(map_).handle, self.call_address())
            self.forget("dchain_indexes", self.info(chain).handle)
            self.forget("map_entries", self.info(map_).handle)
            owner = self.info(chain)
            count = _index(model, self.state, owner, "ret", owner.capacity + 1)
            self.called(owner, count, key=time[63:0], args=(self.info(map_).name,))
            return count

    # ---- consistent hashing ----

    class cht_find_preferred_available_backend(StateCall):
        def run(self, hash_, cht, active, height, backends, chosen_out):
            table, chain = self.info(cht), self.info(active)
            self.record(table, "read", hash_)
            self.record(chain, "verify")
            found = _bool(model, self.state, chain, "found")
            chosen = _index(model, self.state, chain, "chosen", self.int_arg(backends))
            self.store_int(chosen_out, chosen)
            self.called(table, found, chosen, key=hash_, args=(chain.name,))
            return found

    # ---- sketches ----

    class sketch_compute_hashes(StateCall):
        def run(self, sketch, key):
            owner = self.info(sketch)
            keys = dict(self.state.globals.get("sketch_keys", {}))
            keys[owner.handle] = self.load_key(owner, key)
            self.state.globals["sketch_keys"] = keys
            self.called(owner, key=keys[owner.handle])

        def current(self, owner):
            return self.state.globals.get("sketch_keys", {}).get(owner.handle)

    class sketch_refresh(sketch_compute_hashes):
        def run(self, sketch, now):
            owner = self.info(sketch)
            self.record(owner, "update", self.current(owner))
            self.called(owner)

    class sketch_fetch(sketch_compute_hashes):
        def run(self, sketch):
            owner = self.info(sketch)
            self.record(owner, "read", self.current(owner))
            found = _bool(model, self.state, owner, "found")
            self.called(owner, found)
            return found

    class sketch_touch_buckets(sketch_compute_hashes):
        def run(self, sketch, now):
            owner = self.info(sketch)
            self.record(owner, "write", self.current(owner))
            ret = _bool(model, self.state, owner, "ret")
            self.called(owner, ret)
            return ret

    class sketch_expire(StateCall):
        def run(self, sketch, time):
            self.record(self.info(sketch), "expire")
            self.called(self.info(sketch))

    # ---- helpers of nf.h ----

    class nf_checksum(StateCall):
        """The one's complement sum over a buffer: a fresh value (any sum),
        so no loop over the payload is unrolled."""

        def run(self, data, length, initial):
            model.counter += 1
            value = claripy.BVS(f"checksum_{model.counter}", 16)
            self.called(None, value)
            return value.zero_extend(48)

    procedures = {
        cls.__name__: cls(display_name=cls.__name__)
        for cls in (
            map_allocate, vector_allocate, dchain_allocate, sketch_allocate, cht_fill_cht,
            map_get, map_put, map_erase, map_size, vector_borrow, vector_return,
            dchain_allocate_new_index, dchain_rejuvenate_index, dchain_expire_one_index,
            dchain_is_index_allocated, dchain_free_index, expire_items_single_map,
            cht_find_preferred_available_backend, sketch_compute_hashes, sketch_refresh,
            sketch_fetch, sketch_touch_buckets, sketch_expire, nf_checksum,
        )
    }
    assert sorted(procedures) == sorted(MODELLED)
    return procedures
