"""The jitted Atari env (ale-py's XLA interface) against the host loop's ALE env, and its runs.

Both envs are the same ale-py emulators built with the same `AtariOptions`;
the host one resets finished games itself (SAME_STEP), the jitted one through
a partial reset inside the program. With the same seeds and actions every
field of every step must be equal: observations, final observations, clipped
rewards, flags and episode statistics (exact: Atari returns are integers).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from softeq.adapters import ale_xla, envs, jit_loop
from softeq.adapters.agents import default_config
from softeq.adapters.jit_driver import JitProgram
from softeq.adapters.jit_loop import SeededProgram
from softeq.adapters.run_config import RunConfig

FIELDS = (
    "obs",
    "reward",
    "terminated",
    "truncated",
    "final_obs",
    "episode_returns",
    "episode_lengths",
)


def host_rollout(env_id, options, *, seed, actions):
    """Initial observations and the stacked `StepResult` fields of the host loop's ALE env."""
    num_envs = actions.shape[1]
    env = envs.make_vector_env(
        env_id, num_envs=num_envs, seed=seed, atari_options=options, backend="ale"
    )
    with env:
        first = env.reset()
        steps = [env.step(a) for a in actions]
    return first, {name: np.stack([getattr(s, name) for s in steps]) for name in FIELDS}


def jitted_rollout(env, seeds, actions):
    """The same under one jitted `lax.scan` of `AleXlaEnv.step`."""

    def run(seeds, actions):
        state, first = env.reset_seeded(seeds)

        def body(state, a):
            return env.step(None, state, a)

        return first, jax.lax.scan(body, state, actions)[1]

    first, steps = jax.jit(run)(seeds, actions)
    return np.asarray(first), {name: np.asarray(getattr(steps, name)) for name in FIELDS}


def assert_same_steps(host, jitted):
    for name in FIELDS:
        # float64 on the host, float32 in the program: the values are small integers.
        np.testing.assert_array_equal(
            np.asarray(jitted[name], np.float64), np.asarray(host[name], np.float64), err_msg=name
        )


def random_actions(num_steps, num_envs, num_actions, seed):
    rng = np.random.default_rng(seed)
    return rng.integers(0, num_actions, size=(num_steps, num_envs)).astype(np.int32)


def test_pong_rollout_equals_the_host_env_across_time_limit_truncations():
    # A 400-frame limit (100 agent steps) makes every game end by truncation twice in
    # 250 steps, so final observations, restarts and statistics are all compared.
    options = envs.AtariOptions(max_episode_frames=400)
    env = ale_xla.make_ale_xla_env("ALE/Pong-v5", num_envs=3, options=options)
    actions = random_actions(250, 3, env.num_actions, seed=1)
    host_first, host = host_rollout("ALE/Pong-v5", options, seed=7, actions=actions)
    first, jitted = jitted_rollout(env, 7 + jnp.arange(3), jnp.asarray(actions))
    np.testing.assert_array_equal(first, host_first)
    assert_same_steps(host, jitted)
    assert host["truncated"].sum() == 6 and not host["terminated"].any()
    assert np.isfinite(host["episode_returns"]).sum() == 6
    ended = host["truncated"]
    assert not np.array_equal(host["final_obs"][ended], host["obs"][ended])


def test_breakout_life_losses_and_game_overs_equal_the_host_env():
    # Random Breakout loses its 5 lives within a few hundred steps: life-loss terminations
    # (terminal_on_life_loss), real game overs and their restarts all occur.
    options = envs.AtariOptions(terminal_on_life_loss=True, clip_rewards=True)
    env = ale_xla.make_ale_xla_env("ALE/Breakout-v5", num_envs=2, options=options)
    actions = random_actions(600, 2, env.num_actions, seed=2)
    host_first, host = host_rollout("ALE/Breakout-v5", options, seed=11, actions=actions)
    first, jitted = jitted_rollout(env, 11 + jnp.arange(2), jnp.asarray(actions))
    np.testing.assert_array_equal(first, host_first)
    assert_same_steps(host, jitted)
    games_over = np.isfinite(host["episode_returns"]).sum()
    assert games_over >= 1
    assert host["terminated"].sum() > games_over  # life losses end bootstraps, not games


def test_seeds_folded_into_one_vector_env_equal_separate_host_envs():
    # Two lanes × 2 emulators under jax.vmap = one host env of 4 emulators seeded s … s + 3.
    options = envs.AtariOptions(max_episode_frames=200)
    env = ale_xla.make_ale_xla_env("ALE/Pong-v5", num_envs=2, lanes=2, options=options)
    actions = random_actions(120, 4, env.num_actions, seed=3)
    host_first, host = host_rollout("ALE/Pong-v5", options, seed=5, actions=actions)

    def lane(seeds, actions):
        state, first = env.reset_seeded(seeds)
        return first, jax.lax.scan(lambda s, a: env.step(None, s, a), state, actions)[1]

    seeds = (5 + jnp.arange(4)).reshape(2, 2)
    lane_actions = jnp.asarray(actions).reshape(120, 2, 2).swapaxes(0, 1)  # [lanes, T, N]
    first, steps = jax.jit(jax.vmap(lane))(seeds, lane_actions)
    np.testing.assert_array_equal(np.asarray(first).reshape(host_first.shape), host_first)
    jitted = {
        name: np.asarray(getattr(steps, name)).swapaxes(0, 1).reshape(host[name].shape)
        for name in FIELDS
    }
    assert_same_steps(host, jitted)


