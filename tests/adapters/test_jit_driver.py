"""The jitted driver: same learner updates as the host agents, one compilation, learning.

The learning tests train several seeds in one vmapped program on gymnax
CartPole-v1 with the jitted defaults (the CartPole settings of
`softeq.adapters.agents.config`, learning rate decaying to 0 over the budget)
and score each seed by the mean return of 10 greedy evaluation episodes after
training; a uniformly random policy scores about 22. Training is deterministic
on one machine but not across machines, so each seed's score is a draw from a
distribution; the thresholds (in each test's docstring) sit far below what the
distributions measured over many seeds reach, so that a new machine or seeds
shifted with `SOFTEQ_TEST_SEED_OFFSET` do not flip them, while a learner that
stops learning still fails.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from softeq.adapters import checkpoint as ck
from softeq.adapters import cli, jit_loop
from softeq.adapters.agents import default_config, make_agent
from softeq.adapters.jit_driver import (
    EvalSettings,
    JitProgram,
    device_replay_add,
    device_replay_init,
    device_replay_sample,
    device_replay_windows,
    jit_default_overrides,
)
from softeq.adapters.logger import read_metrics
from softeq.adapters.run_config import RunConfig

ENV = "CartPole-v1"
SOFTEQ = Path(sys.executable).with_name("softeq")
SUBPROCESS_ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}
for _name in (ck.FAULT_PAUSE_ENV, ck.FAULT_PAUSE_AT_ENV, "SOFTEQ_DEBUG", "XLA_FLAGS"):
    SUBPROCESS_ENV.pop(_name, None)


def _config(algo: str, total_steps: int, **fields):
    return default_config(algo, ENV, **{**jit_default_overrides(algo, ENV, total_steps), **fields})


def _assert_trees_equal(a, b) -> None:
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def _train_seeds(algo: str, seeds, total_steps: int, *, num_envs: int, episodes: int = 10):
    """Every seed trained in one program (one chunk): `(state, logs, eval returns [S, E])`."""
    program = JitProgram(
        algo,
        _config(algo, total_steps),
        env_id=ENV,
        num_envs=num_envs,
        evaluation=EvalSettings(episodes=episodes),
    )
    iterations = -(-total_steps // program.steps_per_iteration)
    seeded = jit_loop.SeededProgram(program, seeds, chunk_length=iterations)
    state, logs = seeded.train_chunk(seeded.init(), iterations, 0)
    returns, _, capped = jax.device_get(seeded.evaluate(state.learner.params, 0))
    assert not capped.any()
    assert seeded.trace_counts == {
        "init": 1,
        "train_chunk": 1,
        "evaluate": 1,
        "evaluate_with_video": 0,
    }
    return state, logs, returns


# --------------------------------------------------------------------------------------
# The driver computes the agents' learner updates.
# --------------------------------------------------------------------------------------


def test_actor_critic_update_is_the_host_agents_update(shift_seeds):
    """a2c; soft-q shares the rollout path and takes its update from the same registry entry."""
    (seed,) = shift_seeds(3)
    algo = "a2c"
    config = _config(algo, 40_000)  # with a decaying learning rate: the schedule must agree
    program = JitProgram(algo, config, env_id=ENV, num_envs=8)
    state = jax.jit(program.init)(seed)
    agent = make_agent(
        algo,
        config,
        num_actions=2,
        observation_shape=(4,),
        observation_dtype=np.float32,
        num_envs=8,
        torso="mlp",
    )
    host = agent.init(seed, np.asarray(state.obs))
    _assert_trees_equal(host.learner, state.learner)  # same seed, same initial parameters

    # Two driver iterations; the rollouts the driver collected, fed to the host agent's
    # update, must give the parameters the driver reached.
    iteration = jax.jit(program.iteration_with_batch)
    learner = host.learner
    for _ in range(2):
        state, log, rollout = iteration(state)
        learner, host_metrics = agent.learner_update(learner, jax.device_get(rollout))
        # Inside the bigger program XLA may fuse the same arithmetic differently; the
        # parameters (order 1) then differ by float32 rounding only.
        for x, y in zip(jax.tree.leaves(state.learner), jax.tree.leaves(learner), strict=True):
            np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(log.learner["loss"], host_metrics["loss"], rtol=1e-5)
    assert int(state.updates) == 2 and int(state.env_steps) == 2 * 8 * config.num_steps


def test_truncated_steps_bootstrap_from_the_final_observation(shift_seeds):
    """Envs that hit CartPole's time limit at different steps fold γ·V(s_final) into r.

    Envs 0-2 start 1, 4 and 7 steps before the 500-step limit, env 3 far from it.
    """
    (seed,) = shift_seeds(4)
    config = _config("a2c", 40_000)
    program = JitProgram("a2c", config, env_id=ENV, num_envs=4)
    state = jax.jit(program.init)(seed)
    env = state.env
    elapsed = jnp.asarray([499, 496, 493, 10], jnp.int32)
    state = state._replace(
        env=env._replace(env=env.env.replace(time=elapsed), episode_length=elapsed)
    )
    _, rollout, steps = jax.jit(program.collect_rollout)(state)
    truncated, terminated = np.asarray(steps.truncated), np.asarray(steps.terminated)
    assert [np.flatnonzero(truncated[:, n]).tolist() for n in range(4)] == [[0], [3], [6], []]
    assert not (truncated & terminated).any()
    np.testing.assert_array_equal(steps.episode_lengths[truncated], 500)
    gamma = config.discount
    _, v_final = program.network.apply(state.learner.params, steps.final_obs[truncated])
    rewards, discounts = rollout.rewards.T, rollout.discounts.T  # [T, N]
    np.testing.assert_allclose(rewards[truncated], 1.0 + gamma * v_final, rtol=1e-6)
    np.testing.assert_array_equal(discounts[truncated], 0.0)
    np.testing.assert_array_equal(rewards[~truncated], 1.0)
    np.testing.assert_allclose(discounts[~truncated], gamma * (1.0 - terminated[~truncated]))
    # The next episode's first observation is what the next step acts on, not s_final.
    np.testing.assert_array_equal(rollout.obs[0, 1], steps.obs[0, 0])
    assert not np.allclose(steps.obs[0, 0], steps.final_obs[0, 0])
    # One value per env (the shortcut for rollouts within the limit) = a value per step.
    program.env.max_episode_steps = 0  # as if every rollout were longer than the limit
    _, every_step, _ = jax.jit(program.collect_rollout)(state)
    np.testing.assert_allclose(every_step.rewards, rollout.rewards, rtol=1e-6)
    np.testing.assert_array_equal(every_step.discounts, rollout.discounts)


def test_device_replay_windows_hold_their_own_next_observations():
    """Rows written in order come back as n-step windows of one env, never across a wrap;
    the next state is the next row, or the final observation where an episode was cut."""
    replay = device_replay_init(
        capacity=12, num_envs=2, observation_shape=(1,), observation_dtype=np.float32
    )
    assert replay.obs.shape == (6, 2, 1) and replay.final_obs.shape == (4, 1)
    for i in range(9):  # nine rows into six: rows 0-2 overwritten
        value = jnp.asarray([[10.0 * i], [10.0 * i + 1]])
        replay = device_replay_add(
            replay,
            value,
            jnp.asarray([i, i]),
            jnp.asarray([i, -i], jnp.float32),
            jnp.asarray([i == 5, False]),
            jnp.asarray([False, i == 6]),
            value + 5.0,
        )
    batch = jax.jit(lambda r, k: device_replay_sample(r, k, batch_size=400, n=3))(
        replay, jax.random.PRNGKey(0)
    )
    start = np.asarray(batch.actions)
    env = np.asarray(batch.obs[:, 0] % 10).astype(int)
    # Row i + 3 holds the last next state: starts 3-5 (rows 3-8 stored, 8 the last).
    assert set(start.tolist()) == {3, 4, 5}
    assert set(env.tolist()) == {0, 1}
    window = start[:, None] + np.arange(3)
    np.testing.assert_array_equal(batch.rewards, np.where(env[:, None] == 0, window, -window))
    truncated = (window == 6) & (env[:, None] == 1)
    next_row = 10.0 * (window + 1) + env[:, None]
    final = next_row - 5.0  # the row's own observation + 5: its final observation
    np.testing.assert_array_equal(batch.next_obs[..., 0], np.where(truncated, final, next_row))
    np.testing.assert_array_equal(batch.terminated, (window == 5) & (env[:, None] == 0))
    np.testing.assert_array_equal(batch.truncated, truncated)


class _ChosenDraws:
    """Stands in for a numpy Generator: `integers` returns the arrays it was given, in turn."""

    def __init__(self, *draws):
        self.draws = list(draws)

    def integers(self, low, high, size):
        drawn = self.draws.pop(0)
        assert drawn.shape == (size,) and low <= drawn.min() and drawn.max() < high
        return drawn


def test_device_replay_is_the_host_replay_buffer():
    """The same transitions into the device replay and the host loop's `ReplayBuffer`: the
    same arrays after every row (side ring, reused slots and lost truncations included),
    and the same n-step windows at the same (start, env)."""
    from softeq.adapters import replay as host_replay

    rng = np.random.default_rng(7)
    num_envs, n = 3, 3
    kwargs = dict(capacity=30, num_envs=num_envs, observation_shape=(2,))
    host = host_replay.replay_init(**kwargs, observation_dtype=np.float32)
    device = device_replay_init(**kwargs, observation_dtype=jnp.float32)
    add = jax.jit(device_replay_add)
    for _ in range(40):  # 10 rows and 6 slots: rows wrap and truncations outlive slots
        obs = rng.normal(size=(num_envs, 2)).astype(np.float32)
        actions = rng.integers(0, 4, num_envs).astype(np.int32)
        rewards = rng.normal(size=num_envs).astype(np.float32)
        terminated = rng.random(num_envs) < 0.15
        truncated = rng.random(num_envs) < 0.3
        final_obs = rng.normal(size=(num_envs, 2)).astype(np.float32)
        row = (obs, actions, rewards, terminated, truncated, final_obs)
        host = host_replay.replay_add(host, *row)
        device = add(device, *map(jnp.asarray, row))
        for name in host._fields:
            np.testing.assert_array_equal(getattr(device, name), getattr(host, name), name)
    assert int(host.lost_truncations) > 0  # the case the side ring's owners guard
    rows = host.actions.shape[0]
    start = np.repeat(np.arange(40 - rows, 40 - n), num_envs)
    env = np.tile(np.arange(num_envs), rows - n)
    want = host_replay.replay_sample(host, _ChosenDraws(start, env), batch_size=start.size, n=n)
    got = device_replay_windows(device, jnp.asarray(start), jnp.asarray(env), n=n)
    for name in want._fields:
        np.testing.assert_array_equal(getattr(got, name), getattr(want, name), name)
    assert 0 < want.truncated.sum() and (want.terminated.sum() > 0)


def test_dqn_update_is_the_host_agents_update(shift_seeds):
    """The n-step batch the driver sampled, fed to the host agent's update, gives its parameters."""
    (seed,) = shift_seeds(5)
    config = _config("dqn", 10_000, learning_starts=0, train_every=4, batch_size=16, n_step=3)
    program = JitProgram("dqn", config, env_id=ENV, num_envs=4)
    state = jax.jit(program.init)(seed)
    agent = make_agent(
        "dqn",
        config,
        num_actions=2,
        observation_shape=(4,),
        observation_dtype=np.float32,
        num_envs=4,
        torso="mlp",
    )
    host = agent.init(seed, np.asarray(state.obs))
    _assert_trees_equal(host.learner, state.learner)
    iteration = jax.jit(program.iteration_with_batch)
    learner = host.learner
    for index in range(4):
        state, log, batch = iteration(state, index)
        # 4 envs, one update per 4 transitions, once 4 rows hold a 3-step window.
        assert bool(log.updated) == (index >= 3)
        if not log.updated:
            continue
        assert batch.rewards.shape == (16, 3) and batch.next_obs.shape == (16, 3, 4)
        learner, host_metrics = agent.learner_update(learner, jax.device_get(batch))
        for x, y in zip(jax.tree.leaves(state.learner), jax.tree.leaves(learner), strict=True):
            np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(log.learner["loss"], host_metrics["loss"], rtol=1e-5)
    assert int(state.updates) == 1 and int(state.env_steps) == 16


