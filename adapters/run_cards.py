"""Run cards: what a reproduction keeps of each finished run, small enough to commit.

A run folder holds a run's metrics, checkpoints and logs: megabytes, on the
machine that trained it. A run card is the part the report needs — score, final
evaluation, where the run diverged, the mean episode length, its learning curve
and gradient cosine on a fixed grid, the program that trained it and that
program's wall time, and the resolved config — as one JSON file of a few
kilobytes in the report folder:

    REPORT/runs/GAME/VARIANT/seed-<s>.json

`softeq reproduce` writes the cards of a program's runs when the program
finishes and whenever it writes the report; it counts a run with a card as
finished even where its run folder is gone, and draws the report from the
cards. A reproduction can therefore be spread over machines that share nothing
but the report folder — a git repository, say: commit the report folder, clone
it elsewhere, run the same command, and only the runs without a card train.

Cards are plain JSON, read with `json` and checked field by field; loading one
runs no code.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from softeq.adapters.atomic_file import atomic_write

CARD_FORMAT = 1
CARDS_DIRNAME = "runs"
#: Points of a card's curves: `curve_grid(env_steps)`, evenly spaced from 0.
CURVE_POINTS = 50
#: Significant digits a curve point keeps: ample for a figure, and half the bytes.
CURVE_DIGITS = 6


class CardError(ValueError):
    """A run card that cannot be read: names the file, the field and what is allowed."""


@dataclasses.dataclass(frozen=True)
class RunRecord:
    """One finished run of one variant on one game, as the report uses it.

    `curve` and `cosine` hold the smoothed training return and the per-update
    gradient cosine on `curve_grid(env_steps)` (None: not recorded). `program`
    names the jitted program that trained the run (runs that shared one name the
    same) and `program_wall_s` is that program's wall time over all its sittings;
    `program_count` > 1 marks a card that stands for several programs whose wall
    times were kept only as a sum (runs recorded before cards existed).
    `machines` describes the machines of the reproduction's sittings and
    `provenance` where the record came from.
    """

    game: str
    variant: str
    seed: int
    score: float
    final_eval: float
    diverged_at: int | None
    env_steps: int
    episode_length: float = math.nan
    budget: int = 0
    curve: tuple[float, ...] | None = None
    cosine: tuple[float, ...] | None = None
    program: str = ""
    program_wall_s: float = 0.0
    program_count: int = 1
    config: Mapping[str, Any] | None = None
    machines: tuple[str, ...] = ()
    provenance: str = ""


def rounded_curve(values) -> tuple[float, ...]:
    """A curve as a card keeps it: `CURVE_DIGITS` significant digits, NaN kept."""
    return tuple(float(f"{float(x):.{CURVE_DIGITS}g}") for x in values)


def curve_grid(env_steps: int):
    """The `[CURVE_POINTS]` env steps a card's curves are sampled at."""
    import numpy as np

    return np.linspace(0.0, float(env_steps), CURVE_POINTS)


def card_path(report_dir: str | os.PathLike, game: str, variant: str, seed: int) -> Path:
    """Where the card of one run lives in a report folder."""
    safe = [name.replace("/", "_") for name in (game, variant)]
    return Path(report_dir) / CARDS_DIRNAME / safe[0] / safe[1] / f"seed-{seed}.json"


