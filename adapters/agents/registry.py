"""The algorithm registry: each agent is named, configured and built in exactly one place.

An `Algorithm` entry says everything the rest of softeq needs to know about
an agent without switching on its name: its config class, its default
hyperparameters and number of parallel environments per environment family,
whether its learner consumes on-policy rollouts or replayed n-step windows
(which decides how both drivers feed it), whether it has a learned stochastic
policy to sample at evaluation, its network, its host-loop agent and its
pure learner update. Adding an algorithm means one module with its loss and
learner update, plus one `register(Algorithm(...))` call at the bottom of
this file.

Environment families (`env_family`): "control" (CartPole-v1, Acrobot-v1),
"minatar" (gymnax's MinAtar games) and "atari" (`ALE/<Game>-v5`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

import haiku as hk
import optax

from softeq.adapters.agents import actor_critic, dqn, mdqn, replay_agent, sac_discrete
from softeq.adapters.agents.config import (
    CONTROL_ACTOR_CRITIC,
    CONTROL_DQN,
    CONTROL_SAC_DISCRETE,
    MINATAR_ACTOR_CRITIC,
    MINATAR_DQN,
    MINATAR_SAC_DISCRETE,
    A2CConfig,
    DQNConfig,
    MunchausenDQNConfig,
    SACDiscreteConfig,
    SoftQConfig,
)
from softeq.core import DQN_TARGET_MODES

ENV_FAMILIES: tuple[str, ...] = ("control", "minatar", "atari")


def env_family(env_id: str) -> str:
    """ "atari" for ALE ids, "minatar" for gymnax's MinAtar games, else "control"."""
    if not isinstance(env_id, str) or not env_id:
        raise ValueError(f"`env_id` must be a non-empty string, got {env_id!r}.")
    if env_id.startswith("ALE/") or "NoFrameskip" in env_id:
        return "atari"
    if env_id.endswith("-MinAtar"):
        return "minatar"
    return "control"


@dataclasses.dataclass(frozen=True, kw_only=True)
class Algorithm:
    """One agent, as the drivers, the CLI and the run records see it.

    Attributes:
      name: the name users type (`--algo NAME`).
      summary: one line for `--help` and the docs.
      config_class: the frozen hyperparameter dataclass.
      defaults: env family → field overrides on top of the class defaults.
      num_envs: env family → number of parallel environments the defaults assume.
      on_policy: True: the learner consumes fixed-length rollouts (`Rollout`);
        False: it samples n-step windows from a replay buffer (`NStepBatch`).
      stochastic_policy: the agent acts from a learned stochastic policy
        (evaluation may sample it); False for ε-greedy Q-learners.
      make_network: `(num_actions, *, torso, config) -> hk.Transformed`.
      make_optimizer: `(config, *, num_envs) -> optax.GradientTransformation`.
      make_learner_update: `(apply, optimizer, *, config) -> update`, the pure
        learner step `(learner_state, batch) -> (learner_state, metrics)`.
      make_agent: `(config, *, network, num_actions, observation_shape,
        observation_dtype, num_envs, devices) -> agent` for the host loop.
      reference: where the method comes from.
      policy_scores: `(apply, params, obs) -> [N, A]`, the scores whose argmax
        is the greedy action (Q-values, or policy logits) and, for a
        `stochastic_policy`, whose softmax is the learned policy.
      init_learner: replay learners: `(params, optimizer, *, config) -> learner
        state` of freshly initialised network parameters; the state has a
        `params` field holding the network's parameters.
      act: replay learners: `(apply, params, key, obs [N, …], env_steps, *,
        config, num_actions) -> actions [N] int32`, the behaviour policy
        (traceable; `env_steps` is the `[]` int count of transitions so far).
      behaviour_metrics: replay learners, optional: `(env_steps, *, config) ->
        dict of [] arrays` logged beside the learner's metrics (e.g. ε).
      sweepable: float fields of the config that the jitted program reads only
        as arrays inside the learner update, so that they may differ between
        the lanes of one program (`softeq.adapters.sweep`).
      sweepable_choices: `{field: choices}`, string fields that the learner
        update reads only to pick one of `choices` (computations of the same
        shapes), so that they too may differ between lanes: a lane reads the
        index of its value in `choices` as a traced int32 (`lax.switch`).
    """

    name: str
    summary: str
    config_class: type
    defaults: Mapping[str, Mapping[str, Any]]
    num_envs: Mapping[str, int]
    on_policy: bool
    stochastic_policy: bool
    make_network: Callable[..., hk.Transformed]
    make_optimizer: Callable[..., optax.GradientTransformation]
    make_learner_update: Callable[..., Callable]
    make_agent: Callable[..., Any]
    reference: str
    policy_scores: Callable[..., Any]
    init_learner: Callable[..., Any] | None = None
    act: Callable[..., Any] | None = None
    behaviour_metrics: Callable[..., Any] | None = None
    sweepable: tuple[str, ...] = ()
    sweepable_choices: Mapping[str, tuple[str, ...]] = dataclasses.field(
        default_factory=lambda: MappingProxyType({})
    )

    def default_config(self, env_id: str, **overrides: Any) -> Any:
        """The config for `env_id`'s family, with `overrides` applied (validated)."""
        fields = dict(self.defaults.get(env_family(env_id), {}))
        names = {f.name for f in dataclasses.fields(self.config_class)}
        unknown = sorted(set(overrides) - names)
        if unknown:
            raise ValueError(
                f"unknown field(s) {unknown} for {self.config_class.__name__}; "
                f"allowed: {sorted(names)}."
            )
        fields.update(overrides)
        return self.config_class(**fields)

    def default_num_envs(self, env_id: str) -> int:
        """How many parallel environments the defaults of `env_id`'s family assume."""
        return int(self.num_envs[env_family(env_id)])


