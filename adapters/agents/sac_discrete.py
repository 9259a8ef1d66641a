r"""Soft actor-critic for discrete actions (Christodoulou 2019) with automatic temperature.

The network holds three branches, each with its own torso: the actor's logits
and two critics q_1, q_2 (`make_network`; `apply(params, obs, heads=...)`
evaluates only the branches asked for). One learner update on a replayed
batch of one-step transitions (s, a, r, s'):

- critics: both regress, by summed mean squared errors, on the clipped
  double-Q soft target of `softeq.core.sac_critic_targets` [S1]:
  y = r + γ Σ_a' π(a'|s')[min_j q̄_j(s', a') − α ln π(a'|s')], with the
  target critics q̄_j and the current actor π;
- actor: `softeq.core.sac_actor_loss` [S1], the exact expectation over
  actions of α ln π − min_j q_j (no sampling, no reparameterisation);
- temperature: ln α takes an Adam step on `softeq.core.auto_temperature_loss`
  [S2], which lowers α while the actor's entropy is above ρ·ln|A| and raises it
  below (ρ = `target_entropy_ratio`; 0.98 is Christodoulou's choice, 0.89
  CleanRL's — too high a target is the usual cause of a runaway α);
- target critics: every `target_update_every` updates they move by
  `target_update_rate` toward the online critics (1.0: a hard copy).

The critic and actor losses are summed and differentiated once: the targets
carry no gradient and the actor loss holds the critics fixed, so each
parameter group only receives its own loss's gradient, and each group has its
own Adam (`make_optimizer`, `optax.multi_transform`). A termination zeroes γ;
a time-limit truncation is not terminal: `softeq.core.bootstrap_truncations`
folds γ times the soft value Σ_a' π(a'|s_f)[min_j q̄_j(s_f, a') − α ln π(a'|s_f)]
of the ended episode's final observation s_f into the reward and cuts there.

Behaviour samples the actor; greedy evaluation takes its argmax.

Reference: P. Christodoulou, "Soft Actor-Critic for Discrete Action
Settings", arXiv:1910.07207; T. Haarnoja et al., "Soft Actor-Critic
Algorithms and Applications", arXiv:1812.05905 (automatic temperature).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import haiku as hk
import jax
import jax.numpy as jnp
import optax

from softeq.adapters import replay
from softeq.adapters.agents.config import SACDiscreteConfig
from softeq.core import (
    TemperatureState,
    auto_temperature_loss,
    bootstrap_truncations,
    policy_entropy,
    sac_actor_loss,
    sac_critic_targets,
)

ACTOR = "actor"
CRITICS = ("critic_1", "critic_2")
HEADS = ("all", "actor", "critics")
_ACTOR_GAIN = 0.01  # a near-uniform initial policy
_CRITIC_GAIN = 1.0


class SACLearnerState(NamedTuple):
    """Everything the discrete-SAC learner carries between updates.

    params: hk.Params of the actor and both critics.
    target_params: hk.Params of the target critics (the critic modules only).
    opt_state: the state of `make_optimizer` (one Adam for the actor, one for the critics).
    temperature: `softeq.core.TemperatureState` (ln α).
    temperature_opt_state: the Adam state of ln α.
    updates: `[]` int32 learner updates done so far.
    """

    params: hk.Params
    target_params: hk.Params
    opt_state: optax.OptState
    temperature: TemperatureState
    temperature_opt_state: optax.OptState
    updates: jax.Array


def _branch(name: str, obs: jax.Array, *, torso: str, num_actions: int, gain: float):
    from softeq.adapters import networks

    with hk.name_scope(name):
        features = networks.torso_features(obs, torso)
        init = hk.initializers.Orthogonal(scale=gain)
        return hk.Linear(num_actions, w_init=init, b_init=jnp.zeros, name="head")(features)


def make_network(num_actions: int, *, torso: str, config: SACDiscreteConfig) -> hk.Transformed:
    """The actor and the twin critics, each on its own torso.

    Returns:
      `hk.Transformed`: `init(rng, obs)` creates every branch; `apply(params,
      obs, heads="all")` gives `(logits [B, A], q1 [B, A], q2 [B, A])`,
      `heads="actor"` the logits alone and `heads="critics"` `(q1, q2)` (then
      `params` may hold the critic modules only, e.g. the target critics).
    """
    del config
    from softeq.adapters.networks import TORSOS

    if torso not in TORSOS:
        raise ValueError(f"`torso` must be one of {TORSOS}, got {torso!r}.")

    def forward(obs: jax.Array, heads: str = "all"):
        if heads not in HEADS:
            raise ValueError(f"`heads` must be one of {HEADS}, got {heads!r}.")
        branch = dict(torso=torso, num_actions=num_actions)
        logits = _branch(ACTOR, obs, gain=_ACTOR_GAIN, **branch) if heads != "critics" else None
        if heads == "actor":
            return logits
        q1, q2 = (_branch(name, obs, gain=_CRITIC_GAIN, **branch) for name in CRITICS)
        return (q1, q2) if heads == "critics" else (logits, q1, q2)

    return hk.without_apply_rng(hk.transform(forward))


def critic_params(params: hk.Params) -> hk.Params:
    """The critic modules of `params` (what the target critics copy)."""
    return hk.data_structures.filter(
        lambda module, name, value: module.startswith("critic"), params
    )


def _labels(params: hk.Params) -> hk.Params:
    return hk.data_structures.map(
        lambda module, name, value: ACTOR if module.startswith(ACTOR) else "critic", params
    )


def make_optimizer(config: SACDiscreteConfig, *, num_envs: int) -> optax.GradientTransformation:
    """Per group (actor, critics): global-norm clipping then Adam at its own learning rate."""
    del num_envs

    def adam(rate: float) -> optax.GradientTransformation:
        return optax.chain(
            optax.clip_by_global_norm(config.max_grad_norm), optax.adam(rate, eps=config.adam_eps)
        )

    return optax.multi_transform(
        {ACTOR: adam(config.actor_learning_rate), "critic": adam(config.learning_rate)}, _labels
    )


def temperature_optimizer(config: SACDiscreteConfig) -> optax.GradientTransformation:
    """Adam on ln α (as Christodoulou and CleanRL)."""
    return optax.adam(config.temperature_learning_rate, eps=config.adam_eps)


def init_learner(params: hk.Params, optimizer: optax.GradientTransformation, *, config):
    """Target critics copied from the critics, optimiser states, ln α = ln `initial_temperature`."""
    target = jax.tree.map(jnp.copy, critic_params(params))
    log_alpha = jnp.asarray(math.log(config.initial_temperature), jnp.float32)
    return SACLearnerState(
        params=params,
        target_params=target,
        opt_state=optimizer.init(params),
        temperature=TemperatureState(log_alpha),
        temperature_opt_state=temperature_optimizer(config).init(log_alpha),
        updates=jnp.zeros((), jnp.int32),
    )


def actor_logits(apply, params: hk.Params, obs: jax.Array) -> jax.Array:
    """The actor's logits `[N, A]` (argmax: greedy; softmax: the learned policy)."""
    return apply(params, obs, heads="actor")