# --------------------------------------------------------------------------------------
# Learning, several seeds in one program.
# --------------------------------------------------------------------------------------


def test_a2c_learns_cartpole_with_seeds_in_one_program_run_in_chunks(tmp_path, shift_seeds, capsys):
    """5 seeds × 100k steps (32 envs × 8 steps) through `jit_loop.train`, 4 chunks.

    Score: greedy evaluation, 10 episodes per seed, after training. Measured
    over seeds 0-23 (one program, this machine): min 140, median 228, lowest
    five 140, 141, 149, 155, 156. Random play scores about 22. Asserted: at
    least 4 of 5 seeds ≥ 100 and the median ≥ 120.

    The same run checks the host side: one compilation per function over
    several chunks, a folder per seed with per-episode rows, one learner row
    per chunk and the evaluation, and `summary.json`.
    """
    seeds = shift_seeds(0, 1, 2, 3, 4)
    run = RunConfig(
        env_id=ENV,
        algo="a2c",
        seeds=tuple(seeds),
        total_steps=100_000,
        checkpoint_every=25_600,
        eval_every=0,
        eval_episodes=10,
        progress=False,
        run_dir=str(tmp_path / "run"),
    )
    result = jit_loop.train(run, _config("a2c", run.total_steps), out=lambda _line: None)
    assert result.finished and result.env_steps == 391 * 256
    assert result.trace_counts == {
        "init": 1,
        "train_chunk": 1,
        "evaluate": 1,
        "evaluate_with_video": 0,
    }
    scores = np.asarray([fe["return_mean"] for fe in result.final_evals])
    assert (scores >= 100).sum() >= 4, scores
    assert np.median(scores) >= 120, scores

    summary = jit_loop.read_summary(run.run_dir)
    assert set(summary["seeds"]) == {str(s) for s in seeds}
    assert set(summary["compile_s"]) == {"init", "train_chunk", "evaluate", "total"}
    for i, s in enumerate(seeds):
        entry = summary["seeds"][str(s)]
        assert entry["final_eval_return"] == scores[i] and entry["final_eval_episodes"] == 10
        assert entry["env_steps"] == 391 * 256 and entry["sps"] > 0
        metrics = read_metrics(tmp_path / "run" / f"seed-{s}")
        steps, _ = metrics["learner/loss"]
        assert steps.tolist() == [25_600, 51_200, 76_800, 100_096]  # one row per chunk
        returns = metrics["train/episode_return"][1]
        assert returns.size == result.episodes[i]
        assert returns[:20].mean() < returns[-20:].mean()
        assert metrics["eval/return_mean"][1].tolist() == [scores[i]]
        # CartPole's own 500-step limit ends every episode; no evaluation cap is hit.
        assert metrics["eval/capped_episodes"][1].tolist() == [0.0]
    saved = [step for step, _ in ck.list_checkpoints(tmp_path / "run" / "checkpoints")]
    assert saved == [51_200, 76_800, 100_096]  # every chunk, the newest three kept

    # `softeq evaluate` and `softeq plot` take the run folder of a jitted run.
    assert cli.main(["evaluate", run.run_dir, "--episodes", "2"]) == 0
    assert "over 10 episodes (greedy policy, seed 12345)" in capsys.readouterr().out
    assert cli.main(["plot", run.run_dir]) == 0
    for s in seeds:
        assert (tmp_path / "run" / f"seed-{s}" / "training.png").stat().st_size > 0


