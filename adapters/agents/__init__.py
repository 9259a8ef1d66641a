"""Agents of paper §6: A2C (naive/proper entropy), A2C-matched soft Q-learning, (soft) DQN.

One entry point, `make_agent`, returns an object with the methods the training
loop drives (`init`, `act`, `act_greedy`, `observe`); all mutable state lives
in the `AgentState` NamedTuple those methods pass around, made of jax and
numpy arrays only, so that pickling it captures a run exactly. The learner
update of each agent is a jitted pure function built from `softeq.core`
losses and targets, data-parallel over `jax.local_devices()` (see
`softeq.adapters.parallel`); it is exposed as `agent.learner_update`.
"""

from __future__ import annotations

from collections.abc import Sequence

import haiku as hk
import jax
import numpy as np

from softeq.adapters.agents.actor_critic import (
    ActorCriticAgent,
    ActorCriticState,
    LearnerState,
    Rollout,
    a2c_batch_loss,
    actor_critic_gradients,
    soft_q_batch_loss,
)
from softeq.adapters.agents.config import (
    ALGORITHMS,
    A2CConfig,
    DQNConfig,
    SoftQConfig,
    config_for,
    default_config,
    default_num_envs,
)
from softeq.adapters.agents.dqn import DQNAgent, DQNLearnerState, DQNState, dqn_loss, dqn_targets

TORSOS = ("nature", "minatar", "mlp")

__all__ = [
    "ALGORITHMS",
    "TORSOS",
    "A2CConfig",
    "ActorCriticAgent",
    "ActorCriticState",
    "DQNAgent",
    "DQNConfig",
    "DQNLearnerState",
    "DQNState",
    "LearnerState",
    "Rollout",
    "SoftQConfig",
    "a2c_batch_loss",
    "actor_critic_gradients",
    "config_for",
    "default_config",
    "default_num_envs",
    "dqn_loss",
    "dqn_targets",
    "make_agent",
    "make_agent_for_env",
    "soft_q_batch_loss",
]


def _check_positive(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"`{name}` must be an integer >= 1, got {value!r}.")


def make_agent(
    algo: str,
    config,
    *,
    num_actions: int,
    observation_shape: Sequence[int],
    observation_dtype,
    num_envs: int,
    torso: str,
    network: hk.Transformed | None = None,
    devices: Sequence[jax.Device] | None = None,
) -> ActorCriticAgent | DQNAgent:
    """Builds the agent for `algo` ("a2c", "soft-q" or "dqn").

    Args:
      algo: which agent.
      config: an instance of `config_for(algo)`.
      num_actions: size of the discrete action set.
      observation_shape: shape of one observation.
      observation_dtype: dtype of observations (uint8 frames, float32 vectors).
      num_envs: number of parallel environments the agent acts in.
      torso: "nature" (Atari CNN), "minatar" (MinAtar images) or "mlp" (vectors).
      network: a haiku network to use instead of `softeq.adapters.networks`'
        (an actor-critic `(logits [B, A], values [B])` for a2c/soft-q, a
        Q-network `q [B, A]` for dqn).
      devices: devices for the data-parallel learner; `jax.local_devices()` when None.

    Returns:
      an agent with `init`, `act`, `act_greedy`, `observe` and `learner_update`.
    """
    cls = config_for(algo)
    if not isinstance(config, cls):
        raise TypeError(
            f"`config` for algo {algo!r} must be a {cls.__name__}, got {type(config).__name__}."
        )
    _check_positive("num_actions", num_actions)
    _check_positive("num_envs", num_envs)
    if torso not in TORSOS:
        raise ValueError(f"`torso` must be one of {TORSOS}; got {torso!r}.")
    shape = tuple(int(s) for s in observation_shape)
    common_args = dict(
        num_actions=int(num_actions),
        observation_shape=shape,
        observation_dtype=observation_dtype,
        num_envs=int(num_envs),
        devices=devices,
    )
    if algo == "dqn":
        if network is None:
            from softeq.adapters.networks import make_q_network

            network = make_q_network(int(num_actions), torso=torso, dueling=config.dueling)
        return DQNAgent(config, network=network, **common_args)
    if network is None:
        from softeq.adapters.networks import make_actor_critic

        network = make_actor_critic(int(num_actions), torso=torso)
    return ActorCriticAgent(algo, config, network=network, **common_args)


def make_agent_for_env(algo: str, config, env, *, torso: str | None = None):
    """`make_agent` with the action set, observation spec and env count read off `env`.

    Args:
      algo: which agent.
      config: an instance of `config_for(algo)`.
      env: a vector env from `softeq.adapters.envs.make_vector_env`.
      torso: "nature" or "mlp"; None picks the one that fits the observations.
    """
    if torso is None:
        from softeq.adapters.networks import torso_for_observation

        torso = torso_for_observation(env.observation_shape)
    return make_agent(
        algo,
        config,
        num_actions=env.num_actions,
        observation_shape=env.observation_shape,
        observation_dtype=env.observation_dtype,
        num_envs=env.num_envs,
        torso=torso,
    )
