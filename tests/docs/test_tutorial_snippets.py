"""The ```python blocks of the documentation pages run, page by page, in order.

A block that prints must show what it prints: the page follows it with a
```` ```text title="Output" ```` block, and the printed text must match it
(doctest rules: `...` stands for any text, so numbers that depend on the
machine or library versions can be elided).
"""

from __future__ import annotations

import doctest
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
# Any fenced block at the left margin: its info string and its body.
_FENCE = re.compile(r"^```([^\n]*)\n(.*?)^```[^\S\n]*$", re.MULTILINE | re.DOTALL)
_OUTPUT_INFO = re.compile(r'^text\s+title="Output"\s*$')
# Printed after each block, so that the output of one run splits into blocks.
_MARKER = "@@softeq-docs-block-end-{}@@"
# Generated pages, which hold no hand-written examples (the API pages' examples
# live in docstrings and run as doctests).
_SKIP = ("api/core/", "api/adapters/")
# Pages that must carry runnable code; a page dropping out of this list would
# otherwise pass silently.
TUTORIALS = (
    "index.md",
    "tutorials/soft-value-iteration.md",
    "tutorials/custom-loss.md",
    "tutorials/property-suite.md",
    "tutorials/porting.md",
    "getting-started.md",
    "api/properties.md",
)


def python_blocks(page: str) -> list[str]:
    return _BLOCK.findall((DOCS / page).read_text(encoding="utf-8"))


def shown_outputs(page: str) -> list[str | None]:
    """For each ```python block of `page`, the Output block right after it, or None."""
    text = (DOCS / page).read_text(encoding="utf-8")
    fences = list(_FENCE.finditer(text))
    shown = []
    for i, fence in enumerate(fences):
        if fence.group(1).strip() != "python":
            continue
        after = fences[i + 1] if i + 1 < len(fences) else None
        adjacent = after is not None and not text[fence.end() : after.start()].strip()
        if adjacent and _OUTPUT_INFO.match(after.group(1).strip()):
            shown.append(after.group(2))
        else:
            shown.append(None)
    return shown


def _clean(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip("\n").splitlines()) + "\n"


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
def test_page_code_runs_and_prints_what_the_page_shows(page, tmp_path):
    blocks = python_blocks(page)
    source = "\n\n".join(
        f"# --- {page}, block {i + 1} ---\n{block}\nprint({_MARKER.format(i)!r}, flush=True)"
        for i, block in enumerate(blocks)
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
    printed, rest = [], result.stdout
    for i in range(len(blocks)):
        before, _, rest = rest.partition(_MARKER.format(i) + "\n")
        printed.append(before)
    checker = doctest.OutputChecker()
    for i, (got, want) in enumerate(zip(printed, shown_outputs(page), strict=True)):
        if want is None:
            assert not got.strip(), (
                f"{page}, block {i + 1} prints but the page does not show it; add a "
                f'```text title="Output"``` block after it with:\n{got}'
            )
            continue
        assert checker.check_output(_clean(want), _clean(got), doctest.ELLIPSIS), (
            f"{page}, block {i + 1}: the page shows\n{want}\nbut the code printed\n{got}"
        )


def test_output_blocks_follow_python_blocks():
    """An Output block that follows no ```python block would never be checked."""
    for path in sorted(DOCS.rglob("*.md")):
        text = path.read_text(encoding="utf-8")
        fences = list(_FENCE.finditer(text))
        for i, fence in enumerate(fences):
            if not _OUTPUT_INFO.match(fence.group(1).strip()):
                continue
            before = fences[i - 1] if i else None
            assert before is not None and before.group(1).strip() == "python", (
                f"{path.relative_to(DOCS)}: an Output block without a ```python block before it"
            )
            assert not text[before.end() : fence.start()].strip(), (
                f"{path.relative_to(DOCS)}: text between a ```python block and its Output block"
            )
