"""Examples for softeq.core.natural: damped soft-Q targets and the natural gradient [E17]-[E18]."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from softeq.core import (
    damped_soft_q_targets,
    natural_gradient_direction,
    regularised_npg_advantages,
)

# Hand values are short rational numbers or a few logs; float64 results lie a
# few ulps (eps 2.2e-16) from them, so 1e-12 is ample but strict.
TIGHT = {"rtol": 1e-12, "atol": 1e-12}
KL_QUARTER = 0.25 * math.log(0.5) + 0.75 * math.log(1.5)


def close(actual, expected, **tol):
    actual = np.asarray(actual)
    assert actual.dtype == np.float64, actual.dtype
    np.testing.assert_allclose(actual, expected, **(tol or TIGHT))


# --- damped_soft_q_targets [E18] ---------------------------------------------------------


@pytest.mark.parametrize(
    ("epsilon", "expected"),
    [
        (0.25, [0.75 * 0.0 + 0.25 * 4.0, 0.75 * 2.0 + 0.25 * -2.0]),  # (1, 1)
        (1.0, [4.0, -2.0]),  # epsilon = 1: the undamped targets
        (1e-3, [1e-3 * 4.0, 0.999 * 2.0 - 1e-3 * 2.0]),
    ],
)
def test_damped_targets_by_hand(epsilon, expected):
    out = damped_soft_q_targets(jnp.array([0.0, 2.0]), jnp.array([4.0, -2.0]), epsilon=epsilon)
    close(out, expected)


def test_damped_targets_carry_no_gradient():
    def total(q_old, y):
        return jnp.sum(damped_soft_q_targets(q_old, y, epsilon=0.5))

    g_old, g_y = jax.grad(total, argnums=(0, 1))(jnp.array([0.0, 2.0]), jnp.array([4.0, -2.0]))
    close(g_old, [0.0, 0.0])
    close(g_y, [0.0, 0.0])


# --- regularised_npg_advantages [E17] --------------------------------------------------------


def test_regularised_npg_advantages_by_hand():
    # state 0: pi_old = (1/2, 1/2) = pi_bar, KL 0; state 1: pi_old = (1/4, 3/4), action 0
    b = regularised_npg_advantages(
        jnp.array([1.0, 2.0]),
        jnp.log(jnp.array([0.5, 0.25])),
        jnp.log(jnp.array([0.5, 0.5])),
        jnp.array([0.0, KL_QUARTER]),
        temperature=0.1,
    )
    close(b, [1.0 - 0.1 * (0.0 - 0.0), 2.0 - 0.1 * (math.log(0.5) - KL_QUARTER)])


def test_regularised_npg_advantages_at_temperature_zero_are_the_advantages():
    adv = jnp.array([0.3, -1.2, 5.0])
    b = regularised_npg_advantages(
        adv, jnp.zeros(3) - 1.0, jnp.zeros(3), jnp.ones(3), temperature=0.0
    )
    close(b, adv)


# --- natural_gradient_direction [E17] ----------------------------------------------------------

# Psi = [[1, 0], [0, 1], [1, 1]], b = (1, 2, 3): Psi^T Psi = [[2, 1], [1, 2]], Psi^T b = (4, 5).
PSI = [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]
B = [1.0, 2.0, 3.0]


def test_natural_gradient_without_damping_is_the_least_squares_solution():
    # [[2, 1], [1, 2]]^-1 (4, 5) = 1/3 [[2, -1], [-1, 2]] (4, 5) = (1, 2)
    close(natural_gradient_direction(jnp.array(PSI), jnp.array(B)), [1.0, 2.0])


def test_natural_gradient_with_damping_by_hand():
    # F = Psi^T Psi / 3 = [[2/3, 1/3], [1/3, 2/3]], g = (4/3, 5/3); with lambda = 1/3,
    # F + lambda I = [[1, 1/3], [1/3, 1]], det 8/9, so w = 9/8 (4/3 - 5/9, -4/9 + 5/3)
    # = (7/8, 11/8).
    out = natural_gradient_direction(jnp.array(PSI), jnp.array(B), damping=1.0 / 3.0)
    close(out, [7.0 / 8.0, 11.0 / 8.0])


@pytest.mark.parametrize("damping", [1e-3, 0.5, 10.0])
def test_natural_gradient_with_damping_matches_the_closed_form(damping):
    rng = np.random.default_rng(0)
    psi, b = rng.normal(size=(7, 3)), rng.normal(size=7)
    expected = np.linalg.solve(psi.T @ psi / 7 + damping * np.eye(3), psi.T @ b / 7)
    # two different 3x3 solves of a well-conditioned system: agreement to ~1e-14
    close(natural_gradient_direction(jnp.array(psi), jnp.array(b), damping=damping), expected)


def test_natural_gradient_of_a_rank_deficient_fisher():
    psi, b = jnp.array([[1.0, 1.0], [1.0, 1.0]]), jnp.array([2.0, 2.0])
    # w1 + w2 = 2 has many solutions; damping 0 gives the minimum-norm one, (1, 1).
    # The SVD-based least squares is accurate to a few ulps times the condition
    # number of the non-zero part (here 1), so 1e-12 still applies.
    close(natural_gradient_direction(psi, b), [1.0, 1.0])
    # damping 1: F + I = [[2, 1], [1, 2]], g = (2, 2), so w = (2/3, 2/3)
    close(natural_gradient_direction(psi, b, damping=1.0), [2.0 / 3.0, 2.0 / 3.0])


# --- [E18]: damped soft Q-learning is a natural gradient step ------------------------------------


def test_damped_soft_q_regression_is_the_regularised_npg_regression():
    # Tabular softmax over 2 states x 3 actions, pi_bar uniform, V held fixed.
    tau, epsilon = 0.3, 0.2
    states, actions = jnp.array([0, 0, 1, 1]), jnp.array([0, 2, 1, 2])
    v = jnp.array([1.5, -0.5])
    deltas = jnp.array([0.5, -1.0, 2.0, 0.3])
    theta_old = jnp.array([[0.2, -0.1, 0.4], [1.0, 0.0, -1.0]])
    log_prior = jnp.full(3, -math.log(3.0))

    def log_pi_taken(theta):
        return jax.nn.log_softmax(theta)[states, actions]

    def q_taken(theta):  # Q = V + tau log(pi / pi_bar)
        return v[states] + tau * (log_pi_taken(theta) - log_prior[actions])

    pi_old = jax.nn.softmax(theta_old)
    kl_old = jnp.sum(pi_old * (jnp.log(pi_old) - log_prior), axis=-1)[states]
    # soft targets from the pathwise rewrite [E13]: y = Delta + tau KL + V
    y = deltas + tau * kl_old + v[states]
    b = regularised_npg_advantages(
        deltas, log_pi_taken(theta_old), log_prior[actions], kl_old, temperature=tau
    )
    q_hat = damped_soft_q_targets(q_taken(theta_old), y, epsilon=epsilon)

    # the damped target moves Q_old by exactly epsilon b
    close(q_hat - q_taken(theta_old), epsilon * b)

    # the two squared errors agree for any theta (here three arbitrary points);
    # they are sums of 4 squares of order 1, so rounding stays below 1e-14
    for seed in range(3):
        theta = theta_old + jax.random.normal(jax.random.PRNGKey(seed), theta_old.shape)
        soft_q = jnp.sum(0.5 * (q_taken(theta) - q_hat) ** 2)
        npg = tau**2 * jnp.sum(
            0.5 * (log_pi_taken(theta) - log_pi_taken(theta_old) - (epsilon / tau) * b) ** 2
        )
        close(soft_q, npg)

    # The Gauss-Newton step of the soft-Q regression at theta_old is the
    # minimum-norm solution of J step = -(Q_old - Q_hat) with J = tau Psi, i.e.
    # (epsilon / tau) times the natural gradient direction of (Psi, b).
    psi = jax.jacobian(log_pi_taken)(theta_old).reshape(4, 6)
    jac = jax.jacobian(q_taken)(theta_old).reshape(4, 6)
    gn_step, *_ = jnp.linalg.lstsq(jac, q_hat - q_taken(theta_old))
    w = natural_gradient_direction(psi, b)
    # both are SVD least-squares solves of a 4x6 full-row-rank system whose
    # singular values lie within a factor of 3 (0.43 to 1.19): ~1e-14 agreement here;
    # 1e-10 leaves room for another LAPACK's ordering of the same float64 operations
    close(gn_step, (epsilon / tau) * w, rtol=1e-10, atol=1e-12)
