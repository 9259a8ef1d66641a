"""Hand-computed examples for softeq.core.dqn: hard, soft-KL and soft-entropy DQN targets."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from softeq.core import DQN_TARGET_MODES, dqn_bootstrap_value, soft_dqn_targets

# Closed forms of a few logs/exps: float64 results are within a few ulps
# (eps 2.2e-16) of them, so 1e-12 is generous yet catches any wrong term.
TIGHT = {"rtol": 1e-12, "atol": 1e-12}
LOG2, LOG3 = math.log(2.0), math.log(3.0)


def close(actual, expected, **tol):
    actual = np.asarray(actual)
    assert actual.dtype == np.float64, actual.dtype
    np.testing.assert_allclose(actual, expected, **(tol or TIGHT))


def test_modes_are_the_three_of_the_paper():
    assert DQN_TARGET_MODES == ("hard", "soft-kl", "soft-entropy")


@pytest.mark.parametrize(
    ("q", "temperature", "expected"),
    [
        ([0.0, 0.0], 1.0, {"hard": 0.0, "soft-kl": 0.0, "soft-entropy": LOG2}),
        (
            [1.0, 2.0, 3.0],
            0.5,
            {
                "hard": 3.0,
                "soft-kl": 0.5 * math.log((math.e**2 + math.e**4 + math.e**6) / 3.0),
                "soft-entropy": 0.5 * math.log(math.e**2 + math.e**4 + math.e**6),
            },
        ),
        # tau -> 0: e^{-1/tau} = e^{-1000} is exactly 0 in float64, so
        # soft-kl = 1 + tau log(1/2) and soft-entropy = 1 + tau log 1 = 1
        ([0.0, 1.0], 1e-3, {"hard": 1.0, "soft-kl": 1.0 - 1e-3 * LOG2, "soft-entropy": 1.0}),
    ],
)
def test_dqn_bootstrap_value_by_hand(q, temperature, expected):
    for mode, value in expected.items():
        close(dqn_bootstrap_value(jnp.array(q), mode=mode, temperature=temperature), value)


def test_hard_mode_needs_no_temperature():
    close(dqn_bootstrap_value(jnp.array([0.5, -1.0]), mode="hard"), 0.5)
    close(soft_dqn_targets(jnp.ones(1), jnp.ones(1), jnp.zeros((1, 3)), mode="hard"), [1.0])


# Next-state rows: pi^B of row 0 at tau = 1 is (1/5, 3/5, 1/5); row 1 is constant 7.
Q_T = [[0.0, LOG3, 0.0], [7.0, 7.0, 7.0]]


def test_one_step_targets_in_every_mode_by_hand():
    r_t, discount_t, q_t = jnp.array([1.0, 0.5]), jnp.array([0.9, 0.0]), jnp.array(Q_T)
    expected = {
        "hard": [1.0 + 0.9 * LOG3, 0.5],
        "soft-kl": [1.0 + 0.9 * math.log((1.0 + 3.0 + 1.0) / 3.0), 0.5],
        "soft-entropy": [1.0 + 0.9 * math.log(1.0 + 3.0 + 1.0), 0.5],
    }
    for mode, y in expected.items():
        close(soft_dqn_targets(r_t, discount_t, q_t, mode=mode, temperature=1.0), y)


@pytest.mark.parametrize("temperature", [0.1, 1.0, 3.0])
def test_soft_modes_differ_by_gamma_tau_log_a_per_step(temperature):
    r_t, discount_t, q_t = jnp.array([1.0, 0.5]), jnp.array([0.9, 0.8]), jnp.array(Q_T)

    def targets(mode, n):
        return soft_dqn_targets(r_t, discount_t, q_t, mode=mode, temperature=temperature, n=n)

    step = temperature * LOG3  # tau log |A| with |A| = 3
    # one step: the bootstrap values differ by tau log|A|, times gamma
    close(targets("soft-entropy", 1) - targets("soft-kl", 1), [0.9 * step, 0.8 * step])
    # two steps: the intermediate -tau KL terms differ by the same constant
    # (KL to pi_bar = 1 is KL to uniform minus log|A|), so each discounted step adds it
    close(
        targets("soft-entropy", 2) - targets("soft-kl", 2),
        [(0.9 + 0.9 * 0.8) * step, 0.8 * step],
    )


def test_two_step_targets_by_hand():
    r_t, discount_t, q_t = jnp.array([1.0, 0.5]), jnp.array([0.9, 0.8]), jnp.array(Q_T)
    hard = soft_dqn_targets(r_t, discount_t, q_t, mode="hard", n=2)
    close(hard, [1.0 + 0.9 * 0.5 + 0.9 * 0.8 * 7.0, 0.5 + 0.8 * 7.0])
    # soft-kl at tau = 1: KL((1/5, 3/5, 1/5) || uniform) at s1, V = 7 at s2
    kl_s1 = 0.4 * math.log(3.0 / 5.0) + 0.6 * math.log(9.0 / 5.0)
    soft = soft_dqn_targets(r_t, discount_t, q_t, mode="soft-kl", temperature=1.0, n=2)
    close(soft, [1.0 + 0.9 * (0.5 - kl_s1) + 0.9 * 0.8 * 7.0, 0.5 + 0.8 * 7.0])


@pytest.mark.parametrize("mode", DQN_TARGET_MODES)
def test_targets_carry_no_gradient(mode):
    r_t, discount_t = jnp.array([1.0, 0.5]), jnp.array([0.9, 0.8])

    def total(q_t):
        return jnp.sum(soft_dqn_targets(r_t, discount_t, q_t, mode=mode, temperature=0.5, n=2))

    close(jax.grad(total)(jnp.array(Q_T)), np.zeros((2, 3)))
