"""What the statistics of an unfinished reproduction cover (no training: synthetic runs)."""

from __future__ import annotations

import math
from pathlib import Path

from softeq.adapters import reproduce, reproduce_report

GAMES = ("Asterix-MinAtar", "Breakout-MinAtar", "Freeway-MinAtar")


def _plan():
    return reproduce.make_plan("experiment-1", suite="minatar", games=GAMES, seeds=[0, 1, 2])


def _records(done: set[tuple[str, str, int]]) -> list[reproduce_report.RunRecord]:
    return [
        reproduce_report.RunRecord(
            game=g,
            variant=v,
            seed=s,
            score=1.0,
            final_eval=1.0,
            diverged_at=None,
            env_steps=1,
            seed_dir=Path("unused"),
        )
        for g, v, s in sorted(done)
    ]


def _all(games, seeds):
    return {(g, v, s) for g in games for v in ("proper", "naive") for s in seeds}


def test_finished_games_are_the_scope_while_others_are_pending():
    plan = _plan()
    # Asterix and Breakout done; Freeway has only "proper" so far.
    records = _records(_all(GAMES[:2], (0, 1, 2)) | {(GAMES[2], "proper", s) for s in (0, 1, 2)})
    assert reproduce_report.statistics_scope(plan, records) == (GAMES[:2], (0, 1, 2))
    lines = reproduce_report._left_out_lines(plan, None, GAMES[:2])
    assert "**Interim result**: 2 of 3 games finished" in lines[0]
    assert lines[0].endswith("Freeway-MinAtar.")


def test_without_a_finished_game_the_scope_is_the_seeds_done_everywhere():
    plan = _plan()
    records = _records(_all(GAMES, (0, 1)) | {(GAMES[0], "proper", 2)})
    assert reproduce_report.statistics_scope(plan, records) == (GAMES, (0, 1))
    assert reproduce_report._left_out_lines(plan, None, GAMES) == []


def test_nothing_finished_everywhere_gives_an_empty_scope():
    plan = _plan()
    records = _records({(GAMES[0], "proper", 0), (GAMES[1], "naive", 1)})
    assert reproduce_report.statistics_scope(plan, records) == (GAMES, ())


def test_compute_spent_counts_a_shared_program_once_and_the_longer_clock(tmp_path):
    """A program shared by two variants counts once; an old summary that kept only its
    last sitting's wall time gives way to the metrics clock, which runs across sittings."""
    import json

    def run(folder: str, seed: int, *, wall: float, clock: float | None, program=None):
        batch = tmp_path / folder
        seed_dir = batch / f"seed-{seed}"
        seed_dir.mkdir(parents=True, exist_ok=True)
        summary = {"wall_s": wall} | ({"program": program} if program else {})
        (batch / "summary.json").write_text(json.dumps(summary))
        rows = ["env_step,time_s,tag,value"]
        if clock is not None:
            rows += [f"10,{clock / 2:.3f},train/episode_return,1.0",
                     f"20,{clock:.3f},train/episode_return,2.0"]  # fmt: skip
        (seed_dir / "metrics.csv").write_text("\n".join(rows) + "\n")
        return reproduce_report.RunRecord(
            game="g", variant=folder, seed=seed, score=1.0, final_eval=1.0,
            diverged_at=None, env_steps=100, seed_dir=seed_dir,
        )  # fmt: skip

    records = [
        # two members of one shared program: its time counts once
        run("a", 0, wall=600.0, clock=550.0, program="shared"),
        run("b", 0, wall=600.0, clock=560.0, program="shared"),
        # resumed before the fix: the summary holds the last sitting only
        run("c", 0, wall=100.0, clock=900.0),
        # no metrics rows at all
        run("d", 0, wall=50.0, clock=None),
    ]
    wall, steps, programs = reproduce_report.compute_spent(records)
    assert (wall, steps, programs) == (600.0 + 900.0 + 50.0, 400, 3)


def test_the_score_and_the_episode_length_average_the_episodes_of_the_last_tenth(tmp_path):
    rows = ["env_step,time_s,tag,value"]
    for step, ret, length in [(500, 1.0, 10), (950, 4.0, 30), (1000, 6.0, 50)]:
        rows += [f"{step},1.0,train/episode_return,{ret}",
                 f"{step},1.0,train/episode_length,{length}"]  # fmt: skip
    (tmp_path / "metrics.csv").write_text("\n".join(rows) + "\n")
    assert reproduce_report.tail_score(tmp_path, 1000) == 5.0  # steps 900-1000 only
    assert reproduce_report.tail_score(tmp_path, 1000, tag="train/episode_length") == 40.0
    # no episode ended in the last tenth: the last one that ended stands for it
    assert reproduce_report.tail_score(tmp_path, 5000) == 6.0
    assert math.isnan(reproduce_report.tail_score(tmp_path, 1000, tag="eval/return"))
