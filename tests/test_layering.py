"""analyses/ and codegen/ stay free of UI code: they never import Textual or workbench/;
analyses/ never imports codegen/ either."""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = ("textual", "workbench")
CORE_FILES = sorted(p for folder in ("analyses", "codegen") for p in (ROOT / folder).rglob("*.py"))


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", CORE_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_core_modules_do_not_import_the_ui(path):
    bad = {m for m in imported_modules(path) if m.split(".")[0] in FORBIDDEN}
    assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def test_the_check_sees_ui_imports(tmp_path):
    sample = tmp_path / "x.py"
    sample.write_text("from textual.app import App\nimport workbench.cli\n")
    assert imported_modules(sample) == {"textual.app", "workbench.cli"}


ANALYSES_FILES = sorted((ROOT / "analyses").rglob("*.py"))


@pytest.mark.parametrize("path", ANALYSES_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_analyses_do_not_import_codegen(path):
    """analyses/ is the lowest layer: codegen/ builds on it, never the reverse
    (shared paths and errors live in analyses/locations.py and analyses/errors.py)."""
    bad = {m for m in imported_modules(path) if m.split(".")[0] in ("codegen", *FORBIDDEN)}
    assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"
