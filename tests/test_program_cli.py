"""The CLI from plan to verified parallel program: plan, generate, build, run, verify, bench."""
import json
from pathlib import Path

from workbench.cli import main as maestro

FW = str(Path(__file__).parent / "fixtures" / "analysis" / "fw.json")


def test_plan_generate_build_run_verify_bench(tmp_path, capsys):
    plan, out = tmp_path / "fw.plan.json", tmp_path / "fw-par"
    assert maestro(["plan", "fw", "--cores", "2", "--nic", "82599", "--analysis", FW,
                    "--json", str(plan)]) == 0
    assert maestro(["generate", "fw", "--plan", str(plan), "--analysis", FW, "--out", str(out)]) == 0
    assert "strategy sn, 2 cores" in capsys.readouterr().out
    assert maestro(["build", str(out)]) == 0
    assert (out / "nf-sn").is_file()
    assert maestro(["run", str(out), "--traffic", "zipf", "--packets", "20000", "--seconds", "1.2",
                    "--interval", "0.4"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert sum("core 0:" in line and "core 1:" in line for line in lines) >= 3
    assert "conserved True" in lines[-1]
    verdict = tmp_path / "verdict.json"
    # the program just built, with its own (82599) plan, on two profiles
    assert maestro(["verify", str(out), "--profile", "zipf", "--profile", "sessions", "--packets", "1500",
                    "--json", str(verdict)]) == 0
    doc = json.loads(verdict.read_text())
    assert doc["equivalent"] is True and doc["program"] == str(out)
    assert doc["plan_digest"] == json.loads((out / "program.json").read_text())["digest"]
    assert [t["traffic"] for t in doc["traces"]] == ["zipf", "sessions"]
    bench = tmp_path / "bench.json"
    assert maestro(["bench", "fw", "--analysis", FW, "--cores", "1,2", "--strategy", "sn",
                    "--seconds", "1", "--packets", "20000", "--json", str(bench),
                    "--plot", str(tmp_path / "fw.png")]) == 0
    rows = json.loads(bench.read_text())["results"]
    assert {(r["strategy"], r["cores"]) for r in rows} == {("sn", 1), ("sn", 2)}
    assert all(r["mpps"] > 0 for r in rows) and (tmp_path / "fw.png").stat().st_size > 1000
    for r in rows:  # the harness alone (the null NF, same shape) and the NF without it
        assert r["harness_ns"] > 0 and r["nf_ns"] == r["ns_per_packet"] - r["harness_ns"]
        assert 0 < r["latency_ns"]["p50"] <= r["latency_ns"]["p99"] <= r["latency_ns"]["p999"]
        assert len(r["per_core_latency_ns"]) == r["cores"] == len(r["state_bytes_per_core"])
    table = capsys.readouterr().out
    assert "harness" in table and "p50/p99" in table


def test_cli_errors_are_clear(tmp_path, capsys):
    assert maestro(["build", str(tmp_path)]) == 2
    assert "not a generated program" in capsys.readouterr().err
    bad = tmp_path / "plan.json"
    bad.write_text("{not json")
    assert maestro(["generate", "fw", "--plan", str(bad), "--analysis", FW, "--out",
                    str(tmp_path / "x")]) == 2
    assert "cannot read plan" in capsys.readouterr().err
