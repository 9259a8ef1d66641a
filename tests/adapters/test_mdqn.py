"""Munchausen DQN (`mdqn`): its targets and update against a numpy reference, both drivers.

The reference computes the Munchausen target of [M1] in float64 from the
target network's Q-values (read once from the network, then handled in
numpy only): π = softmax(Q̄/τ), bonus ατ·clip(ln π(a|s), l0, 0), bootstrap
Σπ(Q̄ − τ ln π) at s' times γ·(1 − terminated). A truncated transition keeps
its discount γ there, because the replay hands over the ended episode's final
observation as s'. The agent computes in float32: targets are compared to
1e-5 relative (values of order 1–10, a few float32 roundings through
logsumexp), parameters after one Adam step to 1e-6 absolute (the step is
lr·sign-like, of order 1e-3, and rounding enters its sixth digit).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from softeq.adapters import jit_loop
from softeq.adapters.agents import default_config, get_algorithm, make_agent, mdqn
from softeq.adapters.agents.config import ConfigFieldError, MunchausenDQNConfig
from softeq.adapters.jit_driver import JitProgram, jit_default_overrides
from softeq.adapters.networks import make_q_network
from softeq.adapters.replay import NStepBatch

ENV = "CartPole-v1"


def _numpy_munchausen_targets(q_s, q_next, actions, rewards, terminated, config) -> np.ndarray:
    """y of [M1] in float64 from target Q-values `q_s`, `q_next` `[B, A]`."""
    tau, alpha, l0, gamma = (
        config.temperature,
        config.alpha,
        config.log_policy_clip,
        config.discount,
    )

    def log_softmax(q):
        z = q / tau
        z = z - z.max(axis=1, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=1, keepdims=True))

    log_pi_s = log_softmax(q_s)
    bonus = alpha * tau * np.clip(log_pi_s[np.arange(len(actions)), actions], l0, 0.0)
    log_pi_next = log_softmax(q_next)
    v_next = (np.exp(log_pi_next) * (q_next - tau * log_pi_next)).sum(axis=1)
    return rewards + bonus + gamma * (1.0 - terminated) * v_next


def _batch_and_parameters(seed: int, config, size: int = 32):
    rng = np.random.default_rng(seed)
    network = make_q_network(2, torso="mlp")
    obs = rng.normal(size=(size, 4)).astype(np.float32)
    params = network.init(jax.random.PRNGKey(seed), obs)
    # A target network that differs from the online one, with Q-values spread over
    # several τ so that the clip at l0 binds for some actions and not for others.
    target = jax.tree.map(lambda p: 3.0 * p, network.init(jax.random.PRNGKey(seed + 1), obs))
    terminated = (rng.random(size) < 0.2).astype(np.float32)
    truncated = ((rng.random(size) < 0.2) & (terminated == 0)).astype(np.float32)
    batch = NStepBatch(
        obs=obs,
        actions=rng.integers(0, 2, size=size).astype(np.int32),
        rewards=rng.normal(size=(size, 1)).astype(np.float32),
        terminated=terminated[:, None],
        truncated=truncated[:, None],
        next_obs=rng.normal(size=(size, 1, 4)).astype(np.float32),
    )
    return network, params, target, batch


def test_munchausen_targets_and_learner_update_equal_a_numpy_reference(shift_seeds):
    """Targets, loss and the parameters after one update, with terminations and truncations."""
    (seed,) = shift_seeds(11)
    config = default_config("mdqn", ENV)
    assert (config.temperature, config.alpha, config.log_policy_clip) == (0.03, 0.9, -1.0)
    network, params, target, batch = _batch_and_parameters(seed, config)
    q_s = np.asarray(network.apply(target, batch.obs), np.float64)
    q_next = np.asarray(network.apply(target, batch.next_obs[:, 0]), np.float64)
    expected = _numpy_munchausen_targets(
        q_s, q_next, batch.actions, batch.rewards[:, 0], batch.terminated[:, 0], config
    )
    # The clip binds for some sampled actions and not for others.
    log_pi = q_s / config.temperature - np.log(np.exp(q_s / config.temperature).sum(1))[:, None]
    taken = log_pi[np.arange(len(batch.actions)), batch.actions]
    assert (taken < -1.0).any() and (taken > -1.0).any()

    targets = mdqn.munchausen_dqn_targets(target, batch, apply=network.apply, config=config)
    np.testing.assert_allclose(np.asarray(targets), expected, rtol=1e-5, atol=1e-5)

    entry = get_algorithm("mdqn")
    optimizer = entry.make_optimizer(config, num_envs=4)
    learner = entry.init_learner(params, optimizer, config=config)
    learner = learner._replace(target_params=target)
    new_learner, metrics = jax.jit(
        entry.make_learner_update(network.apply, optimizer, config=config)
    )(learner, batch)

    # The same step taken on the Huber loss to the numpy targets.
    fixed = jnp.asarray(expected, jnp.float32)

    def reference_loss(p):
        q = network.apply(p, batch.obs)[jnp.arange(len(batch.actions)), batch.actions]
        return jnp.mean(optax.losses.huber_loss(q, fixed, delta=config.huber_delta))

    loss, grads = jax.value_and_grad(reference_loss)(params)
    updates, _ = optimizer.update(grads, optimizer.init(params), params)
    reference_params = optax.apply_updates(params, updates)
    np.testing.assert_allclose(float(metrics["loss"]), float(loss), rtol=1e-5)
    np.testing.assert_allclose(float(metrics["target_mean"]), expected.mean(), rtol=1e-5, atol=1e-5)
    for x, y in zip(
        jax.tree.leaves(new_learner.params), jax.tree.leaves(reference_params), strict=True
    ):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), atol=1e-6)
    assert int(new_learner.updates) == 1


def test_alpha_zero_is_the_soft_entropy_dqn_target(shift_seeds):
    """With α = 0 the Munchausen target is DQN's one-step soft-entropy target (truncations too)."""
    from softeq.adapters.agents.dqn import dqn_targets

    (seed,) = shift_seeds(12)
    config = MunchausenDQNConfig(alpha=0.0, temperature=0.5)
    network, _, target, batch = _batch_and_parameters(seed, config)
    soft_dqn = default_config("dqn", ENV, target="soft-entropy", temperature=0.5)
    np.testing.assert_allclose(
        np.asarray(mdqn.munchausen_dqn_targets(target, batch, apply=network.apply, config=config)),
        np.asarray(dqn_targets(target, batch, apply=network.apply, config=soft_dqn)),
        rtol=1e-5,
        atol=1e-5,
    )