def write_card(
    report_dir: str | os.PathLike, record: RunRecord, *, experiment: str, suite: str
) -> Path:
    """Writes (atomically) the card of `record`; returns its path."""
    path = card_path(report_dir, record.game, record.variant, record.seed)
    doc = {
        "format": CARD_FORMAT,
        "experiment": experiment,
        "suite": suite,
        "game": record.game,
        "variant": record.variant,
        "seed": record.seed,
        "budget": record.budget,
        "env_steps": record.env_steps,
        "score": _number_or_none(record.score),
        "final_eval_return": _number_or_none(record.final_eval),
        "diverged_at": record.diverged_at,
        "episode_length": _number_or_none(record.episode_length),
        "curves": {
            "points": CURVE_POINTS,
            "training_return": _curve_doc(record.curve),
            "grad_cosine": _curve_doc(record.cosine),
        },
        "program": {
            "name": record.program,
            "wall_s": record.program_wall_s,
            "count": record.program_count,
        },
        "config": None if record.config is None else dict(record.config),
        "machines": list(record.machines),
        "provenance": record.provenance,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    # One field per line, each value compact: small, and a diff shows what changed.
    fields = [f"  {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}" for k, v in doc.items()]
    with atomic_write(path) as fh:
        fh.write("{\n" + ",\n".join(fields) + "\n}\n")
    return path


def read_card(path: str | os.PathLike) -> tuple[str, str, RunRecord]:
    """`(experiment, suite, record)` of one card; `CardError` names what is wrong."""
    path = Path(path)
    try:
        with open(path) as fh:
            doc = json.load(fh)
    except (OSError, ValueError) as exc:
        raise CardError(f"run card {path}: not readable as JSON ({exc})") from exc
    check = _Checker(path)
    if not isinstance(doc, dict) or doc.get("format") != CARD_FORMAT:
        found = doc.get("format") if isinstance(doc, dict) else doc
        raise check.bad("format", found, str(CARD_FORMAT))
    curves = check.mapping("curves", doc.get("curves"))
    program = check.mapping("program", doc.get("program"))
    if curves.get("points") != CURVE_POINTS:
        raise check.bad("curves.points", curves.get("points"), str(CURVE_POINTS))
    config = doc.get("config")
    machines = doc.get("machines")
    if not isinstance(machines, list):
        raise check.bad("machines", machines, "a list of strings")
    record = RunRecord(
        game=check.text("game", doc.get("game")),
        variant=check.text("variant", doc.get("variant")),
        seed=check.integer("seed", doc.get("seed")),
        score=check.number("score", doc.get("score")),
        final_eval=check.number("final_eval_return", doc.get("final_eval_return")),
        diverged_at=(
            None
            if doc.get("diverged_at") is None
            else check.integer("diverged_at", doc.get("diverged_at"))
        ),
        env_steps=check.integer("env_steps", doc.get("env_steps")),
        episode_length=check.number("episode_length", doc.get("episode_length")),
        budget=check.integer("budget", doc.get("budget")),
        curve=check.curve("curves.training_return", curves.get("training_return")),
        cosine=check.curve("curves.grad_cosine", curves.get("grad_cosine")),
        program=check.text("program.name", program.get("name")),
        program_wall_s=check.number("program.wall_s", program.get("wall_s")),
        program_count=check.integer("program.count", program.get("count")),
        config=None if config is None else check.mapping("config", config),
        machines=tuple(check.text("machines", m) for m in machines),
        provenance=check.text("provenance", doc.get("provenance")),
    )
    # A card copied to another run's place would count that run as finished.
    expected = card_path(".", record.game, record.variant, record.seed)
    if path.parts[-4:] != expected.parts[-4:]:
        raise CardError(
            f"run card {path}: holds {record.game} {record.variant} seed {record.seed}, "
            f"whose card is REPORT/{expected.as_posix()}"
        )
    experiment = check.text("experiment", doc.get("experiment"))
    return experiment, check.text("suite", doc.get("suite")), record


def read_cards(
    report_dir: str | os.PathLike, *, experiment: str, suite: str
) -> dict[tuple[str, str, int], RunRecord]:
    """Every card in `report_dir`, keyed by `(game, variant, seed)`.

    Raises `CardError` for a card that cannot be read or belongs to another
    experiment or suite.
    """
    root = Path(report_dir) / CARDS_DIRNAME
    cards: dict[tuple[str, str, int], RunRecord] = {}
    for path in sorted(root.glob("*/*/seed-*.json")) if root.is_dir() else ():
        card_experiment, card_suite, record = read_card(path)
        if (card_experiment, card_suite) != (experiment, suite):
            raise CardError(
                f"run card {path}: of {card_experiment} on the {card_suite} suite; "
                f"allowed in this report folder: {experiment} on the {suite} suite"
            )
        cards[(record.game, record.variant, record.seed)] = record
    return cards


def recorded_seeds(report_dir: str | os.PathLike, game: str, variant: str) -> set[int]:
    """The seeds of `game` and `variant` that have a card (file names only: quick)."""
    folder = card_path(report_dir, game, variant, 0).parent
    seeds = set()
    for path in folder.glob("seed-*.json") if folder.is_dir() else ():
        try:
            seeds.add(int(path.stem[len("seed-") :]))
        except ValueError:
            continue
    return seeds


def _number_or_none(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def _curve_doc(curve: tuple[float, ...] | None) -> list[float | None] | None:
    if curve is None:
        return None
    if len(curve) != CURVE_POINTS:
        raise ValueError(f"curve: {len(curve)} points; allowed: {CURVE_POINTS}")
    return [_number_or_none(float(x)) for x in curve]


class _Checker:
    """Checks one field of a card at a time, naming the card and the field."""

    def __init__(self, path: Path):
        self.path = path

    def bad(self, field: str, value: Any, allowed: str) -> CardError:
        return CardError(f"run card {self.path}: {field}={value!r}; allowed: {allowed}")

    def text(self, field: str, value: Any) -> str:
        if not isinstance(value, str):
            raise self.bad(field, value, "a string")
        return value

    def integer(self, field: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.bad(field, value, "an integer")
        return value

    def number(self, field: str, value: Any) -> float:
        """A number; null stands for NaN (JSON has none)."""
        if value is None:
            return math.nan
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.bad(field, value, "a number or null")
        return float(value)

    def mapping(self, field: str, value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.bad(field, value, "an object")
        return value

    def curve(self, field: str, value: Any) -> tuple[float, ...] | None:
        if value is None:
            return None
        if not isinstance(value, list) or len(value) != CURVE_POINTS:
            raise self.bad(field, value, f"null or a list of {CURVE_POINTS} numbers or nulls")
        return tuple(self.number(field, x) for x in value)
