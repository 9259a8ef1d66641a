"""The Reliability page lists exactly the bad-input cases the test tables hold.

The page's tables are written by hand from the tables in the tests; these tests
fail when a case is added, removed or changed without the page following.
`python tests/docs/test_reliability_page.py` prints the rows of the config / CLI
table as the page should hold them.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[2]
PAGE = REPO / "docs" / "reliability.md"
FIXED_MARK = " **(bug, fixed)**"


def _load(relative: str) -> ModuleType:
    path = REPO / relative
    name = "_reliability_" + path.stem
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _section(heading_start: str) -> str:
    """The page's text from the heading that starts with `heading_start` to the next one."""
    text = PAGE.read_text(encoding="utf-8")
    start = text.index(heading_start)
    end = text.find("\n#", start + 1)
    return text[start : end if end != -1 else len(text)]


def _heading_count(section: str) -> int:
    found = re.match(r"[^\n]*, (\d+) cases\)", section)
    assert found, section.splitlines()[0]
    return int(found.group(1))


def table_row(case) -> str:
    """The page's row of one case of tests/test_bad_input_table.py (without the fixed mark)."""
    shown = "Python constructor" if case.kind == "config" else " ".join(case.argv)
    pieces = " · ".join(p.replace("|", "\\|") for p in case.must_contain)
    return f"| `{case.id}` | {case.kind} | `{shown}` | {pieces} |"


def _rows(section: str) -> list[str]:
    return [line.replace(FIXED_MARK, "") for line in section.splitlines() if line.startswith("| `")]


def test_the_config_and_cli_table_matches_its_test_cases():
    cases = _load("tests/test_bad_input_table.py").CASES
    section = _section("### Configs, command line and checkpoints")
    assert _heading_count(section) == len(cases)
    expected = [table_row(case) for case in cases]
    rows = _rows(section)
    assert [r for r in expected if r not in rows] == [], "cases missing or changed on the page"
    assert [r for r in rows if r not in expected] == [], "rows on the page with no case"


def test_the_core_table_counts_add_up_to_its_test_cases():
    cases = _load("tests/core/test_bad_inputs.py").CASES
    section = _section("### Core functions")
    assert _heading_count(section) == len(cases)
    counts = re.findall(r"^\| [^|`]+ \| (\d+) \|", section, flags=re.MULTILINE)
    assert sum(map(int, counts)) == len(cases)


def test_the_first_cli_table_is_counted_right():
    bad_args = _load("tests/adapters/test_cli.py").BAD_ARGS
    found = re.search(r"tests/adapters/test_cli\.py \((\d+) more cases", PAGE.read_text())
    assert found and int(found.group(1)) == len(bad_args)


if __name__ == "__main__":
    for case in _load("tests/test_bad_input_table.py").CASES:
        print(table_row(case))
