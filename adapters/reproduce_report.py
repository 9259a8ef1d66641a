"""The report of a reproduction: per-run scores, statistics, figures and verdicts.

Everything is recomputed from the run folders a `softeq reproduce` call left
(`softeq.adapters.reproduce`), so the report of a partly finished reproduction
can be drawn at any time and redrawn when more runs finish.

Scores. A run's score is the mean raw return of the training episodes that
ended in the last 10% of its env steps (the paper's figures are training
curves); its final evaluation (10 episodes with the run's evaluation policy)
is reported beside it. Normalised score = (score − random) / (best − random)
per game, where random is the mean return of a uniformly random policy
(measured on the JAX envs over at least 200 episodes; Atari: the random
scores of Mnih et al. 2015) and best is the highest mean score of any variant
of the experiment on that game. Aggregates over runs and games (IQM, median,
mean) come with 95% stratified-bootstrap intervals (Agarwal et al. 2021);
`softeq.adapters.stats` computes them.

Files written into the report folder (`OUT/EXPERIMENT/SUITE/report/` unless
`--report-dir` names another):

* `scores.csv` — one row per run (game, variant, seed, score, normalised score,
  final evaluation, diverged-at step, env steps, and the mean length of the
  episodes behind the score: whether a target makes episodes longer or shorter);
* `aggregates.csv` — per variant: IQM, median and mean of normalised scores
  with their intervals;
* `verdicts.md` / `verdicts.json` — one row per claim of the paper;
* `curves.png` — per game, training return against env steps, mean and 95%
  bootstrap band over seeds;
* `aggregates.png` — IQM and median per variant with intervals;
* `cosine.png` — experiment 3: the per-update cosine between the soft-Q and
  the A2C gradient across training;
* `runs/GAME/VARIANT/seed-<s>.json` — a run card per finished run
  (`softeq.adapters.run_cards`): the report is drawn from these, so it can be
  redrawn, and the reproduction continued, where the run folders are gone.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from softeq.adapters import reproduce_claims as claims
from softeq.adapters import stats
from softeq.adapters.atomic_file import atomic_write, write_json
from softeq.adapters.logger import read_metrics
from softeq.adapters.plots import (
    _pyplot,
    interpolate_on_grid,
    save_figure,
    smoothed_episode_returns,
)
from softeq.adapters.reproduce import (
    Plan,
    Variant,
    checked_cards,
    finished_runs,
    read_plan_file,
)
from softeq.adapters.run_cards import RunRecord, curve_grid, rounded_curve, write_card

__all__ = ["RunRecord", "collect_runs", "write_cards", "write_report"]

RANDOM_SCORES_FILENAME = "random-scores.json"
TAIL_FRACTION = 0.1
BOOTSTRAP_REPS = 2000
MIN_GAIN = 0.1

#: Mean return of a uniformly random policy on the paper's Atari games
#: (Mnih et al. 2015, Nature, Extended Data Table 2).
ATARI_RANDOM_SCORES = {
    "ALE/BeamRider-v5": 363.9,
    "ALE/Breakout-v5": 1.7,
    "ALE/Enduro-v5": 0.0,
    "ALE/Pong-v5": -20.7,
    "ALE/Qbert-v5": 163.9,
    "ALE/Seaquest-v5": 68.4,
}


def tail_score(seed_dir: Path, total_steps: int, *, tag: str = "train/episode_return") -> float:
    """Mean of `tag` over the training episodes ending in the last 10% of the budget
    (the return by default; `"train/episode_length"` gives their mean length)."""
    return _tail_mean(read_metrics(seed_dir), total_steps, tag)


def _tail_mean(metrics: dict, total_steps: int, tag: str) -> float:
    if tag not in metrics:
        return math.nan
    steps, values = metrics[tag]
    tail = values[steps >= (1.0 - TAIL_FRACTION) * total_steps]
    if tail.size == 0:  # episodes longer than the tail: the last one that ended
        tail = values[-1:]
    return float(np.mean(tail)) if tail.size else math.nan


def record_from_folder(plan: Plan, game: str, label: str, seed: int, batch: Path) -> RunRecord:
    """The record of one finished run, read from its batch folder."""
    from softeq.adapters.jit_loop import read_summary, seed_dirname

    summary = read_summary(batch)
    entry = summary["seeds"][str(seed)]
    seed_dir = batch / seed_dirname(seed)
    metrics = read_metrics(seed_dir)
    total_steps = int(summary["total_steps"])
    env_steps = int(entry["env_steps"])
    final_eval = entry.get("final_eval_return")
    grid = curve_grid(env_steps)
    curve = cosine = None
    if "train/episode_return" in metrics:
        steps, returns = smoothed_episode_returns(*metrics["train/episode_return"])
        curve = rounded_curve(interpolate_on_grid(steps, returns, grid))
    if "learner/grad_cosine" in metrics:
        cosine = rounded_curve(interpolate_on_grid(*metrics["learner/grad_cosine"], grid))
    variant = plan.experiment.variant(label)
    return RunRecord(
        game=game,
        variant=label,
        seed=seed,
        score=_tail_mean(metrics, total_steps, "train/episode_return"),
        final_eval=math.nan if final_eval is None else float(final_eval),
        diverged_at=entry.get("diverged_at"),
        env_steps=env_steps,
        episode_length=_tail_mean(metrics, total_steps, "train/episode_length"),
        budget=total_steps,
        curve=curve,
        cosine=cosine,
        program=_program_name(plan, summary.get("program", str(batch))),
        # Summaries written before softeq counted earlier sittings hold the last
        # sitting only; the metrics clock runs across sittings (compilation aside).
        program_wall_s=max(float(summary["wall_s"]), _metrics_clock(seed_dir)),
        config=json.loads(json.dumps(dataclasses.asdict(plan.config(game, variant)))),
        machines=tuple(sorted({s["machine"] for s in read_plan_file(plan).get("sittings", [])})),
        provenance=f"run folder {batch.relative_to(plan.root).as_posix()}"
        if batch.is_relative_to(plan.root)
        else f"run folder {batch}",
    )


def _program_name(plan: Plan, program: str) -> str:
    """A program's folder relative to the reproduction's root (the same on every machine)."""
    path, root = Path(program).resolve(), plan.root.resolve()
    return path.relative_to(root).as_posix() if path.is_relative_to(root) else program


def collect_runs(plan: Plan) -> list[RunRecord]:
    """Every finished run of the plan's games, variants and seeds: read from its run
    folder where there is one, else from its card in the report folder."""
    cards = checked_cards(plan)
    records = []
    for game in plan.games:
        for variant in plan.experiment.variants:
            done = finished_runs(plan.variant_dir(game, variant))
            for seed in plan.seeds:
                if seed in done:
                    records.append(record_from_folder(plan, game, variant.label, seed, done[seed]))
                elif (game, variant.label, seed) in cards:
                    records.append(cards[(game, variant.label, seed)])
    return records


def write_cards(
    plan: Plan,
    *,
    games: Sequence[str] | None = None,
    variants: Sequence[Variant] | None = None,
    seeds: Sequence[int] | None = None,
) -> list[Path]:
    """Writes the card of every finished run folder of the plan (or of the `games`,
    `variants` and `seeds` given) into the report folder; returns their paths."""
    written = []
    for game in plan.games if games is None else games:
        for variant in plan.experiment.variants if variants is None else variants:
            done = finished_runs(plan.variant_dir(game, variant))
            for seed in plan.seeds if seeds is None else seeds:
                if seed in done:
                    record = record_from_folder(plan, game, variant.label, seed, done[seed])
                    written.append(
                        write_card(
                            plan.report_root,
                            record,
                            experiment=plan.experiment.name,
                            suite=plan.suite.name,
                        )
                    )
    return written


def random_scores(games: Sequence[str], cache: Path, *, episodes: int = 200) -> dict[str, float]:
    """Mean return of a uniformly random policy per game, cached in `cache` (JSON)."""
    saved: dict[str, float] = {}
    if cache.exists():
        with open(cache) as fh:
            saved = {k: float(v) for k, v in json.load(fh).items()}
    missing = [g for g in games if g not in saved and g not in ATARI_RANDOM_SCORES]
    for game in missing:
        saved[game] = _random_policy_return(game, episodes=episodes)
    if missing:
        write_json(cache, saved, sort_keys=True)
    return {g: ATARI_RANDOM_SCORES.get(g, saved.get(g, math.nan)) for g in games}


def _random_policy_return(game: str, *, episodes: int, num_envs: int = 64) -> float:
    """Mean return of `episodes` (at least) random-policy episodes on a JAX env."""
    import jax

    from softeq.adapters.jax_envs import make_jax_env

    env = make_jax_env(game)
    chunk = 256

    @jax.jit
    def rollout(key, state):
        def step(carry, key):
            state = carry
            k_act, k_env = jax.random.split(key)
            actions = jax.random.randint(k_act, (num_envs,), 0, env.num_actions)
            state, result = env.step(k_env, state, actions)
            return state, result.episode_returns

        return jax.lax.scan(step, state, jax.random.split(key, chunk))

    key = jax.random.key(20170419)  # fixed: the baseline must not depend on the caller
    key, reset_key = jax.random.split(key)
    state, _ = env.reset(reset_key, num_envs)
    returns: list[np.ndarray] = []
    while sum(r.size for r in returns) < episodes:
        key, sub = jax.random.split(key)
        state, ended = rollout(sub, state)
        ended = np.asarray(ended)
        returns.append(ended[~np.isnan(ended)])
    return float(np.mean(np.concatenate(returns)))


def score_table(
    plan: Plan,
    records: Sequence[RunRecord],
    random: dict[str, float],
    scope: tuple[tuple[str, ...], tuple[int, ...]],
) -> tuple[claims.Scores | None, dict[tuple[str, str, int], float]]:
    """Normalised `[R, G]` scores over the games and seeds of `scope` (`statistics_scope`).

    Returns `(scores or None if no seed is complete everywhere, normalised score per run)`.
    """
    by_key = {(r.game, r.variant, r.seed): r for r in records}
    labels = [v.label for v in plan.experiment.variants]
    best = {}
    for game in plan.games:
        means = []
        for label in labels:
            scores = [r.score for r in records if r.game == game and r.variant == label]
            finite = [x for x in scores if math.isfinite(x)]
            if finite:  # a run too short to end an episode has no score
                means.append(float(np.mean(finite)))
        best[game] = max(means) if means else math.nan
    normalised = {}
    for key, record in by_key.items():
        low, high = random[record.game], best[record.game]
        span = high - low
        normalised[key] = (record.score - low) / span if span > 0 else math.nan
    scope_games, seeds = scope
    games = tuple(g for g in scope_games if learned(random[g], best[g]))
    if not seeds or not games:
        return None, normalised
    values = {v: np.array([[normalised[(g, v, s)] for g in games] for s in seeds]) for v in labels}
    diverged = {
        v: np.array([[_diverged(by_key, g, v, s) for g in games] for s in seeds]) for v in labels
    }
    values = {v: np.nan_to_num(x, nan=0.0) for v, x in values.items()}
    return (
        claims.Scores(
            games=games, seeds=seeds, values=values, diverged=diverged, reps=BOOTSTRAP_REPS
        ),
        normalised,
    )


def complete_seeds(
    plan: Plan, records: Sequence[RunRecord], games: Sequence[str] | None = None
) -> tuple[int, ...]:
    """The seeds finished by every variant on every game of `games` (the plan's)."""
    keys = {(r.game, r.variant, r.seed) for r in records}
    labels = [v.label for v in plan.experiment.variants]
    games = plan.games if games is None else games
    return tuple(s for s in plan.seeds if all((g, v, s) in keys for g in games for v in labels))


def finished_games(plan: Plan, records: Sequence[RunRecord]) -> tuple[str, ...]:
    """The games on which every variant has finished every seed of the plan."""
    return tuple(g for g in plan.games if complete_seeds(plan, records, [g]) == plan.seeds)


def statistics_scope(
    plan: Plan, records: Sequence[RunRecord]
) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """`(games, seeds)` the statistics cover while a reproduction is under way.

    Games run one after the other, so an unfinished reproduction has some games
    with every variant and seed done and the rest pending: the statistics then
    cover the finished games (an interim result, which the report says). With
    no game finished, they cover every game over the seeds finished everywhere.
    """
    games = finished_games(plan, records)
    if games:
        return games, plan.seeds
    return plan.games, complete_seeds(plan, records)


def learned(random: float, best: float) -> bool:
    """Whether the best variant beat a random policy by enough for the game to count.

    The gain must reach `MIN_GAIN` of the scores' scale, max(|random|, |best|, 1).
    A game where no variant learned would otherwise be normalised by a tiny gain
    and enter the aggregates as pure noise; it is reported and left out.
    """
    if not (math.isfinite(random) and math.isfinite(best)):
        return False
    return best - random >= MIN_GAIN * max(abs(random), abs(best), 1.0)


def _diverged(by_key: dict, game: str, variant: str, seed: int) -> bool:
    return by_key[(game, variant, seed)].diverged_at is not None


def _on_grid(record: RunRecord, grid: np.ndarray, *, cosine: bool) -> np.ndarray:
    """A record's curve (or gradient cosine) on `grid`; NaN past the run's end."""
    values = np.array(record.cosine if cosine else record.curve, dtype=float)
    own = curve_grid(record.env_steps)
    if own.shape == grid.shape and np.array_equal(own, grid):
        return values
    return np.interp(grid, own, values, right=np.nan)


def _curve_band(curves: np.ndarray, rng: np.random.Generator):
    """Mean and 95% bootstrap band over seeds of `[S, T]` curves; columns with a NaN are cut."""
    keep = ~np.isnan(curves).any(axis=0)
    grid_mean = np.full(curves.shape[1], np.nan)
    low = np.full(curves.shape[1], np.nan)
    high = np.full(curves.shape[1], np.nan)
    if keep.any():
        m, lo, hi, _ = stats.mean_curve_ci(curves[:, keep], reps=BOOTSTRAP_REPS, rng=rng)
        grid_mean[keep], low[keep], high[keep] = m, lo, hi
    return grid_mean, low, high


def plot_curves(
    plan: Plan, records: Sequence[RunRecord], path: Path, *, cosine: bool = False
) -> Path | None:
    """Per game, training return (or the gradient cosine) against env steps, mean ± 95% band."""
    labels = (
        plan.experiment.cosine_variants if cosine else [v.label for v in plan.experiment.variants]
    )
    drawn = [r for r in records if (r.cosine if cosine else r.curve) is not None]
    games = [g for g in plan.games if any(r.game == g for r in drawn)]
    if not games or not labels:
        return None
    plt = _pyplot()
    cols = min(3, len(games))
    rows = math.ceil(len(games) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.8 * rows), squeeze=False)
    rng = np.random.default_rng(0)
    for ax, game in zip(axes.flat, games, strict=False):
        for label in labels:
            runs = [r for r in drawn if r.game == game and r.variant == label]
            if not runs:
                continue
            grid = curve_grid(max(r.env_steps for r in runs))
            curves = np.stack([_on_grid(r, grid, cosine=cosine) for r in runs])
            mean, low, high = _curve_band(curves, rng)
            (line,) = ax.plot(grid, mean, label=f"{label} (n={len(runs)})")
            ax.fill_between(grid, low, high, color=line.get_color(), alpha=0.2, linewidth=0)
        ax.set_title(game)
        ax.ticklabel_format(axis="x", style="sci", scilimits=(0, 0))
        ax.set_xlabel("environment steps")
        ax.set_ylabel("cos(soft-Q grad, A2C grad)" if cosine else "training episode return")
        ax.grid(alpha=0.3)
        if ax.has_data():
            ax.legend(fontsize="small")
    for ax in list(axes.flat)[len(games) :]:
        ax.axis("off")
    what = "gradient cosine" if cosine else "learning curves"
    fig.suptitle(
        f"{plan.experiment.name} ({plan.experiment.section}), {plan.suite.name}: {what}\n"
        "mean and 95% bootstrap band over seeds",
        fontsize="medium",
    )
    fig.tight_layout()
    return save_figure(fig, path)


