"""The Ethernet / IPv4 / L4 headers as a grid, the fields that key a state
object highlighted per device.

Rows are 32 bits wide (one character per bit quarter), like RFC diagrams;
a field keyed on device 0 only, on device 1 only, or on several devices gets
its own colour; fields the object's accesses only branch on are underlined.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from analyses.fields import is_packet_field
from analyses.model import Analysis

#: Characters per byte in the grid (a 32-bit row is 32 wide).
BYTE = 8
#: (layer label, [(field or None, label, bytes)]) per row, 4 bytes a row
#: except Ethernet, whose 14 bytes are drawn on one row.
LAYOUT: tuple[tuple[str, tuple[tuple[str | None, str, int], ...]], ...] = (
    ("Ethernet", (("eth.dst", "dst", 6), ("eth.src", "src", 6), ("eth.type", "type", 2))),
    ("IPv4", (("ipv4.ihl", "ver/ihl", 1), ("ipv4.tos", "tos", 1), ("ipv4.len", "total length", 2))),
    ("", (("ipv4.id", "identification", 2), ("ipv4.frag", "flags/frag", 2))),
    ("", (("ipv4.ttl", "ttl", 1), ("ipv4.proto", "proto", 1), ("ipv4.csum", "checksum", 2))),
    ("", (("ipv4.src", "source address", 4),)),
    ("", (("ipv4.dst", "destination address", 4),)),
    ("L4", (("l4.sport", "source port", 2), ("l4.dport", "dest. port", 2))),
    ("  UDP", ((None, "length", 2), ("udp.csum", "checksum", 2))),
    ("  TCP", ((None, "offset", 1), ("tcp.flags", "flags", 1), ("tcp.csum", "checksum", 2))),
)
ROW_WIDTH = 4 * BYTE
LABEL_WIDTH = 9
#: Background of a field keyed on one device (by device), on several, and of others.
DEVICE_STYLES = ("bold white on #1f5fa8", "bold white on #a8326e", "bold white on #8a6d1f")
SEVERAL_STYLE = "bold black on #5fb55f"
PLAIN_STYLES = ("#a0a0a0 on #2a2a2a", "#a0a0a0 on #363636")
CONDITION_STYLE = "underline #e0c060"


def field_base(part: str) -> tuple[str, str]:
    """(field, mark) of a key part: ("ipv4.src", "/24") for "ipv4.src/24",
    ("l4.dport", "~bswap") for "l4.dport~bswap"."""
    base, _, mark = part.partition("~")
    name, slash, bits = base.partition("/")
    name = name.split("[")[0]
    return name, (f"/{bits}" if slash else "") + (f"~{mark}" if mark else "")


@dataclass(frozen=True)
class HeaderKeys:
    """What keys one object: field -> device -> marks ("", "/24", "~hash"),
    fields its accesses branch on, key parts that are not header fields."""

    keyed: dict[str, dict[int, list[str]]] = field(default_factory=dict)
    conditions: frozenset[str] = frozenset()
    other: tuple[str, ...] = ()

    @classmethod
    def of(cls, analysis: Analysis, name: str) -> "HeaderKeys":
        keyed: dict[str, dict[int, list[str]]] = {}
        conditions: set[str] = set()
        other: list[str] = []
        for access in analysis.accesses_to(name):
            for part in access.key_fields:
                if part.startswith("const:"):
                    continue
                if is_packet_field(part):
                    base, mark = field_base(part)
                    for device in access.device:
                        marks = keyed.setdefault(base, {}).setdefault(device, [])
                        if mark not in marks:
                            marks.append(mark)
                elif part not in other:
                    other.append(part)
            conditions |= {f for f in access.condition_fields if is_packet_field(f)}
        return cls(keyed, frozenset(field_base(c)[0] for c in conditions), tuple(other))

    def devices(self, field_name: str, only: int | None = None) -> set[int]:
        """Devices whose packets key the object by `field_name` (within `only`)."""
        devices = set(self.keyed.get(field_name, {}))
        return devices if only is None else devices & {only}


class PacketHeader(Widget):
    """The header grid for one object (`show`), all devices or one (`device`)."""

    DEFAULT_CSS = """
    PacketHeader {
        width: 43;
        height: auto;
    }
    """

    device: reactive[int | None] = reactive(None)

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.keys = HeaderKeys()
        self.devices = 2
        self.object = ""

    def show(self, analysis: Analysis | None, name: str | None) -> None:
        """Highlight the fields that key object `name` of `analysis`."""
        if analysis is None or name is None:
            self.keys, self.object = HeaderKeys(), ""
        else:
            self.keys, self.object = HeaderKeys.of(analysis, name), name
            self.devices = max(analysis.devices, 1)
        self.refresh(layout=True)

    def cycle_device(self) -> None:
        """All devices -> device 0 -> device 1 ... -> all."""
        if self.device is None:
            self.device = 0
        elif self.device + 1 < self.devices:
            self.device += 1
        else:
            self.device = None

    def style_of(self, field_name: str | None) -> str | None:
        """The highlight style of a field (None: not keyed)."""
        if field_name is None:
            return None
        devices = self.keys.devices(field_name, self.device)
        if not devices:
            return None
        if len(devices) > 1:
            return SEVERAL_STYLE
        return DEVICE_STYLES[min(devices) % len(DEVICE_STYLES)]

    def render(self) -> Text:
        text = Text()
        shade = 0
        for label, cells in LAYOUT:
            text.append(f"{label:<{LABEL_WIDTH}}", style="bold" if label.strip() else "")
            for field_name, name, size in cells:
                width = size * BYTE if label != "Ethernet" else _ethernet_width(size)
                style = self.style_of(field_name)
                marks = ""
                if style and field_name:
                    found = {m for d, ms in self.keys.keyed[field_name].items()
                             if self.device in (None, d) for m in ms if m}
                    marks = " " + " ".join(sorted(found)) if found else ""
                shade += 1
                cell_style = style or PLAIN_STYLES[shade % 2]
                if not style and field_name in self.keys.conditions:
                    cell_style += " " + CONDITION_STYLE
                content = (name + marks)[: width - 1].center(width - 1)
                text.append("▏", style=cell_style)
                text.append(content, style=cell_style)
            text.append("\n")
        text.append(self._legend())
        return text

    def _legend(self) -> Text:
        legend = Text("\n")
        shown = range(self.devices) if self.device is None else [self.device]
        for device in shown:
            legend.append("  ", style=DEVICE_STYLES[device % len(DEVICE_STYLES)])
            legend.append(f" dev {device} ")
        if self.device is None and self.devices > 1:
            legend.append("  ", style=SEVERAL_STYLE)
            legend.append(" several ")
        legend.append("\nunderlined", style=CONDITION_STYLE)
        legend.append(": branched on, not a key")
        if self.object:
            which = "all devices" if self.device is None else f"device {self.device}"
            legend.append(f"\n{self.object}: {which} (f: switch)", style="dim")
        if self.keys.other:
            legend.append("\nalso keyed by: " + ", ".join(self.keys.other), style="dim")
        if self.object and not self.keys.keyed:
            legend.append("\nno packet field keys it directly", style="dim")
        return legend


def _ethernet_width(size: int) -> int:
    """Ethernet's 14 bytes on one 32-wide row: 12 / 12 / 8."""
    return {6: 12, 2: 8}[size]
