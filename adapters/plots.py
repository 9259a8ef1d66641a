"""Figures from run folders: learning curves (mean ± std over seeds) and gradient agreement.

Everything is read back from each run's `metrics.csv` (see
`softeq.adapters.logger`), so `softeq plot FOLDER` can redraw the figures of a
finished run or comparison at any time. matplotlib runs with the Agg backend
(no display needed).
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from softeq.adapters.atomic_file import atomic_write
from softeq.adapters.logger import read_metrics

COMPARE_MANIFEST = "compare.json"
LEARNING_CURVES_PNG = "learning_curves.png"
GRAD_COSINE_PNG = "grad_cosine.png"
RUN_PNG = "training.png"
GRID_POINTS = 200
SMOOTHING_EPISODES = 20


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str | os.PathLike, *, dpi: int = 110) -> Path:
    """Write `fig` as a 256-colour PNG and close it; the file appears whole or not at all.

    Line plots with translucent bands use few colours, so a palette PNG is about a third
    of matplotlib's RGBA output with no visible difference; the Results page carries
    many of these figures. Pillow is a dependency of matplotlib, so it is always there.
    """
    from PIL import Image

    path = Path(path)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    _pyplot().close(fig)
    buffer.seek(0)
    with Image.open(buffer) as image:
        palette = image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    with atomic_write(path, "wb") as fh:
        palette.save(fh, format="PNG", optimize=True)
    return path


def smoothed_episode_returns(
    steps: np.ndarray, returns: np.ndarray, *, window: int = SMOOTHING_EPISODES
) -> tuple[np.ndarray, np.ndarray]:
    """Trailing mean over the last `window` episodes, at each episode's end step.

    Args:
      steps: `[K]` env step at which each episode ended (non-decreasing).
      returns: `[K]` raw episode returns.

    Returns:
      `(steps [K], smoothed [K])`.
    """
    if len(returns) == 0:
        return steps, returns
    csum = np.cumsum(np.concatenate([[0.0], returns]))
    idx = np.arange(1, len(returns) + 1)
    lo = np.maximum(idx - window, 0)
    return steps, (csum[idx] - csum[lo]) / (idx - lo)


def interpolate_on_grid(steps: np.ndarray, values: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Linear interpolation of `values` (at `steps`) onto `grid`; NaN outside their range.

    Points sharing a step are averaged first.
    """
    if len(steps) == 0:
        return np.full(grid.shape, np.nan)
    uniq, inverse = np.unique(steps, return_inverse=True)
    sums = np.bincount(inverse, weights=values)
    counts = np.bincount(inverse)
    means = sums / counts
    out = np.interp(grid, uniq, means)
    out[(grid < uniq[0]) | (grid > uniq[-1])] = np.nan
    return out


