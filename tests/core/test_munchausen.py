"""Hand-computed examples for softeq.core.munchausen: Munchausen targets and backup [M1]–[M2].

The running rows: q̄ = (0, log 3) gives π = softmax(q̄/τ) = (1/4, 3/4) at τ = 1,
with soft value τ logsumexp(q̄/τ) = log 4.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from softeq.core import (
    TabularMDP,
    munchausen_bellman_backup,
    munchausen_targets,
    soft_bellman_backup,
    soft_dqn_targets,
)

# Sums of a few logs: float64 results are within a few ulps of the closed
# forms, so 1e-12 is ample yet catches any wrong term.
TIGHT = {"rtol": 1e-12, "atol": 1e-12}
LOG3, LOG4 = math.log(3.0), math.log(4.0)


def close(actual, expected, **tol):
    actual = np.asarray(actual)
    assert actual.dtype == np.float64, actual.dtype
    np.testing.assert_allclose(actual, expected, **(tol or TIGHT))


def rows():
    q = jnp.array([[0.0, LOG3], [0.0, LOG3]])
    return {
        "q_tm1": q,
        "a_tm1": jnp.array([0, 1]),
        "r_t": jnp.array([1.0, 2.0]),
        "discount_t": jnp.array([0.5, 0.0]),
        "q_t": q,
    }


def test_munchausen_targets_by_hand_with_and_without_the_clip():
    clipped = munchausen_targets(**rows(), temperature=1.0, alpha=0.9)
    # a = 0: ln ¼ = −1.386 is clipped to l0 = −1; a = 1: ln ¾ = −0.288 is not.
    close(clipped, [1.0 + 0.9 * -1.0 + 0.5 * LOG4, 2.0 + 0.9 * math.log(0.75)])
    unclipped = munchausen_targets(**rows(), temperature=1.0, alpha=0.9, log_policy_clip=None)
    close(unclipped, [1.0 + 0.9 * math.log(0.25) + 0.5 * LOG4, 2.0 + 0.9 * math.log(0.75)])
    no_clip = munchausen_targets(**rows(), temperature=1.0, alpha=0.9, log_policy_clip=-jnp.inf)
    close(no_clip, unclipped)


def test_munchausen_targets_with_alpha_zero_are_entropy_soft_dqn_targets():
    t = rows()
    ours = munchausen_targets(**t, temperature=0.3, alpha=0.0)
    theirs = soft_dqn_targets(
        t["r_t"], t["discount_t"], t["q_t"], mode="soft-entropy", temperature=0.3
    )
    close(ours, theirs)


def test_munchausen_targets_carry_no_gradient():
    t = rows()

    def total(q_tm1, q_t):
        t.update(q_tm1=q_tm1, q_t=q_t)
        return jnp.sum(munchausen_targets(**t, temperature=0.5, alpha=0.9))

    grads = jax.grad(total, argnums=(0, 1))(t["q_tm1"], t["q_t"])
    for g in grads:
        close(g, np.zeros((2, 2)))


def test_munchausen_targets_stay_finite_at_the_reference_temperature_in_float32():
    # |q̄|/τ = 1e6 in float32: the centred log-policy of the unlikely action is
    # −1e6 (clipped to −1), the likely one is 0, and the bootstrap is max q̄.
    with jax.enable_x64(False):
        q = jnp.array([[3e4, 0.0]], jnp.float32)
        y = munchausen_targets(
            q, jnp.array([1]), jnp.ones(1), jnp.ones(1), q, temperature=0.03, alpha=0.9
        )
        assert y.dtype == jnp.float32
        np.testing.assert_allclose(np.asarray(y), [1.0 - 0.9 * 0.03 + 3e4], rtol=1e-6)


def one_state_mdp(rewards):
    return TabularMDP(
        transitions=jnp.ones((1, 2, 1)),
        rewards=jnp.array([rewards]),
        discount=jnp.array(0.5),
        initial_distribution=jnp.ones(1),
    )


def test_munchausen_backup_by_hand():
    mdp = one_state_mdp([1.0, 0.0])
    q = jnp.array([[0.0, LOG3]])
    out = munchausen_bellman_backup(q, mdp, temperature=1.0, alpha=0.5)
    # bonus ½·clip(ln π, −1, 0) = ½·(−1, ln ¾), bootstrap ½ log 4
    close(out, [[1.0 - 0.5 + 0.5 * LOG4, 0.5 * math.log(0.75) + 0.5 * LOG4]])


def test_munchausen_backup_with_alpha_zero_is_the_entropy_soft_backup():
    transitions = jnp.array([[[0.3, 0.7], [1.0, 0.0]], [[0.5, 0.5], [0.2, 0.8]]])
    mdp = TabularMDP(
        transitions=transitions,
        rewards=jnp.array([[1.0, -1.0], [0.5, 0.0]]),
        discount=jnp.array(0.9),
        initial_distribution=jnp.array([1.0, 0.0]),
    )
    q = jnp.array([[0.3, -0.2], [1.0, 2.0]])
    close(
        munchausen_bellman_backup(q, mdp, temperature=0.4, alpha=0.0),
        soft_bellman_backup(q, mdp, temperature=0.4, log_prior="entropy"),
    )


def test_munchausen_backup_is_the_expected_target_over_next_states():
    transitions = jnp.array([[[0.3, 0.7], [1.0, 0.0]], [[0.5, 0.5], [0.2, 0.8]]])
    rewards = jnp.array([[1.0, -1.0], [0.5, 0.0]])
    mdp = TabularMDP(
        transitions=transitions,
        rewards=rewards,
        discount=jnp.array(0.9),
        initial_distribution=jnp.array([1.0, 0.0]),
    )
    q = jnp.array([[0.3, -0.2], [1.0, 2.0]])
    backup = munchausen_bellman_backup(q, mdp, temperature=0.4, alpha=0.7)
    for s in range(2):
        for a in range(2):
            # one transition to each next state s', weighted by P(s'|s, a)
            targets = munchausen_targets(
                jnp.stack([q[s], q[s]]),
                jnp.array([a, a]),
                jnp.full(2, rewards[s, a]),
                jnp.full(2, 0.9),
                q,
                temperature=0.4,
                alpha=0.7,
            )
            close(backup[s, a], transitions[s, a] @ targets)


@pytest.mark.parametrize("clip", [0.5, float("nan"), float("inf")])
def test_a_positive_or_nan_clip_is_refused(clip):
    with pytest.raises(ValueError, match="`log_policy_clip`"):
        munchausen_targets(**rows(), temperature=1.0, alpha=0.9, log_policy_clip=clip)
