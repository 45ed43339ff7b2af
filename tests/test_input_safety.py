"""Hostile and malformed input (issue 12): nothing injected into generated
files runs, bad input gets one clear line and exit code 2, no traceback."""
import dataclasses
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


# --- frame lengths: jumbo frames are carried, longer ones refused up front -------------------------

#: 64 to 9,216 bytes, around the old 2,048-byte mbuf data room and beyond.
FRAME_SIZES = (64, 1500, 2048, 2049, 3000, 4096, 9000, 9216)


def frames_of_sizes(sizes=FRAME_SIZES, per_size=40):
    """Sessions traffic at each size, in one trace with increasing times."""
    from codegen.trace import TracePacket
    from codegen.traffic import generate as traffic

    packets = [p for size in sizes for p in traffic("sessions", 10, per_size, seed=size, size=size)]
    return [TracePacket(p.device, 1000 * i, p.data) for i, p in enumerate(packets)]


def test_jumbo_frames_run_under_asan_and_match_the_sequential_nf(tmp_path):
    """Frames over 2,048 bytes used to be copied into the mbuf unchecked
    (a segfault at 4,096 bytes, silent corruption at 2,049-3,000)."""
    from codegen.program import run
    from codegen.verify import verify_program

    program = generate("fw", fw_plan(), analysis("fw"), tmp_path / "fw")
    build(program, sanitize="-fsanitize=address,undefined")
    packets = frames_of_sizes()
    result = run(program, packets=packets, once=True)
    assert result.final["processed_once"] == len(packets) and result.final["conserved"] is True
    assert "AddressSanitizer" not in result.stderr and "runtime error" not in result.stderr
    verdict, _ = verify_program(program, analysis("fw"), packets)
    assert verdict.equivalent and verdict.identical == len(packets), verdict.to_json()


def test_frames_longer_than_a_jumbo_frame_are_refused_with_their_index(tmp_path):
    from codegen.program import RunError, run
    from codegen.trace import TracePacket, write_replay

    program = generate("fw", fw_plan(), analysis("fw"), tmp_path / "fw")
    build(program)
    packets = frames_of_sizes((64,), per_size=3) + [TracePacket(0, 10**6, bytes(9217))]
    with pytest.raises(RunError, match="packet 3: 9217 bytes; the simulated NIC carries frames of up to 9216"):
        run(program, packets=packets, once=True)
    replay = tmp_path / "long.replay"  # the C side checks too, whoever writes the replay file
    write_replay(replay, packets)
    with pytest.raises(RunError, match="packet 3: 9217 bytes"):
        run(program, replay=replay, once=True)


# --- the CLI over bad input: exit code 2, one line, no traceback -----------------------------------


def pcapng_with_tsoffset(path, seconds):
    """A one-packet pcapng trace whose interface has if_tsoffset = seconds."""
    import struct

    import dpkt

    from codegen.trace import TracePacket, _pcapng_header, write_pcapng

    write_pcapng(path, [TracePacket(0, 5, bytes(60))], devices=1)
    body = path.read_bytes()[len(_pcapng_header(1)):]
    opt = dpkt.pcapng.PcapngOptionLE
    shb = dpkt.pcapng.SectionHeaderBlockLE(opts=[opt()])
    idb = dpkt.pcapng.InterfaceDescriptionBlockLE(
        linktype=1, snaplen=65535,
        opts=[opt(code=dpkt.pcapng.PCAPNG_OPT_IF_TSOFFSET, data=struct.pack("<q", seconds)), opt()])
    path.write_bytes(bytes(shb) + bytes(idb) + body)
    return path


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory):
    """Files the table below names: plans, traces, a program folder."""
    import json

    folder = tmp_path_factory.mktemp("bad")
    files = {"folder": folder}
    for name, text in (("plan_object", "{}"), ("plan_array", "[]"), ("plan_null", "null"),
                       ("plan", json.dumps(fw_plan()))):
        files[name] = folder / f"{name}.json"
        files[name].write_text(text)
    files["negative"] = pcapng_with_tsoffset(folder / "negative.pcapng", -10)
    files["huge"] = pcapng_with_tsoffset(folder / "huge.pcapng", 2**62)
    return files


