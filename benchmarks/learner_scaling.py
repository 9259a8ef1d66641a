"""Learner-update time against the batch size and against the number of devices.

Batch: the jitted `agent.learner_update` of a2c and soft-q on one synthetic
rollout of N environments × T = 5 steps (batch N·T transitions, plus the N
bootstrap states), for the Nature CNN on Atari-shaped frames `[4, 84, 84]`
uint8 with 6 actions and for the MLP on CartPole-shaped vectors `[4]` with 2
actions. The rollout is placed on the device once (sharded as the update
expects), so only the update itself is timed; all batch sizes of one
(torso, algo) are timed interleaved.

Devices: the same global batch in subprocesses started with
`XLA_FLAGS=--xla_force_host_platform_device_count=D`, where the agent's
data-parallel learner shards the batch over D host "devices". These are
logical devices carved out of the same CPU cores, so they add no compute: the
figures show the cost of the sharded program (collectives, smaller per-device
matmuls), not a speed-up. Each process is timed on its own (processes cannot
be interleaved), so drift of the machine load between them shows up in the
ratios.

Run one device-count worker by hand with
`python -m benchmarks.learner_scaling --worker '{"devices": 2, ...}'`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.harness import markdown_table, median, ratio_samples, spread, time_interleaved

NUM_STEPS = 5
SHAPES = {"nature": ((4, 84, 84), np.uint8, 6), "mlp": ((4,), np.float32, 2)}
REPO_ROOT = Path(__file__).resolve().parent.parent


def synthetic_rollout(num_envs: int, torso: str, *, num_steps: int = NUM_STEPS, seed: int = 0):
    """A random `Rollout` of `num_envs` × `num_steps` transitions for `torso`'s shapes."""
    from softeq.adapters.agents import Rollout

    shape, dtype, num_actions = SHAPES[torso]
    rng = np.random.default_rng(seed)
    obs_shape = (num_envs, num_steps + 1, *shape)
    if dtype == np.uint8:
        obs = rng.integers(0, 256, obs_shape, dtype=np.uint8)
    else:
        obs = rng.normal(size=obs_shape).astype(dtype)
    return Rollout(
        obs=obs,
        actions=rng.integers(0, num_actions, (num_envs, num_steps)).astype(np.int32),
        rewards=rng.choice(np.asarray([-1.0, 0.0, 1.0], np.float32), (num_envs, num_steps)),
        discounts=np.where(rng.random((num_envs, num_steps)) < 0.02, 0.0, 0.99).astype(np.float32),
    )


def make_learner(algo: str, torso: str, num_envs: int, *, devices=None, seed: int = 0):
    """(agent, learner state, device-resident rollout) ready for `agent.learner_update`."""
    import jax

    from softeq.adapters import agents, parallel

    shape, dtype, num_actions = SHAPES[torso]
    env_id = "ALE/Pong-v5" if torso == "nature" else "CartPole-v1"
    config = agents.default_config(algo, env_id, num_steps=NUM_STEPS)
    agent = agents.make_agent(
        algo,
        config,
        num_actions=num_actions,
        observation_shape=shape,
        observation_dtype=dtype,
        num_envs=num_envs,
        torso=torso,
        devices=devices,
    )
    rollout = synthetic_rollout(num_envs, torso, seed=seed)
    state = agent.init(seed, rollout.obs[:, 0])
    on_device = jax.device_put(rollout, parallel.batch_sharded(agent.mesh, axis=0))
    return agent, state.learner, on_device


def stateful_update(agent, learner, batch):
    """A thunk running one learner update per call, carrying the (donated) state along."""
    cell = [learner]

    def step():
        cell[0], metrics = agent.learner_update(cell[0], batch)
        return metrics

    return step


def time_batches(algo: str, torso: str, env_counts, *, repeats: int, inner: int) -> dict:
    """Seconds per update for each env count, interleaved; {num_envs: samples}."""
    thunks = {}
    for n in env_counts:
        agent, learner, batch = make_learner(algo, torso, n)
        thunks[n] = stateful_update(agent, learner, batch)
    return time_interleaved(thunks, repeats=repeats, inner=inner)


