"""Exact expectations over enumerated trajectories, for the main theorem [E15].

The soft Q-learning gradient, the policy gradient and the value-fit gradient
are expectations over trajectories whose actions are drawn from the Boltzmann
policy of Q_θ. For a small MDP and a short horizon every trajectory can be
listed with its exact probability, so the expectations are finite weighted
sums and the identity

    ∇ L_soft-Q = τ ∇ L_PG + ∇ L_V           (= −τ · policy gradient + ∇ value fit)

can be checked to float64 round-off. The sampling distribution is computed
at the current parameters and treated as a constant, as in the paper.

`expected_gradients` returns both sides in expectation; `path_gradients`
returns the per-trajectory gradients (one row per path), from which sampled
batches are means of drawn rows.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from softeq.core import (
    TabularMDP,
    boltzmann_kl,
    boltzmann_policy_table,
    regularised_policy_gradient_loss,
    soft_n_step_advantages,
    soft_q_learning_loss,
    soft_value,
    value_loss,
)
from softeq.core._checks import check_positive_int, check_temperature, resolve_log_prior

SoftQLoss = Callable[..., jax.Array]

FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}
"""XLA options for the jitted expectations: the programs are small and run a few
times per shape, so compile time (about halved by these) dominates run time."""


class Trajectories(NamedTuple):
    """Every trajectory of a fixed horizon H with its exact probability.

    Attributes:
      states: `[N, H + 1]` int states s_0 … s_H.
      actions: `[N, H]` int actions a_0 … a_{H−1}.
      probabilities: `[N]` float64 probabilities (they sum to 1).
    """

    states: np.ndarray
    actions: np.ndarray
    probabilities: np.ndarray


@functools.lru_cache(maxsize=64)
def _path_indices(num_states: int, num_actions: int, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """`[N, H + 1]` states and `[N, H]` actions of every path; depends only on the shapes."""
    state_paths = np.array(list(itertools.product(range(num_states), repeat=horizon + 1)))
    action_paths = np.array(list(itertools.product(range(num_actions), repeat=horizon)))
    states = np.repeat(state_paths, len(action_paths), axis=0)
    actions = np.tile(action_paths, (len(state_paths), 1))
    states.flags.writeable = False
    actions.flags.writeable = False
    return states, actions


@functools.lru_cache(maxsize=64)
def _device_path_indices(num_states: int, num_actions: int, horizon: int):
    states, actions = _path_indices(num_states, num_actions, horizon)
    return jnp.asarray(states), jnp.asarray(actions)


def enumerate_trajectories(mdp: TabularMDP, policy: np.ndarray, *, horizon: int) -> Trajectories:
    """Lists all `(s_0, a_0, …, s_H)` paths of `mdp` under `policy` with their probabilities.

    Args:
      mdp: the MDP (its initial distribution gives s_0).
      policy: `[S, A]` action probabilities.
      horizon: H ≥ 1 transitions per path.

    Returns:
      `Trajectories` with N = S^(H+1)·A^H rows (zero-probability paths kept, so
      that N depends only on the shapes and jitted callers compile once).
    """
    check_positive_int(horizon, name="horizon")
    transitions = np.asarray(mdp.transitions, np.float64)
    mu = np.asarray(mdp.initial_distribution, np.float64)
    policy = np.asarray(policy, np.float64)
    num_states, num_actions = policy.shape
    states, actions = _path_indices(num_states, num_actions, horizon)
    probabilities = mu[states[:, 0]].copy()
    for t in range(horizon):
        probabilities *= policy[states[:, t], actions[:, t]]
        probabilities *= transitions[states[:, t], actions[:, t], states[:, t + 1]]
    return Trajectories(states, actions, probabilities)


class EquivalenceGradients(NamedTuple):
    """The two sides of [E15], as pytrees shaped like the parameters.

    Attributes:
      soft_q: ∇ E[L_soft-Q].
      policy_gradient: −∇ E[L_PG], the entropy-regularised policy gradient.
      value: ∇ E[L_V].
      combined: −τ · policy_gradient + value.
      max_abs_difference: `[]` max |soft_q − combined| over all leaves.
    """

    soft_q: object
    policy_gradient: object
    value: object
    combined: object
    max_abs_difference: float


class _Prepared(NamedTuple):
    paths: Trajectories
    states: jax.Array
    actions: jax.Array
    reward_table: jax.Array
    discounts: jax.Array
    log_prior: jax.Array
    dtype: object


def _prepare(
    q_table_fn, params, mdp, *, temperature, n, horizon, log_prior, terminal_states
) -> _Prepared:
    """Checks the arguments and enumerates the paths under the Boltzmann policy of Q_θ."""
    check_temperature(temperature)
    check_positive_int(n, name="n")
    check_positive_int(horizon, name="horizon")
    policy = _behaviour_policy(
        params,
        jnp.asarray(temperature, jnp.result_type(float)),
        None if log_prior is None else jnp.asarray(log_prior),
        q_table_fn=q_table_fn,
    )
    dtype = policy.dtype
    log_prior = resolve_log_prior(log_prior, policy.shape[-1], dtype)
    policy = np.asarray(policy)
    paths = enumerate_trajectories(mdp, policy, horizon=horizon)
    if terminal_states is None:
        terminal = np.zeros(mdp.num_states, bool)
    else:
        terminal = np.asarray(terminal_states, bool)
        if terminal.shape != (mdp.num_states,):
            raise ValueError(
                f"`terminal_states` must have shape [S] = ({mdp.num_states},), "
                f"got {terminal.shape}."
            )
    discounts = np.asarray(mdp.discount) * (1.0 - terminal[paths.states[:, 1:]])
    device_states, device_actions = _device_path_indices(*policy.shape, horizon)
    return _Prepared(
        paths,
        device_states,
        device_actions,
        jnp.asarray(mdp.rewards, dtype),
        jnp.asarray(discounts, dtype),
        log_prior,
        dtype,
    )


@functools.partial(jax.jit, static_argnames=("q_table_fn",))
def _behaviour_policy(params, temperature, log_prior, *, q_table_fn):
    """`[S, A]` Boltzmann policy of Q_θ, the sampling distribution of the paths."""
    return boltzmann_policy_table(q_table_fn(params), temperature=temperature, log_prior=log_prior)


def expected_gradients(
    q_table_fn: Callable[[object], jax.Array],
    params,
    mdp: TabularMDP,
    *,
    temperature: float,
    n: int,
    horizon: int,
    log_prior=None,
    terminal_states=None,
    soft_q_loss_fn: SoftQLoss = soft_q_learning_loss,
) -> EquivalenceGradients:
    """Both sides of the main theorem [E15] in exact expectation.

    Args:
      q_table_fn: maps `params` to the `[S, A]` table Q_θ (tabular, linear
        features, any differentiable model).
      params: the parameters θ (any pytree).
      mdp: a small MDP (S^(H+1)·A^H paths are enumerated).
      temperature: τ > 0.
      n: window of the n-step soft targets.
      horizon: trajectory length H.
      log_prior: `[A]` log π̄ shared by all states, or None for uniform.
      terminal_states: optional `[S]` bool; entering one sets the discount to 0.
      soft_q_loss_fn: the soft Q-learning loss to check; it must take the
        arguments of `softeq.core.soft_q_learning_loss`.

    Returns:
      `EquivalenceGradients`.
    """
    prepared = _prepare(
        q_table_fn,
        params,
        mdp,
        temperature=temperature,
        n=n,
        horizon=horizon,
        log_prior=log_prior,
        terminal_states=terminal_states,
    )
    soft_q, policy_gradient, value, combined, max_diff = _expected_gradients(
        params,
        prepared.states,
        prepared.actions,
        prepared.reward_table,
        prepared.discounts,
        jnp.asarray(prepared.paths.probabilities, prepared.dtype),
        prepared.log_prior,
        jnp.asarray(temperature, prepared.dtype),
        q_table_fn=q_table_fn,
        soft_q_loss_fn=soft_q_loss_fn,
        n=n,
    )
    return EquivalenceGradients(soft_q, policy_gradient, value, combined, float(max_diff))


class PathGradients(NamedTuple):
    """Per-trajectory gradients of the three losses of [E15].

    Every gradient is a pytree shaped like the parameters with an extra leading
    `[N]` axis, one row per path of `paths` (zero-probability paths included).

    Attributes:
      paths: the enumerated `Trajectories` with their probabilities.
      soft_q: ∇ L_soft-Q of each path.
      policy_gradient: −∇ L_PG of each path.
      value: ∇ L_V of each path.
      difference: soft_q − (−τ · policy_gradient + value), whose expectation
        over the paths is zero by [E15].
    """

    paths: Trajectories
    soft_q: object
    policy_gradient: object
    value: object
    difference: object


def path_gradients(
    q_table_fn: Callable[[object], jax.Array],
    params,
    mdp: TabularMDP,
    *,
    temperature: float,
    n: int,
    horizon: int,
    log_prior=None,
    terminal_states=None,
    soft_q_loss_fn: SoftQLoss = soft_q_learning_loss,
) -> PathGradients:
    """The per-sample gradients whose expectations `expected_gradients` returns.

    A batch of B sampled trajectories is B draws of a path index from
    `paths.probabilities`; the sampled estimate of either side of [E15] is the
    mean of the drawn rows. Arguments are those of `expected_gradients`.

    Returns:
      `PathGradients`.
    """
    prepared = _prepare(
        q_table_fn,
        params,
        mdp,
        temperature=temperature,
        n=n,
        horizon=horizon,
        log_prior=log_prior,
        terminal_states=terminal_states,
    )
    soft_q, policy_gradient, value, difference = _path_gradients(
        params,
        prepared.states,
        prepared.actions,
        prepared.reward_table,
        prepared.discounts,
        prepared.log_prior,
        jnp.asarray(temperature, prepared.dtype),
        q_table_fn=q_table_fn,
        soft_q_loss_fn=soft_q_loss_fn,
        n=n,
    )
    return PathGradients(prepared.paths, soft_q, policy_gradient, value, difference)


def _combine(policy_gradient, value, temperature):
    """−τ · policy gradient + value gradient, leaf by leaf."""
    return jax.tree_util.tree_map(
        lambda g_pg, g_v: -temperature * g_pg + g_v, policy_gradient, value
    )


def _path_losses(reward_table, log_prior, temperature, *, q_table_fn, soft_q_loss_fn, n):
    """The three per-trajectory losses as functions of `(params, s, a, d)`.

    `s` `[H + 1]` states, `a` `[H]` actions, `d` `[H]` discounts of one path.
    """

    def row_stats(rows):
        def one(row):
            return (
                soft_value(row, temperature=temperature, log_prior=log_prior),
                boltzmann_kl(row, temperature=temperature, log_prior=log_prior),
            )

        return jax.vmap(one)(rows)

    def advantages(q, s, a, r, d):
        v, kl = row_stats(jax.lax.stop_gradient(q[s]))
        return v, soft_n_step_advantages(
            r, d, v[:-1], v[1:], kl[:-1], kl[1:], temperature=temperature, n=n
        )

    def soft_q_path(params, s, a, d):
        rows = q_table_fn(params)[s]
        r = reward_table[s[:-1], a]
        return soft_q_loss_fn(
            rows[:-1], a, r, d, rows[1:], temperature=temperature, n=n, log_prior=log_prior
        )

    def policy_path(params, s, a, d):
        q = q_table_fn(params)
        _, adv = advantages(q, s, a, reward_table[s[:-1], a], d)
        logits = q[s][:-1] / temperature + log_prior
        return regularised_policy_gradient_loss(
            logits, a, adv, temperature=temperature, log_prior=log_prior
        )

    def value_path(params, s, a, d):
        q = q_table_fn(params)
        v, adv = advantages(q, s, a, reward_table[s[:-1], a], d)
        v_theta, _ = row_stats(q[s][:-1])
        return value_loss(v_theta, v[:-1] + adv)

    return soft_q_path, policy_path, value_path


@functools.partial(
    jax.jit, static_argnames=("q_table_fn", "soft_q_loss_fn", "n"), compiler_options=FAST_COMPILE
)
def _expected_gradients(
    params,
    states,
    actions,
    reward_table,
    discounts,
    weights,
    log_prior,
    temperature,
    *,
    q_table_fn,
    soft_q_loss_fn,
    n,
):
    """The three expected gradients; jitted, so a fixed shape menu compiles once."""
    losses = _path_losses(
        reward_table,
        log_prior,
        temperature,
        q_table_fn=q_table_fn,
        soft_q_loss_fn=soft_q_loss_fn,
        n=n,
    )

    def expectation(per_path: Callable) -> Callable:
        def expected(p):
            values = jax.vmap(per_path, in_axes=(None, 0, 0, 0))(p, states, actions, discounts)
            return jnp.sum(weights * values)

        return expected

    soft_q_path, policy_path, value_path = losses
    soft_q = jax.grad(expectation(soft_q_path))(params)
    policy_gradient = jax.tree_util.tree_map(
        jnp.negative, jax.grad(expectation(policy_path))(params)
    )
    value = jax.grad(expectation(value_path))(params)
    combined = _combine(policy_gradient, value, temperature)
    differences = jax.tree_util.tree_map(lambda x, y: jnp.max(jnp.abs(x - y)), soft_q, combined)
    max_diff = jnp.max(jnp.stack(jax.tree_util.tree_leaves(differences)))
    return soft_q, policy_gradient, value, combined, max_diff


@functools.partial(
    jax.jit, static_argnames=("q_table_fn", "soft_q_loss_fn", "n"), compiler_options=FAST_COMPILE
)
def _path_gradients(
    params,
    states,
    actions,
    reward_table,
    discounts,
    log_prior,
    temperature,
    *,
    q_table_fn,
    soft_q_loss_fn,
    n,
):
    """Per-path gradients of the three losses, each leaf with a leading `[N]` axis."""
    losses = _path_losses(
        reward_table,
        log_prior,
        temperature,
        q_table_fn=q_table_fn,
        soft_q_loss_fn=soft_q_loss_fn,
        n=n,
    )
    soft_q, policy, value = (
        jax.vmap(jax.grad(loss), in_axes=(None, 0, 0, 0))(params, states, actions, discounts)
        for loss in losses
    )
    policy_gradient = jax.tree_util.tree_map(jnp.negative, policy)
    combined = _combine(policy_gradient, value, temperature)
    difference = jax.tree_util.tree_map(jnp.subtract, soft_q, combined)
    return soft_q, policy_gradient, value, difference
