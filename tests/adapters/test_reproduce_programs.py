"""Which programs `softeq reproduce` runs, from the state of its folders (nothing is trained)."""

from __future__ import annotations

from pathlib import Path

import pytest

from softeq.adapters import reproduce
from softeq.adapters.reproduce import Program, plan_programs

GAME = "CartPole-v1"
TARGETS = ("hard", "soft-kl", "soft-entropy")  # experiment 2's DQN targets


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


def _checkpoint(folder: Path, step: int) -> None:
    from softeq.adapters import checkpoint as ckpt_lib
    from softeq.adapters.jit_loop import checkpoint_dir

    checkpoint_dir(folder).mkdir(parents=True, exist_ok=True)
    (checkpoint_dir(folder) / ckpt_lib.checkpoint_name(step)).write_bytes(b"")  # named only


@pytest.mark.parametrize(
    ("variants", "seeds", "max_lanes", "expected"),
    [
        ("abc", (0, 1, 2), None, [("abc", (0, 1, 2))]),
        ("abc", (0, 1, 2), 9, [("abc", (0, 1, 2))]),
        # whole variants with all their seeds while they fit
        ("abc", (0, 1, 2), 8, [("ab", (0, 1, 2)), ("c", (0, 1, 2))]),
        ("abc", (0, 1, 2), 6, [("ab", (0, 1, 2)), ("c", (0, 1, 2))]),
        ("abc", (0, 1, 2), 3, [("a", (0, 1, 2)), ("b", (0, 1, 2)), ("c", (0, 1, 2))]),
        ("abcd", (0, 1), 4, [("ab", (0, 1)), ("cd", (0, 1))]),
        ("abcde", (0,), 2, [("ab", (0,)), ("cd", (0,)), ("e", (0,))]),
        # then each variant alone, its seeds in near-equal consecutive parts
        ("ab", (0, 1, 2), 2, [("a", (0, 1)), ("a", (2,)), ("b", (0, 1)), ("b", (2,))]),
        ("a", tuple(range(10)), 4, [("a", (0, 1, 2, 3)), ("a", (4, 5, 6)), ("a", (7, 8, 9))]),
        ("a", (0, 1, 2), 1, [("a", (0,)), ("a", (1,)), ("a", (2,))]),
    ],
)
def test_split_lanes_cuts_into_the_fewest_programs_within_the_cap(
    variants, seeds, max_lanes, expected
):
    parts = reproduce.split_lanes(tuple(variants), seeds, max_lanes)
    assert [("".join(v), s) for v, s in parts] == expected
    # every run exactly once
    assert sorted((v, s) for vs, ss in parts for v in vs for s in ss) == sorted(
        (v, s) for v in variants for s in seeds
    )


def test_a_cap_splits_new_programs(tmp_path):
    plan = _plan(tmp_path, "experiment-2")
    programs, _ = plan_programs(plan, max_lanes=6)
    assert _described(programs) == [
        (("hard-1", "soft-kl-1"), (0, 1, 2), False),
        (("soft-entropy-1",), (0, 1, 2), False),
        (("hard-5", "soft-kl-5"), (0, 1, 2), False),
        (("soft-entropy-5",), (0, 1, 2), False),
    ]


def test_a_started_program_over_the_cap_without_a_checkpoint_is_planned_again(tmp_path):
    """What a program that stalls before its first checkpoint needs: run smaller."""
    plan = _plan(tmp_path, "experiment-3")
    _shared_folder(plan, ("a2c", "a2c-c1/tau"), (0, 1, 2))
    for label in ("a2c", "a2c-c1/tau"):
        _batch(plan, label, (0, 1, 2), finished=False)
    programs, _ = plan_programs(plan, max_lanes=3)
    assert _described(programs)[:2] == [
        (("a2c",), (0, 1, 2), True),  # the member folders exist: no checkpoint, a fresh start
        (("a2c-c1/tau",), (0, 1, 2), True),
    ]
    # Under the old cut (no cap) it is one shared program again.
    assert _described(plan_programs(plan)[0])[0] == (("a2c", "a2c-c1/tau"), (0, 1, 2), True)