def test_a_vmap_of_another_size_than_the_lanes_or_none_is_refused_by_name():
    env = ale_xla.make_ale_xla_env("ALE/Pong-v5", num_envs=2, lanes=2)
    with pytest.raises(ValueError, match="built for `lanes`=2"):
        jax.eval_shape(jax.vmap(env.reset_seeded), jnp.zeros((3, 2), jnp.int32))
    # Unbatched it traces (lax.scan traces bodies before batching them) but refuses to run.
    with pytest.raises(Exception, match=r"built for `lanes`=2 and runs only under a jax\.vmap"):
        jax.block_until_ready(jax.jit(env.reset_seeded)(jnp.arange(2)))


@pytest.mark.parametrize(
    ("kwargs", "pieces"),
    [
        ({"env_id": "Pong-v0", "num_envs": 2}, ["`env_id`", "'Pong-v0'"]),
        ({"env_id": "ALE/Pong-v5", "num_envs": 0}, ["`num_envs`", "0"]),
        ({"env_id": "ALE/Pong-v5", "num_envs": 2, "lanes": 0}, ["`lanes`", "0"]),
    ],
)
def test_bad_arguments_are_refused_by_name(kwargs, pieces):
    with pytest.raises(ValueError) as info:
        ale_xla.make_ale_xla_env(**kwargs)
    assert all(p in str(info.value) for p in pieces)


def test_resume_restarts_the_emulators_and_keeps_the_learner_exact():
    config = default_config("a2c", "ALE/Pong-v5")
    program = JitProgram("a2c", config, env_id="ALE/Pong-v5", num_envs=2, lanes=2)
    seeded = SeededProgram(
        program, [3, 4], chunk_length=1, devices=ale_xla.program_devices(program, None)
    )
    state, _ = seeded.train_chunk(seeded.init(), 1, 0)
    saved = jax.device_get(jax.tree.leaves(state))
    restored = ale_xla.restart_envs(seeded, seeded.restore(saved), env_steps=10)
    for before, after in zip(
        jax.tree.leaves((state.learner, state.key, state.env_steps, state.updates)),
        jax.tree.leaves((restored.learner, restored.key, restored.env_steps, restored.updates)),
        strict=True,
    ):
        np.testing.assert_array_equal(np.asarray(after), np.asarray(before))
    # Fresh games: no running return, and the first observation's older frames are zeros.
    assert not np.asarray(restored.env.episode_length).any()
    assert not np.asarray(restored.obs)[:, :, :-1].any() and np.asarray(restored.obs).any()
    # The restored state trains on: the chunk program accepts it.
    state, _ = seeded.train_chunk(restored, 1, 1)
    assert int(np.asarray(state.updates)[0]) == 2


def test_a_stopped_run_resumes_with_fresh_games_and_says_so(tmp_path):
    run = RunConfig(
        env_id="ALE/Pong-v5",
        algo="a2c",
        driver="jit",
        num_envs=2,
        total_steps=40,
        eval_every=0,
        eval_episodes=1,
        eval_max_episode_steps=5,
        checkpoint_every=20,
        progress=False,
        run_dir=str(tmp_path / "run"),
    )
    config = default_config("a2c", "ALE/Pong-v5")
    first = jit_loop.train(run, config, stop_after_steps=20, out=lambda _: None)
    assert not first.finished and first.env_steps == 20
    lines: list[str] = []
    second = jit_loop.train(run, config, resume=True, out=lines.append)
    assert second.finished and second.env_steps == 40 and second.updates == [4]
    assert any("every env starts a fresh game" in line for line in lines), lines


def test_cli_trains_two_seeds_of_breakout_soft_q_with_the_jitted_driver(tmp_path):
    run_dir = tmp_path / "run"
    argv = [
        str(Path(sys.executable).with_name("softeq")),
        "train",
        "--env",
        "ALE/Breakout-v5",
        "--driver",
        "jit",
        "--algo",
        "soft-q",
        "--seeds",
        "0",
        "1",
        "--total-steps",
        "240",
        "--eval-episodes",
        "1",
        "--eval-max-episode-steps",
        "30",
        "--no-progress",
        "--run-dir",
        str(run_dir),
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((run_dir / jit_loop.SUMMARY_FILENAME).read_text())
    assert summary["backend"] == "ale" and summary["driver"] == "jit"
    assert summary["env_steps"] == 240 and summary["finished"]
    assert sorted(summary["seeds"]) == ["0", "1"]  # two seeds folded into one vector env
    for seed in summary["seeds"].values():
        assert seed["updates"] == 3 and seed["final_eval_episodes"] == 1
        assert seed["final_eval_return"] is not None
