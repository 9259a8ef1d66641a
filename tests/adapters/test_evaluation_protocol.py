"""Evaluation protocol: per-episode caps, sampled and ε-greedy policies, named errors.

An Atari agent that never presses FIRE must not idle through the env's whole
30-minute limit at every evaluation: the cap ends its episodes (tested on
Breakout with a NOOP-only agent on both backends). Sampled and ε-greedy
evaluations draw from a key derived from the evaluation seed, so they replay
exactly and leave the agent's training key alone.
"""

from __future__ import annotations

import re
import time

import jax
import numpy as np
import pytest

from softeq.adapters import agents, cli, loop
from softeq.adapters.envs import make_vector_env
from softeq.adapters.run_config import (
    ATARI_EVAL_MAX_EPISODE_STEPS,
    ConfigError,
    EvalProtocol,
    RunConfig,
    resolve_eval_protocol,
)

BREAKOUT = "ALE/Breakout-v5"


class _NoopAgent:
    """Always action 0 (NOOP): in Breakout the ball is never launched, so no episode ends."""

    def __init__(self):
        self.calls: list[tuple[str, float, tuple[int, ...]]] = []

    def act_greedy(self, state, obs):
        return np.zeros(len(obs), np.int32)

    def act_eval(self, state, obs, key, *, policy, epsilon):
        self.calls.append((policy, epsilon, tuple(np.asarray(key).tolist())))
        return np.zeros(len(obs), np.int32)


def _agent(algo: str, env):
    config = agents.default_config(algo, env.env_id)
    return agents.make_agent_for_env(algo, config, env, torso="mlp")


# --------------------------------------------------------------------------------------
# The protocol each run gets.
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env_id", "algo", "expected"),
    [
        (BREAKOUT, "a2c", EvalProtocol("sample", 0.05, ATARI_EVAL_MAX_EPISODE_STEPS)),
        (BREAKOUT, "soft-q", EvalProtocol("sample", 0.05, ATARI_EVAL_MAX_EPISODE_STEPS)),
        (BREAKOUT, "dqn", EvalProtocol("epsilon", 0.05, ATARI_EVAL_MAX_EPISODE_STEPS)),
        ("CartPole-v1", "a2c", EvalProtocol("greedy", 0.05, 0)),
        ("Acrobot-v1", "dqn", EvalProtocol("greedy", 0.05, 0)),
    ],
)
def test_auto_protocol_is_the_standard_one(env_id, algo, expected):
    assert resolve_eval_protocol(RunConfig(env_id=env_id, algo=algo)) == expected


def test_explicit_settings_override_the_auto_protocol():
    run = RunConfig(
        env_id=BREAKOUT,
        algo="dqn",
        eval_policy="greedy",
        eval_epsilon=0.2,
        eval_max_episode_steps=1000,
    )
    assert resolve_eval_protocol(run) == EvalProtocol("greedy", 0.2, 1000)
    cart = RunConfig(eval_policy="epsilon", eval_max_episode_steps=100)
    assert resolve_eval_protocol(cart) == EvalProtocol("epsilon", 0.05, 100)
    # 4 500 agent steps at frame skip 4 are Mnih et al.'s 18 000 frames (5 minutes).
    assert ATARI_EVAL_MAX_EPISODE_STEPS * 4 == 18_000


# --------------------------------------------------------------------------------------
# The cap.
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["ale", "gymnasium"])
def test_atari_evaluation_of_a_noop_agent_ends_at_the_cap(backend):
    # 3 episodes on 2 envs: sub-env 0 owes two, so its first episode is cut and it
    # plays on; with an uncapped greedy evaluation each would last 27 000 steps.
    env = make_vector_env(BREAKOUT, num_envs=2, seed=3, backend=backend)
    try:
        start = time.perf_counter()
        result = loop.evaluate_agent(
            _NoopAgent(), None, env, episodes=3, seed=5, max_episode_steps=60, max_steps=1_000
        )
        elapsed = time.perf_counter() - start
    finally:
        env.close()
    assert result["episodes"] == 3 and result["capped"] == 3
    assert result["lengths"] == [60.0, 60.0, 60.0]
    assert result["returns"] == [0.0, 0.0, 0.0]  # no ball, no points
    assert elapsed < 60  # 120 vector steps; generous for a loaded 2-core machine


