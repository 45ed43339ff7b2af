"""From symbolic bytes to canonical packet-field names.

The symbolic execution names every packet byte: `pkt_<o>` for the byte at
offset o of the frame, `l4_<c>` for byte c of the L4 header reached through
IHL (so options do not change the name).  Values the state procedures return
are named `<object>.<what>_<n>` (see symbex.py).  This module turns claripy
expressions over those symbols into key parts: "ipv4.src", "ipv4.src/24",
"l4.dport~bswap", "flow_chain.index", "const:0x01".
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import claripy

#: Canonical fields of an untagged IPv4 frame: name -> (first byte, length).
FRAME_FIELDS: dict[str, tuple[int, int]] = {
    "eth.dst": (0, 6),
    "eth.src": (6, 6),
    "eth.type": (12, 2),
    "ipv4.ihl": (14, 1),
    "ipv4.tos": (15, 1),
    "ipv4.len": (16, 2),
    "ipv4.id": (18, 2),
    "ipv4.frag": (20, 2),
    "ipv4.ttl": (22, 1),
    "ipv4.proto": (23, 1),
    "ipv4.csum": (24, 2),
    "ipv4.src": (26, 4),
    "ipv4.dst": (30, 4),
}
#: Fields of the L4 header, by offset from its start.
L4_FIELDS: dict[str, tuple[int, int]] = {
    "l4.sport": (0, 2),
    "l4.dport": (2, 2),
    "udp.csum": (6, 2),
    "tcp.flags": (13, 1),
    "tcp.csum": (16, 2),
}
#: Where the L4 header starts in a frame without IPv4 options.
L4_OFFSET_NO_OPTIONS = 34

_PKT = re.compile(r"^pkt_(\d+)_")
_L4 = re.compile(r"^l4_(\d+)_")
_DERIVED = re.compile(r"^([A-Za-z_][\w\[\].]*)\.(index|expired|value|cell|chosen|found|ret)_\d+")


def _field_at(table: dict[str, tuple[int, int]], offset: int) -> tuple[str, int, int]:
    for name, (start, length) in table.items():
        if start <= offset < start + length:
            return name, offset - start, length
    return "", 0, 0


def byte_field(symbol: str) -> tuple[str, int, int] | None:
    """(field, byte within field, field length) of a packet byte symbol.

    Unknown packet offsets get the name `pkt[o]` / `l4[c]` (one byte).
    Returns None for symbols that are not packet bytes.
    """
    if m := _PKT.match(symbol):
        offset = int(m.group(1))
        if offset >= L4_OFFSET_NO_OPTIONS:
            name, index, length = _field_at(L4_FIELDS, offset - L4_OFFSET_NO_OPTIONS)
        else:
            name, index, length = _field_at(FRAME_FIELDS, offset)
        return (name, index, length) if name else (f"pkt[{offset}]", 0, 1)
    if m := _L4.match(symbol):
        offset = int(m.group(1))
        name, index, length = _field_at(L4_FIELDS, offset)
        return (name, index, length) if name else (f"l4[{offset}]", 0, 1)
    return None


def is_packet_field(part: str) -> bool:
    """Whether a key part (without prefix or marks) names packet bytes."""
    base = part.split("~")[0].split("/")[0]
    return base in FRAME_FIELDS or base in L4_FIELDS or base.startswith(("pkt[", "l4[")) or (
        "[" in base and base.split("[")[0] in FRAME_FIELDS | L4_FIELDS)


def derived_name(symbol: str) -> str | None:
    """`flow_chain.index` for a value a state procedure returned, else None."""
    if m := _DERIVED.match(symbol):
        return f"{m.group(1)}.{m.group(2)}"
    return None


def input_name(symbol: str) -> str | None:
    """The input a symbol stands for: a field, `device`, `time`, `length`,
    or a derived value; None for anything else."""
    if found := byte_field(symbol):
        return found[0]
    if symbol.startswith("mem_"):  # angr's fill for memory read before written
        return "uninitialized"
    for name in ("device", "time", "length", "checksum"):
        if symbol.startswith(name + "_"):
            return name
    return derived_name(symbol)


@dataclass(frozen=True)
class ByteSource:
    """Where one byte of an expression comes from: `symbol`'s bits
    [low, low+8) masked by `mask`, or a constant `value` when symbol is None."""

    symbol: str | None
    low: int = 0
    mask: int = 0xFF
    value: int = 0


def byte_sources(expr: claripy.ast.BV) -> list[ByteSource] | None:
    """The bytes of `expr`, most significant first, when each is (part of)
    one symbol or a constant; None when bytes mix several inputs (a hash,
    an arithmetic result)."""
    if expr.size() % 8:
        return None
    bits = _bit_sources(expr)
    if bits is None:
        return None
    result = []
    for i in range(0, len(bits), 8):
        chunk = bits[i : i + 8]  # most significant bit first
        symbols = {b[0] for b in chunk if b[0] is not None}
        if not symbols:
            result.append(ByteSource(None, value=int("".join(str(b[1]) for b in chunk), 2)))
            continue
        if len(symbols) > 1:
            return None
        (symbol,) = symbols
        positions = [b[1] for b in chunk if b[0] is not None]
        mask = int("".join("1" if b[0] is not None else "0" for b in chunk), 2)
        low = positions[-1] - (7 - max(i for i, b in enumerate(reversed(chunk)) if b[0]))
        constant_bits = [b for b in chunk if b[0] is None]
        if any(b[1] for b in constant_bits):
            return None  # a symbol's bits OR'ed with ones: not a plain field
        # The kept bits must sit in byte-aligned positions of the symbol.
        if any(pos - low != 7 - j for j, (s, pos) in enumerate(chunk) if s is not None):
            return None
        result.append(ByteSource(symbol, low, mask))
    return result


def _bit_sources(expr: claripy.ast.BV) -> list[tuple[str | None, int]] | None:
    """Each bit of expr, MSB first: (symbol, bit index) or (None, constant bit)."""
    op = expr.op
    if op == "BVV":
        value, size = expr.args
        return [(None, (value >> i) & 1) for i in reversed(range(size))]
    if op == "BVS":
        name = expr.args[0]
        return [(name, i) for i in reversed(range(expr.size()))]
    if op == "Concat":
        parts = [_bit_sources(a) for a in expr.args]
        return None if any(p is None for p in parts) else [b for p in parts for b in p]
    if op == "Extract":
        high, low, inner = expr.args
        bits = _bit_sources(inner)
        if bits is None:
            return None
        size = inner.size()
        return bits[size - 1 - high : size - low]
    if op == "ZeroExt":
        extra, inner = expr.args
        bits = _bit_sources(inner)
        return None if bits is None else [(None, 0)] * extra + bits
    if op == "Reverse":
        bits = _bit_sources(expr.args[0])
        if bits is None:
            return None
        octets = [bits[i : i + 8] for i in range(0, len(bits), 8)]
        return [b for octet in reversed(octets) for b in octet]
    if op == "__and__":
        consts = [a for a in expr.args if a.op == "BVV"]
        others = [a for a in expr.args if a.op != "BVV"]
        if len(consts) == 1 and len(others) == 1:
            bits = _bit_sources(others[0])
            mask = consts[0].args[0]
            size = expr.size()
            if bits is None:
                return None
            return [b if (mask >> (size - 1 - i)) & 1 else (None, 0) for i, b in enumerate(bits)]
    return None


def key_parts(expr: claripy.ast.BV) -> list[str]:
    """The parts of a key, in key-byte order (see the module doc).

    Consecutive bytes of one field in order give the field name (a prefix
    of it gives `field/bits`); in reverse order `field~bswap`.  Bytes that
    do not decompose give the sorted inputs they depend on, marked `~hash`.
    """
    sources = byte_sources(expr)
    if sources is None:
        if expr.op == "__add__" and len(expr.args) == 2 and any(a.op == "BVV" for a in expr.args):
            # index = field - start (NAT's port to index): the field, offset
            (inner,) = [a for a in expr.args if a.op != "BVV"]
            return [f"{p}~offset" for p in key_parts(inner) if not p.startswith("const:")]
        names = sorted({n for v in expr.variables if (n := input_name(v))})
        return [f"{n}~hash" for n in names] or [f"const:{_const_hex(expr)}"]
    parts: list[str] = []
    run: list[tuple[str, int, int, int]] = []  # (field, byte index, length, mask)
    const_run: list[int] = []

    def flush() -> None:
        if run:
            parts.append(_run_name(run))
            run.clear()
        if const_run:
            parts.append("const:0x" + "".join(f"{v:02x}" for v in const_run))
            const_run.clear()

    for src in sources:
        if src.symbol is None:
            if run:
                flush()
            const_run.append(src.value)
            continue
        if const_run:
            flush()
        located = _locate(src)
        if run and (located[0] != run[-1][0] or abs(located[1] - run[-1][1]) != 1
                    or (len(run) > 1 and located[1] - run[-1][1] != run[-1][1] - run[-2][1])):
            flush()
        run.append(located)
    flush()
    return parts


def _locate(src: ByteSource) -> tuple[str, int, int, int]:
    """(field, byte index, field length, bit mask) of a symbolic byte."""
    if found := byte_field(src.symbol):
        name, index, length = found
        # A multi-byte symbol (a returned value) names its byte by position.
        return name, index, length, src.mask
    name = derived_name(src.symbol) or input_name(src.symbol) or src.symbol
    return name, -(src.low // 8), 0, src.mask


def _run_name(run: list[tuple[str, int, int, int]]) -> str:
    name, _, length, _ = run[0]
    indexes = [r[1] for r in run]
    if length == 0:  # a derived value or non-packet input
        return name
    if indexes == sorted(indexes):
        masks = [r[3] for r in run]
        bits = 0
        for index, mask in zip(indexes, masks):
            if index != len(masks) and bits != 8 * index:
                break
            ones = bin(mask).count("1")
            leading = mask == (0xFF << (8 - ones)) & 0xFF
            if not leading:
                return f"{name}~masked"
            bits += ones
            if ones < 8:
                break
        if indexes[0] == 0 and bits == 8 * length:
            return name
        if indexes[0] == 0:
            return f"{name}/{bits}"
        return f"{name}[{indexes[0]}:{indexes[-1] + 1}]"
    if indexes == sorted(indexes, reverse=True) and len(indexes) == length:
        return f"{name}~bswap"
    return f"{name}~shuffled"


def _const_hex(expr: claripy.ast.BV) -> str:
    return hex(expr.args[0]) if expr.op == "BVV" else "?"


def implied_equalities(constraint: claripy.ast.Bool) -> list[claripy.ast.Bool]:
    """The equalities `a == b` a path constraint implies, however the NF
    wrote the comparison: `&&`, non-short-circuit `|` and `&` over
    comparisons ("((a != b) | (c != d)) == 0"), xor or subtraction against
    zero ("(a ^ b) == 0"), negated disequalities."""
    out: list[claripy.ast.Bool] = []
    _holds(constraint, out)
    return out


def _holds(c: claripy.ast.Bool, out: list) -> None:
    op = c.op
    if op == "And":
        for arg in c.args:
            _holds(arg, out)
    elif op == "Not":
        _fails(c.args[0], out)
    elif op in ("__eq__", "__ne__"):
        left, right = c.args
        constant, other = (left, right) if not left.symbolic else (right, left)
        if constant.symbolic:  # two symbolic sides: a real equality
            if op == "__eq__":
                out.append(c)
            return
        if (constant.concrete_value == 0) == (op == "__eq__"):
            _zero(other, out)
        else:
            _nonzero(other, out, constant.concrete_value if op == "__eq__" else None)


def _fails(c: claripy.ast.Bool, out: list) -> None:
    """Equalities implied by `Not(c)`."""
    op = c.op
    if op == "Or":
        for arg in c.args:
            _fails(arg, out)
    elif op == "Not":
        _holds(c.args[0], out)
    elif op == "__ne__":
        _holds(c.args[0] == c.args[1], out)
    elif op == "__eq__":
        _holds(c.args[0] != c.args[1], out)


def _zero(x: claripy.ast.BV, out: list) -> None:
    """Equalities implied by `x == 0`."""
    op = x.op
    if op in ("__or__", "Concat"):
        for arg in x.args:
            if arg.symbolic:
                _zero(arg, out)
    elif op == "ZeroExt":
        _zero(x.args[1], out)
    elif op in ("__xor__", "__sub__") and len(x.args) == 2:
        out.append(x.args[0] == x.args[1])
    elif op == "If":
        condition, then, other = x.args
        if not then.symbolic and not other.symbolic:
            if then.concrete_value == 0 and other.concrete_value != 0:
                _holds(condition, out)
            elif other.concrete_value == 0 and then.concrete_value != 0:
                _fails(condition, out)


def _nonzero(x: claripy.ast.BV, out: list, value: int | None) -> None:
    """Equalities implied by `x != 0` (or `x == value`, value non-zero)."""
    op = x.op
    if op == "ZeroExt":
        _nonzero(x.args[1], out, value)
    elif op == "__and__" and all(_flag(arg) for arg in x.args):
        for arg in x.args:  # every 0/1 flag of a bitwise and is 1
            _nonzero(arg, out, None)
    elif op == "If":
        condition, then, other = x.args
        if not then.symbolic and not other.symbolic:
            then_ok = then.concrete_value != 0 if value is None else then.concrete_value == value
            other_ok = other.concrete_value != 0 if value is None else other.concrete_value == value
            if then_ok and not other_ok:
                _holds(condition, out)
            elif other_ok and not then_ok:
                _fails(condition, out)


def _flag(x: claripy.ast.BV) -> bool:
    """Whether x is 0 or 1 (a comparison turned into an integer)."""
    while x.op == "ZeroExt":
        x = x.args[1]
    return x.op == "If" and all(not a.symbolic and a.concrete_value in (0, 1) for a in x.args[1:])
