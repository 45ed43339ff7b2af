"""A path's condition as a small Python expression, evaluated on real packets.

The analysis explores paths symbolically; verification has to tell which
path each real packet took.  `to_python` turns the claripy constraints of
a path into a Python boolean expression over what a run can observe of a
packet:

    p[o]       byte o of the frame as it arrived
    q[c]       byte c of the L4 header, reached through IHL (p[14] & 15)
    length, device, time
    r["name"]  what a state call of the path returned (a found flag, an
               index, a map value, the content of a borrowed vector cell,
               an nf_checksum result), by the symbol the analysis gave it

Constraints over anything else (what an NF variable held, uninitialized
memory) cannot be evaluated on a run and are left out: the path is then
told apart by the rest of its condition, its state calls and its output.
Bit-vector arithmetic is reproduced exactly (every operation masked to its
width, signed operations through `sx`).  An expression whose subterms are
shared many times over (a checksum folded from the same sums) is written
with each shared subterm once, as `let(lambda: E0, lambda _s0: E1, ...,
lambda _s0, _s1, ...: BODY)`: each function gets the values of the ones
before it, and the last one's value is the expression's.

`Condition` compiles such an expression after checking that it uses only
these names and arithmetic, comparison and boolean operators: analysis
files are user input, and no other code may run from them.
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import claripy

#: Longest expression kept for one constraint (a checksum expression can be
#: far longer and constrains nothing the path needs to be told apart).
MAX_TEXT = 4000

_PACKET = re.compile(r"^pkt_(\d+)_\d+_\d+$")
_L4 = re.compile(r"^l4_(\d+)_\d+_\d+$")
_INPUTS = {"length": "length", "device": "device", "time": "time"}


class Unobservable(Exception):
    """A constraint uses something a run does not observe (or is too long)."""


def result_symbol(name: str) -> bool:
    """Whether a symbol is something a state call returned (bound from a
    run's call trace): `<object>.<found|value|index|expired|ret|chosen|
    size|cell>_n`, `checksum_n`."""
    return bool(_RESULT.match(name))


_RESULT = re.compile(r"^(?:[A-Za-z_][\w\[\].]*\.(?:found|value|index|expired|ret|chosen|size|cell)|"
                     r"checksum)_\d+_\d+_\d+$")


#: Longest expression kept when its shared subterms are written once.
MAX_SHARED_TEXT = 40000
#: A subterm used more than once is named when its text is longer than this.
SHARED_MIN_TEXT = 24


def to_python(expr: claripy.ast.Base, results: set[str]) -> str:
    """The expression in the vocabulary of the module doc; `results`: the
    symbols bound from the run's call trace.  Unobservable otherwise."""
    cache: dict[int, str] = {}
    try:
        return _translate(expr, results, cache)
    except Unobservable as exc:
        if str(exc) != "too long":
            raise
    return _with_shared_terms(expr, results)


def _with_shared_terms(expr: claripy.ast.Base, results: set[str]) -> str:
    """The expression with each subterm it uses more than once written once
    (the `let` form of the module doc)."""
    uses: dict[int, int] = {}
    order: list[claripy.ast.Base] = []  # each subterm after the ones it uses

    def visit(e: claripy.ast.Base) -> None:
        key = hash(e)
        uses[key] = uses.get(key, 0) + 1
        if uses[key] == 1:
            for arg in e.args:
                if isinstance(arg, claripy.ast.Base):
                    visit(arg)
            order.append(e)

    visit(expr)
    cache: dict[int, str] = {}
    names: list[str] = []
    steps: list[str] = []
    for e in order[:-1]:
        if uses[hash(e)] > 1 and e.op not in ("BVS", "BVV", "BoolV"):
            text = _translate(e, results, cache)
            if len(text) > SHARED_MIN_TEXT:
                steps.append(f"lambda {', '.join(names)}: {text}" if names else f"lambda: {text}")
                names.append(f"_s{len(names)}")
                cache[hash(e)] = names[-1]
    body = _translate(expr, results, cache)
    if not names:
        raise Unobservable("too long")
    text = f"let({', '.join(steps)}, lambda {', '.join(names)}: {body})"
    if len(text) > MAX_SHARED_TEXT:
        raise Unobservable("too long")
    return text


def _translate(e: claripy.ast.Base, results: set[str], cache: dict[int, str]) -> str:
    key = hash(e)
    if key in cache:
        return cache[key]
    text = _node(e, results, cache)
    if len(text) > MAX_TEXT:
        raise Unobservable("too long")
    cache[key] = text
    return text


def _node(e: claripy.ast.Base, results: set[str], cache: dict[int, str]) -> str:
    op, args = e.op, e.args

    def t(x) -> str:
        return _translate(x, results, cache)

    if op == "BVV":
        return str(args[0])
    if op == "BoolV":
        return "True" if args[0] else "False"
    if op == "BVS":
        name = args[0]
        if m := _PACKET.match(name):
            return f"p[{m.group(1)}]"
        if m := _L4.match(name):
            return f"q[{m.group(1)}]"
        for prefix, text in _INPUTS.items():
            if name.startswith(prefix + "_"):
                return text
        if name in results:
            return f"r[{name!r}]"
        raise Unobservable(name)
    if op in ("And", "Or"):
        return "(" + f" {op.lower()} ".join(t(a) for a in args) + ")"
    if op == "Not":
        return f"(not {t(args[0])})"
    if op == "If":
        return f"({t(args[1])} if {t(args[0])} else {t(args[2])})"
    if op in _COMPARE:
        left, right = args
        if op in _SIGNED:
            width = left.size()
            return f"(sx({t(left)}, {width}) {_COMPARE[op]} sx({t(right)}, {width}))"
        return f"({t(left)} {_COMPARE[op]} {t(right)})"
    width = e.size()
    mask = (1 << width) - 1
    if op == "Extract":
        high, low, inner = args
        return f"(({t(inner)} >> {low}) & {(1 << (high - low + 1)) - 1})"
    if op == "Concat":
        parts, shift = [], width
        for a in args:
            shift -= a.size()
            parts.append(f"({t(a)} << {shift})" if shift else t(a))
        return "(" + " | ".join(parts) + ")"
    if op == "ZeroExt":
        return t(args[1])
    if op == "SignExt":
        inner = args[1]
        return f"(sx({t(inner)}, {inner.size()}) & {mask})"
    if op in ("__add__", "__mul__"):
        symbol = "+" if op == "__add__" else "*"
        return "((" + f" {symbol} ".join(t(a) for a in args) + f") & {mask})"
    if op == "__sub__":
        return f"(({t(args[0])} - {t(args[1])}) & {mask})"
    if op == "__neg__":
        return f"((-{t(args[0])}) & {mask})"
    if op in ("__and__", "__or__", "__xor__"):
        symbol = {"__and__": "&", "__or__": "|", "__xor__": "^"}[op]
        return "(" + f" {symbol} ".join(t(a) for a in args) + ")"
    if op == "__invert__":
        return f"({t(args[0])} ^ {mask})"
    if op == "__lshift__":
        return f"shl({t(args[0])}, {t(args[1])}, {width})"
    if op == "LShR":
        return f"({t(args[0])} >> {t(args[1])})"
    if op == "__rshift__":
        return f"(sx({t(args[0])}, {width}) >> {t(args[1])} & {mask})"
    if op == "__floordiv__":
        return f"udiv({t(args[0])}, {t(args[1])}, {width})"
    if op == "__mod__":
        return f"urem({t(args[0])}, {t(args[1])})"
    if op == "Reverse":
        return f"rev({t(args[0])}, {width})"
    raise Unobservable(f"operation {op}")


_COMPARE = {"__eq__": "==", "__ne__": "!=", "ULT": "<", "ULE": "<=", "UGT": ">", "UGE": ">=",
            "__lt__": "<", "__le__": "<=", "__gt__": ">", "__ge__": ">=",
            "SLT": "<", "SLE": "<=", "SGT": ">", "SGE": ">="}
_SIGNED = {"SLT", "SLE", "SGT", "SGE"}


# --- evaluation --------------------------------------------------------------


def _sx(value: int, width: int) -> int:
    return value - (1 << width) if value >> (width - 1) & 1 else value


def _shl(value: int, shift: int, width: int) -> int:
    return (value << shift) & ((1 << width) - 1) if shift < width else 0


def _udiv(a: int, b: int, width: int) -> int:
    return a // b if b else (1 << width) - 1


def _urem(a: int, b: int) -> int:
    return a % b if b else a


def _rev(value: int, width: int) -> int:
    return int.from_bytes(value.to_bytes(width // 8, "big"), "little")


def _let(*steps: Callable[..., Any]) -> Any:
    """Each step called with the values of the steps before it; the last one's value."""
    values: list[Any] = []
    for step in steps:
        values.append(step(*values))
    return values[-1]


_HELPERS = {"sx": _sx, "shl": _shl, "udiv": _udiv, "urem": _urem, "rev": _rev, "let": _let}
_NAMES = {"p", "q", "r", "length", "device", "time", *_HELPERS}
#: Names of shared subterms (parameters of the `let` form's functions).
_SHARED_NAME = re.compile(r"^_s\d+$")
_NODES = (ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.USub, ast.Invert,
          ast.BinOp, ast.Add, ast.Sub, ast.Mult, ast.BitAnd, ast.BitOr, ast.BitXor, ast.LShift,
          ast.RShift, ast.FloorDiv, ast.Mod, ast.Compare, ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt,
          ast.GtE, ast.IfExp, ast.Call, ast.Name, ast.Load, ast.Subscript, ast.Constant,
          ast.Lambda, ast.arguments, ast.arg)


@dataclass(frozen=True)
class Condition:
    """A compiled condition (see the module doc); `text` is its source."""

    text: str
    function: Callable[..., Any]

    @classmethod
    def compile(cls, text: str, where: str = "condition") -> "Condition":
        """Check and compile; ValueError naming `where` for anything else."""
        try:
            tree = ast.parse(text, mode="eval")
        except SyntaxError as exc:
            raise ValueError(f"{where}: not an expression ({exc.msg})") from None
        for node in ast.walk(tree):
            if not isinstance(node, _NODES):
                raise ValueError(f"{where}: {type(node).__name__} is not allowed in a path condition")
            if isinstance(node, ast.Name) and node.id not in _NAMES and not _SHARED_NAME.match(node.id):
                raise ValueError(f"{where}: unknown name {node.id!r} in a path condition")
            if isinstance(node, ast.arg) and (not _SHARED_NAME.match(node.arg) or node.annotation):
                raise ValueError(f"{where}: parameter {node.arg!r} is not a shared subterm's name")
            if isinstance(node, ast.arguments) and (node.vararg or node.kwarg or node.kwonlyargs
                                                     or node.defaults or node.posonlyargs):
                raise ValueError(f"{where}: only plain parameters are allowed in a path condition")
            if isinstance(node, ast.Call) and not (isinstance(node.func, ast.Name) and node.func.id in _HELPERS
                                                   and not node.keywords):
                raise ValueError(f"{where}: only {', '.join(_HELPERS)} may be called in a path condition")
            if isinstance(node, ast.Constant) and not isinstance(node.value, (int, str)):
                raise ValueError(f"{where}: constant {node.value!r} is not allowed in a path condition")
        code = compile(tree, where, "eval")
        helpers = {"__builtins__": {}, **_HELPERS}
        # the inputs are globals of the evaluation, so the `let` form's functions see them
        return cls(text, lambda p, q, r, length, device, time: eval(  # noqa: S307 - checked above
            code, {**helpers, "p": p, "q": q, "r": r, "length": length, "device": device, "time": time}))

    def __call__(self, packet: bytes, results: Mapping[str, int], device: int, time: int,
                 length: int | None = None) -> Any:
        """The value on one packet (bytes as it arrived) and the results of its calls."""
        ihl_offset = 14 + (packet[14] & 0x0F) * 4 if len(packet) > 14 else 14
        return self.function(_Bytes(packet), _Bytes(packet[ihl_offset:]), results,
                             len(packet) if length is None else length, device, time)


class _Bytes:
    """Packet bytes; bytes past the end read as 0 (the analysis's symbolic
    bytes past the length are unconstrained, any value satisfies them)."""

    __slots__ = ("data",)

    def __init__(self, data: bytes):
        self.data = data

    def __getitem__(self, index: int) -> int:
        return self.data[index] if index < len(self.data) else 0
