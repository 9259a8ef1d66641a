"""One table of bad user input above the core layer: configs, the CLI and checkpoints.

Core has its own table (tests/core/test_bad_inputs.py); tests/adapters/test_cli.py
has the first CLI argument table. The rows here are the rest of what a user can
get wrong. Every row checks that the input is refused in the right way (an
exception type, or an exit status), and that the message names the input, shows
the bad value and says what is allowed (or what is wrong with a file). CLI rows
also check that stderr holds no Python traceback.

Most CLI rows call `softeq.adapters.cli.main(argv)` in-process (the same code the
console script runs); the `subprocess` rows go through `.venv/bin/softeq` for real.
The table found four bugs (see docs/reliability.md); they are fixed, and their rows pass.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import math
import os
import pickle
import shutil
import struct
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from softeq.adapters import checkpoint as ck
from softeq.adapters import cli, loop
from softeq.adapters.agents import A2CConfig, DQNConfig, SoftQConfig, default_config
from softeq.adapters.run_config import (
    ConfigError,
    RunConfig,
    build_algo_config,
    save_run_configs,
)

SOFTEQ = Path(sys.executable).with_name("softeq")
NAN = math.nan


@dataclasses.dataclass(frozen=True)
class Case:
    """One bad input.

    `kind`: "config" (`call()` must raise `error`), "cli" (in-process `main(argv)`),
    "subprocess" (the console script). `argv` may hold `{tmp}` / `{run}` / `{ckpt}`
    placeholders filled from the fixtures. `status` is the expected exit status.
    `must_contain`: the pieces of the message (name, value, allowed/what is wrong).
    """

    id: str
    kind: str
    must_contain: tuple[str, ...]
    call: Callable[[], object] | None = None
    error: type[BaseException] = ValueError
    argv: tuple[str, ...] = ()
    status: int = cli.EXIT_USAGE
    setup: str = ""
    marks: tuple = ()


CASES: list[Case] = [
    # ---------------------------------------------------------------- algorithm configs
    Case(
        "a2c-negative-lr",
        "config",
        ("learning_rate", "-0.001", "> 0.0"),
        call=lambda: A2CConfig(learning_rate=-1e-3),
    ),
    Case(
        "a2c-zero-num-steps",
        "config",
        ("num_steps", "0", ">= 1"),
        call=lambda: A2CConfig(num_steps=0),
    ),
    Case(
        "a2c-fractional-num-steps",
        "config",
        ("num_steps", "2.5", "integer"),
        call=lambda: A2CConfig(num_steps=2.5),
    ),
    Case(
        "a2c-unknown-entropy",
        "config",
        ("entropy", "'fancy'", "'naive'", "'proper'"),
        call=lambda: A2CConfig(entropy="fancy"),
    ),
    Case(
        "a2c-unknown-optimizer",
        "config",
        ("optimizer", "'sgd'", "'rmsprop'", "'adam'"),
        call=lambda: A2CConfig(optimizer="sgd"),
    ),
    Case(
        "a2c-discount-above-one",
        "config",
        ("discount", "1.5", "<= 1.0"),
        call=lambda: A2CConfig(discount=1.5),
    ),
    Case(
        "soft-q-zero-temperature",
        "config",
        ("temperature", "0.0", "> 0.0"),
        call=lambda: SoftQConfig(temperature=0.0),
    ),
    Case(
        "soft-q-nan-temperature",
        "config",
        ("temperature", "nan", "finite"),
        call=lambda: SoftQConfig(temperature=NAN),
    ),
    Case(
        "dqn-unknown-target",
        "config",
        ("target", "'max'", "'hard'", "'soft-kl'", "'soft-entropy'"),
        call=lambda: DQNConfig(target="max"),
    ),
    Case(
        "dqn-negative-temperature",
        "config",
        ("temperature", "-0.1", "> 0.0"),
        call=lambda: DQNConfig(temperature=-0.1),
    ),
    Case(
        "dqn-replay-not-above-n-step",
        "config",
        ("replay_capacity", "3", "exceed", "n_step"),
        call=lambda: DQNConfig(n_step=3, replay_capacity=3),
    ),
    Case(
        "dqn-epsilon-end-above-one",
        "config",
        ("epsilon_end", "1.5", "<= 1.0"),
        call=lambda: DQNConfig(epsilon_end=1.5),
    ),
    Case(
        "dqn-dueling-not-bool",
        "config",
        ("dueling", "'yes'", "bool"),
        call=lambda: DQNConfig(dueling="yes"),
    ),
    Case(
        "dqn-batch-larger-than-replay",
        "config",
        ("batch_size", "128", "replay_capacity"),
        call=lambda: DQNConfig(batch_size=128, replay_capacity=64),
    ),
    Case(
        "default-config-unknown-algo",
        "config",
        ("algo", "'ppo'", "'a2c'", "'soft-q'", "'dqn'"),
        call=lambda: default_config("ppo", "CartPole-v1"),
    ),
    Case(
        "algo-field-of-another-algo",
        "config",
        ("--target", "'hard'", "not a hyperparameter", "entropy"),
        call=lambda: build_algo_config("a2c", "CartPole-v1", {"target": "hard"}),
        error=ConfigError,
    ),
    # ---------------------------------------------------------------- run config
    Case(
        "run-zero-total-steps",
        "config",
        ("--total-steps", "0", "> 0"),
        call=lambda: RunConfig(total_steps=0),
        error=ConfigError,
    ),
    Case(
        "run-fractional-total-steps",
        "config",
        ("--total-steps", "1.5", "integer"),
        call=lambda: RunConfig(total_steps=1.5),
        error=ConfigError,
    ),
    Case(
        "run-negative-num-envs",
        "config",
        ("--num-envs", "-1", ">= 1"),
        call=lambda: RunConfig(num_envs=-1),
        error=ConfigError,
    ),
    Case(
        "run-unknown-torso",
        "config",
        ("--torso", "'resnet'", "auto|nature|minatar|mlp"),
        call=lambda: RunConfig(torso="resnet"),
        error=ConfigError,
    ),
    Case(
        "run-unknown-backend",
        "config",
        ("--backend", "'vulkan'", "auto|ale|gymnasium"),
        call=lambda: RunConfig(backend="vulkan"),
        error=ConfigError,
    ),
    Case(
        "run-torso-for-other-frames",
        "config",
        ("--torso", "'nature'", "auto|minatar|mlp", "84×84 Atari frames"),
        call=lambda: RunConfig(env_id="Breakout-MinAtar", torso="nature"),
        error=ConfigError,
    ),
    Case(
        "run-unknown-eval-policy",
        "config",
        ("--eval-policy", "'boltzmann'", "auto|greedy|sample|epsilon"),
        call=lambda: RunConfig(eval_policy="boltzmann"),
        error=ConfigError,
    ),
    Case(
        "run-dqn-sampled-evaluation",
        "config",
        ("--eval-policy", "'sample'", "auto|greedy|epsilon", "no stochastic policy"),
        call=lambda: RunConfig(algo="dqn", eval_policy="sample"),
        error=ConfigError,
    ),
    Case(
        "run-eval-epsilon-above-one",
        "config",
        ("--eval-epsilon", "1.5", "0 <= ε <= 1"),
        call=lambda: RunConfig(eval_epsilon=1.5),
        error=ConfigError,
    ),
    Case(
        "run-negative-eval-cap",
        "config",
        ("--eval-max-episode-steps", "-5", ">= 1", "0 = auto"),
        call=lambda: RunConfig(eval_max_episode_steps=-5),
        error=ConfigError,
    ),
    Case(
        "checkpoint-manager-keep-zero",
        "config",
        ("keep", "0", ">= 1"),
        call=lambda: ck.CheckpointManager("unused", keep=0),
    ),
    # ---------------------------------------------------------------- CLI, in-process
    Case(
        "cli-negative-lr",
        "cli",
        ("--learning-rate", "-0.1", "> 0.0"),
        argv=("train", "--learning-rate", "-0.1"),
    ),
    Case(
        "cli-nan-lr",
        "cli",
        ("--learning-rate", "nan", "finite"),
        argv=("train", "--learning-rate", "nan"),
    ),
    Case(
        "cli-zero-temperature-soft-q",
        "cli",
        ("--temperature", "0.0", "> 0.0"),
        argv=("train", "--algo", "soft-q", "--temperature", "0"),
    ),
    Case(
        "cli-zero-num-steps",
        "cli",
        ("--num-steps", "0", ">= 1"),
        argv=("train", "--num-steps", "0"),
    ),
    Case(
        "cli-unknown-optimizer",
        "cli",
        ("--optimizer", "'sgd'", "rmsprop|adam"),
        argv=("train", "--optimizer", "sgd"),
    ),
    Case(
        "cli-dqn-zero-batch",
        "cli",
        ("--batch-size", "0", ">= 1"),
        argv=("train", "--algo", "dqn", "--batch-size", "0"),
    ),
    Case(
        "cli-dqn-replay-too-small",
        "cli",
        ("--replay-capacity", "1", "exceed"),
        argv=("train", "--algo", "dqn", "--replay-capacity", "1"),
    ),
    Case(
        "cli-dqn-negative-learning-starts",
        "cli",
        ("--learning-starts", "-1", ">= 0"),
        argv=("train", "--algo", "dqn", "--learning-starts", "-1"),
    ),
    Case(
        "cli-negative-eval-every",
        "cli",
        ("--eval-every", "-1", ">= 0"),
        argv=("train", "--eval-every", "-1"),
    ),
    Case(
        "cli-eval-epsilon-not-a-number",
        "cli",
        ("--eval-epsilon", "'abc'", "must be a number"),
        argv=("train", "--eval-epsilon", "abc"),
    ),
    Case(
        "cli-fractional-eval-cap",
        "cli",
        ("--eval-max-episode-steps", "2.5", "integer"),
        argv=("compare", "--eval-max-episode-steps", "2.5"),
    ),
    Case(
        "cli-evaluate-unknown-policy",
        "cli",
        ("--eval-policy", "'boltzmann'", "auto|greedy|sample|epsilon"),
        argv=("evaluate", "{run}", "--eval-policy", "boltzmann"),
    ),
    Case(
        "cli-zero-checkpoint-every",
        "cli",
        ("--checkpoint-every", "0", "> 0"),
        argv=("train", "--checkpoint-every", "0"),
    ),
    Case(
        "cli-zero-keep-checkpoints",
        "cli",
        ("--keep-checkpoints", "0", ">= 1"),
        argv=("train", "--keep-checkpoints", "0"),
    ),
    Case(
        "cli-negative-seed",
        "cli",
        ("--seed", "-3", "0 <= seed < 2**31"),
        argv=("train", "--seed", "-3"),
    ),
    Case(
        "cli-seed-too-large",
        "cli",
        ("--seed", "4294967296", "2**31"),
        argv=("train", "--seed", "4294967296"),
    ),
    Case(
        "cli-num-envs-not-a-number",
        "cli",
        ("--num-envs", "'abc'", "integer"),
        argv=("train", "--num-envs", "abc"),
    ),
    Case(
        "cli-unknown-ale-game",
        "cli",
        ("--env", "'ALE/NoSuchGame-v5'", "ALE/Pong-v5"),
        argv=("train", "--env", "ALE/NoSuchGame-v5"),
    ),
    Case(
        "cli-zero-stop-after",
        "cli",
        ("--stop-after", "0", "> 0"),
        argv=("train", "--stop-after", "0"),
    ),
    Case(
        "cli-unknown-flag",
        "cli",
        ("--bogus-flag", "unrecognized"),
        argv=("train", "--bogus-flag", "1"),
    ),
    Case("cli-unknown-command", "cli", ("'frobnicate'", "train", "evaluate"), argv=("frobnicate",)),
    Case(
        "cli-evaluate-zero-episodes",
        "cli",
        ("--episodes", "0", ">= 1"),
        argv=("evaluate", "{tmp}", "--episodes", "0"),
    ),
    Case(
        "cli-plot-missing-folder",
        "cli",
        ("path", "no-such-run", "run folder"),
        argv=("plot", "{tmp}/no-such-run"),
    ),
    Case(
        "cli-demo-zero-steps",
        "cli",
        ("--total-steps", "0", "> 0"),
        argv=("demo", "--total-steps", "0"),
    ),
    Case(
        "cli-compare-seed-not-a-number",
        "cli",
        ("--seeds", "'x'", "integer"),
        argv=("compare", "--seeds", "x"),
    ),
    Case(
        "cli-compare-unknown-field",
        "cli",
        ("--algos", "a2c:bogus=1", "entropy"),
        argv=("compare", "--algos", "a2c:bogus=1"),
    ),
    Case(
        "cli-unknown-backend",
        "cli",
        ("--backend", "'vulkan'", "auto|ale|gymnasium"),
        argv=("train", "--backend", "vulkan", "--run-dir", "{tmp}/backend-run"),
    ),
    Case(
        "cli-resume-folder-without-run",
        "cli",
        ("--resume", "empty-folder", "no softeq run"),
        argv=(
            "train",
            "--resume",
            "--total-steps",
            "32",
            "--num-envs",
            "4",
            "--eval-every",
            "0",
            "--eval-episodes",
            "0",
            "--no-progress",
            "--run-dir",
            "{tmp}/empty-folder",
        ),
        setup="empty-folder",
    ),
    Case(
        "cli-resume-with-other-num-envs",
        "cli",
        ("--resume", "run.num_envs saved 4, now 8"),
        argv=("train", "--resume", "--num-envs", "8", "--run-dir", "{run}"),
    ),
    Case(
        "cli-evaluate-empty-folder",
        "cli",
        ("no checkpoint found", "empty-folder"),
        argv=("evaluate", "{tmp}/empty-folder"),
        setup="empty-folder",
        status=1,
    ),
    Case(
        "cli-evaluate-garbage-checkpoint",
        "cli",
        ("garbage.ckpt", "not a softeq checkpoint"),
        argv=("evaluate", "{tmp}/garbage.ckpt"),
        setup="garbage",
        status=1,
    ),
    Case(
        "cli-evaluate-old-format-checkpoint",
        "cli",
        ("old.ckpt", "format version 1", "older format", "never unpickled"),
        argv=("evaluate", "{tmp}/old.ckpt"),
        setup="old-format",
        status=1,
    ),
    Case(
        "cli-evaluate-checkpoint-with-object-array",
        "cli",
        ("object.ckpt", "array record 0 is refused", "dtype object"),
        argv=("evaluate", "{tmp}/object.ckpt"),
        setup="object-array",
        status=1,
    ),
    Case(
        "cli-resume-checkpoint-of-another-algo",
        "cli",
        ("algo='a2c'", "algo='soft-q'", "belongs to"),
        argv=("train", "--resume", "--run-dir", "{tmp}/soft-q-run"),
        setup="foreign-algo",
        status=1,
    ),
    # ---------------------------------------------------------------- CLI, real subprocess
    Case(
        "sub-unknown-algo",
        "subprocess",
        ("--algo", "'ppo'", "a2c|soft-q|dqn"),
        argv=("train", "--algo", "ppo"),
    ),
    Case(
        "sub-negative-total-steps",
        "subprocess",
        ("--total-steps", "-100", "> 0"),
        argv=("train", "--algo", "dqn", "--total-steps", "-100"),
    ),
    Case(
        "sub-folder-holds-another-run",
        "subprocess",
        ("--run-dir", "already holds a different run", "run.seed saved 0, now 9", "--force"),
        argv=("train", "--seed", "9", "--num-envs", "4", "--run-dir", "{run}"),
    ),
    Case(
        "sub-evaluate-missing-checkpoint",
        "subprocess",
        ("path", "missing.ckpt", "run folder or a checkpoint file"),
        argv=("evaluate", "{tmp}/missing.ckpt"),
    ),
    Case(
        "sub-evaluate-truncated-checkpoint",
        "subprocess",
        ("truncated.ckpt", "is truncated", "payload bytes"),
        argv=("evaluate", "{tmp}/truncated.ckpt"),
        setup="truncated",
        status=1,
    ),
    Case(
        "sub-resume-checkpoint-of-another-env",
        "subprocess",
        ("env='CartPole-v1'", "env='Acrobot-v1'", "belongs to"),
        argv=("train", "--resume", "--run-dir", "{tmp}/acrobot-run"),
        setup="foreign-env",
        status=1,
    ),
]


_SETUPS_WITHOUT_RUN = ("", "empty-folder", "garbage", "old-format", "object-array")


@pytest.fixture(scope="module")
def small_run(tmp_path_factory) -> Path:
    """A finished 64-step A2C CartPole run (4 envs, seed 0) with one checkpoint."""
    run_dir = tmp_path_factory.mktemp("small") / "run"
    run, algo_config = cli.make_configs(
        {
            "algo": "a2c",
            "num_envs": 4,
            "total_steps": 64,
            "eval_every": 0,
            "eval_episodes": 0,
            "progress": False,
            "run_dir": str(run_dir),
        },
        {},
    )
    loop.train(run, algo_config, out=lambda _line: None)
    assert ck.list_checkpoints(run_dir / "checkpoints")
    return run_dir


def _with_checksum(magic: bytes, body: bytes) -> bytes:
    """A checkpoint file around `body` whose length and SHA-256 fields are correct."""
    return magic + struct.pack("<Q32s", len(body), hashlib.sha256(body).digest()) + body


def _prepare(case: Case, tmp: Path, run_dir: Path) -> None:
    if case.setup in _SETUPS_WITHOUT_RUN:
        if case.setup == "empty-folder":
            (tmp / "empty-folder").mkdir()
        elif case.setup == "garbage":
            (tmp / "garbage.ckpt").write_bytes(os.urandom(300))
        elif case.setup == "old-format":
            # softeq's format 1: the body was a pickle (of plain data here; never loaded).
            body = pickle.dumps({"format": 1, "loop": {"env_steps": 64}}, protocol=5)
            (tmp / "old.ckpt").write_bytes(_with_checksum(b"SOFTEQ-CKPT\x01", body))
        elif case.setup == "object-array":
            # A format-2 file whose one array record has object dtype (a pickle inside).
            record = io.BytesIO()
            np.lib.format.write_array(record, np.array([None], dtype=object), allow_pickle=True)
            doc = json.dumps({"format": 2, "arrays": 1, "payload": {"x": {"$array": 0}}})
            body = struct.pack("<Q", len(doc)) + doc.encode() + record.getvalue()
            (tmp / "object.ckpt").write_bytes(_with_checksum(ck.MAGIC, body))
        return
    newest = ck.list_checkpoints(run_dir / "checkpoints")[-1][1]
    if case.setup == "garbage":
        (tmp / "garbage.ckpt").write_bytes(os.urandom(300))
    elif case.setup == "truncated":
        data = newest.read_bytes()
        (tmp / "truncated.ckpt").write_bytes(data[: len(data) // 2])
    elif case.setup in ("foreign-algo", "foreign-env"):
        # The configuration of another run, with the small A2C CartPole run's checkpoint.
        algo, env_id, name = (
            ("soft-q", "CartPole-v1", "soft-q-run")
            if case.setup == "foreign-algo"
            else ("a2c", "Acrobot-v1", "acrobot-run")
        )
        other = tmp / name
        run, algo_config = cli.make_configs(
            {"algo": algo, "env_id": env_id, "num_envs": 4, "run_dir": str(other)}, {}
        )
        save_run_configs(other, run, algo_config)
        (other / "checkpoints").mkdir()
        shutil.copy(newest, other / "checkpoints" / newest.name)
    elif case.setup:
        raise AssertionError(f"unknown setup {case.setup!r}")


def _fill(argv: tuple[str, ...], tmp: Path, run_dir: Path) -> list[str]:
    return [a.replace("{tmp}", str(tmp)).replace("{run}", str(run_dir)) for a in argv]


def _run_in_process(argv: list[str]) -> tuple[int, str]:
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            status = cli.main(argv)
        except SystemExit as exc:  # argparse's --help/--version paths
            status = exc.code if isinstance(exc.code, int) else 1
    return status, err.getvalue()


def _run_subprocess(argv: list[str]) -> tuple[int, str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("SOFTEQ_DEBUG", None)
    proc = subprocess.run(
        [str(SOFTEQ), *argv], capture_output=True, text=True, timeout=120, env=env
    )
    return proc.returncode, proc.stderr


def _check_message(message: str, pieces: tuple[str, ...]) -> None:
    missing = [p for p in pieces if p not in message]
    if missing:
        pytest.fail(f"message lacks {missing}: {message!r}")


@pytest.mark.parametrize(
    "case", [pytest.param(c, id=c.id, marks=c.marks) for c in CASES]
)  # fmt: skip
def test_bad_input_is_refused_with_a_message_naming_input_value_and_allowed(
    case: Case, tmp_path: Path, request: pytest.FixtureRequest
):
    if case.kind == "config":
        assert case.call is not None
        try:
            case.call()
        except case.error as exc:
            _check_message(str(exc), case.must_contain)
        else:
            pytest.fail(f"no {case.error.__name__} raised")
        return
    needs_run = case.setup not in _SETUPS_WITHOUT_RUN or any("{run}" in a for a in case.argv)
    small_run = request.getfixturevalue("small_run") if needs_run else tmp_path / "unused"
    _prepare(case, tmp_path, small_run)
    argv = _fill(case.argv, tmp_path, small_run)
    runner = _run_in_process if case.kind == "cli" else _run_subprocess
    status, err = runner(argv)
    assert "Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if ln.strip() and "Warning" not in ln]
    assert len(lines) == 1, f"exit {status} with {len(lines)} lines on stderr (one expected): {err}"
    _check_message(lines[0], case.must_contain)
    assert status == case.status, err
    if case.id == "cli-unknown-backend":
        # Refused before anything is written.
        assert not (tmp_path / "backend-run").exists()


def test_the_table_is_large_and_its_ids_unique():
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids))
    assert len(CASES) >= 30
    assert sum(c.kind == "subprocess" for c in CASES) <= 8
