"""The paper's claims as tests with three outcomes: reproduced, not reproduced, inconclusive.

Every claim compares variants of one experiment on normalised scores
(`[R, G]`: runs × games, the same seeds in every variant) with stratified
bootstrap intervals from `softeq.adapters.stats`. A claim is a small frozen
object with an `evaluate(scores)` method, so an experiment lists its claims as
data and the report runs them without knowing which is which.

Outcomes, with δ the stated margin in normalised score (1 = the best variant's
mean on that game, 0 = a uniformly random policy):

* `NotWorse(a, b)` — "a performs as well as or better than b", a
  non-inferiority test: the 95% interval of mean(a) − mean(b) lies above −δ →
  reproduced; below −δ → not reproduced; otherwise inconclusive.
* `Worse(a, b)` — "a does worse than b": the 95% interval of mean(a) − mean(b)
  lies below 0 → reproduced; above −δ (a is not worse by more than δ) → not
  reproduced; otherwise inconclusive.
* `Equivalent(a, b)` — "a and b are indistinguishable", two one-sided tests:
  the 90% interval of the difference lies inside [−δ, δ] → reproduced; it
  lies entirely outside → not reproduced; otherwise inconclusive. A failed
  difference test is not evidence of equivalence; this is.
* `MixedByGame(a, b)` — "a is better on some games and worse on others":
  games where the 95% interval of the difference lies above 0 and games
  where it lies below 0 both exist → reproduced; every game's interval lies on
  one side (all better or all worse) → not reproduced; otherwise inconclusive.
* `Unstable(a, b)` — "a is unstable where b is not": some run of a diverged
  (a non-finite loss) or a is worse than b as `Worse` decides → reproduced;
  no run diverged and a is not worse than b by more than δ → not reproduced.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np

from softeq.adapters import stats

REPRODUCED = "reproduced"
NOT_REPRODUCED = "not reproduced"
INCONCLUSIVE = "inconclusive"
#: Default margin δ in normalised score (a tenth of the best variant's gain over random).
DEFAULT_MARGIN = 0.1
#: Fewer seeds than this give no verdict: a bootstrap over one or two runs per game has
#: (almost) no spread, and its interval would claim a certainty the data do not have.
MIN_SEEDS = 3


@dataclasses.dataclass(frozen=True)
class Scores:
    """Normalised per-run scores of one experiment on one suite.

    Attributes:
      games: the games, in column order.
      seeds: the seeds, in row order (shared by every variant).
      values: variant label -> `[R, G]` normalised scores.
      diverged: variant label -> `[R, G]` bool, the run hit a non-finite loss.
      reps: bootstrap resamples per interval.
      seed: seed of the bootstrap's random numbers (the verdicts are deterministic).
    """

    games: tuple[str, ...]
    seeds: tuple[int, ...]
    values: Mapping[str, np.ndarray]
    diverged: Mapping[str, np.ndarray]
    reps: int = 2000
    seed: int = 0

    def rng(self) -> np.random.Generator:
        return np.random.default_rng(self.seed)


class TooFewSeeds(Exception):
    """Raised inside a claim's test when the scores hold fewer than `MIN_SEEDS` seeds."""


def evaluate(claim: Claim, scores: Scores) -> Verdict:
    """`claim.evaluate(scores)`, or an inconclusive verdict when there are too few seeds."""
    try:
        verdict = claim.evaluate(scores)
    except TooFewSeeds:
        detail = f"{len(scores.seeds)} seed(s) on every variant; a verdict needs {MIN_SEEDS}"
        return undecided(claim, detail)
    est = stats.probability_of_improvement_ci(
        scores.values[claim.a], scores.values[claim.b], reps=scores.reps, rng=scores.rng()
    )
    return dataclasses.replace(
        verdict, improvement=est.value, improvement_low=est.low, improvement_high=est.high
    )


def undecided(claim: Claim, why: str) -> Verdict:
    """The inconclusive verdict of a claim that the data cannot test, saying why."""
    nan = float("nan")
    return Verdict(claim.text, INCONCLUSIVE, nan, nan, nan, why)


@dataclasses.dataclass(frozen=True)
class Verdict:
    """The outcome of one claim: text, outcome, effect and its interval."""

    claim: str
    outcome: str
    effect: float
    low: float
    high: float
    detail: str
    #: P(a > b) + ½ P(a = b) over runs, averaged over games, and its 95% interval.
    improvement: float = float("nan")
    improvement_low: float = float("nan")
    improvement_high: float = float("nan")

    def row(self) -> dict[str, object]:
        return dataclasses.asdict(self)


