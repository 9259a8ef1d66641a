"""Hand-computed examples for softeq.core.returns: soft TD errors, n-step targets, advantages.

The running trajectory visits s0 … s4 with an episode end after the second
transition (discount_t[1] = 0, so s2 is terminal and s2 starts a new episode):

    i            0     1     2     3
    r_t          1     2     3     4
    discount_t   0.9   0     0.9   0.9
    V(s_i)       1     2     3     4     (V(s4) = 5)
    KL(s_i)      0.1   0.2   0.3   0.4   (KL(s4) = 0.5)

with temperature τ = 1/2.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import rlax

from softeq.core import (
    soft_lambda_advantages,
    soft_lambda_returns,
    soft_n_step_advantages,
    soft_n_step_targets,
    soft_td_errors,
)

# Sums of a few products of short decimals: float64 results are within a few
# ulps (eps 2.2e-16) of the exact values, so 1e-12 is ample but still strict.
TIGHT = {"rtol": 1e-12, "atol": 1e-12}
TAU = 0.5


def close(actual, expected, **tol):
    actual = np.asarray(actual)
    assert actual.dtype == np.float64, actual.dtype
    np.testing.assert_allclose(actual, expected, **(tol or TIGHT))


def trajectory():
    r_t = jnp.array([1.0, 2.0, 3.0, 4.0])
    discount_t = jnp.array([0.9, 0.0, 0.9, 0.9])
    values = jnp.array([1.0, 2.0, 3.0, 4.0, 5.0])
    kls = jnp.array([0.1, 0.2, 0.3, 0.4, 0.5])
    return {
        "r_t": r_t,
        "discount_t": discount_t,
        "v_tm1": values[:-1],
        "v_t": values[1:],
        "kl_tm1": kls[:-1],
        "kl_t": kls[1:],
    }


# delta_i = r_i - tau KL(s_i) + gamma_i V(s_{i+1}) - V(s_i), written out per step
DELTAS = [
    1.0 - 0.5 * 0.1 + 0.9 * 2.0 - 1.0,  # 1.75
    2.0 - 0.5 * 0.2 + 0.0 * 3.0 - 2.0,  # -0.1
    3.0 - 0.5 * 0.3 + 0.9 * 4.0 - 3.0,  # 3.45
    4.0 - 0.5 * 0.4 + 0.9 * 5.0 - 4.0,  # 4.3
]

# n = 3 targets. The window of step 0 is cut by the terminal after step 1 (no KL
# of s2 and no bootstrap); steps 2 and 3 run out of trajectory and bootstrap
# from the last value V(s4), as rlax does.
TARGETS_N3 = [
    1.0 + 0.9 * (2.0 - 0.5 * 0.2),  # 2.71
    2.0,  # discount 0: just the reward
    3.0 + 0.9 * (4.0 - 0.5 * 0.4) + 0.9 * 0.9 * 5.0,  # 10.47
    4.0 + 0.9 * 5.0,  # 8.5
]


def test_soft_td_errors_by_hand():
    t = trajectory()
    out = soft_td_errors(
        t["r_t"], t["discount_t"], t["v_tm1"], t["v_t"], t["kl_tm1"], temperature=TAU
    )
    close(out, DELTAS)


def test_soft_td_errors_at_temperature_zero_are_ordinary_td_errors():
    t = trajectory()
    out = soft_td_errors(
        t["r_t"], t["discount_t"], t["v_tm1"], t["v_t"], t["kl_tm1"], temperature=0.0
    )
    close(out, np.asarray(t["r_t"] + t["discount_t"] * t["v_t"] - t["v_tm1"]))


def test_soft_n_step_targets_with_an_episode_end_inside_the_window():
    t = trajectory()
    out = soft_n_step_targets(t["r_t"], t["discount_t"], t["v_t"], t["kl_t"], temperature=TAU, n=3)
    close(out, TARGETS_N3)


def test_soft_n_step_targets_with_n_one_carry_no_kl():
    t = trajectory()
    out = soft_n_step_targets(t["r_t"], t["discount_t"], t["v_t"], t["kl_t"], temperature=TAU, n=1)
    close(out, [1.0 + 0.9 * 2.0, 2.0, 3.0 + 0.9 * 4.0, 4.0 + 0.9 * 5.0])


def test_soft_n_step_targets_with_n_two():
    t = trajectory()
    out = soft_n_step_targets(t["r_t"], t["discount_t"], t["v_t"], t["kl_t"], temperature=TAU, n=2)
    expected = [
        1.0 + 0.9 * (2.0 - 0.5 * 0.2) + 0.9 * 0.0 * 4.0,
        2.0 + 0.0 * (3.0 - 0.5 * 0.3),
        3.0 + 0.9 * (4.0 - 0.5 * 0.4) + 0.9 * 0.9 * 5.0,
        4.0 + 0.9 * 5.0,
    ]
    close(out, expected)


def test_soft_n_step_targets_with_n_longer_than_the_trajectory_equal_n_equal_t():
    t = trajectory()
    args = (t["r_t"], t["discount_t"], t["v_t"], t["kl_t"])
    long = soft_n_step_targets(*args, temperature=TAU, n=50)
    close(long, soft_n_step_targets(*args, temperature=TAU, n=4))
    close(long, TARGETS_N3)  # every window here is already cut by n = 3


@pytest.mark.parametrize("n", [1, 2, 3, 7])
def test_soft_n_step_targets_at_temperature_zero_are_rlax_returns_exactly(n):
    t = trajectory()
    ours = soft_n_step_targets(t["r_t"], t["discount_t"], t["v_t"], t["kl_t"], temperature=0.0, n=n)
    theirs = rlax.n_step_bootstrapped_returns(t["r_t"], t["discount_t"], t["v_t"], n)
    # 0 * KL is exactly 0, so the two computations are the same float operations
    np.testing.assert_array_equal(np.asarray(ours), np.asarray(theirs))


def test_soft_n_step_targets_gradients_follow_the_window_and_the_flag():
    t = trajectory()

    def first_target(kl_t, v_t, stop):
        return soft_n_step_targets(
            t["r_t"], t["discount_t"], v_t, kl_t, temperature=TAU, n=3, stop_target_gradients=stop
        )[0]

    # y_0 = r_0 + g_0 (r_1 - tau KL(s_1)) + g_0 g_1 (r_2 - tau KL(s_2)) + g_0 g_1 g_2 V(s_3)
    # with g_1 = 0: only KL(s_1) = kl_t[0] matters, with weight -tau g_0.
    d_kl, d_v = jax.grad(first_target, argnums=(0, 1))(t["kl_t"], t["v_t"], False)
    close(d_kl, [-TAU * 0.9, 0.0, 0.0, 0.0])
    close(d_v, [0.0, 0.0, 0.0, 0.0])
    d_kl, d_v = jax.grad(first_target, argnums=(0, 1))(t["kl_t"], t["v_t"], True)
    close(d_kl, np.zeros(4))
    close(d_v, np.zeros(4))

    # the third target bootstraps from V(s4) with weight g_2 g_3 = 0.81
    def third_target(v_t):
        return soft_n_step_targets(t["r_t"], t["discount_t"], v_t, t["kl_t"], temperature=TAU, n=3)[
            2
        ]

    close(jax.grad(third_target)(t["v_t"]), [0.0, 0.0, 0.0, 0.9 * 0.9])


def test_soft_n_step_targets_under_jit_match_eager():
    t = trajectory()
    jitted = jax.jit(functools.partial(soft_n_step_targets, temperature=TAU, n=3))
    close(jitted(t["r_t"], t["discount_t"], t["v_t"], t["kl_t"]), TARGETS_N3)


def test_soft_n_step_advantages_by_hand_and_as_discounted_sums_of_td_errors():
    t = trajectory()
    out = soft_n_step_advantages(
        t["r_t"],
        t["discount_t"],
        t["v_tm1"],
        t["v_t"],
        t["kl_tm1"],
        t["kl_t"],
        temperature=TAU,
        n=3,
    )
    # Delta_i = y_i - tau KL(s_i) - V(s_i)
    by_target = [
        TARGETS_N3[0] - 0.5 * 0.1 - 1.0,  # 1.66
        TARGETS_N3[1] - 0.5 * 0.2 - 2.0,  # -0.1
        TARGETS_N3[2] - 0.5 * 0.3 - 3.0,  # 7.32
        TARGETS_N3[3] - 0.5 * 0.4 - 4.0,  # 4.3
    ]
    close(out, by_target)
    # [E11]/[E13]: Delta_i = sum_d (prod of discounts) delta_{i+d}, cut by the terminal
    d = DELTAS
    by_td_errors = [
        d[0] + 0.9 * d[1] + 0.9 * 0.0 * d[2],
        d[1] + 0.0 * d[2] + 0.0 * 0.9 * d[3],
        d[2] + 0.9 * d[3],
        d[3],
    ]
    close(out, by_td_errors)


def test_soft_n_step_advantages_stop_gradients_by_default():
    t = trajectory()

    def total(v_tm1, stop):
        return jnp.sum(
            soft_n_step_advantages(
                t["r_t"],
                t["discount_t"],
                v_tm1,
                t["v_t"],
                t["kl_tm1"],
                t["kl_t"],
                temperature=TAU,
                n=3,
                stop_target_gradients=stop,
            )
        )

    close(jax.grad(total)(t["v_tm1"], True), np.zeros(4))
    close(jax.grad(total)(t["v_tm1"], False), -np.ones(4))


def test_n_may_be_a_numpy_integer():
    # n often comes out of a numpy array or a config parsed with numpy; np.int64(3)
    # is an integer >= 1 and should be accepted like 3.
    t = trajectory()
    out = soft_n_step_targets(
        t["r_t"], t["discount_t"], t["v_t"], t["kl_t"], temperature=TAU, n=np.int64(3)
    )
    close(out, TARGETS_N3)


# --- soft λ-returns [L1] --------------------------------------------------------------

# λ = 1/2, backwards: G_i = r_i + γ_i[(1 − λ)V(s_{i+1}) + λ(G_{i+1} − τ KL(s_{i+1}))],
# and the last step r + γ V(s4). Step 1 ends the episode (discount 0): G_1 = r_1.
LAMBDA_HALF = [
    1.0 + 0.9 * (0.5 * 2.0 + 0.5 * (2.0 - 0.5 * 0.2)),  # 2.755
    2.0,
    3.0 + 0.9 * (0.5 * 4.0 + 0.5 * (4.0 + 0.9 * 5.0 - 0.5 * 0.4)),  # 8.535
    4.0 + 0.9 * 5.0,  # 8.5
]


def _lambda_returns(lambda_, temperature=TAU):
    t = trajectory()
    return soft_lambda_returns(
        t["r_t"], t["discount_t"], t["v_t"], t["kl_t"], temperature=temperature, lambda_=lambda_
    )


def test_soft_lambda_returns_by_hand():
    close(_lambda_returns(0.5), LAMBDA_HALF)


def test_soft_lambda_returns_at_zero_and_one_are_the_one_step_and_longest_targets():
    t = trajectory()
    args = (t["r_t"], t["discount_t"], t["v_t"], t["kl_t"])
    close(_lambda_returns(0.0), soft_n_step_targets(*args, temperature=TAU, n=1))
    close(_lambda_returns(1.0), soft_n_step_targets(*args, temperature=TAU, n=4))


def test_soft_lambda_returns_mix_the_n_step_targets():
    # the mixture (1 − λ)Σ λ^{n−1} y^(n) with the tail on the longest target, at step 2
    # (two steps remain): (1 − λ) y^(1) + λ y^(2).
    t = trajectory()
    args = (t["r_t"], t["discount_t"], t["v_t"], t["kl_t"])
    y1 = soft_n_step_targets(*args, temperature=TAU, n=1)
    y2 = soft_n_step_targets(*args, temperature=TAU, n=2)
    close(_lambda_returns(0.3)[2], 0.7 * y1[2] + 0.3 * y2[2])


@pytest.mark.parametrize("lambda_", [0.0, 0.5, 0.95, 1.0])
def test_soft_lambda_returns_at_temperature_zero_are_rlax_lambda_returns(lambda_):
    t = trajectory()
    theirs = rlax.lambda_returns(t["r_t"], t["discount_t"], t["v_t"], lambda_)
    # the same recursion in the same float operations (0 · KL is exactly 0)
    np.testing.assert_array_equal(np.asarray(_lambda_returns(lambda_, 0.0)), np.asarray(theirs))


def test_soft_lambda_returns_take_a_lambda_per_step_like_rlax():
    t = trajectory()
    lambdas = jnp.array([0.2, 0.4, 0.6, 0.8])
    theirs = rlax.lambda_returns(t["r_t"], t["discount_t"], t["v_t"], lambdas)
    close(_lambda_returns(lambdas, 0.0), theirs)
    constant = _lambda_returns(jnp.full(4, 0.5))
    close(constant, LAMBDA_HALF)


def test_soft_lambda_returns_stop_gradients_only_when_asked():
    t = trajectory()

    def total(v_t, stop):
        return jnp.sum(
            soft_lambda_returns(
                t["r_t"],
                t["discount_t"],
                v_t,
                t["kl_t"],
                temperature=TAU,
                lambda_=0.5,
                stop_target_gradients=stop,
            )
        )

    close(jax.grad(total)(t["v_t"], True), np.zeros(4))
    # ∂ΣG/∂V(s4): G_3 = 4 + 0.9 V(s4) and G_2 = ... + 0.9·0.5·G_3, so 0.9 + 0.405
    close(jax.grad(total)(t["v_t"], False)[3], 0.9 + 0.9 * 0.5 * 0.9)


def test_soft_lambda_advantages_are_returns_minus_kl_and_value_and_soft_gae():
    t = trajectory()
    advantages = soft_lambda_advantages(
        t["r_t"],
        t["discount_t"],
        t["v_tm1"],
        t["v_t"],
        t["kl_tm1"],
        t["kl_t"],
        temperature=TAU,
        lambda_=0.5,
    )
    kls, values = np.asarray(t["kl_tm1"]), np.asarray(t["v_tm1"])
    close(advantages, np.asarray(LAMBDA_HALF) - TAU * kls - values)
    # soft GAE: Δ_i = δ_i + γ_i λ Δ_{i+1}, from the TD errors written out above
    gae = [0.0] * 4
    following = 0.0
    for i in reversed(range(4)):
        following = DELTAS[i] + [0.9, 0.0, 0.9, 0.9][i] * 0.5 * following
        gae[i] = following
    close(advantages, gae)


def test_soft_lambda_advantages_at_temperature_zero_are_rlax_gae():
    t = trajectory()
    ours = soft_lambda_advantages(
        t["r_t"],
        t["discount_t"],
        t["v_tm1"],
        t["v_t"],
        t["kl_tm1"],
        t["kl_t"],
        temperature=0.0,
        lambda_=0.9,
    )
    values = jnp.concatenate([t["v_tm1"], t["v_t"][-1:]])
    theirs = rlax.truncated_generalized_advantage_estimation(t["r_t"], t["discount_t"], 0.9, values)
    close(ours, theirs)
