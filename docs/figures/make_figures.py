"""Draws the figures of the documentation into docs/figures/.

    python docs/figures/make_figures.py           # redraw every figure from code and data
    python docs/figures/make_figures.py --train   # first rerun the short training comparison

Four figures, listed in `FIGURES`:

- `architecture.png`: the three layers of softeq and the two training drivers;
- `dueling_head.png`: the dueling soft-Q head Q = V + τ log π of [E16], with a
  worked example computed by softeq itself (the script checks that the soft
  value of that Q is V and its Boltzmann policy is π before drawing it);
- `learning_curves.png`, `gradient_agreement.png`: the figures `softeq compare`
  draws, for A2C against A2C-matched soft Q-learning on CartPole-v1 with a
  short budget (`TRAIN_STEPS` per run, `SEEDS`), drawn by the same plotting
  functions (`softeq.adapters.plots`) from the runs' metrics.

`--train` runs that comparison (the library call behind `softeq compare`;
about a minute of CPU time on two cores) and keeps a trimmed copy of each run's
`metrics.csv` (only the tags the figures read) under `docs/figures/data/`,
so redrawing never trains, and the documentation tests can redraw every figure
and compare it with the committed PNG without training anything.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

FIGURES_DIR = Path(__file__).resolve().parent
DATA_DIR = FIGURES_DIR / "data" / "cartpole-compare"
REPO = FIGURES_DIR.parents[1]

ENV_ID = "CartPole-v1"
ALGOS = ("a2c", "soft-q")
SEEDS = (0, 1, 2)
TRAIN_STEPS = 60_000
EVAL_POINTS = 6
EVAL_EPISODES = 5
WORKERS = 2
#: The tags of metrics.csv that the two training figures read.
KEPT_TAGS = ("train/episode_return", "eval/return_mean", "eval/return_std", "learner/grad_cosine")
#: Metadata written into every PNG: none that varies between runs (no version, no date).
PNG_METADATA = {"Software": None}
DPI = 100


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


# --------------------------------------------------------------------------- architecture


def _box(
    ax, x, y, w, h, title, lines=(), *, face, edge, title_size=10.5, line_size=8.6, spacing=0.03
):
    """A rounded box with a bold title and centred lines below it (axes units, y up)."""
    from matplotlib.patches import FancyBboxPatch

    ax.add_patch(
        FancyBboxPatch(
            (x, y),
            w,
            h,
            boxstyle="round,pad=0.006,rounding_size=0.015",
            facecolor=face,
            edgecolor=edge,
            linewidth=1.3,
        )
    )
    top = y + h - 0.018
    ax.text(x + w / 2, top, title, ha="center", va="top", fontsize=title_size, fontweight="bold")
    for i, line in enumerate(lines):
        ax.text(
            x + w / 2, top - 0.012 - spacing * (i + 1), line, ha="center", va="top",
            fontsize=line_size,
        )  # fmt: skip


def _arrow(ax, start, end, text="", *, color="#333333", text_offset=(0.0, 0.0), style="-|>"):
    from matplotlib.patches import FancyArrowPatch

    ax.add_patch(
        FancyArrowPatch(start, end, arrowstyle=style, mutation_scale=14, color=color, linewidth=1.4)
    )
    if text:
        mid = ((start[0] + end[0]) / 2 + text_offset[0], (start[1] + end[1]) / 2 + text_offset[1])
        ax.text(*mid, text, ha="center", va="center", fontsize=8.2, color=color,
                bbox={"facecolor": "white", "edgecolor": "none", "pad": 1.0})  # fmt: skip


def draw_architecture(path: Path) -> None:
    """The layers (core ← adapters, properties around both) and the two training drivers."""
    plt = _pyplot()
    fig = plt.figure(figsize=(9.6, 7.2))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.axis("off")

    core_face, core_edge = "#e3ecfa", "#3056a8"
    adapters_face, adapters_edge = "#fdf0dc", "#b7791f"
    properties_face, properties_edge = "#e6f4ea", "#2f7d45"

    # softeq.properties: a frame around the two layers it checks.
    _box(ax, 0.015, 0.015, 0.97, 0.97, "", face=properties_face, edge=properties_edge)
    ax.text(0.5, 0.968, "softeq.properties — the property suite around both layers",
            ha="center", va="top", fontsize=11, fontweight="bold",
            color=properties_edge)  # fmt: skip
    ax.text(0.5, 0.933, "strategies · float64 NumPy oracles · exact expectations over "
            "enumerated trajectories · checkers for your own loss",
            ha="center", va="top", fontsize=8.6)  # fmt: skip

    # softeq.adapters: the command line, the two drivers, the agents.
    _box(ax, 0.05, 0.35, 0.9, 0.55, "softeq.adapters — the impure edge", face=adapters_face,
         edge=adapters_edge, title_size=11)  # fmt: skip
    _box(ax, 0.08, 0.765, 0.84, 0.09, "softeq train · compare · evaluate · plot · demo",
         ("run_config: one resolved-run record, from flags or a saved run",),
         face="white", edge=adapters_edge)  # fmt: skip
    _box(ax, 0.08, 0.535, 0.4, 0.19, "host loop  (loop.py)",
         ("Python steps the envs (envs.py:", "ALE, gymnasium); act and learn",
          "are jitted calls; checkpoints,", "metrics, exact resume"),
         face="white", edge=adapters_edge)  # fmt: skip
    _box(ax, 0.52, 0.535, 0.4, 0.19, "jitted driver  (jit_driver.py)",
         ("rollouts, updates and evaluation", "in one XLA program per chunk",
          "(lax.scan) on jax_envs.py (gymnax);", "seeds vmapped, laid over devices"),
         face="white", edge=adapters_edge)  # fmt: skip
    _box(ax, 0.08, 0.385, 0.84, 0.11, "agents: init · act · learn  (one registry, typed configs)",
         ("networks (Haiku): Nature-CNN, MinAtar, MLP torsos;",
          "policy, value, Q and dueling soft-Q heads"),
         face="white", edge=adapters_edge)  # fmt: skip

    # softeq.core
    _box(ax, 0.05, 0.07, 0.9, 0.2, "softeq.core — pure functions (imports jax, chex, rlax only)",
         ("soft values and Boltzmann policies [E1–E8] · tabular backups [E9–E12]",
          "n-step soft targets and advantages [E13–E14] · soft-Q, PG, value, A2C losses "
          "[E15–E16]",
          "soft DQN targets · natural-gradient pieces [E17–E18] · time-limit bootstraps"),
         face=core_face, edge=core_edge, title_size=11, line_size=8.8,
         spacing=0.035)  # fmt: skip

    _arrow(ax, (0.28, 0.762), (0.28, 0.728))
    _arrow(ax, (0.72, 0.762), (0.72, 0.728))
    _arrow(ax, (0.28, 0.532), (0.28, 0.498))
    _arrow(ax, (0.72, 0.532), (0.72, 0.498))
    _arrow(ax, (0.5, 0.382), (0.5, 0.274), "learner updates call core")
    ax.text(0.972, 0.17, "checks core\nagainst oracles", ha="center", va="center",
            fontsize=8.2, color=properties_edge, rotation=90)  # fmt: skip
    ax.text(0.5, 0.042, "imports run downward only: adapters → core; "
            "properties and tests → both; core imports no adapter",
            ha="center", va="center", fontsize=8.2, style="italic")  # fmt: skip
    fig.savefig(path, dpi=DPI, metadata=PNG_METADATA)
    plt.close(fig)


# --------------------------------------------------------------------------- dueling head


def dueling_example() -> dict[str, np.ndarray | float]:
    """A worked example of Q = V + τ log π, computed and checked with softeq."""
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    from softeq.adapters.networks import soft_q_from_actor_critic
    from softeq.core import boltzmann_log_policy, soft_value

    temperature = 0.5
    logits = jnp.array([1.2, 0.2, -0.6, 0.7])
    value = jnp.array(2.0)
    q = soft_q_from_actor_critic(logits[None], value[None], temperature=temperature)[0]
    log_pi = jax.nn.log_softmax(logits)
    no_prior = jnp.zeros(4)  # π̄ ≡ 1, the entropy-bonus convention of [E16]
    recovered_value = soft_value(q, temperature=temperature, log_prior=no_prior)
    recovered_log_pi = boltzmann_log_policy(q, temperature=temperature, log_prior=no_prior)
    if not (
        abs(float(recovered_value - value)) < 1e-12
        and float(jnp.max(jnp.abs(recovered_log_pi - log_pi))) < 1e-12
    ):
        raise AssertionError("the dueling head's Q does not give back V and π")
    return {
        "temperature": temperature,
        "value": float(value),
        "pi": np.asarray(jnp.exp(log_pi)),
        "scaled_log_pi": np.asarray(temperature * log_pi),
        "q": np.asarray(q),
    }


def draw_dueling_head(path: Path) -> None:
    """The dueling soft-Q head of [E16]: the network on the left, a worked example on the right."""
    example = dueling_example()
    plt = _pyplot()
    fig = plt.figure(figsize=(10.0, 4.2))
    left = fig.add_axes((0.0, 0.0, 0.5, 1.0))
    left.set_xlim(0, 1)
    left.set_ylim(0, 1)
    left.axis("off")
    face, edge = "#fdf0dc", "#b7791f"
    _box(left, 0.03, 0.4, 0.2, 0.2, "torso", ("observation s",), face=face, edge=edge)
    _box(left, 0.34, 0.66, 0.28, 0.2, "policy head", ("logits → log π(·|s)",), face=face, edge=edge)
    _box(left, 0.34, 0.14, 0.28, 0.2, "value head", ("V(s)",), face=face, edge=edge)
    _box(left, 0.72, 0.4, 0.26, 0.2, "Q(s, ·)", ("= V(s) + τ log π(·|s)",),
         face="#e3ecfa", edge="#3056a8")  # fmt: skip
    _arrow(left, (0.235, 0.55), (0.335, 0.74))
    _arrow(left, (0.235, 0.45), (0.335, 0.26))
    _arrow(
        left, (0.625, 0.76), (0.715, 0.56), "τ log π\n(gradient × 1/τ)", text_offset=(0.075, 0.06)
    )
    _arrow(left, (0.625, 0.24), (0.715, 0.44), "V\n(gradient × c)", text_offset=(0.075, -0.06))
    left.text(0.5, 0.04, "a2c_matched_soft_q_loss scales the gradient of each stream "
              "(scale_gradient):\n1/τ on τ log π and c on V; the forward value is unchanged",
              ha="center", va="center", fontsize=8.2)  # fmt: skip

    right = fig.add_axes((0.57, 0.16, 0.41, 0.72))
    actions = np.arange(len(example["q"]))
    width = 0.38
    right.bar(actions - width / 2, example["scaled_log_pi"], width, label="τ log π(a|s)",
              color="#d08c2c")  # fmt: skip
    right.bar(actions + width / 2, example["q"], width, label="Q(s, a)", color="#3e6fc4")
    right.axhline(example["value"], color="black", linestyle="--", linewidth=1.0,
                  label=f"V(s) = {example['value']:g}")  # fmt: skip
    right.axhline(0.0, color="#777777", linewidth=0.6)
    right.set_xticks(actions, [f"a{i}\nπ={p:.2f}" for i, p in enumerate(example["pi"])])
    right.set_title(
        f"τ = {example['temperature']:g}: τ·logsumexp(Q/τ) = V and softmax(Q/τ) = π", fontsize=9.5
    )
    right.legend(fontsize=8, loc="lower left")
    right.grid(axis="y", alpha=0.3)
    fig.savefig(path, dpi=DPI, metadata=PNG_METADATA)
    plt.close(fig)


# --------------------------------------------------------------------------- training figures


def _groups(data_dir: Path) -> dict[str, list[Path]]:
    from softeq.adapters.plots import compare_groups

    return compare_groups(data_dir)


def draw_learning_curves(path: Path, data_dir: Path = DATA_DIR) -> None:
    """`softeq compare`'s learning-curve figure, from the kept metrics."""
    from softeq.adapters.plots import plot_learning_curves

    manifest = json.loads((data_dir / "compare.json").read_text())
    steps = manifest["run_overrides"]["total_steps"]
    title = f"{manifest['env_id']}, {steps:,} env steps per run, {len(manifest['seeds'])} seeds"
    _with_png_metadata(lambda: plot_learning_curves(_groups(data_dir), path, title=title))