def test_soft_q_learns_cartpole_with_seeds_in_one_program(shift_seeds):
    """5 seeds × 100k steps, as the a2c test; greedy evaluation, 10 episodes per seed.

    Measured over seeds 100-123: min 159, median 270, lowest five 159, 166,
    169, 171, 174. Asserted: at least 4 of 5 seeds ≥ 100 and the median ≥ 120.
    """
    _, _, returns = _train_seeds("soft-q", shift_seeds(0, 1, 2, 3, 4), 100_000, num_envs=32)
    scores = returns.mean(axis=1)
    assert (scores >= 100).sum() >= 4, scores
    assert np.median(scores) >= 120, scores


def test_dqn_learns_cartpole_with_seeds_in_one_program(shift_seeds):
    """4 seeds × 50k steps (4 envs, the CartPole DQN defaults); greedy eval, 10 episodes.

    Measured over seeds 0-15 and 100-115: min 103, medians 138 and 125, lowest
    five 103, 104, 108, 108, 109. Random play scores about 22. Asserted: at
    least 3 of 4 seeds ≥ 60 and the median ≥ 80.
    """
    _, _, returns = _train_seeds("dqn", shift_seeds(0, 1, 2, 3), 50_000, num_envs=4)
    scores = returns.mean(axis=1)
    assert (scores >= 60).sum() >= 3, scores
    assert np.median(scores) >= 80, scores


