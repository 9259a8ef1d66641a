"""A CLI training run (host loop) killed with SIGKILL again and again ends bit-for-bit right.

The victim run is killed four times and resumed with `--resume` after each kill:

* twice in the middle of writing a checkpoint, deterministically: the
  checkpoint writer's fault-injection point (`SOFTEQ_FAULT_PAUSE_IN_CHECKPOINT_WRITE`,
  see `softeq.adapters.checkpoint`) stops the N-th write of the process halfway
  through its temporary file, creates a marker file and sleeps; the test waits
  for the marker and kills the process while it sleeps;
* twice at a seeded-random moment after a new checkpoint has appeared.

Its final parameters must equal those of an uninterrupted run with the same
seed. (A damaged newest checkpoint falling back to the previous one is covered
by tests/adapters/test_loop.py.)
"""

from __future__ import annotations

import itertools
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np

from softeq.adapters import checkpoint as ck

SOFTEQ = Path(sys.executable).with_name("softeq")
TOTAL_STEPS = 6_000
COMMON = [
    "train",
    "--driver",
    "host",
    "--env",
    "CartPole-v1",
    "--algo",
    "a2c",
    "--driver",
    "host",
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
for _name in (ck.FAULT_PAUSE_ENV, ck.FAULT_PAUSE_AT_ENV, "SOFTEQ_DEBUG"):
    ENV.pop(_name, None)
#: One entry per kill: ("write", N) pauses the N-th checkpoint write of that process
#: and kills it there; ("random", None) kills at a seeded-random moment.
KILLS = [("write", 3), ("random", None), ("write", 2), ("random", None)]


def _final_leaves(run_dir: Path) -> tuple[int, list[np.ndarray]]:
    payload, _ = ck.resolve_checkpoint(run_dir)
    return payload["loop"]["env_steps"], jax.tree.leaves(payload["agent_state"])


def _tmp_files(ckpt_dir: Path) -> list[Path]:
    return sorted(ckpt_dir.glob(".tmp-ckpt-*")) if ckpt_dir.is_dir() else []


def _start(run_dir: Path, *, resume: bool, env: dict[str, str] = ENV) -> subprocess.Popen:
    argv = [str(SOFTEQ), *COMMON, "--run-dir", str(run_dir)] + (["--resume"] if resume else [])
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)


def _wait_for(condition, proc: subprocess.Popen, deadline: float, what: str) -> None:
    while not condition():
        if proc.poll() is not None:
            raise AssertionError(f"the run ended before {what}: {proc.stderr.read().decode()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


def _kill(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL


def _kill_mid_write(
    victim_dir: Path, marker: Path, nth: int, deadline: float, *, resume: bool
) -> None:
    """Kill the run while its `nth` checkpoint write sleeps at the fault-injection point."""
    env = {**ENV, ck.FAULT_PAUSE_ENV: str(marker), ck.FAULT_PAUSE_AT_ENV: str(nth)}
    proc = _start(victim_dir, resume=resume, env=env)
    try:
        _wait_for(marker.exists, proc, deadline, f"checkpoint write {nth} to pause")
        tmp = Path(marker.read_text().strip())
        assert tmp.is_file() and tmp.name.startswith(".tmp-ckpt-"), tmp
        assert tmp.stat().st_size > 0, "no partial temporary file"
        _kill(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # The kill left the partial file behind; the newest final checkpoint is intact.
    assert _tmp_files(victim_dir / "checkpoints") == [tmp]
    ck.read_checkpoint(ck.list_checkpoints(victim_dir / "checkpoints")[-1][1])


def _kill_at_random(victim_dir: Path, rng: random.Random, deadline: float) -> None:
    """Kill the run at a random moment after its first new checkpoint."""
    ckpt_dir = victim_dir / "checkpoints"
    before = {s for s, _ in ck.list_checkpoints(ckpt_dir)}
    proc = _start(victim_dir, resume=True)
    try:
        _wait_for(
            lambda: bool({s for s, _ in ck.list_checkpoints(ckpt_dir)} - before),
            proc,
            deadline,
            "a new checkpoint",
        )
        time.sleep(rng.uniform(0.0, 0.4))
        assert proc.poll() is None, "the run ended before the random kill"
        _kill(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_repeated_sigkill_and_resume_ends_with_the_uninterrupted_parameters(tmp_path):
    rng = random.Random(20240601)
    deadline = time.monotonic() + 480  # generous: one run took 172 s on 2 cores at load 13
    ref = _start(tmp_path / "ref", resume=False)  # runs alongside the victim
    victim_dir = tmp_path / "victim"
    steps_at_kill = []
    for k, (kind, nth) in enumerate(KILLS):
        if kind == "write":
            marker = tmp_path / f"paused-{k}"
            _kill_mid_write(victim_dir, marker, nth, deadline, resume=k > 0)
        else:
            _kill_at_random(victim_dir, rng, deadline)
        saved = ck.list_checkpoints(victim_dir / "checkpoints")
        steps_at_kill.append(saved[-1][0] if saved else 0)
    print(f"killed {len(KILLS)} times; newest checkpoint at each kill: {steps_at_kill}")
    # Every resumed process got further before it was killed.
    assert all(a < b for a, b in itertools.pairwise(steps_at_kill))
    assert 0 < steps_at_kill[0] and steps_at_kill[-1] < TOTAL_STEPS

    final = _start(victim_dir, resume=True)
    _, err = final.communicate(timeout=max(deadline - time.monotonic(), 1))
    assert final.returncode == 0, err.decode()
    assert not _tmp_files(victim_dir / "checkpoints"), "temporary files were not cleaned up"
    _, ref_err = ref.communicate(timeout=max(deadline - time.monotonic(), 1))
    assert ref.returncode == 0, ref_err.decode()

    ref_steps, ref_leaves = _final_leaves(tmp_path / "ref")
    steps, leaves = _final_leaves(victim_dir)
    assert ref_steps == steps == TOTAL_STEPS
    assert len(leaves) == len(ref_leaves)
    for a, b in zip(ref_leaves, leaves, strict=True):
        np.testing.assert_array_equal(a, b)
