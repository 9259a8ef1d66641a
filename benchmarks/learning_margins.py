"""Per-seed outcomes of the host-loop learning tests, to set their thresholds.

    python -m benchmarks.learning_margins [--seeds 0-15] [--cases a2c soft-q ...] [--out FILE]

Runs the exact budgets of `tests/adapters/test_agents.py`'s learning tests
(CartPole-v1 defaults, the mean of the last 20 finished training episodes)
over many seeds and prints one markdown table: per case the sorted per-seed
scores, the minimum, the 10th percentile and the median. A test threshold
is then chosen well below what the statistic the test asserts (median or
k-of-n over its seeds) reaches on these distributions, so that a change of
machine (other XLA code, other rounding) or of seeds cannot flip it. Not a
speed benchmark: the scores do not depend on the load.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import time

import numpy as np

# case name -> (algo, config overrides, env steps)
CASES: dict[str, tuple[str, dict, int]] = {
    "a2c": ("a2c", {}, 80_000),
    "a2c-naive": ("a2c", {"entropy": "naive"}, 80_000),
    "soft-q": ("soft-q", {}, 80_000),
    "dqn": ("dqn", {}, 20_000),
}


def train_score(algo: str, overrides: dict, total_steps: int, seed: int) -> float:
    """Mean raw return of the last 20 finished training episodes of one host-loop run."""
    from softeq.adapters.agents import default_config, default_num_envs, make_agent_for_env
    from softeq.adapters.envs import make_vector_env

    num_envs = default_num_envs(algo, "CartPole-v1")
    env = make_vector_env("CartPole-v1", num_envs=num_envs, seed=seed)
    agent = make_agent_for_env(algo, default_config(algo, "CartPole-v1", **overrides), env)
    obs = env.reset()
    state = agent.init(seed, obs)
    returns: collections.deque = collections.deque(maxlen=20)
    for _ in range(total_steps // num_envs):
        actions, state = agent.act(state, obs)
        step = env.step(actions)
        state, _ = agent.observe(state, obs, actions, step)
        obs = step.obs
        returns.extend(step.episode_returns[~np.isnan(step.episode_returns)])
    env.close()
    return float(np.mean(returns))


def _seed_range(text: str) -> list[int]:
    lo, _, hi = text.partition("-")
    return list(range(int(lo), int(hi or lo) + 1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0-15", help="inclusive range, e.g. 0-15")
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--out", default=None, help="also write the scores as JSON here")
    args = parser.parse_args(argv)
    seeds = _seed_range(args.seeds)
    results = {}
    print("| case | steps | seeds | min | p10 | median | scores (sorted) | wall s |")
    print("|---|---|---|---|---|---|---|---|")
    for name in args.cases:
        algo, overrides, steps = CASES[name]
        start = time.perf_counter()
        scores = [train_score(algo, overrides, steps, s) for s in seeds]
        wall = time.perf_counter() - start
        results[name] = dict(zip(map(str, seeds), scores, strict=True))
        ordered = " ".join(f"{x:.0f}" for x in sorted(scores))
        print(
            f"| {name} | {steps} | {seeds[0]}–{seeds[-1]} | {min(scores):.0f} | "
            f"{np.percentile(scores, 10):.0f} | {np.median(scores):.0f} | {ordered} | {wall:.0f} |",
            flush=True,
        )
        if args.out:
            with open(args.out, "w") as fh:
                json.dump(results, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
