"""Tests of softeq.adapters.envs: the vector-env contract for classic control and Atari.

The Atari tests run both backends (the ALE C++ vector env and gymnasium's
SyncVectorEnv of preprocessed single envs) for a few hundred agent steps with
few sub-envs, so that the whole file stays within about a minute on 2 cores.
Episodes are kept short with `max_episode_frames` where a test needs an
episode to end.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from softeq.adapters.envs import (
    ENV_KINDS,
    AtariOptions,
    StepResult,
    VectorEnv,
    make_vector_env,
)

ATARI_BACKENDS = ("ale", "gymnasium")


def _rollout(env: VectorEnv, steps: int, *, action_seed: int = 0, frames: bool = False):
    """Reset, then step with uniformly random actions; stack everything along time.

    Returns a dict of arrays with a leading time axis: `obs` has `steps + 1`
    entries (the reset observation first), the StepResult fields `steps`, and
    with `frames=True` also `frame` (`[steps + 1, N]` ALE episode frame numbers).
    """
    rng = np.random.default_rng(action_seed)
    obs = [env.reset()]
    frame = [_episode_frames(env)] if frames else []
    results: list[StepResult] = []
    actions = []
    for _ in range(steps):
        a = rng.integers(0, env.num_actions, env.num_envs)
        actions.append(a)
        results.append(env.step(a))
        obs.append(results[-1].obs)
        if frames:
            frame.append(_episode_frames(env))
    out = {name: np.stack([getattr(r, name) for r in results]) for name in StepResult._fields}
    out["obs"] = np.stack(obs)
    out["actions"] = np.stack(actions)
    if frames:
        out["frame"] = np.stack(frame)
    return out


def _episode_frames(env: VectorEnv) -> np.ndarray:
    """ALE episode frame counters of every sub-env, read from the emulator itself
    for the gymnasium backend (the ALE vector env exposes them only through info)."""
    if env.backend == "gymnasium":
        return np.array([e.unwrapped.ale.getEpisodeFrameNumber() for e in env._inner.envs])
    return np.asarray(env.last_info["episode_frame_number"]).copy()


# --------------------------------------------------------------------------- classic control


def test_env_kinds_lists_classic_control_and_ale_v5_ids():
    assert ENV_KINDS[:2] == ("CartPole-v1", "Acrobot-v1")
    for env_id in ("ALE/Pong-v5", "ALE/Breakout-v5", "ALE/MsPacman-v5"):
        assert env_id in ENV_KINDS
    assert all(i.startswith("ALE/") and i.endswith("-v5") for i in ENV_KINDS[2:])
    assert "CartPole-v0" not in ENV_KINDS


def test_cartpole_contract_and_autoreset_matches_single_envs():
    num_envs, seed, steps = 3, 11, 300
    with make_vector_env("CartPole-v1", num_envs=num_envs, seed=seed) as env:
        assert (env.num_envs, env.observation_shape, env.num_actions) == (num_envs, (4,), 2)
        assert env.observation_dtype is np.float32 and not env.is_atari
        assert env.env_id == "CartPole-v1"
        run = _rollout(env, steps, action_seed=5)

    assert run["obs"].shape == (steps + 1, num_envs, 4) and run["obs"].dtype == np.float32
    assert run["reward"].dtype == np.float32 and np.all(run["reward"] == 1.0)
    assert run["terminated"].dtype == bool and run["truncated"].dtype == bool
    done = run["terminated"] | run["truncated"]
    assert done.sum() >= 10  # random CartPole episodes last ~20 steps

    # episode statistics appear exactly where an episode ended and count its steps
    assert np.array_equal(~np.isnan(run["episode_returns"]), done)
    assert np.array_equal(~np.isnan(run["episode_lengths"]), done)
    for i in range(num_envs):
        ends = np.flatnonzero(done[:, i])
        starts = np.concatenate([[-1], ends[:-1]])
        assert np.array_equal(run["episode_lengths"][ends, i], ends - starts)
        # CartPole pays 1 per step, so the return is the length
        assert np.array_equal(run["episode_returns"][ends, i], ends - starts)

    # Replay sub-env i alone: gymnasium seeds it with seed + i; after each end it
    # is reset from its own generator, and that first observation is what the
    # vector env returned on the step that ended the episode.
    for i in range(num_envs):
        single = gym.make("CartPole-v1")
        obs, _ = single.reset(seed=seed + i)
        np.testing.assert_array_equal(obs, run["obs"][0, i])
        for t in range(steps):
            obs, _, term, trunc, _ = single.step(int(run["actions"][t, i]))
            assert (term, trunc) == (run["terminated"][t, i], run["truncated"][t, i])
            if term or trunc:
                obs, _ = single.reset()
                assert np.all(np.abs(obs) <= 0.05)  # CartPole's reset distribution
            np.testing.assert_array_equal(obs, run["obs"][t + 1, i])
        single.close()


def test_cartpole_same_seed_same_transitions_other_seed_differs():
    runs = []
    for seed in (4, 4, 5):
        with make_vector_env("CartPole-v1", num_envs=2, seed=seed) as env:
            runs.append(_rollout(env, 100, action_seed=1))
    for name in ("obs", "reward", "terminated", "truncated", "episode_lengths"):
        np.testing.assert_array_equal(runs[0][name], runs[1][name])
    assert not np.array_equal(runs[0]["obs"][0], runs[2]["obs"][0])


def test_reset_with_explicit_seed_reproduces_first_observation():
    with make_vector_env("CartPole-v1", num_envs=2, seed=7) as env:
        first = env.reset()
        env.step(np.zeros(2, np.int64))
        unseeded = env.reset()  # continues the generators: a fresh start
        assert not np.array_equal(first, unseeded)
        np.testing.assert_array_equal(env.reset(seed=7), first)


def test_acrobot_contract():
    with make_vector_env("Acrobot-v1", num_envs=2, seed=0) as env:
        assert (env.observation_shape, env.num_actions) == ((6,), 3)
        run = _rollout(env, 20)
    assert run["obs"].shape == (21, 2, 6) and run["obs"].dtype == np.float32
    assert np.all(run["reward"] == -1.0)  # -1 per step until the goal
    assert np.all(np.isnan(run["episode_returns"]))  # random Acrobot needs >> 20 steps


# --------------------------------------------------------------------------- bad input


def test_truncation_hands_over_the_final_observation_of_the_single_env():
    """Acrobot under random actions is cut at 500 steps: `final_obs` is what a plain
    gymnasium env shows at that step, and `obs` is already the next episode's start."""
    seed = 3
    with make_vector_env("Acrobot-v1", num_envs=1, seed=seed) as env:
        run = _rollout(env, 500, action_seed=seed)
    single = gym.make("Acrobot-v1")
    obs, _ = single.reset(seed=seed)
    for a in run["actions"][:, 0]:
        obs, _, terminated, truncated, _ = single.step(int(a))
    single.close()
    assert truncated and not terminated and run["truncated"][-1, 0]
    np.testing.assert_array_equal(run["final_obs"][-1, 0], obs)
    assert not np.array_equal(run["obs"][-1, 0], obs)
    np.testing.assert_array_equal(run["final_obs"][:-1], run["obs"][1:-1])


