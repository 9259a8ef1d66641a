"""[S1], [E12] Soft policy iteration with exact evaluation converges to soft value iteration's Q*.

Discrete SAC is approximate soft policy iteration in the entropy convention
(π̄ ≡ 1, temperature α). Done exactly on random tabular MDPs from a random
policy π_0:

- evaluation: Q_{π_k} by `evaluate_policy` (a linear solve, [E9]);
- improvement: π_{k+1} = softmax(Q_{π_k}/α) (`boltzmann_policy_table`), the
  minimiser of the SAC actor loss at the critic Q_{π_k}: the gradient of
  `sac_actor_loss` vanishes there at every step;

then V_{π_{k+1}} ≥ V_{π_k} in every state (soft policy improvement), and
after K = 25 steps Q_{π_K} equals Q* of the NumPy oracle's soft value
iteration (α, π̄ ≡ 1) and π_K = softmax(Q*/α).

Tolerances: values are of magnitude M ≤ (1 + α ln 3)/(1 − γ) ≲ 70 (γ ≤ 0.9,
α ≤ 5). Soft policy iteration is Newton's method on the soft Bellman
equation: on 30 random MDPs (γ up to 0.95) its error fell below 1e-11 within
4 steps, so 25 leave only round-off of the linear solves (condition ≤ 19):
1e-9·M against the oracle's Q* (which stops at a change of 1e-12). The
improvement check allows 1e-10·M of round-off; policies 1e-9·M/α.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from softeq.core import boltzmann_policy_table, evaluate_policy, sac_actor_loss
from softeq.properties import oracles
from softeq.properties import strategies as sqst
from softeq.properties._testing import assert_close, fast_jit, magnitude

STEPS = 25


@fast_jit
def _soft_policy_iteration(policy0, mdp, alpha):
    def step(policy, _):
        values, q = evaluate_policy(policy, mdp, temperature=alpha, log_prior="entropy")
        improved = boltzmann_policy_table(q, temperature=alpha, log_prior="entropy")
        # the improved policy is where the actor loss of the critic Q_π is stationary.
        logits = jnp.log(improved)
        actor_gradient = jax.grad(lambda l: sac_actor_loss(l, q, q, temperature=alpha))(logits)
        return improved, (values, q, jnp.max(jnp.abs(actor_gradient)))

    final, history = jax.lax.scan(step, policy0, None, length=STEPS)
    return final, history


@given(
    mdp=sqst.tabular_mdps(discount=sqst.discounts(max_value=0.9)),
    alpha=sqst.temperatures(),
    data=st.data(),
)
def test_soft_policy_iteration_improves_and_converges_to_the_soft_optimum(mdp, alpha, data):
    policy0 = data.draw(sqst.policies(mdp))
    final_policy, (values, qs, actor_gradients) = _soft_policy_iteration(policy0, mdp, alpha)
    values, qs = np.asarray(values), np.asarray(qs)
    entropy_prior = np.zeros(mdp.num_actions)
    q_star = oracles.soft_value_iteration(mdp, temperature=alpha, log_prior=entropy_prior)
    scale = magnitude(q_star, alpha * np.log(mdp.num_actions)) / (1.0 - float(mdp.discount))
    # every policy after the first improves on the one before, in every state.
    assert np.all(np.diff(values, axis=0) >= -1e-10 * scale)
    assert np.max(np.asarray(actor_gradients)) <= 1e-10 * scale
    assert_close(qs[-1], q_star, tolerance=1e-9, scale=scale, what="Q_{π_K} vs Q*")
    assert_close(
        final_policy,
        oracles.softmax(q_star / alpha),
        tolerance=1e-9,
        scale=scale / alpha,
        what="π_K vs softmax(Q*/α)",
    )
