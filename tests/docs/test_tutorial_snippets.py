"""The ```python blocks of the documentation pages run, page by page, in order."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"

# A fenced block that starts with ```python at the left margin and ends with ```.
_BLOCK = re.compile(r"^```python[^\S\n]*\n(.*?)^```[^\S\n]*$", re.MULTILINE | re.DOTALL)
# Pages whose code is generated API documentation rather than runnable examples.
_SKIP = ("api/",)
# Pages that must carry runnable code; a page dropping out of this list would
# otherwise pass silently.
TUTORIALS = (
    "index.md",
    "tutorials/soft-value-iteration.md",
    "tutorials/custom-loss.md",
    "tutorials/property-suite.md",
)


def python_blocks(page: str) -> list[str]:
    return _BLOCK.findall((DOCS / page).read_text(encoding="utf-8"))


def pages_with_code() -> list[str]:
    pages = []
    for path in sorted(DOCS.rglob("*.md")):
        page = path.relative_to(DOCS).as_posix()
        if not page.startswith(_SKIP) and python_blocks(page):
            pages.append(page)
    return pages


def test_extraction_finds_the_tutorial_code():
    found = pages_with_code()
    for page in TUTORIALS:
        assert page in found, f"{page} has no ```python block"
    assert len(python_blocks("tutorials/custom-loss.md")) >= 4


@pytest.mark.parametrize("page", pages_with_code())
def test_page_code_runs(page, tmp_path):
    source = "\n\n".join(
        f"# --- {page}, block {i + 1} ---\n{block}" for i, block in enumerate(python_blocks(page))
    )
    script = tmp_path / "snippets.py"
    script.write_text(source, encoding="utf-8")
    start = time.perf_counter()
    # One fresh interpreter per page, run from an empty directory so that
    # nothing (Hypothesis databases, caches) is written into the repository.
    result = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    elapsed = time.perf_counter() - start
    assert result.returncode == 0, (
        f"the code of {page} failed after {elapsed:.1f} s:\n{result.stdout[-3000:]}\n"
        f"{result.stderr[-6000:]}"
    )
