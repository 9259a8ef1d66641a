"""A numpy ring buffer of vector-env transitions that samples n-step windows.

The buffer keeps one time row per vector-env step: row i holds, for each of
the N environments, the observation s_i, the action a_i, the reward r_i and
whether the episode ended with that transition. Next observations are not
stored twice: s_{i+1} is the next row of the same environment (after an
episode end that row is the next episode's first state, which the zero
discount then ignores). A sampled window of n transitions starting at row i
is therefore rows i … i + n of one environment, and only windows whose last
row has been written and not yet overwritten are drawn.

`ReplayBuffer` is a NamedTuple of numpy arrays, so it pickles with the agent
state; `replay_add` writes into its arrays in place and returns the record
with the advanced counter.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class ReplayBuffer(NamedTuple):
    """Ring buffer of `rows` time rows × N environments.

    obs: `[rows, N, *obs_shape]` s_i.
    actions: `[rows, N]` int32 a_i.
    rewards: `[rows, N]` float32 r_i.
    dones: `[rows, N]` bool, True when the transition ended the episode
      (terminated or truncated).
    count: `[]` int64 rows written so far (the next row goes to `count % rows`).
    """

    obs: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    dones: np.ndarray
    count: np.ndarray


class NStepBatch(NamedTuple):
    """n-step windows sampled from a `ReplayBuffer`.

    obs: `[B, *obs_shape]` s_i.
    actions: `[B]` int32 a_i.
    rewards: `[B, n]` float32 r_i … r_{i+n-1}.
    dones: `[B, n]` float32 1.0 where the transition ended the episode.
    next_obs: `[B, n, *obs_shape]` s_{i+1} … s_{i+n}.
    """

    obs: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    dones: np.ndarray
    next_obs: np.ndarray


def _check_int(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"`{name}` must be an integer >= {minimum}, got {value!r}.")
    return int(value)


def replay_init(
    *, capacity: int, num_envs: int, observation_shape, observation_dtype
) -> ReplayBuffer:
    """An empty buffer holding at least `capacity` transitions (rounded up to whole rows)."""
    capacity = _check_int("capacity", capacity, 2)
    num_envs = _check_int("num_envs", num_envs, 1)
    rows = max(2, -(-capacity // num_envs))
    return ReplayBuffer(
        obs=np.zeros((rows, num_envs, *observation_shape), observation_dtype),
        actions=np.zeros((rows, num_envs), np.int32),
        rewards=np.zeros((rows, num_envs), np.float32),
        dones=np.zeros((rows, num_envs), bool),
        count=np.zeros((), np.int64),
    )


def replay_add(buffer: ReplayBuffer, obs, actions, rewards, dones) -> ReplayBuffer:
    """Writes one row of N transitions (in place) and returns the advanced record.

    Args:
      buffer: the buffer.
      obs: `[N, *obs_shape]` states the actions were taken in.
      actions: `[N]` actions.
      rewards: `[N]` rewards.
      dones: `[N]` bool episode ends (terminated or truncated).
    """
    rows, num_envs = buffer.actions.shape
    obs = np.asarray(obs)
    if obs.shape != buffer.obs.shape[1:]:
        raise ValueError(f"`obs` must have shape {buffer.obs.shape[1:]}, got {obs.shape}.")
    for name, x in (("actions", actions), ("rewards", rewards), ("dones", dones)):
        if np.shape(x) != (num_envs,):
            raise ValueError(f"`{name}` must have shape ({num_envs},), got {np.shape(x)}.")
    row = int(buffer.count) % rows
    buffer.obs[row] = obs
    buffer.actions[row] = actions
    buffer.rewards[row] = rewards
    buffer.dones[row] = dones
    return buffer._replace(count=np.asarray(int(buffer.count) + 1, np.int64))


def replay_size(buffer: ReplayBuffer) -> int:
    """Number of transitions currently held (rows × N)."""
    rows, num_envs = buffer.actions.shape
    return min(int(buffer.count), rows) * num_envs


def replay_can_sample(buffer: ReplayBuffer, *, n: int) -> bool:
    """Whether at least one complete n-step window is stored."""
    n = _check_int("n", n, 1)
    rows = buffer.actions.shape[0]
    return n < rows and int(buffer.count) > n


def replay_sample(
    buffer: ReplayBuffer, rng: np.random.Generator, *, batch_size: int, n: int
) -> NStepBatch:
    """Draws `batch_size` n-step windows uniformly over (start row, environment).

    A window starting at row i needs rows i … i + n: i + n must be written
    (i + n < count) and row i not yet overwritten (i ≥ count − rows).
    """
    batch_size = _check_int("batch_size", batch_size, 1)
    n = _check_int("n", n, 1)
    if not replay_can_sample(buffer, n=n):
        raise ValueError(
            f"the buffer holds no complete {n}-step window yet "
            f"({int(buffer.count)} rows written, {buffer.actions.shape[0]} rows capacity)."
        )
    rows, num_envs = buffer.actions.shape
    count = int(buffer.count)
    first = max(0, count - rows)
    last = count - 1 - n
    start = rng.integers(first, last + 1, size=batch_size)
    env = rng.integers(0, num_envs, size=batch_size)
    window = (start[:, None] + np.arange(n + 1)[None, :]) % rows  # [B, n + 1]
    env_col = env[:, None]
    return NStepBatch(
        obs=buffer.obs[window[:, 0], env],
        actions=buffer.actions[window[:, 0], env],
        rewards=buffer.rewards[window[:, :-1], env_col],
        dones=buffer.dones[window[:, :-1], env_col].astype(np.float32),
        next_obs=buffer.obs[window[:, 1:], env_col],
    )
