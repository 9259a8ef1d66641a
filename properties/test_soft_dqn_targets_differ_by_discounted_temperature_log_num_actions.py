"""§5 Soft DQN targets: the two soft conventions differ by γτ log|A| per step.

- τ logsumexp(q/τ) = E_p[q] + τ H(p) for p = softmax(q/τ), with softeq's
  `soft_value` (π̄ ≡ 1), `boltzmann_log_policy` and `kl_divergence`, and the
  NumPy oracle;
- `dqn_bootstrap_value`: "soft-entropy" − "soft-kl" = τ log|A|, "hard" = max;
- `soft_dqn_targets` with n-step windows and episode ends: entropy-bonus minus
  KL-to-uniform targets equal τ log|A| Σ_{d=1}^{m} Γ_d (γ_i τ log|A| for n = 1),
  and the hard targets equal `rlax.n_step_bootstrapped_returns` of max_a Q̄.

Tolerances: targets and values are of magnitude M ≲ 10·(1 + n) + τ log 3·n
(|r|, |Q̄| ≤ 5, τ ≤ 5): 1e-12·M for sums of a few terms. The hard targets use
the same rlax summation on identical inputs, so they agree up to a fused
multiply-add that XLA may form in one computation and not the other: 4 ulps
of (1 + max|y|).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import rlax
from hypothesis import given
from hypothesis import strategies as st

from softeq.core import (
    boltzmann_log_policy,
    dqn_bootstrap_value,
    kl_divergence,
    soft_dqn_targets,
    soft_value,
)
from softeq.properties import oracles
from softeq.properties import strategies as sqst
from softeq.properties._testing import assert_close, fast_jit, magnitude


@fast_jit
def _entropy_decomposition(q, tau):
    zeros = jnp.zeros_like(q)
    log_p = boltzmann_log_policy(q, temperature=tau, log_prior=zeros)
    entropy = -kl_divergence(log_p, zeros)
    return (
        soft_value(q, temperature=tau, log_prior=zeros),
        jnp.exp(log_p) @ q + tau * entropy,
        jnp.stack(
            [
                dqn_bootstrap_value(q, mode="hard"),
                dqn_bootstrap_value(q, mode="soft-kl", temperature=tau),
                dqn_bootstrap_value(q, mode="soft-entropy", temperature=tau),
            ]
        ),
    )


@given(
    q=st.sampled_from(sqst.ACTION_MENU).flatmap(lambda a: sqst.q_tables((a,), scale=5.0)),
    tau=sqst.temperatures(),
)
def test_log_sum_exp_is_expected_q_plus_temperature_times_entropy(q, tau):
    value, decomposed, bootstraps = _entropy_decomposition(q, tau)
    scale = magnitude(q, tau * math.log(len(q)))
    assert_close(value, decomposed, tolerance=1e-12, scale=scale, what="τ lse(q/τ) vs E q + τH")
    p = oracles.softmax(q / tau)
    oracle = p @ q + tau * oracles.entropy(p)
    assert_close(value, oracle, tolerance=1e-12, scale=scale, what="vs NumPy oracle")
    hard, soft_kl, soft_entropy = np.asarray(bootstraps)
    assert hard == np.max(q)
    assert_close(soft_entropy - soft_kl, tau * math.log(len(q)), tolerance=1e-12, scale=scale)


def _all_modes(r_t, discount_t, q_t, tau, *, n):
    def targets(mode):
        return soft_dqn_targets(r_t, discount_t, q_t, mode=mode, temperature=tau, n=n)

    return targets("hard"), targets("soft-kl"), targets("soft-entropy")


@fast_jit(static_argnames=("n",))
def _dqn_targets(r_t, discount_t, q_t, tau, *, n):
    """The three modes' targets, rlax's hard n-step returns, and ∇ of all targets in Q̄."""

    def total(q):
        return sum(jnp.sum(y) for y in _all_modes(r_t, discount_t, q, tau, n=n))

    rlax_hard = rlax.n_step_bootstrapped_returns(r_t, discount_t, jnp.max(q_t, axis=-1), n)
    return (*_all_modes(r_t, discount_t, q_t, tau, n=n), rlax_hard, jax.grad(total)(q_t))


def _cumulative_discounts(discount_t, n):
    """Σ_{d=1}^{m} Γ_d per window, Γ_d = Π_{j<d} discount_{i+j}, m = min(n, T − i)."""
    length = len(discount_t)
    out = np.zeros(length)
    for i in range(length):
        weight = 1.0
        for d in range(min(n, length - i)):
            weight *= discount_t[i + d]
            out[i] += weight
    return out


@given(
    stream=sqst.soft_streams(length=5),
    num_actions=st.sampled_from(sqst.ACTION_MENU),
    n=st.sampled_from((1, 2, 3)),
    tau=sqst.temperatures(),
    data=st.data(),
)
def test_entropy_bonus_and_kl_to_uniform_targets_differ_by_tau_log_actions_per_step(
    stream, num_actions, n, tau, data
):
    q_t = data.draw(sqst.q_tables((len(stream.r_t), num_actions), scale=5.0))
    hard, soft_kl, soft_entropy, rlax_hard, grads = (
        np.asarray(x) for x in _dqn_targets(stream.r_t, stream.discount_t, q_t, tau, n=n)
    )
    scale = magnitude(soft_kl, soft_entropy, q_t)
    per_step = tau * math.log(num_actions) * _cumulative_discounts(stream.discount_t, n)
    assert_close(soft_entropy - soft_kl, per_step, tolerance=1e-12, scale=scale)
    if n == 1:
        assert_close(
            soft_entropy - soft_kl,
            stream.discount_t * tau * math.log(num_actions),
            tolerance=1e-12,
            scale=scale,
        )
    ulps = 4 * np.finfo(np.float64).eps * (1.0 + np.max(np.abs(rlax_hard)))
    np.testing.assert_allclose(hard, rlax_hard, rtol=0, atol=ulps)
    # no gradient reaches the target network through any of the targets.
    assert np.all(grads == 0.0)