def aggregate_rows(scores: claims.Scores) -> list[dict[str, Any]]:
    """Per variant: IQM, median and mean of normalised scores with 95% stratified intervals."""
    rows = []
    for label, values in scores.values.items():
        row: dict[str, Any] = {"variant": label, "runs": values.size}
        for name, fn in (
            ("iqm", stats.iqm),
            ("median", stats.aggregate_median),
            ("mean", stats.aggregate_mean),
        ):
            est = stats.stratified_bootstrap_ci(
                values, fn, reps=scores.reps, confidence=0.95, rng=scores.rng()
            )
            row[name], row[f"{name}_low"], row[f"{name}_high"] = est.value, est.low, est.high
        rows.append(row)
    return rows


def plot_aggregates(rows: Sequence[dict[str, Any]], path: Path, title: str) -> Path:
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 0.6 * len(rows) + 1.8), squeeze=False)
    ys = np.arange(len(rows))
    for ax, name in zip(axes[0], ("iqm", "median"), strict=True):
        centre = np.array([r[name] for r in rows])
        err = np.array([[r[name] - r[f"{name}_low"], r[f"{name}_high"] - r[name]] for r in rows]).T
        ax.errorbar(centre, ys, xerr=err, fmt="o", capsize=4)
        ax.set_yticks(ys, [r["variant"] for r in rows])
        ax.set_xlabel(f"{name.upper() if name == 'iqm' else name} of normalised score")
        ax.grid(alpha=0.3)
    fig.suptitle(title + "\n95% stratified bootstrap intervals", fontsize="medium")
    fig.tight_layout()
    return save_figure(fig, path)