def draw_gradient_agreement(path: Path, data_dir: Path = DATA_DIR) -> None:
    """`softeq compare`'s gradient-agreement figure (soft-q's cosine to the A2C gradient)."""
    from softeq.adapters.plots import plot_grad_cosine

    if _with_png_metadata(lambda: plot_grad_cosine(_groups(data_dir), path)) is None:
        raise RuntimeError(f"no run under {data_dir} logged learner/grad_cosine")


def _with_png_metadata(draw: Callable):
    """Runs a softeq plotting function with PNG_METADATA as matplotlib's savefig default."""
    _pyplot()
    from matplotlib.figure import Figure

    original = Figure.savefig

    def savefig(self, *args, **kwargs):
        kwargs.setdefault("metadata", PNG_METADATA)
        return original(self, *args, **kwargs)

    Figure.savefig = savefig
    try:
        return draw()
    finally:
        Figure.savefig = original


#: File name in docs/figures → function drawing it into a path.
FIGURES: dict[str, Callable[[Path], None]] = {
    "architecture.png": draw_architecture,
    "dueling_head.png": draw_dueling_head,
    "learning_curves.png": draw_learning_curves,
    "gradient_agreement.png": draw_gradient_agreement,
}


def draw_all(out_dir: Path = FIGURES_DIR) -> list[Path]:
    """Draws every figure of `FIGURES` into `out_dir`; returns the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, draw in FIGURES.items():
        draw(out_dir / name)
        written.append(out_dir / name)
    return written


def _trim_metrics(source: Path, target: Path) -> None:
    """Copies the rows of `KEPT_TAGS` of a metrics.csv (values as written), times to 0.1 s."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(source, newline="") as inp, open(target, "w", newline="") as out:
        reader, writer = csv.reader(inp), csv.writer(out, lineterminator="\n")
        writer.writerow(next(reader))
        for step, seconds, tag, value in reader:
            if tag in KEPT_TAGS:
                writer.writerow([step, f"{float(seconds):.1f}", tag, value])


