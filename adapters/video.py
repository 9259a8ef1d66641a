"""Videos of evaluation episodes: observations drawn as RGB frames, written as mp4.

Both drivers record the same way: the host loop draws each observation as it
plays (`softeq.adapters.loop.record_video_episode`), the jitted driver returns
an episode's observations from inside the program
(`JitProgram.evaluate_with_video`) and `write_observation_video` draws them
afterwards. Nothing here needs a display or pygame: classic-control states are
drawn from their (complete) observations, MinAtar's binary channels as coloured
cells, Atari's newest preprocessed frame as it is.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

#: Folder of a run (or of one seed of a jitted run) that holds its videos.
VIDEO_DIRNAME = "videos"

# One colour per MinAtar channel (channels differ by game: paddle, ball, trail,
# bricks in Breakout; up to 10 in Seaquest); a later channel paints over an earlier one.
MINATAR_COLOURS = np.array(
    [
        (230, 159, 0),
        (86, 180, 233),
        (0, 158, 115),
        (240, 228, 66),
        (0, 114, 178),
        (213, 94, 0),
        (204, 121, 167),
        (255, 255, 255),
        (150, 150, 150),
        (120, 60, 180),
    ],
    np.uint8,
)
MINATAR_CELL_PIXELS = 20


def video_writer_available() -> str | None:
    """The name of a usable mp4 writer (`"imageio"` or `"moviepy"`), or None."""
    try:
        import imageio.v2  # noqa: F401
        import imageio_ffmpeg  # noqa: F401

        return "imageio"
    except ImportError:
        pass
    try:
        from moviepy import ImageSequenceClip

        return "moviepy"
    except ImportError:
        pass
    try:
        from moviepy.editor import ImageSequenceClip  # noqa: F401

        return "moviepy"
    except ImportError:
        return None


VIDEO_MISSING_MESSAGE = (
    "--video needs an mp4 writer: install imageio with imageio-ffmpeg, or moviepy "
    "(pip install 'softeq[video]')"
)


def write_video(path: str | os.PathLike, frames: list[np.ndarray], *, fps: int = 30) -> Path:
    """Write `[H, W, 3]` uint8 frames to an mp4 file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = video_writer_available()
    if writer is None:
        raise RuntimeError(VIDEO_MISSING_MESSAGE)
    if writer == "imageio":
        import imageio.v2 as imageio

        imageio.mimsave(path, frames, fps=fps, macro_block_size=1)
    else:
        try:
            from moviepy import ImageSequenceClip
        except ImportError:
            from moviepy.editor import ImageSequenceClip
        ImageSequenceClip(list(frames), fps=fps).write_videofile(str(path), logger=None)
    return path


def frame_from_atari_observation(obs: np.ndarray) -> np.ndarray:
    """The newest frame of one Atari observation `[stack, H, W(, 3)]` as RGB, upscaled 4x."""
    frame = np.asarray(obs)[-1]
    if frame.ndim == 2:
        frame = np.repeat(frame[..., None], 3, axis=-1)
    return np.repeat(np.repeat(frame, 4, axis=0), 4, axis=1).astype(np.uint8)


def _draw_segment(img: np.ndarray, p0, p1, width: float, color) -> None:
    """Paint the pixels within `width / 2` of the segment p0–p1 (pixel coords x, y)."""
    (x0, y0), (x1, y1) = p0, p1
    r = width / 2
    h, w = img.shape[:2]
    xa, xb = int(max(min(x0, x1) - r, 0)), int(min(max(x0, x1) + r + 1, w))
    ya, yb = int(max(min(y0, y1) - r, 0)), int(min(max(y0, y1) + r + 1, h))
    if xa >= xb or ya >= yb:
        return
    ys, xs = np.mgrid[ya:yb, xa:xb].astype(np.float64)
    dx, dy = x1 - x0, y1 - y0
    t = np.clip(((xs - x0) * dx + (ys - y0) * dy) / max(dx * dx + dy * dy, 1e-12), 0.0, 1.0)
    dist2 = (xs - x0 - t * dx) ** 2 + (ys - y0 - t * dy) ** 2
    img[ya:yb, xa:xb][dist2 <= r * r] = color


