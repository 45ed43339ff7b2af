"""One state object in detail: its accesses (key fields per device,
conditions, the source lines of the calls), its relations across devices,
and the objects reached through it."""
from __future__ import annotations

from pathlib import Path

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from analyses.model import OPS, Access, Analysis, Relation
from analyses.nf_source import SAMPLE_DIR

#: Longest source line shown beside a call.
SOURCE_WIDTH = 72


def source_lines(analysis: Analysis) -> dict[str, list[str]]:
    """The NF's source lines by file name (calls are "fw.c:130"); the sample
    folder is tried when the report's path does not exist here."""
    path = Path(analysis.source)
    for candidate in (path, SAMPLE_DIR / path.name):
        try:
            return {candidate.name: candidate.read_text(errors="replace").splitlines()}
        except OSError:
            continue
    return {}


def call_line(call: str, sources: dict[str, list[str]]) -> str:
    """The source text at "file:line" ('' if unknown)."""
    file, _, line = call.rpartition(":")
    lines = sources.get(Path(file).name, [])
    if not line.isdigit() or not 0 < int(line) <= len(lines):
        return ""
    text = lines[int(line) - 1].strip()
    return text if len(text) <= SOURCE_WIDTH else text[: SOURCE_WIDTH - 1] + "…"


def devices_text(devices: list[int]) -> str:
    return "dev " + ",".join(map(str, devices)) if devices else "no device"


def key_text(access: Access) -> str:
    """"(ipv4.src, ipv4.dst)", "flow_chain.index (flow_chain's index)", "-"."""
    if not access.key_fields:
        return "whole object" if access.key_kind == "none" else "-"
    key = ", ".join(access.key_fields)
    key = f"({key})" if len(access.key_fields) > 1 else key
    derived = access.derived_from or {}
    if derived.get("object") and derived.get("what"):
        key += f"  ← the {derived['what']} {derived['object']} gave"
    return key


def relation_text(relation: Relation) -> str:
    a, b = relation.devices
    pairs = " · ".join(f"{x} = {y}" for x, y in relation.field_pairs)
    via = "same key" if relation.via == "key" else relation.via.replace("cell@", "cell reached by ")
    return f"dev {a} ↔ dev {b} ({via}): {pairs}"


class AccessView(Static):
    """The accesses and relations of the object chosen with `show`."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id)
        self.object: str | None = None

    def show(self, analysis: Analysis | None, name: str | None,
             sources: dict[str, list[str]] | None = None) -> None:
        self.object = name
        if analysis is None:
            self.update("")
            return
        if name is None:
            self.update(Text(f"{analysis.nf} keeps no state: every packet may go to any core."
                             if not analysis.objects else "Select an object above."))
            return
        self.update(object_text(analysis, name, sources or {}))


def object_text(analysis: Analysis, name: str, sources: dict[str, list[str]]) -> Group:
    """The detail of object `name`: a heading, then accesses, relations and
    followers as grids whose last column wraps under itself."""
    obj = analysis.object(name)
    heading = Text()
    heading.append(name, style="bold")
    size = f" · {obj.key_size}-byte key" if obj.key_size else (
        f" · {obj.elem_size}-byte cells" if obj.elem_size else "")
    heading.append(f"  {obj.kind} · {obj.capacity:,} entries{size} · ")
    heading.append("written by packets" if obj.written else "read-only after nf_init",
                   style="yellow" if obj.written else "green")
    parts: list = [heading, Text("\nAccesses", style="bold underline")]
    grid = Table.grid(padding=(0, 1))
    grid.add_column(no_wrap=True, style="bold cyan")
    grid.add_column(no_wrap=True, style="magenta")
    grid.add_column(ratio=1)
    accesses = sorted(analysis.accesses_to(name),
                      key=lambda a: (OPS.index(a.op) if a.op in OPS else 99, a.device))
    for access in accesses:
        key = Text.assemble(("key ", "dim"), key_text(access))
        if access.function and access.function != "nf_process":
            key.append(f"  in {access.function}()", style="dim")
        grid.add_row(access.op, devices_text(access.device), key)
        if access.condition_fields:
            grid.add_row("", "", Text.assemble(("when ", "dim"), (", ".join(access.condition_fields), "dim")))
        for call in access.calls:
            line = call_line(call, sources)
            grid.add_row("", "", Text.assemble((call, "bold"), ("  " + line if line else "", "italic")))
    parts.append(grid)
    relations = [r for r in analysis.relations if r.object == name]
    if relations:
        parts.append(Text.assemble(("\nRelations across devices", "bold underline"),
                                   ("  (packets that meet in one entry)", "dim")))
        for relation in relations:
            parts.append(Text(relation_text(relation)))
    followers = sorted({a.object for a in analysis.accesses if a.object != name and any(
        part.split("~")[0].rpartition(".")[0] == name for part in a.key_fields)})
    if followers:
        parts.append(Text("\nReached through it", style="bold underline"))
        parts.append(Text(", ".join(followers) + f" use an index or value {name} gives"))
    return Group(*parts)