def _write_csv(path: Path, rows: Sequence[dict[str, Any]]) -> Path:
    with atomic_write(path, newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def _prob(v: claims.Verdict) -> str:
    if not math.isfinite(v.improvement):
        return "n/a"
    return f"{v.improvement:.2f} [{v.improvement_low:.2f}, {v.improvement_high:.2f}]"


def _fmt(x: float) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x:+.3f}"


def _left_out_lines(
    plan: Plan, scores: claims.Scores | None, scope_games: Sequence[str]
) -> list[str]:
    lines = []
    pending = [g for g in plan.games if g not in scope_games]
    if pending:
        lines += [
            f"**Interim result**: {len(scope_games)} of {len(plan.games)} games finished; the "
            f"statistics cover those only. Still to run (rerun the command to continue): "
            f"{', '.join(pending)}.",
            "",
        ]
    if scores is None:
        return lines
    left_out = [g for g in scope_games if g not in scores.games]
    if left_out:
        lines += [
            f"Left out of the statistics, as no variant beat a random policy by "
            f"{MIN_GAIN:.0%} of the score scale: {', '.join(left_out)}.",
            "",
        ]
    return lines


def _without_curves_lines(records: Sequence[RunRecord]) -> list[str]:
    missing = sum(r.curve is None for r in records)
    if not missing:
        return []
    return [
        f"The learning curves show {len(records) - missing} of the {len(records)} runs; the "
        f"other {missing} have none (cards written from an earlier report's scores before "
        "run cards kept curves, or runs that ended no episode).",
        "",
    ]


