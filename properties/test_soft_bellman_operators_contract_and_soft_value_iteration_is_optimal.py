"""[E9], [E11], [E12] Soft backups, their contraction, and optimality of soft value iteration.

- 𝒯Q = 𝒯_{π^B_Q} Q for every Q (the soft backup is the evaluation backup of
  the Boltzmann policy of its argument), and both match the NumPy oracles.
- 𝒯 and 𝒯_π are γ-contractions in the sup norm.
- `evaluate_policy` matches a dense NumPy solve, and V_π = E_π[Q_π] − τ KL.
- Soft value iteration's fixed point Q* equals the exact evaluation Q_{π*}
  of its own Boltzmann policy π* = π^B_{Q*}, and no policy beats it:
  V_π ≤ V_{π*} in every state.

The reference π̄ is drawn per state (`[S, A]`), normalised or not.

Tolerances: values are bounded by M = (1 + τ·max|log π|)/(1 − γ) ≲ 150
(|r| ≤ 1, γ ≤ 0.9, τ ≤ 5). Backups are few-term sums: 1e-12·M. The linear
solve of `evaluate_policy` has condition number ≤ (1 + γ)/(1 − γ) = 19:
1e-11·M. Soft value iteration stops when a backup changes Q by ≤ 1e-10, so
its fixed point is within 1e-10·γ/(1 − γ) ≤ 1e-9 of Q*: comparisons with it
use 1e-8·M.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from softeq.core import (
    boltzmann_policy_table,
    evaluate_policy,
    soft_bellman_backup,
    soft_policy_evaluation_backup,
    soft_value_iteration,
    tabular_soft_values,
)
from softeq.properties import oracles
from softeq.properties import strategies as sqst
from softeq.properties._testing import assert_close, fast_jit, magnitude


@st.composite
def soft_mdps(draw):
    mdp = draw(sqst.tabular_mdps(discount=sqst.discounts(max_value=0.9)))
    log_prior = draw(sqst.log_priors(mdp.num_actions, num_states=mdp.num_states))
    return mdp, draw(sqst.temperatures()), log_prior


@fast_jit
def _backups(q, policy, mdp, tau, log_prior):
    boltzmann = boltzmann_policy_table(q, temperature=tau, log_prior=log_prior)
    return (
        soft_bellman_backup(q, mdp, temperature=tau, log_prior=log_prior),
        soft_policy_evaluation_backup(q, boltzmann, mdp, temperature=tau, log_prior=log_prior),
        soft_policy_evaluation_backup(q, policy, mdp, temperature=tau, log_prior=log_prior),
    )


@fast_jit
def _evaluate(policy, mdp, tau, log_prior):
    return evaluate_policy(policy, mdp, temperature=tau, log_prior=log_prior)


@fast_jit
def _soft_optimum(mdp, tau, log_prior):
    q_star = soft_value_iteration(mdp, temperature=tau, log_prior=log_prior, tolerance=1e-10)
    pi_star = boltzmann_policy_table(q_star, temperature=tau, log_prior=log_prior)
    v_eval, q_eval = evaluate_policy(pi_star, mdp, temperature=tau, log_prior=log_prior)
    v_star = tabular_soft_values(q_star, temperature=tau, log_prior=log_prior)
    improved = boltzmann_policy_table(q_eval, temperature=tau, log_prior=log_prior)
    return q_star, pi_star, v_star, v_eval, q_eval, improved


def _value_scale(mdp, tau, log_prior, policy=None) -> float:
    log_terms = [np.abs(log_prior)] if policy is None else [np.abs(log_prior), -np.log(policy)]
    return magnitude(tau * np.max(log_terms[-1]), np.asarray(mdp.rewards)) / (
        1.0 - float(mdp.discount)
    )


@given(problem=soft_mdps(), data=st.data())
def test_soft_backup_is_the_evaluation_backup_of_its_boltzmann_policy(problem, data):
    mdp, tau, log_prior = problem
    q = data.draw(sqst.q_tables((mdp.num_states, mdp.num_actions), scale=10.0))
    policy = data.draw(sqst.policies(mdp))
    soft, via_boltzmann, evaluation = _backups(q, policy, mdp, tau, log_prior)
    scale = magnitude(q, tau * log_prior, tau * np.log(policy), np.asarray(mdp.rewards))
    assert_close(soft, via_boltzmann, tolerance=1e-12, scale=scale, what="𝒯Q vs 𝒯_{π^B_Q}Q")
    oracle_soft = oracles.soft_bellman_backup(q, mdp, temperature=tau, log_prior=log_prior)
    assert_close(soft, oracle_soft, tolerance=1e-12, scale=scale, what="𝒯Q vs oracle")
    oracle_eval = oracles.soft_policy_evaluation_backup(
        q, policy, mdp, temperature=tau, log_prior=log_prior
    )
    assert_close(evaluation, oracle_eval, tolerance=1e-12, scale=scale, what="𝒯_πQ vs oracle")


@given(problem=soft_mdps(), data=st.data())
def test_soft_backups_are_discount_contractions_in_the_sup_norm(problem, data):
    mdp, tau, log_prior = problem
    shape = (mdp.num_states, mdp.num_actions)
    q1 = data.draw(sqst.q_tables(shape, scale=10.0))
    q2 = data.draw(sqst.q_tables(shape, scale=10.0))
    policy = data.draw(sqst.policies(mdp))
    soft1, _, eval1 = _backups(q1, policy, mdp, tau, log_prior)
    soft2, _, eval2 = _backups(q2, policy, mdp, tau, log_prior)
    gamma = float(mdp.discount)
    distance = np.max(np.abs(q1 - q2))
    slack = 1e-12 * magnitude(q1, q2, tau * log_prior, tau * np.log(policy))
    assert np.max(np.abs(np.asarray(soft1) - soft2)) <= gamma * distance + slack
    assert np.max(np.abs(np.asarray(eval1) - eval2)) <= gamma * distance + slack


@given(problem=soft_mdps(), data=st.data())
def test_evaluate_policy_matches_a_dense_solve_and_v_is_expected_q_minus_kl(problem, data):
    mdp, tau, log_prior = problem
    policy = data.draw(sqst.policies(mdp))
    v, q = _evaluate(policy, mdp, tau, log_prior)
    oracle_v, oracle_q = oracles.evaluate_policy(policy, mdp, temperature=tau, log_prior=log_prior)
    scale = _value_scale(mdp, tau, log_prior, policy)
    assert_close(v, oracle_v, tolerance=1e-11, scale=scale, what="V_π vs dense solve")
    assert_close(q, oracle_q, tolerance=1e-11, scale=scale, what="Q_π vs dense solve")
    kls = oracles.policy_kls(policy, log_prior)
    expected_q_minus_kl = np.sum(policy * np.asarray(q), axis=1) - tau * kls
    assert_close(v, expected_q_minus_kl, tolerance=1e-11, scale=scale, what="[E9] eq. 26")


@given(problem=soft_mdps(), data=st.data())
def test_soft_value_iteration_fixed_point_is_optimal(problem, data):
    mdp, tau, log_prior = problem
    q_star, pi_star, v_star, v_eval, q_eval, improved = _soft_optimum(mdp, tau, log_prior)
    scale = _value_scale(mdp, tau, log_prior, np.asarray(pi_star))
    # exact evaluation of π* = π^B_{Q*} gives back Q* and its soft values.
    assert_close(q_eval, q_star, tolerance=1e-8, scale=scale, what="Q_{π*} vs Q*")
    assert_close(v_eval, v_star, tolerance=1e-8, scale=scale, what="V_{π*} vs V_{Q*}")
    oracle_q = oracles.soft_value_iteration(mdp, temperature=tau, log_prior=log_prior)
    assert_close(q_star, oracle_q, tolerance=1e-8, scale=scale, what="Q* vs NumPy iteration")
    # no policy beats π*, in any state.
    policy = data.draw(sqst.policies(mdp))
    v_other, _ = _evaluate(policy, mdp, tau, log_prior)
    assert np.all(np.asarray(v_other) <= np.asarray(v_eval) + 1e-8 * scale)
    # and π* is a fixed point of the Boltzmann improvement step: an error e in
    # Q moves π^B by at most 2e/τ ≤ 2e-9/0.05 = 4e-8, so 1e-6.
    assert_close(improved, pi_star, tolerance=1e-6, what="π^B_{Q_{π*}} vs π*")