def test_munchausen_dqn_learns_cartpole_with_seeds_in_one_program(shift_seeds):
    """4 seeds × 50k steps (4 envs, the CartPole defaults); greedy eval, 10 episodes.

    Measured over seeds 0-15 and 100-115: min 102, medians 147 and 127, lowest
    five 102, 105, 107, 107, 109. Asserted as for DQN: at least 3 of 4 seeds ≥ 60
    and the median ≥ 80.
    """
    _, _, returns = _train_seeds("mdqn", shift_seeds(0, 1, 2, 3), 50_000, num_envs=4)
    scores = returns.mean(axis=1)
    assert (scores >= 60).sum() >= 3, scores
    assert np.median(scores) >= 80, scores


def test_discrete_sac_learns_cartpole_with_seeds_in_one_program(shift_seeds):
    """4 seeds × 50k steps (4 envs, the CartPole defaults); greedy eval, 10 episodes.

    Measured over seeds 0-15 and 100-115: min 135, medians 214 and 221, lowest
    five 135, 160, 166, 168, 170. Asserted: at least 3 of 4 seeds ≥ 80 and the
    median ≥ 100.
    """
    _, _, returns = _train_seeds("sac-discrete", shift_seeds(0, 1, 2, 3), 50_000, num_envs=4)
    scores = returns.mean(axis=1)
    assert (scores >= 80).sum() >= 3, scores
    assert np.median(scores) >= 100, scores


