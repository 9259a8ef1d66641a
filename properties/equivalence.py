"""Exact expectations over enumerated trajectories, for the main theorem [E15].

The soft Q-learning gradient, the policy gradient and the value-fit gradient
are expectations over trajectories whose actions are drawn from the Boltzmann
policy of Q_θ. For a small MDP and a short horizon every trajectory can be
listed with its exact probability, so the expectations are finite weighted
sums and the identity

    ∇ L_soft-Q = τ ∇ L_PG + ∇ L_V           (= −τ · policy gradient + ∇ value fit)

can be checked to float64 round-off. The sampling distribution is computed
at the current parameters and treated as a constant, as in the paper.
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
    state_paths = np.array(list(itertools.product(range(num_states), repeat=horizon + 1)))
    action_paths = np.array(list(itertools.product(range(num_actions), repeat=horizon)))
    states = np.repeat(state_paths, len(action_paths), axis=0)
    actions = np.tile(action_paths, (len(state_paths), 1))
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
    check_temperature(temperature)
    check_positive_int(n, name="n")
    q_table = jnp.asarray(q_table_fn(params))
    log_prior = resolve_log_prior(log_prior, q_table.shape[-1], q_table.dtype)
    policy = np.asarray(
        boltzmann_policy_table(q_table, temperature=temperature, log_prior=log_prior)
    )
    paths = enumerate_trajectories(mdp, policy, horizon=horizon)
    terminal = (
        np.zeros(mdp.num_states, bool) if terminal_states is None else np.asarray(terminal_states)
    )
    discounts = np.asarray(mdp.discount) * (1.0 - terminal[paths.states[:, 1:]])
    soft_q, policy_gradient, value = _expected_gradients(
        params,
        jnp.asarray(paths.states),
        jnp.asarray(paths.actions),
        jnp.asarray(mdp.rewards),
        jnp.asarray(discounts, q_table.dtype),
        jnp.asarray(paths.probabilities, q_table.dtype),
        log_prior,
        jnp.asarray(temperature, q_table.dtype),
        q_table_fn=q_table_fn,
        soft_q_loss_fn=soft_q_loss_fn,
        n=n,
    )
    combined = jax.tree_util.tree_map(
        lambda g_pg, g_v: -temperature * g_pg + g_v, policy_gradient, value
    )
    differences = jax.tree_util.tree_map(lambda x, y: jnp.max(jnp.abs(x - y)), soft_q, combined)
    max_diff = float(max(jax.tree_util.tree_leaves(differences)))
    return EquivalenceGradients(soft_q, policy_gradient, value, combined, max_diff)


@functools.partial(jax.jit, static_argnames=("q_table_fn", "soft_q_loss_fn", "n"))
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
    rewards = reward_table[states[:, :-1], actions]

    def expectation(per_path: Callable) -> Callable:
        def expected(p):
            q = q_table_fn(p)
            values = jax.vmap(per_path, in_axes=(0, 0, 0, 0, None))(
                states, actions, rewards, discounts, q
            )
            return jnp.sum(weights * values)

        return expected

    def soft_q_path(s, a, r, d, q):
        rows = q[s]
        return soft_q_loss_fn(
            rows[:-1], a, r, d, rows[1:], temperature=temperature, n=n, log_prior=log_prior
        )

    def row_stats(rows):
        def one(row):
            return (
                soft_value(row, temperature=temperature, log_prior=log_prior),
                boltzmann_kl(row, temperature=temperature, log_prior=log_prior),
            )

        return jax.vmap(one)(rows)

    def advantages(s, a, r, d, q):
        v, kl = row_stats(jax.lax.stop_gradient(q[s]))
        return v, soft_n_step_advantages(
            r, d, v[:-1], v[1:], kl[:-1], kl[1:], temperature=temperature, n=n
        )

    def policy_path(s, a, r, d, q):
        _, adv = advantages(s, a, r, d, q)
        logits = q[s][:-1] / temperature + log_prior
        return regularised_policy_gradient_loss(
            logits, a, adv, temperature=temperature, log_prior=log_prior
        )

    def value_path(s, a, r, d, q):
        v, adv = advantages(s, a, r, d, q)
        v_theta, _ = row_stats(q[s][:-1])
        return value_loss(v_theta, v[:-1] + adv)

    soft_q = jax.grad(expectation(soft_q_path))(params)
    policy_gradient = jax.tree_util.tree_map(
        jnp.negative, jax.grad(expectation(policy_path))(params)
    )
    value = jax.grad(expectation(value_path))(params)
    return soft_q, policy_gradient, value