def test_a_started_program_over_the_cap_with_a_checkpoint_continues_as_it_was(tmp_path):
    plan = _plan(tmp_path, "experiment-3")
    _checkpoint(_shared_folder(plan, ("a2c", "a2c-c1/tau"), (0, 1, 2)), 1000)
    for label in ("a2c", "a2c-c1/tau"):
        _checkpoint(_batch(plan, label, (0, 1, 2), finished=False), 1000)
    programs, _ = plan_programs(plan, max_lanes=3)
    assert _described(programs)[0] == (("a2c", "a2c-c1/tau"), (0, 1, 2), True)
    assert _described(programs)[1:] == [
        (("soft-q",), (0, 1, 2), False),
        (("soft-q-c1/tau",), (0, 1, 2), False),
    ]


def test_members_that_went_on_alone_continue_alone_without_the_cap(tmp_path):
    """Split by a cap before its first checkpoint, the members saved their own: a later
    sitting without the cap must not restart them as the empty shared program."""
    plan = _plan(tmp_path, "experiment-3")
    _shared_folder(plan, ("a2c", "a2c-c1/tau"), (0, 1, 2))
    for label in ("a2c", "a2c-c1/tau"):
        _checkpoint(_batch(plan, label, (0, 1, 2), finished=False), 2000)
    assert _described(plan_programs(plan)[0])[:2] == [
        (("a2c",), (0, 1, 2), True),
        (("a2c-c1/tau",), (0, 1, 2), True),
    ]


def test_a_batch_overlapping_a_later_cut_is_left_alone(tmp_path):
    """A cap cut seeds 0-1-2 into 0-1 (finished) and 2 (running): the first attempt's
    unfinished seeds-0-1-2 folder must not train seeds 0 and 1 again."""
    plan = _plan(tmp_path, "experiment-1")
    _batch(plan, "proper", (0, 1, 2), finished=False)
    _batch(plan, "proper", (0, 1), finished=True)
    _checkpoint(_batch(plan, "proper", (2,), finished=False), 1000)
    programs, reused = plan_programs(plan, max_lanes=2)
    assert reused == 2
    assert _described(programs)[0] == (("proper",), (2,), True)
    assert [p.seeds for p in programs if p.variants[0].label == "proper"] == [(2,)]


@pytest.mark.parametrize("max_lanes", [0, -1, 2.5, True])
def test_a_bad_cap_is_named(tmp_path, max_lanes):
    from softeq.adapters.run_config import ConfigError

    with pytest.raises(ConfigError, match="--max-lanes"):
        plan_programs(_plan(tmp_path, "experiment-1"), max_lanes=max_lanes)


def test_a_program_stalled_before_its_first_checkpoint_runs_again_as_halves(tmp_path):
    """The stall watch leaves a record in the program's folder; with no checkpoint
    beside it, the program is planned again with half its lanes."""
    from softeq.adapters import stall

    plan = _plan(tmp_path, "experiment-2")
    five = tuple(f"{t}-5" for t in TARGETS)
    folder = _shared_folder(plan, five, (0, 1, 2))
    for label in five:
        _batch(plan, label, (0, 1, 2), finished=False)
    stall.write_stall_record(folder, env_step=0, lanes=9)
    programs, _ = plan_programs(plan)
    # half of nine lanes is four: one variant's three seeds at a time, each in the
    # batch folder it had as a member (no checkpoint there: a fresh start)
    assert _described(programs) == [
        *[((label,), (0, 1, 2), True) for label in five],
        (tuple(f"{t}-1" for t in TARGETS), (0, 1, 2), False),
    ]

    # One of the smaller programs stalls as well: its seeds go one by one.
    stall.write_stall_record(programs[0].folder(plan), env_step=0, lanes=3)
    assert _described(plan_programs(plan)[0]) == [
        (("soft-kl-5",), (0, 1, 2), True),
        (("soft-entropy-5",), (0, 1, 2), True),
        (tuple(f"{t}-1" for t in TARGETS), (0, 1, 2), False),
        *[(("hard-5",), (seed,), False) for seed in (0, 1, 2)],
    ]

    # Saved once, a program continues whole from its checkpoint, record or not.
    _checkpoint(folder, 1000)
    for label in five:
        _checkpoint(plan.variant_dir(GAME, plan.experiment.variant(label)) / "seeds-0-1-2", 1000)
    assert _described(plan_programs(plan)[0])[0] == (five, (0, 1, 2), True)