# --------------------------------------------------------------------------------------
# Through the command line, in subprocesses.
# --------------------------------------------------------------------------------------


def test_minatar_runs_for_every_algorithm_through_the_cli(tmp_path):
    """A few thousand Breakout-MinAtar steps per algorithm (the three run side by side)."""
    # Evaluation is compiled and checked once (a2c): each MinAtar program costs seconds.
    extra = {
        "a2c": ["--eval-episodes", "2"],
        "soft-q": ["--eval-episodes", "0"],
        "dqn": [
            "--eval-episodes",
            "0",
            "--learning-starts",
            "512",
            "--replay-capacity",
            "4096",
            "--batch-size",
            "16",
        ],
    }
    procs = {}
    for algo, flags in extra.items():
        argv = [
            "train",
            "--env",
            "Breakout-MinAtar",
            "--algo",
            algo,
            "--total-steps",
            "2048",
            "--num-envs",
            "8",
            "--checkpoint-every",
            "1024",
            "--no-progress",
            "--run-dir",
            str(tmp_path / algo),
            *flags,
        ]
        procs[algo] = subprocess.Popen(
            [str(SOFTEQ), *argv],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=SUBPROCESS_ENV,
        )
    for algo, proc in procs.items():
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
        assert "1 seed(s) in one program" in out
        summary = jit_loop.read_summary(tmp_path / algo)
        assert summary["env_id"] == "Breakout-MinAtar" and summary["env_steps"] >= 2048
        evaluated = summary["seeds"]["0"]["final_eval_episodes"]
        assert evaluated == (2 if algo == "a2c" else None)
        metrics = read_metrics(tmp_path / algo / "seed-0")
        assert "learner/loss" in metrics and np.isfinite(metrics["learner/loss"][1]).all()
        assert "train/episode_return" in metrics


