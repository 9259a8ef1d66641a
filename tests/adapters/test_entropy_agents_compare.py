"""`softeq compare` runs mdqn, sac-discrete and a2c side by side on Breakout-MinAtar.

A smoke run (one seed, 5 000 steps per algorithm, each a jitted program), most of
it compiling the programs: the replay learners beyond the paper and an
actor-critic in one comparison. Plain DQN on Breakout-MinAtar through the CLI is
`test_jit_driver.py::test_minatar_runs_for_every_algorithm_through_the_cli`'s,
and MDQN shares its replay and network code.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

SOFTEQ = Path(sys.executable).with_name("softeq")
ALGORITHMS = ("mdqn", "sac-discrete", "a2c")


@pytest.mark.fast_compile
def test_compare_on_breakout_minatar_exits_0(tmp_path):
    argv = [str(SOFTEQ), "compare", "--env", "Breakout-MinAtar", "--algos", *ALGORITHMS]
    argv += ["--seeds", "0", "--total-steps", "5000", "--run-dir", str(tmp_path)]
    result = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert result.returncode == 0, result.stderr
    for algo in ALGORITHMS:
        assert f"{algo} seed 0" in result.stdout, algo
    with open(tmp_path / "summary.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(ALGORITHMS)
    assert (tmp_path / "learning_curves.png").is_file()
