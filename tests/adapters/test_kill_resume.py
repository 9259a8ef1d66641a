"""A CLI training run killed with SIGKILL again and again still ends bit-for-bit right.

The run is killed at seeded-random moments and once as soon as a temporary
checkpoint file shows up (a kill that lands while a checkpoint is being written),
resumed with `--resume` after every kill, and its final parameters must equal
those of an uninterrupted run with the same seed. (A damaged newest checkpoint
falling back to the previous one is covered by tests/adapters/test_loop.py.)
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from softeq.adapters import checkpoint as ck

SOFTEQ = Path(sys.executable).with_name("softeq")
TOTAL_STEPS = 6_000
COMMON = [
    "train",
    "--env",
    "CartPole-v1",
    "--algo",
    "a2c",
    "--seed",
    "11",
    "--num-envs",
    "4",
    "--total-steps",
    str(TOTAL_STEPS),
    "--checkpoint-every",
    "64",
    "--keep-checkpoints",
    "2",
    "--eval-every",
    "0",
    "--eval-episodes",
    "0",
    "--no-progress",
]
ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


def _final_leaves(run_dir: Path) -> tuple[int, list[np.ndarray]]:
    payload, _ = ck.resolve_checkpoint(run_dir)
    import jax

    return payload["loop"]["env_steps"], jax.tree.leaves(payload["agent_state"])


def _tmp_files(ckpt_dir: Path) -> list[str]:
    try:
        return [e.name for e in os.scandir(ckpt_dir) if e.name.startswith(".tmp-ckpt-")]
    except FileNotFoundError:
        return []


def _start(run_dir: Path, *, resume: bool) -> subprocess.Popen:
    argv = [str(SOFTEQ), *COMMON, "--run-dir", str(run_dir)] + (["--resume"] if resume else [])
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=ENV)


def _wait_training(proc: subprocess.Popen, ckpt_dir: Path, deadline: float) -> bool:
    """Wait until a checkpoint beyond those already there exists; False if the run ended."""
    before = {s for s, _ in ck.list_checkpoints(ckpt_dir)}
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        if {s for s, _ in ck.list_checkpoints(ckpt_dir)} - before:
            return True
        time.sleep(0.005)
    raise AssertionError("no new checkpoint appeared in time")


def test_repeated_sigkill_and_resume_ends_with_the_uninterrupted_parameters(tmp_path):
    rng = random.Random(20240601)
    ref = _start(tmp_path / "ref", resume=False)  # runs alongside the victim
    victim_dir = tmp_path / "victim"
    ckpt_dir = victim_dir / "checkpoints"
    deadline = time.monotonic() + 240  # generous: shared CI cores
    kills = 0
    kills_during_write = 0
    resume = False
    attempt = 0
    while True:
        proc = _start(victim_dir, resume=resume)
        resume = True
        attempt += 1
        try:
            if not _wait_training(proc, ckpt_dir, deadline):
                break  # finished before we struck
            if attempt == 2 or attempt == 4:
                # Strike while a checkpoint is being written: poll for the temporary file.
                while proc.poll() is None and not _tmp_files(ckpt_dir):
                    time.sleep(0.0002)
            else:
                time.sleep(rng.uniform(0.0, 0.4))
            if proc.poll() is not None:
                break
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            kills += 1
            print(f"kill {kills} at {ck.list_checkpoints(ckpt_dir)[-1][0]} env steps")
            # A temporary file left behind proves the kill landed mid-write.
            if _tmp_files(ckpt_dir):
                kills_during_write += 1
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.returncode == -signal.SIGKILL
        if kills >= 5:
            final = _start(victim_dir, resume=True)
            _, err = final.communicate(timeout=max(deadline - time.monotonic(), 1))
            assert final.returncode == 0, err.decode()
            break
    if proc.returncode not in (None, -signal.SIGKILL):
        assert proc.returncode == 0, proc.stderr.read().decode() if proc.stderr else ""
    _, ref_err = ref.communicate(timeout=max(deadline - time.monotonic(), 1))
    assert ref.returncode == 0, ref_err.decode()

    print(f"survived {kills} SIGKILLs ({kills_during_write} during a checkpoint write)")
    assert kills >= 3
    assert kills_during_write >= 1
    ref_steps, ref_leaves = _final_leaves(tmp_path / "ref")
    steps, leaves = _final_leaves(victim_dir)
    assert ref_steps == steps == TOTAL_STEPS
    assert len(leaves) == len(ref_leaves)
    for a, b in zip(ref_leaves, leaves, strict=True):
        np.testing.assert_array_equal(a, b)
