"""Evaluate a saved agent: load a checkpoint, play N episodes, summarise the returns.

The episodes follow the run's evaluation protocol (`RunConfig.eval_policy`,
`eval_epsilon`, `eval_max_episode_steps`, resolved by
`softeq.adapters.run_config.resolve_eval_protocol`: on Atari a2c and soft-q
sample from π_θ, dqn acts ε-greedily with ε = 0.05 and episodes end after
4 500 agent steps; classic control is greedy), unless the caller overrides it.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from softeq.adapters.loop import evaluate_agent, load_agent_from_checkpoint
from softeq.adapters.run_config import resolve_eval_protocol


def evaluate_checkpoint(
    path: str | os.PathLike,
    *,
    episodes: int = 10,
    seed: int = 12345,
    policy: str | None = None,
    epsilon: float | None = None,
    max_episode_steps: int | None = None,
) -> dict[str, Any]:
    """Load the agent saved at `path` (run folder or checkpoint file) and evaluate it.

    Args:
      path: a run folder, its `checkpoints/` folder or one checkpoint file; from
        a folder the newest checkpoint that verifies is used.
      episodes: number of evaluation episodes (≥ 1).
      seed: sub-env i of the evaluation env is reset with seed `seed + i`; the
        policy's random draws are keyed by `seed` too.
      policy: "auto", "greedy", "sample" or "epsilon"; None = the saved run's
        `eval_policy`.
      epsilon: ε of "epsilon"; None = the saved run's `eval_epsilon`.
      max_episode_steps: per-episode cap in agent steps (0 = auto); None = the
        saved run's `eval_max_episode_steps`.

    Returns:
      `{"return_mean", "return_std", "length_mean", "episodes", "capped",
      "returns", "policy", "epsilon", "max_episode_steps", "checkpoint",
      "env_steps", "algo", "env_id"}`; `policy`, `epsilon` and
      `max_episode_steps` are the resolved protocol.

    Raises:
      ConfigError: an override is not allowed (it names the flag, e.g.
        `--eval-policy`, the value and the allowed values).
    """
    from softeq.adapters import jit_loop
    from softeq.adapters.envs import make_vector_env

    if episodes < 1:
        raise ValueError(f"`episodes` must be >= 1, got {episodes!r}.")
    if jit_loop.is_jit_run(path):  # every seed of the run, inside its program
        return jit_loop.evaluate_checkpoint(
            path,
            episodes=episodes,
            seed=seed,
            policy=policy,
            epsilon=epsilon,
            max_episode_steps=max_episode_steps,
        )
    agent, state, run, _, payload, ckpt_path = load_agent_from_checkpoint(path)
    overrides = {
        "eval_policy": policy,
        "eval_epsilon": epsilon,
        "eval_max_episode_steps": max_episode_steps,
    }
    run = run.replace(**{k: v for k, v in overrides.items() if v is not None})  # validates
    protocol = resolve_eval_protocol(run)
    num_envs = min(int(payload["num_envs"]), episodes)
    env = make_vector_env(run.env_id, num_envs=num_envs, seed=seed, backend=run.backend)
    try:
        result = evaluate_agent(
            agent,
            state,
            env,
            episodes=episodes,
            seed=seed,
            policy=protocol.policy,
            epsilon=protocol.epsilon,
            max_episode_steps=protocol.max_episode_steps,
        )
    finally:
        env.close()
    return {
        "return_mean": result["return_mean"],
        "return_std": result["return_std"],
        "length_mean": result["length_mean"],
        "episodes": len(result["returns"]),
        "capped": int(result["capped"]),
        "returns": np.asarray(result["returns"]),
        "policy": protocol.policy,
        "epsilon": protocol.epsilon,
        "max_episode_steps": protocol.max_episode_steps,
        "checkpoint": str(ckpt_path),
        "env_steps": int(payload["loop"]["env_steps"]),
        "algo": run.algo,
        "env_id": run.env_id,
    }
