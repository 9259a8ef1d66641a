"""`softeq compare --resume` as a user runs it: a comparison killed mid-way continues."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

ARGS = ["compare", "--env", "CartPole-v1", "--algos", "a2c", "dqn", "--seeds", "0", "1",
        "--total-steps", "3000", "--checkpoint-every", "500", "--eval-every", "0",
        "--eval-episodes", "2", "--workers", "1"]  # fmt: skip


def _softeq(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "softeq.adapters.cli", *args],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, **(env or {})},
    )


def _summary(base: Path) -> list[dict]:
    with open(base / "summary.csv") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.fast_compile
def test_a_killed_comparison_resumes_to_the_uninterrupted_result(
    tmp_path, kill_in_checkpoint_write
):
    whole = _softeq(*ARGS, "--run-dir", str(tmp_path / "whole"))
    assert whole.returncode == 0, whole.stderr[-3000:]

    # a2c's program writes 6 checkpoints (every 512 steps + the end); the 9th write of
    # the process falls inside dqn's program: it pauses there and is killed.
    cut = tmp_path / "cut"
    kill_in_checkpoint_write([*ARGS, "--run-dir", str(cut)], 9, tmp_path / "paused")
    a2c, dqn = cut / "runs" / "a2c" / "summary.json", cut / "runs" / "dqn"
    assert a2c.exists() and not (dqn / "summary.json").exists()
    before = a2c.stat().st_mtime_ns

    again = _softeq(*ARGS, "--run-dir", str(cut))  # without --resume: refused
    assert again.returncode == 2 and "--resume" in again.stderr
    again = _softeq(*ARGS, "--run-dir", str(cut), "--resume")
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("finished before, kept") == 2  # a2c's two seeds
    assert a2c.stat().st_mtime_ns == before
    assert "resumed from" in (dqn / "train.log").read_text()
    assert _summary(cut) == _summary(tmp_path / "whole")


SHORT = ["compare", "--env", "CartPole-v1", "--algos", "a2c", "--seeds", "0", "--workers", "1"]


@pytest.mark.fast_compile
def test_resume_refuses_another_command_and_an_empty_folder(tmp_path):
    first = _softeq(*SHORT, "--total-steps", "600", "--run-dir", str(tmp_path / "c"))
    assert first.returncode == 0, first.stderr[-3000:]
    other = _softeq(*SHORT, "--total-steps", "900", "--run-dir", str(tmp_path / "c"),
                    "--resume")  # fmt: skip
    assert other.returncode == 2
    assert "error: --resume: got" in other.stderr and "run_overrides" in other.stderr
    empty = _softeq(*SHORT, "--run-dir", str(tmp_path / "none"), "--resume")
    assert empty.returncode == 2 and "holds none" in empty.stderr
    both = _softeq(*SHORT, "--run-dir", str(tmp_path / "c"), "--resume", "--force")
    assert both.returncode == 2 and "not both" in both.stderr
