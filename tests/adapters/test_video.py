"""Videos of evaluation episodes: the renderers, and `--video` on jitted runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from softeq.adapters import video
from softeq.adapters.agents import default_config
from softeq.adapters.jit_driver import VIDEO_MAX_STEPS, EvalSettings, JitProgram, stream_key
from softeq.adapters.logger import read_metrics

SOFTEQ = Path(sys.executable).with_name("softeq")


def test_minatar_cells_take_their_channel_colour_and_empty_cells_stay_black():
    obs = np.zeros((10, 10, 4), np.uint8)
    obs[2, 3, 1] = 1
    obs[5, 5, 0] = obs[5, 5, 3] = 1  # the later channel paints over the earlier one
    img = video.render_minatar(obs)
    cell = video.MINATAR_CELL_PIXELS
    assert img.shape == (10 * cell, 10 * cell, 3) and img.dtype == np.uint8
    assert (img[2 * cell : 3 * cell, 3 * cell : 4 * cell] == video.MINATAR_COLOURS[1]).all()
    assert (img[5 * cell + 7, 5 * cell + 7] == video.MINATAR_COLOURS[3]).all()
    assert img[0, 0].tolist() == [0, 0, 0]
    assert (img > 0).any(axis=-1).sum() == 2 * cell * cell
    with pytest.raises(ValueError, match="`obs` must be"):
        video.render_minatar(np.zeros((10, 10, 11), np.uint8))


@pytest.mark.parametrize(
    ("env_id", "shape"),
    [("CartPole-v1", (4,)), ("Acrobot-v1", (6,)), ("Breakout-MinAtar", (10, 10, 4))],
)
def test_every_jax_native_env_has_a_renderer(env_id, shape):
    frame = video.draw_observation(env_id, np.ones(shape, np.float32))
    assert frame.ndim == 3 and frame.shape[-1] == 3 and frame.dtype == np.uint8
    assert frame.min() != frame.max()  # something is drawn


@pytest.mark.parametrize("policy", ["greedy", "sample"])
def test_the_recorded_episode_is_episode_0_of_the_same_evaluation(policy):
    """Same key: returns, lengths and caps equal `evaluate`'s; the frames are episode 0's
    observations from its reset to its last (terminal) one, zeros after it."""
    program = JitProgram(
        "a2c",
        default_config("a2c", "CartPole-v1"),
        env_id="CartPole-v1",
        num_envs=4,
        evaluation=EvalSettings(episodes=3, policy=policy),
    )
    params = jax.jit(program.init)(0).learner.params
    key = stream_key(7, 1)
    plain = jax.device_get(jax.jit(program.evaluate)(params, key))
    returns, lengths, capped, frames = jax.device_get(
        jax.jit(program.evaluate_with_video)(params, key)
    )
    for a, b in zip(plain, (returns, lengths, capped), strict=True):
        np.testing.assert_array_equal(a, b)
    length = int(lengths[0])
    assert frames.shape == (program.video_frames(), 4) and not capped[0]
    assert 0 < length < 500  # untrained: the pole falls
    last = frames[length]
    assert abs(last[0]) > 2.4 or abs(last[2]) > 12 * 2 * np.pi / 360  # terminal state
    for t in range(length):  # every earlier state is inside the bounds
        assert abs(frames[t, 0]) <= 2.4 and abs(frames[t, 2]) <= 12 * 2 * np.pi / 360
    assert (frames[length + 1 :] == 0).all()


def test_video_flag_writes_one_mp4_per_seed_and_evaluation(tmp_path):
    """`softeq train --video` on a jitted MinAtar run: each seed's folder gets a video per
    evaluation whose frame count is the evaluated episode's length + 1."""
    import imageio.v2 as imageio

    run_dir = tmp_path / "run"
    proc = subprocess.run(
        [
            str(SOFTEQ),
            "train",
            "--env",
            "Breakout-MinAtar",
            "--driver",
            "jit",
            "--algo",
            "a2c",
            "--seeds",
            "0",
            "1",
            "--total-steps",
            "2048",
            "--eval-every",
            "1024",
            "--eval-episodes",
            "1",
            "--video",
            "--no-progress",
            "--run-dir",
            str(run_dir),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    for seed in (0, 1):
        seed_dir = run_dir / f"seed-{seed}"
        videos = sorted((seed_dir / video.VIDEO_DIRNAME).glob("*.mp4"))
        assert [v.name for v in videos] == ["eval-000000001024.mp4", "eval-000000002048.mp4"]
        _, lengths = read_metrics(seed_dir)["eval/length_mean"]
        for path, length in zip(videos, lengths, strict=True):
            frames = imageio.mimread(path, memtest=False)
            assert len(frames) == min(int(length), VIDEO_MAX_STEPS) + 1
            assert frames[0].shape == (200, 200, 3)
