"""The Run screen's bench (m) with the real stack: fw's plan generated and
built, then benchmarked on 1 and 2 cores (codegen.bench builds and runs
each program and the null NF in the same shape); the table fills row by
row, the chart gets the points, the session keeps them and shows them
again when reopened; Esc stops a bench part-way, keeps the points measured
and leaves no program running and no folder behind."""
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from textual.widgets import Input, RichLog, Static

from analyses.model import Analysis
from workbench.app import Workbench
from workbench.screens.run import RunScreen
from workbench.session import PlanSettings, Session
from workbench.widgets.bench_view import BenchTable, ScalingChart
from tests.test_tui_flow import SIZE, log_text, private_home, settle, static_text, until  # noqa: F401
from tests.test_tui_program import generate, task

FIXTURES = Path(__file__).parent / "fixtures" / "analysis"


def compiler_cache_dir() -> str:
    """ccache's folder for the real home (the tests give the app a home of
    its own, whose cache would start cold: a build of eight seconds, not one)."""
    if os.environ.get("CCACHE_DIR") or not shutil.which("ccache"):
        return os.environ.get("CCACHE_DIR", "")
    found = subprocess.run(["ccache", "-k", "cache_dir"], capture_output=True, text=True)
    return found.stdout.strip() if found.returncode == 0 else ""


CCACHE_DIR = compiler_cache_dir()


