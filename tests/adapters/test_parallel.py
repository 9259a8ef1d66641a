"""Data-parallel learner updates: mesh construction, and sharded == single-device.

The equality test runs in a subprocess whose XLA is told to expose 4 CPU
devices (`--xla_force_host_platform_device_count=4`, which must be set before
jax starts). There each agent's learner update is compiled twice, over a
4-device mesh and over 1 device, and fed the same parameters and the same
global batches for three successive updates.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest

from softeq.adapters import parallel

_SCRIPT = textwrap.dedent(
    """
    import json
    import jax, numpy as np
    from softeq.adapters import parallel
    from softeq.adapters.agents import Rollout, default_config, make_agent
    from softeq.adapters.replay import NStepBatch

    devices = jax.local_devices()
    assert len(devices) == 4, devices
    rng = np.random.default_rng(0)
    results, agents = {}, {}
    for algo in ("a2c", "soft-q", "dqn"):
        num_envs = 8
        config = default_config(algo, "CartPole-v1", **({"batch_size": 16, "n_step": 3}
                                                        if algo == "dqn" else {}))
        kwargs = dict(num_actions=2, observation_shape=(4,), observation_dtype=np.float32,
                      num_envs=num_envs, torso="mlp")
        multi = make_agent(algo, config, **kwargs)
        single = make_agent(algo, config, devices=devices[:1], **kwargs)
        agents[algo] = multi
        first = rng.normal(size=(num_envs, 4)).astype(np.float32)
        host = jax.device_get(single.init(0, first).learner)
        learners = {
            "multi": parallel.put_replicated(host, multi.mesh),
            "single": parallel.put_replicated(host, single.mesh),
        }
        gaps, metric_pairs, hlo = [], [], ""
        for update in range(3):
            if algo == "dqn":
                b, n = config.batch_size, config.n_step
                batch = NStepBatch(
                    obs=rng.normal(size=(b, 4)).astype(np.float32),
                    actions=rng.integers(0, 2, b).astype(np.int32),
                    rewards=rng.normal(size=(b, n)).astype(np.float32),
                    terminated=(rng.random((b, n)) < 0.2).astype(np.float32),
                    truncated=(rng.random((b, n)) < 0.1).astype(np.float32),
                    next_obs=rng.normal(size=(b, n, 4)).astype(np.float32),
                )
            else:
                t = config.num_steps
                batch = Rollout(
                    obs=rng.normal(size=(num_envs, t + 1, 4)).astype(np.float32),
                    actions=rng.integers(0, 2, (num_envs, t)).astype(np.int32),
                    rewards=rng.normal(size=(num_envs, t)).astype(np.float32),
                    discounts=(0.98 * (rng.random((num_envs, t)) > 0.1)).astype(np.float32),
                )
            if update == 0:  # compiled ahead of time once, so that its HLO can be read
                compiled = multi.learner_update.lower(learners["multi"], batch).compile()
                hlo = compiled.as_text()
            metrics = {}
            for name, update_fn in (("multi", compiled), ("single", single.learner_update)):
                learners[name], metrics[name] = update_fn(learners[name], batch)
            a, b = jax.device_get(learners["multi"]), jax.device_get(learners["single"])
            gaps.append(max(float(np.max(np.abs(x - y)) / (np.max(np.abs(y)) + 1e-30))
                            for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b))
                            if np.max(np.abs(y)) > 0))
            metric_pairs.append({k: (float(metrics["multi"][k]), float(metrics["single"][k]))
                                 for k in metrics["single"]})
        leaf = jax.tree.leaves(learners["multi"])[0]
        results[algo] = dict(
            mesh=[multi.mesh.size, single.mesh.size],
            param_devices=len(leaf.sharding.device_set),
            all_reduce="all-reduce" in hlo,
            param_gap=max(gaps),
            metrics=metric_pairs,
        )
    # the whole agent (act, observe, update) also runs on the 4-device mesh
    agent = agents["soft-q"]
    from softeq.adapters.envs import make_vector_env
    env = make_vector_env("CartPole-v1", num_envs=8, seed=0)
    obs = env.reset()
    state = agent.init(0, obs)
    updates = 0
    for _ in range(40):
        actions, state = agent.act(state, obs)
        step = env.step(actions)
        state, m = agent.observe(state, obs, actions, step)
        updates += m is not None
        if updates == 1 and m is not None:
            traces_after_first = dict(agent.trace_counts)
        obs = step.obs
    results["loop"] = dict(updates=updates, traces=agent.trace_counts,
                           traces_after_first=traces_after_first,
                           finite=bool(np.isfinite(m["grad_cosine"])))
    print("RESULT " + json.dumps(results))
    """
)


def test_sharded_update_equals_single_device_update():
    """4-device and 1-device updates agree to float32 rounding over 3 updates.

    The sharded update sums partial means on each device and then
    all-reduces, a different order of float32 additions than the
    single-device sum (relative error ~1e-7 per entry), and Adam's division by
    √v amplifies it on near-zero gradient entries. Tolerances: every leaf of
    the learner state (parameters, optimiser moments, target network) within
    1e-4 of that leaf's largest magnitude (measured ≤ 4e-6), and every metric
    within rtol 1e-4, atol 1e-5 (measured gaps ≤ 3e-7 absolute).
    """
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4")
    env["JAX_PLATFORMS"] = "cpu"
    proc = subprocess.run(
        [sys.executable, "-c", _SCRIPT], env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))
    results = json.loads(line[len("RESULT ") :])
    for algo in ("a2c", "soft-q", "dqn"):
        r = results[algo]
        assert r["mesh"] == [4, 1], r
        assert r["param_devices"] == 4, r
        assert r["all_reduce"], r  # the batch really is split and the gradients reduced
        assert r["param_gap"] < 1e-4, (algo, r["param_gap"])
        for pairs in r["metrics"]:
            multi, single = np.array(list(pairs.values())).T
            np.testing.assert_allclose(multi, single, rtol=1e-4, atol=1e-5, err_msg=algo)
    loop = results["loop"]
    assert loop["updates"] == 5 and loop["finite"]
    assert loop["traces"] == loop["traces_after_first"]  # no retrace after the first update
    assert loop["traces"]["act"] == 1


def test_usable_device_count_and_mesh():
    assert parallel.usable_device_count(16, 8) == 8
    assert parallel.usable_device_count(6, 4) == 3
    assert parallel.usable_device_count(7, 2) == 1
    mesh = parallel.batch_mesh(32)
    assert mesh.axis_names == ("batch",)
    assert mesh.size == parallel.usable_device_count(32, len(jax.local_devices()))
    sharding = parallel.batch_sharded(mesh, axis=1)
    assert sharding.spec == jax.sharding.PartitionSpec(None, "batch")
    x = jax.device_put(np.ones((3, 4)), parallel.replicated(mesh))
    assert x.sharding.is_fully_replicated


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: parallel.usable_device_count(0, 2), "batch_size"),
        (lambda: parallel.usable_device_count(4, 0), "num_devices"),
        (lambda: parallel.batch_mesh(4, []), "devices"),
        (lambda: parallel.batch_sharded(parallel.batch_mesh(1), axis=-1), "axis"),
    ],
)
def test_bad_arguments_are_named(call, name):
    with pytest.raises(ValueError, match=name):
        call()