@pytest.mark.parametrize("env_id", ["ALE/NotAGame-v5", "Foo-v0", "CartPole-v0", "ALE/Pong-v4"])
def test_unknown_env_id_names_argument_value_and_allowed(env_id):
    with pytest.raises(ValueError) as info:
        make_vector_env(env_id, num_envs=1, seed=0)
    message = str(info.value)
    for part in ("env_id", repr(env_id), "'CartPole-v1'", "'Acrobot-v1'", "ALE/<Game>-v5"):
        assert part in message
    assert "'ALE/Pong-v5'" in message and "'ALE/Breakout-v5'" in message


@pytest.mark.parametrize("num_envs", [0, -2, 2.0, True])
def test_bad_num_envs(num_envs):
    with pytest.raises(ValueError, match=r"`num_envs`.*>= 1"):
        make_vector_env("CartPole-v1", num_envs=num_envs, seed=0)


def test_bad_backend_seed_and_options():
    with pytest.raises(ValueError, match=r"`backend`.*'gpu'"):
        make_vector_env("CartPole-v1", num_envs=1, seed=0, backend="gpu")
    with pytest.raises(ValueError, match=r"`backend`='ale' only applies to ALE"):
        make_vector_env("CartPole-v1", num_envs=1, seed=0, backend="ale")
    with pytest.raises(ValueError, match=r"`seed`.*-1"):
        make_vector_env("CartPole-v1", num_envs=1, seed=-1)
    with pytest.raises(TypeError, match="atari_options"):
        make_vector_env("ALE/Pong-v5", num_envs=1, seed=0, atari_options={"stack": 4})
    with pytest.raises(ValueError, match=r"`frame_skip`.*0"):
        AtariOptions(frame_skip=0)
    with pytest.raises(ValueError, match="repeat_action_probability"):
        AtariOptions(repeat_action_probability=1.5)
    with pytest.raises(TypeError, match="grayscale"):
        AtariOptions(grayscale="yes")
    with pytest.raises(ValueError, match="max_pool"):
        make_vector_env(
            "ALE/Pong-v5",
            num_envs=1,
            seed=0,
            backend="gymnasium",
            atari_options=AtariOptions(max_pool=False),
        )


