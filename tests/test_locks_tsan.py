"""The lock schemes and the state library under ThreadSanitizer.

DPDK's own libraries defeat TSan, so the generated program's parallel state
layer runs here on plain pthreads (tests/c/lock_harness.c) with fw and nat
traffic: packets of one flow on several threads.  TSan must stay silent,
and the outputs must equal the sequential NF run in the serial order the
threads committed packets in.
"""
import os
import subprocess
from pathlib import Path

import pytest

from analyses.model import Analysis
from analyses.planner import plan
from codegen.generator import generate
from codegen.trace import write_replay
from codegen.traffic import generate as traffic
from codegen.verify import compare, read_parallel_results, reference_in_order, serial_order

HARNESS = Path(__file__).parent / "c" / "lock_harness.c"
FIXTURES = Path(__file__).parent / "fixtures" / "analysis"


def build_harness(program_dir: Path, nf: str) -> Path:
    flags = ["-std=gnu11", "-g", "-O1", "-fsanitize=thread", "-mrtm", "-Wall", "-Wextra", "-Werror",
             f"-I{program_dir}/runtime/include", f"-I{program_dir}/runtime/state",
             f"-I{program_dir}/runtime/dpdk"]
    objects = []
    for worker in range(2):  # the generated Makefile's recipe for NF copies
        copy = program_dir / f"tsan_copy_{worker}.o"
        subprocess.run(["gcc", *flags, "-include", "runtime/dpdk/par_rename.h",
                        f"-Dnf_init=maestro_nf_init_{worker}", f"-Dnf_process=maestro_nf_process_{worker}",
                        "-c", f"nf/{nf}.c", "-o", str(copy) + ".tmp"], cwd=program_dir, check=True)
        subprocess.run(["objcopy", f"--keep-global-symbol=maestro_nf_init_{worker}",
                        f"--keep-global-symbol=maestro_nf_process_{worker}", str(copy) + ".tmp",
                        str(copy)], check=True)
        objects.append(str(copy))
    exe = program_dir / "lock_harness"
    sources = [str(HARNESS), str(program_dir / "config.c"),
               str(program_dir / "runtime/dpdk/parallel_state.c"),
               *map(str, sorted((program_dir / "runtime/state").glob("*.c")))]
    subprocess.run(["gcc", *flags, *sources, *objects, "-lpthread", "-o", str(exe)], check=True)
    return exe


@pytest.mark.parametrize("lock", ["maestro", "object", "global"])
@pytest.mark.parametrize("nf", ["fw", "nat"])
def test_locks_are_race_free_and_serializable(nf, lock, tmp_path):
    analysis = Analysis.load(FIXTURES / f"{nf}.json")
    doc = plan(analysis, cores=2, nic="82599", strategy="locks").to_json()
    program = generate(nf, doc, analysis, tmp_path / "program", strategy="locks", lock=lock)
    exe = build_harness(program.directory, nf)
    trace = traffic("churn", 200, 4000, seed=11)
    replay, results = tmp_path / "trace.replay", tmp_path / "results.txt"
    write_replay(replay, trace)
    env = dict(os.environ, TSAN_OPTIONS="halt_on_error=1 exitcode=66 report_signal_unsafe=0")
    ran = subprocess.run([str(exe), str(replay), "2", str(results)], env=env,
                         capture_output=True, text=True)
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert "ThreadSanitizer" not in ran.stderr
    parallel = read_parallel_results(results)
    assert {p.worker for p in parallel} == {0, 1}
    # each packet says which shared objects it wrote: replies only read
    assert any(p.writes for p in parallel) and any(p.reads and not p.writes for p in parallel)
    verdict = compare(reference_in_order(nf, trace, serial_order(parallel, trace)), parallel, analysis, trace)
    assert verdict.equivalent, verdict.to_json()
