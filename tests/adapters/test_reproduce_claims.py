"""The claim tests of `softeq reproduce` on constructed scores with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from softeq.adapters import reproduce_claims as claims


def _scores(values: dict[str, np.ndarray], diverged: dict[str, np.ndarray] | None = None):
    runs, games = next(iter(values.values())).shape
    diverged = diverged or {k: np.zeros(v.shape, bool) for k, v in values.items()}
    return claims.Scores(
        games=tuple(f"g{i}" for i in range(games)),
        seeds=tuple(range(runs)),
        values=values,
        diverged=diverged,
        reps=500,
    )


def _noise(runs: int, games: int, scale: float, seed: int) -> np.ndarray:
    return scale * np.random.default_rng(seed).standard_normal((runs, games))


def _spread(runs: int, games: int, scale: float) -> np.ndarray:
    """Deterministic spread: every column has mean exactly 0 and standard deviation `scale`.

    Cases that must land between two thresholds are built with it, so their mean
    difference sits where the test puts it instead of wherever a noise draw lands.
    """
    column = np.linspace(-1.0, 1.0, runs)
    column = scale * column / column.std()
    return np.stack([np.roll(column, g) for g in range(games)], axis=1)


def test_not_worse_reads_the_interval_against_the_margin():
    base = 0.5 + _noise(10, 2, 0.02, 0)
    claim = claims.NotWorse("a", "b", margin=0.1)
    # a is 0.05 worse: inside the margin, so "a ≥ b" holds as non-inferiority.
    assert claim.evaluate(_scores({"a": base - 0.05, "b": base})).outcome == claims.REPRODUCED
    # a is 0.5 worse: the whole interval lies below −δ.
    assert claim.evaluate(_scores({"a": base - 0.5, "b": base})).outcome == claims.NOT_REPRODUCED
    # a is exactly δ worse with spread: the interval straddles −δ.
    wide = {"a": base - 0.1 + _spread(10, 2, 0.2), "b": base}
    assert claim.evaluate(_scores(wide)).outcome == claims.INCONCLUSIVE


def test_worse_needs_the_interval_below_zero():
    base = 0.5 + _noise(10, 2, 0.02, 2)
    claim = claims.Worse("a", "b", margin=0.1)
    assert claim.evaluate(_scores({"a": base - 0.3, "b": base})).outcome == claims.REPRODUCED
    assert claim.evaluate(_scores({"a": base + 0.3, "b": base})).outcome == claims.NOT_REPRODUCED
    # Halfway between −δ and 0 with spread (half-width about 0.13): reaches past both.
    straddle = {"a": base - 0.05 + _spread(10, 2, 0.3), "b": base}
    assert claim.evaluate(_scores(straddle)).outcome == claims.INCONCLUSIVE


def test_equivalence_is_a_two_one_sided_test_not_a_failed_difference_test():
    base = 0.5 + _noise(12, 2, 0.02, 4)
    claim = claims.Equivalent("a", "b", margin=0.1)
    close = claim.evaluate(_scores({"a": base + 0.01, "b": base}))
    assert close.outcome == claims.REPRODUCED and -0.1 < close.low < close.high < 0.1
    far = claim.evaluate(_scores({"a": base + 0.4, "b": base}))
    assert far.outcome == claims.NOT_REPRODUCED
    # Noisy data with no detectable difference are not "equivalent": the interval is wide.
    noisy = claim.evaluate(_scores({"a": base + _spread(12, 2, 0.5), "b": base}))
    assert noisy.outcome == claims.INCONCLUSIVE


def test_mixed_by_game_needs_a_better_and_a_worse_game():
    base = 0.5 + _noise(10, 2, 0.02, 6)
    claim = claims.MixedByGame("a", "b")
    mixed = base + np.array([0.3, -0.3])
    assert claim.evaluate(_scores({"a": mixed, "b": base})).outcome == claims.REPRODUCED
    better = base + np.array([0.3, 0.2])
    assert claim.evaluate(_scores({"a": better, "b": base})).outcome == claims.NOT_REPRODUCED
    one_side = base + np.array([0.3, 0.0]) + _spread(10, 2, 0.3) * np.array([0, 1])
    assert claim.evaluate(_scores({"a": one_side, "b": base})).outcome == claims.INCONCLUSIVE


def test_one_game_cannot_show_a_mix():
    """An interim result with one finished game: worse there decides nothing yet."""
    base = 0.5 + _noise(10, 1, 0.02, 9)
    verdict = claims.MixedByGame("a", "b").evaluate(_scores({"a": base - 0.4, "b": base}))
    assert verdict.outcome == claims.INCONCLUSIVE and verdict.detail.startswith("needs 2 games")
    assert verdict.high < 0  # the one game's difference is still reported


def test_unstable_counts_divergence_as_instability():
    base = 0.5 + _noise(10, 2, 0.02, 8)
    claim = claims.Unstable("a", "b")
    stable = claim.evaluate(_scores({"a": base, "b": base}))
    assert stable.outcome == claims.NOT_REPRODUCED
    flags = np.zeros((10, 2), bool)
    flags[3, 1] = True
    diverged = _scores({"a": base, "b": base}, {"a": flags, "b": np.zeros((10, 2), bool)})
    verdict = claim.evaluate(diverged)
    assert verdict.outcome == claims.REPRODUCED and "1/20 runs diverged" in verdict.detail
    assert claim.evaluate(_scores({"a": base - 0.4, "b": base})).outcome == claims.REPRODUCED


@pytest.mark.parametrize("runs", [1, 2])
def test_too_few_seeds_give_no_verdict(runs):
    values = {"a": np.ones((runs, 2)), "b": np.zeros((runs, 2))}
    for claim in (claims.NotWorse("a", "b"), claims.MixedByGame("a", "b")):
        verdict = claims.evaluate(claim, _scores(values))
        assert verdict.outcome == claims.INCONCLUSIVE
        assert math.isnan(verdict.effect) and f"needs {claims.MIN_SEEDS}" in verdict.detail
