"""`softeq demo` (what `make demo` runs) as a user runs it: a subprocess, files, exit status."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from softeq.adapters import demo


def _softeq(*args: str, timeout: float = 600):
    return subprocess.run(
        [sys.executable, "-m", "softeq.adapters.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def _worst_difference(stdout: str) -> float:
    found = re.search(r"Worst difference over \d+ draws: (\S+) \(tolerance \S+\) -> PASS", stdout)
    assert found, stdout[-2000:]
    return float(found.group(1))


def test_the_table_alone_passes_and_prints_its_differences():
    proc = _softeq("demo", "--table-only")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert _worst_difference(proc.stdout) <= demo.IDENTITY_TOLERANCE
    assert "Part 2" not in proc.stdout  # --table-only trains nothing


def test_the_whole_demo_reaches_its_target_on_every_seed(tmp_path, shift_seeds):
    """The README's promise: every seed of both algorithms ends at ≥ 475 (exit status 0).

    Measured on every seed of 0–15, 100–115 and 1000–1015 (README); the seeds here
    move with SOFTEQ_TEST_SEED_OFFSET.
    """
    seeds = shift_seeds(*demo.DEMO_SEEDS)
    out = tmp_path / "demo"
    proc = _softeq("demo", "--out", str(out), "--seeds", *map(str, seeds))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert _worst_difference(proc.stdout) <= demo.IDENTITY_TOLERANCE
    verdict = (out / "verdict.txt").read_text()
    assert verdict.count("-> reached") == len(demo.DEMO_ALGOS) and "NOT" not in verdict
    finals = demo.seed_finals(out)
    assert sorted(finals) == sorted(demo.DEMO_ALGOS)
    for per_seed in finals.values():
        assert sorted(per_seed) == sorted(seeds)
        assert min(per_seed.values()) >= demo.TARGET_RETURN
    table = (out / "equivalence_table.txt").read_text()
    assert "-> PASS" in table and table.strip().splitlines()[0] in proc.stdout


def test_a_failed_table_gives_exit_status_1(monkeypatch):
    # A tolerance no float difference can meet: the table must report FAIL.
    monkeypatch.setattr(demo, "IDENTITY_TOLERANCE", -1.0)
    lines: list[str] = []
    assert demo.run_demo(table_only=True, out=lines.append) == 1
    assert any(line.endswith("-> FAIL") for line in lines)


@pytest.mark.fast_compile
def test_a_budget_too_small_to_learn_exits_2_where_the_readme_says(tmp_path):
    """2048 env steps learn nothing: exit status 2 and "NOT reached" for both algorithms,
    written (without --out) into `runs/demo-<time>/` under the working directory."""
    args = ["demo", "--seeds", "0", "--total-steps", "2048"]
    proc = subprocess.run(
        [sys.executable, "-m", "softeq.adapters.cli", *args],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert proc.returncode == 2, proc.stdout[-3000:] + proc.stderr[-3000:]
    (made,) = (tmp_path / "runs").iterdir()
    assert re.fullmatch(r"demo-\d{8}-\d{6}", made.name)
    assert str(Path("runs") / made.name) in proc.stdout
    verdict = (made / "verdict.txt").read_text()
    assert verdict.count("-> NOT reached") == len(demo.DEMO_ALGOS)
    assert (made / "equivalence_table.txt").exists()
