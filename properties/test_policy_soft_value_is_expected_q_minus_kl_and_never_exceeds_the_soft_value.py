"""[E4], [E9] The soft value of any policy: E_π q − τ KL, at most the soft value, and V_π of eq. 26.

For every score vector q, temperature τ, reference π̄ (uniform, entropy,
normalised or not) and policy π:

- `policy_soft_value(q, ln π)` equals the NumPy oracle E_π q − τ KL[π‖π̄] and
  v_q − τ KL[π‖π^B_q] (the Gibbs identity), so it never exceeds
  `soft_value(q)` and equals it at π = π^B_q; at τ = 0 it is E_π q;
- `policy_entropy` equals the oracle entropy, −`policy_kl`(·, "entropy") and
  log|A| − `policy_kl`(·, "uniform");
- on a tabular MDP, V_π(s) of `evaluate_policy` is `policy_soft_value` of the
  row Q_π(s, ·) in every state (paper eq. 26).

Tolerances: sums over ≤ 3 actions of numbers of magnitude ≤ M = 1 +
max(|q|, τ|ln π|, τ|ln π̄|) ≲ 60: 1e-12·M. The MDP values come from a linear
solve of condition ≤ (1 + γ)/(1 − γ) = 19 on values ≤ M/(1 − γ): 1e-11·M/(1 − γ).
"""

from __future__ import annotations

import math

import jax
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from softeq.core import (
    boltzmann_log_policy,
    evaluate_policy,
    policy_entropy,
    policy_kl,
    policy_soft_value,
    soft_value,
)
from softeq.properties import oracles
from softeq.properties import strategies as sqst
from softeq.properties._testing import assert_close, fast_jit, magnitude


@st.composite
def scored_policies(draw):
    num_actions = draw(st.sampled_from(sqst.ACTION_MENU))
    q = draw(sqst.q_tables((num_actions,)))
    logits = draw(sqst.float_arrays((num_actions,), min_value=-6.0, max_value=6.0))
    return q, logits, draw(sqst.temperatures()), draw(sqst.log_priors(num_actions))


@fast_jit
def _values(q, logits, tau, log_prior):
    log_pi = jax.nn.log_softmax(logits)
    log_boltzmann = boltzmann_log_policy(q, temperature=tau, log_prior=log_prior)
    return (
        policy_soft_value(q, log_pi, temperature=tau, log_prior=log_prior),
        soft_value(q, temperature=tau, log_prior=log_prior),
        policy_soft_value(q, log_boltzmann, temperature=tau, log_prior=log_prior),
        policy_soft_value(q, log_pi, temperature=0.0),
        policy_entropy(logits),
        policy_kl(logits, "entropy"),
        policy_kl(logits, "uniform"),
    )


@given(problem=scored_policies())
def test_policy_soft_value_is_the_regularised_score_and_at_most_the_soft_value(problem):
    q, logits, tau, log_prior = problem
    value, soft, at_boltzmann, expected_q, entropy, neg_entropy, kl_uniform = (
        float(x) for x in _values(q, logits, tau, log_prior)
    )
    policy = oracles.softmax(logits)
    boltzmann = oracles.boltzmann_policy(q, temperature=tau, log_prior=log_prior)
    scale = magnitude(q, tau * np.log(policy), tau * log_prior)
    oracle = oracles.regularised_score(policy, q, temperature=tau, log_prior=log_prior)
    assert_close(value, oracle, tolerance=1e-12, scale=scale, what="vs E_π q − τ KL")
    gibbs = soft - tau * oracles.kl_divergence(policy, np.log(boltzmann))
    assert_close(value, gibbs, tolerance=1e-12, scale=scale, what="v_q − τ KL[π‖π^B]")
    assert value <= soft + 1e-12 * scale
    assert_close(at_boltzmann, soft, tolerance=1e-12, scale=scale, what="at π^B")
    assert_close(expected_q, policy @ q, tolerance=1e-12, scale=scale, what="τ = 0")
    num_actions = len(q)
    assert_close(entropy, oracles.entropy(policy), tolerance=1e-12, what="H")
    assert_close(neg_entropy, -entropy, tolerance=1e-12, what="policy_kl(·, entropy) = −H")
    assert_close(kl_uniform, math.log(num_actions) - entropy, tolerance=1e-12, what="log A − H")


@fast_jit
def _state_values(policy, mdp, tau, log_prior):
    v, q = evaluate_policy(policy, mdp, temperature=tau, log_prior=log_prior)
    rows = jax.vmap(
        lambda qs, log_pi, lp: policy_soft_value(qs, log_pi, temperature=tau, log_prior=lp)
    )(q, jax.numpy.log(policy), log_prior)
    return v, rows


@given(
    mdp=sqst.tabular_mdps(discount=sqst.discounts(max_value=0.9)),
    tau=sqst.temperatures(),
    data=st.data(),
)
def test_policy_soft_value_of_q_pi_is_v_pi_in_every_state(mdp, tau, data):
    policy = data.draw(sqst.policies(mdp))
    log_prior = data.draw(sqst.log_priors(mdp.num_actions, num_states=mdp.num_states))
    v, rows = _state_values(policy, mdp, tau, log_prior)
    scale = magnitude(np.asarray(mdp.rewards), tau * np.log(policy), tau * log_prior) / (
        1.0 - float(mdp.discount)
    )
    assert_close(rows, v, tolerance=1e-11, scale=scale, what="V_π(s) vs policy_soft_value")
