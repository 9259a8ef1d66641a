"""Ending a run whose program stalls: the watch's limits, and the whole path as a user meets it."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from softeq.adapters import stall


def _watch(floor_s: float):
    lines: list[str] = []
    exits: list[int] = []
    return stall.StallWatch(lines.append, floor_s=floor_s, exit=exits.append), lines, exits


def test_a_chunk_within_its_limit_passes_and_sets_the_next_limit():
    watch, lines, exits = _watch(floor_s=5.0)
    assert watch.limit_s() == 10.0  # the first chunk compiles: twice the floor
    with watch.chunk():
        time.sleep(0.05)
    assert lines == [] and exits == []
    assert 0.05 <= watch.slowest_s < 5.0
    assert watch.limit_s() == 5.0  # ten times the slowest is less than the floor
    watch.slowest_s = 2.0
    assert watch.limit_s() == 20.0


def test_a_chunk_past_its_limit_ends_the_process_with_the_stalled_status():
    watch, lines, exits = _watch(floor_s=0.05)
    with watch.chunk():
        time.sleep(1.0)  # ten times the first chunk's 0.1 s: the timer has fired by then
    assert exits == [stall.STALLED_EXIT_STATUS] == [75]
    assert lines[0].startswith("stalled: one chunk of the program made no progress")


def test_the_stall_is_recorded_before_the_exit_even_if_recording_fails(tmp_path):
    for on_stall, recorded in [
        (lambda limit: stall.write_stall_record(tmp_path, limit_s=limit), True),
        (lambda limit: [(tmp_path / stall.STALL_RECORD_FILENAME).unlink(), 1 / 0], False),
    ]:
        lines: list[str] = []
        exits: list[int] = []
        watch = stall.StallWatch(lines.append, floor_s=0.05, exit=exits.append, on_stall=on_stall)
        with watch.chunk():
            time.sleep(1.0)
        assert exits == [stall.STALLED_EXIT_STATUS]
        assert (stall.read_stall_record(tmp_path) == {"limit_s": 0.1}) is recorded
        assert any(line.startswith("could not record the stall") for line in lines) is not recorded


def test_an_unreadable_stall_record_counts_as_none(tmp_path):
    (tmp_path / stall.STALL_RECORD_FILENAME).write_text("[1, 2")
    assert stall.read_stall_record(tmp_path) is None
    assert stall.read_stall_record(tmp_path / "missing") is None


@pytest.mark.parametrize("text", ["0", "-1", "soon"])
def test_a_bad_limit_is_named(monkeypatch, text):
    monkeypatch.setenv(stall.STALL_MINUTES_ENV, text)
    with pytest.raises(ValueError, match=rf"`SOFTEQ_STALL_MINUTES` must be .*{text!r}"):
        stall.stall_floor_s()


def _softeq(*args: str, minutes: str):
    env = {**os.environ, stall.STALL_MINUTES_ENV: minutes, "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [sys.executable, "-m", "softeq.adapters.cli", *args],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )


@pytest.mark.fast_compile
def test_train_ends_with_status_75_when_a_chunk_outlasts_the_limit(tmp_path):
    """A limit of 1.2 ms for the first chunk, which no chunk of thousands of env steps meets."""
    proc = _softeq(
        "train", "--env", "CartPole-v1", "--algo", "a2c", "--total-steps", "100000",
        "--run-dir", str(tmp_path / "run"), minutes="0.00001",
    )  # fmt: skip
    assert proc.returncode == stall.STALLED_EXIT_STATUS, proc.stderr[-2000:]
    assert "stalled: one chunk of the program made no progress" in proc.stdout
    record = stall.read_stall_record(tmp_path / "run")
    assert record is not None and record["lanes"] == 1 and record["env_step"] == 0


@pytest.mark.fast_compile
def test_reproduce_runs_a_stalled_program_smaller_then_gives_up(tmp_path):
    """Every attempt stalls here (1.2 ms for a first chunk of thousands of env steps).
    Experiment 3 on one seed is two programs of two lanes (c = 0.5 and c = 1/τ of one
    algorithm share one): a program that stalls before its first checkpoint runs again
    as two programs of one lane; after MAX_STALL_RETRIES stalls the error stops it."""
    from softeq.adapters.reproduce import MAX_STALL_RETRIES

    proc = _softeq(
        "reproduce", "experiment-3", "--games", "CartPole-v1", "--seeds", "0",
        "--total-steps", "100000", "--workers", "2", "--out", str(tmp_path), minutes="0.00001",
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert proc.stdout.count(" stalled (worker process ") == MAX_STALL_RETRIES, proc.stdout
    assert "it had saved nothing: running it as 2 smaller programs" in proc.stdout
    assert "exit code 75" in proc.stderr
