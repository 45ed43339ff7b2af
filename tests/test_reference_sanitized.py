"""Every sample NF survives malformed traffic under ASan + UBSan.

The runner gives each packet a buffer of exactly its length, so an NF that
reads past a short frame is caught (the first test shows that it is).
"""
import pytest

from analyses.nf_source import sample_names
from codegen.packets import make_packet
from codegen.reference import ReferenceError, run_reference
from codegen.trace import TracePacket
from codegen.traffic import generate


def test_sanitizers_catch_a_read_past_the_frame(tmp_path):
    nf = tmp_path / "overread.c"
    nf.write_text(
        '#include "nf.h"\n'
        "bool nf_init(void) { return true; }\n"
        "int nf_process(uint16_t d, uint8_t *p, uint16_t l, vigor_time_t t) {\n"
        "  (void)t; return p[l] == 0 ? d : NF_DROP;\n"
        "}\n"
    )
    packets = [TracePacket(0, 0, make_packet("10.0.0.1", "10.0.0.2", 1, 2))]
    with pytest.raises(ReferenceError, match="heap-buffer-overflow"):
        run_reference(nf, packets, sanitize=True)


@pytest.fixture(scope="module")
def malformed_trace():
    return generate("malformed", 300, 4000, seed=7, malformed_fraction=0.15)


@pytest.mark.parametrize("name", sample_names())
def test_sample_survives_malformed_traffic(name, malformed_trace):
    run = run_reference(name, malformed_trace, sanitize=True, with_bytes=False)
    totals = run.totals
    assert totals["packets"] == len(malformed_trace) == len(run.results)
    assert totals["invalid"] == 0
    assert totals["forwarded"] + totals["dropped"] + totals["flooded"] == len(malformed_trace)