def command_line(plan: Plan) -> str:
    """The `softeq reproduce` command that asks for exactly this plan."""
    parts = ["softeq reproduce", plan.experiment.name, "--suite", plan.suite.name]
    if plan.games != plan.suite.games:
        parts += ["--games", *plan.games]
    if plan.seeds != tuple(range(plan.suite.default_seeds)):
        parts += ["--seeds", *map(str, plan.seeds)]
    if plan.total_steps is not None:
        parts += ["--total-steps", str(plan.total_steps)]
    parts += ["--out", str(plan.out_dir)]
    return " ".join(parts)


def compute_spent(records: Sequence[RunRecord]) -> tuple[float, int, int]:
    """(wall seconds of the programs, env steps of all runs, programs) of finished runs.

    A program shared by several variants or seeds is counted once: their records
    name it alike (`RunRecord.program`), each with its wall time.
    """
    walls: dict[str, float] = {}
    counts: dict[str, int] = {}
    for record in records:
        walls[record.program] = max(walls.get(record.program, 0.0), record.program_wall_s)
        counts[record.program] = max(counts.get(record.program, 1), record.program_count)
    return sum(walls.values()), sum(r.env_steps for r in records), sum(counts.values())


def progress_lines(plan: Plan, *, max_lanes: int | None = None) -> list[str]:
    """Where a reproduction stands, without running anything (`softeq reproduce --status`).

    One line for the whole (runs finished, programs left), one per program left
    (the env step of its newest checkpoint, or "not started"), and the env steps
    left with, at the pace of the finished runs (program time per env step, all
    lanes counted), an estimate of the program time they need. `max_lanes`: the
    programs as `reproduce.run_plan` would cut them.
    """
    from softeq.adapters import checkpoint as ckpt_lib
    from softeq.adapters.jit_loop import checkpoint_dir
    from softeq.adapters.reproduce import plan_programs

    todo, finished = plan_programs(plan, max_lanes=max_lanes)
    total_runs = len(plan.experiment.variants) * len(plan.games) * len(plan.seeds)
    lines = [
        f"{plan.experiment.name} ({plan.experiment.section}) on the {plan.suite.name} suite: "
        f"{total_runs} runs, {finished} finished, {len(todo)} program(s) left -> {plan.root}"
    ]
    left = 0
    now = time.time()
    for program in todo:
        budget = plan.budget(program.variants[0])
        folder = program.folder(plan)
        saved = ckpt_lib.list_checkpoints(checkpoint_dir(folder))
        at = min(max((step for step, _ in saved), default=0), budget)
        left += (budget - at) * len(program.variants) * len(program.seeds)
        where = f"{at:,} of {budget:,} env steps" if at else "not started"
        # How long ago the program last wrote its log or a checkpoint: a program that is
        # running but has not written for much longer than a chunk takes has stalled.
        written = [p.stat().st_mtime for p in (folder / "train.log", *(p for _, p in saved))
                   if p.exists()]  # fmt: skip
        if written:
            where += f", last written {_age(now - max(written))} ago"
        names = " + ".join(v.label for v in program.variants)
        lines.append(f"  {program.game} {names} seeds {list(program.seeds)}: {where}")
    wall, steps, _ = compute_spent(collect_runs(plan))
    if not todo:
        lines.append("nothing left to run")
    elif steps:
        lines.append(
            f"left: {left:,} env steps; at the pace of the finished runs ({steps:,} env "
            f"steps in {wall / 60:.1f} min of program time) about {left * wall / steps / 60:.0f} "
            "min of program time (programs side by side with --workers share it out)"
        )
    else:
        lines.append(f"left: {left:,} env steps (no finished run yet to measure the pace)")
    return lines


