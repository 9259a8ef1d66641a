"""A numpy ring buffer of vector-env transitions that samples n-step windows.

The buffer keeps one time row per vector-env step: row i holds, for each of
the N environments, the observation s_i, the action a_i, the reward r_i and
how the episode ended with that transition, if it did. Next observations are
not stored twice: s_{i+1} is the next row of the same environment. After a
*termination* that row is the next episode's first state, which the zero
discount ignores. After a *truncation* (a time limit) the transition must
still bootstrap, from the episode's last observation, which the vector env
hands over as `final_obs`; those observations go to a small side ring
(`final_obs`, one slot per truncation) and the row remembers its slot.

A sampled window of n transitions starting at row i is rows i … i + n of one
environment, and only windows whose last row has been written and not yet
overwritten are drawn. In the window, `next_obs[:, j]` is the final
observation wherever transition j was truncated, so a learner bootstraps
there (`softeq.core.bootstrap_truncations`) and cuts the rest of the window.

The side ring has `max(2N, rows·N // 256)` slots: enough for every truncation
still in the buffer as long as episodes that hit their time limit last at
least 256 steps on average (CartPole: 500, Atari: 27,000). If a slot is
reused while the row that points at it is still stored, that row's
truncation is sampled as a termination (no bootstrap) and
`ReplayBuffer.lost_truncations` counts it.

`ReplayBuffer` is a NamedTuple of numpy arrays, so it is checkpointed with
the agent state; `replay_add` writes into its arrays in place and returns the
record with the advanced counters.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

#: One side-ring slot per this many stored transitions (at least 2N slots).
TRANSITIONS_PER_TRUNCATION_SLOT = 256


class ReplayBuffer(NamedTuple):
    """Ring buffer of `rows` time rows × N environments, with a side ring of S final observations.

    obs: `[rows, N, *obs_shape]` s_i.
    actions: `[rows, N]` int32 a_i.
    rewards: `[rows, N]` float32 r_i.
    terminated: `[rows, N]` bool, the transition reached a terminal state.
    truncated: `[rows, N]` bool, the episode was cut by a time limit here.
    final_slot: `[rows, N]` int64 slot of the final observation of a truncated
      transition, −1 elsewhere.
    final_obs: `[S, *obs_shape]` final observations of truncated episodes.
    final_owner: `[S]` int64 `row_count · N + env` of the transition that owns
      each slot (−1: free), where `row_count` is the absolute row number.
    final_count: `[]` int64 final observations written so far.
    lost_truncations: `[]` int64 truncations whose slot was reused while their
      row was still stored (sampled as terminations).
    count: `[]` int64 rows written so far (the next row goes to `count % rows`).
    """

    obs: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    final_slot: np.ndarray
    final_obs: np.ndarray
    final_owner: np.ndarray
    final_count: np.ndarray
    lost_truncations: np.ndarray
    count: np.ndarray


class NStepBatch(NamedTuple):
    """n-step windows sampled from a `ReplayBuffer`.

    obs: `[B, *obs_shape]` s_i.
    actions: `[B]` int32 a_i.
    rewards: `[B, n]` float32 r_i … r_{i+n-1}.
    terminated: `[B, n]` float32 1.0 where the transition reached a terminal state.
    truncated: `[B, n]` float32 1.0 where the episode was cut by a time limit
      (and did not also terminate).
    next_obs: `[B, n, *obs_shape]` s_{i+1} … s_{i+n}; where transition j was
      truncated, `next_obs[:, j]` is the ended episode's final observation.
    """

    obs: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    next_obs: np.ndarray


def _check_int(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"`{name}` must be an integer >= {minimum}, got {value!r}.")
    return int(value)


def side_ring_slots(rows: int, num_envs: int) -> int:
    """Slots of the side ring of final observations for `rows` rows of `num_envs` envs."""
    return max(2 * num_envs, rows * num_envs // TRANSITIONS_PER_TRUNCATION_SLOT)


def replay_init(
    *, capacity: int, num_envs: int, observation_shape, observation_dtype
) -> ReplayBuffer:
    """An empty buffer holding at least `capacity` transitions (rounded up to whole rows)."""
    capacity = _check_int("capacity", capacity, 2)
    num_envs = _check_int("num_envs", num_envs, 1)
    rows = max(2, -(-capacity // num_envs))
    slots = side_ring_slots(rows, num_envs)
    zero = np.zeros((), np.int64)
    return ReplayBuffer(
        obs=np.zeros((rows, num_envs, *observation_shape), observation_dtype),
        actions=np.zeros((rows, num_envs), np.int32),
        rewards=np.zeros((rows, num_envs), np.float32),
        terminated=np.zeros((rows, num_envs), bool),
        truncated=np.zeros((rows, num_envs), bool),
        final_slot=np.full((rows, num_envs), -1, np.int64),
        final_obs=np.zeros((slots, *observation_shape), observation_dtype),
        final_owner=np.full((slots,), -1, np.int64),
        final_count=zero,
        lost_truncations=zero.copy(),
        count=zero.copy(),
    )


def replay_add(
    buffer: ReplayBuffer, obs, actions, rewards, terminated, truncated, final_obs
) -> ReplayBuffer:
    """Writes one row of N transitions (in place) and returns the advanced record.

    Args:
      buffer: the buffer.
      obs: `[N, *obs_shape]` states the actions were taken in.
      actions: `[N]` actions.
      rewards: `[N]` rewards.
      terminated: `[N]` bool, terminal transitions.
      truncated: `[N]` bool, transitions cut by a time limit.
      final_obs: `[N, *obs_shape]` last observation of each episode that ended
        (the vector env's `StepResult.final_obs`); read where truncated.
    """
    rows, num_envs = buffer.actions.shape
    obs, final_obs = np.asarray(obs), np.asarray(final_obs)
    for name, x in (("obs", obs), ("final_obs", final_obs)):
        if x.shape != buffer.obs.shape[1:]:
            raise ValueError(f"`{name}` must have shape {buffer.obs.shape[1:]}, got {x.shape}.")
    flags = {"actions": actions, "rewards": rewards, "terminated": terminated}
    flags["truncated"] = truncated
    for name, x in flags.items():
        if np.shape(x) != (num_envs,):
            raise ValueError(f"`{name}` must have shape ({num_envs},), got {np.shape(x)}.")
    count = int(buffer.count)
    row = count % rows
    terminated = np.asarray(terminated, bool)
    truncated = np.asarray(truncated, bool) & ~terminated  # a termination wins
    buffer.obs[row] = obs
    buffer.actions[row] = actions
    buffer.rewards[row] = rewards
    buffer.terminated[row] = terminated
    buffer.truncated[row] = truncated
    buffer.final_slot[row] = -1
    slots = buffer.final_owner.shape[0]
    written, lost = int(buffer.final_count), int(buffer.lost_truncations)
    for env in np.flatnonzero(truncated):
        slot = written % slots
        owner = int(buffer.final_owner[slot])
        if owner >= 0 and owner // num_envs > count - rows:  # its row is still stored
            lost += 1
        buffer.final_obs[slot] = final_obs[env]
        buffer.final_owner[slot] = count * num_envs + env
        buffer.final_slot[row, env] = slot
        written += 1
    return buffer._replace(
        count=np.asarray(count + 1, np.int64),
        final_count=np.asarray(written, np.int64),
        lost_truncations=np.asarray(lost, np.int64),
    )


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
    absolute = start[:, None] + np.arange(n + 1)[None, :]  # [B, n + 1] absolute row numbers
    window = absolute % rows
    env_col = env[:, None]
    steps = window[:, :-1]
    terminated = buffer.terminated[steps, env_col]
    truncated = buffer.truncated[steps, env_col]
    next_obs = buffer.obs[window[:, 1:], env_col]
    if truncated.any():
        slot = buffer.final_slot[steps, env_col]
        owner = absolute[:, :-1] * num_envs + env_col
        kept = truncated & (slot >= 0) & (buffer.final_owner[np.maximum(slot, 0)] == owner)
        next_obs[kept] = buffer.final_obs[slot[kept]]
        # a truncation whose final observation was overwritten cannot bootstrap: cut it.
        terminated = terminated | (truncated & ~kept)
        truncated = kept
    return NStepBatch(
        obs=buffer.obs[window[:, 0], env],
        actions=buffer.actions[window[:, 0], env],
        rewards=buffer.rewards[steps, env_col],
        terminated=terminated.astype(np.float32),
        truncated=truncated.astype(np.float32),
        next_obs=next_obs,
    )