def train(data_dir: Path = DATA_DIR) -> dict:
    """Runs the comparison and keeps its manifest and trimmed metrics in `data_dir`."""
    from softeq.adapters.compare import parse_algo_spec, run_compare

    start, cpu_start = time.perf_counter(), _cpu_seconds()
    with tempfile.TemporaryDirectory() as scratch:
        # As in the demo, the learning rates decay linearly to 0 over the run.
        specs = [
            dataclasses.replace(spec, overrides=(*spec.overrides, ("lr_decay_steps", TRAIN_STEPS)))
            for spec in map(parse_algo_spec, ALGOS)
        ]
        result = run_compare(
            specs,
            seeds=list(SEEDS),
            run_overrides={
                "env_id": ENV_ID,
                "total_steps": TRAIN_STEPS,
                "eval_every": TRAIN_STEPS // EVAL_POINTS,
                "eval_episodes": EVAL_EPISODES,
                "checkpoint_every": TRAIN_STEPS,
                "keep_checkpoints": 1,
            },
            out_dir=Path(scratch) / "compare",
            workers=WORKERS,
            out=lambda line: print(line, flush=True),
        )
        shutil.rmtree(data_dir, ignore_errors=True)
        data_dir.mkdir(parents=True)
        manifest = json.loads((result.out_dir / "compare.json").read_text())
        for spec in manifest["specs"]:
            for run in spec["runs"]:
                _trim_metrics(result.out_dir / run / "metrics.csv", data_dir / run / "metrics.csv")
        (data_dir / "compare.json").write_text(json.dumps(manifest, indent=2) + "\n")
    provenance = {
        "command": "python docs/figures/make_figures.py --train",
        "commit": _commit(),
        "date": time.strftime("%Y-%m-%d"),
        "wall_seconds": round(time.perf_counter() - start, 1),
        "cpu_seconds": round(_cpu_seconds() - cpu_start, 1),
        "logical_cpus": os.cpu_count(),
    }
    (data_dir / "provenance.json").write_text(json.dumps(provenance, indent=2) + "\n")
    return provenance


def _cpu_seconds() -> float:
    """CPU time of this process and its finished children (the worker processes)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def _commit() -> str:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"], cwd=REPO, capture_output=True, text=True
        )
    except OSError:
        return "unknown"
    return result.stdout.strip() or "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--train", action="store_true", help="rerun the short CartPole comparison first"
    )
    args = parser.parse_args(argv)
    if args.train:
        provenance = train()
        print(f"trained in {provenance['wall_seconds']} s ({provenance['cpu_seconds']} s CPU)")
    for path in draw_all():
        print(path.relative_to(REPO))
    return 0


if __name__ == "__main__":
    sys.exit(main())
