"""Training-loop throughput against the environment's own ceiling, with the time split.

For every algorithm (a2c, soft-q, dqn) and environment the full host loop of
`softeq.adapters.loop.train` — `agent.act` → `env.step` → `agent.observe`
(which stores the transition and runs the jitted learner update when due) —
is timed in env-steps/s, without the logging, evaluation and checkpoint side
work of `train`. The reference is the ceiling: a second vector env of the
same kind and size stepping uniformly random actions with no agent at all.

Timing runs in rounds; each round times a ceiling phase and then a training
phase, so that both see the same machine load, and yields one sample of each.
Compilation is excluded: a warm-up phase runs until the agent has done two
learner updates (for DQN: after `learning_starts`) before the first round.

The time of the training phases is split into
- act: `agent.act` (policy forward and sampling on device, actions to host);
- env: `env.step`;
- learn: the jitted `learner_update` calls inside `observe`, waited for;
- other: the rest of `observe` (rollout/replay writes, replay sampling,
  metrics to host) and the loop itself.
"""

from __future__ import annotations

import dataclasses
import time

import jax
import numpy as np

from benchmarks.harness import markdown_table, median, ratio_samples, spread

ALGOS = ("a2c", "soft-q", "dqn")
ENVS = ("CartPole-v1", "ALE/Pong-v5", "ALE/Breakout-v5")
ATARI_NUM_ENVS = 8
# DQN settings changed from the Atari defaults so that a benchmark fits in minutes
# and memory: a small replay and an early start. Everything else is the default.
ATARI_DQN_OVERRIDES = {"replay_capacity": 10_000, "learning_starts": 2_000}


@dataclasses.dataclass
class _Clock:
    act: float = 0.0
    env: float = 0.0
    learn: float = 0.0
    total: float = 0.0
    updates: int = 0


def _timed_learner(agent, clock: _Clock) -> None:
    """Replaces the agent's learner update (an instance attribute) by a timed, waited copy."""
    update = agent.learner_update

    def timed(*args):
        start = time.perf_counter()
        out = jax.block_until_ready(update(*args))
        clock.learn += time.perf_counter() - start
        clock.updates += 1
        return out

    agent.learner_update = timed


def _settings(algo: str, env_id: str):
    from softeq.adapters import agents

    atari = env_id.startswith("ALE/")
    overrides = ATARI_DQN_OVERRIDES if atari and algo == "dqn" else {}
    config = agents.default_config(algo, env_id, **overrides)
    num_envs = ATARI_NUM_ENVS if atari else agents.default_num_envs(algo, env_id)
    return config, num_envs


def _updates_per_vector_step(algo: str, config, num_envs: int) -> float:
    if algo == "dqn":
        return num_envs / config.train_every
    return 1.0 / config.num_steps


def _describe(algo: str, config, num_envs: int) -> str:
    if algo == "dqn":
        return (
            f"N={num_envs}, batch {config.batch_size}, 1 update / {config.train_every} "
            f"transitions, replay {config.replay_capacity}"
        )
    return f"N={num_envs}, T={config.num_steps}, batch {num_envs * config.num_steps}"