def time_with_cpu(thunks: dict, *, repeats: int, inner: int) -> dict:
    """Like `harness.time_interleaved`, also recording process CPU seconds per call.

    Returns {name: {"wall": [...], "cpu": [...]}}; CPU time sums all threads of
    the process, so cpu / wall is the average number of busy cores.
    """
    import jax

    for fn in thunks.values():
        jax.block_until_ready(fn())
    out = {name: {"wall": [], "cpu": []} for name in thunks}
    for _ in range(repeats):
        for name, fn in thunks.items():
            wall, cpu = time.perf_counter(), time.process_time()
            for _ in range(inner):
                result = fn()
            jax.block_until_ready(result)
            out[name]["wall"].append((time.perf_counter() - wall) / inner)
            out[name]["cpu"].append((time.process_time() - cpu) / inner)
    return out


def _worker(spec: dict) -> dict:
    """Runs inside a subprocess with forced host devices.

    For every (algo, torso) case, one agent per mesh size in `spec["meshes"]`
    (the first m devices), timed interleaved. Returns
    {"device_count", "samples": {case: {mesh size: {"wall", "cpu"}}}}.
    """
    import jax

    devices = jax.devices()
    results = {"device_count": len(devices), "samples": {}}
    for algo, torso in spec["cases"]:
        thunks = {}
        for m in spec["meshes"]:
            agent, learner, batch = make_learner(algo, torso, spec["num_envs"], devices=devices[:m])
            if agent.mesh.devices.size != m:
                raise RuntimeError(f"asked for a {m}-device mesh, got {agent.mesh.devices.size}")
            thunks[str(m)] = stateful_update(agent, learner, batch)
        results["samples"][f"{algo}/{torso}"] = time_with_cpu(
            thunks, repeats=spec["repeats"][torso], inner=spec["inner"][torso]
        )
    return results