def test_default_atari_protocol_ends_a_noop_agents_episodes_after_4500_steps():
    run = RunConfig(env_id=BREAKOUT, algo="a2c")
    protocol = resolve_eval_protocol(run)
    agent = _NoopAgent()
    env = make_vector_env(BREAKOUT, num_envs=2, seed=0)
    try:
        result = loop.evaluate_agent(
            agent,
            None,
            env,
            episodes=2,
            seed=1,
            policy=protocol.policy,
            epsilon=protocol.epsilon,
            max_episode_steps=protocol.max_episode_steps,
        )
    finally:
        env.close()
    assert result["capped"] == 2
    assert result["lengths"] == [float(ATARI_EVAL_MAX_EPISODE_STEPS)] * 2
    # the a2c protocol samples from π_θ: every step went through act_eval.
    assert len(agent.calls) == ATARI_EVAL_MAX_EPISODE_STEPS
    assert {policy for policy, _, _ in agent.calls} == {"sample"}


def test_episodes_that_end_before_the_cap_are_not_counted_as_capped():
    env = make_vector_env("CartPole-v1", num_envs=2, seed=0)
    agent = _NoopAgent()  # always pushes left: CartPole falls within ~10 steps
    try:
        result = loop.evaluate_agent(agent, None, env, episodes=4, seed=0, max_episode_steps=100)
    finally:
        env.close()
    assert result["capped"] == 0 and result["episodes"] == 4
    assert max(result["lengths"]) < 100


def test_cut_episodes_hands_back_the_return_so_far_and_leaves_other_sub_envs_alone():
    env = make_vector_env("CartPole-v1", num_envs=2, seed=4)
    try:
        obs = env.reset()
        for _ in range(5):
            obs = env.step(np.array([0, 1])).obs
        new_obs, returns, lengths = env.cut_episodes(np.array([True, False]))
        np.testing.assert_array_equal(new_obs[1], obs[1])
        assert returns[0] == 5.0 and lengths[0] == 5.0  # CartPole pays 1 per step
        assert np.isnan(returns[1]) and np.isnan(lengths[1])
        with pytest.raises(ValueError, match="`mask` must be a bool array"):
            env.cut_episodes(np.array([False, False]))
    finally:
        env.close()


# --------------------------------------------------------------------------------------
# Sampled and ε-greedy policies.
# --------------------------------------------------------------------------------------


def test_sampled_evaluation_replays_with_the_same_seed_and_leaves_the_training_key():
    env = make_vector_env("CartPole-v1", num_envs=2, seed=0)
    try:
        agent = _agent("a2c", env)
        state = agent.init(0, env.reset())
        rng_before = np.asarray(state.rng).copy()

        def evaluate(seed):
            return loop.evaluate_agent(agent, state, env, episodes=6, seed=seed, policy="sample")

        first, again, other = evaluate(7), evaluate(7), evaluate(8)
    finally:
        env.close()
    assert first["returns"] == again["returns"]
    assert first["returns"] != other["returns"]
    np.testing.assert_array_equal(np.asarray(state.rng), rng_before)
    assert agent.trace_counts["act_eval_sample"] == 1  # compiled once for the three calls


def test_evaluation_keys_come_from_the_seed_and_change_every_step():
    env = make_vector_env("CartPole-v1", num_envs=1, seed=0)
    agent = _NoopAgent()
    try:
        loop.evaluate_agent(agent, None, env, episodes=1, seed=11, policy="epsilon", epsilon=0.3)
    finally:
        env.close()
    keys = [key for _, _, key in agent.calls]
    assert len(set(keys)) == len(keys) > 1
    base = jax.random.PRNGKey(11)
    assert keys[0] == tuple(np.asarray(jax.random.fold_in(base, 0)).tolist())
    assert {(policy, epsilon) for policy, epsilon, _ in agent.calls} == {("epsilon", 0.3)}


@pytest.fixture(scope="module", params=["dqn", "a2c"])
def cartpole_agent(request):
    """`(agent, state)`: a freshly initialised CartPole agent of each algorithm."""
    env = make_vector_env("CartPole-v1", num_envs=2, seed=0)
    try:
        agent = _agent(request.param, env)
        return agent, agent.init(0, env.reset())
    finally:
        env.close()