def test_jitted_update_is_the_host_agents_update(shift_seeds):
    """The batch the jitted driver sampled, fed to the host agent's update, gives its parameters."""
    (seed,) = shift_seeds(13)
    fields = {**jit_default_overrides("mdqn", ENV, 10_000), "learning_starts": 0}
    config = default_config("mdqn", ENV, **fields, train_every=4, batch_size=16)
    program = JitProgram("mdqn", config, env_id=ENV, num_envs=4)
    state = jax.jit(program.init)(seed)
    agent = make_agent(
        "mdqn",
        config,
        num_actions=2,
        observation_shape=(4,),
        observation_dtype=np.float32,
        num_envs=4,
        torso="mlp",
    )
    host = agent.init(seed, np.asarray(state.obs))
    for x, y in zip(jax.tree.leaves(host.learner), jax.tree.leaves(state.learner), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    iteration = jax.jit(program.iteration_with_batch)
    learner = host.learner
    for index in range(4):
        state, log, batch = iteration(state, index)
        # 4 envs, one update per 4 transitions once 2 rows hold a 1-step window
        assert bool(log.updated) == (index >= 1)
        if not log.updated:
            continue
        learner, host_metrics = agent.learner_update(learner, jax.device_get(batch))
        for x, y in zip(jax.tree.leaves(state.learner), jax.tree.leaves(learner), strict=True):
            np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(log.learner["loss"], host_metrics["loss"], rtol=1e-5)
        assert "epsilon" in log.learner
    assert int(state.updates) == 3


def test_n_step_above_one_and_other_targets_are_refused_by_name():
    with pytest.raises(ConfigFieldError, match="`n_step`") as info:
        MunchausenDQNConfig(n_step=3)
    assert info.value.field == "n_step"
    with pytest.raises(ConfigFieldError, match="`target`") as info:
        MunchausenDQNConfig(target="hard")
    assert info.value.field == "target"
    with pytest.raises(ConfigFieldError, match="`log_policy_clip`"):
        MunchausenDQNConfig(log_policy_clip=0.5)
    with pytest.raises(ConfigFieldError, match="`alpha`"):
        MunchausenDQNConfig(alpha=1.5)


def test_a_short_cartpole_run_of_each_driver_exits_0(tmp_path, train_on_both_drivers):
    """2 000 CartPole steps on the host loop and on the jitted driver, side by side."""
    for driver, (out, metrics) in train_on_both_drivers("mdqn", tmp_path).items():
        assert "evaluation return" in out, driver
        assert np.isfinite(metrics["learner/loss"][1]).all()
        assert "learner/epsilon" in metrics
    assert jit_loop.read_summary(tmp_path / "jit")["algo"] == "mdqn"
