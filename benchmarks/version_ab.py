"""Two installations of softeq, one program: nine DQN lanes on Breakout-MinAtar.

    python -m benchmarks.version_ab --python A=/path/to/python --python B=/other/python
        [--rounds 3] [--calls 5] [--output FILE]

Each `--python` names an interpreter with softeq installed (a virtual
environment of another commit, say). The program is what `softeq reproduce
experiment-2 --suite minatar` trains: nine seeds of DQN vmapped into one
program, 16 envs each, one update of 32 transitions per 4 env steps, learning
from the first step, the registry's MinAtar replay (100 000 transitions). One
call runs 20 iterations inside one `lax.scan`; each child process compiles it,
runs 200 iterations, then times `--calls` calls. The
interpreters alternate, A B A B ..., one fresh process per round, so drift of
the machine hits both alike. Figures: median wall milliseconds per iteration
over the rounds (each round's own median), and B over A.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ENV_ID = "Breakout-MinAtar"
LANES = 9
ITERATIONS = 20  # per call, inside one lax.scan
FILL = 200  # iterations before timing (the replay's size, not its fill, sets the cost)


def _child(calls: int) -> dict:
    import jax
    import jax.numpy as jnp
    import numpy as np

    from softeq.adapters import agents
    from softeq.adapters.jit_driver import EvalSettings, JitProgram

    config = agents.default_config("dqn", ENV_ID, learning_starts=0, train_every=4)
    program = JitProgram(
        "dqn", config, env_id=ENV_ID, num_envs=16, evaluation=EvalSettings(episodes=1)
    )

    def run(state, first, length):
        def body(s, i):
            return program.iteration(s, first + i)[0], None

        return jax.lax.scan(body, state, jnp.arange(length))[0]

    step = jax.jit(jax.vmap(lambda s, f: run(s, f, ITERATIONS), in_axes=(0, None)))
    fill = jax.jit(jax.vmap(lambda s, f: run(s, f, FILL), in_axes=(0, None)))
    state = jax.jit(jax.vmap(program.init))(jnp.arange(LANES, dtype=jnp.int32))
    state = jax.block_until_ready(fill(state, 0))
    first = FILL
    state = jax.block_until_ready(step(state, first))  # compile
    times = []
    for _ in range(calls):
        first += ITERATIONS
        start = time.perf_counter()
        state = jax.block_until_ready(step(state, first))
        times.append((time.perf_counter() - start) / ITERATIONS)
    replay_bytes = sum(x.nbytes for x in jax.tree.leaves(state.replay))
    return {
        "ms_per_iteration": 1e3 * float(np.median(times)),
        "replay_mib": replay_bytes / 2**20,
        "softeq_file": __import__("softeq").__file__,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", action="append", default=[], metavar="LABEL=PATH")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=5)
    parser.add_argument("--output", type=Path, default=None)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print("RESULT " + json.dumps(_child(args.calls)), flush=True)
        return 0
    pythons = dict(item.split("=", 1) for item in args.python)
    if len(pythons) != 2:
        parser.error("give two interpreters: --python A=PATH --python B=PATH")
    results: dict[str, list[dict]] = {label: [] for label in pythons}
    for _ in range(args.rounds):
        for label, python in pythons.items():
            proc = subprocess.run(
                [python, "-m", "benchmarks.version_ab", "--child", "--calls", str(args.calls)],
                capture_output=True,
                text=True,
                check=False,
                cwd=Path(__file__).resolve().parents[1],
            )
            line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
            if line is None:
                raise RuntimeError(f"{label} ({python}) failed:\n{proc.stderr[-3000:]}")
            results[label].append(json.loads(line[len("RESULT ") :]))
            print(label, results[label][-1], flush=True)
    from softeq.adapters.reproduce import machine_description

    (a, b) = pythons
    med = {k: statistics.median(r["ms_per_iteration"] for r in v) for k, v in results.items()}
    lines = [
        f"# {LANES} DQN lanes on {ENV_ID}: two softeq installations",
        "",
        f"- Machine: {machine_description()}",
        f"- Command: `python -m benchmarks.version_ab {' '.join(argv or sys.argv[1:])}`",
        f"- {args.rounds} rounds, alternating; {args.calls} timed calls of {ITERATIONS} "
        "iterations per round",
        "",
        "| softeq | ms per iteration (median of rounds) | each round | replay, MiB (9 lanes) |",
        "|---|---|---|---|",
    ]
    for label, rows in results.items():
        each = ", ".join(f"{r['ms_per_iteration']:.1f}" for r in rows)
        lines.append(f"| {label} | {med[label]:.1f} | {each} | {rows[0]['replay_mib']:,.0f} |")
    lines += ["", f"{b} / {a}: {med[b] / med[a]:.2f}", ""]
    text = "\n".join(lines)
    print(text)
    if args.output:
        args.output.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
