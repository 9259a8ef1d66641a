"""Smoke test of the benchmark runner: it produces a report, never asserts on timings.

`python -m benchmarks.run --quick --only core_kernels property_suite` runs in a
subprocess into a temporary file; the report must carry the machine line and
tables whose ratio columns hold positive numbers. The figures themselves are
not checked: they depend on the machine and its load.
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


def markdown_tables(text: str) -> list[list[dict[str, str]]]:
    """Every pipe table in `text` as a list of {header: cell} rows."""
    tables, block = [], []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            block.append([c.strip() for c in line.strip().strip("|").split("|")])
            continue
        if len(block) >= 2:
            header, rows = block[0], block[2:]
            tables.append([dict(zip(header, row, strict=True)) for row in rows])
        block = []
    return tables


def _run(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "benchmarks.run", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory) -> str:
    output = tmp_path_factory.mktemp("bench") / "RESULTS.md"
    proc = _run("--quick", "--only", "core_kernels", "property_suite", "--output", str(output))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return output.read_text()


def test_report_names_the_machine_commit_and_command(quick_report):
    lines = quick_report.splitlines()
    machine = [ln for ln in lines if ln.startswith("- Machine: ")]
    assert len(machine) == 1 and "logical cores" in machine[0] and "jax " in machine[0]
    assert any(ln.startswith("- Commit: ") for ln in lines)
    assert any("--quick" in ln for ln in lines if ln.startswith("- Command: "))


def test_core_kernel_table_has_numeric_ratios(quick_report):
    tables = [t for t in markdown_tables(quick_report) if t and "softeq / rlax" in t[0]]
    assert len(tables) == 1
    rows = tables[0]
    kernels = {row["kernel"] for row in rows}
    assert {"n-step targets (τ = 0)", "policy loss + entropy"} <= kernels
    for row in rows:
        ratio = float(row["softeq / rlax"])
        assert math.isfinite(ratio) and ratio > 0, row
        assert int(row["B"]) in (32, 256)


def test_property_suite_table_has_shares_that_sum_to_one(quick_report):
    tables = [t for t in markdown_tables(quick_report) if t and "share of total" in t[0]]
    assert len(tables) == 1
    rows = tables[0]
    tests = [row for row in rows if row["test"].startswith("`properties/")]
    assert tests, rows
    shares = [float(row["share of total"]) for row in tests]
    assert all(0 <= s <= 1 for s in shares)
    # Shares are rounded to 3 decimals each.
    assert math.isclose(sum(shares), 1.0, abs_tol=1e-3 * len(shares))


def test_unknown_section_is_rejected_with_the_allowed_names(tmp_path):
    proc = _run("--only", "no_such_section", "--output", str(tmp_path / "x.md"), timeout=120)
    assert proc.returncode == 2
    assert "no_such_section" in proc.stderr and "core_kernels" in proc.stderr
    assert not (tmp_path / "x.md").exists()


def test_markdown_tables_parser_reads_cells():
    text = "intro\n\n| a | b |\n|---|---|\n| 1 | x y |\n| 2 | z |\n\nafter\n"
    assert markdown_tables(text) == [[{"a": "1", "b": "x y"}, {"a": "2", "b": "z"}]]


def test_replay_memory_table_shows_one_observation_array(tmp_path):
    """Sizes from shapes, not timings: the device replay stores each observation once, so
    with frames (MinAtar, Atari) it needs about half the old two-array layout."""
    output = tmp_path / "replay.md"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.replay_memory", "--output", str(output)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (table,) = markdown_tables(output.read_text())
    assert [row["env"] for row in table] == [
        "CartPole-v1",
        "Breakout-MinAtar",
        "ALE/Pong-v5",
        "ALE/Pong-v5",
    ]
    for row in table[1:]:
        assert 0.49 <= float(row["ratio"]) <= 0.52, row
