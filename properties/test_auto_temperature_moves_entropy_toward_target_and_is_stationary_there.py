"""[S2] The automatic temperature moves the entropy toward its target and stops exactly there.

The actor follows the critic, π_α(·|s_i) = softmax(q(s_i, ·)/α), over a batch
of states with weights w; H̄ = ρ ln|A|, and the batch entropy is
H_w = (1/T)Σ_i w_i H(π_α(·|s_i)) with target H̄_w = (1/T)Σ_i w_i H̄. One
`auto_temperature` update:

- changes ln α by exactly −η (H_w − H̄_w), which is −η times `jax.grad` of
  `auto_temperature_loss`, whose value it returns;
- moves H_w toward H̄_w: it never moves away, and with a step η small enough
  not to overshoot (η·dH_w/d ln α ≤ 0.2 here) the distance shrinks whenever
  it is not already zero;
- is stationary exactly at the target: with ρ chosen so that H̄_w = H_w, the
  change of ln α and the loss gradient are 0 up to round-off.

Tolerances: entropies and their mean are sums of ≤ 9 terms of magnitude
≤ ln 3 · 2, computed in float64 by softeq and by the NumPy oracle: 1e-12.
The entropy of π_α increases with α, dH/d ln α = Var_π(q/α) ≤ 100 (|q| ≤ 2.5,
α ≥ 0.2) and w ≤ 2, so η ≤ 1e-3 keeps the change of H_w below a fifth of the
distance to the target; the weak checks allow 1e-15 of round-off.
"""

from __future__ import annotations

import math

import jax
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from softeq.core import TemperatureState, auto_temperature, auto_temperature_loss
from softeq.properties import oracles
from softeq.properties import strategies as sqst
from softeq.properties._testing import assert_close, fast_jit

STATES = 3


@st.composite
def temperature_problems(draw):
    """Critic rows with distinct actions, a temperature α in [0.2, 2], weights and a step."""
    num_actions = draw(st.sampled_from(sqst.ACTION_MENU))
    q = draw(sqst.q_tables((STATES, num_actions), scale=2.0))
    # a spread of 0.25 between actions keeps every row non-constant, so the entropy is
    # strictly below ln|A| and strictly increasing in α.
    q = q + 0.25 * np.arange(num_actions)
    log_alpha = draw(st.floats(math.log(0.2), math.log(2.0)))
    weights = draw(sqst.float_arrays((STATES,), min_value=0.1, max_value=2.0))
    step = draw(st.sampled_from([1e-4, 1e-3]))
    return q, log_alpha, weights, step


def _mean_entropy(q, log_alpha, weights):
    """The weighted mean entropy of softmax(q/α) over the batch, as `auto_temperature` averages."""
    return float(np.mean(weights * oracles.entropy(oracles.softmax(q / math.exp(log_alpha)))))


def _update(q, log_alpha, weights, ratio, step):
    _, update = auto_temperature(target_entropy_ratio=ratio, learning_rate=step)
    state = TemperatureState(log_alpha)
    logits = q / state.temperature
    new_state, loss = update(state, logits, weights)
    gradient = jax.grad(auto_temperature_loss)(
        state.log_temperature, logits, target_entropy_ratio=ratio, w_t=weights
    )
    value = auto_temperature_loss(
        state.log_temperature, logits, target_entropy_ratio=ratio, w_t=weights
    )
    return new_state.log_temperature, loss, gradient, value


_jitted_update = fast_jit(_update)


@given(problem=temperature_problems(), ratio=st.floats(0.05, 0.95))
def test_one_update_moves_the_entropy_toward_the_target(problem, ratio):
    q, log_alpha, weights, step = problem
    new_log_alpha, loss, gradient, value = (
        float(x) for x in _jitted_update(q, log_alpha, weights, ratio, step)
    )
    num_actions = q.shape[-1]
    before = _mean_entropy(q, log_alpha, weights)
    target = float(np.mean(weights)) * ratio * math.log(num_actions)
    gap = before - target
    assert_close(new_log_alpha, log_alpha - step * gap, tolerance=1e-12, what="ln α step")
    assert_close(gradient, gap, tolerance=1e-12, what="∂J/∂ln α = mean gap")
    assert_close(loss, value, tolerance=1e-12, what="returned loss")
    after = _mean_entropy(q, new_log_alpha, weights)
    # the entropy never moves away from the target, and does not overshoot it.
    assert (after - before) * gap <= 1e-15
    assert abs(after - target) <= abs(gap) + 1e-15
    # strictly closer wherever the predicted change η·|gap|·dH_w/d ln α is resolvable.
    policies = oracles.softmax(q / math.exp(log_alpha))
    scores = q / math.exp(log_alpha)
    variances = np.sum(policies * scores**2, -1) - np.sum(policies * scores, -1) ** 2
    if step * abs(gap) * float(np.mean(weights * variances)) > 1e-12:
        assert abs(after - target) < abs(gap)


@given(problem=temperature_problems())
def test_the_update_is_stationary_exactly_at_the_target_entropy(problem):
    q, log_alpha, weights, step = problem
    num_actions = q.shape[-1]
    # the ratio whose target is the current weighted mean entropy
    ratio = _mean_entropy(q, log_alpha, weights) / (float(np.mean(weights)) * math.log(num_actions))
    new_log_alpha, _, gradient, _ = (
        float(x) for x in _jitted_update(q, log_alpha, weights, ratio, step)
    )
    assert abs(gradient) <= 1e-12
    assert abs(new_log_alpha - log_alpha) <= step * 1e-12
