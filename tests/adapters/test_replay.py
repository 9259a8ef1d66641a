"""The n-step replay ring buffer: windows, episode ends, truncations, wrap-around, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from softeq.adapters.replay import (
    replay_add,
    replay_can_sample,
    replay_init,
    replay_sample,
    replay_size,
)

NUM_ENVS = 3


def _filled(rows_written: int, *, capacity: int, done_every: int = 0):
    """A buffer whose entries encode (row, env): obs = [row, env], reward = 10 row + env."""
    buffer = replay_init(
        capacity=capacity,
        num_envs=NUM_ENVS,
        observation_shape=(2,),
        observation_dtype=np.float32,
    )
    env = np.arange(NUM_ENVS)
    for row in range(rows_written):
        obs = np.stack([np.full(NUM_ENVS, row), env], axis=1).astype(np.float32)
        dones = np.full(NUM_ENVS, done_every > 0 and row % done_every == done_every - 1)
        no = np.zeros(NUM_ENVS, bool)
        buffer = replay_add(buffer, obs, row % 2 + env * 0, 10.0 * row + env, dones, no, obs)
    return buffer


def test_sampled_windows_are_consecutive_rows_of_one_env():
    buffer = _filled(20, capacity=3 * 8)  # 8 rows: the ring has wrapped twice
    n = 3
    batch = replay_sample(buffer, np.random.default_rng(0), batch_size=256, n=n)
    assert batch.obs.shape == (256, 2)
    assert batch.next_obs.shape == (256, n, 2)
    assert batch.rewards.shape == batch.terminated.shape == batch.truncated.shape == (256, n)
    start, env = batch.obs[:, 0].astype(int), batch.obs[:, 1].astype(int)
    # only rows that are still stored, and whose whole window has been written
    assert start.min() >= 20 - 8 and start.max() <= 20 - 1 - n
    assert set(np.unique(start)) == set(range(12, 17))  # every legal start is drawn
    offsets = np.arange(1, n + 1)
    np.testing.assert_array_equal(batch.next_obs[:, :, 0], start[:, None] + offsets)
    np.testing.assert_array_equal(batch.next_obs[:, :, 1], np.repeat(env[:, None], n, 1))
    np.testing.assert_array_equal(
        batch.rewards, 10.0 * (start[:, None] + offsets - 1) + env[:, None]
    )
    np.testing.assert_array_equal(batch.actions, start % 2)


def test_episode_end_flags_travel_with_their_transitions():
    buffer = _filled(30, capacity=3 * 30, done_every=4)  # rows 3, 7, 11, ... end episodes
    batch = replay_sample(buffer, np.random.default_rng(1), batch_size=200, n=4)
    start = batch.obs[:, 0].astype(int)
    expected = ((start[:, None] + np.arange(4)) % 4 == 3).astype(np.float32)
    np.testing.assert_array_equal(batch.terminated, expected)
    assert batch.terminated.dtype == batch.truncated.dtype == np.float32
    assert not batch.truncated.any()
    # every window of 4 consecutive rows contains exactly one episode end
    np.testing.assert_array_equal(batch.terminated.sum(axis=1), 1.0)


def _with_truncations(rows_written: int, *, capacity: int, truncate_every: int):
    """Like `_filled`, with env 0 truncated at every `truncate_every`-th row and env 1
    terminated there; the final observation of the truncated episode is -[row, env]."""
    buffer = replay_init(
        capacity=capacity, num_envs=NUM_ENVS, observation_shape=(2,), observation_dtype=np.float32
    )
    env = np.arange(NUM_ENVS)
    for row in range(rows_written):
        obs = np.stack([np.full(NUM_ENVS, row), env], axis=1).astype(np.float32)
        ends = row % truncate_every == truncate_every - 1
        truncated = np.array([ends, False, False])
        terminated = np.array([False, ends, False])
        final = np.where((truncated | terminated)[:, None], -obs, obs)
        buffer = replay_add(buffer, obs, env * 0, 10.0 * row + env, terminated, truncated, final)
    return buffer


def test_truncated_windows_carry_the_final_observation_and_terminations_do_not():
    buffer = _with_truncations(40, capacity=3 * 40, truncate_every=8)  # 5 truncations, 6 slots
    batch = replay_sample(buffer, np.random.default_rng(2), batch_size=400, n=3)
    start, env = batch.obs[:, 0].astype(int), batch.obs[:, 1].astype(int)
    rows = start[:, None] + np.arange(3)
    ends = rows % 8 == 7
    np.testing.assert_array_equal(batch.truncated, (ends & (env[:, None] == 0)).astype(float))
    np.testing.assert_array_equal(batch.terminated, (ends & (env[:, None] == 1)).astype(float))
    # next_obs: the final observation -[row, env] at a truncation, else the next row.
    trunc = batch.truncated.astype(bool)
    np.testing.assert_array_equal(batch.next_obs[trunc][:, 0], -rows[trunc])
    np.testing.assert_array_equal(batch.next_obs[~trunc][:, 0], rows[~trunc] + 1)
    assert trunc.any() and batch.terminated.any() and int(buffer.lost_truncations) == 0


def test_a_reused_final_observation_slot_turns_its_truncation_into_a_termination():
    # 2 envs' worth of slots minimum (6 here): truncating env 0 every 2 rows over 40 stored
    # rows overruns them, so the oldest stored truncations lose their final observation.
    buffer = _with_truncations(40, capacity=3 * 40, truncate_every=2)
    assert buffer.final_obs.shape[0] == 2 * NUM_ENVS
    assert int(buffer.lost_truncations) > 0
    batch = replay_sample(buffer, np.random.default_rng(3), batch_size=2000, n=1)
    start, env = batch.obs[:, 0].astype(int), batch.obs[:, 1].astype(int)
    ended_env0 = (start % 2 == 1) & (env == 0)
    recent = start >= 40 - 2 * 6  # the last 6 truncations (rows 29, 31, ...) own the 6 slots
    np.testing.assert_array_equal(batch.truncated[:, 0], (ended_env0 & recent).astype(float))
    np.testing.assert_array_equal(
        batch.terminated[:, 0], ((ended_env0 & ~recent) | (start % 2 == 1) & (env == 1))
    )
    kept = batch.truncated[:, 0].astype(bool)
    np.testing.assert_array_equal(batch.next_obs[kept, 0, 0], -start[kept])


def test_can_sample_and_size():
    buffer = _filled(0, capacity=12)
    assert not replay_can_sample(buffer, n=1) and replay_size(buffer) == 0
    buffer = _filled(2, capacity=12)
    assert replay_can_sample(buffer, n=1) and not replay_can_sample(buffer, n=2)
    assert replay_size(buffer) == 2 * NUM_ENVS
    buffer = _filled(9, capacity=12)  # 4 rows kept
    assert replay_size(buffer) == 4 * NUM_ENVS
    assert replay_can_sample(buffer, n=3) and not replay_can_sample(buffer, n=4)
    with pytest.raises(ValueError, match="no complete 4-step window"):
        replay_sample(buffer, np.random.default_rng(0), batch_size=1, n=4)


def test_same_generator_seed_gives_the_same_batch():
    buffer = _filled(10, capacity=30)
    a = replay_sample(buffer, np.random.default_rng([5, 7]), batch_size=16, n=2)
    b = replay_sample(buffer, np.random.default_rng([5, 7]), batch_size=16, n=2)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)


def test_bad_input_is_rejected_with_the_argument_named():
    with pytest.raises(ValueError, match="`capacity`"):
        replay_init(capacity=1, num_envs=1, observation_shape=(1,), observation_dtype=np.float32)
    with pytest.raises(ValueError, match="`num_envs`"):
        replay_init(capacity=8, num_envs=0, observation_shape=(1,), observation_dtype=np.float32)
    buffer = _filled(1, capacity=12)
    no = np.zeros(3, bool)
    good_obs = np.zeros((NUM_ENVS, 2))
    with pytest.raises(ValueError, match="`obs`"):
        replay_add(buffer, np.zeros((NUM_ENVS, 3)), np.zeros(3), np.zeros(3), no, no, good_obs)
    with pytest.raises(ValueError, match="`rewards`"):
        replay_add(buffer, good_obs, np.zeros(3), np.zeros(2), no, no, good_obs)
    with pytest.raises(ValueError, match="`final_obs`"):
        replay_add(buffer, good_obs, np.zeros(3), np.zeros(3), no, no, np.zeros((2, 2)))
    with pytest.raises(ValueError, match="`truncated`"):
        replay_add(buffer, good_obs, np.zeros(3), np.zeros(3), no, no[:2], good_obs)
    with pytest.raises(ValueError, match="`batch_size`"):
        replay_sample(_filled(5, capacity=30), np.random.default_rng(0), batch_size=0, n=1)
    with pytest.raises(ValueError, match="`n`"):
        replay_can_sample(buffer, n=0)
