"""[E12] Soft-value bounds and the τ → 0 limit; at τ = 0 softeq agrees with rlax.

- For a normalised π̄ and a* = argmax q: max q + τ log π̄(a*) ≤ V_q ≤ max q,
  and V_q decreases as τ grows, so V_q → max q as τ → 0.
- One-step soft Q-learning approaches `rlax.q_learning` within γτ log|A|.
- With temperature 0, `soft_n_step_targets` equals
  `rlax.n_step_bootstrapped_returns` and `regularised_policy_gradient_loss`
  equals `rlax.policy_gradient_loss` with unit weights (loss and gradient):
  rlax serves as a second, independent implementation. For τ > 0 the targets
  are affine in τ: y_τ = y_0 + τ (y_1 − y_0).

Tolerances: soft values are of magnitude M = 1 + max(|q|, τ|log π̄|) ≲ 30;
the bounds are checked with a slack of 1e-12·M (round-off of a log-sum-exp).
With τ = 0 the shifted rewards r − 0·γ·KL and bootstrap v + 0·KL equal r and v
exactly and rlax does the summation in both, so the targets agree up to the
rounding of one fused multiply-add that XLA may form in one program and not
in the other: 4 ulps of (1 + max|y|) (about 1e-15 here). The policy losses
differ only in how log-softmax is evaluated: 1e-13·(1 + max|adv|·max|logits|).
"""

from __future__ import annotations

import math

import jax
import numpy as np
import pytest
import rlax
from hypothesis import given
from hypothesis import strategies as st

from softeq.core import (
    regularised_policy_gradient_loss,
    soft_n_step_targets,
    soft_q_learning,
    soft_value,
)
from softeq.properties import strategies as sqst
from softeq.properties._testing import fast_jit

# rlax's own softmax helper announces its deprecation inside policy_gradient_loss.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Rlax softmax will be deprecated:PendingDeprecationWarning"
)

SHRINKING_TEMPERATURES = np.array([1.0, 0.3, 0.1, 0.03, 0.01, 1e-3])


@fast_jit
def _soft_values(q, temperatures, log_prior):
    return jax.vmap(lambda tau: soft_value(q, temperature=tau, log_prior=log_prior))(temperatures)


@st.composite
def scores_and_normalised_priors(draw):
    num_actions = draw(st.sampled_from(sqst.ACTION_MENU))
    q = draw(sqst.q_tables((num_actions,), scale=10.0))
    kind = draw(st.sampled_from(("uniform", "normalised")))
    return q, draw(sqst.log_priors(num_actions, kind=kind)), draw(sqst.temperatures())


@given(case=scores_and_normalised_priors())
def test_soft_value_lies_between_max_q_plus_log_prior_and_max_q(case):
    q, log_prior, tau = case
    temperatures = tau * SHRINKING_TEMPERATURES
    values = np.asarray(_soft_values(q, temperatures, log_prior))
    best = int(np.argmax(q))
    slack = 1e-12 * (1.0 + np.max(np.abs(q)) + tau * np.max(np.abs(log_prior)))
    lower = q[best] + temperatures * log_prior[best]
    assert np.all(lower - slack <= values), "V_q below max q + τ log π̄(a*)"
    assert np.all(values <= q[best] + slack), "V_q above max q"
    # V decreases as τ grows (power means), so it rises monotonically to max q as τ → 0.
    assert np.all(np.diff(values) >= -slack)
    assert q[best] - values[-1] <= -temperatures[-1] * log_prior[best] + slack


@fast_jit
def _one_step_soft_and_hard(q_tm1, a_tm1, r_t, discount_t, q_t, tau):
    soft = soft_q_learning(q_tm1, a_tm1, r_t, discount_t, q_t, temperature=tau)
    return soft, rlax.q_learning(q_tm1, a_tm1, r_t, discount_t, q_t)


