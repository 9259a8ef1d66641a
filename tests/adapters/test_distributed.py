"""Several processes: start-up, and one learner trained over two processes on this machine."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from softeq.adapters import checkpoint as ck
from softeq.adapters import cli, distributed
from softeq.adapters.logger import read_metrics

SOFTEQ = Path(sys.executable).with_name("softeq")
SUBPROCESS_ENV = {
    k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "JAX_COORDINATOR_ADDRESS")
}

WORKER = textwrap.dedent(
    """
    import sys
    from softeq.adapters import distributed
    distributed.initialize(coordinator_address=sys.argv[1], num_processes=2,
                           process_id=int(sys.argv[2]))
    import jax
    gathered = distributed.gather_from_processes([10.0 * (int(sys.argv[2]) + 1)])
    print("RESULT", jax.process_count(), jax.device_count(), gathered.ravel().tolist())
    jax.distributed.shutdown()
    """
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_local_processes_join_one_group_and_exchange_values():
    address = f"127.0.0.1:{_free_port()}"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, address, str(i)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err[-2000:]
        line = next(x for x in out.splitlines() if x.startswith("RESULT"))
        # both processes see two processes, two devices in all, and both values in order.
        assert line.split(" ", 3)[1:] == ["2", "2", "[10.0, 20.0]"]


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"coordinator_address": "nohost", "num_processes": 2, "process_id": 0}, "coordinator"),
        ({"coordinator_address": "h:1", "num_processes": 0, "process_id": 0}, "num_processes"),
        ({"coordinator_address": "h:1", "num_processes": 2, "process_id": 2}, "process_id"),
    ],
)
def test_bad_start_up_arguments_are_named(kwargs, named):
    with pytest.raises(ValueError, match=f"`{named}"):
        distributed.initialize(**kwargs)


TRAIN = [
    "train",
    "--env",
    "CartPole-v1",
    "--backend",
    "gymnax",
    "--driver",
    "jit",
    "--algo",
    "a2c",
    "--seeds",
    "0",
    "--num-envs",
    "8",
    "--total-steps",
    "1024",
    "--eval-episodes",
    "0",
    "--no-progress",
]


def _train(runs: list[tuple[list[str], dict]]) -> list[tuple[str, dict]]:
    """`softeq train TRAIN + args` runs, each with `env` added to the subprocess environment."""
    return [([*TRAIN, *args], {**SUBPROCESS_ENV, **env}) for args, env in runs]


def _final_state(run_dir: Path) -> list[np.ndarray]:
    [(_, path)] = ck.list_checkpoints(run_dir / "checkpoints")
    return [np.asarray(getattr(leaf, "data", leaf)) for leaf in ck.read_checkpoint(path)["state"]]


def test_two_processes_train_one_learner_equal_to_one_process(tmp_path, softeq_side_by_side):
    """`softeq train` over 2 processes (1 CPU device each, gloo) = 1 process, same global batch.

    Both runs train seed 0 with 8 CartPole envs for 16 a2c updates. With two
    processes the mesh is 1 seed shard x 2 env shards spanning the processes:
    each process steps 4 envs and the gradient mean is all-reduced across them.
    The saved states must agree: integer leaves (env states, PRNG keys,
    counters) exactly, floats to float32 rounding — the cross-process
    all-reduce adds two partial sums where one process sums the batch in one
    go (measured: max |difference| 6e-8 here, 9e-8 after 32 updates). atol 1e-5, rtol 1e-4
    is far above that and far below a lost half-batch or a doubled gradient.
    Process 0 alone writes the folder: one checkpoint, one metrics file with
    the rows of the single-process run.
    """
    address = f"127.0.0.1:{_free_port()}"
    two, one = tmp_path / "two", tmp_path / "one"

    def process_flags(i):
        return ["--num-processes", "2", "--process-id", str(i)]

    outputs = softeq_side_by_side(
        _train(
            [
                (["--run-dir", str(two), "--coordinator-address", address, *process_flags(i)], {})
                for i in range(2)
            ]
            + [(["--run-dir", str(one)], {})]
        )
    )
    assert "1 seed shard(s) x 2 env shard(s), 2 processes" in outputs[0][0]
    assert "run folder" not in outputs[1][0]  # process 1 prints no status lines

    spread, single = _final_state(two), _final_state(one)
    assert len(spread) == len(single)
    worst = 0.0
    for a, b in zip(spread, single, strict=True):
        assert a.shape == b.shape and a.dtype == b.dtype
        if np.issubdtype(a.dtype, np.floating):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
            worst = max(worst, float(np.abs(a - b).max()))
        else:
            np.testing.assert_array_equal(a, b)
    print(f"max |two processes - one process| over the saved floats: {worst:.3g}")
    rows = {tag: len(v[0]) for tag, v in read_metrics(two / "seed-0" / "metrics.csv").items()}
    assert rows == {
        tag: len(v[0]) for tag, v in read_metrics(one / "seed-0" / "metrics.csv").items()
    }
    summary = json.loads((two / "summary.json").read_text())
    assert (summary["mesh"], summary["processes"]) == ({"seeds": 1, "data": 2}, 2)


def _slurm_job_with_a_free_port() -> int:
    """A Slurm job id whose coordinator port (JAX derives it from the id) is free here."""
    first = 65535 - 2**12 + 1  # JAX's port for a Slurm job: first + job id % 4096
    for job_id in range(os.getpid() % 2**12, os.getpid() % 2**12 + 2**12):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", first + job_id % 2**12))
            except OSError:
                continue
        return job_id
    raise RuntimeError("no free port in JAX's range for Slurm coordinators")


def test_distributed_finds_the_processes_from_the_cluster(tmp_path, softeq_side_by_side):
    """`softeq train --distributed` with none of the three flags, as `srun -n 2` starts it:
    JAX reads the coordinator, process count and ids from Slurm's variables."""
    job = {
        "SLURM_JOB_ID": str(_slurm_job_with_a_free_port()),
        "SLURM_STEP_NODELIST": "localhost",
        "SLURM_NTASKS": "2",
        "SLURM_STEP_NUM_NODES": "1",
    }
    args = ["--run-dir", str(tmp_path / "run"), "--distributed"]
    outputs = softeq_side_by_side(
        _train([(args, {**job, "SLURM_PROCID": str(i), "SLURM_LOCALID": str(i)}) for i in range(2)])
    )
    assert "1 seed shard(s) x 2 env shard(s), 2 processes" in outputs[0][0]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert (summary["mesh"], summary["processes"]) == ({"seeds": 1, "data": 2}, 2)


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--num-processes", "0"], "--num-processes"),
        (["--num-processes", "2", "--process-id", "2"], "--process-id"),
        (
            ["--coordinator-address", "nohost", "--num-processes", "2", "--process-id", "0"],
            "--coordinator-address",
        ),
    ],
)
def test_bad_multi_process_flags_are_named(flags, named, capsys):
    assert cli.main([*TRAIN, "--run-dir", "unused", *flags]) == cli.EXIT_USAGE
    assert named in capsys.readouterr().err
