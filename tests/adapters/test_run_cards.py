"""Run cards: written and read back exactly, bad ones named, and counted as finished runs."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest

from softeq.adapters import reproduce, run_cards
from softeq.adapters.reproduce import plan_programs
from softeq.adapters.run_cards import CardError, RunRecord
from softeq.adapters.run_config import ConfigError

GAME = "CartPole-v1"


def _plan(tmp_path, **kwargs) -> reproduce.Plan:
    return reproduce.make_plan(
        "experiment-1", games=[GAME], seeds=[0, 1], total_steps=3000, out_dir=tmp_path, **kwargs
    )


def _record(plan: reproduce.Plan, label: str = "proper", seed: int = 0, **changes) -> RunRecord:
    variant = plan.experiment.variant(label)
    config = json.loads(json.dumps(dataclasses.asdict(plan.config(GAME, variant))))
    curve = tuple(float(i) for i in range(run_cards.CURVE_POINTS))
    fields = dict(
        game=GAME, variant=label, seed=seed, score=12.5, final_eval=math.nan, diverged_at=None,
        env_steps=3000, episode_length=20.0, budget=3000, curve=(math.nan, *curve[1:]),
        cosine=None, program="runs/CartPole-v1/proper/seeds-0-1", program_wall_s=61.5,
        config=config, machines=("a CPU",), provenance="test",
    )  # fmt: skip
    return RunRecord(**(fields | changes))


def _same(a: RunRecord, b: RunRecord) -> bool:
    """Field by field, NaN equal to NaN (a record holds NaN for what a run lacks)."""

    def norm(x):
        if isinstance(x, float) and math.isnan(x):
            return "nan"
        if isinstance(x, tuple):
            return tuple(norm(v) for v in x)
        return x

    return all(norm(getattr(a, f.name)) == norm(getattr(b, f.name)) for f in dataclasses.fields(a))


def test_a_card_reads_back_as_the_record_it_was_written_from(tmp_path):
    plan = _plan(tmp_path)
    record = _record(plan, diverged_at=1500)
    path = run_cards.write_card(tmp_path, record, experiment="experiment-1", suite="classic")
    assert path == tmp_path / "runs" / GAME / "proper" / "seed-0.json"
    experiment, suite, back = run_cards.read_card(path)
    assert (experiment, suite) == ("experiment-1", "classic")
    assert _same(back, record)
    assert json.loads(path.read_text())["final_eval_return"] is None  # JSON has no NaN


@pytest.mark.parametrize(
    "edit, named",
    [
        (lambda d: d.update(seed="0"), "seed='0'; allowed: an integer"),
        (lambda d: d.update(score="high"), "score='high'; allowed: a number or null"),
        (lambda d: d.update(format=2), "format=2; allowed: 1"),
        (lambda d: d["curves"].update(training_return=[1.0]), "curves.training_return=[1.0]"),
        (lambda d: d.update(machines="cpu"), "machines='cpu'; allowed: a list of strings"),
        (lambda d: d.update(seed=1), "whose card is REPORT/runs/CartPole-v1/proper/seed-1.json"),
    ],
)
def test_a_bad_card_is_named_with_its_field(tmp_path, edit, named):
    path = run_cards.write_card(
        tmp_path, _record(_plan(tmp_path)), experiment="experiment-1", suite="classic"
    )
    doc = json.loads(path.read_text())
    edit(doc)
    path.write_text(json.dumps(doc))
    with pytest.raises(CardError) as err:
        run_cards.read_card(path)
    assert str(path) in str(err.value) and named in str(err.value)


def test_a_card_that_is_not_json_is_named(tmp_path):
    path = run_cards.card_path(tmp_path, GAME, "proper", 0)
    path.parent.mkdir(parents=True)
    path.write_text("{'seed': __import__('os')}")
    with pytest.raises(CardError, match="not readable as JSON"):
        run_cards.read_card(path)


def test_a_card_of_another_experiment_is_refused(tmp_path):
    run_cards.write_card(
        tmp_path, _record(_plan(tmp_path)), experiment="experiment-3", suite="classic"
    )
    with pytest.raises(CardError, match="of experiment-3 on the classic suite; allowed in this"):
        run_cards.read_cards(tmp_path, experiment="experiment-1", suite="classic")


def test_a_run_with_a_card_is_finished_where_its_folder_is_gone(tmp_path):
    plan = _plan(tmp_path, report_dir=tmp_path / "published")
    for label in ("proper", "naive"):
        run_cards.write_card(
            plan.report_root, _record(plan, label), experiment="experiment-1", suite="classic"
        )
    programs, finished = plan_programs(plan)
    assert finished == 2  # seed 0 of both variants
    assert sorted((p.variants[0].label, p.seeds) for p in programs) == [
        ("naive", (1,)),
        ("proper", (1,)),
    ]
    assert set(reproduce.checked_cards(plan)) == {(GAME, "proper", 0), (GAME, "naive", 0)}


def test_a_card_of_another_budget_or_config_stops_the_plan(tmp_path):
    plan = _plan(tmp_path)
    path = run_cards.write_card(
        plan.report_root, _record(plan, budget=5000), experiment="experiment-1", suite="classic"
    )
    with pytest.raises(ConfigError, match=r"--total-steps.*5,000 env steps"):
        reproduce.checked_cards(plan)
    config = dict(_record(plan).config) | {"learning_rate": 123.0}
    run_cards.write_card(
        plan.report_root, _record(plan, config=config), experiment="experiment-1", suite="classic"
    )
    with pytest.raises(ConfigError, match=r"--report-dir.*other hyperparameters"):
        reproduce.checked_cards(plan)
    assert path.exists()