def _age(seconds: float) -> str:
    minutes = max(0, round(seconds / 60))
    return f"{minutes} min" if minutes < 120 else f"{minutes / 60:.1f} h"


def _metrics_clock(seed_dir: Path) -> float:
    """The `time_s` of the last row of a run's `metrics.csv` (0 if it has none)."""
    path = seed_dir / "metrics.csv"
    if not path.exists():
        return 0.0
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        fh.seek(max(0, fh.tell() - 4096))
        lines = fh.read().decode("utf-8", errors="replace").strip().splitlines()
    try:
        return float(lines[-1].split(",")[1])
    except (IndexError, ValueError):  # empty, or the header alone
        return 0.0


def verdict_markdown(
    plan: Plan,
    verdicts: Sequence[claims.Verdict],
    scores,
    records: Sequence[RunRecord],
    scope: tuple[tuple[str, ...], tuple[int, ...]],
    random: dict[str, float],
) -> str:
    wall, steps, programs = compute_spent(records)
    machines = sorted(
        {s["machine"] for s in read_plan_file(plan).get("sittings", [])}
        | {m for r in records for m in r.machines}
    )
    scope_games, scope_seeds = scope
    lines = [
        f"# {plan.experiment.name} ({plan.experiment.section}): {plan.experiment.title}",
        "",
        f"Command: `{command_line(plan)}`",
        "",
        f"Compute: {len(records)} finished runs in {programs} jitted programs, "
        f"{steps:,} env steps, {wall / 60:.1f} min of program time (the programs' wall "
        f"times summed, compilation included; with `--workers` several ran side by side, "
        f"and the machine may have been shared with other work). Machine: "
        + ("; ".join(machines) if machines else "not recorded")
        + ".",
        "",
        f"Suite `{plan.suite.name}`: games {', '.join(plan.games)}; seeds "
        + (", ".join(map(str, scope_seeds)) or "none finished on every variant")
        + f"; budget {', '.join(f'{v.label} {plan.budget(v):,}' for v in plan.experiment.variants)}"
        " env steps per run.",
        "",
        *_left_out_lines(plan, scores, scope_games),
        *_without_curves_lines(records),
        "| claim | verdict | effect (normalised) | interval | P(a > b) | test |",
        "|---|---|---|---|---|---|",
    ]
    for v in verdicts:
        lines.append(
            f"| {v.claim} | **{v.outcome}** | {_fmt(v.effect)} | "
            f"[{_fmt(v.low)}, {_fmt(v.high)}] | {_prob(v)} | {v.detail} |"
        )
    lines += ["", *per_game_lines(plan, records, random)]
    return "\n".join(lines) + "\n"


