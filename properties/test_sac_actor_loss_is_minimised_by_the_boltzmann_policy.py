"""[S1], [E4] The discrete-SAC actor loss is minimised over the simplex by softmax(min q/α).

For two critics q_1, q_2 `[T, A]`, a temperature α and per-state weights w:

- `sac_actor_loss` equals the NumPy oracle
  (1/T)Σ_i w_i Σ_a π(a|s_i)(α ln π(a|s_i) − min_j q_j(s_i, a)), and minus the
  weighted mean of `policy_soft_value`(min q, ln π, α, "entropy");
- at π = softmax(min q/α) it equals the closed form −(1/T)Σ_i w_i α logsumexp(min q(s_i)/α)
  and its gradient in the logits is zero;
- for any other policy (random logits) it exceeds that minimum by exactly
  α (1/T)Σ_i w_i KL[π(·|s_i) ‖ softmax(min q(s_i)/α)] ≥ 0 (the Gibbs identity [E4]).

Tolerances: every term is a sum over ≤ 3 actions and ≤ 4 states of numbers
of magnitude ≤ M = 1 + max(|q|, α·|ln π|) ≲ 60 (|q| ≤ 3, policy logits in
[−6, 6], α ≤ 5): 1e-12·M. The gradient at the minimiser is a difference of
such numbers divided by T: 1e-12·M as well.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from softeq.core import policy_soft_value, sac_actor_loss
from softeq.properties import oracles
from softeq.properties import strategies as sqst
from softeq.properties._testing import assert_close, fast_jit, magnitude

STATES = 4


@st.composite
def actor_problems(draw):
    num_actions = draw(st.sampled_from(sqst.ACTION_MENU))
    shape = (STATES, num_actions)
    q1, q2 = draw(sqst.q_tables(shape)), draw(sqst.q_tables(shape))
    logits = draw(sqst.float_arrays(shape, min_value=-6.0, max_value=6.0))
    weights = draw(sqst.float_arrays((STATES,), min_value=0.0, max_value=2.0))
    return q1, q2, logits, weights, draw(sqst.temperatures())


@fast_jit
def _actor_losses(logits, q1, q2, weights, alpha):
    q_min = jnp.minimum(q1, q2)

    def loss(l):
        return sac_actor_loss(l, q1, q2, temperature=alpha, w_t=weights)

    values = jax.vmap(
        lambda q, l: policy_soft_value(
            q, jax.nn.log_softmax(l), temperature=alpha, log_prior="entropy"
        )
    )(q_min, logits)
    boltzmann_logits = q_min / alpha
    return (
        loss(logits),
        jnp.mean(weights * values),
        loss(boltzmann_logits),
        jax.grad(loss)(boltzmann_logits),
    )


@given(problem=actor_problems())
def test_actor_loss_is_minimised_by_the_boltzmann_policy_with_the_gibbs_gap(problem):
    q1, q2, logits, weights, alpha = problem
    loss, mean_value, minimum, gradient_at_minimum = _actor_losses(logits, q1, q2, weights, alpha)
    q_min = np.minimum(q1, q2)
    policy = oracles.softmax(logits)
    boltzmann = oracles.softmax(q_min / alpha)
    zeros = np.zeros(q_min.shape[-1])
    scale = magnitude(q_min, alpha * np.log(policy), alpha * np.log(boltzmann))
    score = oracles.regularised_score(policy, q_min, temperature=alpha, log_prior=zeros)
    assert_close(loss, -np.mean(weights * score), tolerance=1e-12, scale=scale, what="vs oracle")
    assert_close(loss, -mean_value, tolerance=1e-12, scale=scale, what="−policy_soft_value")
    closed_form = -np.mean(weights * alpha * oracles.logsumexp(q_min / alpha))
    assert_close(minimum, closed_form, tolerance=1e-12, scale=scale, what="−α lse(min q/α)")
    assert_close(gradient_at_minimum, np.zeros_like(logits), tolerance=1e-12, scale=scale)
    gap = alpha * np.mean(weights * oracles.kl_divergence(policy, np.log(boltzmann)))
    assert_close(loss - minimum, gap, tolerance=1e-12, scale=scale, what="Gibbs gap")
    assert float(loss) >= float(minimum) - 1e-12 * scale