def test_bad_actions_and_step_before_reset():
    with make_vector_env("CartPole-v1", num_envs=2, seed=0) as env:
        with pytest.raises(RuntimeError, match="reset"):
            env.step(np.zeros(2, np.int64))
        env.reset()
        with pytest.raises(ValueError, match=r"`actions`.*shape \(2,\)"):
            env.step(np.zeros(3, np.int64))
        with pytest.raises(ValueError, match=r"`actions`.*int"):
            env.step(np.zeros(2, np.float32))
        with pytest.raises(ValueError, match=r"`actions` must lie in \[0, 2\)"):
            env.step(np.array([0, 2]))
        env.step(np.array([0, 1], np.int32))  # int32 (as from jax) is accepted


# --------------------------------------------------------------------------- Atari


def test_both_atari_backends_share_layout():
    envs = [
        make_vector_env("ALE/Breakout-v5", num_envs=2, seed=0, backend=b) for b in ATARI_BACKENDS
    ]
    try:
        for env in envs:
            obs = env.reset()
            assert env.is_atari and env.observation_dtype is np.uint8
            assert env.observation_shape == (4, 84, 84) and env.num_actions == 4
            assert obs.shape == (2, 4, 84, 84) and obs.dtype == np.uint8
            # the reset observation holds one frame, newest last; older slots are zero
            assert np.all(obs[:, :3] == 0) and np.all(obs[:, 3].reshape(2, -1).max(axis=1) > 0)
        assert [env.backend for env in envs] == list(ATARI_BACKENDS)
    finally:
        for env in envs:
            env.close()
    with make_vector_env("ALE/Pong-v5", num_envs=1, seed=0) as env:
        assert env.backend == "ale"  # "auto" takes the fast path when it exists


@pytest.mark.parametrize("backend", ATARI_BACKENDS)
def test_pong_contract_frame_skip_once_and_truncation(backend):
    options = AtariOptions(max_episode_frames=600)  # ~150 agent steps per episode
    with make_vector_env(
        "ALE/Pong-v5", num_envs=2, seed=0, backend=backend, atari_options=options
    ) as env:
        assert env.num_actions == 6
        run = _rollout(env, 320, frames=True)
        if backend == "gymnasium":  # the info dict carries the same counter
            np.testing.assert_array_equal(env.last_info["episode_frame_number"], run["frame"][-1])
    assert run["obs"].shape == (321, 2, 4, 84, 84) and run["obs"].dtype == np.uint8
    assert run["reward"].dtype == np.float32 and set(np.unique(run["reward"])) <= {-1, 0, 1}
    ended = run["terminated"] | run["truncated"]
    assert run["truncated"].sum() >= 2 and not run["terminated"].any()
    # One agent step = exactly frame_skip emulator frames: skipping happens once.
    steps_within_episode = ~ended
    deltas = np.diff(run["frame"], axis=0)
    assert np.all(deltas[steps_within_episode] == 4)
    # After a reset the counter restarts: only no-op frames have been played.
    assert np.all(run["frame"][1:][ended] <= options.noop_max * options.frame_skip + 4)
    # the new episode's first observation is returned on the step that ended one
    assert np.all(run["obs"][1:][ended][:, :3] == 0)
    # ... and the ended episode's last one as final_obs: its stack continues the previous
    # observation's (frames shift by one), which the new episode's zero padding cannot.
    np.testing.assert_array_equal(run["final_obs"][ended][:, :3], run["obs"][:-1][ended][:, 1:])
    assert run["final_obs"][ended][:, :3].any()
    np.testing.assert_array_equal(run["final_obs"][~ended], run["obs"][1:][~ended])
    # each episode's raw return is the sum of its rewards (Pong's are already ±1)
    np.testing.assert_array_equal(
        ~np.isnan(run["episode_returns"]), ended
    )  # only where an episode ended
    for i in range(2):
        ends = np.flatnonzero(ended[:, i])
        total = np.cumsum(run["reward"][:, i])[ends]
        np.testing.assert_allclose(run["episode_returns"][ends, i], np.diff(total, prepend=0))


@pytest.mark.parametrize("backend", ATARI_BACKENDS)
def test_frame_skip_option_is_applied_once(backend):
    options = AtariOptions(frame_skip=3, noop_max=0)
    with make_vector_env(
        "ALE/Breakout-v5", num_envs=2, seed=1, backend=backend, atari_options=options
    ) as env:
        run = _rollout(env, 40, frames=True)
    assert not (run["terminated"] | run["truncated"]).any()
    assert np.all(np.diff(run["frame"], axis=0) == 3)


