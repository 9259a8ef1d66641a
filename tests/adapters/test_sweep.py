"""Hyperparameter sweeps inside one jitted program (`softeq.adapters.sweep`).

Lanes of one vmapped program may train with different temperatures or value
weights: the values travel as `[S]` arrays into the compiled program, so a
sweep compiles once, and each lane computes what a program of its own value
computes, up to float32 rounding.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from softeq.adapters import compare, jit_loop, sweep
from softeq.adapters.agents import default_config
from softeq.adapters.jit_driver import EvalSettings, JitProgram, jit_default_overrides
from softeq.adapters.run_config import RunConfig

ENV = "CartPole-v1"
SOFTEQ = Path(sys.executable).with_name("softeq")
SEEDS = (0, 1)
ITERATIONS = 20
DQN_SMALL = {"learning_starts": 32, "batch_size": 8, "replay_capacity": 500}


def _config(algo: str, **fields):
    return default_config(algo, ENV, **{**jit_default_overrides(algo, ENV, 4000), **fields})


def _program(config) -> JitProgram:
    algo = {"SoftQConfig": "soft-q", "A2CConfig": "a2c", "DQNConfig": "dqn"}[type(config).__name__]
    return JitProgram(algo, config, env_id=ENV, num_envs=4, evaluation=EvalSettings(episodes=1))


# --------------------------------------------------------------------------------------
# Which configs share a program.
# --------------------------------------------------------------------------------------


def test_batch_key_ignores_sweepable_fields_only():
    base = _config("a2c")
    assert sweep.batch_key(base) == sweep.batch_key(_config("a2c", temperature=0.3))
    assert sweep.batch_key(base) == sweep.batch_key(_config("a2c", value_weight=100.0))
    # entropy mode, rollout length and schedule change the compiled program
    assert sweep.batch_key(base) != sweep.batch_key(_config("a2c", entropy="naive"))
    assert sweep.batch_key(base) != sweep.batch_key(_config("a2c", num_steps=3))
    assert sweep.batch_key(base) != sweep.batch_key(_config("a2c", learning_rate=1e-3))
    # a2c and soft-q have the same fields but are different programs
    assert sweep.batch_key(base) != sweep.batch_key(_config("soft-q"))
    assert sweep.sweepable_fields(_config("dqn")) == ("temperature", "target")
    # DQN's target picks one of three computations of the same shapes; n-step fixes shapes
    hard = _config("dqn", target="hard")
    assert sweep.batch_key(hard) == sweep.batch_key(_config("dqn", target="soft-kl"))
    assert sweep.batch_key(hard) != sweep.batch_key(_config("dqn", target="hard", n_step=5))
    assert sweep.sweepable_fields(_config("mdqn")) == ("temperature",)
    assert sweep.sweepable_fields(_config("sac-discrete")) == ()  # its entry lists none


def test_a_registry_entry_naming_an_unknown_sweepable_field_is_refused():
    import dataclasses

    from softeq.adapters.agents import registry

    entry = dataclasses.replace(
        registry.get_algorithm("a2c"), name="a2c-typo", sweepable=("temprature",)
    )
    with pytest.raises(ValueError, match=r"`sweepable` of 'a2c-typo' names unknown fields"):
        registry.register(entry)
    assert "a2c-typo" not in registry.algorithm_names()


def test_sweep_values_lists_only_the_fields_that_differ():
    configs = [_config("soft-q", temperature=t) for t in (0.01, 0.01, 0.05, 0.05)]
    values = sweep.sweep_values(configs)
    assert list(values) == ["temperature"]
    np.testing.assert_array_equal(values["temperature"], np.float32([0.01, 0.01, 0.05, 0.05]))
    with pytest.raises(ValueError, match="cannot share one program"):
        sweep.sweep_values([_config("a2c"), _config("a2c", entropy="naive")])


def test_sweep_values_of_a_choice_field_are_indices_into_its_choices():
    configs = [_config("dqn", target=t) for t in ("soft-entropy", "hard", "soft-kl", "hard")]
    values = sweep.sweep_values(configs)
    assert list(values) == ["target"] and values["target"].dtype == np.int32
    np.testing.assert_array_equal(values["target"], [2, 0, 1, 0])  # ("hard", "soft-kl", ...)


def test_traced_fields_skip_validation_and_refuse_unsweepable_fields():
    config = _config("soft-q")
    traced = sweep.with_traced_fields(config, {"temperature": jnp.float32(0.2)})
    assert float(traced.temperature) == pytest.approx(0.2) and config.temperature == 0.01
    assert traced.num_steps == config.num_steps
    with pytest.raises(ValueError, match="num_steps"):
        sweep.with_traced_fields(config, {"num_steps": 3})


def test_compare_groups_specs_that_differ_in_sweepable_fields_only(tmp_path):
    run = RunConfig(env_id=ENV, algo="a2c", seeds=SEEDS, driver="jit")
    tasks = [
        {"labels": [label], "runs": [run.replace(run_dir=str(tmp_path / label))], "algos": [c]}
        for label, c in (
            ("low", _config("a2c", value_weight=0.5)),
            ("high", _config("a2c", value_weight=100.0)),
            ("naive", _config("a2c", entropy="naive")),
        )
    ]
    merged = compare._group_jit_tasks(tasks, tmp_path)
    assert [t["labels"] for t in merged] == [["low", "high"], ["naive"]]
    assert Path(merged[0]["program"].run_dir).parent == tmp_path / compare.PROGRAMS_DIRNAME
    assert "program" not in merged[1]  # a spec alone keeps today's single-spec program


# --------------------------------------------------------------------------------------
# One sweep program = separate programs.
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("algo", "values", "extra"),
    [
        ("soft-q", ({"temperature": 0.01}, {"temperature": 0.1}), {}),
        # both of DQN's sweepable fields at once: a float and a choice (the target)
        (
            "dqn",
            (
                {"temperature": 0.1, "target": "soft-entropy"},
                {"temperature": 1.0, "target": "soft-kl"},
            ),
            DQN_SMALL,
        ),
    ],
)
def test_one_sweep_program_equals_separate_programs(algo, values, extra):
    """Two values × two seeds in one program: each lane's parameters after 20
    iterations equal those of a program compiled for its value alone (a temperature,
    and for DQN a temperature and a target together, the target picked by index).

    Tolerance: the two programs run the same operations, except that a separate
    program sees τ as a compile-time constant, which XLA may fold (1/τ) or fuse
    differently, so single roundings differ. Measured after 20-40 updates the
    largest parameter difference is 1.2e-7 (one or two float32 ulps at the
    parameters' scale, |θ| < 1); atol 1e-5 leaves a margin of ~100x for other
    machines (a lane's DQN target is computed with the same constants as alone:
    measured difference 0). Two temperatures' parameters differ by 1.5e-3
    (soft-q) and 8e-3 (dqn) after these 20 iterations; the check below (> 2e-4,
    20x atol) makes a lane that ignores its values fail. DQN's two lanes differ in
    both fields and both targets use the temperature, so a lane that took either
    field from the other lane trains apart from its own program: measured with the
    swept target dropped, 6.4e-3, with the swept temperature dropped, 2.1e-3.
    """
    configs = [_config(algo, **v, **extra) for v in values]
    separate = []
    for config in configs:
        seeded = jit_loop.SeededProgram(_program(config), SEEDS, chunk_length=ITERATIONS)
        state, _ = seeded.train_chunk(seeded.init(), ITERATIONS, 0)
        separate.append(jax.device_get(state.learner.params))

    lanes = [(v, s) for v in range(len(values)) for s in SEEDS]
    hyper = sweep.sweep_values([configs[v] for v, _ in lanes])
    assert sorted(hyper) == sorted(values[0])
    half = ITERATIONS // 2
    seeded = jit_loop.SeededProgram(
        _program(configs[0]),
        [s for _, s in lanes],
        chunk_length=half,
        hyperparameters=hyper,
    )
    state = seeded.init()
    state, _ = seeded.train_chunk(state, half, 0)
    state, _ = seeded.train_chunk(state, half, half)
    swept = jax.device_get(state.learner.params)
    assert seeded.trace_counts["train_chunk"] == 1  # one compilation for both values, two chunks

    for lane, (v, s) in enumerate(lanes):
        alone = separate[v]
        for got, want in zip(jax.tree.leaves(swept), jax.tree.leaves(alone), strict=True):
            np.testing.assert_allclose(got[lane], want[SEEDS.index(s)], rtol=0, atol=1e-5)
    apart = max(float(np.max(np.abs(x[0] - x[2]))) for x in jax.tree.leaves(swept))
    assert apart > 2e-4, f"the values trained alike ({apart}): the swept value is unused"


def test_seeded_program_refuses_a_value_list_of_the_wrong_length():
    with pytest.raises(ValueError, match="one value per lane"):
        jit_loop.SeededProgram(
            _program(_config("a2c")), SEEDS, chunk_length=1, hyperparameters={"temperature": [1.0]}
        )


# --------------------------------------------------------------------------------------
# Through the command line.
# --------------------------------------------------------------------------------------


def test_cli_compare_trains_two_value_weights_in_one_program(tmp_path):
    out = tmp_path / "cmp"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("XLA_FLAGS", None)
    args = [
        "compare",
        "--env",
        ENV,
        "--algos",
        "a2c:value_weight=0.5",
        "a2c:value_weight=100",
        "--seeds",
        "0",
        "1",
        "--total-steps",
        "1000",
        "--num-envs",
        "4",
        "--eval-every",
        "500",
        "--eval-episodes",
        "2",
        "--out",
        str(out),
    ]
    proc = subprocess.run(
        [str(SOFTEQ), *args], capture_output=True, text=True, timeout=300, env=env
    )
    assert proc.returncode == 0, proc.stderr
    assert (
        "1 jitted program(s); specs sharing one program: "
        "a2c:value_weight=0.5 + a2c:value_weight=100" in proc.stdout
    )
    manifest = json.loads((out / "compare.json").read_text())
    weights = []
    for spec in manifest["specs"]:
        folder = out / "runs" / spec["label"].replace(":", "-")
        assert spec["runs"] == [f"runs/{folder.name}/seed-{s}" for s in SEEDS]
        for run in spec["runs"]:
            assert (out / run / "metrics.csv").stat().st_size > 0
        summary = jit_loop.read_summary(folder)
        assert set(summary["seeds"]) == {"0", "1"}
        saved = json.loads((folder / "config.json").read_text())
        weights.append(saved["algo"]["value_weight"])
        assert list((folder / jit_loop.CHECKPOINT_DIRNAME).glob("*.ckpt"))
    assert weights == [0.5, 100.0]
    # the shared program's own folder: its log and checkpoints
    program_dir = out / compare.PROGRAMS_DIRNAME / "a2c-0"
    assert (program_dir / "train.log").exists()
    assert list((program_dir / jit_loop.CHECKPOINT_DIRNAME).glob("*.ckpt"))
    lanes = json.loads((program_dir / jit_loop.LANES_FILENAME).read_text())
    assert [(lane["seed"], lane["value_weight"]) for lane in lanes] == [
        (0, 0.5),
        (1, 0.5),
        (0, 100.0),
        (1, 100.0),
    ]
    rows = (out / "summary.csv").read_text()
    assert "a2c:value_weight=0.5" in rows and "a2c:value_weight=100" in rows


_FOUR_DEVICES_SCRIPT = """
import jax, numpy as np
from softeq.adapters import jit_loop
from softeq.adapters.agents import default_config
from softeq.adapters.jit_driver import JitProgram

assert jax.device_count() == 4, jax.devices()
config = default_config("soft-q", "CartPole-v1", lr_decay_steps=20_000)
program = JitProgram("soft-q", config, env_id="CartPole-v1", num_envs=4)
hyper = {"temperature": [0.01, 0.01, 0.1, 0.1], "value_weight": [0.5, 0.5, 0.5, 2.0]}

def train(devices):
    seeded = jit_loop.SeededProgram(
        program, [0, 1, 0, 1], chunk_length=20, devices=devices, hyperparameters=hyper
    )
    state, _ = seeded.train_chunk(seeded.init(), 20, 0)
    spread = len(jax.tree.leaves(state.learner.params)[0].sharding.device_set)
    return spread, jax.device_get(state.learner.params)

spread, params4 = train(jax.devices())
single, params1 = train(jax.devices()[:1])
assert (spread, single) == (4, 1), (spread, single)
for a, b in zip(jax.tree.leaves(params4), jax.tree.leaves(params1), strict=True):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
print("close")
"""


def test_sweep_lanes_on_four_devices_equal_the_same_lanes_on_one():
    """Lanes with their own temperature and value weight, one per forced host device,
    train as on one device: the `[S]` values are split over the "seeds" axis with the
    lanes they belong to. Tolerance as in test_jit_driver's four-device test (XLA:CPU
    sums batched products in another order over 1 lane than over 4: a few ulps).
    """
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4"}
    proc = subprocess.run(
        [sys.executable, "-c", _FOUR_DEVICES_SCRIPT],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.startswith("close")
