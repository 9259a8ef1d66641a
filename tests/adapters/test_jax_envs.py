"""Tests of softeq.adapters.jax_envs: the gymnax wrapper keeps the step contract of envs.py."""

from __future__ import annotations

import gymnax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from softeq.adapters.jax_envs import JAX_ENV_IDS, MINATAR_IDS, make_jax_env

CART_POLE_LIMITS = (2.4, 12 * 2 * np.pi / 360)  # |x| and |θ| beyond which CartPole terminates


def _random_rollout(env, key, num_envs: int, steps: int):
    """`steps` uniformly random steps of `num_envs` copies; results stacked `[steps, N, ...]`."""

    def body(carry, key):
        state = carry
        action_key, step_key = jax.random.split(key)
        actions = jax.random.randint(action_key, (num_envs,), 0, env.num_actions)
        state, result = env.step(step_key, state, actions)
        return state, result

    state, first_obs = env.reset(key, num_envs)
    _, results = jax.lax.scan(body, state, jax.random.split(jax.random.fold_in(key, 1), steps))
    return first_obs, jax.device_get(results)


@pytest.mark.parametrize("env_id", JAX_ENV_IDS)
def test_every_id_traces_with_the_advertised_shapes(env_id):
    # Traced, not compiled: compiling the seven games would take a minute on two cores.
    env = make_jax_env(env_id)
    first_obs, r = jax.eval_shape(lambda k: _random_rollout(env, k, 3, 4), jax.random.key(0))
    assert first_obs.shape == (3, *env.observation_shape)
    assert first_obs.dtype == env.observation_dtype == r.obs.dtype == r.final_obs.dtype
    assert r.obs.shape == r.final_obs.shape == (4, 3, *env.observation_shape)
    assert r.reward.dtype == np.float32 and r.terminated.dtype == r.truncated.dtype == np.bool_
    assert r.episode_returns.shape == r.episode_lengths.shape == (4, 3)
    if env_id in MINATAR_IDS:
        assert len(env.observation_shape) == 3 and env.observation_shape[:2] == (10, 10)
        assert env.observation_dtype == np.uint8
    else:
        assert env.observation_dtype == np.float32 and len(env.observation_shape) == 1


def test_minatar_observations_are_gymnax_observations_as_uint8():
    env = make_jax_env("Seaquest-MinAtar")
    raw_env, params = gymnax.make("Seaquest-MinAtar")
    key = jax.random.key(3)
    _, obs = env.reset(key, 2)
    raw_obs, _ = jax.vmap(raw_env.reset, in_axes=(0, None))(jax.random.split(key, 2), params)
    np.testing.assert_array_equal(obs, np.asarray(raw_obs).astype(np.uint8))
    np.testing.assert_array_equal(np.asarray(obs, np.float32), raw_obs)


def test_cartpole_terminations_end_episodes_reset_and_report_returns():
    env = make_jax_env("CartPole-v1")
    num_envs, steps = 8, 200
    _, r = jax.jit(lambda k: _random_rollout(env, k, num_envs, steps))(jax.random.key(1))
    ended = r.terminated | r.truncated
    assert r.terminated.sum() > 20 and not r.truncated.any()  # random play falls quickly
    # Where an episode terminated, final_obs is past a limit and obs is a fresh start.
    final = r.final_obs[r.terminated]
    past = (np.abs(final[:, 0]) > CART_POLE_LIMITS[0]) | (np.abs(final[:, 2]) > CART_POLE_LIMITS[1])
    assert past.all()
    assert np.abs(r.obs[r.terminated]).max() <= 0.05
    np.testing.assert_array_equal(r.final_obs[~ended], r.obs[~ended])
    # Returns and lengths: NaN except at episode ends, where they count the episode's steps.
    assert np.isnan(r.episode_returns[~ended]).all()
    np.testing.assert_array_equal(r.episode_returns[ended], r.episode_lengths[ended])
    for env_index in range(num_envs):
        ends = np.flatnonzero(ended[:, env_index])
        lengths = np.diff(np.concatenate([[-1], ends]))
        np.testing.assert_array_equal(r.episode_lengths[ends, env_index], lengths)
    assert (r.reward == 1.0).all()


def test_time_limits_are_truncations_that_hand_over_the_final_observation():
    # Random Acrobot almost never swings up, so its episodes run into the 500-step limit.
    env = make_jax_env("Acrobot-v1")
    assert env.max_episode_steps == 500
    num_envs = 4
    _, r = jax.jit(lambda k: _random_rollout(env, k, num_envs, 501))(jax.random.key(2))
    limit_hit = r.episode_lengths == 500
    assert limit_hit[499].sum() >= 3
    assert (r.truncated == limit_hit).all() and not (r.truncated & r.terminated).any()
    rows = r.truncated[499]
    np.testing.assert_array_equal(r.episode_returns[499][rows], -500.0)
    # The final observation continues the episode (it is not the next one's start).
    assert not np.allclose(r.final_obs[499][rows], r.obs[499][rows])
    np.testing.assert_array_equal(r.final_obs[498][rows], r.obs[498][rows])


def test_same_keys_and_actions_give_the_same_steps():
    env = make_jax_env("Breakout-MinAtar")
    run = jax.jit(lambda k: _random_rollout(env, k, 2, 30))
    a, b = run(jax.random.key(5)), run(jax.random.key(5))
    jax.tree.map(np.testing.assert_array_equal, a, b)
    assert set(np.unique(a[1].obs)) == {0, 1}


def test_bad_ids_and_arguments_are_refused_by_name():
    with pytest.raises(ValueError, match=r"`env_id`.*Breakout-MinAtar.*'Pong-v0'"):
        make_jax_env("Pong-v0")
    env = make_jax_env("CartPole-v1")
    with pytest.raises(ValueError, match="`num_envs`"):
        env.reset(jax.random.key(0), 0)
    state, _ = env.reset(jax.random.key(0), 2)
    with pytest.raises(ValueError, match=r"`actions` must have shape \(2,\)"):
        env.step(jax.random.key(0), state, jnp.zeros(3, jnp.int32))
