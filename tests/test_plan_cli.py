"""`maestro plan`: summary, JSON, refusals as one-line errors (exit 2)."""
import json
from pathlib import Path

import pytest

from analyses.planner import Plan
from workbench.cli import build_parser, main

FIXTURES = Path(__file__).parent / "fixtures" / "analysis"


def run_cli(capsys, *argv):
    try:
        status = main(list(argv))
    except SystemExit as exc:  # refused by the argument parser
        status = exc.code
    out, err = capsys.readouterr()
    return status, out, err


def test_plan_is_a_subcommand():
    help_text = build_parser().format_help()
    assert "plan" in help_text


def test_plan_from_a_saved_analysis_writes_json(capsys, tmp_path):
    target = tmp_path / "fw-plan.json"
    status, out, err = run_cli(capsys, "plan", "fw", "--cores", "4", "--analysis", str(FIXTURES / "fw.json"),
                               "--json", str(target))
    assert status == 0, err
    assert "shared-nothing" in out and "flow_map" in out and "unsat" in out
    plan = Plan.load(target)
    assert plan.nf == "fw" and plan.cores == 4 and plan.strategy == "shared-nothing"
    assert json.loads(target.read_text())["rss"]["0"]["key_bytes"] == 52


def test_options_reach_the_planner(capsys, tmp_path):
    target = tmp_path / "hhh.json"
    status, out, err = run_cli(capsys, "plan", "hhh", "--cores", "8", "--nic", "82599", "--strategy", "auto",
                               "--set", "prefix16_map=lock", "--analysis", str(FIXTURES / "hhh.json"),
                               "--json", str(target))
    assert status == 0, err
    plan = Plan.load(target)
    assert plan.nic == "82599" and len(plan.reta) == 128 and plan.strategy == "mixed"
    assert plan.object("prefix16_chain").decision == "lock"
    assert "--set prefix16_map=lock" in plan.object("prefix16_map").reason
    assert "lock" in out and "prefix24_map" in out


def test_lock_plan_shows_the_conflict(capsys):
    status, out, err = run_cli(capsys, "plan", "bridge", "--cores", "4", "--analysis",
                               str(FIXTURES / "bridge.json"))
    assert status == 0, err
    assert "locks" in out and "eth.src" in out and "not sharded" in out


@pytest.mark.parametrize("argv, message", [
    (["plan", "bridge", "--cores", "4", "--set", "mac_map=shard"], "does not hash"),
    (["plan", "bridge", "--cores", "4", "--strategy", "shared-nothing"], "cannot honour --strategy"),
    (["plan", "fw", "--cores", "4", "--set", "flow_map"], "expected OBJECT=DECISION"),
    (["plan", "fw", "--cores", "4", "--set", "flow_map=replicate"], "written while processing"),
    (["plan", "fw", "--cores", "0"], "--cores: 0 must be >= 1"),
    (["plan", "fw", "--cores", "1024"], "cores must be in 1..512"),
])
def test_refusals_are_one_line_errors(capsys, argv, message):
    nf = argv[1]
    status, out, err = run_cli(capsys, *argv, "--analysis", str(FIXTURES / f"{nf}.json"))
    assert status == 2
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_analysis_of_another_nf_is_refused(capsys):
    status, _, err = run_cli(capsys, "plan", "nat", "--cores", "4", "--analysis", str(FIXTURES / "fw.json"))
    assert status == 2 and "analysis of fw, not nat" in err


def test_missing_analysis_file_is_refused(capsys, tmp_path):
    status, _, err = run_cli(capsys, "plan", "fw", "--cores", "4", "--analysis", str(tmp_path / "none.json"))
    assert status == 2 and "cannot read analysis report" in err


def test_plan_runs_the_analysis_when_no_report_is_given(capsys, tmp_path):
    """The one live analysis of this file (angr, a few seconds)."""
    target = tmp_path / "pol.json"
    status, out, err = run_cli(capsys, "plan", "pol", "--cores", "4", "--json", str(target))
    assert status == 0, err
    plan = Plan.load(target)
    assert plan.strategy == "shared-nothing" and plan.object("dst_map").decision == "shard"
    assert [f.split("[")[0].split("/")[0] for f in plan.rss[1].depends_on] == ["ipv4.dst"]