@pytest.mark.parametrize("backend", ATARI_BACKENDS)
def test_rewards_clipped_while_logged_returns_stay_raw(backend):
    def run(clip: bool):
        options = AtariOptions(clip_rewards=clip, max_episode_frames=1000)
        with make_vector_env(
            "ALE/SpaceInvaders-v5", num_envs=3, seed=2, backend=backend, atari_options=options
        ) as env:
            return _rollout(env, 260)

    clipped, raw = run(True), run(False)
    np.testing.assert_array_equal(clipped["obs"], raw["obs"])
    assert raw["reward"].max() >= 5  # SpaceInvaders pays 5–30 per alien
    np.testing.assert_array_equal(clipped["reward"], np.sign(raw["reward"]))
    assert set(np.unique(clipped["reward"])) <= {-1.0, 0.0, 1.0}
    ended = raw["terminated"] | raw["truncated"]
    assert ended.sum() >= 3
    np.testing.assert_array_equal(clipped["episode_returns"], raw["episode_returns"])
    for i in range(3):
        ends = np.flatnonzero(ended[:, i])
        totals = np.diff(np.cumsum(raw["reward"][:, i])[ends], prepend=0)
        np.testing.assert_allclose(raw["episode_returns"][ends, i], totals)
        assert np.any(raw["episode_returns"][ends, i] > (clipped["reward"][:, i] > 0).sum())


@pytest.fixture(scope="module", params=ATARI_BACKENDS)
def breakout_runs(request):
    """Breakout with and without terminal_on_life_loss, same seeds and actions."""
    runs = {}
    for life_loss in (False, True):
        options = AtariOptions(terminal_on_life_loss=life_loss, clip_rewards=False)
        with make_vector_env(
            "ALE/Breakout-v5", num_envs=3, seed=3, backend=request.param, atari_options=options
        ) as env:
            runs[life_loss] = _rollout(env, 400, action_seed=2)
    return runs


def test_life_loss_terminates_but_logs_the_full_game(breakout_runs):
    game, lives = breakout_runs[False], breakout_runs[True]
    # The emulator is never reset on a life loss: both runs see the same frames.
    np.testing.assert_array_equal(game["obs"], lives["obs"])
    np.testing.assert_array_equal(game["reward"], lives["reward"])
    game_over = game["terminated"] | game["truncated"]
    assert game_over.sum() >= 2
    # every game end is still terminal, and life losses add terminals
    assert np.all(lives["terminated"][game["terminated"]])
    life_lost = lives["terminated"] & ~game_over
    assert life_lost.any()
    # A full Breakout game has 5 lives: 4 life-loss terminals, then the game over.
    for i in range(3):
        ends = np.flatnonzero(game["terminated"][:, i])
        for start, end in zip(np.concatenate([[0], ends[:-1] + 1]), ends, strict=True):
            assert lives["terminated"][start : end + 1, i].sum() == 5
    # Logged returns and lengths are those of whole games, identical in both runs.
    np.testing.assert_array_equal(game["episode_returns"], lives["episode_returns"])
    np.testing.assert_array_equal(game["episode_lengths"], lives["episode_lengths"])
    assert np.array_equal(~np.isnan(lives["episode_returns"]), game_over)
    for i in range(3):
        ends = np.flatnonzero(game_over[:, i])
        totals = np.diff(np.cumsum(game["reward"][:, i])[ends], prepend=0)
        np.testing.assert_allclose(lives["episode_returns"][ends, i], totals)
        np.testing.assert_array_equal(lives["episode_lengths"][ends, i], np.diff(ends, prepend=-1))


def test_autoreset_observation_starts_a_new_game_but_not_on_life_loss(breakout_runs):
    game, lives = breakout_runs[False], breakout_runs[True]
    next_obs = lives["obs"][1:]
    game_over = game["terminated"] | game["truncated"]
    # a new game: only the newest frame is filled
    assert np.all(next_obs[game_over][:, :3] == 0)
    assert np.all(next_obs[game_over][:, 3].reshape(-1, 84 * 84).max(axis=1) > 0)
    # a lost life: the game goes on, the stack keeps four real frames
    life_lost = lives["terminated"] & ~game_over
    assert np.all(next_obs[life_lost].reshape(-1, 4, 84 * 84).max(axis=2) > 0)


@pytest.mark.parametrize("backend", ATARI_BACKENDS)
def test_atari_same_seed_same_transitions(backend):
    runs = []
    for seed in (9, 9, 10):
        with make_vector_env("ALE/Pong-v5", num_envs=2, seed=seed, backend=backend) as env:
            runs.append(_rollout(env, 120, action_seed=4))
    for name in ("obs", "reward", "terminated", "truncated"):
        np.testing.assert_array_equal(runs[0][name], runs[1][name])
    # sticky actions and no-op starts depend on the seed
    assert not np.array_equal(runs[0]["obs"], runs[2]["obs"])
