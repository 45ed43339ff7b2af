"""Path completion for inputs: suggests the rest of a file or folder name."""
from __future__ import annotations

import os
from pathlib import Path

from textual.suggester import Suggester


class PathSuggester(Suggester):
    """Completes the last part of a path to the first matching entry (folders
    get a trailing slash); `suffixes` limits files to those endings."""

    def __init__(self, suffixes: tuple[str, ...] = (".c",)) -> None:
        super().__init__(use_cache=False, case_sensitive=True)
        self.suffixes = suffixes

    async def get_suggestion(self, value: str) -> str | None:
        if not value:
            return None
        folder, _, stem = value.rpartition("/")
        base = Path(os.path.expanduser(folder or ".")) if folder or not value.startswith("/") else Path("/")
        try:
            entries = sorted(os.scandir(base), key=lambda e: e.name)
        except OSError:
            return None
        for entry in entries:
            if not entry.name.startswith(stem) or entry.name == stem or entry.name.startswith("."):
                continue
            is_dir = entry.is_dir()
            if not is_dir and self.suffixes and not entry.name.endswith(self.suffixes):
                continue
            prefix = f"{folder}/" if folder or value.startswith("/") else ""
            return prefix + entry.name + ("/" if is_dir else "")
        return None
