"""Command palette entries for the workbench, offered only when they apply."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol, cast

from textual.command import DiscoveryHit, Hit, Hits, Provider


@dataclass(frozen=True)
class Command:
    """A palette entry: its title, a line of help, and what it runs."""

    title: str
    help: str
    run: Callable[[], object]


class CommandSource(Protocol):
    def palette_commands(self) -> list[Command]: ...


class WorkbenchCommands(Provider):
    """Asks the app which commands apply now (the steps that are ready,
    analyze or cancel, save or open a session, explain the plan...)."""

    def _commands(self) -> list[Command]:
        return cast(CommandSource, self.app).palette_commands()

    async def discover(self) -> Hits:
        for command in self._commands():
            yield DiscoveryHit(command.title, command.run, help=command.help)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for command in self._commands():
            score = matcher.match(command.title)
            if score > 0:
                yield Hit(score, matcher.highlight(command.title), command.run, help=command.help)
