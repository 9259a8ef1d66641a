"""[E8] Bandit equivalence: E[∇q_θ(a)(q_θ(a) − r)] = −τ·(policy gradient) + ∇ value fit.

One step, discount 0: the soft Q-learning target is the reward itself. With
q_θ = Φθ (features Φ `[A, F]`), π_θ = π^B_{q_θ}, v_θ = v_{q_θ} and a reward
whose law given the action is arbitrary (here two outcomes per action with
drawn probabilities), in exact expectation over a ∼ π_θ and r | a:

    E[∇q_θ(a)(q_θ(a) − r)] = −τ(E[∇log π_θ(a) r] − τ∇KL[π_θ‖π̄]) + ∇E[½(v_θ − (r − τKL))²].

The left side is the gradient of softeq's `soft_q_learning_loss` (T = 1,
discount 0), the right side that of `regularised_policy_gradient_loss` with
`soft_n_step_advantages` and of `value_loss`; each is also compared with a
closed-form NumPy oracle (∇q(a) = Φ_a, ∇v = E_π Φ, ∇log π(a) = (Φ_a − ∇v)/τ).

Tolerance: per-action terms are products of |Φ| ≤ 1 with |q − r| ≲ 10 and
1/τ ≤ 20, so gradients are ≲ 1e3 at worst; 1e-11 × (1 + that scale) is
~100× the float64 round-off of these few-term sums.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from softeq.core import (
    boltzmann_kl,
    regularised_policy_gradient_loss,
    soft_n_step_advantages,
    soft_q_learning_loss,
    soft_value,
    value_loss,
)
from softeq.properties import oracles
from softeq.properties import strategies as sqst
from softeq.properties._testing import assert_close, fast_jit, magnitude

NUM_FEATURES = 3  # one feature size, so the exact expectation compiles once per |A|


@st.composite
def bandit_problems(draw):
    num_actions = draw(st.sampled_from(sqst.ACTION_MENU))
    features = draw(sqst.float_arrays((num_actions, NUM_FEATURES), min_value=-1.0, max_value=1.0))
    theta = draw(sqst.float_arrays((NUM_FEATURES,), min_value=-3.0, max_value=3.0))
    outcomes = draw(sqst.float_arrays((num_actions, 2), min_value=-3.0, max_value=3.0))
    first = draw(sqst.float_arrays((num_actions,), min_value=0.0, max_value=1.0))
    outcome_probabilities = np.stack([first, 1.0 - first], axis=-1)
    return (
        features,
        theta,
        outcomes,
        outcome_probabilities,
        draw(sqst.temperatures()),
        draw(sqst.log_priors(num_actions)),
    )


@fast_jit
def _expected_bandit_gradients(theta, features, outcomes, outcome_probabilities, tau, log_prior):
    """Exact expectations over a ∼ π_θ and the reward outcome of the three gradients."""
    num_actions = features.shape[0]
    q = features @ theta
    pi = jnp.exp(jax.nn.log_softmax(q / tau + log_prior))
    v_held = soft_value(q, temperature=tau, log_prior=log_prior)
    kl_held = boltzmann_kl(q, temperature=tau, log_prior=log_prior)
    zero = jnp.zeros(1)

    def per_sample(t, a, r):
        q_t = (features @ t)[None]
        action, reward = jnp.array([a]), jnp.array([r])
        soft_q = soft_q_learning_loss(
            q_t, action, reward, zero, q_t, temperature=tau, n=1, log_prior=log_prior
        )
        advantage = soft_n_step_advantages(
            reward, zero, v_held[None], zero, kl_held[None], zero, temperature=tau, n=1
        )
        logits = q_t / tau + log_prior
        pg = regularised_policy_gradient_loss(
            logits, action, advantage, temperature=tau, log_prior=log_prior
        )
        v_t = soft_value(q_t[0], temperature=tau, log_prior=log_prior)[None]
        value = value_loss(v_t, reward - tau * kl_held)
        return jnp.stack([soft_q, pg, value])

    def expected(t):
        total = jnp.zeros(3)
        for a in range(num_actions):
            for k in range(outcomes.shape[1]):
                weight = jax.lax.stop_gradient(pi[a] * outcome_probabilities[a, k])
                total = total + weight * per_sample(t, a, outcomes[a, k])
        return total

    grads = jax.jacobian(expected)(theta)  # [3, F]
    return grads[0], -grads[1], grads[2]


def _oracle(theta, features, outcomes, outcome_probabilities, tau, log_prior):
    q = features @ theta
    pi = oracles.boltzmann_policy(q, temperature=tau, log_prior=log_prior)
    v = oracles.soft_value(q, temperature=tau, log_prior=log_prior)
    kl = oracles.kl_divergence(pi, log_prior)
    grad_v = pi @ features
    score = (features - grad_v) / tau
    grad_kl = pi @ (score * (np.log(pi) - log_prior)[:, None])
    mean_r = np.sum(outcome_probabilities * outcomes, axis=1)
    soft_q = pi @ (features * (q - mean_r)[:, None])
    policy_gradient = pi @ (score * mean_r[:, None]) - tau * grad_kl
    value = (v - (pi @ mean_r - tau * kl)) * grad_v
    return soft_q, policy_gradient, value


@given(problem=bandit_problems())
def test_bandit_soft_q_gradient_equals_policy_gradient_plus_value_gradient(problem):
    features, theta, outcomes, outcome_probabilities, tau, log_prior = problem
    args = (theta, features, outcomes, outcome_probabilities, tau, log_prior)
    soft_q, policy_gradient, value = _expected_bandit_gradients(*args)
    oracle_q, oracle_pg, oracle_v = _oracle(*args)
    scale = magnitude(oracle_q, tau * oracle_pg, oracle_v, oracle_pg)
    assert_close(soft_q, -tau * np.asarray(policy_gradient) + value, tolerance=1e-11, scale=scale)
    assert_close(soft_q, oracle_q, tolerance=1e-11, scale=scale, what="soft-Q gradient")
    assert_close(policy_gradient, oracle_pg, tolerance=1e-11, scale=scale, what="PG")
    assert_close(value, oracle_v, tolerance=1e-11, scale=scale, what="value gradient")
