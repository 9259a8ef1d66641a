"""[E5] q = v_q + τ log(π^B_q/π̄), and adding a constant to q shifts v_q and keeps π^B_q.

Checked for `soft_value`/`boltzmann_log_policy` on `[A]` vectors and for the
tabular `tabular_soft_values`/`boltzmann_policy_table` row by row, for any
reference weights π̄ (normalised or not).

Tolerance: q, v and τ·log π are of magnitude M ≲ 60 (|q| ≤ 3, shifts ≤ 10,
τ ≤ 5, log-probabilities ≥ −12); a log-sum-exp and a subtraction lose a few
ulps of M, so 1e-12·M. Probabilities are compared to 1e-12 absolute:
shifting q by c changes q/τ by up to 200, and the rounding of that
shift perturbs the softmax by ≲ 200·eps relative.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from softeq.core import (
    boltzmann_log_policy,
    boltzmann_policy_table,
    soft_value,
    tabular_soft_values,
)
from softeq.properties import strategies as sqst
from softeq.properties._testing import assert_close, fast_jit, magnitude


@fast_jit
def _value_and_log_policy(q, temperature, log_prior):
    return (
        soft_value(q, temperature=temperature, log_prior=log_prior),
        boltzmann_log_policy(q, temperature=temperature, log_prior=log_prior),
    )


@fast_jit
def _tabular(q, temperature, log_prior):
    return (
        tabular_soft_values(q, temperature=temperature, log_prior=log_prior),
        boltzmann_policy_table(q, temperature=temperature, log_prior=log_prior),
    )


@st.composite
def scored_states(draw):
    num_states = draw(st.sampled_from(sqst.STATE_MENU))
    num_actions = draw(st.sampled_from(sqst.ACTION_MENU))
    q = draw(sqst.q_tables((num_states, num_actions)))
    log_prior = draw(sqst.log_priors(num_actions))
    shift = draw(st.floats(-10.0, 10.0, allow_nan=False))
    return q, draw(sqst.temperatures()), log_prior, shift


@given(case=scored_states())
def test_q_is_soft_value_plus_scaled_log_ratio(case):
    q, temperature, log_prior, _ = case
    for row in q:
        v, log_pi = _value_and_log_policy(row, temperature, log_prior)
        rebuilt = v + temperature * (np.asarray(log_pi) - log_prior)
        scale = magnitude(row, temperature * np.asarray(log_pi), temperature * log_prior)
        assert_close(rebuilt, row, tolerance=1e-12, scale=scale, what="v + τ log(π/π̄)")


@given(case=scored_states())
def test_shifting_q_shifts_the_soft_value_and_keeps_the_policy(case):
    q, temperature, log_prior, shift = case
    values, policy = _tabular(q, temperature, log_prior)
    shifted_values, shifted_policy = _tabular(q + shift, temperature, log_prior)
    scale = magnitude(q, shift, values)
    assert_close(shifted_values, np.asarray(values) + shift, tolerance=1e-12, scale=scale)
    assert_close(shifted_policy, policy, tolerance=1e-12, what="π^B of q + c")
    # the tabular functions agree with the per-state ones row by row.
    for s, row in enumerate(q):
        v, log_pi = _value_and_log_policy(row, temperature, log_prior)
        assert_close(values[s], v, tolerance=1e-12, scale=scale)
        assert_close(policy[s], np.exp(log_pi), tolerance=1e-12)
