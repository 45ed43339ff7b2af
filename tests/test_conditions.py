"""Path conditions as Python (analyses/conditions.py): exact bit-vector
arithmetic, shared subterms written once, and only the checked language
compiles (analysis files are user input)."""
from __future__ import annotations

import random

import claripy
import pytest

from analyses.conditions import Condition, to_python


def _checksum_fold(rounds: int) -> claripy.ast.Bool:
    """A one's complement sum folded `rounds` times over packet bytes, each
    fold using the previous sum twice (as NAT's incremental updates do): a
    tree of 2^rounds leaves, a DAG of a few nodes per round."""
    word = claripy.Concat(claripy.BVS("pkt_26_1_8", 8, explicit_name=True),
                          claripy.BVS("pkt_27_2_8", 8, explicit_name=True)).zero_extend(16)
    total = word + claripy.BVV(0xCB00, 32)
    for i in range(rounds):
        port = claripy.Concat(claripy.BVS(f"l4_{i % 4}_{10 + i}_8", 8, explicit_name=True),
                              claripy.BVV(i, 8)).zero_extend(16)
        total = (total & 0xFFFF) + claripy.LShR(total, 16) + port
    return claripy.Extract(15, 0, total) == 0x1234


def test_shared_subterms_are_written_once_and_evaluate_exactly():
    condition = _checksum_fold(14)
    text = to_python(condition, set())
    assert text.startswith("let(") and len(text) < 20000
    compiled = Condition.compile(text)
    symbols = {v.args[0]: v for v in condition.leaf_asts() if v.op == "BVS"}
    rng = random.Random(7)
    value = claripy.Extract(15, 0, condition.args[0])  # the sum itself, as a number
    as_number = Condition.compile(to_python(value, set()))
    for _ in range(50):
        packet = bytes(rng.randrange(256) for _ in range(80))
        packet = packet[:14] + bytes([0x45]) + packet[15:]  # IHL 5: the L4 header at 34
        concrete = {name: claripy.BVV(packet[int(name.split("_")[1])] if name.startswith("pkt")
                                      else packet[34 + int(name.split("_")[1])], 8)
                    for name, _ in symbols.items()}
        solver = claripy.Solver()
        solver.add([symbols[n] == v for n, v in concrete.items()])
        [expected] = solver.eval(value, 1)
        assert as_number(packet, {}, 0, 0) == expected
        assert compiled(packet, {}, 0, 0) == (expected == 0x1234)


@pytest.mark.parametrize("text, complaint", [
    ("__import__('os')", "may be called"),
    ("os", "unknown name 'os'"),
    ("p.data", "Attribute is not allowed"),
    ("let(lambda x: 1)", "parameter 'x'"),
    ("let(lambda _s0=print: 1)", "only plain parameters"),
    ("(lambda: 1)()", "may be called"),
    ("let(lambda: 1, lambda _s0: open)", "unknown name 'open'"),
])
def test_only_the_condition_language_compiles(text, complaint):
    with pytest.raises(ValueError, match=complaint):
        Condition.compile(text, "path 3 condition")