@given(
    num_actions=st.sampled_from(sqst.ACTION_MENU),
    tau=sqst.temperatures(min_value=1e-4, max_value=1.0),
    discount=sqst.discounts(max_value=1.0),
    data=st.data(),
)
def test_soft_q_learning_approaches_rlax_q_learning_within_discount_tau_log_actions(
    num_actions, tau, discount, data
):
    q_tm1 = data.draw(sqst.q_tables((num_actions,), scale=10.0))
    q_t = data.draw(sqst.q_tables((num_actions,), scale=10.0))
    action = data.draw(st.integers(0, num_actions - 1))
    reward = data.draw(st.floats(-3.0, 3.0))
    soft, hard = _one_step_soft_and_hard(q_tm1, action, reward, discount, q_t, tau)
    # uniform prior: max q − τ log|A| ≤ V ≤ max q, so the TD errors differ by ≤ γτ log|A|.
    gap = float(hard) - float(soft)
    assert -1e-12 * 20 <= gap <= discount * tau * math.log(num_actions) + 1e-12 * 20


@fast_jit(static_argnames=("n",))
def _targets_at_zero_and_rlax(r_t, discount_t, v_t, kl_t, *, n):
    return (
        soft_n_step_targets(r_t, discount_t, v_t, kl_t, temperature=0.0, n=n),
        rlax.n_step_bootstrapped_returns(r_t, discount_t, v_t, n),
    )


@fast_jit(static_argnames=("n",))
def _targets(r_t, discount_t, v_t, kl_t, tau, *, n):
    return soft_n_step_targets(r_t, discount_t, v_t, kl_t, temperature=tau, n=n)


@given(stream=sqst.soft_streams(), n=st.sampled_from((1, 2, 3, 4)), tau=sqst.temperatures())
def test_zero_temperature_targets_equal_rlax_n_step_returns(stream, n, tau):
    soft, reference = _targets_at_zero_and_rlax(
        stream.r_t, stream.discount_t, stream.v_t, stream.kl_t, n=n
    )
    # softeq sums the same recursion without rlax's λ-mixing terms, so the compiler may
    # round the multiply-adds differently: at most one rounding per step of the window.
    bound = 2 * n * np.finfo(np.float64).eps * (1.0 + np.max(np.abs(np.asarray(reference))))
    np.testing.assert_allclose(np.asarray(soft), np.asarray(reference), rtol=0, atol=bound)
    # and for τ > 0 the targets are affine in τ, reaching the rlax returns at τ = 0.
    at_one = np.asarray(_targets(stream.r_t, stream.discount_t, stream.v_t, stream.kl_t, 1.0, n=n))
    at_tau = np.asarray(_targets(stream.r_t, stream.discount_t, stream.v_t, stream.kl_t, tau, n=n))
    scale = 1.0 + np.max(np.abs(at_one)) * max(tau, 1.0)
    np.testing.assert_allclose(
        at_tau, np.asarray(reference) + tau * (at_one - reference), rtol=0, atol=1e-12 * scale
    )


@fast_jit
def _policy_losses(logits, actions, advantages):
    def ours(x):
        return regularised_policy_gradient_loss(x, actions, advantages, temperature=0.0)

    def theirs(x):
        return rlax.policy_gradient_loss(x, actions, advantages, jax.numpy.ones_like(advantages))

    return jax.value_and_grad(ours)(logits), jax.value_and_grad(theirs)(logits)


@st.composite
def policy_batches(draw):
    length = draw(st.sampled_from(sqst.LENGTH_MENU))
    num_actions = draw(st.sampled_from(sqst.ACTION_MENU))
    logits = draw(sqst.float_arrays((length, num_actions), min_value=-5.0, max_value=5.0))
    actions = np.array(
        [draw(st.integers(0, num_actions - 1)) for _ in range(length)], dtype=np.int32
    )
    advantages = draw(sqst.float_arrays((length,), min_value=-5.0, max_value=5.0))
    return logits, actions, advantages


@given(batch=policy_batches())
def test_zero_temperature_policy_loss_equals_rlax_policy_gradient_loss(batch):
    logits, actions, advantages = batch
    (ours, ours_grad), (theirs, theirs_grad) = _policy_losses(logits, actions, advantages)
    atol = 1e-13 * (1.0 + np.max(np.abs(advantages)) * np.max(np.abs(logits)))
    np.testing.assert_allclose(float(ours), float(theirs), rtol=0, atol=atol)
    np.testing.assert_allclose(np.asarray(ours_grad), np.asarray(theirs_grad), rtol=0, atol=atol)
