"""The saved analyses in tests/fixtures/analysis, which the planner, codegen
and workbench tests load instead of analysing, are what the analysis
reports today.  When this fails after a change to the analysis, review the
difference and run `.venv/bin/python -m tests.fixtures.regenerate`.

Everything in the report is compared except the timings (stats.seconds,
stats.peak_rss_mb), the folder of the NF's source (only its file name is
compared), and the process-wide numbers claripy gives its symbols
("flow_map.found_4_1589_32": the 1589): they depend on what the process
analysed before, and they appear in the paths' calls and conditions and in
derived_from["expr"].  That expression is compared on its first EXPR_CHARS
characters, since the report cuts long ones at a length those numbers
change.  A path's condition is compared as the set of its conjuncts: their
order changes from run to run (their text does not).  Path order is stable
across runs and processes, so lists are compared in order.
"""
import json
import re
from pathlib import Path
from typing import Any

import pytest

from analyses.model import Analysis
from tests.fresh_analysis import SAMPLES, fresh_analysis, per_sample

FIXTURES = Path(__file__).parent / "fixtures" / "analysis"
EXPR_CHARS = 100
#: A claripy symbol's process-wide number: "l4_2_1523_8", "flow_map.found_4_1589_32"
#: (name, the analysis's own counter if any, the number, bits).
_SYMBOL_NUMBER = re.compile(r"_\d+_(\d+)\b")


def _without_numbers(value: Any) -> Any:
    if isinstance(value, str):
        return _SYMBOL_NUMBER.sub(r"_#_\1", value)
    if isinstance(value, list):
        return [_without_numbers(x) for x in value]
    if isinstance(value, dict):
        return {_without_numbers(k): _without_numbers(v) for k, v in value.items()}
    return value


def conjuncts(condition: str) -> list[str]:
    """The top-level `and` operands of a path condition, sorted."""
    parts, depth, start, i = [], 0, 0, 0
    while i < len(condition):
        if condition[i] in "([":
            depth += 1
        elif condition[i] in ")]":
            depth -= 1
        if depth == 0 and condition.startswith(" and ", i):
            parts.append(condition[start:i])
            i = start = i + len(" and ")
            continue
        i += 1
    return sorted(parts + [condition[start:]])


def comparable(doc: dict[str, Any]) -> dict[str, Any]:
    """A report's JSON document without what legitimately changes between runs."""
    doc = _without_numbers(doc)  # also a deep copy
    doc["source"] = Path(doc.get("source", "")).name
    for key in ("seconds", "peak_rss_mb"):
        doc["stats"].pop(key, None)
    for access in doc["accesses"]:
        derived = access.get("derived_from") or {}
        if "expr" in derived:
            derived["expr"] = derived["expr"][:EXPR_CHARS]
    for path in doc["paths"]:
        if "condition" in path:
            path["condition"] = conjuncts(path["condition"])
    return doc


SHOWN_CHARS = 300
SHOWN_LINES = 80


def _short(item: Any) -> str:
    text = json.dumps(item, sort_keys=True)
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 3] + "..."


def differences(saved: dict[str, Any], fresh: dict[str, Any]) -> list[str]:
    """What differs, key by key: for lists of the same length the changed
    fields entry by entry, otherwise the entries lost and gained; changed
    fields of dicts."""
    out = []
    for key in sorted(set(saved) | set(fresh)):
        old, new = saved.get(key), fresh.get(key)
        if old == new:
            continue
        if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
            for i, (a, b) in enumerate(zip(old, new)):
                if a == b:
                    continue
                if isinstance(a, dict) and isinstance(b, dict):
                    out += [f"{key}[{i}].{f}: saved {_short(a.get(f))}, now {_short(b.get(f))}"
                            for f in sorted(set(a) | set(b)) if a.get(f) != b.get(f)]
                else:
                    out.append(f"{key}[{i}]: saved {_short(a)}, now {_short(b)}")
        elif isinstance(old, list) and isinstance(new, list):
            old_items, new_items = [_short(x) for x in old], [_short(x) for x in new]
            out.append(f"{key}: {len(old)} saved, {len(new)} now")
            out += [f"  - {x}" for x in old_items if x not in new_items]
            out += [f"  + {x}" for x in new_items if x not in old_items]
        elif isinstance(old, dict) and isinstance(new, dict):
            out += [f"{key}.{f}: saved {_short(old.get(f))}, now {_short(new.get(f))}"
                    for f in sorted(set(old) | set(new)) if old.get(f) != new.get(f)]
        else:
            out.append(f"{key}: saved {_short(old)}, now {_short(new)}")
    return out


@pytest.mark.parametrize("nf", per_sample(SAMPLES))
def test_fixture_is_what_the_analysis_reports(nf):
    saved_path = FIXTURES / f"{nf}.json"
    saved = comparable(json.loads(saved_path.read_text()))
    fresh = comparable(fresh_analysis(nf).to_json())
    problems = differences(saved, fresh)
    if len(problems) > SHOWN_LINES:
        problems = problems[:SHOWN_LINES] + [f"... and {len(problems) - SHOWN_LINES} more"]
    assert not problems, (
        f"{saved_path.relative_to(Path(__file__).parent.parent)} is stale "
        "(run `.venv/bin/python -m tests.fixtures.regenerate " + nf + "` once the change is "
        "reviewed):\n" + "\n".join(problems))
    # made in another process, and saved: the digest plans record is the same
    assert Analysis.load(saved_path).digest() == fresh_analysis(nf).digest()
    assert fresh_analysis(nf).inputs["source"] and fresh_analysis(nf).inputs["opt"] == "-O2"


def test_fixtures_load_as_reports():
    """One saved analysis per sample NF, each rebuilding into an Analysis
    (the schema the tests built on it rely on)."""
    samples = Path(__file__).parent.parent / "sample_nfs"
    assert sorted(p.stem for p in samples.glob("*.c")) == sorted(SAMPLES)
    assert sorted(p.stem for p in FIXTURES.glob("*.json")) == sorted(SAMPLES)
    for nf in SAMPLES:
        analysis = Analysis.load(FIXTURES / f"{nf}.json")
        assert analysis.nf == nf and analysis.stats.complete