def test_sigkill_mid_checkpoint_then_resume_ends_bit_for_bit_like_an_uninterrupted_run(
    tmp_path, shift_seeds
):
    seeds = [str(s) for s in shift_seeds(7, 8)]
    common = [
        "train",
        "--env",
        ENV,
        "--algo",
        "a2c",
        "--seeds",
        *seeds,
        "--num-envs",
        "4",
        "--total-steps",
        "6144",
        "--checkpoint-every",
        "1024",
        "--eval-every",
        "2048",
        "--eval-episodes",
        "2",
        "--no-progress",
    ]

    def start(run_dir: Path, *extra: str, env=SUBPROCESS_ENV) -> subprocess.Popen:
        argv = [str(SOFTEQ), *common, "--run-dir", str(run_dir), *extra]
        return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)

    marker = tmp_path / "paused"
    pause = {**SUBPROCESS_ENV, ck.FAULT_PAUSE_ENV: str(marker), ck.FAULT_PAUSE_AT_ENV: "3"}
    reference = start(tmp_path / "reference")
    victim = start(tmp_path / "victim", env=pause)
    deadline = time.monotonic() + 300
    try:
        while not marker.exists():  # the third checkpoint write sleeps half written
            assert victim.poll() is None, victim.stderr.read().decode()
            assert time.monotonic() < deadline, "timed out waiting for the paused write"
            time.sleep(0.01)
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=30)
        assert victim.returncode == -signal.SIGKILL
    finally:
        if victim.poll() is None:
            victim.kill()
            victim.wait()
    ckpt_dir = tmp_path / "victim" / "checkpoints"
    assert [s for s, _ in ck.list_checkpoints(ckpt_dir)] == [1024, 2048]
    assert list(ckpt_dir.glob(".tmp-ckpt-*"))  # the killed write left its partial file
    resumed = start(tmp_path / "victim", "--resume")
    for proc in (reference, resumed):
        proc.wait(timeout=300)
        assert proc.returncode == 0, proc.stderr.read().decode()

    final = {}
    for name in ("reference", "victim"):
        payload, path = ck.resolve_checkpoint(tmp_path / name)
        assert path.name == ck.checkpoint_name(6144)
        final[name] = payload
    _assert_trees_equal(final["reference"]["state"], final["victim"]["state"])
    for s in seeds:  # the logs continue exactly where the checkpoint left them
        rows = {}
        for name in ("reference", "victim"):
            with open(tmp_path / name / f"seed-{s}" / "metrics.csv") as fh:
                rows[name] = [
                    (step, tag, value)
                    for step, _, tag, value in (line.split(",") for line in fh)
                    if tag != "train/sps"  # a wall-clock measurement
                ]
        assert rows["reference"] == rows["victim"]
    summaries = [jit_loop.read_summary(tmp_path / name) for name in ("reference", "victim")]
    for s in seeds:
        assert (
            summaries[0]["seeds"][s]["final_eval_return"]
            == (summaries[1]["seeds"][s]["final_eval_return"])
        )


