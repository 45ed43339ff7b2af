"""The footer: the keys that apply now, as many as fit.

Textual's footer lists every shown binding and cuts what does not fit.
This one drops the least needed entries first when the terminal is narrow
(the help, F1, lists every key): the editor key, then save, then the
palette key; the screen's own keys, Tab, Esc, the steps, help and quit
always stay.
"""
from __future__ import annotations

from collections import defaultdict

from textual import events
from textual.app import ComposeResult
from textual.widgets import Footer
from textual.widgets._footer import FooterKey, FooterLabel, KeyGroup

#: Binding ids dropped first (in this order) when the footer is too narrow.
OPTIONAL = ("app.edit", "session.save")
#: Columns the palette key takes at the right edge.
PALETTE_WIDTH = 14


class WorkbenchFooter(Footer):
    """A compact footer that fits its width."""

    def __init__(self) -> None:
        super().__init__(compact=True)
        self.fitted_width = 0
        self.shown: tuple = ()  # what the last composition showed
        self.pending = False

    def bindings_changed(self, screen) -> None:
        """Recompose once per burst of binding changes, and only when what
        it shows changed (a focus change refreshes the bindings several times)."""
        self._bindings_ready = True
        if not screen.app.app_focus or not self.is_attached or screen is not self.screen or self.pending:
            return
        self.pending = True
        self.call_after_refresh(self._refresh_keys)

    async def _refresh_keys(self) -> None:
        self.pending = False
        if self._signature() != self.shown:
            await self.recompose()

    def _signature(self) -> tuple:
        width = self.size.width or self.app.size.width
        return (width, tuple((key, b.id, b.description, enabled)
                             for key, (_, b, enabled, _) in self.screen.active_bindings.items() if b.show))

    def on_resize(self, event: events.Resize) -> None:
        if event.size.width != self.fitted_width and self._bindings_ready and not self.pending:
            self.pending = True
            self.call_after_refresh(self._refresh_keys)

    def _entries(self) -> list[tuple[object, list[tuple]]]:
        """(group or None, [(binding, enabled, tooltip)]) in footer order."""
        by_action: defaultdict[str, list] = defaultdict(list)
        for _, binding, enabled, tooltip in self.screen.active_bindings.values():
            if binding.show:
                by_action[binding.action].append((binding, enabled, tooltip))
        entries: list[tuple[object, list[tuple]]] = []
        for bindings in by_action.values():
            group = bindings[0][0].group
            if group is not None and entries and entries[-1][0] is group:
                entries[-1][1].append(bindings[0])
            else:
                entries.append((group, [bindings[0]]))
        return entries

    def _width(self, group, items: list[tuple]) -> int:
        keys = [self.app.get_key_display(b) for b, _, _ in items]
        if group is not None and len(items) > 1:
            return sum(len(k) + (0 if group.compact else 1) for k in keys) + len(group.description) + 2
        binding = items[0][0]
        return len(keys[0]) + 1 + len(binding.description) + 1

    def compose(self) -> ComposeResult:
        if not self._bindings_ready:
            return
        width = self.size.width or self.app.size.width
        self.fitted_width = width
        self.shown = self._signature()
        entries = self._entries()
        palette = self.show_command_palette and self.app.ENABLE_COMMAND_PALETTE
        room = width - (PALETTE_WIDTH if palette else 0)
        total = sum(self._width(g, items) for g, items in entries)
        for binding_id in OPTIONAL:
            if total <= room:
                break
            for entry in [e for e in entries if e[0] is None and e[1][0][0].id == binding_id]:
                total -= self._width(*entry)
                entries.remove(entry)
        if palette and total > room:  # the palette key goes last (F1 and ctrl+p still work)
            palette, room = False, width
        for group, items in entries:
            if group is not None and len(items) > 1:
                with KeyGroup(classes="-compact" if group.compact else ""):
                    for binding, enabled, tooltip in items:
                        yield FooterKey(binding.key, self.app.get_key_display(binding), "", binding.action,
                                        disabled=not enabled, tooltip=tooltip or binding.description,
                                        classes="-grouped").data_bind(compact=Footer.compact)
                yield FooterLabel(group.description)
            else:
                binding, enabled, tooltip = items[0]
                yield FooterKey(binding.key, self.app.get_key_display(binding), binding.description,
                                binding.action, disabled=not enabled,
                                tooltip=tooltip).data_bind(compact=Footer.compact)
        if palette:
            try:
                _, binding, enabled, tooltip = self.screen.active_bindings[self.app.COMMAND_PALETTE_BINDING]
            except KeyError:
                return
            yield FooterKey(binding.key, self.app.get_key_display(binding), binding.description,
                            binding.action, classes="-command-palette", disabled=not enabled,
                            tooltip=binding.tooltip or binding.description)
