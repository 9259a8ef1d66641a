"""Memory and compilation stay flat over a long in-process training run.

DQN on CartPole (replay buffer, target network, epsilon schedule) and then soft-Q
train for SOFTEQ_SOAK_SECONDS of wall-clock time in total (default 120, half each).
After a warm-up (the first 25% of each half) the resident set size is sampled every
2 s; the slope of RSS over the second half of the samples must stay below 1 MB/min
and no sample may exceed the post-warm-up median by more than 50 MB. No XLA
compilation may happen after the warm-up (a retrace per step would show up here).
"""

from __future__ import annotations

import os
import time

import jax
import numpy as np
import pytest

from softeq.adapters import agents
from softeq.adapters.envs import make_vector_env

SECONDS = float(os.environ.get("SOFTEQ_SOAK_SECONDS", "120"))
SLOPE_MB_PER_MIN = 1.0
SPIKE_MB = 50.0
COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"

_compiles = [0]


def _count(event: str, *_args, **_kwargs) -> None:
    if event == COMPILE_EVENT:
        _compiles[0] += 1


jax.monitoring.register_event_duration_secs_listener(_count)


def _rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError("no VmRSS in /proc/self/status")


def _soak(algo: str, seconds: float) -> dict[str, float]:
    env = make_vector_env("CartPole-v1", num_envs=4, seed=0)
    config = agents.default_config(algo, "CartPole-v1")
    if algo == "dqn":  # a small buffer that wraps around many times during the soak
        config = agents.default_config(algo, "CartPole-v1", replay_capacity=5_000)
    agent = agents.make_agent_for_env(algo, config, env, torso="mlp")
    obs = env.reset(seed=0)
    state = agent.init(0, obs)
    start = time.monotonic()
    warm_until = start + 0.25 * seconds
    next_sample = warm_until
    interval = min(2.0, 0.75 * seconds / 20)  # at least ~20 samples after warm-up
    samples: list[tuple[float, float]] = []
    compiles_after_warmup = None
    steps = 0
    try:
        while time.monotonic() - start < seconds:
            actions, state = agent.act(state, obs)
            step = env.step(np.asarray(actions))
            state, _ = agent.observe(state, obs, actions, step)
            obs = step.obs
            steps += 1
            now = time.monotonic()
            if now >= next_sample:
                if compiles_after_warmup is None:
                    compiles_after_warmup = _compiles[0]
                samples.append((now - start, _rss_mb()))
                next_sample = now + interval
    finally:
        env.close()
    t, rss = np.array(samples).T
    half = len(t) // 2
    slope = float(np.polyfit(t[half:], rss[half:], 1)[0]) * 60.0  # MB per minute
    spike = float(rss.max() - np.median(rss))
    return {
        "steps": steps,
        "samples": len(t),
        "slope_mb_per_min": slope,
        "spike_mb": spike,
        "new_compiles": _compiles[0] - (compiles_after_warmup or 0),
    }


@pytest.mark.soak
@pytest.mark.parametrize("algo", ["dqn", "soft-q"])
def test_memory_and_compilations_stay_flat(algo):
    stats = _soak(algo, SECONDS / 2)
    print(algo, stats)
    assert stats["samples"] >= 6, stats
    assert stats["slope_mb_per_min"] < SLOPE_MB_PER_MIN, stats
    assert stats["spike_mb"] < SPIKE_MB, stats
    assert stats["new_compiles"] == 0, stats
