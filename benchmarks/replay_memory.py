"""Memory of the jitted driver's replay: each observation stored once, against twice.

    python -m benchmarks.replay_memory [--output FILE]

The device replay (`softeq.adapters.jit_driver.DeviceReplay`) keeps each
observation once: the next state of a transition is the next row, and only
truncated episodes' last observations go to a small side ring. Until
2026-11-30 it kept a second `[rows, N, *obs_shape]` array of next observations.
This table gives the bytes of one seed's buffer for the registry's replay
settings and for the paper's 1M-transition Atari replay, computed from the
arrays' shapes (`jax.eval_shape`, nothing is allocated), and what the old
layout held (the same arrays, minus the side ring, plus the second observation
array). A checkpoint of a jitted run holds every seed's buffer, so a nine-lane
MinAtar program (`softeq reproduce experiment-2`) saves nine of them.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import jax
import numpy as np

from benchmarks.harness import markdown_table
from softeq.adapters import agents
from softeq.adapters.jit_driver import device_replay_init
from softeq.adapters.reproduce import machine_description
from softeq.adapters.run_config import RunConfig, resolve_num_envs

# (env id, replay capacity: None = the registry's default). Atari observations are
# four stacked 84×84 uint8 frames; the others are read from the JAX-native env.
CASES = (
    ("CartPole-v1", None),
    ("Breakout-MinAtar", None),
    ("ALE/Pong-v5", None),
    ("ALE/Pong-v5", 1_000_000),
)


def _observations(env_id: str) -> tuple[tuple[int, ...], np.dtype]:
    if env_id.startswith("ALE/"):
        return (84, 84, 4), np.dtype(np.uint8)
    from softeq.adapters.jax_envs import make_jax_env

    env = make_jax_env(env_id)
    return tuple(env.observation_shape), np.dtype(env.observation_dtype)


def _bytes(tree) -> int:
    return sum(math.prod(x.shape) * np.dtype(x.dtype).itemsize for x in jax.tree.leaves(tree))


def rows() -> list[list[object]]:
    out = []
    for env_id, capacity in CASES:
        shape, dtype = _observations(env_id)
        config = agents.default_config("dqn", env_id)
        capacity = capacity or config.replay_capacity
        num_envs = resolve_num_envs(RunConfig(env_id=env_id, algo="dqn"), config)
        replay = jax.eval_shape(
            lambda c=capacity, n=num_envs, s=shape, d=dtype: device_replay_init(
                capacity=c, num_envs=n, observation_shape=s, observation_dtype=d
            )
        )
        now = _bytes(replay)
        side_ring = _bytes((replay.final_obs, replay.final_owner, replay.final_slot))
        counters = _bytes((replay.final_count, replay.lost_truncations))
        before = now - side_ring - counters + _bytes(replay.obs)
        out.append(
            [
                env_id,
                f"{capacity:,} × {num_envs} envs",
                f"{before / 2**20:,.1f}",
                f"{now / 2**20:,.1f}",
                f"{now / before:.2f}",
            ]
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=None, help="also write the table here")
    args = parser.parse_args(argv)
    table = markdown_table(
        ["env", "replay (transitions)", "two observation arrays, MiB", "one + side ring, MiB",
         "ratio"],
        rows(),
    )  # fmt: skip
    text = (
        "# Device replay memory (one seed)\n\n"
        f"Machine: {machine_description()}. Sizes from the arrays' shapes; "
        "`python -m benchmarks.replay_memory`.\n\n" + table + "\n"
    )
    print(text)
    if args.output:
        args.output.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
