"""The jitted driver against the host loop and a hand-written limit, one process per case.

    python -m benchmarks.jit_driver [--rounds 2] [--output benchmarks/RESULTS-jit-driver.md]

Cases (each runs in a fresh subprocess, so that its compile time and peak
memory are its own; all cases run once per round, rounds interleave them so
machine drift hits all alike; figures are medians over rounds):

- `host:<algo>`: `softeq.adapters.loop.train` on gymnasium's CartPole-v1
  (`--driver host`), training throughput as the loop reports it (compilation,
  evaluation and checkpoints excluded);
- `jit:<algo>`: `softeq.adapters.jit_loop.train` on gymnax's CartPole-v1, one
  seed, the same hyperparameters (its `sps` excludes compilation, evaluation,
  logging and checkpoints; its compile time is reported beside it);
- `reference`: `benchmarks.reference_a2c`, the minimal hand-written jitted A2C
  with the same network and settings;
- `minatar:<seeds>`: a2c on Breakout-MinAtar through the jitted driver with 1 or
  3 seeds vmapped in one program (env steps/s per seed and in all).

Throughput is env steps per second of one seed. Ratios are taken per round
and their median is reported.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.harness import run_child

CASES = (
    "host:a2c",
    "host:soft-q",
    "host:dqn",
    "jit:a2c",
    "jit:soft-q",
    "jit:dqn",
    "reference",
    "minatar:1",
    "minatar:3",
)
HOST_STEPS = {"a2c": 80_000, "soft-q": 80_000, "dqn": 20_000}
JIT_STEPS = {"a2c": 450_000, "soft-q": 450_000, "dqn": 100_000}
MINATAR_STEPS = 200_000


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _run_case(case: str, workdir: str) -> dict:
    """Runs one case in this process; returns its figures."""
    kind, _, arg = case.partition(":")
    if kind == "reference":
        import jax

        from benchmarks.reference_a2c import NUM_ENVS, NUM_STEPS, make_train

        steps = JIT_STEPS["a2c"]
        train = jax.jit(jax.vmap(make_train(steps)))
        keys = jax.random.split(jax.random.PRNGKey(0), 1)
        start = time.perf_counter()
        compiled = train.lower(keys).compile()
        compile_s = time.perf_counter() - start
        start = time.perf_counter()
        jax.block_until_ready(compiled(keys))
        done = steps // (NUM_ENVS * NUM_STEPS) * NUM_ENVS * NUM_STEPS
        return {"sps": done / (time.perf_counter() - start), "compile_s": compile_s}

    from softeq.adapters.agents import default_config
    from softeq.adapters.run_config import RunConfig

    if kind == "host":
        from softeq.adapters import loop

        run = RunConfig(
            env_id="CartPole-v1",
            algo=arg,
            driver="host",
            backend="gymnasium",
            total_steps=HOST_STEPS[arg],
            eval_every=0,
            eval_episodes=0,
            checkpoint_every=10**9,
            progress=False,
            run_dir=os.path.join(workdir, "run"),
        )
        result = loop.train(run, default_config(arg, "CartPole-v1"), out=lambda _: None)
        return {"sps": result.sps, "compile_s": float("nan")}

    from softeq.adapters import jit_loop

    if kind == "jit":
        algo, env_id, seeds, steps = arg, "CartPole-v1", (0,), JIT_STEPS[arg]
    else:
        algo, env_id, steps = "a2c", "Breakout-MinAtar", MINATAR_STEPS
        seeds = tuple(range(int(arg)))
    overrides = {"lr_decay_steps": steps} if algo != "dqn" else {}
    run = RunConfig(
        env_id=env_id,
        algo=algo,
        driver="jit",
        backend="gymnax",
        seeds=seeds,
        total_steps=steps,
        eval_every=0,
        eval_episodes=0,
        checkpoint_every=steps,
        keep_checkpoints=1,
        progress=False,
        run_dir=os.path.join(workdir, "run"),
    )
    result = jit_loop.train(run, default_config(algo, env_id, **overrides), out=lambda _: None)
    return {
        "sps": result.sps,
        "sps_total": result.total_sps,
        "compile_s": float(sum(result.compile_s.values())),
    }


def _child(case: str) -> None:
    with tempfile.TemporaryDirectory() as workdir:
        figures = _run_case(case, workdir)
    figures["peak_rss_mib"] = _peak_rss_mib()
    print("RESULT " + json.dumps(figures))


def measure(case: str) -> dict:
    """Runs `case` in a fresh interpreter and parses its figures."""
    return run_child("benchmarks.jit_driver", case, timeout=1800)


def _median(values: list[float]) -> float:
    finite = [v for v in values if v == v]
    return statistics.median(finite) if finite else float("nan")


def run(*, rounds: int = 2, cases: tuple[str, ...] = CASES) -> tuple[str, list]:
    """Returns the markdown section and the per-case medians."""
    samples: dict[str, list[dict]] = {c: [] for c in cases}
    for _ in range(rounds):
        for case in cases:
            samples[case].append(measure(case))

    def med(case: str, key: str) -> float:
        return _median([s.get(key, float("nan")) for s in samples[case]])

    def ratio(a: str, b: str) -> float:
        return _median([x["sps"] / y["sps"] for x, y in zip(samples[a], samples[b], strict=True)])

    rows = [
        (c, med(c, "sps"), med(c, "sps_total"), med(c, "compile_s"), med(c, "peak_rss_mib"))
        for c in cases
    ]
    lines = [
        "## jit_driver",
        "",
        f"Medians over {rounds} rounds; each case is a fresh process. Env steps per second "
        "of one seed (training only: no compilation, evaluation, logging or checkpoints); "
        "'all seeds' sums over the seeds of one program.",
        "",
        "| case | env-steps/s (one seed) | all seeds | compile s | peak RSS MiB |",
        "|---|---:|---:|---:|---:|",
    ]
    for case, sps, total, compile_s, rss in rows:
        total_text = f"{total:,.0f}" if total == total else "–"
        compile_text = f"{compile_s:.1f}" if compile_s == compile_s else "–"
        lines.append(f"| {case} | {sps:,.0f} | {total_text} | {compile_text} | {rss:,.0f} |")
    lines += ["", "| ratio | median |", "|---|---:|"]
    for algo in ("a2c", "soft-q", "dqn"):
        if f"jit:{algo}" in samples and f"host:{algo}" in samples:
            lines.append(f"| jit / host, {algo} | {ratio(f'jit:{algo}', f'host:{algo}'):.1f}× |")
    if "reference" in samples and "jit:a2c" in samples:
        lines.append(f"| reference / jit, a2c | {ratio('reference', 'jit:a2c'):.2f}× |")
    if "minatar:1" in samples and "minatar:3" in samples:
        cost = _median(
            [
                3 * one["sps"] / three["sps_total"]  # time for 3 seeds / time for 1 seed
                for one, three in zip(samples["minatar:1"], samples["minatar:3"], strict=True)
            ]
        )
        lines.append(f"| MinAtar a2c: time of 3 vmapped seeds / time of 1 seed | {cost:.2f}× |")
    return "\n".join(lines) + "\n", rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=CASES)
    parser.add_argument("--output", default=None, help="also write the report here")
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child)
        return 0
    from benchmarks.run import header

    text, _ = run(rounds=args.rounds, cases=tuple(args.cases))
    report = header(quick=False, argv=["--only", "jit_driver"]) + "\n" + text
    print(report)
    if args.output:
        Path(args.output).write_text(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