def _nan_mean_std(stack: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean, std and count over axis 0 of `[R, G]`, ignoring NaN (NaN where all are NaN)."""
    count = np.sum(~np.isnan(stack), axis=0)
    total = np.nansum(stack, axis=0)
    mean = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    sq = np.nansum((stack - mean) ** 2, axis=0)
    std = np.where(count > 0, np.sqrt(sq / np.maximum(count, 1)), np.nan)
    return mean, std, count


def curves_on_grid(
    runs: Sequence[str | os.PathLike], tag: str, *, smooth: bool, grid: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """`(grid [G], mean [G], std [G])` of one metric over several runs, or None if absent."""
    series = []
    for run in runs:
        metrics = read_metrics(run)
        if tag not in metrics:
            continue
        steps, values = metrics[tag]
        if smooth:
            steps, values = smoothed_episode_returns(steps, values)
        series.append((steps, values))
    if not series:
        return None
    if grid is None:
        end = max(int(s[-1]) for s, _ in series if len(s))
        grid = np.linspace(0, end, GRID_POINTS)
    stack = np.stack([interpolate_on_grid(s, v, grid) for s, v in series])
    mean, std, _ = _nan_mean_std(stack)
    return grid, mean, std


def _band(ax, grid, mean, std, label):
    (line,) = ax.plot(grid, mean, label=label)
    ax.fill_between(grid, mean - std, mean + std, color=line.get_color(), alpha=0.2, linewidth=0)


def plot_learning_curves(
    groups: Mapping[str, Sequence[str | os.PathLike]],
    path: str | os.PathLike,
    *,
    title: str = "",
) -> Path:
    """Episode return vs env steps, mean ± std over the runs of each group.

    Left: training episodes (trailing mean of 20 episodes per run); right:
    evaluation return (greedy), when the runs evaluated more than once.
    """
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    for label, runs in groups.items():
        n = len(runs)
        train = curves_on_grid(runs, "train/episode_return", smooth=True)
        if train is not None:
            _band(axes[0], *train, f"{label} (n={n})")
        ev = curves_on_grid(runs, "eval/return_mean", smooth=False)
        if ev is not None:
            _band(axes[1], *ev, f"{label} (n={n})")
    axes[0].set_title("training episodes (mean of last 20), mean ± std over seeds")
    axes[1].set_title("greedy evaluation, mean ± std over seeds")
    for ax in axes:
        ax.set_xlabel("environment steps")
        ax.set_ylabel("episode return")
        ax.grid(alpha=0.3)
        if ax.has_data():
            ax.legend(loc="lower right", fontsize="small")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_grad_cosine(
    groups: Mapping[str, Sequence[str | os.PathLike]],
    path: str | os.PathLike,
    *,
    title: str = "",
) -> Path | None:
    """Cosine between the soft-Q and A2C gradients vs env steps (mean ± std over seeds).

    Only groups whose runs logged `learner/grad_cosine` (soft-q) are drawn;
    returns None when there is none.
    """
    drawn = False
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for label, runs in groups.items():
        cos = curves_on_grid(runs, "learner/grad_cosine", smooth=False)
        if cos is None:
            continue
        _band(ax, *cos, f"{label} (n={len(runs)})")
        drawn = True
    if not drawn:
        plt.close(fig)
        return None
    ax.axhline(1.0, color="black", linewidth=0.8, linestyle=":")
    ax.set_xlabel("environment steps")
    ax.set_ylabel("cos(∇ soft-Q loss, ∇ A2C loss)")
    ax.set_title(title or "gradient agreement per update, mean ± std over seeds")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")
    fig.tight_layout()
    return save_figure(fig, path)


def plot_run(run_dir: str | os.PathLike) -> Path:
    """One run's figure: returns (train and eval) and the main learner losses."""
    plt = _pyplot()
    metrics = read_metrics(run_dir)
    loss_tags = [
        t
        for t in ("learner/loss", "learner/value_loss", "learner/policy_loss", "learner/kl")
        if t in metrics
    ]
    extra = ["learner/grad_cosine"] if "learner/grad_cosine" in metrics else []
    panels = 1 + len(loss_tags) + len(extra)
    fig, axes = plt.subplots(1, panels, figsize=(4.2 * panels, 3.8), squeeze=False)
    axes = axes[0]
    if "train/episode_return" in metrics:
        s, v = smoothed_episode_returns(*metrics["train/episode_return"])
        axes[0].plot(s, v, label="train (mean of 20)")
    if "eval/return_mean" in metrics:
        s, v = metrics["eval/return_mean"]
        axes[0].plot(s, v, "o-", label="eval (greedy)")
    axes[0].set_title("episode return")
    if axes[0].has_data():
        axes[0].legend(fontsize="small")
    for ax, tag in zip(axes[1:], loss_tags + extra, strict=True):
        s, v = metrics[tag]
        ax.plot(s, v, linewidth=0.7)
        ax.set_title(tag.split("/", 1)[1])
    for ax in axes:
        ax.set_xlabel("environment steps")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, Path(run_dir) / RUN_PNG, dpi=100)


def compare_groups(compare_dir: str | os.PathLike) -> dict[str, list[Path]]:
    """Label → run folders of a compare folder, from its manifest."""
    base = Path(compare_dir)
    with open(base / COMPARE_MANIFEST) as fh:
        manifest = json.load(fh)
    return {
        spec["label"]: [base / r for r in spec["runs"] if (base / r / "metrics.csv").exists()]
        for spec in manifest["specs"]
    }


def plot_compare(compare_dir: str | os.PathLike) -> list[Path]:
    """Redraw the figures of a compare folder; returns the written paths."""
    base = Path(compare_dir)
    with open(base / COMPARE_MANIFEST) as fh:
        manifest = json.load(fh)
    groups = compare_groups(base)
    title = f"{manifest['env_id']}"
    written = [plot_learning_curves(groups, base / LEARNING_CURVES_PNG, title=title)]
    cos = plot_grad_cosine(groups, base / GRAD_COSINE_PNG)
    if cos is not None:
        written.append(cos)
    return written


def plot_folder(path: str | os.PathLike) -> list[Path]:
    """Redraw whatever `path` holds: a compare folder (manifest) or a single run."""
    p = Path(path)
    if (p / COMPARE_MANIFEST).exists():
        from softeq.adapters.compare import write_summary

        return [*plot_compare(p), *write_summary(p)]
    if (p / "metrics.csv").exists():
        return [plot_run(p)]
    seed_runs = sorted(m.parent for m in p.glob("seed-*/metrics.csv"))  # a jitted run's seeds
    if seed_runs:
        return [plot_run(run) for run in seed_runs]
    raise FileNotFoundError(f"{str(p)!r} holds neither {COMPARE_MANIFEST} nor metrics.csv")
