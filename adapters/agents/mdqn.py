"""Munchausen DQN (Vieillard, Pietquin & Geist 2020): DQN whose target adds ατ ln π(a|s) [M1].

Everything but the target is DQN's (`softeq.adapters.agents.dqn`): the
Q-network, the replay of one-step windows, ε-greedy behaviour, Adam with
global-norm clipping, the Huber loss and the periodic hard copy of the target
network. The target of a replayed transition (s, a, r, s') is
`softeq.core.munchausen_targets` on the target network's rows at s and s':

    y = r + ατ·clip(ln π̄(a|s), l0, 0) + γ Σ_a' π̄(a'|s') [Q̄(s', a') − τ ln π̄(a'|s')],

with π̄ = softmax(Q̄/τ). A termination zeroes γ. A time-limit truncation is not
terminal: `softeq.core.bootstrap_truncations` folds γ times the soft-entropy
value Σ_a' π̄(a'|s_f)[Q̄(s_f, a') − τ ln π̄(a'|s_f)] = τ logsumexp(Q̄(s_f, ·)/τ)
of the ended episode's final observation s_f into the reward and cuts the
bootstrap there, exactly as DQN's soft-entropy target does.

Reference: N. Vieillard, O. Pietquin, M. Geist, "Munchausen Reinforcement
Learning", NeurIPS 2020, arXiv:2007.14430 (defaults of the reference
implementation google-research/munchausen_rl: τ = 0.03, α = 0.9, l0 = −1).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from softeq.adapters import replay
from softeq.adapters.agents import dqn
from softeq.adapters.agents.config import MunchausenDQNConfig
from softeq.core import bootstrap_truncations, dqn_bootstrap_value, munchausen_targets


def munchausen_dqn_targets(
    target_params, batch: replay.NStepBatch, *, apply, config: MunchausenDQNConfig
) -> jax.Array:
    """Munchausen targets `[B]` of one-step windows from the target network (no gradient).

    Args:
      target_params: target network parameters.
      batch: `NStepBatch` with obs `[B, …]`, actions `[B]`, rewards / terminated /
        truncated `[B, 1]` and next_obs `[B, 1, …]` (the final observation where
        the transition was truncated).
      apply: the Q-network's `apply(params, obs) -> q [B, A]`.
      config: τ (`temperature`), α, l0 (`log_policy_clip`) and γ.

    Returns:
      `[B]` targets y.
    """
    size, n = batch.rewards.shape
    if n != 1:
        raise ValueError(f"Munchausen DQN takes one-step windows; `batch` holds {n}-step ones.")
    # One pass of the target network over s and s' together.
    q_both = apply(target_params, jnp.concatenate([batch.obs, batch.next_obs[:, 0]], axis=0))
    q_tm1, q_t = q_both[:size], q_both[size:]
    discounts = config.discount * (1.0 - batch.terminated[:, 0])
    v_final = jax.vmap(
        lambda q: dqn_bootstrap_value(q, mode="soft-entropy", temperature=config.temperature)
    )(q_t)
    # Elementwise over the batch: each transition is its own length-1 window.
    rewards, discounts = bootstrap_truncations(
        batch.rewards[:, 0], discounts, batch.truncated[:, 0], v_final
    )
    targets = munchausen_targets(
        q_tm1,
        batch.actions,
        rewards,
        discounts,
        q_t,
        temperature=config.temperature,
        alpha=config.alpha,
        log_policy_clip=config.log_policy_clip,
    )
    return jax.lax.stop_gradient(targets)


def mdqn_loss(
    params, target_params, batch: replay.NStepBatch, *, apply, config: MunchausenDQNConfig
):
    """Mean Huber loss between Q(s_i, a_i) and `munchausen_dqn_targets`.

    Args:
      params: online network parameters (differentiated).
      target_params: target network parameters (held fixed).
      batch: `NStepBatch` of one-step windows (see `munchausen_dqn_targets`).
      apply: the Q-network's `apply(params, obs) -> q [B, A]`.
      config: the Munchausen settings and the Huber δ.

    Returns:
      `(loss [], metrics dict)`.
    """
    q = apply(params, batch.obs)
    targets = munchausen_dqn_targets(target_params, batch, apply=apply, config=config)
    return dqn.huber_regression(q, batch.actions, targets, delta=config.huber_delta)


#: The pure learner update `(DQNLearnerState, NStepBatch) -> (DQNLearnerState, metrics)`:
#: DQN's optimiser step and target copy on the Munchausen loss.
make_learner_update = dqn.learner_update_for(mdqn_loss)
