"""The statistics module against hand-computed cases, scipy's references and known coverage."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as scipy_stats

from softeq.adapters import stats
from softeq.adapters.stats import (
    INCONCLUSIVE,
    NOT_REPRODUCED,
    REPRODUCED,
    Estimate,
    aggregate_mean,
    aggregate_median,
    difference,
    equivalence,
    iqm,
    mean_curve_ci,
    normalise,
    probability_of_improvement,
    probability_of_improvement_ci,
    stratified_bootstrap_ci,
    two_sample_bootstrap_ci,
    verdict,
)

# ----------------------------------------------------------------- point estimates


def test_iqm_of_eight_scores_by_hand():
    # Sorted: 1 2 | 3 4 5 6 | 7 100. N = 8, floor(8/4) = 2 dropped from each end.
    assert iqm([[1, 2, 3, 4], [5, 6, 7, 100]]) == pytest.approx((3 + 4 + 5 + 6) / 4)


def test_iqm_of_five_scores_drops_one_from_each_end():
    # floor(5/4) = 1: the middle three of 10 20 30 40 1000.
    assert iqm([[40], [10], [1000], [30], [20]]) == pytest.approx(30.0)


def test_iqm_of_fewer_than_four_scores_is_the_mean():
    assert iqm([1.0, 2.0, 6.0]) == pytest.approx(3.0)


def test_iqm_equals_scipy_trim_mean():
    rng = np.random.default_rng(0)
    for shape in [(3, 1), (5, 3), (7, 5), (10, 4), (13, 2)]:
        scores = rng.standard_t(2, size=shape)
        assert iqm(scores) == pytest.approx(scipy_stats.trim_mean(scores, 0.25, axis=None))


def test_median_and_mean_of_per_game_means_by_hand():
    scores = np.array([[1.0, 10.0, 0.0], [3.0, 20.0, 4.0]])  # per-game means 2, 15, 2
    assert aggregate_median(scores) == pytest.approx(2.0)
    assert aggregate_mean(scores) == pytest.approx(19.0 / 3.0)


def test_median_is_over_games_not_over_all_scores():
    # Pooled median of all six scores is 3.5; the median of the three game means is 2.
    scores = np.array([[1.0, 10.0, 0.0], [3.0, 20.0, 4.0]])
    assert aggregate_median(scores) != pytest.approx(np.median(scores))


def test_probability_of_improvement_by_hand_with_ties():
    # x vs y pairs: 1 beats 0 (1); 2 beats 0, ties 2 twice (1 + 0.5 + 0.5); 3 beats all (3).
    assert probability_of_improvement([1, 2, 3], [0, 2, 2]) == pytest.approx(6 / 9)
    assert probability_of_improvement([0, 2, 2], [1, 2, 3]) == pytest.approx(3 / 9)


def test_probability_of_improvement_averages_games():
    # Game 0: x always wins (1). Game 1: x never wins (0). Game 2: all ties (0.5).
    x = np.array([[5.0, 0.0, 1.0], [6.0, 1.0, 1.0]])
    y = np.array([[1.0, 7.0, 1.0], [2.0, 8.0, 1.0], [3.0, 9.0, 1.0]])
    assert probability_of_improvement(x, y) == pytest.approx((1.0 + 0.0 + 0.5) / 3)


def test_probability_of_improvement_equals_mann_whitney_u():
    rng = np.random.default_rng(1)
    x = rng.integers(0, 5, size=(6, 3)).astype(float)  # small integers: many ties
    y = rng.integers(0, 5, size=(4, 3)).astype(float)
    expected = np.mean(
        [
            scipy_stats.mannwhitneyu(x[:, g], y[:, g], alternative="greater").statistic / (6 * 4)
            for g in range(3)
        ]
    )
    assert probability_of_improvement(x, y) == pytest.approx(expected)


def test_normalise_by_hand_with_per_game_bounds():
    scores = np.array([[0.0, 15.0], [10.0, 25.0]])
    out = normalise(scores, low=[0.0, 5.0], high=[10.0, 25.0])
    np.testing.assert_allclose(out, [[0.0, 0.5], [1.0, 1.0]])
    np.testing.assert_allclose(normalise([2.0, 4.0], low=2.0, high=6.0), [0.0, 0.5])


def test_normalise_refuses_equal_bounds_naming_the_game():
    with pytest.raises(ValueError, match=r"`high` must differ from `low`.*3\.0.*game 1"):
        normalise([[1.0, 2.0]], low=[0.0, 3.0], high=[1.0, 3.0])


# ------------------------------------------------------------------------ bootstrap


def test_bootstrap_interval_contains_the_estimate_and_shrinks_with_more_runs():
    rng = np.random.default_rng(2)
    small = rng.normal(size=(10, 3))
    large = rng.normal(size=(1000, 3))
    widths = []
    for scores in (small, large):
        for statistic in (iqm, aggregate_mean, aggregate_median):
            estimate = stratified_bootstrap_ci(scores, statistic, reps=500, rng=3)
            assert estimate.low <= estimate.value <= estimate.high, (statistic, estimate)
        estimate = stratified_bootstrap_ci(scores, aggregate_mean, reps=500, rng=3)
        widths.append(estimate.high - estimate.low)
    # The width scales as 1/sqrt(R): 100x the runs gives about a tenth; a third is lenient.
    assert widths[1] < widths[0] / 3, widths


def test_bootstrap_is_deterministic_given_the_seed():
    scores = np.random.default_rng(4).normal(size=(8, 2))
    first = stratified_bootstrap_ci(scores, iqm, reps=200, rng=7)
    again = stratified_bootstrap_ci(scores, iqm, reps=200, rng=np.random.default_rng(7))
    other = stratified_bootstrap_ci(scores, iqm, reps=200, rng=8)
    assert first == again
    assert first != other


def test_bootstrap_interval_covers_a_normal_mean_about_95_percent_of_the_time():
    """Coverage over 300 independent samples of 30 draws from N(3, 2²).

    The percentile interval of a mean is x̄ ± 1.96·σ̂·sqrt((n−1)/n)/sqrt(n)
    asymptotically, whose exact coverage for n = 30 is P(|t₂₉| < 1.93) ≈ 0.936.
    Over 300 trials the observed rate has a binomial sd of about 0.014, so
    [0.89, 0.98] is more than 3 sd on both sides; the test is seeded.
    """
    rng = np.random.default_rng(5)
    trials, covered = 300, 0
    for _ in range(trials):
        sample = rng.normal(3.0, 2.0, size=30)
        estimate = stratified_bootstrap_ci(sample, aggregate_mean, reps=400, rng=rng)
        covered += estimate.low <= 3.0 <= estimate.high
    assert 0.89 <= covered / trials <= 0.98, covered / trials


def test_constant_scores_give_a_zero_width_interval():
    scores = np.full((6, 3), 2.5)
    for statistic in (iqm, aggregate_mean, aggregate_median):
        estimate = stratified_bootstrap_ci(scores, statistic, reps=100, rng=0)
        assert estimate.low == estimate.value == estimate.high == 2.5
    effect = difference(np.full(4, 1.0), np.full(3, 3.0), reps=100, rng=0)
    assert effect.low == effect.value == effect.high == -2.0
    band = mean_curve_ci(np.ones((5, 4)), reps=100, rng=0)
    np.testing.assert_array_equal(band.low, band.high)


def test_resampling_never_moves_scores_between_games():
    """Each game is constant across runs but games differ: a stratified resample is the data.

    Pooled (unstratified) resampling would mix 0s and 100s within a game, so the
    median of per-game means would vary between resamples and the interval
    would have width; stratified resampling leaves it exactly at its value.
    """
    scores = np.tile([0.0, 100.0, 50.0], (5, 1))
    estimate = stratified_bootstrap_ci(scores, aggregate_median, reps=300, rng=1)
    assert estimate.low == estimate.high == estimate.value == 50.0

    # With noisy runs, every resampled column holds only that game's own scores.
    noisy = np.stack([np.arange(8.0), 100 + np.arange(8.0)], axis=1)

    def stays_in_its_game(sample):
        return float(np.all(sample[:, 0] < 50) and np.all(sample[:, 1] >= 100))

    assert stratified_bootstrap_ci(noisy, stays_in_its_game, reps=300, rng=2).low == 1.0

    pooled = np.random.default_rng(3).choice(noisy.ravel(), size=(300, 8, 2))
    assert np.mean([stays_in_its_game(s) for s in pooled]) < 0.01  # mixing is visible


def test_two_sample_bootstrap_resamples_x_and_y_separately():
    x = np.tile([1.0, 2.0], (4, 1))
    y = np.tile([5.0, 7.0], (3, 1))

    def shapes_and_sources(a, b):
        return float(a.shape == (4, 2) and b.shape == (3, 2) and a.max() <= 2 and b.min() >= 5)

    assert two_sample_bootstrap_ci(x, y, shapes_and_sources, reps=50, rng=0).low == 1.0


def test_probability_of_improvement_interval():
    rng = np.random.default_rng(6)
    better = rng.normal(1.0, 1.0, size=(10, 3))
    worse = rng.normal(0.0, 1.0, size=(10, 3))
    estimate = probability_of_improvement_ci(better, worse, reps=500, rng=0)
    assert estimate.value == pytest.approx(probability_of_improvement(better, worse))
    assert 0.5 < estimate.low <= estimate.value <= estimate.high <= 1.0
    identical = probability_of_improvement_ci(worse, worse, reps=500, rng=0)
    assert identical.value == 0.5
    assert identical.low < 0.5 < identical.high


def test_mean_curve_band_by_hand_and_coverage():
    curves = np.array([[0.0, 1.0, 2.0], [2.0, 3.0, 2.0]])
    band = mean_curve_ci(curves, reps=400, rng=0)
    np.testing.assert_allclose(band.mean, [1.0, 2.0, 2.0])
    # Two seeds: a resampled mean is one of 0, 1 or 2 (resp. 1, 2, 3); step 3 is constant.
    assert band.low[0] == 0.0 and band.high[0] == 2.0
    assert band.low[2] == band.high[2] == 2.0
    np.testing.assert_array_equal(mean_curve_ci(curves[:1], reps=50, rng=0).low, curves[0])

    # Coverage, as in the matrix test above: n = 30 seeds, expected ≈ 0.936, 300 independent
    # trials (one call each, so the resamples are independent too), binomial sd ≈ 0.014.
    rng = np.random.default_rng(9)
    covered = 0
    for _ in range(300):
        band = mean_curve_ci(rng.normal(-1.0, 0.5, size=(30, 1)), reps=400, rng=rng)
        covered += band.low[0] <= -1.0 <= band.high[0]
    assert 0.89 <= covered / 300 <= 0.98, covered / 300


# --------------------------------------------------------------------- comparisons


def test_difference_is_x_minus_y_with_an_interval_around_it():
    rng = np.random.default_rng(10)
    x = rng.normal(5.0, 1.0, size=(20, 2))
    y = rng.normal(3.0, 1.0, size=(15, 2))
    effect = difference(x, y, reps=500, rng=0)
    assert effect.value == pytest.approx(aggregate_mean(x) - aggregate_mean(y))
    assert 0 < effect.low <= effect.value <= effect.high
    assert effect.confidence == 0.95
    assert difference(y, x, reps=500, rng=0).value == pytest.approx(-effect.value)
    by_iqm = difference(x, y, statistic=iqm, reps=200, rng=0)
    assert by_iqm.value == pytest.approx(iqm(x) - iqm(y))


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [
        (0.1, 0.5, REPRODUCED),
        (-0.5, -0.1, NOT_REPRODUCED),
        (-0.1, 0.2, INCONCLUSIVE),
        (0.0, 0.3, INCONCLUSIVE),  # touching 0 is not above it
        (-0.3, 0.0, INCONCLUSIVE),
    ],
)
def test_verdict_of_a_one_sided_claim(low, high, expected):
    assert verdict(Estimate((low + high) / 2, low, high, 0.95)) == expected


def test_verdicts_on_constructed_comparisons():
    rng = np.random.default_rng(11)
    base = rng.normal(0.0, 1.0, size=(20, 2))
    assert verdict(difference(base + 3.0, base, reps=300, rng=0)) == REPRODUCED
    assert verdict(difference(base - 3.0, base, reps=300, rng=0)) == NOT_REPRODUCED
    # The same scores in another order: a difference of exactly 0, so the interval
    # straddles 0 by construction (a fresh noise draw would straddle it by luck).
    assert verdict(difference(base[::-1], base, reps=300, rng=0)) == INCONCLUSIVE


def test_equivalence_verdicts_on_constructed_cases():
    # Constant scores: the interval is the exact difference.
    close = equivalence(np.full(5, 1.0), np.full(5, 1.05), margin=0.1, reps=100, rng=0)
    assert close.verdict == REPRODUCED
    assert close.difference == pytest.approx(-0.05)
    far = equivalence(np.full(5, 1.0), np.full(5, 1.5), margin=0.1, reps=100, rng=0)
    assert far.verdict == NOT_REPRODUCED
    # Difference -0.5 vs margin 0.5: the interval reaches the edge, not beyond it.
    edge = equivalence(np.full(5, 1.0), np.full(5, 1.5), margin=0.5, reps=100, rng=0)
    assert edge.verdict == REPRODUCED

    rng = np.random.default_rng(12)
    a = rng.normal(0.0, 1.0, size=(200, 2))
    b = rng.normal(0.0, 1.0, size=(200, 2))
    result = equivalence(a, b, margin=0.5, reps=400, rng=0)
    assert result.verdict == REPRODUCED and result.confidence == 0.9
    assert -0.5 <= result.low <= result.difference <= result.high <= 0.5
    # Few noisy runs with no difference at all (one set reversed): the interval is wider
    # than the margin, so the data cannot tell.
    few = equivalence(a[:4], a[:4][::-1], margin=0.1, reps=400, rng=0)
    assert few.verdict == INCONCLUSIVE
    assert few.high - few.low > 0.2


# ----------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: iqm([[1.0, np.nan]]), r"`scores` must hold finite scores.*nan.*\(0, 1\)"),
        (lambda: iqm([]), r"`scores` must hold at least one run"),
        (lambda: aggregate_mean(np.ones((2, 2, 2))), r"`scores` must be a score matrix"),
        (
            lambda: probability_of_improvement(np.ones((3, 2)), np.ones((3, 3))),
            r"same games, got 2 games in `x`.*3 in `y`",
        ),
        (lambda: difference([1.0], [np.inf], reps=10, rng=0), r"`y` must hold finite"),
        (
            lambda: stratified_bootstrap_ci([1.0], iqm, reps=10, confidence=1.0, rng=0),
            r"`confidence` must be a number in \(0, 1\), got 1.0",
        ),
        (
            lambda: stratified_bootstrap_ci([1.0], iqm, reps=10, confidence=0, rng=0),
            r"`confidence` must be a number in \(0, 1\), got 0",
        ),
        (lambda: stratified_bootstrap_ci([1.0], iqm, reps=0, rng=0), r"`reps`.*got 0"),
        (lambda: stratified_bootstrap_ci([1.0], iqm, reps=10, rng=None), r"`rng`.*got None"),
        (lambda: mean_curve_ci(np.ones(4), reps=10, rng=0), r"`curves` must be.*\(4,\)"),
        (lambda: normalise([1.0], low=0.0, high=[1.0, 2.0]), r"one value per game"),
        (lambda: normalise([np.nan], low=0.0, high=1.0), r"`scores` must hold finite"),
        (
            lambda: equivalence([1.0], [1.0], margin=0.0, reps=10, rng=0),
            r"`margin` must be a finite number > 0, got 0.0",
        ),
        (
            lambda: verdict(Estimate(0.0, 1.0, -1.0, 0.95)),
            r"`effect` must have finite ends with low <= high",
        ),
    ],
)
def test_bad_input_is_refused_with_a_named_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_module_states_why_rliable_is_not_used():
    assert "pandas 3" in stats.__doc__ and "rliable" in stats.__doc__
