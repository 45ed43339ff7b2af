"""Reading the state-call traces runs print (runtime/state/calltrace.h).

A packet's line ends with `calls=<function>,<object>,<site>,<ret>,<out>[,<cell>];...`
where <site> is the offset of a call's return address in the executable;
`read_calls` turns that into `ObservedCall`s with the call's source line,
which addr2line finds in the executable's debug information.
"""
from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from analyses.coverage import ObservedCall
from analyses.errors import MaestroError


def split_calls(line: str) -> tuple[str, str]:
    """(the line without its calls, the calls text or "")."""
    head, sep, calls = line.partition(" calls=")
    return head, calls if sep else ""


def read_calls(texts: list[str], executable: Path) -> list[tuple[ObservedCall, ...]]:
    """The calls of each packet (one text per packet, "" for none); sites
    resolved to "file.c:line" with one addr2line run for the sites this
    build of the executable had not shown before."""
    # path traffic replays the same packets round after round: each text
    # is read once per build of the executable (a rebuild at the same path
    # is another build)
    stat = executable.stat()
    build = _BUILDS.setdefault((str(executable.resolve()), stat.st_mtime_ns, stat.st_size), _Build())
    if len(build.calls) > MAX_KNOWN:
        build.calls.clear()
    # (read into a dict of this call's own: the workbench's worker threads
    # may read calls of the same build at once)
    known = {text: calls for text in set(texts) if (calls := build.calls.get(text)) is not None}
    new = {text: _parse(text) for text in set(texts) - known.keys()}
    missing = {r[2] for records in new.values() for r in records} - build.lines.keys()
    build.lines.update(source_lines(executable, sorted(missing)))
    lines = dict(build.lines)
    for text, records in new.items():
        known[text] = build.calls[text] = tuple(ObservedCall(f, o, lines.get(s, "?"), r, out, c)
                                                for f, o, s, r, out, c in records)
    return [known[text] for text in texts]


#: Texts read once kept per build, at most (then forgotten).
MAX_KNOWN = 1 << 18


@dataclass
class _Build:
    """What one build of an executable's call texts were read as."""

    lines: dict[int, str] = field(default_factory=dict)
    calls: dict[str, tuple[ObservedCall, ...]] = field(default_factory=dict)


_BUILDS: dict[tuple, _Build] = {}


def _parse(text: str) -> list[tuple]:
    records = []
    for item in text.split(";") if text else ():
        fields = item.split(",")
        if fields[0] == "lost":
            raise MaestroError(f"a packet made more state calls than the trace keeps ({fields[1]} lost)")
        if len(fields) not in (5, 6):
            raise MaestroError(f"malformed call record {item!r} in a run's results")
        function, obj, site, ret, out = fields[:5]
        records.append((function, int(obj), int(site, 16), int(ret), int(out),
                        bytes.fromhex(fields[5]) if len(fields) == 6 else None))
    return records


def source_lines(executable: Path, sites: list[int]) -> dict[int, str]:
    """"file.c:line" of each call site (return-address offset) of an executable."""
    if not sites:
        return {}
    out = subprocess.run(["addr2line", "-e", str(executable), *(hex(s - 1) for s in sites)],
                         capture_output=True, text=True).stdout.splitlines()
    lines = {}
    for site, location in zip(sites, out):
        file, _, line = location.partition(" ")[0].rpartition(":")
        lines[site] = f"{Path(file).name}:{line}" if file and line.isdigit() else "?"
    return lines
