"""Hand-computed examples for softeq.core.sac: discrete-SAC targets, actor loss, temperature."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from softeq.core import (
    AutoTemperature,
    TemperatureState,
    auto_temperature,
    auto_temperature_loss,
    sac_actor_loss,
    sac_critic_targets,
)

# Closed forms of a few logs and exps: float64 results are within a few ulps,
# so 1e-12 is ample yet catches any wrong term.
TIGHT = {"rtol": 1e-12, "atol": 1e-12}
LOG2, LOG3, LOG4 = math.log(2.0), math.log(3.0), math.log(4.0)


def close(actual, expected, **tol):
    actual = np.asarray(actual)
    assert actual.dtype == np.float64, actual.dtype
    np.testing.assert_allclose(actual, expected, **(tol or TIGHT))


# --- critic targets [S1] --------------------------------------------------------------

Q1 = np.array([[1.0, 4.0], [0.0, 5.0]])
Q2 = np.array([[2.0, 2.0], [3.0, -1.0]])  # min: (1, 2) and (0, −1)


def test_sac_critic_targets_by_hand():
    logits = jnp.array([[0.0, 0.0], [0.0, LOG3]])  # π = (½, ½) and (¼, ¾)
    y = sac_critic_targets(
        jnp.array([1.0, 2.0]), jnp.array([0.5, 0.9]), Q1, Q2, logits, temperature=0.5
    )
    entropy = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))
    close(
        y,
        [
            1.0 + 0.5 * (1.5 + 0.5 * LOG2),
            2.0 + 0.9 * (0.25 * 0.0 + 0.75 * -1.0 + 0.5 * entropy),
        ],
    )


def test_sac_critic_targets_at_temperature_zero_are_expected_clipped_q():
    logits = jnp.array([[0.0, -jnp.inf], [0.0, 0.0]])  # a deterministic and a uniform policy
    y = sac_critic_targets(jnp.zeros(2), jnp.ones(2), Q1, Q2, logits, temperature=0.0)
    close(y, [1.0, -0.5])


def test_sac_critic_targets_carry_no_gradient():
    def total(q1, q2, logits):
        return jnp.sum(
            sac_critic_targets(jnp.ones(2), jnp.ones(2), q1, q2, logits, temperature=0.3)
        )

    for g in jax.grad(total, argnums=(0, 1, 2))(Q1, Q2, jnp.zeros((2, 2))):
        close(g, np.zeros((2, 2)))


# --- actor loss [S1] --------------------------------------------------------------------


def test_sac_actor_loss_by_hand_and_at_its_minimiser():
    logits = jnp.zeros((2, 2))  # uniform π in both states
    loss = sac_actor_loss(logits, Q1, Q2, temperature=0.5)
    per_state = [0.5 * math.log(0.5) - 1.5, 0.5 * math.log(0.5) + 0.5]
    close(loss, np.mean(per_state))
    # at π = softmax(min q/α) the loss is −α logsumexp(min q/α)
    q_min = jnp.minimum(Q1, Q2)
    best = sac_actor_loss(q_min / 0.5, Q1, Q2, temperature=0.5)
    closed_form = -0.5 * np.mean(
        [math.log(math.exp(2.0) + math.exp(4.0)), math.log(1.0 + math.exp(-2.0))]
    )
    close(best, closed_form)
    assert best < loss


def test_sac_actor_loss_weights_states_like_rlax():
    logits = jnp.zeros((2, 2))
    both = sac_actor_loss(logits, Q1, Q2, temperature=0.5)
    first = sac_actor_loss(logits, Q1, Q2, temperature=0.5, w_t=jnp.array([1.0, 0.0]))
    close(first, 0.5 * (0.5 * math.log(0.5) - 1.5))  # the mean over T of w_i · loss_i
    close(sac_actor_loss(logits, Q1, Q2, temperature=0.5, w_t=jnp.ones(2)), both)


def test_sac_actor_loss_differentiates_the_logits_only():
    logits = jnp.array([[0.3, -0.1], [1.0, 0.0]])
    grads = jax.grad(
        lambda l, a, b, t: sac_actor_loss(l, a, b, temperature=t), argnums=(0, 1, 2, 3)
    )(logits, Q1, Q2, 0.5)
    assert np.all(np.abs(np.asarray(grads[0])) > 0)
    for g in grads[1:]:
        close(g, np.zeros_like(np.asarray(g)))
    # and the gradient vanishes at the Boltzmann policy of min q
    at_best = jax.grad(lambda l: sac_actor_loss(l, Q1, Q2, temperature=0.5))(
        jnp.minimum(Q1, Q2) / 0.5
    )
    close(at_best, np.zeros((2, 2)), atol=1e-12)


# --- automatic temperature [S2] ------------------------------------------------------


def test_auto_temperature_is_an_init_update_pair_with_a_named_state():
    pair = auto_temperature(target_entropy_ratio=0.5, learning_rate=0.1, initial_temperature=0.2)
    assert isinstance(pair, AutoTemperature)
    state = pair.init()
    assert isinstance(state, TemperatureState)
    close(state.log_temperature, math.log(0.2))
    close(state.temperature, 0.2)


def test_auto_temperature_update_by_hand():
    _, update = auto_temperature(target_entropy_ratio=0.5, learning_rate=0.1)
    logits = jnp.array([[0.0, 0.0], [0.0, -jnp.inf]])  # H = ln 2 and 0: mean ½ ln 2
    state = TemperatureState(jnp.array(math.log(0.3)))
    new_state, loss = update(state, logits)
    gap = 0.5 * LOG2 - 0.5 * LOG2  # exactly on target: no move
    close(new_state.log_temperature, math.log(0.3) - 0.1 * gap)
    close(loss, 0.0)
    new_state, loss = update(state, logits, jnp.array([2.0, 0.0]))  # weighted: mean(2 ln 2, 0)
    gap = LOG2 - 0.5 * LOG2
    close(new_state.log_temperature, math.log(0.3) - 0.1 * gap)
    close(loss, math.log(0.3) * gap)


def test_auto_temperature_moves_in_the_direction_that_closes_the_entropy_gap():
    init, update = auto_temperature(target_entropy_ratio=0.5, learning_rate=0.5)
    q = jnp.array([[0.0, 1.0, 3.0]])
    state = init()
    history = []
    for _ in range(200):
        logits = q / state.temperature  # the actor follows the critic
        history.append(float(-jnp.sum(jax.nn.softmax(logits) * jax.nn.log_softmax(logits))))
        state, _ = update(state, logits)
    target = 0.5 * LOG3
    assert abs(history[-1] - target) < 1e-6 < abs(history[0] - target)


def test_auto_temperature_loss_gradient_is_the_entropy_gap():
    logits = jnp.array([[0.0, LOG3]])  # H(¼, ¾)
    entropy = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))
    gradient = jax.grad(auto_temperature_loss)(jnp.array(0.7), logits, target_entropy_ratio=0.9)
    close(gradient, entropy - 0.9 * LOG2)


@pytest.mark.parametrize("ratio", [0.0, 1.0, 1.2, -0.1, float("nan")])
def test_target_entropy_ratios_outside_the_open_unit_interval_are_refused(ratio):
    with pytest.raises(ValueError, match="`target_entropy_ratio` must lie in \\(0, 1\\)"):
        auto_temperature(target_entropy_ratio=ratio, learning_rate=0.1)
