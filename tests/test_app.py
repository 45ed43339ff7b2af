"""The workbench's first screen: samples listed, source shown, errors kept on screen."""
import pytest
from textual.widgets import OptionList, Static

from analyses.nf_source import sample_names
from workbench.app import Workbench


@pytest.mark.asyncio
async def test_lists_samples_and_shows_source():
    app = Workbench()
    async with app.run_test(size=(100, 30)) as pilot:
        nf_list = app.screen.query_one("#nf-list", OptionList)
        assert [nf_list.get_option_at_index(i).id for i in range(nf_list.option_count)] == sample_names()
        nf_list.focus()
        await pilot.press("down")
        await pilot.pause()
        shown = str(app.screen.query_one("#nf-summary", Static).content)
        assert sample_names()[nf_list.highlighted] in shown
        assert "nf_process" in app.screen.query_one("#source", Static).content.code


@pytest.mark.asyncio
async def test_unknown_nf_shows_error_and_app_keeps_running(tmp_path):
    app = Workbench(str(tmp_path / "missing.c"))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        error = str(app.screen.query_one("#load-error", Static).content)
        assert "missing.c" in error and "samples:" in error
        app.screen.query_one("#nf-list", OptionList).focus()
        await pilot.press("down")
        await pilot.pause()
        assert "nf_process" in app.screen.query_one("#source", Static).content.code
