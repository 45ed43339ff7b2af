"""Soundness of the analysis on NFs written the way engineers write them:
what it cannot follow makes the report incomplete (naming the cause and the
line), state outside the state API is state, and the models real NFs need
(hardware CRC32, checksums, erase-then-get, `|` comparisons) are exact.
Expectations on corpus NFs the verification tests analyze anyway (vfw's
CRC32-hashed 13-byte key and its per-core statistics, quota's retry after
erase, vnat's relations through `|`, proto_limit's global array, rare's
static counter, scrub's block-scope static, connlimit's struct of handles,
csum_loop's payload loop and what its incomplete analysis makes the plan
do) are checked there, on that analysis (tests/test_corpus_programs.py)."""
from __future__ import annotations

import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import pytest

from analyses.angr_env import claripy, crc32c_update
from analyses.errors import MaestroError
from analyses.model import Analysis
from analyses.planner import plan
from analyses.report import _short, analyze
from analyses.symbex import Budgets
from tests.fresh_analysis import fresh_analysis

CORPUS = Path(__file__).parent / "corpus"


@lru_cache(maxsize=None)
def corpus(name: str) -> Analysis:
    return analyze(CORPUS / f"{name}.c")


def nf_file(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / f"{name}.c"
    path.write_text('#include "nf.h"\n' + body)
    return path


# --- models of what real NFs use ---------------------------------------------


def test_crc32c_model_matches_the_hardware_instruction(tmp_path):
    program = tmp_path / "crc.c"
    program.write_text(
        "#include <nmmintrin.h>\n#include <stdio.h>\n#include <stdint.h>\n"
        "int main(void) { uint32_t c = 0x12345678u; uint64_t d = 0x0123456789abcdefull;\n"
        '  printf("%u %u %u %llu\\n", _mm_crc32_u8(c, (uint8_t)d), _mm_crc32_u16(c, (uint16_t)d),\n'
        "         _mm_crc32_u32(c, (uint32_t)d), (unsigned long long)_mm_crc32_u64(c, d)); }\n")
    exe = tmp_path / "crc"
    subprocess.run(["gcc", "-msse4.2", str(program), "-o", str(exe)], check=True)
    hardware = [int(v) for v in subprocess.run([str(exe)], capture_output=True, text=True,
                                               check=True).stdout.split()]
    crc, data = claripy.BVV(0x12345678, 64), claripy.BVV(0x0123456789ABCDEF, 64)
    modelled = [crc32c_update(crc, data, bits).concrete_value for bits in (8, 16, 32, 64)]
    assert modelled == hardware


def test_analysis_is_the_same_when_claripy_was_imported_first():
    """claripy reads its solver-reuse setting when it loads; a program that
    imported it before `analyses` once got fw with 4 paths instead of 21,
    reported complete (frontends shared one solver, each missing constraints)."""
    script = ("import claripy\nfrom analyses.report import analyze\n"
              "a = analyze('fw')\nprint(a.stats.paths, a.stats.complete)")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).parent.parent).stdout.split()
    assert out == [str(fresh_analysis("fw").stats.paths), "True"]


def test_erased_key_is_not_found_again_on_the_same_path(tmp_path):
    nf = nf_file(tmp_path, "erase_get", """
static struct Map *m;
static bool eq(void *a, void *b) { return *(uint32_t *)a == *(uint32_t *)b; }
static unsigned h(void *k) { return *(uint32_t *)k; }
bool nf_init(void) { return map_allocate(eq, h, 64, &m); }
int nf_process(uint16_t device, uint8_t *packet, uint16_t len, vigor_time_t now) {
  (void)now; (void)len;
  uint32_t key = *(uint32_t *)(packet + 26);
  int v;
  void *trash;
  map_erase(m, &key, &trash);
  if (map_get(m, &key, &v)) return NF_FLOOD;  /* impossible */
  return device;
}
""")
    analysis = analyze(nf)
    assert analysis.stats.complete
    assert {p.output for p in analysis.paths} == {"from device"}


# --- what the analysis cannot follow makes it incomplete ---------------------


