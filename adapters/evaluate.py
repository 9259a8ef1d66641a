"""Evaluate a saved agent: load a checkpoint, play N greedy episodes, summarise the returns."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from softeq.adapters.loop import evaluate_agent, load_agent_from_checkpoint


def evaluate_checkpoint(
    path: str | os.PathLike, *, episodes: int = 10, seed: int = 12345
) -> dict[str, Any]:
    """Load the agent saved at `path` (run folder or checkpoint file) and evaluate it.

    Args:
      path: a run folder, its `checkpoints/` folder or one checkpoint file; from
        a folder the newest checkpoint that verifies is used.
      episodes: number of greedy evaluation episodes (≥ 1).
      seed: sub-env i of the evaluation env is reset with seed `seed + i`.

    Returns:
      `{"return_mean", "return_std", "length_mean", "episodes", "returns",
      "checkpoint", "env_steps", "algo", "env_id"}`.
    """
    from softeq.adapters.envs import make_vector_env

    if episodes < 1:
        raise ValueError(f"`episodes` must be >= 1, got {episodes!r}.")
    agent, state, run, _, payload, ckpt_path = load_agent_from_checkpoint(path)
    num_envs = min(int(payload["num_envs"]), episodes)
    env = make_vector_env(run.env_id, num_envs=num_envs, seed=seed, backend=run.backend)
    try:
        result = evaluate_agent(agent, state, env, episodes=episodes, seed=seed)
    finally:
        env.close()
    return {
        "return_mean": result["return_mean"],
        "return_std": result["return_std"],
        "length_mean": result["length_mean"],
        "episodes": len(result["returns"]),
        "returns": np.asarray(result["returns"]),
        "checkpoint": str(ckpt_path),
        "env_steps": int(payload["loop"]["env_steps"]),
        "algo": run.algo,
        "env_id": run.env_id,
    }