@pytest.mark.parametrize("epsilon", [0.0, 0.3, 1.0])
def test_epsilon_greedy_picks_random_actions_at_the_expected_rate(cartpole_agent, epsilon):
    """With A = 2 actions a uniform draw differs from the greedy action half the time.

    So the fraction of actions that differ from greedy is ε/2 in expectation.
    Over 4 000 observations its standard deviation is at most √(0.25/4000) ≈
    0.008; the tolerance 0.04 is five of them. ε = 0 must match greedy exactly.
    ε is traced, so the three values share one compilation.
    """
    agent, state = cartpole_agent
    obs = np.random.default_rng(0).normal(size=(4000, 4)).astype(np.float32)
    greedy = agent.act_greedy(state, obs)
    fractions = []
    for step in range(3):
        key = jax.random.fold_in(jax.random.PRNGKey(0), step)
        actions = agent.act_eval(state, obs, key, policy="epsilon", epsilon=epsilon)
        assert actions.shape == (4000,) and actions.dtype == np.int32
        fractions.append(float(np.mean(actions != greedy)))
    if epsilon == 0.0:
        assert fractions == [0.0, 0.0, 0.0]
    else:
        assert np.mean(fractions) == pytest.approx(epsilon / 2, abs=0.04)
    assert agent.trace_counts["act_eval_epsilon"] == 1


# --------------------------------------------------------------------------------------
# Bad values.
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"policy": "boltzmann"}, ("`policy`", "'boltzmann'", "'greedy'", "'sample'", "'epsilon'")),
        ({"policy": "epsilon", "epsilon": 1.5}, ("`epsilon`", "1.5", "[0, 1]")),
        ({"epsilon": float("nan")}, ("`epsilon`", "nan", "[0, 1]")),
        ({"max_episode_steps": -1}, ("`max_episode_steps`", "-1", ">= 0")),
        ({"max_episode_steps": 2.5}, ("`max_episode_steps`", "2.5", "integer")),
    ],
)
def test_evaluate_agent_refuses_bad_protocol_values(options, named):
    env = make_vector_env("CartPole-v1", num_envs=1, seed=0)
    try:
        with pytest.raises(ValueError) as failure:
            loop.evaluate_agent(_NoopAgent(), None, env, episodes=1, seed=0, **options)
    finally:
        env.close()
    for piece in named:
        assert piece in str(failure.value)


def test_dqn_agent_refuses_to_sample_and_run_config_says_why():
    env = make_vector_env("CartPole-v1", num_envs=2, seed=0)
    try:
        agent = _agent("dqn", env)
        state = agent.init(0, env.reset())
        refused = re.escape("`policy` must be one of ('greedy', 'epsilon')")
        with pytest.raises(ValueError, match=refused):
            agent.act_eval(state, env.reset(), jax.random.PRNGKey(0), policy="sample")
    finally:
        env.close()
    with pytest.raises(ConfigError, match=r"--eval-policy.*'sample'.*no stochastic policy"):
        RunConfig(algo="dqn", eval_policy="sample")


def test_evaluate_command_uses_the_saved_protocol_and_accepts_overrides(tmp_path, capsys):
    run_dir = tmp_path / "run"
    run, algo_config = cli.make_configs(
        {
            "algo": "a2c",
            "num_envs": 2,
            "total_steps": 32,
            "eval_every": 0,
            "eval_episodes": 0,
            "progress": False,
            "run_dir": str(run_dir),
        },
        {},
    )
    loop.train(run, algo_config, out=lambda _line: None)
    capsys.readouterr()
    assert cli.main(["evaluate", str(run_dir), "--episodes", "2"]) == 0
    assert "(greedy policy, seed 12345)" in capsys.readouterr().out
    argv = ["evaluate", str(run_dir), "--episodes", "2", "--eval-policy", "sample"]
    assert cli.main([*argv, "--eval-max-episode-steps", "3"]) == 0
    assert "(sample policy, cap 3 steps, 2 capped, seed 12345)" in capsys.readouterr().out
    assert cli.main([*argv[:4], "--eval-epsilon", "2"]) == cli.EXIT_USAGE
    assert "--eval-epsilon: got 2.0" in capsys.readouterr().err