def per_game_lines(plan: Plan, records: Sequence[RunRecord], random: dict[str, float]) -> list[str]:
    """A table of raw scores: per game (rows) and variant (columns), the mean score of the
    finished runs with a 95% bootstrap interval over seeds and the number of runs."""
    labels = [v.label for v in plan.experiment.variants]
    games = [g for g in plan.games if any(r.game == g for r in records)]
    if not games:
        return []
    lines = [
        "Score per game: the mean over finished runs of each run's score (training return "
        "over the last 10% of its env steps), its 95% bootstrap interval over seeds, and "
        "the number of runs; random: a uniformly random policy.",
        "",
        "| game | random | " + " | ".join(labels) + " |",
        "|---|---|" + "---|" * len(labels),
    ]
    rng = np.random.default_rng(0)
    for game in games:
        cells = []
        for label in labels:
            values = [r.score for r in records if r.game == game and r.variant == label]
            values = [x for x in values if math.isfinite(x)]
            if not values:
                cells.append("–")
                continue
            band = stats.mean_curve_ci(np.array(values)[:, None], reps=BOOTSTRAP_REPS, rng=rng)
            interval = (
                f" [{_score(band.low[0])}, {_score(band.high[0])}]" if len(values) > 1 else ""
            )
            cells.append(f"{_score(band.mean[0])}{interval} ({len(values)})")
        lines.append(f"| {game} | {_score(random[game])} | " + " | ".join(cells) + " |")
    return lines


