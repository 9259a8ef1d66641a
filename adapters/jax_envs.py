"""JAX-native vector environments (gymnax) behind the learner-facing step contract.

`make_jax_env(env_id)` wraps one gymnax environment — CartPole-v1, Acrobot-v1
or one of the five MinAtar games as gymnax names them (`Asterix-MinAtar`,
`Breakout-MinAtar`, `Freeway-MinAtar`, `Seaquest-MinAtar`,
`SpaceInvaders-MinAtar`) — into a batch of N copies whose `reset` and `step`
are pure functions of explicit state, so a whole training run can be traced
into one XLA program, `vmap`ped over seeds and sharded over devices.

The step contract is the one of `softeq.adapters.envs.StepResult`, with
device arrays:

* `obs` is the observation the next action is chosen from: where an episode
  ended this step, the env has already been reset and `obs` is the next
  episode's first observation; the ended episode's last observation is
  `final_obs` (equal to `obs` elsewhere).
* `terminated` — the episode reached a terminal state: no bootstrap.
* `truncated` — the episode hit its time limit (gymnax's
  `max_steps_in_episode`: 500 steps for CartPole and Acrobot, 1000–2500 for
  the MinAtar games) without also terminating: not terminal, the learner
  bootstraps from `final_obs` (`softeq.core.bootstrap_truncations`). gymnax
  1.0.1 hands both flags over separately; a step that does both counts as a
  termination only.
* `episode_returns` / `episode_lengths` — float32, NaN except where an episode
  ended this step, where they hold its raw return and its number of steps.

Observations: CartPole `[4]` and Acrobot `[6]` float32 vectors; MinAtar
`[10, 10, C]` channel-last binary images, handed over as uint8 0/1 (exactly
gymnax's 0.0/1.0 floats, four times smaller in a replay buffer;
`softeq.adapters.networks.minatar_torso` casts them back).

Randomness: `reset(key, num_envs)` splits `key` over the copies; `step`
splits its `key` over the copies, and gymnax splits each copy's key again
between the transition and the reset it may need. Same keys, same actions:
same results.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

CONTROL_IDS: tuple[str, ...] = ("CartPole-v1", "Acrobot-v1")
MINATAR_IDS: tuple[str, ...] = (
    "Asterix-MinAtar",
    "Breakout-MinAtar",
    "Freeway-MinAtar",
    "Seaquest-MinAtar",
    "SpaceInvaders-MinAtar",
)
#: Every env id `make_jax_env` accepts.
JAX_ENV_IDS: tuple[str, ...] = CONTROL_IDS + MINATAR_IDS


def is_jax_env(env_id: str) -> bool:
    """Whether `env_id` names an environment that runs inside a jitted program."""
    return env_id in JAX_ENV_IDS


def is_minatar(env_id: str) -> bool:
    """Whether `env_id` names one of gymnax's MinAtar games."""
    return env_id in MINATAR_IDS


class JaxEnvState(NamedTuple):
    """The state of N environment copies; every leaf has leading axis N.

    env: gymnax's state pytree of each copy.
    episode_return: `[N]` float32 raw return of the running episode so far.
    episode_length: `[N]` int32 steps of the running episode so far.
    """

    env: Any
    episode_return: jax.Array
    episode_length: jax.Array


class JaxStepResult(NamedTuple):
    """What `JaxVectorEnv.step` returns; N is the number of copies.

    obs: `[N, *observation_shape]` next observations (the new episode's first
      observation where an episode ended this step).
    reward: `[N]` float32 raw rewards.
    terminated: `[N]` bool terminal transitions.
    truncated: `[N]` bool transitions cut by the time limit (and not terminal).
    final_obs: `[N, *observation_shape]` the last observation of each episode
      that ended this step; equal to `obs` elsewhere.
    episode_returns: `[N]` float32 return of each episode that ended this step,
      NaN elsewhere.
    episode_lengths: `[N]` float32 length of each episode that ended this step,
      NaN elsewhere.
    """

    obs: jax.Array
    reward: jax.Array
    terminated: jax.Array
    truncated: jax.Array
    final_obs: jax.Array
    episode_returns: jax.Array
    episode_lengths: jax.Array


