"""[S1] Discrete-SAC critic targets: exact expectation over actions, and soft-entropy DQN at π^B.

- `sac_critic_targets` equals a step-by-step NumPy oracle of
  y = r + γ Σ_a' π(a'|s')(min(q̄_1, q̄_2)(s', a') − α ln π(a'|s')) for random
  actor policies, episode ends inside the stream;
- when the actor is the Boltzmann policy of the clipped critic,
  π = softmax(min q̄/α), the target is the entropy-bonus soft DQN target of
  min q̄ (`soft_dqn_targets`, mode "soft-entropy") [DQN-3]: r + γ α logsumexp(min q̄/α);
- no gradient reaches the critics or the actor through the targets.

Tolerances: sums over ≤ 3 actions of numbers of magnitude ≤ M = 1 +
max(|r|, |q̄|, α·|ln π|) ≲ 60: 1e-12·M.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from softeq.core import sac_critic_targets, soft_dqn_targets
from softeq.properties import oracles
from softeq.properties import strategies as sqst
from softeq.properties._testing import assert_close, fast_jit, magnitude

LENGTH = 5


@fast_jit
def _targets(r_t, discount_t, q1_t, q2_t, logits_t, alpha):
    def total(q1, q2, logits):
        return jnp.sum(sac_critic_targets(r_t, discount_t, q1, q2, logits, temperature=alpha))

    q_min = jnp.minimum(q1_t, q2_t)
    return (
        sac_critic_targets(r_t, discount_t, q1_t, q2_t, logits_t, temperature=alpha),
        sac_critic_targets(r_t, discount_t, q1_t, q2_t, q_min / alpha, temperature=alpha),
        soft_dqn_targets(r_t, discount_t, q_min, mode="soft-entropy", temperature=alpha),
        jax.grad(total, argnums=(0, 1, 2))(q1_t, q2_t, logits_t),
    )


@given(
    stream=sqst.soft_streams(length=LENGTH),
    num_actions=st.sampled_from(sqst.ACTION_MENU),
    alpha=sqst.temperatures(),
    data=st.data(),
)
def test_critic_targets_equal_the_oracle_and_soft_entropy_dqn_at_the_boltzmann_actor(
    stream, num_actions, alpha, data
):
    shape = (LENGTH, num_actions)
    q1, q2 = data.draw(sqst.q_tables(shape)), data.draw(sqst.q_tables(shape))
    logits = data.draw(sqst.float_arrays(shape, min_value=-6.0, max_value=6.0))
    targets, at_boltzmann, soft_dqn, gradients = _targets(
        stream.r_t, stream.discount_t, q1, q2, logits, alpha
    )
    policy = oracles.softmax(logits)
    expected = oracles.sac_critic_targets(
        stream.r_t, stream.discount_t, q1, q2, policy, temperature=alpha
    )
    scale = magnitude(expected, q1, q2, alpha * np.log(policy), alpha * np.log(num_actions))
    assert_close(targets, expected, tolerance=1e-12, scale=scale, what="vs oracle")
    assert_close(at_boltzmann, soft_dqn, tolerance=1e-12, scale=scale, what="π^B vs soft DQN")
    q_min = np.minimum(q1, q2)
    log_sum_exp = stream.r_t + stream.discount_t * alpha * oracles.logsumexp(q_min / alpha)
    assert_close(at_boltzmann, log_sum_exp, tolerance=1e-12, scale=scale, what="r + γα lse")
    for gradient in gradients:
        assert np.all(np.asarray(gradient) == 0.0)
