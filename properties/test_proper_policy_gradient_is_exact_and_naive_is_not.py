"""[E14] The proper entropy-regularised policy gradient is exact; the naive one is not.

Finite horizon H = 3 with γ = 1, tabular softmax policy π_θ = softmax(θ),
reference π̄ of any kind, a random state baseline b(s):

- proper: −H·E[∇ L_PG] with Δ_t from `soft_n_step_advantages` (all future
  r − τ KL, n = H, episode ending at H) equals ∇_θ of
  `finite_horizon_regularised_objective`, which in turn matches central
  finite differences of the NumPy oracle objective;
- naive: with Δ_t the plain returns (temperature 0 in the advantages) the
  estimator misses exactly τ·E[Σ_t ∇log π(a_t|s_t) Σ_{t'>t} KL(s_{t'})]
  (computed in closed form in NumPy over the enumerated paths), and on
  instances where the future KL depends on the action the miss is large:
  the naive estimator is rejected;
- discounted: at π* = π^B_{Q*} the proper gradient E_a[∇log π*(a|s)(Q(s,a) −
  V(s))] − τ∇KL(s) vanishes in every state.

Tolerances: exact expectations over ≤ 2187 paths of order-one terms agree
to 1e-10 × (1 + |g|) (round-off ~1e-14). Finite differences with step 1e-5
carry O(step²) ≈ 1e-10 truncation error: 1e-7 × (1 + |g|). At π*, soft value
iteration's stopping error (≤ 1e-9 in Q) enters the gradient linearly:
1e-7 × (1 + max|Q|).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from softeq.core import (
    evaluate_policy,
    finite_horizon_regularised_objective,
    regularised_policy_gradient_loss,
    soft_n_step_advantages,
    soft_value_iteration,
)
from softeq.properties import oracles
from softeq.properties import strategies as sqst
from softeq.properties._testing import assert_close, fast_jit, magnitude
from softeq.properties.equivalence import enumerate_trajectories

HORIZON = 3


@fast_jit
def _exact_gradient(theta, mdp, tau, log_prior):
    def objective(t):
        policy = jax.nn.softmax(t)
        return finite_horizon_regularised_objective(
            policy, mdp, temperature=tau, horizon=HORIZON, log_prior=log_prior
        )

    return jax.grad(objective)(theta)


@fast_jit
def _estimator_gradients(theta, states, actions, rewards, weights, baseline, tau, log_prior):
    """(proper, naive) expected estimators −H·E[∇L_PG] over all paths."""
    log_pi = jax.nn.log_softmax(theta)
    kls = jnp.sum(jnp.exp(log_pi) * (log_pi - log_prior), axis=-1)
    # γ = 1 inside the horizon; the episode ends at H, so nothing is bootstrapped.
    discounts = jnp.ones(HORIZON).at[-1].set(0.0)

    def per_path_loss(t, s, a, r, advantage_temperature):
        advantages = soft_n_step_advantages(
            r,
            discounts,
            baseline[s[:-1]],
            baseline[s[1:]],
            kls[s[:-1]],
            kls[s[1:]],
            temperature=advantage_temperature,
            n=HORIZON,
        )
        loss = regularised_policy_gradient_loss(
            t[s[:-1]], a, advantages, temperature=tau, log_prior=log_prior
        )
        return HORIZON * loss  # the loss is a mean over the H steps

    def expected(advantage_temperature):
        def total(t):
            losses = jax.vmap(per_path_loss, in_axes=(None, 0, 0, 0, None))(
                t, states, actions, rewards, advantage_temperature
            )
            return jnp.sum(weights * losses)

        return -jax.grad(total)(theta)

    return expected(tau), expected(0.0)


def _missing_future_kl_term(theta, mdp, tau, log_prior):
    """τ·E[Σ_t ∇_θ log π(a_t|s_t) Σ_{t'>t} KL(s_{t'})] in closed form (NumPy)."""
    policy = oracles.softmax(theta)
    kls = oracles.policy_kls(policy, log_prior)
    paths = oracles.enumerate_paths(mdp, policy, horizon=HORIZON)
    total = np.zeros_like(theta)
    for t in range(HORIZON):
        s_t, a_t = paths.states[:, t], paths.actions[:, t]
        # Σ_{t'>t} KL(s_{t'}) over the states visited after step t, up to the horizon
        future_kl = kls[paths.states[:, t + 1 : HORIZON]].sum(axis=1)
        weight = paths.probabilities * future_kl
        # ∇_θ log π(a|s) = e_{s,a} − π(·|s) in row s
        np.add.at(total, (s_t, a_t), weight)
        np.add.at(total, s_t, -weight[:, None] * policy[s_t])
    return tau * total


def _estimators(theta, mdp, tau, log_prior, baseline):
    policy = np.asarray(jax.nn.softmax(theta))
    paths = enumerate_trajectories(mdp, policy, horizon=HORIZON)
    rewards = np.asarray(mdp.rewards)[paths.states[:, :-1], paths.actions]
    return _estimator_gradients(
        theta,
        paths.states,
        paths.actions,
        rewards,
        paths.probabilities,
        baseline,
        tau,
        log_prior,
    )


@st.composite
def finite_horizon_problems(draw):
    mdp = draw(sqst.tabular_mdps(discount=1.0))
    shape = (mdp.num_states, mdp.num_actions)
    return (
        mdp,
        draw(sqst.q_tables(shape)),
        draw(sqst.temperatures()),
        draw(sqst.log_priors(mdp.num_actions)),
        draw(sqst.q_tables((mdp.num_states,))),
    )


@given(problem=finite_horizon_problems())
def test_proper_estimator_equals_the_exact_finite_horizon_gradient(problem):
    mdp, theta, tau, log_prior, baseline = problem
    exact = np.asarray(_exact_gradient(theta, mdp, tau, log_prior))
    proper, naive = _estimators(theta, mdp, tau, log_prior, baseline)
    scale = magnitude(exact, proper, naive)
    assert_close(proper, exact, tolerance=1e-10, scale=scale, what="proper PG vs ∇η_H")

    def oracle_objective(t):
        return oracles.finite_horizon_objective(
            oracles.softmax(t), mdp, temperature=tau, horizon=HORIZON, log_prior=log_prior
        )

    numerical = oracles.finite_difference_gradient(oracle_objective, theta)
    assert_close(exact, numerical, tolerance=1e-7, scale=scale, what="∇η_H vs finite differences")
    # the naive estimator misses exactly the future-KL term.
    missing = _missing_future_kl_term(theta, mdp, tau, log_prior)
    assert_close(naive, exact + missing, tolerance=1e-10, scale=scale, what="naive − exact")


@st.composite
def action_dependent_kl_problems(draw):
    """Instances where the next state follows the action and KL differs between states.

    S = A; action a moves to state a with probability ≥ 0.5; the policy is
    near-uniform in state 0 and peaked (logit gap ≥ 2) elsewhere; μ(0) ≥ 0.5
    and π̄ is uniform. Choosing the action then changes the future KL, which
    the naive estimator ignores.
    """
    size = draw(st.sampled_from(sqst.STATE_MENU))
    mdp = draw(
        sqst.tabular_mdps(
            min_states=size, max_states=size, min_actions=size, max_actions=size, discount=1.0
        )
    )
    steer = draw(st.floats(0.5, 0.9))
    transitions = (1.0 - steer) * np.asarray(mdp.transitions) + steer * np.eye(size)[None]
    start = draw(st.floats(0.5, 1.0))
    initial = (1.0 - start) * np.asarray(mdp.initial_distribution) + start * np.eye(size)[0]
    noise = draw(sqst.float_arrays((size, size), min_value=-0.1, max_value=0.1))
    gaps = draw(sqst.float_arrays((size,), min_value=2.0, max_value=4.0))
    theta = noise.copy()
    theta[1:, 0] += gaps[1:]
    return (
        mdp.replace(transitions=transitions, initial_distribution=initial),
        theta,
        draw(sqst.temperatures(min_value=0.1)),
        np.full(size, -np.log(size)),
        draw(sqst.q_tables((size,))),
    )


@given(problem=action_dependent_kl_problems())
def test_naive_estimator_is_not_the_gradient_when_future_kl_depends_on_the_action(problem):
    mdp, theta, tau, log_prior, baseline = problem
    exact = np.asarray(_exact_gradient(theta, mdp, tau, log_prior))
    proper, naive = _estimators(theta, mdp, tau, log_prior, baseline)
    scale = magnitude(exact, proper, naive)
    assert_close(proper, exact, tolerance=1e-10, scale=scale, what="proper PG vs ∇η_H")
    # The miss is at least 1e-4·τ here (over 1000 random instances the smallest
    # was 5.4e-3·τ): ~1e6 times the tolerance that the proper estimator meets.
    assert np.max(np.abs(np.asarray(naive) - exact)) >= 1e-4 * tau


@fast_jit
def _discounted_gradient_at_optimum(mdp, tau, log_prior):
    q_star = soft_value_iteration(mdp, temperature=tau, log_prior=log_prior, tolerance=1e-10)
    theta_star = q_star / tau + log_prior  # logits of π* = π^B_{Q*}
    v, q = evaluate_policy(jax.nn.softmax(theta_star), mdp, temperature=tau, log_prior=log_prior)
    num_actions = q.shape[-1]

    def state_gradient(logits, q_s, v_s):
        def expected_loss(x):
            pi = jax.lax.stop_gradient(jax.nn.softmax(x))
            losses = jax.vmap(
                lambda a: regularised_policy_gradient_loss(
                    x[None], a[None], (q_s[a] - v_s)[None], temperature=tau, log_prior=log_prior
                )
            )(jnp.arange(num_actions))
            return jnp.sum(pi * losses)

        return -jax.grad(expected_loss)(logits)

    per_state = jax.vmap(state_gradient)(theta_star, q, v)
    total = jax.grad(
        lambda t: jnp.dot(
            mdp.initial_distribution,
            evaluate_policy(jax.nn.softmax(t), mdp, temperature=tau, log_prior=log_prior)[0],
        )
    )(theta_star)
    return per_state, total, q


@given(
    mdp=sqst.tabular_mdps(discount=sqst.discounts(max_value=0.9)),
    tau=sqst.temperatures(),
    data=st.data(),
)
def test_proper_discounted_gradient_vanishes_at_the_soft_optimal_policy(mdp, tau, data):
    log_prior = data.draw(sqst.log_priors(mdp.num_actions))
    per_state, total, q = _discounted_gradient_at_optimum(mdp, tau, log_prior)
    scale = magnitude(q)
    assert_close(per_state, np.zeros(per_state.shape), tolerance=1e-7, scale=scale)
    assert_close(total, np.zeros(total.shape), tolerance=1e-7, scale=scale)
