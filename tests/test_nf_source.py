"""Finding, compiling and contract-checking NFs; the reference runner's errors."""
import subprocess
import textwrap

import pytest

from analyses.nf_source import NFError, compile_nf, resolve_nf, sample_names, spec_summary
from codegen.packets import make_packet
from codegen.reference import ReferenceError, run_reference
from codegen.runtime import INCLUDE_DIR
from codegen.trace import TracePacket
from workbench.cli import main as maestro

SAMPLES = ["nop", "sbridge", "bridge", "pol", "fw", "nat", "cl", "psd", "lb", "hhh"]


def write_nf(tmp_path, body, name="mynf.c"):
    path = tmp_path / name
    path.write_text('#include "nf.h"\n' + textwrap.dedent(body))
    return path


def test_the_ten_samples_are_there():
    assert sorted(SAMPLES) == sample_names()
    for name in SAMPLES:
        assert spec_summary(resolve_nf(name)), f"{name}.c lacks its opening spec comment"


@pytest.mark.parametrize("name", SAMPLES)
@pytest.mark.parametrize("opt", ["-O0", "-O2"])
def test_samples_compile_warning_free_and_keep_the_contract(tmp_path, name, opt):
    nf = resolve_nf(name)
    subprocess.run(["gcc", "-std=gnu11", opt, "-Wall", "-Wextra", "-Werror", f"-I{INCLUDE_DIR}",
                    "-c", str(nf.path), "-o", str(tmp_path / "nf.o")], check=True)
    compile_nf(nf, tmp_path, opt=opt)


def test_unknown_nf_names_the_samples():
    with pytest.raises(NFError, match=r"no NF 'nosuch'.*samples: .*fw"):
        resolve_nf("nosuch")


def test_compile_error_gives_file_and_line(tmp_path):
    path = write_nf(tmp_path, """
        bool nf_init(void) { return true; }
        int nf_process(uint16_t d, uint8_t *p, uint16_t l, vigor_time_t t) {
          return undeclared_variable;
        }
    """)
    with pytest.raises(NFError) as err:
        compile_nf(resolve_nf(path), tmp_path / "out")
    assert f"{path}:5:" in str(err.value) and "undeclared_variable" in str(err.value)


def test_missing_entry_point_is_named(tmp_path):
    path = write_nf(tmp_path, "bool nf_init(void) { return true; }\n")
    with pytest.raises(NFError, match=r"mynf\.c: defines no function nf_process\(\)"):
        compile_nf(resolve_nf(path), tmp_path / "out")


def test_call_outside_the_contract_names_file_line_function(tmp_path):
    path = write_nf(tmp_path, """
        #include <stdio.h>
        bool nf_init(void) { return true; }
        int nf_process(uint16_t d, uint8_t *p, uint16_t l, vigor_time_t t) {
          (void)p; (void)l; (void)t;
          printf("device %d\\n", d);
          return d;
        }
    """)
    with pytest.raises(NFError) as err:
        compile_nf(resolve_nf(path), tmp_path / "out")
    assert f"{path}:7: in nf_process(): calls printf()" in str(err.value)


def nop_packets(devices):
    return [TracePacket(d, i, make_packet("10.0.0.1", "10.0.0.2", 1, 2)) for i, d in enumerate(devices)]


def test_invalid_output_is_reported_with_the_packet(tmp_path):
    path = write_nf(tmp_path, """
        bool nf_init(void) { return true; }
        int nf_process(uint16_t d, uint8_t *p, uint16_t l, vigor_time_t t) {
          (void)d; (void)p; (void)t;
          return l > 100 ? 7 : 0;
        }
    """)
    packets = nop_packets([0, 0]) + [TracePacket(0, 5, make_packet("10.0.0.1", "10.0.0.2", size=200))]
    with pytest.raises(ReferenceError, match=r"packet 2: nf_process returned 7"):
        run_reference(path, packets)


def test_packet_on_a_device_the_nf_lacks(tmp_path):
    with pytest.raises(ReferenceError, match=r"packet 1 arrives on device 2; the NF has 2"):
        run_reference("nop", nop_packets([0, 2]))


def test_failing_nf_init(tmp_path):
    path = write_nf(tmp_path, """
        bool nf_init(void) { return false; }
        int nf_process(uint16_t d, uint8_t *p, uint16_t l, vigor_time_t t) {
          (void)p; (void)l; (void)t; return d;
        }
    """)
    with pytest.raises(ReferenceError, match="nf_init failed"):
        run_reference(path, nop_packets([0]))


def test_cli_run_seq_prints_diffable_lines(tmp_path, capfd):
    from codegen.trace import write_pcapng

    trace = tmp_path / "t.pcapng"
    write_pcapng(trace, nop_packets([0, 1, 1]))
    assert maestro(["run-seq", "nop", str(trace)]) == 0
    out = capfd.readouterr().out.splitlines()
    assert out[0] == "# maestro-seq packets=3 devices=2"
    assert [line.split()[:4] for line in out[1:4]] == [["0", "0", "1", "60"], ["1", "1", "0", "60"],
                                                       ["2", "1", "0", "60"]]
    assert out[4].startswith("# totals packets=3 forwarded=3 dropped=0 flooded=0 invalid=0 out0=2 out1=1")


def test_cli_errors_are_one_clear_line(tmp_path, capfd):
    bad = tmp_path / "bad.pcapng"
    bad.write_bytes(b"not a trace at all")
    assert maestro(["run-seq", "nop", str(bad)]) == 2
    err = capfd.readouterr().err
    assert "bad.pcapng" in err and "Traceback" not in err
    assert maestro(["run-seq", "nosuch", str(bad)]) == 2
    assert "no NF 'nosuch'" in capfd.readouterr().err
