"""Agents: paper §6 (A2C, A2C-matched soft Q-learning, (soft) DQN) and beyond (M-DQN, SAC).

The paper's agents are A2C with a naive or proper entropy bonus, A2C-matched
soft Q-learning and DQN with hard or soft targets; beyond the paper come
Munchausen DQN (`mdqn`) and soft actor-critic for discrete actions with
automatic temperature (`sac-discrete`).

Every agent is one entry of the algorithm registry
(`softeq.adapters.agents.registry`): its config class, defaults per env
family, network, optimiser, pure learner update and host-loop agent. Both
training drivers build agents only through the registry, so no code outside
an algorithm's own module and its registry entry switches on its name.

`make_agent` returns the host-loop agent (for the replay learners beyond
the paper a `ReplayAgent` built from the entry's pure functions), an object
with the methods the host loop drives (`init`, `act`, `act_greedy`,
`act_eval`, `observe`); all mutable state lives in the NamedTuple those
methods pass around, made of jax and numpy arrays only, so a checkpoint of
its leaves captures a run exactly.
The learner update is a jitted pure function built from `softeq.core` losses
and targets, data-parallel over `jax.local_devices()` (see
`softeq.adapters.parallel`); it is exposed as `agent.learner_update`. The
jitted driver (`softeq.adapters.jit_driver`) calls the same pure learner
updates from inside its program.
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
    a2c_gradients,
    soft_q_batch_loss,
    soft_q_gradients,
)
from softeq.adapters.agents.config import (
    A2CConfig,
    DQNConfig,
    MunchausenDQNConfig,
    SACDiscreteConfig,
    SoftQConfig,
)
from softeq.adapters.agents.dqn import DQNAgent, DQNLearnerState, DQNState, dqn_loss, dqn_targets
from softeq.adapters.agents.registry import (
    ENV_FAMILIES,
    Algorithm,
    algorithm_names,
    config_for,
    default_config,
    default_num_envs,
    env_family,
    get_algorithm,
)
from softeq.adapters.agents.replay_agent import ReplayAgent, ReplayAgentState
from softeq.adapters.networks import TORSOS

#: The registered algorithm names, in registration order.
ALGORITHMS: tuple[str, ...] = algorithm_names()

__all__ = [
    "ALGORITHMS",
    "ENV_FAMILIES",
    "TORSOS",
    "A2CConfig",
    "ActorCriticAgent",
    "ActorCriticState",
    "Algorithm",
    "DQNAgent",
    "DQNConfig",
    "DQNLearnerState",
    "DQNState",
    "LearnerState",
    "MunchausenDQNConfig",
    "ReplayAgent",
    "ReplayAgentState",
    "Rollout",
    "SACDiscreteConfig",
    "SoftQConfig",
    "a2c_batch_loss",
    "a2c_gradients",
    "config_for",
    "default_config",
    "default_num_envs",
    "dqn_loss",
    "dqn_targets",
    "env_family",
    "get_algorithm",
    "make_agent",
    "make_agent_for_env",
    "soft_q_batch_loss",
    "soft_q_gradients",
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
):
    """Builds the host-loop agent of the registered algorithm `algo`.

    Args:
      algo: a registered name (`ALGORITHMS`).
      config: an instance of `config_for(algo)`.
      num_actions: size of the discrete action set.
      observation_shape: shape of one observation.
      observation_dtype: dtype of observations (uint8 frames, float32 vectors).
      num_envs: number of parallel environments the agent acts in.
      torso: "nature" (Atari CNN), "minatar" (MinAtar conv) or "mlp" (vectors).
      network: a haiku network to use instead of the registered one (an
        actor-critic `(logits [B, A], values [B])` for on-policy agents, a
        Q-network `q [B, A]` for dqn).
      devices: devices for the data-parallel learner; `jax.local_devices()` when None.

    Returns:
      an agent with `init`, `act`, `act_greedy`, `act_eval`, `observe` and `learner_update`.
    """
    algorithm = get_algorithm(algo)
    if not isinstance(config, algorithm.config_class):
        raise TypeError(
            f"`config` for algo {algo!r} must be a {algorithm.config_class.__name__}, "
            f"got {type(config).__name__}."
        )
    _check_positive("num_actions", num_actions)
    _check_positive("num_envs", num_envs)
    if torso not in TORSOS:
        raise ValueError(f"`torso` must be one of {TORSOS}; got {torso!r}.")
    if network is None:
        network = algorithm.make_network(int(num_actions), torso=torso, config=config)
    return algorithm.make_agent(
        config,
        network=network,
        num_actions=int(num_actions),
        observation_shape=tuple(int(s) for s in observation_shape),
        observation_dtype=observation_dtype,
        num_envs=int(num_envs),
        devices=devices,
    )


def make_agent_for_env(algo: str, config, env, *, torso: str | None = None):
    """`make_agent` with the action set, observation spec and env count read off `env`.

    Args:
      algo: a registered name.
      config: an instance of `config_for(algo)`.
      env: a vector env from `softeq.adapters.envs.make_vector_env`.
      torso: "nature", "minatar" or "mlp"; None picks the one that fits the observations.
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