@pytest.fixture
def bench_tmp(tmp_path, monkeypatch):
    """The bench's temporary folders (its programs) under this test's own
    folder, so what it leaves there, and its processes, can be checked;
    builds share the machine's compiler cache."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    if CCACHE_DIR:
        monkeypatch.setenv("CCACHE_DIR", CCACHE_DIR)
    return folder


def running_in(folder: Path) -> list[str]:
    """The processes whose command line names `folder`."""
    found = subprocess.run(["pgrep", "-a", "-f", f"{folder}/"], capture_output=True, text=True)
    return found.stdout.splitlines()


async def generated_fw(app, pilot, build: bool = True) -> RunScreen:
    """fw planned for 2 cores, generated and built (the bench builds
    programs of its own: build=False leaves the session's unbuilt); the Run screen."""
    await until(pilot, lambda: app.session.plan is not None, what="the plan")
    await generate(app, pilot)
    await pilot.press("6")
    await until(pilot, lambda: isinstance(app.screen, RunScreen), what="Run")
    if build:
        await task(app, pilot, "b", "build")
        assert app.session.built
    return app.screen


def bench_fields(screen: RunScreen, cores: str, strategies: str, seconds: str) -> None:
    screen.query_one("#bench-cores", Input).value = cores
    screen.query_one("#bench-strategies", Input).value = strategies
    screen.query_one("#bench-seconds", Input).value = seconds


def fw_session() -> Session:
    return Session(nf="fw", analysis=Analysis.load(FIXTURES / "fw.json"), settings=PlanSettings(cores=2),
                   step="decide")


@pytest.mark.asyncio
async def test_bench_fills_the_table_and_chart_and_the_session_keeps_it(tmp_path, monkeypatch, bench_tmp):
    monkeypatch.chdir(tmp_path)
    app = Workbench(session=fw_session(), keymap_path=None)
    async with app.run_test(size=SIZE) as pilot:
        screen = await generated_fw(app, pilot)
        # The fields offer what the plan allows: up to its cores, seq and shared-nothing.
        assert screen.query_one("#bench-cores", Input).value == "2"
        assert screen.query_one("#bench-strategies", Input).value.split(",")[:2] == ["seq", "sn"]
        bench_fields(screen, "2", "locks-object", "0.5")  # a fw plan does not lock: refused, named
        await pilot.press("m")
        await pilot.pause()
        assert screen.busy is None and "strategies: locks-object" in static_text(screen.query_one("#run-error"))

        bench_fields(screen, "2", "sn", "0.5")
        table, chart = screen.query_one(BenchTable), screen.query_one(ScalingChart)
        await pilot.press("m")
        assert screen.busy == "bench" and screen.bench_view
        # Live: the 1-core row is shown while the 2-core program is still to come.
        await until(pilot, lambda: table.row_count == 1, what="the first row")
        assert screen.busy == "bench" and "bench" not in app.session.results
        await until(pilot, lambda: screen.busy is None and "bench" in app.session.results, what="the bench")
        await settle(app, pilot)

        doc = app.session.results["bench"]
        assert doc["ok"] and not doc["cancelled"] and doc["cores"] == [1, 2] and doc["strategies"] == ["sn"]
        rows = doc["rows"]
        assert [(r["strategy"], r["cores"]) for r in rows] == [("sn", 1), ("sn", 2)]
        assert all(r["mpps"] > 0 and len(r["per_core_mpps"]) == r["cores"] for r in rows), rows
        assert rows[0]["speedup"] == 1.0 and rows[1]["speedup"] > 0
        assert all(r["harness_ns"] and r["nf_ns"] is not None and r["per_core_latency_ns"] for r in rows), rows
        cells = [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]
        assert [c[:2] for c in cells] == [["sn", "1"], ["sn", "2"]]
        assert cells[0][4] == "1.00x" and "/" in cells[1][5] and cells[1][7] != "-", cells
        assert [c for c, _ in chart.series["sn"]] == [1, 2]
        assert "benched: 2 points" in static_text(screen.query_one("#run-status", Static))
        saved = app.session.at_step("run").save(tmp_path / "fw.session.json")
    assert not list(bench_tmp.iterdir()), "the bench left its programs behind"

    # Reopened: the bench's view, its rows, its chart and its fields.
    app = Workbench(session_path=saved, keymap_path=None)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, RunScreen), what="the Run screen")
        await settle(app, pilot)
        screen = app.screen
        table, chart = screen.query_one(BenchTable), screen.query_one(ScalingChart)
        assert screen.bench_view and table.row_count == 2 and [c for c, _ in chart.series["sn"]] == [1, 2]
        assert [str(table.get_row_at(i)[2]) for i in range(2)] == [f"{r['mpps']:.2f}" for r in rows]
        assert screen.query_one("#bench-seconds", Input).value == "0.5"
        assert screen.query_one("#bench-strategies", Input).value == "sn"
        assert "the session's bench: 2 points" in log_text(screen.query_one("#run-log", RichLog))
        await pilot.press("w")  # the run's view, and back
        assert not screen.bench_view and screen.query_one("#throughput").display
        await pilot.press("w")
        assert screen.bench_view


@pytest.mark.asyncio
async def test_esc_stops_a_bench_and_keeps_what_it_measured(tmp_path, monkeypatch, bench_tmp):
    monkeypatch.chdir(tmp_path)
    app = Workbench(session=fw_session(), keymap_path=None)
    async with app.run_test(size=SIZE) as pilot:
        screen = await generated_fw(app, pilot, build=False)
        bench_fields(screen, "2", "sn", "0.5")
        table = screen.query_one(BenchTable)
        log = screen.query_one("#run-log", RichLog)
        await pilot.press("m")
        await until(pilot, lambda: table.row_count == 1 and "sn on 2 core(s)" in log_text(log)
                    and running_in(bench_tmp), what="the 2-core program running")
        await pilot.press("escape")
        await until(pilot, lambda: screen.busy is None, timeout=20, what="the bench to stop")
        await settle(app, pilot)
        assert not running_in(bench_tmp) and not list(bench_tmp.iterdir())
        doc = app.session.results["bench"]
        assert doc["cancelled"] and [(r["strategy"], r["cores"]) for r in doc["rows"]] == [("sn", 1)]
        assert table.row_count == 1
        assert "bench stopped: 1 point" in static_text(screen.query_one("#run-status", Static))
        assert app.current_mode == "run" and app.is_running
