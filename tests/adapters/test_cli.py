"""The `softeq` console script, run as a subprocess (and `main()` for the bad-argument table)."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from softeq.adapters import cli
from softeq.adapters.checkpoint import list_checkpoints
from softeq.adapters.run_config import save_run_configs

SOFTEQ = Path(sys.executable).with_name("softeq")


def _softeq(*args, timeout: float = 300, env_extra: dict | None = None):
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env_extra or {})}
    return subprocess.run(
        [str(SOFTEQ), *map(str, args)], capture_output=True, text=True, timeout=timeout, env=env
    )


def _one_line_error(proc) -> str:
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]


def test_train_cartpole_writes_config_metrics_and_checkpoint(tmp_path):
    run_dir = tmp_path / "run"
    args = [
        "train",
        "--env",
        "CartPole-v1",
        "--algo",
        "soft-q",
        "--driver",
        "host",
        "--total-steps",
        "2000",
        "--num-envs",
        "4",
        "--eval-every",
        "1000",
        "--eval-episodes",
        "2",
        "--checkpoint-every",
        "500",
        "--temperature",
        "0.02",
        "--no-progress",
        "--run-dir",
        run_dir,
    ]
    proc = _softeq(*args)
    assert proc.returncode == 0, proc.stderr
    # The full configuration is printed at the start and saved as JSON.
    assert "run config:" in proc.stdout and "algorithm config (SoftQConfig):" in proc.stdout
    saved = json.loads((run_dir / "config.json").read_text())
    assert saved["run"]["env_id"] == "CartPole-v1" and saved["run"]["total_steps"] == 2000
    assert saved["algo"]["temperature"] == 0.02
    with open(run_dir / "metrics.csv") as fh:
        rows = list(csv.DictReader(fh))
    tags = {r["tag"] for r in rows}
    assert {"train/episode_return", "learner/grad_cosine", "eval/return_mean"} <= tags
    assert max(int(r["env_step"]) for r in rows) == 2000
    assert list((run_dir / "tb").glob("events.out.tfevents.*"))
    steps = [s for s, _ in list_checkpoints(run_dir / "checkpoints")]
    assert steps[-1] == 2000 and len(steps) <= 3
    assert f"checkpoint: {run_dir / 'checkpoints'}" in proc.stdout

    # evaluate (a subprocess) and plot work on the finished run.
    ev = _softeq("evaluate", run_dir, "--episodes", "3")
    assert ev.returncode == 0, ev.stderr
    assert "over 3 episodes" in ev.stdout and "±" in ev.stdout
    assert cli.main(["plot", str(run_dir)]) == 0
    assert (run_dir / "training.png").stat().st_size > 0


def test_a_folder_holding_a_run_is_not_reused_without_resume_or_force(tmp_path, capsys):
    run_dir = tmp_path / "run"
    args = ["train", "--algo", "soft-q", "--temperature", "0.02", "--run-dir", str(run_dir)]
    run, algo_config = cli.make_configs(
        {"algo": "soft-q", "run_dir": str(run_dir)}, {"temperature": "0.02"}
    )
    save_run_configs(run_dir, run, algo_config)
    assert cli.main(args) == cli.EXIT_USAGE
    line = capsys.readouterr().err.strip()
    assert "\n" not in line
    assert "--run-dir" in line and "already holds this run" in line
    assert "--resume" in line and "--force" in line
    assert cli.main([a if a != "0.02" else "0.05" for a in args]) == cli.EXIT_USAGE
    assert (
        "already holds a different run (algo.temperature saved 0.02, now 0.05)"
        in capsys.readouterr().err
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli.main(["train", "--resume", "--run-dir", str(empty)]) == cli.EXIT_USAGE
    assert "holds no softeq run to continue" in capsys.readouterr().err
    assert not (empty / "config.json").exists()
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("not a run")
    assert cli.main(["train", "--run-dir", str(tmp_path / "other")]) == cli.EXIT_USAGE
    assert "holds no softeq run" in capsys.readouterr().err


BAD_ARGS = [
    (["train", "--algo", "ppo"], "--algo", "'ppo'", "a2c|soft-q|dqn"),
    (["train", "--env", "Pong-v0"], "--env", "'Pong-v0'", "ALE/<Game>-v5"),
    (["train", "--total-steps", "-5"], "--total-steps", "-5", "> 0"),
    (["train", "--total-steps", "0"], "--total-steps", "0", "> 0"),
    (["train", "--num-envs", "-2"], "--num-envs", "-2", ">= 1"),
    (["train", "--seed", "1.5"], "--seed", "1.5", "integer"),
    (["train", "--entropy", "fancy"], "--entropy", "'fancy'", "naive|proper"),
    (["train", "--algo", "dqn", "--target", "max"], "--target", "'max'", "hard|soft-kl"),
    (["train", "--algo", "a2c", "--target", "hard"], "--target", "'hard'", "does not apply"),
    (["train", "--learning-rate", "fast"], "--learning-rate", "'fast'", "number"),
    (["train", "--algo", "dqn", "--n-step", "0"], "--n-step", "0", ">= 1"),
    (["train", "--resume"], "--resume", "True", "--run-dir"),
    (["train", "--backend", "vulkan"], "--backend", "'vulkan'", "auto|ale|gymnasium"),
    (["compare", "--algos", "a2c:entropy=wild"], "--algos", "a2c:entropy=wild", "naive|proper"),
    (["compare", "--algos", "sarsa"], "--algos", "'sarsa'", "a2c|soft-q|dqn"),
    (["compare", "--workers", "0"], "--workers", "0", ">= 1"),
    (["evaluate", "/no/such/run"], "path", "/no/such/run", "run folder"),
]


@pytest.mark.parametrize(("argv", "flag", "value", "allowed"), BAD_ARGS)
def test_bad_arguments_exit_2_with_one_line_naming_flag_value_and_allowed(
    capsys, argv, flag, value, allowed
):
    assert cli.main(argv) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert flag in lines[0] and value in lines[0] and allowed in lines[0], lines[0]


def test_bad_argument_through_the_console_script():
    proc = _softeq("train", "--total-steps", "-1")
    assert proc.returncode == 2
    assert _one_line_error(proc) == "softeq train: error: --total-steps: got -1; allowed: > 0"


def test_num_envs_must_split_over_devices():
    # With two (virtual) CPU devices the A2C batch of 3 envs cannot be split evenly.
    proc = _softeq(
        "train",
        "--algo",
        "a2c",
        "--driver",
        "host",
        "--num-envs",
        "3",
        env_extra={"XLA_FLAGS": "--xla_force_host_platform_device_count=2"},
    )
    assert proc.returncode == 2
    line = _one_line_error(proc)
    assert "--num-envs" in line and "got 3" in line and "multiple of the 2 local devices" in line


@pytest.mark.fast_compile
def test_diverging_learner_exits_3_with_a_clear_message(tmp_path):
    proc = _softeq(
        "train",
        "--algo",
        "a2c",
        "--learning-rate",
        "1e30",
        "--num-envs",
        "4",
        "--total-steps",
        "2000",
        "--no-progress",
        "--run-dir",
        tmp_path / "run",
    )
    assert proc.returncode == 3
    line = _one_line_error(proc)
    assert "non-finite learner loss" in line and "last good checkpoint is kept" in line


@pytest.mark.fast_compile
def test_compare_on_cartpole_writes_curves_and_summary(tmp_path):
    out = tmp_path / "cmp"
    proc = _softeq(
        "compare",
        "--env",
        "CartPole-v1",
        "--algos",
        "a2c",
        "soft-q",
        "--seeds",
        "0",
        "1",
        "--total-steps",
        "1000",
        "--num-envs",
        "4",
        "--eval-every",
        "500",
        "--eval-episodes",
        "2",
        "--out",
        out,
    )
    assert proc.returncode == 0, proc.stderr
    # Two jitted programs, one per spec, trained in two worker processes (default --workers 2).
    assert "2 jitted program(s), 2 side by side" in proc.stdout
    assert sorted(line.split(":")[0].split("] ")[1] for line in proc.stdout.splitlines()
                  if line.startswith("  [")) == ["a2c seed 0", "a2c seed 1", "soft-q seed 0",
                                                  "soft-q seed 1"]  # fmt: skip
    for name in ("learning_curves.png", "grad_cosine.png", "summary.md", "summary.csv"):
        assert (out / name).stat().st_size > 0
        assert str(out / name) in proc.stdout
    with open(out / "summary.csv") as fh:
        rows = {r["algorithm"]: r for r in csv.DictReader(fh)}
    assert set(rows) == {"a2c", "soft-q"}
    assert rows["a2c"]["seeds"] == "2" and rows["soft-q"]["seeds"] == "2"
    assert -1.0 <= float(rows["soft-q"]["cosine_median"]) <= 1.0
    assert rows["a2c"]["cosine_count"] == "0"
    # CartPole runs inside a program: each spec's seeds are one jitted run, seed-<s> folders
    manifest = json.loads((out / "compare.json").read_text())
    for spec in manifest["specs"]:
        assert spec["runs"] == [f"runs/{spec['label']}/seed-{s}" for s in (0, 1)]
        for run in spec["runs"]:
            assert (out / run / "metrics.csv").exists()
    # `plot` redraws from the folder.
    pl = _softeq("plot", out)
    assert pl.returncode == 0, pl.stderr
    assert str(out / "learning_curves.png") in pl.stdout


@pytest.mark.parametrize(
    ("algo", "extra"),
    [
        ("a2c", []),
        ("soft-q", []),
        ("dqn", ["--learning-starts", "100", "--batch-size", "8", "--replay-capacity", "500"]),
    ],
)
def test_atari_pong_end_to_end_through_the_cli(tmp_path, algo, extra):
    run_dir = tmp_path / "pong"
    args = [
        "train",
        "--env",
        "ALE/Pong-v5",
        "--algo",
        algo,
        "--total-steps",
        "400",
        "--num-envs",
        "2",
        "--eval-episodes",
        "0",
        "--no-progress",
        "--run-dir",
        run_dir,
        *extra,
    ]
    stop = ["--stop-after", "200"] if algo == "a2c" else []
    proc = _softeq(*args, *stop)
    assert proc.returncode == 0, proc.stderr
    if algo == "a2c":
        # The ALE vector env's emulator state cannot be saved: resume restarts the
        # episodes (and says so) but continues the agent from its checkpoint.
        assert "stopped at env step 200" in proc.stdout
        proc = _softeq(*args, "--resume")
        assert proc.returncode == 0, proc.stderr
        assert "resumed from" in proc.stdout and "episodes restart" in proc.stdout
    with open(run_dir / "metrics.csv") as fh:
        tags = {r["tag"] for r in csv.DictReader(fh)}
    assert "learner/loss" in tags
    assert [s for s, _ in list_checkpoints(run_dir / "checkpoints")][-1] == 400
    saved = json.loads((run_dir / "config.json").read_text())
    assert saved["run"]["torso"] == "auto"


def test_compare_with_host_loop_workers_trains_each_run_in_a_process(tmp_path):
    """Host-loop runs (`--driver host`) train one per worker process, two at a time."""
    out = tmp_path / "cmp"
    proc = _softeq(
        "compare", "--env", "CartPole-v1", "--algos", "a2c", "--seeds", "0", "1",
        "--driver", "host", "--workers", "2", "--total-steps", "600", "--num-envs", "4",
        "--eval-episodes", "1", "--out", out,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "2 host-loop run(s), 2 side by side" in proc.stdout
    assert proc.stdout.count("a2c seed ") == 2
    for seed in (0, 1):
        assert (out / "runs" / "a2c" / f"seed{seed}" / "metrics.csv").stat().st_size > 0
    assert (out / "summary.csv").stat().st_size > 0


@pytest.mark.fast_compile
def test_force_replaces_the_old_run_and_keeps_the_users_files(tmp_path):
    """`train --force` over a folder holding another run: the run's files are replaced,
    anything else the user put there stays."""
    run_dir = tmp_path / "run"
    common = ["train", "--env", "CartPole-v1", "--algo", "a2c", "--run-dir", str(run_dir)]
    first = _softeq(*common, "--seeds", "0", "1", "--total-steps", "2048")
    assert first.returncode == 0, first.stderr[-2000:]
    assert {"seed-0", "seed-1", "summary.json"} <= {p.name for p in run_dir.iterdir()}
    (run_dir / "notes.txt").write_text("mine")
    (run_dir / "stalled.json").write_text("{}\n")  # as a stalled attempt leaves it
    (run_dir / ".tmp-summary.json-k1ll3d").write_text("{")  # as a killed write leaves it
    refused = _softeq(*common, "--seeds", "5", "--total-steps", "4096")
    assert refused.returncode == cli.EXIT_USAGE and "--force" in _one_line_error(refused)
    forced = _softeq(*common, "--seeds", "5", "--total-steps", "4096", "--force")
    assert forced.returncode == 0, forced.stderr[-2000:]
    names = {p.name for p in run_dir.iterdir()}
    assert "seed-5" in names
    assert not {"seed-0", "seed-1", "stalled.json", ".tmp-summary.json-k1ll3d"} & names
    assert (run_dir / "notes.txt").read_text() == "mine"
    saved = json.loads((run_dir / "config.json").read_text())
    assert saved["run"]["seeds"] == [5] and saved["run"]["total_steps"] == 4096
    summary = json.loads((run_dir / "summary.json").read_text())
    assert set(summary["seeds"]) == {"5"}


def test_default_run_folders_name_the_seeds():
    from softeq.adapters.run_config import RunConfig, default_run_dir

    assert re.fullmatch(
        r"runs/CartPole-v1-a2c-seed3-\d{8}-\d{6}",
        default_run_dir(RunConfig(env_id="CartPole-v1", algo="a2c", seed=3)),
    )
    assert re.fullmatch(
        r"runs/ALE-Pong-v5-dqn-seeds0-1-2-\d{8}-\d{6}",
        default_run_dir(RunConfig(env_id="ALE/Pong-v5", algo="dqn", seeds=(0, 1, 2))),
    )
    assert "-8seeds-" in default_run_dir(RunConfig(seeds=tuple(range(8))))


def _checkpoint_shapes(run_dir: Path) -> set[tuple[int, ...]]:
    from softeq.adapters.checkpoint import read_checkpoint

    _, newest = list_checkpoints(run_dir / "checkpoints")[-1]
    leaves = jax.tree.leaves(read_checkpoint(newest)["state"])
    return {tuple(np.shape(leaf)) for leaf in leaves}


def test_torso_flag_picks_the_network_and_refuses_one_built_for_other_frames(tmp_path):
    """`--torso mlp` on MinAtar flattens the 10×10×4 frames into a 400-input MLP instead of
    the default MinAtar convolution; Atari's Nature CNN is refused by name."""
    common = ["train", "--env", "Breakout-MinAtar", "--algo", "a2c", "--total-steps", "2048"]
    common += ["--eval-episodes", "0"]
    proc = _softeq(*common, "--torso", "mlp", "--run-dir", tmp_path / "mlp")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads((tmp_path / "mlp" / "config.json").read_text())["run"]["torso"] == "mlp"
    mlp = _checkpoint_shapes(tmp_path / "mlp")
    kernel = (1, 3, 3, 4, 16)  # [seeds, 3×3, 4 channels in, 16 out]: MinAtar's convolution
    assert (1, 400, 64) in mlp and kernel not in mlp  # [seeds, inputs, units]
    refused = _softeq(*common, "--torso", "nature", "--run-dir", tmp_path / "nature")
    assert refused.returncode == cli.EXIT_USAGE
    assert "auto|minatar|mlp" in _one_line_error(refused)
    assert not (tmp_path / "nature").exists()


def test_log_every_sets_learner_updates_per_csv_row(tmp_path):
    """The host loop writes one learner row per `--log-every` updates, averaged."""
    rows = {}
    for every in (1, 4):
        run_dir = tmp_path / f"every-{every}"
        proc = _softeq(
            "train", "--env", "CartPole-v1", "--algo", "a2c", "--driver", "host",
            "--total-steps", "4096", "--eval-episodes", "0", "--log-every", str(every),
            "--run-dir", run_dir,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-2000:]
        with open(run_dir / "metrics.csv") as fh:
            rows[every] = [r for r in csv.DictReader(fh) if r["tag"] == "learner/loss"]
    assert len(rows[1]) >= 8
    assert len(rows[4]) == len(rows[1]) // 4
    # a row of 4 updates is the mean of the 4 single-update rows it covers
    singles = [float(r["value"]) for r in rows[1]]
    for i, row in enumerate(rows[4]):
        assert float(row["value"]) == pytest.approx(np.mean(singles[4 * i : 4 * i + 4]), rel=1e-5)
