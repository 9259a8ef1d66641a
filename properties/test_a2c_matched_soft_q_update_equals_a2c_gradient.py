"""[E16] The expected A2C-matched soft Q-learning update equals the A2C gradient.

The network has a shared tanh torso with a policy head and a value head,
Q_θ(s, a) = V_θ(s) + τ log π_θ(a|s) (π̄ ≡ 1). softeq's
`a2c_matched_soft_q_loss` scales the gradient entering the advantage stream
by 1/τ and the one entering the value stream by c, so per sample its
gradient is (Q_θ − y)∇log π_θ + c(Q_θ − y)∇V_θ. In exact expectation over
every trajectory of length 2 (actions from π_θ, random terminal states) this
equals the gradient of `a2c_loss(..., entropy="proper", log_prior=0,
value_weight=c)`, for n = 1, 2 and any c.

Tolerance: 1e-9 relative to the largest gradient entry (floored at 1e-3).
Both sides are ≤ 108-term weighted sums of order-one per-path gradients (the
1/τ ≤ 20 scaling is undone by the τ in τ log π), so round-off is ~1e-14
relative; a wrong weight or a missing KL term shows at order ≥ 1e-3.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from softeq.core import a2c_loss, a2c_matched_soft_q_loss
from softeq.properties import strategies as sqst
from softeq.properties._testing import fast_jit
from softeq.properties.equivalence import enumerate_trajectories

HORIZON = 2
SHAPES = ((2, 3), (3, 2))
HIDDEN = 3


def _heads(params, features):
    hidden = jnp.tanh(features @ params["torso"])  # [S, HIDDEN]
    return hidden @ params["policy"], hidden @ params["value"]  # [S, A], [S]


@fast_jit
def _behaviour(params, features):
    logits, _ = _heads(params, features)
    return jax.nn.softmax(logits)


@fast_jit(static_argnames=("n",))
def _expected_gradients(
    params, features, states, actions, rewards, discounts, weights, tau, c, *, n
):
    """Expected gradients of the matched soft-Q loss and of the A2C loss over all paths."""
    entropy_prior = jnp.zeros(params["policy"].shape[-1], features.dtype)

    def expected(loss_fn):
        def total(p):
            logits, values = _heads(p, features)

            def per_path(s, a, r, d):
                return loss_fn(logits[s], values[s], a, r, d)

            return jnp.sum(weights * jax.vmap(per_path)(states, actions, rewards, discounts))

        return jax.grad(total)(params)

    def matched(logits, values, a, r, d):
        loss, _ = a2c_matched_soft_q_loss(
            logits, values, a, r, d, temperature=tau, n=n, value_weight=c
        )
        return loss

    def actor_critic(logits, values, a, r, d):
        loss, _ = a2c_loss(
            logits,
            values,
            a,
            r,
            d,
            temperature=tau,
            n=n,
            value_weight=c,
            entropy="proper",
            log_prior=entropy_prior,
        )
        return loss

    return expected(matched), expected(actor_critic)


@st.composite
def actor_critic_problems(draw):
    num_states, num_actions = draw(st.sampled_from(SHAPES))
    mdp = draw(
        sqst.tabular_mdps(
            min_states=num_states,
            max_states=num_states,
            min_actions=num_actions,
            max_actions=num_actions,
        )
    )
    features = draw(sqst.float_arrays((num_states, 2), min_value=-1.0, max_value=1.0))
    params = {
        "torso": draw(sqst.float_arrays((2, HIDDEN), min_value=-2.0, max_value=2.0)),
        "policy": draw(sqst.float_arrays((HIDDEN, num_actions), min_value=-2.0, max_value=2.0)),
        "value": draw(sqst.float_arrays((HIDDEN,), min_value=-2.0, max_value=2.0)),
    }
    return (
        mdp,
        features,
        params,
        draw(sqst.terminal_states(num_states)),
        draw(sqst.temperatures()),
        draw(st.floats(0.1, 2.0)),
        draw(st.sampled_from((1, 2))),
    )


@given(problem=actor_critic_problems())
def test_expected_a2c_matched_soft_q_update_equals_a2c_gradient(problem):
    mdp, features, params, terminal, tau, value_weight, n = problem
    policy = np.asarray(_behaviour(params, features))
    paths = enumerate_trajectories(mdp, policy, horizon=HORIZON)
    rewards = np.asarray(mdp.rewards)[paths.states[:, :-1], paths.actions]
    discounts = float(mdp.discount) * (1.0 - terminal[paths.states[:, 1:]])
    matched, actor_critic = _expected_gradients(
        params,
        features,
        paths.states,
        paths.actions,
        rewards,
        discounts,
        paths.probabilities,
        tau,
        value_weight,
        n=n,
    )
    leaves = jax.tree_util.tree_leaves((matched, actor_critic))
    scale = max(max(float(np.max(np.abs(leaf))) for leaf in leaves), 1e-3)
    for name in params:
        np.testing.assert_allclose(
            matched[name], actor_critic[name], rtol=0, atol=1e-9 * scale, err_msg=name
        )
