"""Step 3, Inspect: the NF's state objects; one object's accesses,
relations and the packet fields that key it."""
from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual import events
from textual.containers import ScrollableContainer, Vertical, VerticalScroll
from textual.widgets import DataTable, Static

from analyses.model import OPS, Analysis
from workbench.screens.base import StepScreen
from workbench.session import Session
from workbench.widgets.access_view import AccessView, source_lines
from workbench.widgets.packet_header import PacketHeader

COLUMNS = ("object", "kind", "capacity", "devices", "operations", "state")


def object_rows(analysis: Analysis) -> list[tuple[str, ...]]:
    """One row per object: name, kind, capacity, devices, operations, written or read-only."""
    rows = []
    for obj in analysis.objects:
        accesses = analysis.accesses_to(obj.name)
        devices = sorted({d for a in accesses for d in a.device})
        ops = sorted({a.op for a in accesses}, key=lambda op: OPS.index(op) if op in OPS else 99)
        rows.append((obj.name, obj.kind, f"{obj.capacity:,}", ",".join(map(str, devices)) or "-",
                     " ".join(ops) or "-", "written" if obj.written else "read-only"))
    return rows


class InspectScreen(StepScreen):
    """Objects table on top; below, the selected object's accesses and its header grid."""

    STEP = "inspect"
    HOME = "#objects"
    BINDINGS = [
        Binding("f", "cycle_device", "Fields/device", id="inspect.device",
                tooltip="Header grid: the fields that key the object on all devices, or on one device"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.analysis: Analysis | None = None
        self.sources: dict[str, list[str]] = {}
        self.selected: str | None = None

    def compose_body(self) -> ComposeResult:
        with Vertical(id="inspect-body"):
            yield Static("", id="inspect-banner")
            table = DataTable(id="objects", cursor_type="row", zebra_stripes=True, classes="pane")
            table.border_title = "State objects"
            yield table
            # Side by side when wide; one scrolling column when narrow (app.tcss):
            # then the column, not the accesses pane, takes the focus and scrolls.
            with ScrollableContainer(id="inspect-detail"):
                with VerticalScroll(id="accesses-pane", classes="pane"):
                    yield AccessView(id="accesses")
                header = PacketHeader(id="packet-header")
                header.border_title = "Packet fields keying it"
                yield header

    def on_resize(self, event: events.Resize) -> None:
        narrow = self.has_class("-narrow")
        self.query_one("#inspect-detail").can_focus = narrow
        self.query_one("#accesses-pane").can_focus = not narrow

    def show_session(self, session: Session) -> None:
        banner = self.query_one("#inspect-banner", Static)
        notes = []
        if session.analysis is not None and not session.analysis.stats.complete:
            notes.append("INCOMPLETE report: some accesses may be missing (see Analyze).")
        if session.source_changed():
            notes.append("The NF source changed since this analysis: analyze it again.")
        banner.update(Text(" ".join(notes), style="bold red") if notes else "")
        banner.display = bool(notes)
        if session.analysis is self.analysis:
            return
        self.analysis = session.analysis
        self.sources = source_lines(session.analysis) if session.analysis else {}
        table = self.query_one("#objects", DataTable)
        table.clear(columns=True)
        table.add_columns(*COLUMNS)
        if self.analysis is None:
            self._show_object(None)
            return
        for row in object_rows(self.analysis):
            table.add_row(*row, key=row[0])
        table.border_subtitle = f"{self.analysis.nf}: {len(self.analysis.objects)} objects"
        self._show_object(self.analysis.objects[0].name if self.analysis.objects else None)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value is not None:
            self._show_object(str(event.row_key.value))

    def _show_object(self, name: str | None) -> None:
        self.selected = name
        self.query_one(AccessView).show(self.analysis, name, self.sources)
        self.query_one(PacketHeader).show(self.analysis, name)
        self.query_one("#accesses-pane").border_title = name or "Accesses"

    def select_object(self, name: str) -> None:
        """Move the table's cursor to object `name`."""
        table = self.query_one("#objects", DataTable)
        table.move_cursor(row=table.get_row_index(name))

    def action_cycle_device(self) -> None:
        self.query_one(PacketHeader).cycle_device()
