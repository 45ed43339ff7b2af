"""angr, imported quietly and tuned; modules of the analysis import it from here.

angr logs at import time (e.g. that its optional unicorn engine is absent)
and sets its loggers' levels then, so the import is silenced and the levels
set afterwards.  claripy's z3 backend is tuned (see below), and VEX helpers
angr lacks but real NFs' -O2 builds use are added (SSE4.2 crc32: hardware
hashing, as in DPDK's rte_hash_crc).
"""
import logging
import threading

import analyses  # noqa: F401  (sets REUSE_Z3_SOLVER before claripy loads)

logging.disable(logging.ERROR)
try:
    import angr
    import claripy
    import z3
    from angr.engines.vex.claripy import ccall
    from claripy.backends import backend_z3
    from claripy.backends.backend_z3 import BackendZ3
finally:
    logging.disable(logging.NOTSET)
for _name in ("angr", "cle", "pyvex", "claripy"):
    logging.getLogger(_name).setLevel(logging.CRITICAL)


def bit_vector_solver(ctx: z3.Context) -> z3.Solver:
    """A z3 solver for the analysis' queries, which are all quantifier-free
    bit-vector formulas: z3's QF_BV solver bit-blasts them to SAT, about a
    quarter faster on the samples than the general solver (hhh 19.4 s ->
    14.6 s).  A formula outside QF_BV makes it answer `unknown`, which
    claripy raises, so such a path is reported as errored, never dropped."""
    return z3.SolverFor("QF_BV", ctx=ctx)


#: z3's "no timeout".
_NO_LIMIT = 4294967295


def _solver_without_introspection(self, timeout=None, max_memory=None):
    """claripy's BackendZ3.solver, minus the parameter-description query it
    makes on every call to choose the timeout option (about 5 ms each, a
    tenth of an NF's analysis): z3 4.13 has `timeout`.  The solver is the
    bit-vector one above."""
    solver = getattr(self._tls, "solver", None)
    if solver is None:
        solver = self._tls.solver = bit_vector_solver(self._context)
        if threading.current_thread() is not threading.main_thread():
            solver.set(ctrl_c=False)  # z3 can install its SIGINT handler only there
    else:
        solver.reset()
        solver.set("random_seed", 0)  # a restart below may have changed it
    solver.maestro_timeout = timeout
    solver.set("timeout", _NO_LIMIT if timeout is None else timeout)
    if max_memory is not None:
        solver.set("max_memory", max_memory)
    return solver


BackendZ3.solver = _solver_without_introspection

# The replacement above always reuses the thread's solver, so claripy's
# frontends must always re-add their constraints to it: the flag is read
# from the environment only when claripy loads, and a program that imported
# claripy before `analyses` would otherwise share one solver between
# frontends that each believe it holds their own constraints (hhh: 5 paths
# instead of 71, reported complete).
claripy.backends.z3.reuse_z3_solver = True

#: How long each try of a satisfiability check may take before z3 is
#: restarted with another random seed (ms); the last try has the caller's limit.
CHECK_TRIES_MS = (500, 2000, None)
_claripy_solver_sat = backend_z3.z3_solver_sat


def _solver_sat_with_restarts(solver, extra_constraints, occasion):
    """claripy's z3_solver_sat, restarted when z3 is unlucky.  The same
    check takes 0.02 s or 3-5 s depending on the state z3's SAT core is
    in (NAT's checksum arithmetic: about one check in 300, 1-5 s of a
    10-s analysis); a fresh start with another seed is almost always fast.
    The answer is the same: only `unknown` from a try's time limit leads
    to another try, and the last try has the caller's whole timeout."""
    own = getattr(solver, "maestro_timeout", None) or _NO_LIMIT  # claripy's: 300 s
    for attempt, limit in enumerate(CHECK_TRIES_MS):
        solver.set("timeout", min(limit or own, own))
        result = solver.check(extra_constraints)
        if result != z3.unknown or solver.reason_unknown() not in ("timeout", "canceled") or limit is None:
            break
        assertions = solver.assertions()
        solver.reset()
        solver.set("random_seed", attempt + 1)
        solver.add(assertions)
    if result == z3.unknown:
        return _claripy_solver_sat(solver, extra_constraints, occasion)  # raises its errors
    return result == z3.sat


backend_z3.z3_solver_sat = _solver_sat_with_restarts

#: CRC-32C (Castagnoli), reflected: the polynomial of the x86 crc32 instruction.
CRC32C_POLY = 0x82F63B78


def crc32c_update(crc: claripy.ast.BV, data: claripy.ast.BV, bits: int) -> claripy.ast.BV:
    """VEX's amd64g_calc_crc32{b,w,l,q} as a bit-vector function: the low
    `bits` of `data` folded into `crc` (both 64 bits), one shift per bit.
    Exact (CRC is linear over GF(2)), so keys hashed with it keep their
    fields, marked as a hash."""
    crc = crc ^ (data & ((1 << bits) - 1))
    poly = claripy.BVV(CRC32C_POLY, 64)
    zero = claripy.BVV(0, 64)
    for _ in range(bits):
        crc = claripy.LShR(crc, 1) ^ claripy.If(crc[0] == 1, poly, zero)
    return crc


for _bits, _suffix in ((8, "b"), (16, "w"), (32, "l"), (64, "q")):
    setattr(ccall, f"amd64g_calc_crc32{_suffix}",
            lambda state, crc, data, bits=_bits: crc32c_update(crc, data, bits))

__all__ = ["angr", "claripy", "z3"]
