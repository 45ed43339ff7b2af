"""Suite-wide check (issue 12): the test run leaves nothing behind — no
maestro temporary folder, no DPDK runtime folder, no generated program
still running.  Checked once, by the process that runs the session (the
xdist controller), after every test has finished; a leftover fails the
run with its path."""
from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from codegen.program import dpdk_runtime_dir

#: Where maestro and the DPDK programs it starts leave folders, and the
#: names they use there (maestro-run-*, maestro-verify-*, maestro<pid>-*,
#: testpmd's tpm*).
LEFTOVER_PATTERNS = ((Path(tempfile.gettempdir()), "maestro-*"),
                     (dpdk_runtime_dir(["--file-prefix=x"]).parent, "maestro*"),
                     (dpdk_runtime_dir(["--file-prefix=x"]).parent, "tpm*"))


def leftovers(basetemp: Path | None) -> set[str]:
    """The folders matching LEFTOVER_PATTERNS, and the processes whose
    command line names `basetemp` (programs the tests built there)."""
    found = {str(p) for folder, pattern in LEFTOVER_PATTERNS for p in folder.glob(pattern)}
    if basetemp is not None:
        running = subprocess.run(["pgrep", "-a", "-f", f"{basetemp}/"], capture_output=True, text=True)
        found |= {f"process {line}" for line in running.stdout.splitlines()}
    return found


def _controller(session) -> bool:
    return not hasattr(session.config, "workerinput")


def pytest_sessionstart(session):
    if _controller(session):
        session.config.stash_leftovers = leftovers(None)


def pytest_sessionfinish(session, exitstatus):
    if not _controller(session) or not hasattr(session.config, "stash_leftovers"):
        return
    factory = getattr(session.config, "_tmp_path_factory", None)
    basetemp = factory.getbasetemp() if factory is not None else None
    new = sorted(leftovers(basetemp) - session.config.stash_leftovers)
    if new:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        message = "the tests left behind:\n  " + "\n  ".join(new)
        if reporter is not None:
            reporter.write_line(message, red=True)
        session.exitstatus = 1