def time_devices(spec: dict, device_counts) -> dict:
    """{D: worker result}, one subprocess per forced device count D, run one after another.

    The process with the most devices also times every smaller mesh, interleaved.
    """
    out = {}
    for d in device_counts:
        env = dict(os.environ)
        flags = env.get("XLA_FLAGS", "")
        env["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={d}".strip()
        env["JAX_PLATFORMS"] = "cpu"
        meshes = list(device_counts) if d == max(device_counts) else [d]
        worker_spec = json.dumps({**spec, "meshes": meshes})
        proc = subprocess.run(
            [sys.executable, "-m", "benchmarks.learner_scaling", "--worker", worker_spec],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(
                f"device-count worker (D={d}) failed with status {proc.returncode}:\n"
                f"{proc.stderr[-2000:]}"
            )
        line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")][-1]
        out[d] = json.loads(line[len("RESULT ") :])
        if out[d]["device_count"] != d:
            raise RuntimeError(f"worker saw {out[d]['device_count']} devices, expected {d}")
    return out


def _device_row(torso, algo, d, s, base, device_envs):
    wall, cpu = s["wall"], s["cpu"]
    busy = median([c / w for c, w in zip(cpu, wall, strict=True)])
    return (
        torso,
        algo,
        d,
        device_envs * NUM_STEPS,
        f"{median(wall) * 1e3:.2f} ({spread(wall, scale=1e3, digits=2)})",
        f"{busy:.2f}",
        f"{median(wall) / base:.2f}",
    )


def run(
    *,
    cases=(("a2c", "nature"), ("soft-q", "nature"), ("a2c", "mlp"), ("soft-q", "mlp")),
    env_counts=(8, 16, 32),
    device_cases=(("a2c", "nature"), ("a2c", "mlp")),
    device_counts=(1, 2, 4),
    device_envs: int = 16,
    repeats: dict | None = None,
    quick: bool = False,
) -> tuple[str, list]:
    """Returns the markdown section and the raw rows (batch rows, then device rows)."""
    if quick:
        cases, env_counts, device_counts = (("a2c", "mlp"),), (8, 16), (1, 2)
        device_cases = (("a2c", "mlp"),)
        repeats = {"mlp": 5, "nature": 2}
    repeats = {"nature": 5, "mlp": 20, **(repeats or {})}
    inner = {"nature": 1, "mlp": 5}

    batch_rows = []
    for algo, torso in cases:
        samples = time_batches(algo, torso, env_counts, repeats=repeats[torso], inner=inner[torso])
        base_n = env_counts[0]
        base = median(samples[base_n]) / base_n
        for n in env_counts:
            t = median(samples[n])
            batch_rows.append(
                (
                    torso,
                    algo,
                    n,
                    n * NUM_STEPS,
                    f"{t * 1e3:.2f} ({spread(samples[n], scale=1e3, digits=2)})",
                    f"{t / (n * NUM_STEPS) * 1e6:.0f}",
                    f"{t / median(samples[base_n]):.2f}",
                    f"{(t / n) / base:.2f}",
                )
            )
    batch_header = [
        "torso",
        "algo",
        "envs N",
        "batch N·T",
        "ms / update (IQR)",
        "µs / transition",
        f"time / time(N={env_counts[0]})",
        f"per-transition cost / N={env_counts[0]}",
    ]

    spec = {
        "cases": [list(c) for c in device_cases],
        "num_envs": device_envs,
        "repeats": repeats,
        "inner": inner,
    }
    per_device = time_devices(spec, device_counts)
    device_rows, mesh_rows = [], []
    top = max(device_counts)
    for algo, torso in device_cases:
        key = f"{algo}/{torso}"
        base = median(per_device[device_counts[0]]["samples"][key][str(device_counts[0])]["wall"])
        for d in device_counts:
            s = per_device[d]["samples"][key][str(d)]
            device_rows.append(_device_row(torso, algo, d, s, base, device_envs))
        inside = per_device[top]["samples"][key]
        first = inside[str(device_counts[0])]["wall"]
        for m in device_counts:
            s = inside[str(m)]
            row = _device_row(torso, algo, m, s, median(first), device_envs)
            ratios = ratio_samples(s["wall"], first)
            mesh_rows.append((*row[:-1], f"{median(ratios):.2f}"))
    device_header = [
        "torso",
        "algo",
        "devices D",
        "global batch",
        "ms / update (IQR)",
        "CPU time / wall time",
        f"time / time(D={device_counts[0]})",
    ]
    cores = os.cpu_count()
    text = (
        "## Learner scaling\n\n"
        "### Against the batch size\n\n"
        f"One jitted learner update on a synthetic rollout of N envs × T = {NUM_STEPS} steps "
        "already on the device; all N of one (torso, algo) timed interleaved, "
        f"{repeats['nature']} samples of 1 call (CNN) / {repeats['mlp']} samples of "
        f"{inner['mlp']} calls (MLP). CNN: Nature torso on uint8 [4, 84, 84], 6 actions; "
        "MLP: CartPole-shaped [4] vectors, 2 actions. Per-transition cost below 1 means "
        "larger batches use the hardware better.\n\n"
        + markdown_table(batch_header, batch_rows)
        + "\n\n### Against the number of devices\n\n"
        f"The same global batch ({device_envs} envs × {NUM_STEPS} steps) sharded over D forced "
        "host devices (`XLA_FLAGS=--xla_force_host_platform_device_count=D`). Forced host "
        f"devices add no hardware: all D share this machine's {cores} logical cores. "
        "'CPU time / wall time' is the process CPU time over the wall time of an update, the "
        "average number of busy cores; a D-device program can only beat the 1-device one where "
        "the latter leaves cores idle, and it pays for the collectives (the gradient mean) on "
        "top. On a machine shared with other processes there is a second effect: the OS "
        "scheduler shares the cores per thread, so a process running D device threads gets a "
        "larger share of the contended cores, which looks like a speed-up but takes CPU from "
        "the other processes (the CPU/wall column rises with D). Real multi-device scaling "
        "needs real devices (GPU/TPU); these rows show that the same code runs sharded and "
        "what that costs here.\n\n"
        f"One subprocess per D, timed one after another (so drift of the machine load between "
        f"processes enters the ratios):\n\n"
        + markdown_table(device_header, device_rows)
        + f"\n\nInside the D = {max(device_counts)} process, meshes over the first "
        f"{', '.join(str(d) for d in device_counts)} devices timed interleaved (no drift "
        "between them; ratio = median of per-round ratios):\n\n"
        + markdown_table(device_header, mesh_rows)
        + "\n"
    )
    return text, batch_rows + device_rows + mesh_rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.learner_scaling")
    parser.add_argument("--worker", help="JSON spec; run one device-count worker and print")
    args = parser.parse_args(argv)
    if args.worker:
        result = _worker(json.loads(args.worker))
        print("RESULT " + json.dumps(result), flush=True)
        return 0
    text, _ = run()
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