_REGISTRY: dict[str, Algorithm] = {}


def register(algorithm: Algorithm) -> Algorithm:
    """Adds `algorithm` under its name; a second entry with the same name is an error."""
    if algorithm.name in _REGISTRY:
        raise ValueError(f"an algorithm named {algorithm.name!r} is already registered.")
    missing = sorted(set(ENV_FAMILIES) - set(algorithm.num_envs))
    if missing:
        raise ValueError(f"`num_envs` of {algorithm.name!r} lacks the families {missing}.")
    fields = {f.name for f in dataclasses.fields(algorithm.config_class)}
    unknown = sorted((set(algorithm.sweepable) | set(algorithm.sweepable_choices)) - fields)
    if unknown:
        raise ValueError(f"`sweepable` of {algorithm.name!r} names unknown fields {unknown}.")
    if not algorithm.on_policy:
        lacking = [f for f in ("init_learner", "act") if getattr(algorithm, f) is None]
        if lacking:
            raise ValueError(f"replay learner {algorithm.name!r} needs {lacking}.")
    _REGISTRY[algorithm.name] = algorithm
    return algorithm


def algorithm_names() -> tuple[str, ...]:
    """Every registered name, in registration order."""
    return tuple(_REGISTRY)


def get_algorithm(name: str) -> Algorithm:
    """The entry named `name`; a `ValueError` naming the allowed names otherwise."""
    if not isinstance(name, str) or name not in _REGISTRY:
        allowed = ", ".join(repr(n) for n in _REGISTRY)
        raise ValueError(f"`algo` must be one of {allowed}; got {name!r}.")
    return _REGISTRY[name]


def config_for(algo: str) -> type:
    """The config class of an algorithm."""
    return get_algorithm(algo).config_class


def default_config(algo: str, env_id: str, **overrides: Any) -> Any:
    """Per-environment-family default hyperparameters, with optional field overrides.

    Atari ids get the paper's settings (Baselines' A2C defaults; DQN with Adam);
    MinAtar and classic control get settings tuned for them (see
    `softeq.adapters.agents.config`).

    Example:
      >>> default_config("a2c", "ALE/Pong-v5").learning_rate
      0.0007
      >>> default_config("soft-q", "CartPole-v1", value_weight=100.0).value_weight
      100.0
    """
    return get_algorithm(algo).default_config(env_id, **overrides)


def default_num_envs(algo: str, env_id: str) -> int:
    """The number of parallel environments the defaults of `default_config` assume."""
    return get_algorithm(algo).default_num_envs(env_id)


# --------------------------------------------------------------------------------------
# The entries.
# --------------------------------------------------------------------------------------