def _difference(scores: Scores, a: str, b: str, confidence: float) -> tuple[float, float, float]:
    """Mean(a) − mean(b) over runs and games, with a stratified two-sample bootstrap interval."""
    x, y = scores.values[a], scores.values[b]
    if len(scores.seeds) < MIN_SEEDS:
        raise TooFewSeeds(len(scores.seeds))
    est = stats.difference(x, y, reps=scores.reps, confidence=confidence, rng=scores.rng())
    return est.value, est.low, est.high


@dataclasses.dataclass(frozen=True)
class _PairClaim:
    """A claim about variant a against variant b, decided on the interval of mean(a) − mean(b)."""

    a: str
    b: str
    margin: float = DEFAULT_MARGIN
    #: coverage of the interval the decision reads.
    confidence = 0.95
    #: the claim's text, formatted with the two labels.
    template = "{a} vs {b}"

    @property
    def text(self) -> str:
        return self.template.format(a=self.a, b=self.b)

    def evaluate(self, scores: Scores) -> Verdict:
        effect, low, high = _difference(scores, self.a, self.b, self.confidence)
        outcome, detail = self.decide(low, high, scores)
        return Verdict(self.text, outcome, effect, low, high, detail)

    def decide(self, low: float, high: float, scores: Scores) -> tuple[str, str]:
        raise NotImplementedError


def _outcome(reproduced: bool, refuted: bool) -> str:
    return REPRODUCED if reproduced else NOT_REPRODUCED if refuted else INCONCLUSIVE


@dataclasses.dataclass(frozen=True)
class NotWorse(_PairClaim):
    template = "{a} ≥ {b}"

    def decide(self, low: float, high: float, scores: Scores) -> tuple[str, str]:
        outcome = _outcome(low > -self.margin, high < -self.margin)
        return outcome, f"non-inferiority, δ = {self.margin}: 95% interval of the difference vs −δ"


@dataclasses.dataclass(frozen=True)
class Worse(_PairClaim):
    template = "{a} worse than {b}"

    def decide(self, low: float, high: float, scores: Scores) -> tuple[str, str]:
        outcome = _outcome(high < 0, low > -self.margin)
        return outcome, (
            f"95% interval of the difference below 0 (not worse: above −δ, δ = {self.margin})"
        )


@dataclasses.dataclass(frozen=True)
class Equivalent(_PairClaim):
    confidence = 0.90
    template = "{a} ≈ {b}"

    def decide(self, low: float, high: float, scores: Scores) -> tuple[str, str]:
        inside = -self.margin < low and high < self.margin
        outside = low > self.margin or high < -self.margin
        return _outcome(inside, outside), (
            f"equivalence (two one-sided tests, 90% interval) within ±{self.margin}"
        )


@dataclasses.dataclass(frozen=True)
class MixedByGame:
    a: str
    b: str

    @property
    def text(self) -> str:
        return f"{self.a} vs {self.b}: mixed across games"

    def evaluate(self, scores: Scores) -> Verdict:
        if len(scores.seeds) < MIN_SEEDS:
            raise TooFewSeeds(len(scores.seeds))
        better, worse, parts = [], [], []
        for g, game in enumerate(scores.games):
            x, y = scores.values[self.a][:, g : g + 1], scores.values[self.b][:, g : g + 1]
            effect, low, high, _ = stats.difference(
                x, y, reps=scores.reps, confidence=0.95, rng=scores.rng()
            )
            parts.append(f"{game} {effect:+.2f} [{low:+.2f}, {high:+.2f}]")
            if low > 0:
                better.append(game)
            elif high < 0:
                worse.append(game)
        effect, low, high = _difference(scores, self.a, self.b, 0.95)
        detail = "per game: " + "; ".join(parts)
        if len(scores.games) < 2:  # one game cannot show a mix (an interim result)
            return Verdict(self.text, INCONCLUSIVE, effect, low, high, "needs 2 games; " + detail)
        if better and worse:
            outcome = REPRODUCED
        elif len(better) == len(scores.games) or len(worse) == len(scores.games):
            outcome = NOT_REPRODUCED
        else:
            outcome = INCONCLUSIVE
        return Verdict(self.text, outcome, effect, low, high, detail)


@dataclasses.dataclass(frozen=True)
class Unstable(_PairClaim):
    template = "{a} unstable (vs {b})"

    def decide(self, low: float, high: float, scores: Scores) -> tuple[str, str]:
        diverged = int(np.sum(scores.diverged[self.a]))
        runs = scores.diverged[self.a].size
        outcome = _outcome(bool(diverged) or high < 0, low > -self.margin)
        return outcome, f"{diverged}/{runs} runs diverged; 95% interval of the difference vs 0"


Claim = NotWorse | Worse | Equivalent | MixedByGame | Unstable
