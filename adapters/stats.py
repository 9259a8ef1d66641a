"""Statistics for comparing agents: the estimators of rliable, in plain numpy.

Agarwal et al. (2021), "Deep Reinforcement Learning at the Edge of the
Statistical Precipice", recommend reporting aggregate scores across games as
the interquartile mean (IQM) and the median of per-game means, each with a
stratified-bootstrap confidence interval, plus the probability of improvement
of one algorithm over another. Their package, rliable, computes these. rliable
1.2.0 installs here but cannot be imported: its dependency arch 7.2 fails on
pandas 3 (`TypeError: deprecate_kwarg() missing 1 required positional
argument`). This module therefore implements the same estimators with numpy
alone, following rliable's definitions (noted in each docstring), plus the few
tests a reproduction needs: the difference of two algorithms with its interval,
a one-sided verdict on it, and an equivalence test (two one-sided tests).

Conventions:

- A score matrix is `[R, G]`: R independent runs (seeds) × G games (tasks).
  A 1-D array `[R]` is read as R runs of a single game. Two algorithms compared
  with each other must cover the same G games; their run counts may differ.
- Bootstrap resampling is *stratified*: the runs of each game are resampled
  with replacement independently of the other games, so a resample never moves
  a score from one game to another (rliable's `StratifiedBootstrap`). Two
  algorithms are resampled independently of each other
  (rliable's `StratifiedIndependentBootstrap`).
- Intervals are percentile intervals (rliable's default, through arch).
- Every random function takes `rng`, an `np.random.Generator` or an integer
  seed; with the same `rng` the result is the same.
- Scores must be finite; NaN or infinite entries raise `ValueError`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

# The three verdicts a paper's claim can get.
REPRODUCED = "reproduced"
NOT_REPRODUCED = "not reproduced"
INCONCLUSIVE = "inconclusive"

# rliable's IQM: scipy.stats.trim_mean with this proportion cut from each end.
IQM_TRIM = 0.25


class Estimate(NamedTuple):
    """A point estimate with its bootstrap interval.

    Attributes:
      value: the statistic on the data as given.
      low: lower end of the percentile interval.
      high: upper end of the percentile interval.
      confidence: the interval's nominal coverage, in (0, 1).
    """

    value: float
    low: float
    high: float
    confidence: float


class CurveBand(NamedTuple):
    """A learning curve's mean over seeds with a pointwise bootstrap interval.

    Attributes:
      mean: `[T]` mean over seeds at each step.
      low: `[T]` lower end of the interval at each step.
      high: `[T]` upper end of the interval at each step.
      confidence: the intervals' nominal coverage, in (0, 1).
    """

    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray
    confidence: float


class Equivalence(NamedTuple):
    """The outcome of an equivalence test of x and y within ±margin.

    Attributes:
      difference: statistic(x) − statistic(y).
      low: lower end of the difference's interval.
      high: upper end of the difference's interval.
      margin: the equivalence margin (> 0), in the scores' units.
      confidence: the interval's coverage (0.90 gives two one-sided tests at 5 %).
      verdict: `REPRODUCED` when the interval lies inside [−margin, margin] (the
        claim "x and y are equivalent" holds), `NOT_REPRODUCED` when it lies
        entirely outside it (they differ by more than the margin), else
        `INCONCLUSIVE`.
    """

    difference: float
    low: float
    high: float
    margin: float
    confidence: float
    verdict: str


# --------------------------------------------------------------------------- checks


def _scores(name: str, scores) -> np.ndarray:
    """`scores` as a finite float64 `[R, G]` matrix (`[R]` becomes `[R, 1]`), or ValueError."""
    array = np.asarray(scores, dtype=np.float64)
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2:
        raise ValueError(
            f"`{name}` must be a score matrix [runs, games] or a vector [runs], "
            f"got an array of shape {array.shape}."
        )
    if array.size == 0:
        raise ValueError(
            f"`{name}` must hold at least one run of one game, got shape {array.shape}."
        )
    _check_finite(name, array)
    return array


def _check_finite(name: str, array: np.ndarray) -> None:
    bad = ~np.isfinite(array)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"`{name}` must hold finite scores only, got {array[where]} at index {where} "
            f"({int(bad.sum())} non-finite entries)."
        )


def _same_games(x: np.ndarray, y: np.ndarray) -> None:
    if x.shape[1] != y.shape[1]:
        raise ValueError(
            f"`x` and `y` must cover the same games, got {x.shape[1]} games in `x` "
            f"(shape {x.shape}) and {y.shape[1]} in `y` (shape {y.shape})."
        )


def _confidence(confidence: float) -> float:
    if isinstance(confidence, bool) or not 0.0 < float(confidence) < 1.0:
        raise ValueError(f"`confidence` must be a number in (0, 1), got {confidence!r}.")
    return float(confidence)


def _reps(reps: int) -> int:
    if isinstance(reps, bool) or not isinstance(reps, int | np.integer) or reps < 1:
        raise ValueError(f"`reps` must be an integer >= 1, got {reps!r}.")
    return int(reps)


def _generator(rng: np.random.Generator | int) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, int | np.integer) and not isinstance(rng, bool) and rng >= 0:
        return np.random.default_rng(int(rng))
    raise ValueError(
        f"`rng` must be a numpy Generator or a non-negative integer seed, got {rng!r}."
    )


def _percentiles(samples: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """The central `confidence` percentile interval of `samples` along axis 0."""
    tail = 100.0 * (1.0 - confidence) / 2.0
    low, high = np.percentile(samples, [tail, 100.0 - tail], axis=0)
    return low, high


# ------------------------------------------------------------------- point estimates


def normalise(scores, *, low, high) -> np.ndarray:
    """Normalised scores (x − low) / (high − low), e.g. random = 0 and reference = 1.

    Args:
      scores: `[R, G]` raw scores (or any shape whose last axis is the games).
      low: the score mapped to 0: a number, or `[G]` one per game.
      high: the score mapped to 1: a number, or `[G]` one per game.

    Returns:
      An array of the shape of `scores`, float64.
    """
    array = np.asarray(scores, dtype=np.float64)
    if array.size == 0:
        raise ValueError(f"`scores` must not be empty, got shape {array.shape}.")
    _check_finite("scores", array)
    low_array = np.asarray(low, dtype=np.float64)
    high_array = np.asarray(high, dtype=np.float64)
    _check_finite("low", low_array)
    _check_finite("high", high_array)
    try:
        shape = np.broadcast_shapes(array.shape, low_array.shape, high_array.shape)
    except ValueError:
        shape = None
    if shape != array.shape:
        raise ValueError(
            f"`low` (shape {low_array.shape}) and `high` (shape {high_array.shape}) must be "
            f"numbers or one value per game ({array.shape[-1]} games in `scores`)."
        )
    width = np.atleast_1d(high_array - low_array)
    if np.any(width == 0):
        game = int(np.argmax(width == 0))
        tied = np.broadcast_to(np.atleast_1d(low_array), width.shape)[game]
        raise ValueError(
            f"`high` must differ from `low`, got high == low == {tied} "
            f"(game {game}); the normalisation would divide by zero."
        )
    return (array - low_array) / (high_array - low_array)


def iqm(scores) -> float:
    """The interquartile mean of all scores (runs × games pooled): the mean of the middle 50 %.

    As rliable's `aggregate_iqm`, i.e. `scipy.stats.trim_mean(scores, 0.25,
    axis=None)`: of the N pooled scores sorted, ⌊N/4⌋ are dropped from each end
    and the rest averaged (for N < 4 nothing is dropped).

    Args:
      scores: `[R, G]` score matrix (or `[R]`).

    Returns:
      The IQM, a float.

    Example:
      >>> iqm([[1, 2, 3, 4], [5, 6, 7, 100]])  # sorted, the middle four: 3 4 5 6
      4.5
    """
    flat = np.sort(_scores("scores", scores), axis=None)
    cut = int(IQM_TRIM * flat.size)
    return float(np.mean(flat[cut : flat.size - cut]))


def aggregate_mean(scores) -> float:
    """The mean over games of the per-game mean over runs (rliable's `aggregate_mean`).

    Args:
      scores: `[R, G]` score matrix (or `[R]`).

    Returns:
      A float.
    """
    return float(np.mean(np.mean(_scores("scores", scores), axis=0)))


def aggregate_median(scores) -> float:
    """The median over games of the per-game mean over runs (rliable's `aggregate_median`).

    Args:
      scores: `[R, G]` score matrix (or `[R]`).

    Returns:
      A float.
    """
    return float(np.median(np.mean(_scores("scores", scores), axis=0)))


def probability_of_improvement(x, y) -> float:
    """P(X > Y) + ½ P(X = Y), averaged over games: how often a run of x beats a run of y.

    For each game, every run of x is compared with every run of y (ties count
    one half); the per-game fractions are averaged over games. This is
    rliable's `probability_of_improvement` (the Mann–Whitney U statistic over
    R_x·R_y per game), Agarwal et al. (2021).

    Args:
      x: `[R_x, G]` scores of algorithm X (or `[R_x]`).
      y: `[R_y, G]` scores of algorithm Y on the same games (or `[R_y]`).

    Returns:
      A float in [0, 1]; 0.5 means neither tends to score higher.

    Example:
      >>> round(probability_of_improvement([1, 2, 3], [0, 2, 2]), 4)  # 6 of 9 pairs
      0.6667
    """
    x, y = _scores("x", x), _scores("y", y)
    _same_games(x, y)
    return _probability_of_improvement(x, y)


def _probability_of_improvement(x: np.ndarray, y: np.ndarray) -> float:
    # [R_x, R_y, G] pairwise comparisons within each game.
    greater = x[:, None, :] > y[None, :, :]
    equal = x[:, None, :] == y[None, :, :]
    per_game = np.mean(greater + 0.5 * equal, axis=(0, 1))
    return float(np.mean(per_game))


# ------------------------------------------------------------------------ bootstrap


def _resample(scores: np.ndarray, reps: int, rng: np.random.Generator) -> np.ndarray:
    """`[reps, R, G]` stratified resamples: within each game, runs drawn with replacement."""
    runs, games = scores.shape
    rows = rng.integers(0, runs, size=(reps, runs, games))
    return scores[rows, np.arange(games)]


def stratified_bootstrap_ci(
    scores,
    statistic: Callable[[np.ndarray], float],
    *,
    reps: int,
    confidence: float = 0.95,
    rng: np.random.Generator | int,
) -> Estimate:
    """A statistic of a score matrix with its stratified-bootstrap percentile interval.

    Each of the `reps` resamples draws, for every game separately, R runs with
    replacement from that game's R runs; the statistic of each resample gives
    the bootstrap distribution, whose central `confidence` percentiles bound
    the interval (rliable's `get_interval_estimates`).

    Args:
      scores: `[R, G]` score matrix (or `[R]`).
      statistic: maps an `[R, G]` matrix to a number, e.g. `iqm`, `aggregate_median`.
      reps: number of bootstrap resamples (rliable uses 2000 to 50000).
      confidence: the interval's coverage, in (0, 1).
      rng: numpy Generator or integer seed.

    Returns:
      `Estimate(value, low, high, confidence)`, value = statistic(scores).
    """
    scores = _scores("scores", scores)
    confidence, reps, rng = _confidence(confidence), _reps(reps), _generator(rng)
    samples = np.array([statistic(sample) for sample in _resample(scores, reps, rng)], float)
    low, high = _percentiles(samples, confidence)
    return Estimate(float(statistic(scores)), float(low), float(high), confidence)


def two_sample_bootstrap_ci(
    x,
    y,
    statistic: Callable[[np.ndarray, np.ndarray], float],
    *,
    reps: int,
    confidence: float = 0.95,
    rng: np.random.Generator | int,
) -> Estimate:
    """A statistic of two algorithms' scores with its bootstrap percentile interval.

    x and y are resampled independently of each other, each stratified by game
    (rliable's `StratifiedIndependentBootstrap`).

    Args:
      x: `[R_x, G]` scores of algorithm X (or `[R_x]`).
      y: `[R_y, G]` scores of algorithm Y on the same games (or `[R_y]`).
      statistic: maps `(x [R_x, G], y [R_y, G])` to a number.
      reps: number of bootstrap resamples.
      confidence: the interval's coverage, in (0, 1).
      rng: numpy Generator or integer seed.

    Returns:
      `Estimate(value, low, high, confidence)`, value = statistic(x, y).
    """
    x, y = _scores("x", x), _scores("y", y)
    _same_games(x, y)
    confidence, reps, rng = _confidence(confidence), _reps(reps), _generator(rng)
    x_samples, y_samples = _resample(x, reps, rng), _resample(y, reps, rng)
    samples = np.array([statistic(a, b) for a, b in zip(x_samples, y_samples, strict=True)])
    low, high = _percentiles(samples.astype(np.float64), confidence)
    return Estimate(float(statistic(x, y)), float(low), float(high), confidence)


def probability_of_improvement_ci(
    x, y, *, reps: int, confidence: float = 0.95, rng: np.random.Generator | int
) -> Estimate:
    """`probability_of_improvement(x, y)` with its stratified-bootstrap interval.

    Args:
      x: `[R_x, G]` scores of algorithm X (or `[R_x]`).
      y: `[R_y, G]` scores of algorithm Y on the same games (or `[R_y]`).
      reps: number of bootstrap resamples.
      confidence: the interval's coverage, in (0, 1).
      rng: numpy Generator or integer seed.

    Returns:
      `Estimate` of P(X > Y) + ½ P(X = Y).
    """
    return two_sample_bootstrap_ci(
        x, y, _probability_of_improvement, reps=reps, confidence=confidence, rng=rng
    )


def mean_curve_ci(
    curves, *, reps: int, confidence: float = 0.95, rng: np.random.Generator | int
) -> CurveBand:
    """Learning curves' mean over seeds with a pointwise bootstrap interval.

    The seeds (rows) are resampled with replacement, whole curves at a time, so
    the interval at each step is the percentile interval of the resampled mean.
    A single seed gives a zero-width band.

    Args:
      curves: `[S, T]` one curve per seed, all on the same grid of T steps.
      reps: number of bootstrap resamples.
      confidence: the intervals' coverage, in (0, 1).
      rng: numpy Generator or integer seed.

    Returns:
      `CurveBand(mean [T], low [T], high [T], confidence)`.
    """
    array = np.asarray(curves, dtype=np.float64)
    if array.ndim != 2 or array.size == 0:
        raise ValueError(
            f"`curves` must be a non-empty matrix [seeds, steps], got shape {array.shape}."
        )
    _check_finite("curves", array)
    confidence, reps, rng = _confidence(confidence), _reps(reps), _generator(rng)
    seeds = array.shape[0]
    # A resample of seeds is a count per seed; its mean curve is counts @ curves / S,
    # which avoids materialising the [reps, S, T] array of resampled curves.
    counts = rng.multinomial(seeds, np.full(seeds, 1.0 / seeds), size=reps)
    low, high = _percentiles(counts @ array / seeds, confidence)
    return CurveBand(array.mean(axis=0), low, high, confidence)


# --------------------------------------------------------------------- comparisons


def difference(
    x,
    y,
    *,
    statistic: Callable[[np.ndarray], float] = aggregate_mean,
    reps: int,
    confidence: float = 0.95,
    rng: np.random.Generator | int,
) -> Estimate:
    """The effect statistic(x) − statistic(y) with its bootstrap interval.

    With the default statistic this is the difference of the (per-game, then
    across-game) mean scores.

    Args:
      x: `[R_x, G]` scores of algorithm X (or `[R_x]`).
      y: `[R_y, G]` scores of algorithm Y on the same games (or `[R_y]`).
      statistic: maps an `[R, G]` matrix to a number (`aggregate_mean`, `iqm`, ...).
      reps: number of bootstrap resamples.
      confidence: the interval's coverage, in (0, 1).
      rng: numpy Generator or integer seed.

    Returns:
      `Estimate` of the difference.
    """
    return two_sample_bootstrap_ci(
        x,
        y,
        lambda a, b: statistic(a) - statistic(b),
        reps=reps,
        confidence=confidence,
        rng=rng,
    )


def verdict(effect: Estimate) -> str:
    """The verdict on the one-sided claim "x ≥ y" from the interval of x − y.

    The interval entirely above 0 → `REPRODUCED`; entirely below 0 →
    `NOT_REPRODUCED`; touching or containing 0 → `INCONCLUSIVE` (the data
    cannot tell). For the claim "x ≤ y", pass `difference(y, x, ...)`.

    Args:
      effect: an `Estimate` of x − y, e.g. from `difference`.

    Returns:
      One of `REPRODUCED`, `NOT_REPRODUCED`, `INCONCLUSIVE`.

    Example:
      >>> proper, naive = [[3.0], [4.0], [5.0]], [[1.0], [2.0], [1.5]]
      >>> verdict(difference(proper, naive, reps=1000, rng=0))
      'reproduced'
    """
    low, high = float(effect.low), float(effect.high)
    if not (np.isfinite(low) and np.isfinite(high)) or low > high:
        raise ValueError(
            f"`effect` must have finite ends with low <= high, got low={low}, high={high}."
        )
    if low > 0:
        return REPRODUCED
    if high < 0:
        return NOT_REPRODUCED
    return INCONCLUSIVE


def equivalence(
    x,
    y,
    *,
    margin: float,
    statistic: Callable[[np.ndarray], float] = aggregate_mean,
    reps: int,
    confidence: float = 0.90,
    rng: np.random.Generator | int,
) -> Equivalence:
    """Equivalence of x and y within ±margin by two one-sided tests (TOST) on a bootstrap CI.

    x and y are declared equivalent when the `confidence` interval of
    statistic(x) − statistic(y) lies inside [−margin, margin]. With the default
    90 % interval this is the two one-sided tests procedure at level 5 %: both
    "difference ≤ −margin" and "difference ≥ margin" are rejected. A failed
    difference test is not evidence of equivalence; this is.

    Args:
      x: `[R_x, G]` scores of algorithm X (or `[R_x]`).
      y: `[R_y, G]` scores of algorithm Y on the same games (or `[R_y]`).
      margin: the largest difference still counted as equivalent, > 0, in the
        scores' units; state it with the result.
      statistic: maps an `[R, G]` matrix to a number.
      reps: number of bootstrap resamples.
      confidence: the interval's coverage, in (0, 1); 0.90 for TOST at 5 %.
      rng: numpy Generator or integer seed.

    Returns:
      `Equivalence(difference, low, high, margin, confidence, verdict)`.

    Example:
      >>> a2c, soft_q = [10.0, 11.0, 12.0, 11.0], [10.5, 11.5, 11.0, 11.0]
      >>> equivalence(a2c, soft_q, margin=2.0, reps=1000, rng=0).verdict
      'reproduced'
    """
    is_number = isinstance(margin, int | float | np.number) and not isinstance(margin, bool)
    if not is_number or not np.isfinite(margin) or margin <= 0:
        raise ValueError(f"`margin` must be a finite number > 0, got {margin!r}.")
    effect = difference(x, y, statistic=statistic, reps=reps, confidence=confidence, rng=rng)
    if -margin <= effect.low and effect.high <= margin:
        outcome = REPRODUCED
    elif effect.low > margin or effect.high < -margin:
        outcome = NOT_REPRODUCED
    else:
        outcome = INCONCLUSIVE
    return Equivalence(
        effect.value, effect.low, effect.high, float(margin), effect.confidence, outcome
    )