_A2C = register(
    Algorithm(
        name="a2c",
        summary="synchronous advantage actor-critic with a naive or proper entropy bonus (§6.1)",
        config_class=A2CConfig,
        defaults=MappingProxyType(
            {"control": CONTROL_ACTOR_CRITIC, "minatar": MINATAR_ACTOR_CRITIC, "atari": {}}
        ),
        num_envs=MappingProxyType({"control": 32, "minatar": 64, "atari": 16}),
        on_policy=True,
        stochastic_policy=True,
        make_network=actor_critic.make_network,
        make_optimizer=actor_critic.make_actor_critic_optimizer,
        make_learner_update=actor_critic.learner_update_for(actor_critic.a2c_gradients),
        make_agent=actor_critic.agent_for(actor_critic.a2c_gradients),
        reference="Mnih et al. 2016 (A3C), synchronous form; arXiv:1704.06440 §6.1",
        sweepable=("temperature", "value_weight"),
        policy_scores=actor_critic.policy_logits,
    )
)

# The soft Q-learner of §6.3 is A2C with its gradients taken through Q = V + τ log π:
# the same network, optimiser, defaults and rollouts.
register(
    dataclasses.replace(
        _A2C,
        name="soft-q",
        summary="A2C-matched soft Q-learning [E16]: Q = V + τ log π, same updates as A2C (§6.3)",
        config_class=SoftQConfig,
        make_learner_update=actor_critic.learner_update_for(actor_critic.soft_q_gradients),
        make_agent=actor_critic.agent_for(actor_critic.soft_q_gradients),
        reference="arXiv:1704.06440 §6.3",
    )
)

_DQN = register(
    Algorithm(
        name="dqn",
        summary="DQN with a hard, soft-KL or soft-entropy n-step target (§6.2)",
        config_class=DQNConfig,
        defaults=MappingProxyType({"control": CONTROL_DQN, "minatar": MINATAR_DQN, "atari": {}}),
        num_envs=MappingProxyType({"control": 4, "minatar": 16, "atari": 8}),
        on_policy=False,
        stochastic_policy=False,
        make_network=dqn.make_network,
        make_optimizer=dqn.make_dqn_optimizer,
        make_learner_update=dqn.make_learner_update,
        make_agent=dqn.DQNAgent,
        reference="Mnih et al. 2015; arXiv:1704.06440 §6.2",
        sweepable=("temperature",),
        sweepable_choices=MappingProxyType({"target": DQN_TARGET_MODES}),
        policy_scores=dqn.q_values,
        init_learner=dqn.init_learner,
        act=dqn.epsilon_greedy_act,
        behaviour_metrics=dqn.epsilon_metrics,
    )
)

# Munchausen DQN is DQN with another target: the same network, replay and ε-greedy acting.
register(
    dataclasses.replace(
        _DQN,
        name="mdqn",
        summary="Munchausen DQN [M1]: DQN whose target adds ατ·clip(ln π(a|s), l0, 0)",
        config_class=MunchausenDQNConfig,
        make_learner_update=mdqn.make_learner_update,
        make_agent=replay_agent.agent_for("mdqn"),
        reference="Vieillard, Pietquin & Geist 2020, arXiv:2007.14430",
        sweepable=("temperature",),
        sweepable_choices=MappingProxyType({}),
    )
)

register(
    Algorithm(
        name="sac-discrete",
        summary="soft actor-critic for discrete actions [S1]–[S2]: twin critics, exact actor "
        "loss, automatic temperature toward ρ·ln|A|",
        config_class=SACDiscreteConfig,
        defaults=MappingProxyType(
            {"control": CONTROL_SAC_DISCRETE, "minatar": MINATAR_SAC_DISCRETE, "atari": {}}
        ),
        num_envs=MappingProxyType({"control": 4, "minatar": 16, "atari": 8}),
        on_policy=False,
        stochastic_policy=True,
        make_network=sac_discrete.make_network,
        make_optimizer=sac_discrete.make_optimizer,
        make_learner_update=sac_discrete.make_learner_update,
        make_agent=replay_agent.agent_for("sac-discrete"),
        reference="Christodoulou 2019, arXiv:1910.07207; Haarnoja et al. 2018, arXiv:1812.05905",
        policy_scores=sac_discrete.actor_logits,
        init_learner=sac_discrete.init_learner,
        act=sac_discrete.sample_act,
    )
)
