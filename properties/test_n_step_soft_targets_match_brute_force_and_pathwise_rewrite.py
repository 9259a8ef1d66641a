"""[E11], [E13] n-step soft targets: brute-force recursion, pathwise rewrite, operator form.

With episode ends inside the window (some zero discounts):

- `soft_n_step_targets` equals the window-by-window recursion of the NumPy
  oracle, y_i = r_i + Σ_{d=1}^{m−1} Γ_d (r_{i+d} − τ KL_{i+d}) + Γ_m V(s_{i+m});
- pathwise rewrite, for any V: y_i = τ KL_i + V(s_i) + Σ_{d<n} Γ_d δ_{i+d}, with
  δ from `soft_td_errors`, and `soft_n_step_advantages` is exactly that sum;
- operator form: averaged over every path of an MDP under π, the first
  target minus τ KL(s_0) is the n-fold evaluation backup, [𝒯_π^n V](s_0);
- along trajectories sampled from an MDP under π^B_Q (episode ends inside the
  window), `soft_q_learning_loss` regresses Q(s_i, a_i) on exactly the oracle
  targets built from V_Q and KL(π^B_Q), and its gradient is (Q − y)/T.

Tolerances: targets are sums of ≤ n + 1 terms of magnitude ≤ 3·(1 + τ) ≲ 20
(rewards, values, τ·KL with τ ≤ 5): 1e-12 × (1 + max|y|). The operator form
averages ≤ 108 paths: same 1e-12 relative to the value scale.
"""

from __future__ import annotations

import jax
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from softeq.core import (
    soft_n_step_advantages,
    soft_n_step_targets,
    soft_q_learning_loss,
    soft_td_errors,
)
from softeq.properties import oracles
from softeq.properties import strategies as sqst
from softeq.properties._testing import assert_close, fast_jit, magnitude

N_VALUES = (1, 2, 3, 4)


@fast_jit(static_argnames=("n",))
def _stream_quantities(r_t, discount_t, values, kls, tau, *, n):
    v_tm1, v_t, kl_tm1, kl_t = values[:-1], values[1:], kls[:-1], kls[1:]
    return (
        soft_n_step_targets(r_t, discount_t, v_t, kl_t, temperature=tau, n=n),
        soft_td_errors(r_t, discount_t, v_tm1, v_t, kl_tm1, temperature=tau),
        soft_n_step_advantages(r_t, discount_t, v_tm1, v_t, kl_tm1, kl_t, temperature=tau, n=n),
    )


def _discounted_td_sums(deltas, discount_t, n):
    """Σ_{d<m} Γ_d δ_{i+d}, window by window (Γ_0 = 1)."""
    length = len(deltas)
    sums = np.zeros(length)
    for i in range(length):
        weight = 1.0
        for d in range(min(n, length - i)):
            sums[i] += weight * deltas[i + d]
            weight *= discount_t[i + d]
    return sums


@given(stream=sqst.soft_streams(), n=st.sampled_from(N_VALUES), tau=sqst.temperatures())
def test_targets_equal_the_brute_force_recursion(stream, n, tau):
    targets, _, _ = _stream_quantities(
        stream.r_t, stream.discount_t, stream.values, stream.kls, tau, n=n
    )
    expected = oracles.n_step_soft_targets(
        stream.r_t, stream.discount_t, stream.v_t, stream.kl_t, temperature=tau, n=n
    )
    assert_close(targets, expected, tolerance=1e-12, scale=magnitude(expected, tau * stream.kls))


@given(stream=sqst.soft_streams(), n=st.sampled_from(N_VALUES), tau=sqst.temperatures())
def test_targets_equal_kl_plus_value_plus_discounted_td_errors(stream, n, tau):
    targets, deltas, advantages = _stream_quantities(
        stream.r_t, stream.discount_t, stream.values, stream.kls, tau, n=n
    )
    scale = magnitude(targets, tau * stream.kls, stream.values)
    oracle_deltas = oracles.soft_td_errors(
        stream.r_t, stream.discount_t, stream.v_tm1, stream.v_t, stream.kl_tm1, temperature=tau
    )
    assert_close(deltas, oracle_deltas, tolerance=1e-12, scale=scale, what="δ")
    td_sums = _discounted_td_sums(oracle_deltas, stream.discount_t, n)
    rewritten = tau * stream.kl_tm1 + stream.v_tm1 + td_sums
    assert_close(targets, rewritten, tolerance=1e-12, scale=scale, what="pathwise rewrite")
    assert_close(advantages, td_sums, tolerance=1e-12, scale=scale, what="Δ = Σ Γ δ")


