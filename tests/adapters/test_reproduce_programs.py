"""Which programs `softeq reproduce` runs, from the state of its folders (nothing is trained)."""

from __future__ import annotations

from pathlib import Path

import pytest

from softeq.adapters import reproduce
from softeq.adapters.reproduce import Program, plan_programs

GAME = "CartPole-v1"


def _plan(tmp_path: Path, experiment: str, seeds=(0, 1, 2)) -> reproduce.Plan:
    return reproduce.make_plan(
        experiment, games=[GAME], seeds=seeds, total_steps=3000, out_dir=tmp_path
    )


def _batch(plan: reproduce.Plan, label: str, seeds, *, finished: bool) -> Path:
    folder = plan.variant_dir(GAME, plan.experiment.variant(label)) / reproduce.batch_dirname(seeds)
    folder.mkdir(parents=True)
    if finished:
        (folder / "summary.json").write_text("{}\n")
    return folder


def _shared_folder(plan: reproduce.Plan, labels, seeds) -> Path:
    variants = tuple(plan.experiment.variant(label) for label in labels)
    folder = Program(GAME, variants, tuple(seeds), False).folder(plan)
    folder.mkdir(parents=True)
    return folder


def _described(programs: list[Program]) -> list[tuple]:
    return [(tuple(v.label for v in p.variants), p.seeds, p.resume) for p in programs]


@pytest.mark.parametrize(
    ("experiment", "expected"),
    [
        # c = 0.5 and c = 1/τ differ only in the sweepable value_weight: one program each.
        ("experiment-3", [("a2c", "a2c-c1/tau"), ("soft-q", "soft-q-c1/tau")]),
        # naive and proper entropy run other code (a Python branch).
        ("experiment-1", [("proper",), ("naive",)]),
        # the three DQN targets are picked per lane; n-step windows fix other shapes.
        (
            "experiment-2",
            [tuple(f"{t}-{n}" for t in ("hard", "soft-kl", "soft-entropy")) for n in (1, 5)],
        ),
    ],
)
def test_a_fresh_reproduction_shares_programs_where_only_sweepable_fields_differ(
    tmp_path, experiment, expected
):
    programs, reused = plan_programs(_plan(tmp_path, experiment))
    assert reused == 0
    assert _described(programs) == [(labels, (0, 1, 2), False) for labels in expected]
    shared = [p.folder(_plan(tmp_path, experiment)) for p in programs if p.shared]
    assert all("programs" in f.parts and f.name == "seeds-0-1-2" for f in shared)


def test_an_interrupted_shared_program_continues_as_one(tmp_path):
    plan = _plan(tmp_path, "experiment-3")
    _shared_folder(plan, ("a2c", "a2c-c1/tau"), (0, 1, 2))
    for label in ("a2c", "a2c-c1/tau"):
        _batch(plan, label, (0, 1, 2), finished=False)  # members, not finished
    programs, reused = plan_programs(plan)
    assert reused == 0
    assert _described(programs) == [
        (("a2c", "a2c-c1/tau"), (0, 1, 2), True),
        (("soft-q", "soft-q-c1/tau"), (0, 1, 2), False),
    ]


def test_a_shared_program_stopped_before_its_members_existed_resumes_its_own_folder(tmp_path):
    plan = _plan(tmp_path, "experiment-3")
    _shared_folder(plan, ("soft-q", "soft-q-c1/tau"), (0, 1, 2))
    assert _described(plan_programs(plan)[0]) == [
        (("a2c", "a2c-c1/tau"), (0, 1, 2), False),
        (("soft-q", "soft-q-c1/tau"), (0, 1, 2), True),
    ]


def test_a_batch_that_trained_alone_continues_alone(tmp_path):
    """A reproduction started before variants shared programs (one batch per variant)."""
    plan = _plan(tmp_path, "experiment-3")
    _batch(plan, "a2c", (0, 1, 2), finished=False)
    _batch(plan, "soft-q", (0, 1, 2), finished=True)
    programs, reused = plan_programs(plan)
    assert reused == 3
    assert _described(programs) == [
        (("a2c",), (0, 1, 2), True),
        (("a2c-c1/tau",), (0, 1, 2), False),
        (("soft-q-c1/tau",), (0, 1, 2), False),
    ]


def test_a_member_left_unfinished_beside_a_finished_one_continues_alone(tmp_path):
    plan = _plan(tmp_path, "experiment-3")
    _shared_folder(plan, ("a2c", "a2c-c1/tau"), (0, 1, 2))
    _batch(plan, "a2c", (0, 1, 2), finished=True)
    _batch(plan, "a2c-c1/tau", (0, 1, 2), finished=False)
    programs, reused = plan_programs(plan)
    assert reused == 3
    assert _described(programs)[0] == (("a2c-c1/tau",), (0, 1, 2), True)


def test_more_seeds_later_share_a_program_for_the_new_seeds_only(tmp_path):
    plan = _plan(tmp_path, "experiment-3", seeds=(0, 1, 2, 3))
    for label in ("a2c", "a2c-c1/tau"):
        _batch(plan, label, (0, 1, 2), finished=True)
    _batch(plan, "soft-q", (0, 1, 2), finished=True)
    programs, reused = plan_programs(plan)
    assert reused == 9
    assert _described(programs) == [
        (("a2c", "a2c-c1/tau"), (3,), False),
        # soft-q wants one seed and soft-q-c1/tau four: different lanes, two programs.
        (("soft-q",), (3,), False),
        (("soft-q-c1/tau",), (0, 1, 2, 3), False),
    ]


def test_a_shared_program_folder_names_its_variants_and_seeds(tmp_path):
    plan = _plan(tmp_path, "experiment-3")
    program = plan_programs(plan)[0][0]
    assert program.folder(plan) == (
        tmp_path / "experiment-3" / "classic" / "programs" / GAME / "a2c+a2c-c1_tau" / "seeds-0-1-2"
    )
    assert program.batch_dir(plan, program.variants[1]) == (
        tmp_path / "experiment-3" / "classic" / "runs" / GAME / "a2c-c1_tau" / "seeds-0-1-2"
    )