@pytest.mark.parametrize(
    ("argv", "pieces"),
    [
        (
            ["--env", "ALE/Pong-v5", "--driver", "jit", "--backend", "gymnasium"],
            ["--backend", "'gymnasium'", "XLA interface"],
        ),
        (["--env", "ALE/Pong-v5", "--backend", "gymnax"], ["--backend", "gymnax has no"]),
        (["--env", "Breakout-MinAtar", "--backend", "gymnasium"], ["only in gymnax"]),
        (["--env", "Breakout-MinAtar", "--driver", "host"], ["--driver", "host", "jitted"]),
        (["--driver", "host", "--seeds", "0", "1"], ["--seeds", "[0, 1]", "softeq compare"]),
        (["--seeds", "3", "3"], ["--seeds", "each seed at most once"]),
        (["--driver", "warp"], ["--driver", "'warp'", "auto|jit|host"]),
    ],
)
def test_combinations_that_cannot_run_are_refused_by_name(tmp_path, capsys, argv, pieces):
    status = cli.main(["train", *argv, "--run-dir", str(tmp_path / "run")])
    assert status == cli.EXIT_USAGE
    line = capsys.readouterr().err.strip()
    assert "\n" not in line and all(p in line for p in pieces), line


def test_sigterm_saves_a_checkpoint_and_stops_with_status_130(tmp_path, shift_seeds):
    run_dir = tmp_path / "run"
    argv = [
        str(SOFTEQ),
        "train",
        "--env",
        ENV,
        "--seed",
        str(shift_seeds(9)[0]),
        "--num-envs",
        "4",
        "--total-steps",
        "100000000",
        "--checkpoint-every",
        "4096",
        "--eval-episodes",
        "0",
        "--no-progress",
        "--run-dir",
        str(run_dir),
    ]
    proc = subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=SUBPROCESS_ENV
    )
    deadline = time.monotonic() + 300
    try:
        while not ck.list_checkpoints(run_dir / "checkpoints"):
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline, "timed out waiting for a checkpoint"
            time.sleep(0.01)
        first = ck.list_checkpoints(run_dir / "checkpoints")[0][0]
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == cli.EXIT_INTERRUPTED, err
    assert "stopped by signal" in err and "continue with --resume" in err
    payload, path = ck.resolve_checkpoint(run_dir)
    # saved at the end of the chunk in progress (the first one's, if the signal came
    # between that checkpoint and the check of the flag)
    assert payload["loop"]["env_steps"] >= first and path.name in err
    assert not (run_dir / jit_loop.SUMMARY_FILENAME).exists()  # the run did not finish


_SHARDING_SCRIPT = """
import jax, numpy as np
from softeq.adapters import jit_loop
from softeq.adapters.agents import default_config
from softeq.adapters.jit_driver import JitProgram

assert jax.device_count() == 4, jax.devices()
config = default_config("a2c", "CartPole-v1", lr_decay_steps=20_000)
program = JitProgram("a2c", config, env_id="CartPole-v1", num_envs=8)
seeds = [int(s) for s in "{seeds}".split(",")]

def train(devices):
    seeded = jit_loop.SeededProgram(program, seeds, chunk_length=20, devices=devices)
    state, _ = seeded.train_chunk(seeded.init(), 20, 0)
    spread = len(jax.tree.leaves(state.learner.params)[0].sharding.device_set)
    return spread, jax.device_get(state)

spread, state4 = train(jax.devices())
single, state1 = train(jax.devices()[:1])
assert (spread, single) == (4, 1), (spread, single)
worst = 0.0
for a, b in zip(jax.tree.leaves(state4), jax.tree.leaves(state1), strict=True):
    if np.issubdtype(a.dtype, np.floating):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
        worst = max(worst, float(np.abs(a - b).max()))
    else:
        np.testing.assert_array_equal(a, b)
print("close", worst)
"""