HORIZON = 3


@fast_jit(static_argnames=("n",))
def _first_targets(rewards, discounts, v_t, kl_t, tau, *, n):
    def first(r, d, v, kl):
        return soft_n_step_targets(r, d, v, kl, temperature=tau, n=n)[0]

    return jax.vmap(first)(rewards, discounts, v_t, kl_t)


@given(
    mdp=sqst.tabular_mdps(max_states=2),
    n=st.sampled_from((1, 2, 3)),
    tau=sqst.temperatures(),
    data=st.data(),
)
def test_expected_target_minus_kl_is_the_n_fold_evaluation_backup(mdp, n, tau, data):
    policy = data.draw(sqst.policies(mdp))
    values = data.draw(sqst.q_tables((mdp.num_states,)))
    log_prior = data.draw(sqst.log_priors(mdp.num_actions))
    kls = oracles.policy_kls(policy, log_prior)
    # for each start state s_0, the exact average over every path from it.
    expected = np.empty(mdp.num_states)
    for s0 in range(mdp.num_states):
        from_s0 = mdp.replace(initial_distribution=np.eye(mdp.num_states)[s0])
        paths = oracles.enumerate_paths(from_s0, policy, horizon=HORIZON)
        rewards = np.asarray(mdp.rewards)[paths.states[:, :-1], paths.actions]
        discounts = np.full(rewards.shape, float(mdp.discount))
        firsts = _first_targets(
            rewards, discounts, values[paths.states[:, 1:]], kls[paths.states[:, 1:]], tau, n=n
        )
        expected[s0] = paths.probabilities @ (np.asarray(firsts) - tau * kls[s0])
    # [𝒯_π V](s) = Σ_a π(a|s)(r(s, a) + γ Σ_s' P(s'|s, a) V(s')) − τ KL(s), n times.
    backed_up = values.copy()
    p_pi = np.einsum("sa,sat->st", policy, np.asarray(mdp.transitions))
    r_pi = np.sum(policy * np.asarray(mdp.rewards), axis=1) - tau * kls
    for _ in range(n):
        backed_up = r_pi + float(mdp.discount) * p_pi @ backed_up
    assert_close(expected, backed_up, tolerance=1e-12, scale=magnitude(backed_up, tau * kls))


TRAJECTORY_LENGTH = 5


@fast_jit(static_argnames=("n",))
def _soft_q_loss_and_gradient(q_tm1, actions, rewards, discounts, q_t, tau, log_prior, *, n):
    def loss(q):
        return soft_q_learning_loss(
            q, actions, rewards, discounts, q_t, temperature=tau, n=n, log_prior=log_prior
        )

    return jax.value_and_grad(loss)(q_tm1)


@given(
    mdp=sqst.tabular_mdps(),
    n=st.sampled_from((1, 2, 3)),
    tau=sqst.temperatures(),
    data=st.data(),
)
def test_soft_q_learning_loss_regresses_on_the_oracle_targets_of_sampled_trajectories(
    mdp, n, tau, data
):
    q = data.draw(sqst.q_tables((mdp.num_states, mdp.num_actions)))
    log_prior = data.draw(sqst.log_priors(mdp.num_actions))
    policy = oracles.boltzmann_policy(q, temperature=tau, log_prior=log_prior)
    path = data.draw(sqst.trajectories(mdp, policy, TRAJECTORY_LENGTH))
    values = oracles.soft_value(q, temperature=tau, log_prior=log_prior)
    kls = oracles.policy_kls(policy, log_prior)
    following = path.states[1:]
    targets = oracles.n_step_soft_targets(
        path.rewards, path.discounts, values[following], kls[following], temperature=tau, n=n
    )
    q_taken = q[path.states[:-1], path.actions]
    loss, gradient = _soft_q_loss_and_gradient(
        q[path.states[:-1]],
        path.actions,
        path.rewards,
        path.discounts,
        q[following],
        tau,
        log_prior,
        n=n,
    )
    scale = magnitude(targets, q_taken)
    assert_close(
        loss,
        np.mean(0.5 * (q_taken - targets) ** 2),
        tolerance=1e-12,
        scale=scale**2,
        what="loss vs oracle targets",
    )
    expected_gradient = np.zeros((TRAJECTORY_LENGTH, mdp.num_actions))
    expected_gradient[np.arange(TRAJECTORY_LENGTH), path.actions] = (
        q_taken - targets
    ) / TRAJECTORY_LENGTH
    assert_close(gradient, expected_gradient, tolerance=1e-12, scale=scale, what="∂L/∂Q(s_i, ·)")
