"""mdqn and sac-discrete through the command line: listed by --help, 20k CartPole steps each.

The runs use the CLI's defaults: gymnax CartPole-v1 on the jitted driver with
the algorithms' classic-control settings. Both start side by side, so the
test takes about as long as the slower one (about 25 s on a busy 2-core CPU,
most of it compilation).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from softeq.adapters import jit_loop
from softeq.adapters.logger import read_metrics

SOFTEQ = Path(sys.executable).with_name("softeq")
NEW_ALGORITHMS = ("mdqn", "sac-discrete")


def test_train_help_lists_both_algorithms():
    result = subprocess.run(
        [str(SOFTEQ), "train", "--help"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    algo_line = next(
        line for line in result.stdout.splitlines() if line.strip().startswith("--algo ALGO")
    )
    assert "|mdqn|" in algo_line and "sac-discrete" in algo_line
    for flag in ("--alpha", "--log-policy-clip", "--target-entropy-ratio"):
        assert flag in result.stdout


def test_twenty_thousand_gymnax_cartpole_steps_of_each_exit_0(tmp_path):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    procs = {
        algo: subprocess.Popen(
            [
                str(SOFTEQ),
                "train",
                "--env",
                "CartPole-v1",
                "--algo",
                algo,
                "--total-steps",
                "20000",
                "--no-progress",
                "--run-dir",
                str(tmp_path / algo),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for algo in NEW_ALGORITHMS
    }
    for algo, proc in procs.items():
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, (algo, err)
        assert "evaluation return" in out, algo
        summary = jit_loop.read_summary(tmp_path / algo)
        assert summary["driver"] == "jit" and summary["backend"] == "gymnax"
        assert summary["algo"] == algo and summary["env_steps"] >= 20_000
        assert summary["finished"]
        seed = summary["seeds"]["0"]
        assert seed["updates"] > 0 and np.isfinite(seed["final_eval_return"])
        metrics = read_metrics(tmp_path / algo / "seed-0")
        assert np.isfinite(metrics["learner/loss"][1]).all(), algo