def test_four_seeds_on_four_devices_equal_the_same_seeds_on_one(shift_seeds):
    """Seeds laid over 4 forced host devices (`NamedSharding`, axis "seeds") train as on one.

    Integer state (env steps, updates, PRNG keys, episode counters) must be
    identical. Floats agree to float32 rounding, not bit for bit: with one seed
    per device XLA:CPU runs each batched product and reduction over 1 lane
    instead of 4, which sums in another order (measured: 1 ulp after one
    update, at most 5e-7 on the parameters after 40). Over 20 updates the
    tolerance rtol 1e-4, atol 1e-5 leaves a wide margin above that drift and
    far below what a wrong seed or a lost update would change.
    """
    seeds = ",".join(str(s) for s in shift_seeds(0, 1, 2, 3))
    env = {**SUBPROCESS_ENV, "XLA_FLAGS": "--xla_force_host_platform_device_count=4"}
    proc = subprocess.run(
        [sys.executable, "-c", _SHARDING_SCRIPT.replace("{seeds}", seeds)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.startswith("close")


def _small_run(tmp_path, algo: str, total_steps: int) -> RunConfig:
    """One seed, 4 envs, a checkpoint every 1024 env steps, no evaluation."""
    return RunConfig(
        env_id=ENV,
        algo=algo,
        seeds=(0,),
        num_envs=4,
        total_steps=total_steps,
        checkpoint_every=1024,
        eval_every=0,
        eval_episodes=0,
        progress=False,
        run_dir=str(tmp_path / "run"),
    )


def test_a_resumed_run_reports_the_wall_time_of_all_its_sittings(tmp_path):
    """`summary.json`'s `wall_s` adds the earlier sittings (as the checkpoint resumed
    from records them) to the last one; a checkpoint from before that record gives
    its loggers' clock instead."""
    run = _small_run(tmp_path, "a2c", 3072)
    config = _config("a2c", run.total_steps)
    quiet = {"out": lambda _line: None}
    first = jit_loop.train(run, config, stop_after_steps=1024, **quiet)
    assert not first.finished
    assert first.total_wall_s == pytest.approx(first.wall_s, abs=0.05)
    payload, path = ck.resolve_checkpoint(tmp_path / "run")
    recorded = payload["loop"]["wall_s"]
    assert 0 < recorded <= first.wall_s
    second = jit_loop.train(run, config, resume=True, stop_after_steps=2048, **quiet)
    assert second.total_wall_s == pytest.approx(recorded + second.wall_s, abs=0.05)

    # The same checkpoint as an older softeq wrote it: no wall time of its own, format 1
    # (an actor-critic's state is the same in both formats).
    payload, path = ck.resolve_checkpoint(tmp_path / "run")
    payload["format"] = 1
    del payload["loop"]["wall_s"]
    payload["loggers"][0]["elapsed_s"] = 1000.0
    ck.CheckpointManager(path.parent, keep=1).save(2048, payload)
    third = jit_loop.train(run, config, resume=True, **quiet)
    assert third.finished
    assert third.total_wall_s == pytest.approx(1000.0 + third.wall_s, abs=0.05)
    assert jit_loop.read_summary(tmp_path / "run")["wall_s"] == third.total_wall_s


def test_a_replay_checkpoint_of_another_layout_is_refused_by_name(tmp_path):
    """Format 1 kept a second array of next observations in the replay: an older softeq's
    dqn checkpoint cannot be continued, and says so (as does one from a newer softeq)."""
    run = _small_run(tmp_path, "dqn", 2048)
    config = _config("dqn", run.total_steps)
    quiet = {"out": lambda _line: None}
    assert not jit_loop.train(run, config, stop_after_steps=1024, **quiet).finished
    payload, path = ck.resolve_checkpoint(tmp_path / "run")
    assert payload["format"] == jit_loop.JIT_CHECKPOINT_FORMAT == 2
    for saved, message in ((1, "stored every observation twice"), (3, "newer than")):
        payload["format"] = saved
        ck.CheckpointManager(path.parent, keep=1).save(1024, payload)
        with pytest.raises(ck.CheckpointError, match=message):
            jit_loop.train(run, config, resume=True, **quiet)
        with pytest.raises(ck.CheckpointError, match=message):
            jit_loop.evaluate_checkpoint(tmp_path / "run", episodes=1)
