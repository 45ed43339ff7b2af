"""Clean shutdown (issue 12): SIGINT or SIGTERM to `maestro run`,
`maestro bench` and `maestro verify` stops the program, prints its final line, and leaves no
process, no DPDK runtime folder and no temporary folder; builds of one
folder are serialised by a lock."""
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from analyses.model import Analysis
from analyses.planner import plan
from codegen.generator import generate
from codegen.program import build, build_lock, dpdk_runtime_dir, simulated_eal_args

ROOT = Path(__file__).resolve().parents[1]
FW_JSON = ROOT / "tests" / "fixtures" / "analysis" / "fw.json"
FW = Analysis.load(FW_JSON)


@pytest.fixture(scope="module")
def fw_program(tmp_path_factory):
    program = generate("fw", plan(FW, cores=2, nic="82599").to_json(), FW,
                       tmp_path_factory.mktemp("shutdown") / "fw")
    build(program)
    return program


def start_maestro(args, tmp):
    """`maestro ARGS` as its own process, with a private temporary folder."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(tmp)}
    return subprocess.Popen([sys.executable, "-m", "workbench.cli", *args], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_for_line(stream, words, timeout=60):
    """Read `stream` until a line holds `words`; the lines read."""
    lines, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = stream.readline()
        if not line:
            break
        lines.append(line)
        if words in line:
            return lines
    raise AssertionError(f"no line with {words!r} in {lines}")


def assert_nothing_left(process, tmp, program_dir):
    assert not list(tmp.glob("maestro-*")), list(tmp.iterdir())  # no maestro-run-*, -bench-* folder
    left = subprocess.run(["pgrep", "-f", str(program_dir)], capture_output=True, text=True)
    assert left.stdout == "", left.stdout  # no program still running
    runtime = dpdk_runtime_dir([f"--file-prefix=maestro{process.pid}-0"])
    assert not list(runtime.parent.glob(f"maestro{process.pid}-*"))


def test_sigint_stops_maestro_run_with_its_final_line(fw_program, tmp_path):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    process = start_maestro(["run", str(fw_program.directory), "--seconds", "60", "--interval", "0.2",
                             "--packets", "2000", "--flows", "100"], tmp)
    lines = wait_for_line(process.stdout, "Mpps")
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=30)
    lines += out.splitlines()
    assert process.returncode == 0, err
    assert "conserved True" in lines[-1], lines[-3:]
    assert_nothing_left(process, tmp, fw_program.directory)


def test_sigterm_stops_maestro_bench_and_removes_its_folder(tmp_path):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    process = start_maestro(["bench", "fw", "--analysis", str(FW_JSON), "--cores", "1", "--seconds", "60",
                             "--packets", "2000", "--flows", "100"], tmp)
    wait_for_line(process.stderr, "traffic, 60 s")  # the program is starting
    time.sleep(1.5)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 130 and "interrupted" in err and "Traceback" not in err, err
    assert_nothing_left(process, tmp, tmp)


def test_sigterm_stops_maestro_verify_and_removes_its_program(tmp_path):
    """verify of an NF generates its program into a temporary folder; a
    SIGTERM while it makes path traffic or runs the program removes it."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    process = start_maestro(["verify", "fw", "--packets", "200000"], tmp)
    wait_for_line(process.stdout, "(removed after)")  # built; traffic and runs follow
    time.sleep(1.0)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 130 and "interrupted" in err and "Traceback" not in err, err
    assert_nothing_left(process, tmp, tmp)


#: A command whose first interrupt lands in a destructor: Python prints it
#: ("Exception ignored in") and drops it, as it does when SIGTERM arrives
#: while z3 frees a term.
SWALLOWED = """
import os, signal, time
from workbench.cli import terminate_as_interrupt

class Doomed:
    def __del__(self):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.2)  # the handler runs here

try:
    with terminate_as_interrupt():
        Doomed()
        print("past the destructor")
        time.sleep(20)
        print("finished")
except KeyboardInterrupt:
    print("interrupted")
"""


def test_an_interrupt_a_destructor_swallowed_is_raised_again():
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", SWALLOWED], cwd=ROOT, capture_output=True, text=True, timeout=60)
    # the first interrupt was lost in the destructor, raised again later, and
    # no "Exception ignored in ..." traceback shown for it
    assert done.stdout.split() == ["past", "the", "destructor", "interrupted"]
    assert "Exception ignored" not in done.stderr and "Traceback" not in done.stderr
    assert time.monotonic() - started < 15


def test_each_run_gets_its_own_dpdk_prefix():
    first, second = (dpdk_runtime_dir(simulated_eal_args(1, 2)) for _ in range(2))
    assert first != second and first.name.startswith(f"maestro{os.getpid()}-")


def test_builds_of_one_folder_wait_for_each_other(tmp_path):
    program = generate("fw", plan(FW, cores=2, nic="82599").to_json(), FW, tmp_path / "fw")
    done = threading.Event()
    with build_lock(program.directory):
        worker = threading.Thread(target=lambda: (build(program), done.set()))
        worker.start()
        time.sleep(1.0)
        assert not done.is_set() and not list(program.directory.glob("*.o"))  # make has not started
    worker.join(60)
    assert done.is_set() and program.program.is_file()


def test_the_suite_check_names_what_a_test_left_behind(tmp_path):
    """tests/conftest.py fails a run that leaves a maestro temporary folder
    (here, one a test makes and keeps) and names it."""
    (tmp_path / "conftest.py").write_text((ROOT / "tests" / "conftest.py").read_text())
    (tmp_path / "test_leaves.py").write_text(
        "import tempfile\ndef test_keeps_a_folder():\n    tempfile.mkdtemp(prefix='maestro-run-')\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "0",
                           "test_leaves.py"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 1 and "1 passed" in done.stdout, done.stdout
    assert "the tests left behind" in done.stdout and str(tmp_path / "maestro-run-") in done.stdout
