"""The ("seeds", "data") mesh of the jitted driver: shapes, layouts, and 4 devices = 1 device."""

from __future__ import annotations

import os
import subprocess
import sys

import jax
import pytest

from softeq.adapters import mesh
from softeq.adapters.agents import default_config
from softeq.adapters.jit_driver import JitProgram

SUBPROCESS_ENV = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}


@pytest.mark.parametrize(
    ("seeds", "envs", "devices", "shape"),
    [
        (1, 8, 4, (1, 4)),  # one seed: its envs over every device
        (2, 8, 4, (2, 2)),
        (4, 8, 4, (4, 1)),  # as many seeds as devices: no communication at all
        (3, 6, 4, (1, 2)),  # 3 seeds do not split over 4 devices; 6 envs over 2 of them
        (2, 5, 4, (2, 1)),  # 5 envs do not split over the 2 devices left per seed shard
        (1, 8, 1, (1, 1)),
    ],
)
def test_mesh_shape_puts_seeds_first_and_envs_on_the_devices_left(seeds, envs, devices, shape):
    assert mesh.mesh_shape(seeds, envs, devices) == shape


@pytest.mark.parametrize("name", ["num_seeds", "num_envs", "num_devices"])
def test_mesh_shape_names_a_bad_count(name):
    counts = {"num_seeds": 1, "num_envs": 8, "num_devices": 4, name: 0}
    with pytest.raises(ValueError, match=f"`{name}`"):
        mesh.mesh_shape(**counts)


def test_training_mesh_has_both_axes_on_local_devices():
    m = mesh.training_mesh(1, 8)
    assert m.axis_names == (mesh.SEED_AXIS, mesh.DATA_AXIS)
    assert m.size == mesh.mesh_shape(1, 8, len(jax.local_devices()))[1]


def test_a_multi_process_mesh_that_leaves_devices_idle_is_refused(monkeypatch):
    """With several processes every device must hold a share (each process steps its own)."""
    monkeypatch.setattr(jax, "process_count", lambda: 2)
    devices = [object()] * 4  # the check comes before any device is touched
    with pytest.raises(ValueError, match=r"3 seed.*6 envs split over only 2 of them.*--num-envs"):
        mesh.training_mesh(3, 6, devices)


@pytest.mark.parametrize(("algo", "replay"), [("a2c", False), ("dqn", True)])
@pytest.mark.parametrize("num_envs", [8, 4])
def test_env_axes_mark_envs_observations_and_replay_columns(algo, replay, num_envs):
    config = default_config(algo, "CartPole-v1")
    program = JitProgram(algo, config, env_id="CartPole-v1", num_envs=num_envs)
    state = jax.eval_shape(program.init, 0)
    axes = mesh.env_axes(state, num_envs)
    assert set(jax.tree.leaves(axes.env)) == {0}
    assert jax.tree.leaves(axes.obs) == [0]
    assert all(a is None for a in jax.tree.leaves(axes.learner, is_leaf=lambda x: x is None))
    assert axes.key is None and axes.env_steps is None
    if replay:
        assert axes.replay.obs == 1 and axes.replay.actions == 1
        assert axes.replay.final_slot == 1
        assert axes.replay.count is None  # a scalar has no env axis
        # The side ring is indexed by slot, not env, even when an observation has as
        # many entries as there are envs (CartPole's 4 with 4 envs).
        assert axes.replay.final_obs is None and axes.replay.final_owner is None


def test_shard_env_axis_does_nothing_outside_a_layout():
    x = jax.numpy.ones((8, 3))
    assert mesh.shard_env_axis(x) is x
    assert mesh.data_shards() == 1


_FOUR_DEVICES_SCRIPT = """
import jax, numpy as np
from softeq.adapters import jit_loop
from softeq.adapters.agents import default_config
from softeq.adapters.jit_driver import JitProgram

assert jax.device_count() == 4, jax.devices()
config = default_config("{algo}", "CartPole-v1", **{overrides})
program = JitProgram("{algo}", config, env_id="CartPole-v1", num_envs=8)
ITERATIONS = {iterations}

def train(seeds, devices):
    seeded = jit_loop.SeededProgram(program, seeds, chunk_length=ITERATIONS, devices=devices)
    state, _ = seeded.train_chunk(seeded.init(), ITERATIONS, 0)
    obs = state.obs
    per_device = obs.sharding.shard_shape(obs.shape)
    hlo = seeded._compiled["train_chunk"].as_text()
    return dict(seeded.mesh.shape), per_device, "all-reduce" in hlo, jax.device_get(state)

for seeds in ([0], [0, 1]):
    shape, per_device, all_reduce, spread = train(seeds, jax.devices())
    one_shape, _, _, single = train(seeds, jax.devices()[:1])
    assert one_shape == {{"seeds": 1, "data": 1}}, one_shape
    data = 4 // len(seeds)
    assert shape == {{"seeds": len(seeds), "data": data}}, shape
    # each device holds one seed's N / data envs (obs [S, N, 4])
    assert per_device == (1, 8 // data, 4), per_device
    assert all_reduce  # the gradient's batch mean crosses devices
    worst = 0.0
    for a, b in zip(jax.tree.leaves(spread), jax.tree.leaves(single), strict=True):
        if np.issubdtype(a.dtype, np.floating):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
            worst = max(worst, float(np.abs(a - b).max()))
        else:
            np.testing.assert_array_equal(a, b)  # env states, keys, counters: exact
    params = max(
        float(np.abs(a - b).max())
        for a, b in zip(
            jax.tree.leaves(spread.learner.params), jax.tree.leaves(single.learner.params)
        )
    )
    print("RESULT", len(seeds), data, worst, params)
"""


@pytest.mark.parametrize(
    ("algo", "overrides", "iterations"),
    [
        ("a2c", {"lr_decay_steps": 20_000}, 20),
        # replay columns split over "data"; about 190 updates on batches sampled across shards
        ("dqn", {"learning_starts": 64, "batch_size": 32, "train_every": 4}, 100),
    ],
)
def test_envs_split_over_four_devices_train_as_on_one(algo, overrides, iterations):
    """1 seed x 4 env shards and 2 seeds x 2 env shards equal one device, same global batch.

    Runs in a subprocess with 4 forced host devices. Each seed steps 8 CartPole
    envs; on the mesh each device steps 2 or 4 of them (and holds their replay
    columns) and the loss's batch mean is an all-reduce over "data". Integer
    state (env states, replay, PRNG keys, counters) must be identical: the
    threefry bits do not depend on the layout, so every env sees the same
    actions. The floats agree to float32 rounding only, because the all-reduce
    adds the per-device partial sums in another order than one device sums the
    batch; measured: at most 3e-7 (1 x 4) and 1.1e-6 (2 x 2) on the a2c
    parameters after 20 updates, 1.2e-7 and 7e-8 on dqn's after 100
    iterations. rtol 1e-4, atol 1e-5 sits ten times above that drift and far
    below what a lost shard, a wrong gradient mean (a 2x or 4x step) or a
    different seed would change.
    """
    env = {**SUBPROCESS_ENV, "XLA_FLAGS": "--xla_force_host_platform_device_count=4"}
    script = _FOUR_DEVICES_SCRIPT.format(algo=algo, overrides=overrides, iterations=iterations)
    proc = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    print(proc.stdout)  # seeds, data shards, max |diff| of the state's floats, of the parameters
    results = [line.split()[1:] for line in proc.stdout.splitlines() if line.startswith("RESULT")]
    assert [r[:2] for r in results] == [["1", "4"], ["2", "2"]], proc.stdout
