"""Atari through the host loop and through the jitted driver, side by side, one process per case.

    python -m benchmarks.atari_drivers [--rounds 3] [--steps 4000]
        [--output benchmarks/RESULTS-atari-driver.md]

Cases (each in a fresh interpreter, so that its compile time and peak memory
are its own; every round runs every case once, interleaved, so that machine
drift hits all alike; figures are medians over rounds):

- `host`: `softeq train --driver host` on ALE/Pong-v5 (`ale_py.AtariVectorEnv`
  called from Python), a2c, 16 envs × 5 steps, Nature CNN; env steps/s as the
  loop reports it (after the first update; evaluation and checkpoints excluded);
- `jit`: the same run through `--driver jit` (the emulators stepped by ale-py's
  XLA custom calls inside the program, `softeq.adapters.ale_xla`); env steps/s
  of the training chunks (compilation, evaluation, logging and checkpoints
  excluded), compile time beside it;
- `env:host` / `env:jit`: the 16 emulators alone under uniformly random
  actions: the host env stepped from Python, and `AleXlaEnv.step` in one
  jitted `lax.scan` (what the emulator costs without the learner).

Each case records the 1-minute load average before it starts: the figures are
only comparable on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.harness import run_child

ENV_ID = "ALE/Pong-v5"
ALGO = "a2c"
NUM_ENVS = 16
CASES = ("host", "jit", "env:host", "env:jit")
ENV_ONLY_STEPS = 1_000  # vector steps of the env-only cases (16 000 env steps)


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _env_only(kind: str) -> dict:
    import numpy as np

    from softeq.adapters import envs

    num_actions = 6  # Pong's minimal action set
    actions = np.random.default_rng(0).integers(0, num_actions, (ENV_ONLY_STEPS, NUM_ENVS))
    if kind == "host":
        env = envs.make_vector_env(ENV_ID, num_envs=NUM_ENVS, seed=0, backend="ale")
        env.reset()
        start = time.perf_counter()
        for a in actions:
            env.step(a)
        elapsed = time.perf_counter() - start
        env.close()
        return {"sps": ENV_ONLY_STEPS * NUM_ENVS / elapsed, "compile_s": float("nan")}
    import jax
    import jax.numpy as jnp

    from softeq.adapters import ale_xla

    env = ale_xla.make_ale_xla_env(ENV_ID, num_envs=NUM_ENVS)

    def rollout(state, actions):
        return jax.lax.scan(lambda s, a: (env.step(None, s, a)[0], None), state, actions)[0]

    state, _ = jax.jit(env.reset_seeded)(jnp.arange(NUM_ENVS))
    actions = jnp.asarray(actions, jnp.int32)
    start = time.perf_counter()
    compiled = jax.jit(rollout).lower(state, actions).compile()
    compile_s = time.perf_counter() - start
    start = time.perf_counter()
    jax.block_until_ready(compiled(state, actions))
    elapsed = time.perf_counter() - start
    return {"sps": ENV_ONLY_STEPS * NUM_ENVS / elapsed, "compile_s": compile_s}


def _run_case(case: str, workdir: str, steps: int) -> dict:
    """Runs one case in this process; returns its figures."""
    kind, _, arg = case.partition(":")
    if kind == "env":
        return _env_only(arg)
    from softeq.adapters.agents import default_config
    from softeq.adapters.jit_driver import jit_default_overrides
    from softeq.adapters.run_config import RunConfig

    # The same algorithm config for both drivers: the jitted run's learning-rate decay.
    config = default_config(ALGO, ENV_ID, **jit_default_overrides(ALGO, ENV_ID, steps))
    run = RunConfig(
        env_id=ENV_ID,
        algo=ALGO,
        driver=kind,
        num_envs=NUM_ENVS,
        total_steps=steps,
        eval_every=0,
        eval_episodes=0,
        checkpoint_every=10 * steps,
        keep_checkpoints=1,
        progress=False,
        run_dir=os.path.join(workdir, "run"),
    )
    if kind == "host":
        from softeq.adapters import loop

        result = loop.train(run, config, out=lambda _: None)
        return {"sps": result.sps, "compile_s": float("nan")}
    from softeq.adapters import jit_loop

    result = jit_loop.train(run, config, out=lambda _: None)
    return {"sps": result.sps, "compile_s": float(result.compile_wall_s)}


def _child(case: str, steps: int) -> None:
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as workdir:
        figures = _run_case(case, workdir, steps)
    figures["peak_rss_mib"] = _peak_rss_mib()
    figures["load_before"] = load
    print("RESULT " + json.dumps(figures))


def measure(case: str, steps: int) -> dict:
    """Runs `case` in a fresh interpreter and parses its figures."""
    return run_child("benchmarks.atari_drivers", case, "--steps", str(steps), timeout=3600)


def _median(values: list[float]) -> float:
    finite = [v for v in values if v == v]
    return statistics.median(finite) if finite else float("nan")


def machine() -> str:
    """CPU model, cores and Python/JAX/ale-py versions."""
    import ale_py
    import jax

    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{model}, {os.cpu_count()} logical cores, Python {platform.python_version()}, "
        f"jax {jax.__version__} ({jax.default_backend()}), ale-py {ale_py.__version__}"
    )


def run(*, rounds: int = 3, steps: int = 4_000, cases: tuple[str, ...] = CASES) -> tuple[str, list]:
    """Returns the markdown section and the per-case medians."""
    samples: dict[str, list[dict]] = {c: [] for c in cases}
    for _ in range(rounds):
        for case in cases:
            samples[case].append(measure(case, steps))

    def med(case: str, key: str) -> float:
        return _median([s.get(key, float("nan")) for s in samples[case]])

    def ratio(a: str, b: str) -> float:
        return _median([x["sps"] / y["sps"] for x, y in zip(samples[a], samples[b], strict=True)])

    rows = [
        (
            c,
            med(c, "sps"),
            min(s["sps"] for s in samples[c]),
            max(s["sps"] for s in samples[c]),
            med(c, "compile_s"),
            med(c, "peak_rss_mib"),
            [round(s["load_before"], 2) for s in samples[c]],
        )
        for c in cases
    ]
    lines = [
        "## atari_drivers",
        "",
        f"{ENV_ID}, {ALGO}, {NUM_ENVS} envs × 5 steps, Nature CNN, {steps} env steps per "
        f"training case; {rounds} rounds, each case a fresh process; medians (min–max).",
        "",
        "| case | env-steps/s | min–max | compile s | peak RSS MiB | load before (per round) |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for case, sps, low, high, compile_s, rss, loads in rows:
        compile_text = f"{compile_s:.1f}" if compile_s == compile_s else "–"
        lines.append(
            f"| {case} | {sps:,.0f} | {low:,.0f}–{high:,.0f} | {compile_text} | {rss:,.0f} | "
            f"{', '.join(map(str, loads))} |"
        )
    lines += ["", "| ratio (per round, median) | |", "|---|---:|"]
    if "jit" in samples and "host" in samples:
        lines.append(f"| jitted driver / host loop, training | {ratio('jit', 'host'):.2f}× |")
    if "env:jit" in samples and "env:host" in samples:
        lines.append(
            f"| jitted env / host env, emulator only | {ratio('env:jit', 'env:host'):.2f}× |"
        )
    return "\n".join(lines) + "\n", rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=4_000, help="env steps per training case")
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=CASES)
    parser.add_argument("--output", default=None, help="also write the report here")
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child, args.steps)
        return 0
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    start = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    text, _ = run(rounds=args.rounds, steps=args.steps, cases=tuple(args.cases))
    command = " ".join(["python -m benchmarks.atari_drivers", *(argv or sys.argv[1:])])
    report = (
        f"- Machine: {machine()}\n- Date: {start}\n- Command: `{command}`\n"
        f"- Load average (1, 5, 15 min) at start: {load}; at end: "
        + ", ".join(f"{x:.2f}" for x in os.getloadavg())
        + "\n\n"
        + text
    )
    print(report)
    if args.output:
        Path(args.output).write_text(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