@pytest.mark.parametrize("instruction, cause", [
    ("unsigned r; _rdrand32_step(&r); x ^= r;", "decoding"),
    ("__m128i v = _mm_set1_epi32(packet[1]); x ^= _mm_cvtsi128_si32(_mm_aesenc_si128(v, v));", "AES"),
])
def test_unsupported_instruction_makes_the_report_incomplete(tmp_path, instruction, cause):
    nf = nf_file(tmp_path, "odd_instruction", f"""
#include <immintrin.h>
bool nf_init(void) {{ return true; }}
__attribute__((target("rdrnd,aes")))
int nf_process(uint16_t device, uint8_t *packet, uint16_t len, vigor_time_t now) {{
  (void)now; (void)len;
  unsigned x = packet[0];
  {instruction}
  return (x & 1) ? device : NF_DROP;
}}
""")
    analysis = analyze(nf)
    assert not analysis.stats.complete
    assert any(w.startswith("incomplete: error at") and cause in w for w in analysis.stats.warnings), \
        analysis.stats.warnings


def test_write_through_an_unresolvable_pointer_makes_it_incomplete(tmp_path):
    nf = nf_file(tmp_path, "wild_write", """
static uint8_t table[16];
bool nf_init(void) { return true; }
int nf_process(uint16_t device, uint8_t *packet, uint16_t len, vigor_time_t now) {
  (void)now; (void)len;
  uint8_t *where = (uint8_t *)(uintptr_t)(*(uint64_t *)(packet + 40));
  *where = 1;  /* an address taken from the packet */
  return table[0] ? device : NF_DROP;
}
""")
    analysis = analyze(nf)
    assert not analysis.stats.complete
    assert any("a write through a pointer" in w and "wild_write.c:8" in w for w in analysis.stats.warnings), \
        analysis.stats.warnings


def test_hash_the_key_probe_cannot_run_makes_it_incomplete(tmp_path):
    nf = nf_file(tmp_path, "aes_hash", """
#include <immintrin.h>
static struct Map *m;
static bool eq(void *a, void *b) { return *(uint32_t *)a == *(uint32_t *)b; }
__attribute__((target("aes")))
static unsigned h(void *k) {
  __m128i v = _mm_set1_epi32(*(int *)k);
  return (unsigned)_mm_cvtsi128_si32(_mm_aesenc_si128(v, v));
}
bool nf_init(void) { return map_allocate(eq, h, 64, &m); }
int nf_process(uint16_t device, uint8_t *packet, uint16_t len, vigor_time_t now) {
  (void)now; (void)len;
  int v;
  return map_get(m, packet + 26, &v) ? device : NF_DROP;
}
""")
    analysis = analyze(nf)
    assert not analysis.stats.complete
    assert any("could not size the key of m" in w and "h()" in w for w in analysis.stats.warnings)
    # and the plan built on it shards nothing
    decided = plan(analysis, 2, "e810")
    assert not decided.complete and set(decided.decisions().values()) == {"lock"}


@pytest.mark.parametrize("capacity", ["-1", "0", "2147483648"])
def test_capacities_the_library_refuses_are_analysis_errors(capacity):
    with pytest.raises(MaestroError, match=r"vfw\.c:\d+ in nf_init\(\).*outside 1\.\.1073741824"):
        analyze(CORPUS / "vfw.c", defines={"FW_CAPACITY": capacity})


def test_time_budget_stops_inside_a_long_exploration():
    analysis = analyze(Path(__file__).parent / "nfs" / "unbounded_loop.c",
                       budgets=Budgets(seconds=3, blocks_per_path=10**9))
    assert not analysis.stats.complete
    assert any("time budget of 3 s" in w for w in analysis.stats.warnings)
    assert analysis.stats.seconds < 3 + 15  # one block past the budget, on a loaded machine


def test_expressions_are_printed_to_a_bounded_depth():
    x = claripy.BVS("x", 32)
    for _ in range(64):  # a DAG whose full print has 2^64 leaves
        x = x + x * 3
    text = _short(x)
    assert len(text) <= 160 and "x_" in text


# --- state outside the state API is state ------------------------------------


def test_global_array_indexed_by_a_packet_field_is_keyed_by_it():
    dst = corpus("dst_limit")
    assert dst.stats.complete, dst.stats.warnings
    hits = [a for a in dst.accesses if a.object == "dst_hits"]
    assert hits and {tuple(a.key_fields) for a in hits} == {("ipv4.dst[3:4]",)}