def measure(
    algo: str,
    env_id: str,
    *,
    rounds: int,
    updates_per_round: int,
    min_ceiling_steps: int = 100,
    seed: int = 0,
) -> dict:
    """Times the training loop and the random-action ceiling of one (algo, env) pair.

    Returns a dict with per-round `train_sps` and `ceiling_sps` samples, the
    summed phase times and the settings.
    """
    from softeq.adapters import agents
    from softeq.adapters.envs import make_vector_env

    config, num_envs = _settings(algo, env_id)
    per_step = _updates_per_vector_step(algo, config, num_envs)
    steps_per_round = max(1, int(np.ceil(updates_per_round / per_step)))
    ceiling_steps = max(steps_per_round, min_ceiling_steps)

    env = make_vector_env(env_id, num_envs=num_envs, seed=seed)
    ceiling_env = make_vector_env(env_id, num_envs=num_envs, seed=seed + 1000)
    try:
        agent = agents.make_agent_for_env(algo, config, env)
        clock = _Clock()
        _timed_learner(agent, clock)
        obs = env.reset(seed=seed)
        state = agent.init(seed, obs)

        # Warm-up: compile act and the learner (two updates), fill DQN's replay.
        warm_start = time.perf_counter()
        while clock.updates < 2:
            actions, state = agent.act(state, obs)
            step = env.step(np.asarray(actions))
            state, _ = agent.observe(state, obs, actions, step)
            obs = step.obs
        warm_s = time.perf_counter() - warm_start

        rng = np.random.default_rng(seed)
        ceiling_env.reset(seed=seed + 1000)
        clock.act = clock.env = clock.learn = clock.total = 0.0  # the wrapper holds `clock`
        clock.updates = 0
        train_sps, ceiling_sps = [], []
        for _ in range(rounds):
            random_actions = rng.integers(0, env.num_actions, size=(ceiling_steps, num_envs))
            start = time.perf_counter()
            for t in range(ceiling_steps):
                ceiling_env.step(random_actions[t].astype(np.int32))
            ceiling_sps.append(ceiling_steps * num_envs / (time.perf_counter() - start))

            round_start = time.perf_counter()
            for _ in range(steps_per_round):
                t0 = time.perf_counter()
                actions, state = agent.act(state, obs)
                t1 = time.perf_counter()
                step = env.step(np.asarray(actions))
                t2 = time.perf_counter()
                state, _ = agent.observe(state, obs, actions, step)
                obs = step.obs
                clock.act += t1 - t0
                clock.env += t2 - t1
            elapsed = time.perf_counter() - round_start
            clock.total += elapsed
            train_sps.append(steps_per_round * num_envs / elapsed)
    finally:
        env.close()
        ceiling_env.close()
    return {
        "algo": algo,
        "env_id": env_id,
        "settings": _describe(algo, config, num_envs),
        "train_sps": train_sps,
        "ceiling_sps": ceiling_sps,
        "clock": clock,
        "warm_s": warm_s,
        "env_steps": rounds * steps_per_round * num_envs,
    }


def run(
    *,
    algos=ALGOS,
    envs=ENVS,
    rounds: int = 5,
    updates_per_round: dict | None = None,
    quick: bool = False,
) -> tuple[str, list]:
    """Returns the markdown section and the raw rows.

    `updates_per_round` maps "atari"/"control" to the learner updates timed per
    round (default 40 for Atari, 50 for classic control). `quick` keeps only
    CartPole with 3 rounds of 10 updates.
    """
    if quick:
        envs, rounds = ("CartPole-v1",), 3
        updates_per_round = {"atari": 10, "control": 10}
    budget = {"atari": 40, "control": 50, **(updates_per_round or {})}
    rows = []
    for env_id in envs:
        for algo in algos:
            kind = "atari" if env_id.startswith("ALE/") else "control"
            m = measure(algo, env_id, rounds=rounds, updates_per_round=budget[kind])
            clock = m["clock"]
            total = clock.total
            other = clock.total - clock.act - clock.env - clock.learn
            ratios = ratio_samples(m["train_sps"], m["ceiling_sps"])
            rows.append(
                (
                    algo,
                    env_id,
                    m["settings"],
                    clock.updates,
                    f"{median(m['train_sps']):,.0f} ({spread(m['train_sps'], scale=1)})",
                    f"{median(m['ceiling_sps']):,.0f} ({spread(m['ceiling_sps'], scale=1)})",
                    f"{median(ratios):.3f}",
                    f"{clock.act / total:.2f}",
                    f"{clock.env / total:.2f}",
                    f"{clock.learn / total:.2f}",
                    f"{other / total:.2f}",
                )
            )
    header = [
        "algo",
        "env",
        "settings",
        "updates timed",
        "training env-steps/s (IQR)",
        "ceiling env-steps/s (IQR)",
        "training / ceiling",
        "act",
        "env",
        "learn",
        "other",
    ]
    text = (
        "## Training throughput against the environment ceiling\n\n"
        "The host loop act → env.step → observe (learner update when due), timed after "
        f"compilation over {rounds} rounds; each round first times the ceiling (a second "
        "vector env of the same kind and size stepping random actions, no agent) and then "
        "the training loop. Env-steps count every sub-environment. 'training / ceiling' is the "
        "median of the per-round ratios. The last four columns split the training time "
        "(act = policy forward and sampling, env = env.step, learn = the jitted learner "
        "update, other = storage, replay sampling, metrics to host). Atari uses "
        f"{ATARI_NUM_ENVS} envs with the ALE vector env; DQN on Atari runs with "
        f"{ATARI_DQN_OVERRIDES} to fit the budget; classic control uses the agents' default "
        "settings and env counts.\n\n" + markdown_table(header, rows) + "\n"
    )
    return text, rows
