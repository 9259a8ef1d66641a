"""The `log_prior` convention switch: "entropy" targets exceed "uniform" ones by γτ log|A| per step.

The two named conventions of `LOG_PRIOR_CONVENTIONS` give soft values that
differ by τ log|A| and KLs that differ by log|A| [E3], [E9] (π̄ ≡ 1 against
π̄ = 1/|A|). Computing V and KL of the next-state rows Q(s_{i+1}, ·) with each
name and feeding them to the targets of softeq, along streams with episode
ends inside:

- one-step (`soft_q_learning`, n = 1 `soft_n_step_targets`): the entropy
  targets are larger by exactly γ_i τ log|A|, i.e. by γτ log|A| on every
  non-terminal transition and by 0 on a terminal one;
- n-step [E13]: by τ log|A| Σ_{d=1}^{m} Γ_d (Γ_d the product of the first d
  discounts of the window, m = min(n, T − i));
- λ-returns [L1]: by τ log|A| Σ_{d=1}^{T−i} λ^{d−1} Γ_d;
- the tabular soft backup [E12]: by γτ log|A| in every (s, a);
- the names are the arrays they stand for: "uniform" = None = log(1/|A|),
  "entropy" = zeros, and the soft DQN modes [DQN-1] "soft-kl" / "soft-entropy"
  are the n-step targets of "uniform" / "entropy".

Tolerances: targets are sums of ≤ 6 terms of magnitude ≤ M = 1 + max(|r|,
|Q|, τ·KL) + τ log 3 ≲ 25 (τ ≤ 5): 1e-12·M.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from softeq.core import (
    boltzmann_kl,
    soft_bellman_backup,
    soft_dqn_targets,
    soft_lambda_returns,
    soft_n_step_targets,
    soft_q_learning,
    soft_value,
)
from softeq.properties import strategies as sqst
from softeq.properties._testing import assert_close, fast_jit, magnitude

LENGTH = 5
N_VALUES = (1, 2, 3)


def _stream_targets(r_t, discount_t, q_tm1, q_t, tau, lambda_, prior, *, n):
    """The targets of one convention (a name, None or an array) for the whole stream."""

    def stats(q):
        return (
            soft_value(q, temperature=tau, log_prior=prior),
            boltzmann_kl(q, temperature=tau, log_prior=prior),
        )

    v_t, kl_t = jax.vmap(stats)(q_t)
    td = jax.vmap(
        lambda q, a, r, d, q_next: soft_q_learning(
            q, a, r, d, q_next, temperature=tau, log_prior=prior
        )
    )(q_tm1, jnp.zeros(r_t.shape, int), r_t, discount_t, q_t)
    return (
        td + q_tm1[:, 0],  # the one-step target of soft_q_learning: TD error + Q(s, a)
        soft_n_step_targets(r_t, discount_t, v_t, kl_t, temperature=tau, n=n),
        soft_lambda_returns(r_t, discount_t, v_t, kl_t, temperature=tau, lambda_=lambda_),
    )


@fast_jit(static_argnames=("n",))
def _both_conventions(r_t, discount_t, q_tm1, q_t, tau, lambda_, *, n):
    num_actions = q_t.shape[-1]
    args = (r_t, discount_t, q_tm1, q_t, tau, lambda_)
    return (
        _stream_targets(*args, "uniform", n=n),
        _stream_targets(*args, "entropy", n=n),
        _stream_targets(*args, None, n=n),
        _stream_targets(*args, jnp.full(num_actions, -math.log(num_actions)), n=n),
        _stream_targets(*args, jnp.zeros(num_actions), n=n),
        soft_dqn_targets(r_t, discount_t, q_t, mode="soft-kl", temperature=tau, n=n),
        soft_dqn_targets(r_t, discount_t, q_t, mode="soft-entropy", temperature=tau, n=n),
    )


def _window_discount_sums(discount_t, weights):
    """Σ_{d≥1} weights[d−1]·Γ_d per window, Γ_d = Π_{j<d} discount_{i+j}, d ≤ len(weights)."""
    length = len(discount_t)
    out = np.zeros(length)
    for i in range(length):
        gamma = 1.0
        for d in range(1, min(len(weights), length - i) + 1):
            gamma *= discount_t[i + d - 1]
            out[i] += weights[d - 1] * gamma
    return out


@given(
    stream=sqst.soft_streams(length=LENGTH),
    num_actions=st.sampled_from(sqst.ACTION_MENU),
    n=st.sampled_from(N_VALUES),
    tau=sqst.temperatures(),
    lambda_=st.floats(0.0, 1.0),
    data=st.data(),
)
def test_entropy_convention_targets_exceed_uniform_ones_by_discounted_tau_log_actions(
    stream, num_actions, n, tau, lambda_, data
):
    shape = (LENGTH, num_actions)
    q_tm1, q_t = data.draw(sqst.q_tables(shape)), data.draw(sqst.q_tables(shape))
    uniform, entropy, none, uniform_array, zeros, soft_kl, soft_entropy = _both_conventions(
        stream.r_t, stream.discount_t, q_tm1, q_t, tau, lambda_, n=n
    )
    (one_u, n_u, lam_u), (one_e, n_e, lam_e) = uniform, entropy
    constant = tau * math.log(num_actions)
    scale = magnitude(*uniform, *entropy)
    discounts = stream.discount_t
    assert_close(one_e - one_u, discounts * constant, tolerance=1e-12, scale=scale, what="1-step")
    n_gap = constant * _window_discount_sums(discounts, np.ones(n))
    assert_close(n_e - n_u, n_gap, tolerance=1e-12, scale=scale, what=f"{n}-step")
    if n == 1:
        assert_close(n_e - n_u, discounts * constant, tolerance=1e-12, scale=scale)
    lambda_gap = constant * _window_discount_sums(discounts, lambda_ ** np.arange(LENGTH))
    assert_close(lam_e - lam_u, lambda_gap, tolerance=1e-12, scale=scale, what="λ-returns")
    # the names are the arrays they stand for, and the DQN modes are these conventions.
    for named, array in ((uniform, none), (uniform, uniform_array), (entropy, zeros)):
        for x, y in zip(named, array, strict=True):
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    assert_close(soft_kl, n_u, tolerance=1e-12, scale=scale, what="soft-kl = uniform")
    assert_close(soft_entropy, n_e, tolerance=1e-12, scale=scale, what="soft-entropy = entropy")


@fast_jit
def _backups(q, mdp, tau):
    return (
        soft_bellman_backup(q, mdp, temperature=tau, log_prior="entropy"),
        soft_bellman_backup(q, mdp, temperature=tau, log_prior="uniform"),
    )


@given(mdp=sqst.tabular_mdps(), tau=sqst.temperatures(), data=st.data())
def test_entropy_convention_backup_exceeds_the_uniform_one_by_discounted_tau_log_actions(
    mdp, tau, data
):
    q = data.draw(sqst.q_tables((mdp.num_states, mdp.num_actions)))
    entropy, uniform = _backups(q, mdp, tau)
    gap = float(mdp.discount) * tau * math.log(mdp.num_actions)
    scale = magnitude(entropy, uniform)
    assert_close(np.asarray(entropy) - uniform, np.full(q.shape, gap), tolerance=1e-12, scale=scale)
