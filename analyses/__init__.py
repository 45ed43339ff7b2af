"""Headless analyses: NF sources, symbolic execution, the planner.

claripy reads REUSE_Z3_SOLVER when it is first imported: one z3 solver per
thread instead of one per query cuts analysis time and memory by a third.
"""
import os

os.environ.setdefault("REUSE_Z3_SOLVER", "1")
