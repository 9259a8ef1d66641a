"""The training loop: exact resume, checkpoint fallback, divergence handling, evaluation."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest

from softeq.adapters import checkpoint as ck
from softeq.adapters import loop
from softeq.adapters.envs import StepResult, make_vector_env
from softeq.adapters.logger import read_metrics
from softeq.adapters.run_config import RunConfig, build_algo_config

SOFTEQ = Path(sys.executable).with_name("softeq")

# Small but complete runs: several learner updates, evaluations and checkpoints.
_ALGO_OVERRIDES = {
    "a2c": {},
    "soft-q": {},
    "dqn": {"learning_starts": 200, "batch_size": 16, "replay_capacity": 2_000},
}


def _configs(run_dir: Path, algo: str = "soft-q", **run_changes):
    fields = dict(
        env_id="CartPole-v1",
        algo=algo,
        seed=3,
        num_envs=4,
        total_steps=1_600,
        eval_every=800,
        eval_episodes=2,
        checkpoint_every=320,
        keep_checkpoints=3,
        run_dir=str(run_dir),
        progress=False,
    )
    fields.update(run_changes)
    return RunConfig(**fields), build_algo_config(algo, "CartPole-v1", _ALGO_OVERRIDES[algo])


def _quiet(_line: str) -> None:
    pass


def _final_state(run_dir: Path):
    payload, _ = ck.resolve_checkpoint(run_dir)
    return payload, jax.tree.leaves(payload["agent_state"])


def _metric_rows(run_dir: Path) -> dict:
    """All metrics except wall-clock dependent ones (train/sps)."""
    return {k: v for k, v in read_metrics(run_dir).items() if k != "train/sps"}


def _assert_same_run(a: Path, b: Path) -> None:
    pa, la = _final_state(a)
    pb, lb = _final_state(b)
    assert pa["loop"]["env_steps"] == pb["loop"]["env_steps"]
    assert len(la) == len(lb)
    for x, y in zip(la, lb, strict=True):
        np.testing.assert_array_equal(x, y)
    ma, mb = _metric_rows(a), _metric_rows(b)
    assert ma.keys() == mb.keys()
    for tag in ma:
        np.testing.assert_array_equal(ma[tag][0], mb[tag][0], err_msg=tag)
        np.testing.assert_array_equal(ma[tag][1], mb[tag][1], err_msg=tag)


@pytest.fixture(scope="module")
def reference_runs(tmp_path_factory):
    """Uninterrupted runs, one per algorithm, trained lazily and shared by the tests."""
    cache: dict[str, Path] = {}

    def get(algo: str) -> Path:
        if algo not in cache:
            run_dir = tmp_path_factory.mktemp(f"reference-{algo}")
            run, cfg = _configs(run_dir, algo)
            result = loop.train(run, cfg, out=_quiet)
            assert result.finished and result.env_steps == run.total_steps
            assert result.updates > 5
            cache[algo] = run_dir
        return cache[algo]

    return get


@pytest.mark.parametrize("algo", ["a2c", "soft-q", "dqn"])
def test_stop_and_resume_equals_uninterrupted_run(tmp_path, reference_runs, algo):
    run, cfg = _configs(tmp_path, algo)
    stopped = loop.train(run, cfg, stop_after_steps=700, out=_quiet)
    assert not stopped.finished and 700 <= stopped.env_steps < run.total_steps
    resumed = loop.train(run, cfg, resume=True, out=_quiet)
    assert resumed.finished and resumed.env_steps == run.total_steps
    _assert_same_run(reference_runs(algo), tmp_path)


def test_resume_falls_back_to_previous_checkpoint_when_newest_is_corrupt(tmp_path, reference_runs):
    run, cfg = _configs(tmp_path)
    loop.train(run, cfg, stop_after_steps=1_000, out=_quiet)
    paths = ck.CheckpointManager(loop.checkpoint_dir(tmp_path)).paths()
    assert len(paths) >= 2
    newest = paths[-1]
    newest.write_bytes(newest.read_bytes()[:-100])  # truncated
    lines: list[str] = []
    with pytest.warns(UserWarning, match="unusable checkpoint"):
        loop.train(run, cfg, resume=True, out=lines.append)
    assert any(f"resumed from {paths[-2]}" in line for line in lines)
    _assert_same_run(reference_runs("soft-q"), tmp_path)


def test_sigkill_after_a_checkpoint_then_resume_gives_identical_parameters(tmp_path):
    """The real thing: a CLI run killed with SIGKILL resumes to the same final parameters."""
    common = [
        "train",
        "--driver",
        "host",
        "--env",
        "CartPole-v1",
        "--algo",
        "soft-q",
        "--seed",
        "5",
        "--num-envs",
        "4",
        "--total-steps",
        "3000",
        "--checkpoint-every",
        "200",
        "--eval-every",
        "0",
        "--eval-episodes",
        "0",
        "--no-progress",
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    ref = subprocess.run(
        [SOFTEQ, *common, "--run-dir", str(tmp_path / "ref")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert ref.returncode == 0, ref.stderr
    victim_dir = tmp_path / "victim"
    victim = subprocess.Popen(
        [SOFTEQ, *common, "--run-dir", str(victim_dir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        deadline = time.monotonic() + 240
        while not ck.list_checkpoints(victim_dir / "checkpoints"):
            assert victim.poll() is None, "the run ended before its first checkpoint"
            assert time.monotonic() < deadline, "no checkpoint appeared"
            time.sleep(0.02)
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=60)
    finally:
        if victim.poll() is None:
            victim.kill()
    assert victim.returncode == -signal.SIGKILL
    saved = ck.list_checkpoints(victim_dir / "checkpoints")
    assert saved and saved[-1][0] < 3000, "the run was not interrupted before the end"
    resumed = subprocess.run(
        [SOFTEQ, *common, "--run-dir", str(victim_dir), "--resume"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed from" in resumed.stdout
    _assert_same_run(tmp_path / "ref", victim_dir)


def test_sigint_saves_a_checkpoint_and_exits_130(tmp_path):
    run_dir = tmp_path / "run"
    args = [
        "train",
        "--driver",
        "host",
        "--algo",
        "a2c",
        "--num-envs",
        "4",
        "--total-steps",
        "200000",
        "--checkpoint-every",
        "100000",
        "--eval-every",
        "0",
        "--eval-episodes",
        "0",
        "--no-progress",
        "--run-dir",
        str(run_dir),
    ]
    proc = subprocess.Popen(
        [SOFTEQ, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        deadline = time.monotonic() + 240
        # Wait until training is under way (the first learner rows are on disk).
        while (
            not (run_dir / "metrics.csv").exists()
            or "learner/" not in (run_dir / "metrics.csv").read_text()
        ):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "continue with --resume" in err and "Traceback" not in err
    saved = ck.list_checkpoints(run_dir / "checkpoints")
    assert len(saved) == 1 and 0 < saved[0][0] < 100_000
    payload = ck.read_checkpoint(saved[0][1])
    assert payload["loop"]["env_steps"] == saved[0][0]


class _NaNAfter:
    """Wraps an agent: from update `k` on, the reported loss is NaN (a diverging learner)."""

    def __init__(self, agent, k: int, *, poison_params: bool = False):
        self._agent = agent
        self._k = k
        self._poison = poison_params
        self.updates = 0
        self.fault_step: int | None = None
        self.steps = 0

    def __getattr__(self, name):
        return getattr(self._agent, name)

    def observe(self, state, obs, actions, step):
        state, metrics = self._agent.observe(state, obs, actions, step)
        self.steps += len(actions)
        if metrics is not None:
            self.updates += 1
            if self.updates >= self._k:
                if self.fault_step is None:
                    self.fault_step = self.steps
                if self._poison:
                    learner = state.learner
                    params = jax.tree.map(lambda x: x * np.nan, learner.params)
                    state = state._replace(learner=learner._replace(params=params))
                else:
                    metrics = {**metrics, "loss": float("nan")}
        return state, metrics


@pytest.mark.parametrize("poison_params", [False, True], ids=["nan-loss", "nan-params"])
def test_non_finite_values_stop_the_run_and_keep_the_last_good_checkpoint(tmp_path, poison_params):
    run, cfg = _configs(tmp_path, total_steps=4_000, eval_every=0, eval_episodes=0)
    wrapper = {}

    def wrap(agent):
        wrapper["w"] = _NaNAfter(agent, k=20, poison_params=poison_params)
        return wrapper["w"]

    match = "non-finite values in the agent state" if poison_params else "non-finite learner"
    with pytest.raises(loop.NonFiniteError, match=match):
        loop.train(run, cfg, agent_wrapper=wrap, out=_quiet)
    fault_step = wrapper["w"].fault_step
    assert fault_step is not None
    found = ck.CheckpointManager(loop.checkpoint_dir(tmp_path)).paths()
    assert found, "the checkpoints written before the fault must remain"
    for path in found:
        payload = ck.read_checkpoint(path)  # every remaining checkpoint verifies
        assert payload["loop"]["env_steps"] < fault_step
        for leaf in jax.tree.leaves(payload["agent_state"]):
            if np.issubdtype(np.asarray(leaf).dtype, np.floating):
                assert np.isfinite(leaf).all()


class _FakeVectorEnv:
    """Sub-env i has episodes of length lengths[i] and return equal to that length."""

    def __init__(self, lengths):
        self.lengths = np.asarray(lengths)
        self.num_envs = len(lengths)
        self.t = np.zeros(self.num_envs, np.int64)

    def reset(self, seed=None):
        self.t[:] = 0
        return np.zeros((self.num_envs, 1), np.float32)

    def step(self, actions):
        self.t += 1
        done = self.t >= self.lengths
        ret = np.where(done, self.t.astype(np.float64), np.nan)
        self.t[done] = 0
        return StepResult(
            obs=np.zeros((self.num_envs, 1), np.float32),
            reward=np.ones(self.num_envs, np.float32),
            terminated=done,
            truncated=np.zeros(self.num_envs, bool),
            final_obs=np.zeros((self.num_envs, 1), np.float32),
            episode_returns=ret,
            episode_lengths=ret,
        )


class _ConstantAgent:
    def act_greedy(self, state, obs):
        return np.zeros(len(obs), np.int32)


def test_evaluation_takes_an_even_quota_from_each_sub_env():
    # Sub-env 0 finishes an episode every step, sub-env 1 every 10 steps: the first
    # four finished episodes would all be short ones; quotas of 2 + 2 are not biased.
    env = _FakeVectorEnv([1, 10])
    result = loop.evaluate_agent(_ConstantAgent(), None, env, episodes=4, seed=0)
    assert sorted(result["returns"]) == [1.0, 1.0, 10.0, 10.0]
    assert result["return_mean"] == pytest.approx(5.5)
    assert result["return_std"] == pytest.approx(4.5)
    odd = loop.evaluate_agent(_ConstantAgent(), None, _FakeVectorEnv([1, 10]), episodes=3, seed=0)
    assert sorted(odd["returns"]) == [1.0, 1.0, 10.0]


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Acrobot-v1"])
def test_classic_control_env_state_round_trips_exactly_through_a_checkpoint(tmp_path, env_id):
    """The env state is plain data: written to a checkpoint file, it restores exactly."""
    env = make_vector_env(env_id, num_envs=3, seed=11)
    env.reset()
    rng = np.random.default_rng(0)
    # Long enough for several CartPole episodes to end and auto-reset (their starts are
    # drawn from each sub-env's generator) and for Acrobot's 500-step limit to count.
    for _ in range(240):
        env.step(rng.integers(0, env.num_actions, 3))
    path = ck.write_checkpoint(tmp_path / "env.ckpt", {"env": loop.capture_env_state(env)})
    saved = ck.read_checkpoint(path)["env"]
    copy = make_vector_env(env_id, num_envs=3, seed=999)
    copy.reset()
    loop.restore_env_state(copy, saved)
    for actions in rng.integers(0, env.num_actions, (600, 3)):
        a, b = env.step(actions), copy.step(actions)
        for x, y in zip(a, b, strict=True):
            np.testing.assert_array_equal(x, y)
    env.close()
    copy.close()


def test_env_state_of_another_env_is_refused():
    cartpole = make_vector_env("CartPole-v1", num_envs=2, seed=0)
    cartpole.reset()
    state = cartpole.get_state()
    for other in (
        make_vector_env("Acrobot-v1", num_envs=2, seed=0),
        make_vector_env("CartPole-v1", num_envs=3, seed=0),
    ):
        with pytest.raises(ValueError, match="`state` must come from get_state"):
            other.set_state(state)
        other.close()
    cartpole.close()


@pytest.mark.filterwarnings("ignore:os.fork:RuntimeWarning")  # imageio starts ffmpeg
def test_video_of_an_evaluation_episode_is_written(tmp_path):
    run, cfg = _configs(tmp_path, "a2c", total_steps=160, eval_every=0, eval_episodes=1, video=True)
    result = loop.train(run, cfg, out=_quiet)
    videos = sorted((tmp_path / loop.VIDEO_DIRNAME).glob("*.mp4"))
    assert [v.name for v in videos] == ["eval-000000000160.mp4"]
    assert videos[0].stat().st_size > 1000
    assert result.final_eval is not None and result.final_eval["episodes"] == 1


def test_cartpole_frames_show_the_cart_where_the_state_puts_it():
    left = loop.render_classic_control("CartPole-v1", np.array([-2.0, 0.0, 0.0, 0.0]))
    right = loop.render_classic_control("CartPole-v1", np.array([2.0, 0.0, 0.0, 0.0]))
    cart_row = 300

    def cart_columns(img):
        return np.flatnonzero(img[cart_row, :, 0] == 40)

    assert cart_columns(left).mean() < 150 < 450 < cart_columns(right).mean()
