"""What the statistics of an unfinished reproduction cover (no training: synthetic runs)."""

from __future__ import annotations

import math

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


def test_compute_spent_counts_a_shared_program_once():
    """Runs that name one program count its wall time once (the longest any of them
    saw); a card standing for several programs counts them all."""

    def run(variant: str, program: str, wall: float, count: int = 1):
        return reproduce_report.RunRecord(
            game="g", variant=variant, seed=0, score=1.0, final_eval=1.0, diverged_at=None,
            env_steps=100, program=program, program_wall_s=wall, program_count=count,
        )  # fmt: skip

    records = [
        run("a", "programs/g/a+b/seeds-0", 550.0),  # two members of one shared program
        run("b", "programs/g/a+b/seeds-0", 600.0),
        run("c", "runs/g/c/seeds-0", 900.0),
        run("d", "report of an earlier sitting", 3000.0, count=4),
        run("e", "report of an earlier sitting", 3000.0, count=4),
    ]
    wall, steps, programs = reproduce_report.compute_spent(records)
    assert (wall, steps, programs) == (600.0 + 900.0 + 3000.0, 500, 1 + 1 + 4)


def test_a_program_wall_time_is_the_longer_of_its_summary_and_its_metrics_clock(tmp_path):
    """A summary written before softeq counted earlier sittings holds the last one
    only; the metrics clock runs across sittings."""
    import json

    plan = reproduce.make_plan(
        "experiment-1", games=["CartPole-v1"], seeds=[0], total_steps=100, out_dir=tmp_path
    )
    batch = plan.variant_dir("CartPole-v1", plan.experiment.variant("proper")) / "seeds-0"
    (batch / "seed-0").mkdir(parents=True)
    summary = {"wall_s": 100.0, "total_steps": 100, "seeds": {"0": {"env_steps": 100}}}
    (batch / "summary.json").write_text(json.dumps(summary))
    rows = ["env_step,time_s,tag,value", "50,450.000,train/episode_return,1.0",
            "90,900.000,train/episode_return,3.0"]  # fmt: skip
    (batch / "seed-0" / "metrics.csv").write_text("\n".join(rows) + "\n")
    record = reproduce_report.record_from_folder(plan, "CartPole-v1", "proper", 0, batch)
    assert record.program_wall_s == 900.0
    assert record.program == "runs/CartPole-v1/proper/seeds-0"
    assert record.score == 3.0  # the episode ending at step 90, in the last tenth
    assert record.curve is not None and len(record.curve) == 50


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


def test_the_per_game_table_gives_each_variants_mean_interval_and_runs():
    plan = _plan()
    records = [
        reproduce_report.RunRecord(
            game=GAMES[0],
            variant="proper",
            seed=s,
            score=x,
            final_eval=x,
            diverged_at=None,
            env_steps=1,
        )
        for s, x in enumerate([10.0, 20.0, 30.0])
    ]
    lines = reproduce_report.per_game_lines(plan, records, {g: 0.5 for g in GAMES})
    assert lines[2] == "| game | random | proper | naive |"
    row = lines[4]
    assert row.startswith(f"| {GAMES[0]} | 0.50 | 20.0 [")
    low, high = (float(x) for x in row.split("[")[1].split("]")[0].split(", "))
    assert 10.0 <= low < 20.0 < high <= 30.0  # a bootstrap interval of the mean
    assert row.endswith("] (3) | – |")  # naive has no finished run on this game
    assert len(lines) == 5  # games without a finished run get no row
