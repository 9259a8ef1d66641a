"""[E4] Gibbs variational identity, and the Boltzmann policy is the unique maximiser.

For every score vector q, temperature τ, reference π̄ (normalised or not) and
policy π:

    E_π[q] − τ KL[π‖π̄] = v_q − τ KL[π‖π^B_q],

so v_q = max_π {E_π[q] − τ KL[π‖π̄]}, attained at π^B_q (the gap is τ KL ≥ 0).
softeq's `soft_value`, `boltzmann_log_policy` and `kl_divergence` are checked
against the identity and against the NumPy oracles.

Tolerance: every term is a sum of ≤ 3 products of numbers bounded by the
magnitude M = 1 + max(|q|, τ·|log π|, τ·|log π̄|) ≲ 60 here; float64 round-off
is a few ulps of M, so 1e-12·M leaves a margin of ~1000.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from softeq.core import boltzmann_log_policy, kl_divergence, soft_value
from softeq.properties import oracles
from softeq.properties import strategies as sqst
from softeq.properties._testing import assert_close, fast_jit, magnitude


@st.composite
def bandits(draw):
    num_actions = draw(st.sampled_from(sqst.ACTION_MENU))
    q = draw(sqst.q_tables((num_actions,)))
    policy_logits = draw(sqst.float_arrays((num_actions,), min_value=-6.0, max_value=6.0))
    policy = np.exp(policy_logits - policy_logits.max())
    return (
        q,
        policy / policy.sum(),
        draw(sqst.temperatures()),
        draw(sqst.log_priors(num_actions)),
    )


@fast_jit
def _gibbs_terms(q, log_policy, temperature, log_prior):
    v = soft_value(q, temperature=temperature, log_prior=log_prior)
    log_boltzmann = boltzmann_log_policy(q, temperature=temperature, log_prior=log_prior)
    policy = jnp.exp(log_policy)
    regularised_score = policy @ q - temperature * kl_divergence(log_policy, log_prior)
    gap = temperature * kl_divergence(log_policy, log_boltzmann)
    boltzmann_score = jnp.exp(log_boltzmann) @ q - temperature * kl_divergence(
        log_boltzmann, log_prior
    )
    return v, log_boltzmann, regularised_score, gap, boltzmann_score


@given(bandit=bandits())
def test_gibbs_variational_identity(bandit):
    q, policy, temperature, log_prior = bandit
    v, log_boltzmann, score, gap, _ = _gibbs_terms(q, np.log(policy), temperature, log_prior)
    scale = magnitude(q, temperature * np.log(policy), temperature * log_prior)
    assert_close(score, v - gap, tolerance=1e-12, scale=scale, what="E_π q − τKL[π‖π̄]")
    assert_close(
        score,
        oracles.regularised_score(policy, q, temperature=temperature, log_prior=log_prior),
        tolerance=1e-12,
        scale=scale,
        what="regularised score vs oracle",
    )
    assert_close(
        v,
        oracles.soft_value(q, temperature=temperature, log_prior=log_prior),
        tolerance=1e-12,
        scale=scale,
        what="soft value vs oracle",
    )
    assert_close(
        np.exp(log_boltzmann),
        oracles.boltzmann_policy(q, temperature=temperature, log_prior=log_prior),
        tolerance=1e-12,
        what="Boltzmann policy vs oracle",
    )


@given(bandit=bandits())
def test_boltzmann_policy_attains_the_soft_value_and_no_policy_exceeds_it(bandit):
    q, policy, temperature, log_prior = bandit
    v, _, score, gap, boltzmann_score = _gibbs_terms(q, np.log(policy), temperature, log_prior)
    scale = magnitude(q, temperature * np.log(policy), temperature * log_prior)
    assert_close(boltzmann_score, v, tolerance=1e-12, scale=scale, what="score of π^B_q")
    # KL ≥ 0 up to round-off, so no policy beats the soft value.
    assert gap >= -1e-12 * scale
    assert score <= v + 1e-12 * scale