def render_classic_control(env_id: str, obs: np.ndarray) -> np.ndarray:
    """Draw one classic-control observation as an RGB frame (no pygame needed).

    CartPole-v1's observation is its full state (x, ẋ, θ, θ̇) and Acrobot-v1's
    (cos θ₁, sin θ₁, cos θ₂, sin θ₂, θ̇₁, θ̇₂) fixes both links, so the picture is
    exact.
    """
    obs = np.asarray(obs, np.float64)
    if env_id.startswith("CartPole"):
        h, w = 400, 600
        img = np.full((h, w, 3), 255, np.uint8)
        scale = w / 4.8  # the track spans x in [-2.4, 2.4]
        cart_x, cart_y = w / 2 + obs[0] * scale, 300.0
        img[int(cart_y) + 15 : int(cart_y) + 17, :] = 0
        img[int(cart_y - 15) : int(cart_y + 15), int(cart_x - 25) : int(cart_x + 25)] = 40
        pole = 2 * 0.5 * scale  # pole length 2 * half-length 0.5
        tip = (cart_x + pole * np.sin(obs[2]), cart_y - pole * np.cos(obs[2]))
        _draw_segment(img, (cart_x, cart_y), tip, 10, (202, 152, 101))
        return img
    if env_id.startswith("Acrobot"):
        h = w = 500
        img = np.full((h, w, 3), 255, np.uint8)
        scale = w / 4.4
        theta1 = np.arctan2(obs[1], obs[0])
        theta2 = np.arctan2(obs[3], obs[2])
        p0 = (w / 2, h / 2)
        p1 = (p0[0] + scale * np.sin(theta1), p0[1] + scale * np.cos(theta1))
        p2 = (
            p1[0] + scale * np.sin(theta1 + theta2),
            p1[1] + scale * np.cos(theta1 + theta2),
        )
        img[int(h / 2 - scale), :] = 0  # the goal height
        _draw_segment(img, p0, p1, 12, (0, 204, 204))
        _draw_segment(img, p1, p2, 12, (0, 204, 204))
        return img
    raise ValueError(f"no renderer for env {env_id!r}")


def render_minatar(obs: np.ndarray) -> np.ndarray:
    """One MinAtar observation `[10, 10, C]` (0/1 channels) as an RGB frame, one
    `MINATAR_CELL_PIXELS`-wide square per cell, black where no channel is set."""
    obs = np.asarray(obs)
    if obs.ndim != 3 or obs.shape[-1] > len(MINATAR_COLOURS):
        raise ValueError(
            f"`obs` must be [H, W, C] with C <= {len(MINATAR_COLOURS)}, got shape {obs.shape}."
        )
    img = np.zeros((*obs.shape[:2], 3), np.uint8)
    for channel in range(obs.shape[-1]):
        img[obs[..., channel] > 0] = MINATAR_COLOURS[channel]
    return np.repeat(np.repeat(img, MINATAR_CELL_PIXELS, axis=0), MINATAR_CELL_PIXELS, axis=1)


def draw_observation(env_id: str, obs: np.ndarray) -> np.ndarray:
    """One observation of `env_id` as an `[H, W, 3]` uint8 frame."""
    from softeq.adapters import ale_xla, jax_envs

    if ale_xla.is_ale_id(env_id):
        return frame_from_atari_observation(obs)
    if jax_envs.is_minatar(env_id):
        return render_minatar(obs)
    return render_classic_control(env_id, obs)


def frames_per_second(env_id: str) -> int:
    """Playback speed: Atari at 15 agent steps/s (60 frames/s with frame skip 4),
    MinAtar at 10, classic control at 50 (CartPole's 0.02 s time step)."""
    from softeq.adapters import ale_xla, jax_envs

    if ale_xla.is_ale_id(env_id):
        return 15
    return 10 if jax_envs.is_minatar(env_id) else 50


def write_observation_video(env_id: str, observations: np.ndarray, path: str | os.PathLike) -> Path:
    """Draw `observations` (`[T, *obs_shape]`, one episode) and write them to `path` (mp4)."""
    frames = [draw_observation(env_id, o) for o in np.asarray(observations)]
    return write_video(path, frames, fps=frames_per_second(env_id))