class JaxVectorEnv:
    """N copies of one gymnax environment as pure `reset` / `step` functions.

    Do not construct directly; use `make_jax_env`.

    Attributes:
      env_id: the id it was made from.
      num_actions: size of the discrete action set.
      observation_shape: shape of one observation.
      observation_dtype: numpy dtype of observations (float32 or uint8).
      max_episode_steps: the time limit, in agent steps.
    """

    def __init__(self, env_id: str):
        import gymnax

        self.env_id = env_id
        self._env, self._params = gymnax.make(env_id)
        self.num_actions = int(self._env.num_actions)
        self.max_episode_steps = int(self._params.max_steps_in_episode)
        self._binary_obs = is_minatar(env_id)
        obs, _ = jax.eval_shape(self._env.reset, jax.random.key(0), self._params)
        self.observation_shape = tuple(int(d) for d in obs.shape)
        self.observation_dtype = np.dtype(np.uint8 if self._binary_obs else np.float32)

    def __repr__(self) -> str:
        return (
            f"JaxVectorEnv(env_id={self.env_id!r}, observation_shape={self.observation_shape}, "
            f"num_actions={self.num_actions})"
        )

    def _cast(self, obs: jax.Array) -> jax.Array:
        return obs.astype(self.observation_dtype)

    def reset(self, key: jax.Array, num_envs: int) -> tuple[JaxEnvState, jax.Array]:
        """Fresh episodes in `num_envs` copies.

        Args:
          key: a PRNG key (typed or raw `uint32[2]`).
          num_envs: N, a Python int (it fixes array shapes).

        Returns:
          `(state, obs [N, *observation_shape])`.
        """
        if isinstance(num_envs, bool) or not isinstance(num_envs, int | np.integer):
            raise ValueError(f"`num_envs` must be an integer >= 1, got {num_envs!r}.")
        if num_envs < 1:
            raise ValueError(f"`num_envs` must be an integer >= 1, got {num_envs!r}.")
        keys = jax.random.split(key, int(num_envs))
        obs, env_state = jax.vmap(self._env.reset, in_axes=(0, None))(keys, self._params)
        state = JaxEnvState(
            env=env_state,
            episode_return=jnp.zeros((num_envs,), jnp.float32),
            episode_length=jnp.zeros((num_envs,), jnp.int32),
        )
        return state, self._cast(obs)

    def step(
        self, key: jax.Array, state: JaxEnvState, actions: jax.Array
    ) -> tuple[JaxEnvState, JaxStepResult]:
        """One step of every copy, resetting the copies whose episode ended.

        Args:
          key: a PRNG key for this step.
          state: the copies' state, leading axis N.
          actions: `[N]` integer actions in `[0, num_actions)`.

        Returns:
          `(state, JaxStepResult)`.
        """
        num_envs = state.episode_return.shape[0]
        if actions.shape != (num_envs,):
            raise ValueError(f"`actions` must have shape ({num_envs},), got {actions.shape}.")
        keys = jax.random.split(key, num_envs)
        obs, env_state, reward, terminated, truncated, info = jax.vmap(
            self._env.step, in_axes=(0, 0, 0, None)
        )(keys, state.env, actions, self._params)
        terminated = jnp.asarray(terminated, bool)
        truncated = jnp.logical_and(jnp.asarray(truncated, bool), jnp.logical_not(terminated))
        ended = jnp.logical_or(terminated, truncated)
        reward = jnp.asarray(reward, jnp.float32)
        episode_return = state.episode_return + reward
        episode_length = state.episode_length + 1
        nan = jnp.float32(jnp.nan)
        result = JaxStepResult(
            obs=self._cast(obs),
            reward=reward,
            terminated=terminated,
            truncated=truncated,
            final_obs=self._cast(info["final_observation"]),
            episode_returns=jnp.where(ended, episode_return, nan),
            episode_lengths=jnp.where(ended, episode_length.astype(jnp.float32), nan),
        )
        state = JaxEnvState(
            env=env_state,
            episode_return=jnp.where(ended, 0.0, episode_return),
            episode_length=jnp.where(ended, 0, episode_length),
        )
        return state, result


def make_jax_env(env_id: str) -> JaxVectorEnv:
    """The JAX-native vector env for `env_id` (one of `JAX_ENV_IDS`).

    Example:
      >>> import jax
      >>> env = make_jax_env("CartPole-v1")
      >>> state, obs = env.reset(jax.random.key(0), 3)
      >>> state, step = env.step(jax.random.key(1), state, jax.numpy.zeros(3, int))
      >>> obs.shape, step.reward.tolist(), env.max_episode_steps
      ((3, 4), [1.0, 1.0, 1.0], 500)
    """
    if not isinstance(env_id, str) or env_id not in JAX_ENV_IDS:
        allowed = ", ".join(repr(i) for i in JAX_ENV_IDS)
        raise ValueError(f"`env_id` must be one of {allowed} (gymnax ids), got {env_id!r}.")
    return JaxVectorEnv(env_id)