def _score(x: float) -> str:
    """A raw score with three significant digits or so, without an exponent."""
    if not math.isfinite(x):
        return "n/a"
    digits = 0 if abs(x) >= 100 else 1 if abs(x) >= 10 else 2
    return f"{x:.{digits}f}"


def _finite(tree: Any) -> Any:
    """The document with NaN numbers as None (JSON has no NaN)."""
    if isinstance(tree, dict):
        return {k: _finite(v) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_finite(v) for v in tree]
    if isinstance(tree, float) and not math.isfinite(tree):
        return None
    return tree


def write_report(plan: Plan) -> list[Path]:
    """Recomputes and writes the report of `plan` into `plan.report_root`; returns the files.

    The run folders' cards are written first; the report is then drawn from every
    finished run, run folder or card (`collect_runs`).
    """
    report = plan.report_root
    report.mkdir(parents=True, exist_ok=True)
    write_cards(plan)
    records = collect_runs(plan)
    # Kept beside the cards: a report redrawn elsewhere normalises by the same numbers.
    random = random_scores(plan.games, report / RANDOM_SCORES_FILENAME)
    scope = statistics_scope(plan, records)
    scope_games, scope_seeds = scope
    scores, normalised = score_table(plan, records, random, scope)
    files = []
    if records:
        rows = [
            {
                "experiment": plan.experiment.name,
                "suite": plan.suite.name,
                "game": r.game,
                "variant": r.variant,
                "seed": r.seed,
                "score": r.score,
                "normalised_score": normalised[(r.game, r.variant, r.seed)],
                "random_score": random[r.game],
                "final_eval_return": r.final_eval,
                "diverged_at": "" if r.diverged_at is None else r.diverged_at,
                "env_steps": r.env_steps,
                "episode_length": r.episode_length,
            }
            for r in records
        ]
        files.append(_write_csv(report / "scores.csv", rows))
        curves = plot_curves(plan, records, report / "curves.png")
        if curves is not None:
            files.append(curves)
        if plan.experiment.cosine_variants:
            cosine = plot_curves(plan, records, report / "cosine.png", cosine=True)
            if cosine is not None:
                files.append(cosine)
    verdicts: list[claims.Verdict] = []
    if scores is not None:
        agg = aggregate_rows(scores)
        files.append(_write_csv(report / "aggregates.csv", agg))
        title = f"{plan.experiment.name}, {plan.suite.name} suite"
        files.append(plot_aggregates(agg, report / "aggregates.png", title))
        verdicts = [claims.evaluate(claim, scores) for claim in plan.experiment.claims]
    else:
        why = (
            f"no game where a variant beat a random policy by {MIN_GAIN:.0%} of the score scale"
            if scope_seeds
            else "no seed has finished on every variant and game yet"
        )
        verdicts = [claims.undecided(claim, why) for claim in plan.experiment.claims]
    md = report / "verdicts.md"
    md.write_text(verdict_markdown(plan, verdicts, scores, records, scope, random))
    files.append(md)
    doc = {
        "experiment": plan.experiment.name,
        "suite": plan.suite.name,
        "games": list(plan.games),
        "seeds": list(scores.seeds) if scores else [],
        "statistics_games": list(scores.games) if scores else [],
        "pending_games": [g for g in plan.games if g not in scope_games],
        "verdicts": [v.row() for v in verdicts],
    }
    (report / "verdicts.json").write_text(json.dumps(_finite(doc), indent=2) + "\n")
    files.append(report / "verdicts.json")
    return files
