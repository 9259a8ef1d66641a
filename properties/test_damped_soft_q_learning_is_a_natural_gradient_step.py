"""[E17], [E18] Damped soft Q-learning is an entropy-regularised natural-gradient step of size ε/τ.

Policy π_θ(·|s) = softmax(Φ(s)θ) with features Φ `[S, A, F]`; soft
Q-function Q_θ(s, a) = V(s) + τ(log π_θ(a|s) − log π̄(a)) with V held fixed;
one sample per state-action pair, arbitrary targets y. With b from
`regularised_npg_advantages` (Δ = y − τKL − V) and Q̂^ε from
`damped_soft_q_targets`:

- for every θ: Σ ½(Q_θ − Q̂^ε)² = τ² Σ ½(log π_θ − log π_old − (ε/τ) b)²;
- the Gauss–Newton step of that regression at θ_old, computed from
  `jax.jacobian` of Q_θ, equals (ε/τ)·`natural_gradient_direction`(Ψ, b),
  Ψ the rows ∇_θ log π_θ(a|s);
- `natural_gradient_direction` is F̂⁻¹ĝ (and (F̂ + λI)⁻¹ĝ with damping),
  checked against a NumPy solve of the normal equations.

Features are Φ(s, a) = (a/A)·(1, s) plus noise in [−0.1, 0.1], so the score
rows span the parameter space with a modest condition number κ(Ψ).
Tolerances: the squared errors are sums of ≤ 9 squares of magnitude
M ≲ 1e3: 1e-12·M². Least-squares solutions carry a relative error of about
κ²·eps: 1e-12·κ²·(1 + |w|). By construction κ stays small (at most 7.3 over
1000 random instances); the test asserts κ ≤ 100 so the tolerance stays tight.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from softeq.core import (
    damped_soft_q_targets,
    natural_gradient_direction,
    regularised_npg_advantages,
)
from softeq.properties import strategies as sqst
from softeq.properties._testing import fast_jit

NUM_FEATURES = 2


@st.composite
def damped_problems(draw):
    num_states = draw(st.sampled_from(sqst.STATE_MENU))
    num_actions = draw(st.sampled_from(sqst.ACTION_MENU))
    s, a = np.meshgrid(np.arange(num_states), np.arange(num_actions), indexing="ij")
    base = (a / num_actions)[..., None] * np.stack([np.ones_like(s), s], axis=-1)
    noise = draw(
        sqst.float_arrays((num_states, num_actions, NUM_FEATURES), min_value=-0.1, max_value=0.1)
    )
    return dict(
        features=base + noise,
        theta_old=draw(sqst.float_arrays((NUM_FEATURES,), min_value=-2.0, max_value=2.0)),
        theta=draw(sqst.float_arrays((NUM_FEATURES,), min_value=-4.0, max_value=4.0)),
        values=draw(sqst.q_tables((num_states,))),
        targets=draw(sqst.q_tables((num_states * num_actions,), scale=5.0)),
        log_prior=draw(sqst.log_priors(num_actions)),
        tau=draw(sqst.temperatures()),
        epsilon=draw(st.floats(0.01, 1.0)),
    )


def _log_pi_taken(theta, features):
    """`[S·A]` log π_θ(a|s) for every pair, row-major in (s, a)."""
    return jax.nn.log_softmax(features @ theta).reshape(-1)


@fast_jit
def _natural_gradient_pieces(features, theta_old, theta, values, targets, log_prior, tau, epsilon):
    num_states, num_actions, _ = features.shape
    state_of = jnp.repeat(jnp.arange(num_states), num_actions)
    prior_taken = jnp.tile(log_prior, num_states)

    def q_taken(t):
        return values[state_of] + tau * (_log_pi_taken(t, features) - prior_taken)

    log_pi_old = jax.nn.log_softmax(features @ theta_old)  # [S, A]
    kl_old = jnp.sum(jnp.exp(log_pi_old) * (log_pi_old - log_prior), axis=-1)[state_of]
    advantages = targets - tau * kl_old - values[state_of]
    log_pi_old_taken = log_pi_old.reshape(-1)
    b = regularised_npg_advantages(
        advantages, log_pi_old_taken, prior_taken, kl_old, temperature=tau
    )
    q_old = q_taken(theta_old)
    damped = damped_soft_q_targets(q_old, targets, epsilon=epsilon)

    squared_q = 0.5 * jnp.sum(jnp.square(q_taken(theta) - damped))
    log_ratio = _log_pi_taken(theta, features) - log_pi_old_taken
    squared_log = tau**2 * 0.5 * jnp.sum(jnp.square(log_ratio - (epsilon / tau) * b))

    jacobian = jax.jacobian(q_taken)(theta_old)  # [N, F]
    gauss_newton, *_ = jnp.linalg.lstsq(jacobian, damped - q_old)
    scores = jax.jacobian(_log_pi_taken)(theta_old, features)  # Ψ, [N, F]
    npg = natural_gradient_direction(scores, b)
    return squared_q, squared_log, gauss_newton, npg, scores, b, damped, q_old


@given(problem=damped_problems())
def test_damped_soft_q_regression_is_tau_squared_times_the_npg_regression(problem):
    squared_q, squared_log, *_ = _natural_gradient_pieces(**problem)
    magnitude = 1.0 + problem["tau"] * 20.0 + np.max(np.abs(problem["targets"]))
    np.testing.assert_allclose(
        float(squared_q), float(squared_log), rtol=0, atol=1e-12 * magnitude**2 * 9
    )


@given(problem=damped_problems())
def test_gauss_newton_step_is_epsilon_over_tau_times_the_natural_gradient(problem):
    _, _, gauss_newton, npg, scores, b, damped, q_old = _natural_gradient_pieces(**problem)
    scores, b = np.asarray(scores), np.asarray(b)
    kappa = np.linalg.cond(scores)
    assert kappa <= 100.0, f"score rows are ill-conditioned (κ = {kappa:.3g}) by construction"
    step = problem["epsilon"] / problem["tau"] * np.asarray(npg)
    atol = 1e-12 * kappa**2 * (1.0 + np.max(np.abs(step)))
    np.testing.assert_allclose(np.asarray(gauss_newton), step, rtol=0, atol=atol)
    # [E17]: the least-squares direction is F̂⁻¹ĝ (normal equations, NumPy).
    fisher, grad = scores.T @ scores / len(b), scores.T @ b / len(b)
    np.testing.assert_allclose(np.asarray(npg), np.linalg.solve(fisher, grad), rtol=0, atol=atol)
    # the damped targets move Q_old an ε fraction of the way to y.
    expected_damped = (1 - problem["epsilon"]) * np.asarray(q_old) + problem["epsilon"] * problem[
        "targets"
    ]
    np.testing.assert_allclose(np.asarray(damped), expected_damped, rtol=0, atol=1e-12 * 10)


@fast_jit
def _damped_direction(scores, advantages, damping):
    return natural_gradient_direction(scores, advantages, damping=damping)


@given(problem=damped_problems(), damping=st.floats(1e-3, 10.0))
def test_damped_natural_gradient_solves_the_regularised_normal_equations(problem, damping):
    *_, scores, b, _, _ = _natural_gradient_pieces(**problem)
    scores, b = np.asarray(scores), np.asarray(b)
    direction = np.asarray(_damped_direction(scores, b, damping))
    fisher, grad = scores.T @ scores / len(b), scores.T @ b / len(b)
    expected = np.linalg.solve(fisher + damping * np.eye(NUM_FEATURES), grad)
    kappa = np.linalg.cond(fisher + damping * np.eye(NUM_FEATURES))
    np.testing.assert_allclose(
        direction, expected, rtol=0, atol=1e-13 * kappa * (1 + np.max(np.abs(expected)))
    )
