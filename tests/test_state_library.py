"""The state library (codegen/runtime/state) under ASan and UBSan.

tests/c/test_state.c holds the cases; each runs as its own pytest test.
"""
import os
import re
import subprocess
from pathlib import Path

import pytest

from codegen.runtime import INCLUDE_DIR, STATE_DIR, STATE_SOURCES

C_TESTS = Path(__file__).parent / "c" / "test_state.c"
CASES = re.findall(r'\{"(\w+)", test_\w+\}', C_TESTS.read_text())


@pytest.fixture(scope="module")
def test_binary(tmp_path_factory):
    exe = tmp_path_factory.mktemp("state") / "test_state"
    subprocess.run(
        ["gcc", "-std=gnu11", "-O1", "-g", "-Wall", "-Wextra", "-Werror",
         "-fsanitize=address,undefined", "-fno-sanitize-recover=all",
         f"-I{INCLUDE_DIR}", f"-I{STATE_DIR}", str(C_TESTS), *map(str, STATE_SOURCES),
         "-Wl,--wrap=malloc,--wrap=calloc", "-o", str(exe)],
        check=True,
    )
    return exe


def test_every_case_is_listed(test_binary):
    listed = subprocess.run([test_binary, "--list"], capture_output=True, text=True, check=True)
    assert listed.stdout.split() == CASES


@pytest.mark.parametrize("case", CASES)
def test_state_library(test_binary, case):
    # The contract has no free functions: objects live as long as the NF.
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=0")
    run = subprocess.run([test_binary, case], capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == f"ok {case}"
