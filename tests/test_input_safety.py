"""Hostile and malformed input (issue 12): nothing injected into generated
files runs, bad input gets one clear line and exit code 2, no traceback."""
import subprocess
from functools import lru_cache
from pathlib import Path

import pytest

from analyses.model import Analysis
from analyses.planner import plan
from codegen.generator import GeneratedProgram, GenerateError, generate
from codegen.program import BuildError, build
from codegen.safe_text import UnsafeTextError, c_comment, c_string, makefile_define_flags
from workbench.cli import main as maestro

FIXTURES = Path(__file__).parent / "fixtures" / "analysis"
FW_JSON = str(FIXTURES / "fw.json")
FW_SOURCE = Path(__file__).parent.parent / "sample_nfs" / "fw.c"


@lru_cache(maxsize=None)
def analysis(nf):
    return Analysis.load(FIXTURES / f"{nf}.json")


def fw_plan():
    return plan(analysis("fw"), cores=2, nic="82599").to_json()


# --- injection into generated files ---------------------------------------------------------------


def test_an_nf_named_with_make_syntax_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "INJECTED"
    evil = tmp_path / f"evil$(shell touch {marker.name}).c"
    evil.write_text(FW_SOURCE.read_text())
    with pytest.raises(UnsafeTextError, match="cannot be used in a generated program: it must be letters"):
        generate(evil, fw_plan(), analysis("fw"), tmp_path / "out")
    assert not (tmp_path / "out").exists()
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(__import__("json").dumps(fw_plan()))
    assert maestro(["generate", str(evil), "--plan", str(plan_file), "--analysis", FW_JSON,
                    "--out", str(tmp_path / "out")]) == 2
    assert not marker.exists() and not (tmp_path / "out").exists()


def test_a_define_value_with_make_syntax_reaches_the_compiler_as_text(tmp_path):
    """`-D 'FW_CAPACITY=1024 $(shell touch X)'`: make expands nothing; the
    compiler sees the text (and rejects it), no file is created."""
    marker = tmp_path / "INJECTED"
    program = generate("fw", fw_plan(), analysis("fw"), tmp_path / "out",
                       defines={"FW_CAPACITY": f"1024 $(shell touch {marker}) `touch {marker}`"})
    with pytest.raises(BuildError):
        build(program)
    assert not marker.exists()


def test_define_values_a_makefile_cannot_hold_are_refused(tmp_path):
    for name, value in (("FW_CAPACITY", "1\nall:\n\ttouch X"), ("FW_CAPACITY", "1 # x"),
                        ("A B", "1"), ("$(X)", "1")):
        with pytest.raises(UnsafeTextError, match="bad -D"):
            generate("fw", fw_plan(), analysis("fw"), tmp_path / "out", defines={name: value})
    assert not (tmp_path / "out").exists()
    assert makefile_define_flags({"S": "\"a b\"", "N": "(1<<4)"}) == "'-DN=(1<<4)' '-DS=\"a b\"'"


def test_c_strings_and_comments_hold_any_text(tmp_path):
    """What c_string writes compiles (-Wall -Wextra -Werror) back to the same bytes."""
    texts = ['plain', 'quote " back \\ slash', "??=trigraph?", "new\nline\ttab", "é ü \x7f \x01",
             "*/ int x; /*"]
    body = "\n".join(f'  puts("{c_string(t)}"); /* {c_comment(t)} */' for t in texts)
    source = tmp_path / "strings.c"
    source.write_text(f"#include <stdio.h>\nint main(void) {{\n{body}\n  return 0;\n}}\n")
    exe = tmp_path / "strings"
    subprocess.run(["gcc", "-std=gnu11", "-Wall", "-Wextra", "-Werror", str(source), "-o", str(exe)],
                   check=True)
    out = subprocess.run([str(exe)], capture_output=True, check=True).stdout
    assert out == "".join(t + "\n" for t in texts).encode()


def test_a_program_json_naming_files_outside_its_folder_is_refused(tmp_path):
    program = generate("fw", fw_plan(), analysis("fw"), tmp_path / "out")
    doc = program.to_json()
    for key, value in (("nf", "../../etc/passwd"), ("nf", "x$(shell id)"), ("strategy", "yolo"),
                       ("files", ["../outside.c"]), ("defines", {"A": "1 # x"}), ("cores", "many")):
        (program.directory / "program.json").write_text(__import__("json").dumps({**doc, key: value}))
        with pytest.raises(GenerateError, match="program.json: not a generated program"):
            GeneratedProgram.load(program.directory)
