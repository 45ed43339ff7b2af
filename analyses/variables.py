"""The NF's variables with static storage, read from its DWARF (gcc -g).

State is whatever nf_process writes that outlives the packet: the state
API's objects, and any file-scope or `static` variable.  This module lists
the second kind (`Variable`): every variable of the NF's own source with a
fixed address, file-scope or block-scope, with its layout (element size and
count for arrays, member names for structs) so that the analysis can name
what a memory access touches ("dst_hits", "state.flows", element index).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from elftools.elf.elffile import ELFFile

_DW_OP_ADDR = 0x03
_QUALIFIERS = ("DW_TAG_typedef", "DW_TAG_const_type", "DW_TAG_volatile_type",
               "DW_TAG_atomic_type", "DW_TAG_restrict_type")


@dataclass(frozen=True)
class Member:
    """A field of a struct variable: name, byte offset and size."""

    name: str
    offset: int
    size: int


@dataclass(frozen=True)
class Variable:
    """One variable with static storage of the NF.

    name: the C name, with the function for block-scope statics
    ("alloc_port.next_port"); symbol: its ELF symbol ("next_port.0");
    address: link-time address in the shared object; size: bytes;
    elem_size/count: array element size and count (size and 1 otherwise);
    members: top-level struct fields (arrays of structs: the element's);
    decl: "file.c:line" of the declaration; function: the enclosing
    function of a block-scope static ("" at file scope); constant: declared
    const (lives in read-only memory)."""

    name: str
    symbol: str
    address: int
    size: int
    elem_size: int
    count: int
    members: tuple[Member, ...]
    decl: str
    function: str = ""
    constant: bool = False

    def field_at(self, offset: int) -> str:
        """"state.flows", "hits[3]", "table[2].count": what a byte offset names."""
        text = self.name
        if self.count > 1 or self.elem_size != self.size:
            text += f"[{offset // self.elem_size}]"
            offset %= self.elem_size
        for member in self.members:
            if member.offset <= offset < member.offset + member.size:
                return f"{text}.{member.name}"
        return text


def read_variables(shared_object: Path, source: Path) -> list[Variable]:
    """The variables with a fixed address that `source` defines, in address order."""
    found: list[Variable] = []
    with open(shared_object, "rb") as stream:
        elf = ELFFile(stream)
        if not elf.has_dwarf_info():
            return []
        symbols = _symbols_by_address(elf)
        dwarf = elf.get_dwarf_info()
        for unit in dwarf.iter_CUs():
            top = unit.get_top_DIE()
            if Path(top.get_full_path()).name != source.name:
                continue
            files = _file_names(dwarf, unit)
            _collect(top, "", symbols, files, found)
    return sorted(found, key=lambda v: v.address)


def _symbols_by_address(elf: ELFFile) -> dict[int, str]:
    table = elf.get_section_by_name(".symtab")
    if table is None:
        return {}
    return {s["st_value"]: s.name for s in table.iter_symbols()
            if s["st_info"]["type"] == "STT_OBJECT" and s.name}


def _file_names(dwarf, unit) -> dict[int, str]:
    program = dwarf.line_program_for_CU(unit)
    if program is None:
        return {}
    entries = program["file_entry"]
    base = 0 if program.header["version"] >= 5 else 1
    return {i + base: entry.name.decode(errors="replace") for i, entry in enumerate(entries)}


def _collect(die, function: str, symbols: dict[int, str], files: dict[int, str],
             found: list[Variable]) -> None:
    for child in die.iter_children():
        if child.tag == "DW_TAG_subprogram":
            name = _attr(child, "DW_AT_name") or _attr(_spec(child), "DW_AT_name") or "?"
            _collect(child, name, symbols, files, found)
        elif child.tag == "DW_TAG_lexical_block":
            _collect(child, function, symbols, files, found)
        elif child.tag == "DW_TAG_variable":
            variable = _variable(child, function, symbols, files)
            if variable is not None:
                found.append(variable)


def _variable(die, function: str, symbols: dict[int, str], files: dict[int, str]) -> Variable | None:
    location = die.attributes.get("DW_AT_location")
    if location is None or location.form not in ("DW_FORM_exprloc", "DW_FORM_block1"):
        return None
    expr = location.value
    if len(expr) != 9 or expr[0] != _DW_OP_ADDR:
        return None
    address = int.from_bytes(bytes(expr[1:9]), "little")
    declaration = _spec(die)
    name = _attr(die, "DW_AT_name") or _attr(declaration, "DW_AT_name")
    type_die = _type(die) or _type(declaration)
    if not name or type_die is None:
        return None
    size, elem_size, count, members, constant = _layout(type_die)
    if size <= 0:
        return None
    file = files.get(_attr(die, "DW_AT_decl_file") or _attr(declaration, "DW_AT_decl_file") or 0, "?")
    line = _attr(die, "DW_AT_decl_line") or _attr(declaration, "DW_AT_decl_line") or 0
    return Variable(f"{function}.{name}" if function else name, symbols.get(address, name),
                    address, size, elem_size, count, members, f"{Path(file).name}:{line}",
                    function, constant)


def _attr(die, name: str):
    if die is None or name not in die.attributes:
        return None
    value = die.attributes[name].value
    return value.decode(errors="replace") if isinstance(value, bytes) else value


def _spec(die):
    for name in ("DW_AT_specification", "DW_AT_abstract_origin"):
        if name in die.attributes:
            return die.get_DIE_from_attribute(name)
    return None


def _type(die):
    if die is None or "DW_AT_type" not in die.attributes:
        return None
    return die.get_DIE_from_attribute("DW_AT_type")


def _strip(type_die) -> tuple[object, bool]:
    """The type behind typedefs and qualifiers, and whether it is const."""
    constant = False
    while type_die is not None and type_die.tag in _QUALIFIERS:
        constant |= type_die.tag == "DW_TAG_const_type"
        type_die = _type(type_die)
    return type_die, constant


def _byte_size(type_die) -> int:
    type_die, _ = _strip(type_die)
    if type_die is None:
        return 0
    if type_die.tag == "DW_TAG_array_type":
        elem = _byte_size(_type(type_die))
        for count in _dimensions(type_die):
            elem *= count
        return elem
    return _attr(type_die, "DW_AT_byte_size") or 0


def _dimensions(array_die) -> list[int]:
    counts = []
    for sub in array_die.iter_children():
        if sub.tag != "DW_TAG_subrange_type":
            continue
        if (count := _attr(sub, "DW_AT_count")) is not None:
            counts.append(count)
        elif isinstance(upper := _attr(sub, "DW_AT_upper_bound"), int):
            counts.append(upper + 1)
        else:
            counts.append(0)
    return counts


def _members(type_die) -> tuple[Member, ...]:
    type_die, _ = _strip(type_die)
    if type_die is None or type_die.tag not in ("DW_TAG_structure_type", "DW_TAG_union_type"):
        return ()
    out = []
    for member in type_die.iter_children():
        if member.tag != "DW_TAG_member":
            continue
        offset = _attr(member, "DW_AT_data_member_location") or 0
        if not isinstance(offset, int):
            continue
        out.append(Member(_attr(member, "DW_AT_name") or "?", offset, _byte_size(_type(member))))
    return tuple(out)


def _layout(type_die) -> tuple[int, int, int, tuple[Member, ...], bool]:
    """(size, element size, element count, members, const) of a variable's type."""
    stripped, constant = _strip(type_die)
    size = _byte_size(type_die)
    if stripped is not None and stripped.tag == "DW_TAG_array_type":
        dims = _dimensions(stripped)
        element = _type(stripped)
        _, elem_const = _strip(element)
        elem_size = size // dims[0] if dims and dims[0] else size
        members = _members(element) if len(dims) == 1 else ()
        return size, elem_size, dims[0] if dims else 1, members, constant or elem_const
    return size, size, 1, _members(type_die), constant
