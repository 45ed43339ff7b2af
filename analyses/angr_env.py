"""angr, imported quietly and tuned; modules of the analysis import it from here.

angr logs at import time (e.g. that its optional unicorn engine is absent)
and sets its loggers' levels then, so the import is silenced and the levels
set afterwards.  claripy's z3 backend is tuned (see below).
"""
import logging
import threading

import analyses  # noqa: F401  (sets REUSE_Z3_SOLVER before claripy loads)

logging.disable(logging.ERROR)
try:
    import angr
    import claripy
    import z3
    from claripy.backends.backend_z3 import BackendZ3
finally:
    logging.disable(logging.NOTSET)
for _name in ("angr", "cle", "pyvex", "claripy"):
    logging.getLogger(_name).setLevel(logging.CRITICAL)


def _solver_without_introspection(self, timeout=None, max_memory=None):
    """claripy's BackendZ3.solver, minus the parameter-description query it
    makes on every call to choose the timeout option (about 5 ms each, a
    tenth of an NF's analysis): z3 4.13 has `timeout`."""
    solver = getattr(self._tls, "solver", None)
    if solver is None:
        solver = self._tls.solver = z3.Solver(ctx=self._context)
        if threading.current_thread() is not threading.main_thread():
            solver.set(ctrl_c=False)  # z3 can install its SIGINT handler only there
    else:
        solver.reset()
    if timeout is not None:
        solver.set("timeout", timeout)
    if max_memory is not None:
        solver.set("max_memory", max_memory)
    return solver


BackendZ3.solver = _solver_without_introspection

__all__ = ["angr", "claripy"]
