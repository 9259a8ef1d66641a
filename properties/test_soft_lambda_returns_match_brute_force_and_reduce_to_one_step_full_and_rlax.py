"""[L1] Soft λ-returns: the explicit mixture of n-step targets, its two ends, and rlax at τ = 0.

With episode ends inside the window (zero discounts) and λ a scalar or one
value per step:

- `soft_lambda_returns` equals the NumPy oracle that mixes the n-step soft
  targets of [E13] window by window, G_i = Σ_n w_n y^(n)_i with weights
  (Π λ)(1 − λ) and the tail on the longest target (no recursion);
- λ = 0 gives the 1-step targets and λ = 1 the longest n-step targets
  (`soft_n_step_targets` with n = T);
- at temperature 0 it equals `rlax.lambda_returns`, and the soft
  λ-advantages equal `rlax.truncated_generalized_advantage_estimation`;
- the soft λ-advantages are the soft GAE: Δ_i = Σ_d (Π_{j<d} γ_{i+j}λ_{i+j}) δ_{i+d}
  with δ the soft TD errors of [E11] (values and KLs of one stream).

Tolerances: every quantity is a sum of ≤ T + 1 ≤ 6 products of numbers of
magnitude ≤ M = 1 + max(|r|, |V|, τ·KL) ≲ 20 (τ ≤ 5, KL ≤ 3): float64
round-off is a few ulps of M, so 1e-12·M. Against rlax the two computations
run the same recursion; XLA may fuse a multiply-add in one and not the
other, so 4 ulps of (1 + max|G|).
"""

from __future__ import annotations

import numpy as np
import rlax
from hypothesis import given
from hypothesis import strategies as st

from softeq.core import (
    soft_lambda_advantages,
    soft_lambda_returns,
    soft_n_step_targets,
    soft_td_errors,
)
from softeq.properties import oracles
from softeq.properties import strategies as sqst
from softeq.properties._testing import assert_close, fast_jit, magnitude


@st.composite
def lambdas(draw, length: int) -> np.ndarray:
    """`[T]` λ: one value for every step, or one per step; the ends 0 and 1 drawn often."""
    value = st.one_of(st.sampled_from([0.0, 1.0]), st.floats(0.0, 1.0))
    if draw(st.booleans()):
        return np.full(length, draw(value))
    return np.array([draw(value) for _ in range(length)])


@fast_jit
def _returns_and_advantages(r_t, discount_t, values, kls, tau, lambda_):
    v_tm1, v_t, kl_tm1, kl_t = values[:-1], values[1:], kls[:-1], kls[1:]
    return (
        soft_lambda_returns(r_t, discount_t, v_t, kl_t, temperature=tau, lambda_=lambda_),
        soft_lambda_advantages(
            r_t, discount_t, v_tm1, v_t, kl_tm1, kl_t, temperature=tau, lambda_=lambda_
        ),
        soft_td_errors(r_t, discount_t, v_tm1, v_t, kl_tm1, temperature=tau),
    )


def _generalised_advantages(deltas, discount_t, lambda_):
    """Σ_d (Π_{j<d} γ_{i+j} λ_{i+j}) δ_{i+d}, window by window."""
    length = len(deltas)
    sums = np.zeros(length)
    for i in range(length):
        weight = 1.0
        for d in range(length - i):
            sums[i] += weight * deltas[i + d]
            weight *= discount_t[i + d] * lambda_[i + d]
    return sums


@given(stream=sqst.soft_streams(), tau=sqst.temperatures(), data=st.data())
def test_lambda_returns_equal_the_mixture_of_n_step_targets_and_advantages_are_soft_gae(
    stream, tau, data
):
    lambda_ = data.draw(lambdas(len(stream.r_t)))
    returns, advantages, _ = _returns_and_advantages(
        stream.r_t, stream.discount_t, stream.values, stream.kls, tau, lambda_
    )
    expected = oracles.lambda_soft_returns(
        stream.r_t, stream.discount_t, stream.v_t, stream.kl_t, temperature=tau, lambda_=lambda_
    )
    scale = magnitude(expected, stream.values, tau * stream.kls)
    assert_close(returns, expected, tolerance=1e-12, scale=scale, what="G^λ vs mixture")
    deltas = oracles.soft_td_errors(
        stream.r_t, stream.discount_t, stream.v_tm1, stream.v_t, stream.kl_tm1, temperature=tau
    )
    gae = _generalised_advantages(deltas, stream.discount_t, lambda_)
    assert_close(advantages, gae, tolerance=1e-12, scale=scale, what="Δ^λ vs soft GAE")


@fast_jit
def _ends(r_t, discount_t, v_t, kl_t, tau):
    length = r_t.shape[0]

    def returns(lambda_):
        return soft_lambda_returns(r_t, discount_t, v_t, kl_t, temperature=tau, lambda_=lambda_)

    def targets(n):
        return soft_n_step_targets(r_t, discount_t, v_t, kl_t, temperature=tau, n=n)

    return returns(0.0), targets(1), returns(1.0), targets(length)


@given(stream=sqst.soft_streams(), tau=sqst.temperatures())
def test_lambda_zero_is_the_one_step_target_and_lambda_one_the_longest_n_step_target(stream, tau):
    at_zero, one_step, at_one, longest = _ends(
        stream.r_t, stream.discount_t, stream.v_t, stream.kl_t, tau
    )
    scale = magnitude(one_step, longest, tau * stream.kls)
    assert_close(at_zero, one_step, tolerance=1e-12, scale=scale, what="λ = 0 vs n = 1")
    assert_close(at_one, longest, tolerance=1e-12, scale=scale, what="λ = 1 vs n = T")


@fast_jit
def _zero_temperature(r_t, discount_t, values, kls, lambda_):
    v_tm1, v_t, kl_tm1, kl_t = values[:-1], values[1:], kls[:-1], kls[1:]
    ours = soft_lambda_returns(r_t, discount_t, v_t, kl_t, temperature=0.0, lambda_=lambda_)
    advantages = soft_lambda_advantages(
        r_t, discount_t, v_tm1, v_t, kl_tm1, kl_t, temperature=0.0, lambda_=lambda_
    )
    theirs = rlax.lambda_returns(r_t, discount_t, v_t, lambda_)
    gae = rlax.truncated_generalized_advantage_estimation(r_t, discount_t, lambda_, values)
    return ours, theirs, advantages, gae


@given(stream=sqst.soft_streams(), data=st.data())
def test_at_temperature_zero_they_are_rlax_lambda_returns_and_gae(stream, data):
    lambda_ = data.draw(lambdas(len(stream.r_t)))
    ours, theirs, advantages, gae = (
        np.asarray(x)
        for x in _zero_temperature(
            stream.r_t, stream.discount_t, stream.values, stream.kls, lambda_
        )
    )
    ulps = 4 * np.finfo(np.float64).eps * (1.0 + np.max(np.abs(theirs)))
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=ulps, err_msg="vs rlax.lambda_returns")
    # rlax's GAE sums the TD errors in another order: 1e-12 of the value scale.
    assert_close(advantages, gae, tolerance=1e-12, scale=magnitude(theirs, stream.values))
