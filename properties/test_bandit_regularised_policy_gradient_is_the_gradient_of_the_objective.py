"""[E7] In a bandit, ∇_θ η(π_θ) = E_{a∼π_θ}[∇_θ log π_θ(a) r̄(a)] − τ ∇_θ KL[π_θ‖π̄].

One state, a softmax policy π_θ = softmax(Φθ) with features Φ `[A, F]`, mean
rewards r̄ `[A]`, any reference π̄ (uniform, π̄ ≡ 1, normalised or not), and
the regularised objective η(π) = E_π r̄ − τ KL[π‖π̄] of [E1]. Three
computations of the gradient must agree:

- the estimator: the exact expectation over a ∼ π_θ of −∇_θ of softeq's
  `regularised_policy_gradient_loss` (T = 1, advantage r̄(a), held fixed);
- `jax.grad` of softeq's exact `regularised_objective` on the one-state MDP
  with γ = 0;
- central finite differences of the NumPy oracle η (float64).

Tolerances: the first two are sums of a few order-one products (|Φ| ≤ 1,
|r̄| ≤ 3, τ ≤ 5, |log π̄| ≤ 2 plus log A), so they agree to 1e-12 × (1 + scale),
about 100× float64 round-off. Finite differences with step 1e-5 carry an
O(step²)·|η'''| ≈ 1e-9 truncation error for these scales: 1e-7 × (1 + scale).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from softeq.core import TabularMDP, regularised_objective, regularised_policy_gradient_loss
from softeq.properties import oracles
from softeq.properties import strategies as sqst
from softeq.properties._testing import assert_close, fast_jit, magnitude

NUM_FEATURES = 3  # one feature size, so each action count compiles once


@st.composite
def bandits(draw):
    """(Φ [A, F], θ [F], r̄ [A], τ, log π̄ [A]) for A in {2, 3, 4}."""
    num_actions = draw(st.sampled_from((2, 3, 4)))
    features = draw(sqst.float_arrays((num_actions, NUM_FEATURES), min_value=-1.0, max_value=1.0))
    theta = draw(sqst.float_arrays((NUM_FEATURES,), min_value=-2.0, max_value=2.0))
    rewards = draw(sqst.float_arrays((num_actions,), min_value=-3.0, max_value=3.0))
    return features, theta, rewards, draw(sqst.temperatures()), draw(sqst.log_priors(num_actions))


@fast_jit
def _estimator_and_exact_gradient(features, theta, rewards, temperature, log_prior):
    num_actions = rewards.shape[0]

    def loss_for_action(t, action):
        logits = (features @ t)[None]  # [1, A]
        return regularised_policy_gradient_loss(
            logits,
            action[None],
            rewards[action][None],
            temperature=temperature,
            log_prior=log_prior,
        )

    probabilities = jax.nn.softmax(features @ theta)
    per_action = jax.vmap(jax.grad(loss_for_action), in_axes=(None, 0))(
        theta, jnp.arange(num_actions)
    )  # [A, F]
    estimator = -probabilities @ per_action

    mdp = TabularMDP(
        transitions=jnp.ones((1, num_actions, 1), rewards.dtype),
        rewards=rewards[None],
        discount=jnp.zeros((), rewards.dtype),
        initial_distribution=jnp.ones(1, rewards.dtype),
    )

    def objective(t):
        policy = jax.nn.softmax(features @ t)[None]  # [1, A]
        return regularised_objective(policy, mdp, temperature=temperature, log_prior=log_prior)

    return estimator, jax.grad(objective)(theta)


@given(bandit=bandits())
def test_regularised_policy_gradient_is_the_gradient_of_the_bandit_objective(bandit):
    features, theta, rewards, temperature, log_prior = bandit
    estimator, exact = _estimator_and_exact_gradient(
        features, theta, rewards, temperature, log_prior
    )

    def oracle_objective(t: np.ndarray) -> float:
        policy = oracles.softmax(features @ t)
        return float(policy @ rewards - temperature * oracles.kl_divergence(policy, log_prior))

    finite_differences = oracles.finite_difference_gradient(oracle_objective, theta)
    scale = magnitude(rewards, temperature * log_prior, temperature * np.log(len(rewards)))
    assert_close(estimator, exact, tolerance=1e-12, scale=scale, what="E[score·r̄] − τ∇KL vs ∇η")
    assert_close(exact, finite_differences, tolerance=1e-7, scale=scale, what="∇η vs oracle")