def sample_act(apply, params, key, obs, env_steps, *, config, num_actions: int):
    """Behaviour actions `[N]` int32 drawn from the actor (traceable)."""
    del env_steps, config, num_actions
    return jax.random.categorical(key, actor_logits(apply, params, obs)).astype(jnp.int32)


def sac_critic_batch_targets(
    params, target_params, temperature, batch: replay.NStepBatch, *, apply, config
) -> jax.Array:
    """Critic targets `[B]` of one-step windows (no gradient), truncations bootstrapped.

    Args:
      params: online parameters (the actor's logits at s' are read from them).
      target_params: the target critics.
      temperature: `[]` α.
      batch: `NStepBatch` with rewards / terminated / truncated `[B, 1]`,
        next_obs `[B, 1, …]` (the final observation where truncated).
      apply: the network's apply.
      config: γ.
    """
    size, n = batch.rewards.shape
    if n != 1:
        raise ValueError(f"discrete SAC takes one-step windows; `batch` holds {n}-step ones.")
    next_obs = batch.next_obs[:, 0]
    logits_next = actor_logits(apply, params, next_obs)
    q1_next, q2_next = apply(target_params, next_obs, heads="critics")
    ones = jnp.ones((size,), jnp.float32)
    # Σ π(min q̄ − α ln π) at s', the bootstrap of a truncated transition.
    v_next = sac_critic_targets(
        0.0 * ones, ones, q1_next, q2_next, logits_next, temperature=temperature
    )
    discounts = config.discount * (1.0 - batch.terminated[:, 0])
    rewards, discounts = bootstrap_truncations(
        batch.rewards[:, 0], discounts, batch.truncated[:, 0], v_next
    )
    targets = sac_critic_targets(
        rewards, discounts, q1_next, q2_next, logits_next, temperature=temperature
    )
    return jax.lax.stop_gradient(targets)


