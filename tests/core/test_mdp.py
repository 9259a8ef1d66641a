"""Hand-computed examples for softeq.core.mdp: tabular backups, soft VI, exact evaluation.

The running example is a 2-state, 2-action MDP small enough to solve on paper:

    s0, a0 -> s0 with reward 1        s0, a1 -> s1 with reward 0
    s1, a0 -> s0 with reward 0        s1, a1 -> s0 or s1 (1/2 each) with reward 2
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from softeq.core import (
    TabularMDP,
    boltzmann_policy_table,
    evaluate_policy,
    finite_horizon_regularised_objective,
    regularised_objective,
    soft_bellman_backup,
    soft_policy_evaluation_backup,
    soft_value_iteration,
    tabular_soft_values,
    validate_tabular_mdp,
)

# Closed forms of a few logs and a 2x2 linear solve: float64 results are within a
# few ulps (eps 2.2e-16) of them, so 1e-12 is ample slack yet catches any wrong term.
TIGHT = {"rtol": 1e-12, "atol": 1e-12}
LOG2, LOG3 = math.log(2.0), math.log(3.0)


def close(actual, expected, **tol):
    actual = np.asarray(actual)
    assert actual.dtype == np.float64, actual.dtype
    np.testing.assert_allclose(actual, expected, **(tol or TIGHT))


def two_state_mdp(discount=0.5, initial=(0.25, 0.75)) -> TabularMDP:
    transitions = jnp.array(
        [
            [[1.0, 0.0], [0.0, 1.0]],
            [[1.0, 0.0], [0.5, 0.5]],
        ]
    )
    return TabularMDP(
        transitions=transitions,
        rewards=jnp.array([[1.0, 0.0], [0.0, 2.0]]),
        discount=jnp.array(discount),
        initial_distribution=jnp.array(initial),
    )


def one_state_mdp(rewards, discount) -> TabularMDP:
    a = len(rewards)
    return TabularMDP(
        transitions=jnp.ones((1, a, 1)),
        rewards=jnp.array([rewards]),
        discount=jnp.array(discount),
        initial_distribution=jnp.ones(1),
    )


# --- TabularMDP ----------------------------------------------------------------------


def test_tabular_mdp_sizes_and_validation_of_a_valid_mdp():
    mdp = two_state_mdp()
    assert (mdp.num_states, mdp.num_actions) == (2, 2)
    assert validate_tabular_mdp(mdp) is None
    # a Python float discount and numpy arrays are accepted as well
    TabularMDP(
        transitions=np.asarray(mdp.transitions),
        rewards=np.asarray(mdp.rewards),
        discount=0.9,
        initial_distribution=np.array([1.0, 0.0]),
    )


def test_tabular_mdp_passes_through_jit():
    mdp = two_state_mdp()
    # under jit the leaves are traced, so construction must not try to validate them
    total = jax.jit(lambda m: jnp.sum(m.rewards) + m.discount)(mdp)
    close(total, 3.5)


def test_a_batch_of_mdps_can_be_built_by_vmap_and_used_by_vmap():
    # The natural way to get many MDPs is to vmap a constructor. Its result is
    # unflattened from concrete [B, ...] arrays, which re-runs __post_init__, so
    # the per-MDP shape check must allow leading batch axes (or be skipped there).
    def make(reward_scale):
        mdp = two_state_mdp()
        return mdp.replace(rewards=reward_scale * mdp.rewards)

    batch = jax.vmap(make)(jnp.array([1.0, 2.0]))
    assert batch.transitions.shape == (2, 2, 2, 2)
    v = jax.vmap(lambda m: tabular_soft_values(m.rewards, temperature=1.0))(batch)
    # soft values of the rows (1, 0) and (0, 2), then of (2, 0) and (0, 4), uniform prior
    close(
        v,
        [
            [math.log((math.e + 1) / 2), math.log((1 + math.e**2) / 2)],
            [math.log((math.e**2 + 1) / 2), math.log((1 + math.e**4) / 2)],
        ],
    )


# --- tabular_soft_values, boltzmann_policy_table [E10] -----------------------------------


def test_tabular_soft_values_hand_examples():
    q = jnp.array([[0.0, LOG3], [1.0, 1.0]])
    # uniform: log((1 + 3) / 2) = log 2 and 1
    close(tabular_soft_values(q, temperature=1.0), [LOG2, 1.0])
    # per-state prior [S, A]: (1/4, 3/4) in state 0 and (1/2, 1/2) in state 1
    prior = jnp.log(jnp.array([[0.25, 0.75], [0.5, 0.5]]))
    close(
        tabular_soft_values(q, temperature=1.0, log_prior=prior),
        [math.log(0.25 + 0.75 * 3.0), 1.0],
    )


def test_boltzmann_policy_table_hand_examples():
    q = jnp.array([[0.0, LOG3], [0.0, 0.0]])
    close(boltzmann_policy_table(q, temperature=1.0), [[0.25, 0.75], [0.5, 0.5]])
    prior = jnp.log(jnp.array([[0.5, 0.5], [0.1, 0.9]]))
    close(boltzmann_policy_table(q, temperature=1.0, log_prior=prior), [[0.25, 0.75], [0.1, 0.9]])


# --- soft_bellman_backup [E12] -----------------------------------------------------------


def test_soft_bellman_backup_two_state_example():
    mdp = two_state_mdp(discount=0.5)
    q = jnp.array([[0.0, LOG3], [0.0, 0.0]])
    # V_Q = (log((1 + 3) / 2), log((1 + 1) / 2)) = (log 2, 0) at tau = 1, uniform prior
    v0, v1 = LOG2, 0.0
    expected = [
        [1.0 + 0.5 * v0, 0.0 + 0.5 * v1],
        [0.0 + 0.5 * v0, 2.0 + 0.5 * (0.5 * v0 + 0.5 * v1)],
    ]
    close(soft_bellman_backup(q, mdp, temperature=1.0), expected)


def test_soft_bellman_backup_with_the_entropy_prior_adds_tau_log_a():
    # pi_bar = 1 instead of uniform adds tau log|A| to every soft value, hence
    # gamma tau log 2 to every entry of the backup (both next-state values move).
    mdp = two_state_mdp(discount=0.5)
    q = jnp.array([[0.0, LOG3], [0.0, 0.0]])
    tau = 0.5
    uniform = soft_bellman_backup(q, mdp, temperature=tau)
    entropy = soft_bellman_backup(q, mdp, temperature=tau, log_prior=jnp.zeros(2))
    close(entropy - uniform, np.full((2, 2), 0.5 * tau * LOG2))


# --- soft_policy_evaluation_backup [E11] --------------------------------------------------


def test_soft_policy_evaluation_backup_two_state_example():
    mdp = two_state_mdp(discount=0.5)
    q = jnp.array([[0.0, LOG3], [0.0, 0.0]])
    policy = jnp.array([[0.5, 0.5], [1.0, 0.0]])
    # v(s0) = 1/2 log 3 - KL(uniform || uniform) = 1/2 log 3
    # v(s1) = Q(s1, a0) - KL((1, 0) || uniform) = 0 - log 2
    v0, v1 = 0.5 * LOG3, -LOG2
    expected = [
        [1.0 + 0.5 * v0, 0.5 * v1],
        [0.5 * v0, 2.0 + 0.5 * (0.5 * v0 + 0.5 * v1)],
    ]
    close(soft_policy_evaluation_backup(q, policy, mdp, temperature=1.0), expected)
    # at temperature 0 only the expectation remains: v = (1/2 log 3, 0)
    v0, v1 = 0.5 * LOG3, 0.0
    expected0 = [
        [1.0 + 0.5 * v0, 0.5 * v1],
        [0.5 * v0, 2.0 + 0.5 * (0.5 * v0 + 0.5 * v1)],
    ]
    close(soft_policy_evaluation_backup(q, policy, mdp, temperature=0.0), expected0)


def test_soft_backup_equals_evaluation_backup_of_the_boltzmann_policy():
    # [E12]: T Q = T_{pi^B_Q} Q, on the example above with tau = 0.7 and a non-uniform prior.
    mdp = two_state_mdp(discount=0.5)
    q = jnp.array([[0.3, -1.2], [2.0, 0.4]])
    prior = jnp.log(jnp.array([0.2, 0.8]))
    policy = boltzmann_policy_table(q, temperature=0.7, log_prior=prior)
    close(
        soft_policy_evaluation_backup(q, policy, mdp, temperature=0.7, log_prior=prior),
        soft_bellman_backup(q, mdp, temperature=0.7, log_prior=prior),
    )


# --- soft_value_iteration [E12] ----------------------------------------------------------

# soft VI stops when one backup moves Q by at most `tolerance`; the error of the
# result is then at most tolerance * gamma / (1 - gamma) = 9e-12 for gamma = 0.9,
# so the fixed-point comparisons use atol = 1e-10.
VI_TOL = {"rtol": 0.0, "atol": 1e-10}


@pytest.mark.parametrize(
    ("rewards", "discount", "temperature", "log_prior", "log_mean"),
    [
        # uniform prior: V* = tau log mean_a e^{r_a / tau} / (1 - gamma)
        ([1.0, 0.0], 0.9, 1.0, None, math.log((math.e + 1.0) / 2.0)),
        # tau = 1/2, rewards (0, 1/2 log 3): tau log((1 + 3) / 2) = 1/2 log 2
        ([0.0, 0.5 * LOG3], 0.5, 0.5, None, 0.5 * LOG2),
        # entropy convention pi_bar = 1: tau log sum_a e^{r_a / tau}, three actions
        ([0.0, 0.0, 0.0], 0.9, 0.2, [0.0, 0.0, 0.0], 0.2 * math.log(3.0)),
        # prior (1/4, 3/4): log(1/4 e^2 + 3/4)
        ([2.0, 0.0], 0.8, 1.0, [math.log(0.25), math.log(0.75)], math.log(0.25 * math.e**2 + 0.75)),
    ],
)
def test_soft_value_iteration_one_state_closed_form(
    rewards, discount, temperature, log_prior, log_mean
):
    # One state that loops to itself: Q*(a) = r_a + gamma V* and
    # V* = tau log E_{pi_bar} e^{Q*/tau} = tau log E_{pi_bar} e^{r/tau} + gamma V*,
    # so V* = tau log E_{pi_bar} e^{r/tau} / (1 - gamma).
    mdp = one_state_mdp(rewards, discount)
    lp = None if log_prior is None else jnp.array(log_prior)
    q_star = soft_value_iteration(mdp, temperature=temperature, log_prior=lp, tolerance=1e-12)
    v_star = log_mean / (1.0 - discount)
    close(q_star, [np.array(rewards) + discount * v_star], **VI_TOL)


def test_soft_value_iteration_two_state_fixed_point_and_its_policy():
    mdp = two_state_mdp(discount=0.9)
    q_star = soft_value_iteration(mdp, temperature=0.5, tolerance=1e-12)
    # a fixed point of the soft backup ...
    close(soft_bellman_backup(q_star, mdp, temperature=0.5), q_star, **VI_TOL)
    # ... whose Boltzmann policy, evaluated exactly, gives Q* back ([E12])
    pi_star = boltzmann_policy_table(q_star, temperature=0.5)
    _, q_pi = evaluate_policy(pi_star, mdp, temperature=0.5)
    close(q_pi, q_star, **VI_TOL)


def test_soft_value_iteration_respects_max_iterations():
    # from Q = 0, one backup of the 1-state MDP gives exactly the rewards
    mdp = one_state_mdp([1.0, 0.0], 0.9)
    close(soft_value_iteration(mdp, temperature=1.0, max_iterations=1), [[1.0, 0.0]])


# --- evaluate_policy, regularised_objective [E9] ---------------------------------------


def test_evaluate_policy_against_a_hand_solve():
    # policy (1/2, 1/2) in s0, a0 for sure in s1; tau = 1/2, gamma = 1/2, uniform prior.
    # KL = (0, log 2), r_pi = (1/2, -1/2 log 2), P_pi = [[1/2, 1/2], [1, 0]]:
    #   V0 = 1/2 + 1/4 V0 + 1/4 V1,   V1 = -1/2 log 2 + 1/2 V0
    #   => V0 = 4/5 - 1/5 log 2,  V1 = 2/5 - 3/5 log 2.
    mdp = two_state_mdp(discount=0.5)
    policy = jnp.array([[0.5, 0.5], [1.0, 0.0]])
    v, q = evaluate_policy(policy, mdp, temperature=0.5)
    v0, v1 = 0.8 - 0.2 * LOG2, 0.4 - 0.6 * LOG2
    close(v, [v0, v1])
    close(q, [[1.0 + 0.5 * v0, 0.5 * v1], [0.5 * v0, 2.0 + 0.5 * (0.5 * v0 + 0.5 * v1)]])
    # paper eq. 26: V = E_pi Q - tau KL
    close(v, jnp.sum(policy * q, axis=-1) - 0.5 * jnp.array([0.0, LOG2]))
    # eta = mu . V with mu = (1/4, 3/4)
    close(regularised_objective(policy, mdp, temperature=0.5), 0.25 * v0 + 0.75 * v1)


def test_regularised_objective_gradient_is_the_exact_softmax_policy_gradient():
    # One state, pi = softmax(theta): eta = E_pi[g] / (1 - gamma) with
    # g = r - tau log(pi / pi_bar), and d eta / d theta = pi * (g - E_pi g) / (1 - gamma)
    # (the -tau d log pi terms sum to zero against pi).
    rewards, gamma, tau = np.array([1.0, 0.0, 0.5]), 0.75, 0.3
    mdp = one_state_mdp(list(rewards), gamma)
    theta = jnp.array([0.2, -0.4, 1.0])
    pi = np.exp(theta) / np.sum(np.exp(theta))
    g = rewards - tau * np.log(pi / (1.0 / 3.0))
    expected = pi * (g - pi @ g) / (1.0 - gamma)

    def eta(t):
        return regularised_objective(jax.nn.softmax(t)[None], mdp, temperature=tau)

    close(eta(theta), pi @ g / (1.0 - gamma))
    close(jax.grad(eta)(theta), expected)


# --- finite_horizon_regularised_objective [E14] -------------------------------------------


def test_finite_horizon_objective_by_hand_with_gamma_one():
    mdp = two_state_mdp(discount=1.0)
    policy = jnp.array([[0.5, 0.5], [1.0, 0.0]])
    # tau = 1/2: r_pi = (1/2, -1/2 log 2); mu = (1/4, 3/4)
    # H = 1: mu . r_pi = 1/8 - 3/8 log 2
    h1 = finite_horizon_regularised_objective(policy, mdp, temperature=0.5, horizon=1)
    close(h1, 0.125 - 0.375 * LOG2)
    # H = 2: V2 = r_pi + P_pi r_pi = (3/4 - 1/4 log 2, 1/2 - 1/2 log 2)
    h2 = finite_horizon_regularised_objective(policy, mdp, temperature=0.5, horizon=2)
    close(h2, 0.25 * (0.75 - 0.25 * LOG2) + 0.75 * (0.5 - 0.5 * LOG2))


def test_finite_horizon_objective_approaches_the_discounted_one():
    # with gamma = 1/2 the tail after 200 steps is below 2^-200 * max|r_pi| / (1 - gamma)
    mdp = two_state_mdp(discount=0.5)
    policy = jnp.array([[0.5, 0.5], [1.0, 0.0]])
    long_run = finite_horizon_regularised_objective(policy, mdp, temperature=0.5, horizon=200)
    v0, v1 = 0.8 - 0.2 * LOG2, 0.4 - 0.6 * LOG2
    close(long_run, 0.25 * v0 + 0.75 * v1)
