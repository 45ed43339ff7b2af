"""The CLI from plan to verified parallel program: plan, generate, build, run, verify, bench."""
import json
from pathlib import Path

from codegen import program as program_module
from workbench.cli import main as maestro

FW = str(Path(__file__).parent / "fixtures" / "analysis" / "fw.json")


def test_plan_generate_build_run_verify_bench(tmp_path, capsys, monkeypatch):
    plan, out = tmp_path / "fw.plan.json", tmp_path / "fw-par"
    assert maestro(["plan", "fw", "--cores", "2", "--nic", "82599", "--analysis", FW,
                    "--json", str(plan)]) == 0
    assert maestro(["generate", "fw", "--plan", str(plan), "--analysis", FW, "--out", str(out)]) == 0
    assert "strategy sn, 2 cores" in capsys.readouterr().out
    assert maestro(["build", str(out)]) == 0
    assert (out / "nf-sn").is_file()
    # On a machine with fewer CPUs than worker cores the lcores share them
    # (DPDK alone says "lcore 1 unavailable"), with a warning.
    monkeypatch.setattr(program_module, "online_cpus", lambda: [0])
    assert program_module.lcore_args(2) == ["--lcores", "(0-1)@(0)"]
    capsys.readouterr()
    assert maestro(["run", str(out), "--traffic", "zipf", "--packets", "20000", "--seconds", "1.2",
                    "--interval", "0.4"]) == 0
    monkeypatch.undo()
    captured = capsys.readouterr()
    assert "2 worker cores but this machine has 1 CPU(s) online" in captured.err
    lines = captured.out.splitlines()
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


def test_generate_refuses_a_plan_for_another_nf_analysis_or_keys(tmp_path, capsys):
    """generate checks the plan it is given: made for this NF, from this
    analysis, with RSS keys z3 still proves for its sharded objects."""
    plan = tmp_path / "fw.plan.json"
    assert maestro(["plan", "fw", "--cores", "2", "--analysis", FW, "--json", str(plan)]) == 0
    capsys.readouterr()
    doc = json.loads(plan.read_text())
    assert doc["strategy"] == "shared-nothing" and doc["analysis_digest"]

    nat = str(Path(FW).with_name("nat.json"))
    assert maestro(["generate", "nat", "--plan", str(plan), "--analysis", nat,
                    "--out", str(tmp_path / "nat")]) == 2
    assert "the plan is for the NF 'fw'" in capsys.readouterr().err

    other = json.loads(Path(FW).read_text())
    other["objects"][0]["capacity"] += 1  # another analysis of fw
    changed = tmp_path / "fw-other.json"
    changed.write_text(json.dumps(other))
    assert maestro(["generate", "fw", "--plan", str(plan), "--analysis", str(changed),
                    "--out", str(tmp_path / "other")]) == 2
    assert "made from another analysis of fw" in capsys.readouterr().err

    key = doc["rss"]["0"]["key"]
    doc["rss"]["0"]["key"] = key[:8] + ("0" if key[8] != "0" else "1") + key[9:]  # one nibble edited
    tampered = tmp_path / "tampered.json"
    tampered.write_text(json.dumps(doc))
    assert maestro(["generate", "fw", "--plan", str(tampered), "--analysis", FW,
                    "--out", str(tmp_path / "tampered")]) == 2
    err = capsys.readouterr().err
    assert "RSS keys do not keep its sharded objects on one core" in err and "counterexample" in err
    assert not (tmp_path / "tampered").exists() and not (tmp_path / "nat").exists()

    assert maestro(["generate", "fw", "--plan", str(plan), "--analysis", FW,
                    "--out", str(tmp_path / "ok")]) == 0