def sac_losses(params, target_params, temperature, batch: replay.NStepBatch, *, apply, config):
    """Critic plus actor loss of one batch (each reaching only its own parameters).

    Returns:
      `(loss [], (logits at s [B, A], metrics dict))`.
    """
    targets = sac_critic_batch_targets(
        params, target_params, temperature, batch, apply=apply, config=config
    )
    logits, q1, q2 = apply(params, batch.obs)
    rows = jnp.arange(batch.actions.shape[0])
    q1_taken, q2_taken = q1[rows, batch.actions], q2[rows, batch.actions]
    critic_loss = jnp.mean((q1_taken - targets) ** 2) + jnp.mean((q2_taken - targets) ** 2)
    actor_loss = sac_actor_loss(logits, q1, q2, temperature=temperature)
    metrics = {
        "critic_loss": critic_loss,
        "actor_loss": actor_loss,
        "q_mean": jnp.mean(jnp.minimum(q1_taken, q2_taken)),
        "target_mean": jnp.mean(targets),
    }
    return critic_loss + actor_loss, (logits, metrics)


def make_learner_update(apply, optimizer: optax.GradientTransformation, *, config):
    """The pure learner update `(SACLearnerState, NStepBatch) -> (SACLearnerState, metrics)`."""
    alpha_optimizer = temperature_optimizer(config)

    def learner_update(learner: SACLearnerState, batch: replay.NStepBatch):
        alpha = learner.temperature.temperature
        grads, (logits, metrics) = jax.grad(sac_losses, has_aux=True)(
            learner.params, learner.target_params, alpha, batch, apply=apply, config=config
        )
        updates, opt_state = optimizer.update(grads, learner.opt_state, learner.params)
        params = optax.apply_updates(learner.params, updates)
        # ln α from the entropies of the policy the batch was scored with (before the step).
        log_alpha = learner.temperature.log_temperature
        ratio = config.target_entropy_ratio
        alpha_loss, alpha_grad = jax.value_and_grad(auto_temperature_loss)(
            log_alpha, logits, target_entropy_ratio=ratio
        )
        alpha_step, alpha_opt_state = alpha_optimizer.update(
            alpha_grad, learner.temperature_opt_state, log_alpha
        )
        log_alpha = optax.apply_updates(log_alpha, alpha_step)
        count = learner.updates + 1
        due = count % config.target_update_every == 0
        moved = optax.incremental_update(
            critic_params(params), learner.target_params, config.target_update_rate
        )
        target = jax.tree.map(
            lambda new, old: jnp.where(due, new, old), moved, learner.target_params
        )
        metrics.update(
            loss=metrics["critic_loss"] + metrics["actor_loss"],
            temperature_loss=alpha_loss,
            temperature=jnp.exp(log_alpha),
            entropy=jnp.mean(jax.vmap(policy_entropy)(logits)),
            target_entropy=jnp.asarray(ratio * math.log(logits.shape[-1]), jnp.float32),
            grad_norm=optax.tree.norm(grads),
        )
        state = SACLearnerState(
            params, target, opt_state, TemperatureState(log_alpha), alpha_opt_state, count
        )
        return state, metrics

    return learner_update
