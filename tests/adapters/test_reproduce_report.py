"""What the statistics of an unfinished reproduction cover (no training: synthetic runs)."""

from __future__ import annotations

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
