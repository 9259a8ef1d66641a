"""Seeds in one program: three vmapped or unrolled, nine vmapped, XLA:CPU flags, two programs.

    python -m benchmarks.seed_layouts [--algos a2c dqn] [--rounds 7]
        [--flags default concurrency xnnpack] [--pair] [--output FILE]

One iteration of the jitted driver on Breakout-MinAtar (a2c: 64 envs × 8 steps
and one update; dqn: 16 envs, one update per 4 transitions, learning from the
first step), run K = 20 times inside one `lax.scan` per call, for

- `one`: one seed;
- `vmap3`: three seeds `vmap`ped (what `softeq train --seeds 0 1 2` runs);
- `unrolled3`: three seeds as three independent copies of the iteration in
  the same program, which XLA:CPU's runtime may run side by side;
- `vmap9`: nine lanes `vmap`ped, the width of a program that three variants
  share (`softeq reproduce experiment-2`: three DQN targets × three seeds).

Each flag set (`--flags`: XLA_FLAGS of the child process) is measured in a
fresh process, the layouts interleaved `--rounds` times; `--pair` then
runs two default-flag dqn processes at the same time (as `softeq reproduce
--workers 2` does). Figures: median wall milliseconds per iteration, the
process's CPU time over wall time (2.0 = both cores of a 2-core machine busy),
and each layout's time over `one`'s (3.00 for three seeds, 9.00 for nine:
batching gains nothing).
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import os
import statistics
import sys
import time

FLAG_SETS = {
    "default": "",
    "concurrency": "--xla_cpu_enable_concurrency_optimized_scheduler=true",
    "xnnpack": "--xla_cpu_use_xnnpack=true",
}
ENV_ID = "Breakout-MinAtar"
ITERATIONS = 20  # per call, inside one lax.scan
LAYOUTS = ("one", "vmap3", "unrolled3", "vmap9")


def _child(algo: str, rounds: int) -> dict:
    """Times the three layouts of `algo` in this process (its XLA_FLAGS as given)."""
    import jax
    import jax.numpy as jnp

    from softeq.adapters import agents
    from softeq.adapters.jit_driver import EvalSettings, JitProgram

    replay = not agents.get_algorithm(algo).on_policy
    fields = {"learning_starts": 0, "train_every": 4} if replay else {}
    program = JitProgram(
        algo,
        agents.default_config(algo, ENV_ID, **fields),
        env_id=ENV_ID,
        num_envs=16 if replay else 64,
        evaluation=EvalSettings(episodes=1),
    )

    def run(state, first):
        def body(s, i):
            s, _ = program.iteration(s, first + i) if replay else program.iteration(s)
            return s, None

        return jax.lax.scan(body, state, jnp.arange(ITERATIONS))[0]

    fns = {
        "one": jax.jit(run, donate_argnums=0),
        "vmap3": jax.jit(jax.vmap(run, in_axes=(0, None)), donate_argnums=0),
        "unrolled3": jax.jit(
            lambda states, first: tuple(run(s, first) for s in states), donate_argnums=0
        ),
        "vmap9": jax.jit(jax.vmap(run, in_axes=(0, None)), donate_argnums=0),
    }
    init = jax.jit(program.init)
    states = {
        "one": init(0),
        "vmap3": jax.vmap(program.init)(jnp.arange(3)),
        "unrolled3": tuple(init(s) for s in range(3)),
        "vmap9": jax.vmap(program.init)(jnp.arange(9)),
    }
    for name, fn in fns.items():  # compile and warm up
        states[name] = jax.block_until_ready(fn(states[name], 0))
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in fns}
    for r in range(rounds):
        for name, fn in fns.items():
            wall, cpu = time.perf_counter(), time.process_time()
            states[name] = jax.block_until_ready(fn(states[name], ITERATIONS * (r + 1)))
            samples[name].append((time.perf_counter() - wall, time.process_time() - cpu))
    return {
        name: {
            "ms": statistics.median(w for w, _ in xs) * 1e3 / ITERATIONS,
            "cpu_per_wall": statistics.median(c / w for w, c in xs),
        }
        for name, xs in samples.items()
    }


def _measure(algo: str, flags: str, rounds: int) -> dict:
    from benchmarks.harness import run_child

    return run_child(
        "benchmarks.seed_layouts", f"{algo}:{rounds}", timeout=900, env={"XLA_FLAGS": flags}
    )


def _rows(label: str, figures: dict) -> list[list[str]]:
    base = figures["one"]["ms"]
    return [
        [
            label,
            layout,
            f"{figures[layout]['ms']:.2f}",
            f"{figures[layout]['cpu_per_wall']:.2f}",
            f"{figures[layout]['ms'] / base:.2f}",
        ]
        for layout in LAYOUTS
    ]


def main(argv: list[str] | None = None) -> int:
    from benchmarks.harness import markdown_table

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--algos", nargs="+", default=["a2c", "dqn"])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--flags", nargs="+", default=list(FLAG_SETS), choices=list(FLAG_SETS))
    parser.add_argument("--pair", action="store_true", help="two dqn processes at once")
    parser.add_argument("--output", default=None, help="also write the report here")
    args = parser.parse_args(argv)
    if args.child:
        algo, rounds = args.child.split(":")
        print("RESULT " + json.dumps(_child(algo, int(rounds))))
        return 0

    from benchmarks.run import git_revision
    from softeq.adapters.reproduce import machine_description

    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    rows = []
    for algo in args.algos:
        for name in args.flags:
            rows += _rows(f"{algo}, {name}", _measure(algo, FLAG_SETS[name], args.rounds))
    if args.pair:
        with cf.ThreadPoolExecutor(2) as pool:
            both = list(pool.map(lambda _: _measure("dqn", "", args.rounds), range(2)))
        for i, figures in enumerate(both):
            rows += _rows(f"dqn, default, process {'AB'[i]} of 2 at once", figures)
    command = " ".join(["python -m benchmarks.seed_layouts", *(argv or sys.argv[1:])])
    report = "\n".join(
        [
            "## Seed layouts: vmapped, unrolled, XLA:CPU flags, two processes",
            "",
            f"- Machine: {machine_description()}",
            f"- Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
            f"- Commit: {git_revision()}",
            f"- Command: `{command}`",
            f"- Load average (1, 5, 15 min) at start: {load}",
            "",
            markdown_table(
                ["case", "layout", "ms / iteration", "CPU / wall", "time / one seed's"], rows
            ),
            "",
        ]
    )
    print(report)
    if args.output:
        with open(args.output, "a") as fh:
            fh.write("\n" + report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
