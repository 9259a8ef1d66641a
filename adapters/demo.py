"""`softeq demo`: the equivalence, first exactly on a tabular MDP, then by training.

Part 1 — exact, float64, on a random tabular MDP (fixed seed):

1. soft value iteration gives Q*; exact evaluation of its Boltzmann policy π*
   gives back Q_{π*} = Q* ([E12]);
2. for a few random tabular parameter tables θ (Q_θ = θ), the expected
   gradient of the n-step soft Q-learning loss over every enumerated
   trajectory equals −τ·(policy gradient) + (value-fit gradient) ([E15]),
   entry by entry, to round-off (`softeq.properties.equivalence`).

Part 2 — learning: `compare` of A2C and A2C-matched soft Q-learning ([E16])
on gymnax's CartPole-v1 with the CartPole defaults, five seeds each, every
algorithm's seeds trained as one jitted program (the learning rate decays
linearly to 0 over the budget). Every update of soft-q also computes, inside
the program, the cosine between its gradient and the A2C gradient on the same
batch. The verdict is per seed: every seed of both algorithms must reach a
greedy evaluation return ≥ 475 at the end. The learning curves, the
gradient-agreement curve, the per-seed table and the summary go into the demo
folder (default `runs/demo-<time>`).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

DEMO_ENV = "CartPole-v1"
DEMO_ALGOS = ("a2c", "soft-q")
DEMO_SEEDS = (0, 1, 2, 3, 4)
#: Env steps per seed; every seed's learning rate decays linearly to 0 over them.
DEMO_TOTAL_STEPS = 450_000
DEMO_EVAL_EPISODES = 10
TARGET_RETURN = 475.0
IDENTITY_TOLERANCE = 1e-9

# The tabular instance of part 1.
TABLE_SEED = 2017
TABLE_STATES = 3
TABLE_ACTIONS = 2
TABLE_DISCOUNT = 0.9
TABLE_TEMPERATURE = 0.5
TABLE_N = 2
TABLE_HORIZON = 3
TABLE_DRAWS = 3


def _random_mdp(rng: np.random.Generator):
    import jax.numpy as jnp

    from softeq.core import TabularMDP

    transitions = rng.dirichlet(np.ones(TABLE_STATES), size=(TABLE_STATES, TABLE_ACTIONS))
    return TabularMDP(
        transitions=jnp.asarray(transitions, jnp.float64),
        rewards=jnp.asarray(rng.normal(size=(TABLE_STATES, TABLE_ACTIONS)), jnp.float64),
        discount=jnp.asarray(TABLE_DISCOUNT, jnp.float64),
        initial_distribution=jnp.asarray(rng.dirichlet(np.ones(TABLE_STATES)), jnp.float64),
    )


def equivalence_table(out: Callable[[str], None] = print) -> dict[str, float]:
    """Print part 1 of the demo; returns the worst differences it found.

    Returns:
      `{"q_star_vs_q_pi": max |Q* − Q_{π*}|, "gradient_identity": max over draws of
      max |∇L_softQ − (−τ·PG + ∇L_V)|}`.
    """
    import jax

    previous_x64 = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    try:
        return _equivalence_table(out)
    finally:
        jax.config.update("jax_enable_x64", previous_x64)


def _equivalence_table(out: Callable[[str], None]) -> dict[str, float]:
    import jax.numpy as jnp

    from softeq.core import boltzmann_policy_table, evaluate_policy, soft_value_iteration
    from softeq.properties import tabular_q_table
    from softeq.properties.equivalence import expected_gradients

    rng = np.random.default_rng(TABLE_SEED)
    mdp = _random_mdp(rng)
    tau = TABLE_TEMPERATURE
    out("=" * 78)
    out("Part 1: the equivalence, exactly (float64)")
    out("=" * 78)
    out(
        f"Random tabular MDP (seed {TABLE_SEED}): {TABLE_STATES} states, {TABLE_ACTIONS} "
        f"actions, discount {TABLE_DISCOUNT}, temperature τ = {tau}, uniform prior."
    )
    q_star = soft_value_iteration(mdp, temperature=tau, tolerance=1e-13)
    policy = boltzmann_policy_table(q_star, temperature=tau)
    _, q_pi = evaluate_policy(policy, mdp, temperature=tau)
    gap = float(jnp.max(jnp.abs(q_star - q_pi)))
    out("")
    out("Soft value iteration → Q*; exact evaluation (linear solve) of π* = Boltzmann(Q*):")
    out(f"  {'s':>2} {'a':>2} {'Q*(s,a)':>14} {'Q_π*(s,a)':>14} {'π*(a|s)':>10}")
    for s in range(TABLE_STATES):
        for a in range(TABLE_ACTIONS):
            out(
                f"  {s:>2} {a:>2} {float(q_star[s, a]):>14.10f} {float(q_pi[s, a]):>14.10f} "
                f"{float(policy[s, a]):>10.6f}"
            )
    out(f"  max |Q* − Q_π*| = {gap:.2e}   (Q* is the value of its own Boltzmann policy [E12])")
    out("")
    out(
        f"Main theorem [E15] in exact expectation: tabular Q_θ = θ, actions a_t ~ π_θ, "
        f"{TABLE_N}-step soft targets, every trajectory of {TABLE_HORIZON} steps enumerated "
        f"({TABLE_STATES ** (TABLE_HORIZON + 1) * TABLE_ACTIONS**TABLE_HORIZON} paths)."
    )
    out("  ∇ soft-Q loss  vs  −τ · policy gradient + ∇ value fit, per entry θ[s, a]:")
    worst = 0.0
    for draw in range(TABLE_DRAWS):
        theta = jnp.asarray(rng.normal(size=(TABLE_STATES, TABLE_ACTIONS)), jnp.float64)
        grads = expected_gradients(
            tabular_q_table,  # a module-level function, so the jitted expectation compiles once
            theta,
            mdp,
            temperature=tau,
            n=TABLE_N,
            horizon=TABLE_HORIZON,
        )
        soft_q = np.asarray(grads.soft_q)
        pg = np.asarray(grads.policy_gradient)
        value = np.asarray(grads.value)
        combined = np.asarray(grads.combined)
        diff = float(np.max(np.abs(soft_q - combined)))
        worst = max(worst, diff)
        out("")
        out(f"  draw {draw + 1}: θ ~ N(0, 1)")
        out(
            f"  {'s':>2} {'a':>2} {'∇ soft-Q':>13} {'−τ·PG':>13} {'∇ value':>13} "
            f"{'−τ·PG + ∇V':>13} {'|diff|':>9}"
        )
        for s in range(TABLE_STATES):
            for a in range(TABLE_ACTIONS):
                out(
                    f"  {s:>2} {a:>2} {soft_q[s, a]:>13.9f} {-tau * pg[s, a]:>13.9f} "
                    f"{value[s, a]:>13.9f} {combined[s, a]:>13.9f} "
                    f"{abs(soft_q[s, a] - combined[s, a]):>9.1e}"
                )
        out(f"  max |difference| = {diff:.2e}")
    verdict = "PASS" if worst <= IDENTITY_TOLERANCE and gap <= IDENTITY_TOLERANCE else "FAIL"
    out("")
    out(
        f"Worst difference over {TABLE_DRAWS} draws: {worst:.2e} (tolerance "
        f"{IDENTITY_TOLERANCE:.0e}) -> {verdict}"
    )
    return {"q_star_vs_q_pi": gap, "gradient_identity": worst}


def run_demo(
    *,
    out_dir: str | os.PathLike | None = None,
    seeds: Sequence[int] = DEMO_SEEDS,
    total_steps: int | None = None,
    table_only: bool = False,
    out: Callable[[str], None] = print,
) -> int:
    """Run the whole demo; returns the exit status (0 when every check passes).

    The status is 1 when the equivalence table fails, and 2 when some seed of
    either algorithm ends below a greedy evaluation return of `TARGET_RETURN`.
    """
    start = time.perf_counter()
    table_lines: list[str] = []

    def tee(line: str) -> None:
        table_lines.append(line)
        out(line)

    table = equivalence_table(tee)
    ok = max(table.values()) <= IDENTITY_TOLERANCE
    if table_only:
        return 0 if ok else 1

    from softeq.adapters.compare import parse_algo_spec, print_result, run_compare

    if out_dir is None:
        out_dir = os.path.join("runs", "demo-" + time.strftime("%Y%m%d-%H%M%S"))
    steps = DEMO_TOTAL_STEPS if total_steps is None else total_steps
    out("")
    out("=" * 78)
    out("Part 2: A2C vs A2C-matched soft Q-learning [E16] on CartPole-v1")
    out("=" * 78)
    out(
        f"{len(seeds)} seeds each, {steps:,} env steps per seed, the CartPole defaults of "
        f"softeq.adapters.agents; each algorithm's seeds are one jitted program (gymnax); "
        f"soft-q computes cos(∇ soft-Q loss, ∇ A2C loss) on every update."
    )
    result = run_compare(
        [parse_algo_spec(algo) for algo in DEMO_ALGOS],
        seeds=list(seeds),
        run_overrides={
            "env_id": DEMO_ENV,
            "backend": "gymnax",
            "driver": "jit",
            "total_steps": steps,
            "eval_every": 0,
            "eval_episodes": DEMO_EVAL_EPISODES,
            "checkpoint_every": steps,
            "keep_checkpoints": 1,
        },
        out_dir=out_dir,
        out=out,
    )
    out("")
    print_result(result, out=out)
    table_path = Path(result.out_dir) / "equivalence_table.txt"
    table_path.write_text("\n".join(table_lines) + "\n")
    out(f"  {table_path}")
    finals = seed_finals(result.out_dir)
    lines = [
        f"Final greedy evaluation per seed ({DEMO_EVAL_EPISODES} episodes; target ≥ "
        f"{TARGET_RETURN:.0f} for every seed of both algorithms):",
        f"  {'algorithm':<10}" + "".join(f"{'seed ' + str(s):>10}" for s in seeds),
    ]
    reached_all = True
    for label, per_seed in finals.items():
        cells = "".join(f"{per_seed.get(s, math.nan):>10.1f}" for s in seeds)
        reached = all(per_seed.get(s, math.nan) >= TARGET_RETURN for s in seeds)
        reached_all &= reached
        lines.append(f"  {label:<10}{cells}   -> {'reached' if reached else 'NOT reached'}")
    out("")
    for line in lines:
        out(line)
    (Path(result.out_dir) / "verdict.txt").write_text("\n".join(lines) + "\n")
    out(f"demo finished in {time.perf_counter() - start:.0f} s; results in {result.out_dir}")
    if not ok:
        return 1
    return 0 if reached_all else 2


def seed_finals(compare_dir: str | os.PathLike) -> dict[str, dict[int, float]]:
    """Label → seed → final evaluation return, read from each run's metrics."""
    import json

    from softeq.adapters.logger import read_metrics
    from softeq.adapters.plots import COMPARE_MANIFEST

    base = Path(compare_dir)
    manifest = json.loads((base / COMPARE_MANIFEST).read_text())
    finals: dict[str, dict[int, float]] = {}
    for spec in manifest["specs"]:
        per_seed = {}
        for seed, rel in zip(manifest["seeds"], spec["runs"], strict=True):
            evals = read_metrics(base / rel).get("eval/return_mean")
            per_seed[int(seed)] = float(evals[1][-1]) if evals is not None else math.nan
        finals[spec["label"]] = per_seed
    return finals