#: (arguments, what the one-line message says); {name} is a file of bad_files.
BAD_INPUTS = [
    (["traffic", "--packets", "10000000000", "-o", "{folder}/t.pcapng"], "must be >= 0 and <= 100000000"),
    (["traffic", "--zipf-s", "nan", "-o", "{folder}/t.pcapng"], "nan is not a finite number"),
    (["traffic", "--malformed-fraction", "nan", "-o", "{folder}/t.pcapng"], "not a finite number"),
    (["traffic", "--rate", "inf", "-o", "{folder}/t.pcapng"], "not a finite number"),
    (["traffic", "--size", "65535", "-o", "{folder}/t.pcapng"], "must be >= 60 and <= 9216"),
    (["traffic", "--flows", "0", "-o", "{folder}/t.pcapng"], "must be >= 1"),
    (["run", "{folder}", "--seconds", "-1"], "argument --seconds: -1 must be >= 0.0"),
    (["run", "{folder}", "--seconds", "nan"], "not a finite number"),
    (["run", "{folder}", "--interval", "0"], "must be > 0.0"),
    (["run", "{folder}", "--eal", ""], "an empty argument string"),
    (["run", "{folder}", "--eal", "'unclosed"], "No closing quotation"),
    (["run", "{folder}", "--packets", "0"], "must be >= 1"),
    (["run", "{folder}"], "not a generated program"),
    (["verify", "fw", "--packets", "-1"], "must be >= 0"),
    (["verify", "fw", "--cores", "0"], "must be >= 1 and <= 64"),
    (["verify", "fw", "--profile", "uniform", "--packets", "0"], "would verify no packet"),
    (["verify", "no/such/nf.c"], "no NF 'no/such/nf.c'"),
    (["bench", "fw", "--cores", "0,2"], "must be >= 1"),
    (["bench", "fw", "--strategy", "yolo"], "'yolo' is not one of"),
    (["bench", "fw", "--traffic", "bursty"], "'bursty' is not one of"),
    (["bench", "fw", "--seconds", "inf"], "not a finite number"),
    (["plan", "fw", "--cores", "0"], "must be >= 1"),
    (["analyze", "fw", "--max-seconds", "0"], "must be > 0.0"),
    (["run-seq", "nop", "/dev/zero"], "/dev/zero: packet 0: not a regular file"),
    (["run-seq", "nop", "{negative}"], "negative.pcapng: packet 0: time -9999995000 ns (interface 0's if_tsoffset -10 s)"),
    (["run-seq", "nop", "{huge}"], "huge.pcapng: packet 0: time 4611686018427387904000005000 ns"),
    (["generate", "fw", "--plan", "{plan_object}", "--analysis", FW_JSON, "--out", "{folder}/p"],
     "the plan's \"cores\" is None"),
    (["generate", "fw", "--plan", "{plan_array}", "--analysis", FW_JSON, "--out", "{folder}/p"],
     "the plan is not a JSON object (got list)"),
    (["generate", "fw", "--plan", "{plan_null}", "--analysis", FW_JSON, "--out", "{folder}/p"],
     "the plan is not a JSON object (got NoneType)"),
    (["generate", "fw", "--plan", "{plan}", "--analysis", FW_JSON, "--out", "/proc/x"],
     "cannot write the program into /proc/x"),
]


@pytest.mark.parametrize("argv, message", BAD_INPUTS, ids=lambda v: " ".join(v) if isinstance(v, list) else "")
def test_the_cli_refuses_bad_input_in_one_line(argv, message, bad_files, capsys):
    argv = [a.format(**bad_files) for a in argv]
    try:
        status = maestro(argv)
    except SystemExit as exc:  # argparse
        status = exc.code
    err = capsys.readouterr().err
    assert status == 2, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert message in " ".join(err.split()), err


# --- generate: the destination folder, the NF's own headers ---------------------------------------


def test_generate_refuses_a_folder_that_holds_something_else(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "Makefile").write_text("all:\n\techo mine\n")
    with pytest.raises(GenerateError, match="is not empty and holds no program maestro generated"):
        generate("fw", fw_plan(), analysis("fw"), folder)
    assert (folder / "Makefile").read_text() == "all:\n\techo mine\n"  # untouched


def test_generate_replaces_a_program_only_with_force_and_lists_only_its_files(tmp_path, capsys):
    import json

    out, plan_file = tmp_path / "prog", tmp_path / "plan.json"
    plan_file.write_text(json.dumps(fw_plan()))
    argv = ["generate", "fw", "--plan", str(plan_file), "--analysis", FW_JSON, "--out", str(out)]
    assert maestro(argv) == 0
    (out / "nf" / "other.c").write_text("int foreign;\n")  # not the program's
    assert maestro(argv) == 2
    assert "--force replaces it" in capsys.readouterr().err
    assert maestro([*argv, "--force"]) == 0
    program = GeneratedProgram.load(out)
    assert "nf/other.c" not in program.files and "nf/fw.c" in program.files


def header_nf(folder: Path, out_device: int) -> Path:
    """An NF whose output device is a macro of a header in a subfolder."""
    (folder / "lib").mkdir(parents=True, exist_ok=True)
    (folder / "lib" / "out.h").write_text(f"#define OUT {out_device}\n")
    (folder / "local.h").write_text('#include "lib/out.h"\n')
    nf = folder / "hdr.c"
    nf.write_text('#include "nf.h"\n#include "local.h"\nbool nf_init(void) { return true; }\n'
                  "int nf_process(uint16_t d, uint8_t *p, uint16_t l, vigor_time_t t) {\n"
                  "  (void)d; (void)p; (void)l; (void)t; return OUT;\n}\n")
    return nf


def test_local_headers_are_in_the_build_key_and_copied_into_the_program(tmp_path):
    from codegen.program import run
    from codegen.reference import run_reference
    from codegen.traffic import generate as traffic

    nf = header_nf(tmp_path / "src", 1)
    packets = traffic("uniform", 4, 8, seed=1)
    assert {r.output for r in run_reference(nf, packets).results} == {1}
    header_nf(tmp_path / "src", 0)  # only the header changes
    assert {r.output for r in run_reference(nf, packets).results} == {0}
    nop = dataclasses.replace(analysis("nop"), nf=nf.stem)  # stateless, as nop is
    doc = plan(nop, cores=2, nic="82599").to_json()
    program = generate(nf, doc, nop, tmp_path / "prog")
    assert {"nf/local.h", "nf/lib/out.h"} <= set(program.files)
    build(program)
    assert run(program, packets=packets, once=True).final["tx"] == len(packets)


def test_bench_names_its_temporary_folder_after_the_nf_stem(tmp_path):
    """`maestro bench path/with/slash.c` built the folder name from the
    argument (a FileNotFoundError traceback)."""
    from codegen.bench import bench

    nf = tmp_path / "path" / "with" / "fw.c"
    nf.parent.mkdir(parents=True)
    nf.write_text(FW_SOURCE.read_text())
    assert bench(str(nf), analysis("fw"), cores=[1], strategies=[], traffic=[]) == []
