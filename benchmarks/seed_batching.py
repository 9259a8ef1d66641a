"""What seeds vmapped with their own parameters cost on MinAtar, against one seed.

    python -m benchmarks.seed_batching [--repeats 15] [--driver-rounds 3]
        [--driver-steps 100000] [--output benchmarks/RESULTS-seed-batching.md]

Sections (`--sections`), each for 1 seed and for 3 seeds `vmap`ped in one program:

1. `torso`: forward + backward (gradient with respect to the parameters) of the
   MinAtar torso alone on a learner batch of Breakout-MinAtar observations
   (64 envs × 9 observations = 576, `[576, 10, 10, 4]` uint8), for four ways of
   computing it (`VARIANTS`):
   - `conv2d`: `hk.Conv2D` + `hk.Linear`, the naive network (vmapped over
     parameters the convolution becomes a grouped convolution);
   - `im2col`: the convolution as one product on the nine windows joined in
     float32 + `hk.Linear` (softeq's torso before this benchmark);
   - `patches`: windows from `lax.conv_general_dilated_patches` + product;
   - `current`: `softeq.adapters.networks.minatar_torso` (windows joined in
     uint8; weight gradients through `weight_gradient_as_transpose`).
2. `nature`: the same for the Nature-CNN torso (batch 32 frames; `hk.Conv2D`
   convolutions), its dense layer as softeq has it (`hk.Linear`) and through
   `weight_gradient_as_transpose`.
3. `iteration`: one iteration of the jitted driver (rollout of 64 envs × 8
   steps + one a2c update, Breakout-MinAtar) per torso variant: the program of
   `softeq.adapters.jit_driver.JitProgram`, built while `networks.minatar_torso`
   is the variant, and `vmap`ped over seeds as `jit_loop.SeededProgram` does.
4. `driver`: `softeq.adapters.jit_loop.train` end to end (a2c, Breakout-MinAtar,
   `--driver-steps` env steps per seed), one fresh process per case, rounds
   interleaved; figures as the driver reports them (training only).

In-process timings are interleaved (every case once per round) and report
medians of wall time per call and of the process's CPU time per call (all
threads: less sensitive to other jobs on a shared machine than wall time).
The ratio `3 seeds / 1 seed` is the time of one call of the 3-seed program over
the time of one call of the 1-seed program, per round, median over rounds:
3.00 would mean batching gains nothing, the target is <= 2.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.harness import run_child
from softeq.adapters import networks

ENV_ID = "Breakout-MinAtar"
NUM_ENVS = 64
NUM_STEPS = 8  # the a2c default: a learner batch of 64 × (8 + 1) observations
SEED_COUNTS = (1, 3)
_GAIN = networks._HIDDEN_GAIN


# --------------------------------------------------------------------------------------
# Torso variants: each takes [B, 10, 10, C] observations and has the parameters of the
# current torso (conv/w [3, 3, C, 16], conv/b, shared_dense/w [1024, 128], shared_dense/b).
# --------------------------------------------------------------------------------------


def _conv_parameters(in_channels: int) -> tuple[jax.Array, jax.Array]:
    with hk.name_scope("conv"):
        w = hk.get_parameter(
            "w", (3, 3, in_channels, 16), jnp.float32, init=networks._orthogonal(_GAIN)
        )
        b = hk.get_parameter("b", (16,), jnp.float32, init=jnp.zeros)
    return w, b


def _dense_128(h: jax.Array) -> jax.Array:
    h = h.reshape(h.shape[0], -1)
    return jax.nn.relu(networks._dense(128, _GAIN, "shared_dense")(h))


def conv2d_torso(x: jax.Array) -> jax.Array:
    """`hk.Conv2D` 16 3×3 VALID + `hk.Linear` 128."""
    conv = hk.Conv2D(
        16,
        kernel_shape=3,
        padding="VALID",
        w_init=networks._orthogonal(_GAIN),
        b_init=jnp.zeros,
        name="conv",
    )
    return _dense_128(jax.nn.relu(conv(x.astype(jnp.float32))))


def im2col_float32_torso(x: jax.Array) -> jax.Array:
    """Nine windows converted to float32, joined, one product; `hk.Linear` 128."""
    x = x.astype(jnp.float32)
    w, b = _conv_parameters(x.shape[-1])
    windows = [x[:, i : i + 8, j : j + 8, :] for i in range(3) for j in range(3)]
    patches = jnp.concatenate(windows, axis=-1)
    return _dense_128(jax.nn.relu(patches @ w.reshape(-1, 16) + b))


def patches_torso(x: jax.Array) -> jax.Array:
    """`lax.conv_general_dilated_patches` windows (channel-major), one product; `hk.Linear`."""
    x = x.astype(jnp.float32)
    c = x.shape[-1]
    w, b = _conv_parameters(c)
    patches = jax.lax.conv_general_dilated_patches(
        x, (3, 3), (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC")
    )
    kernel = jnp.transpose(w, (2, 0, 1, 3)).reshape(9 * c, 16)  # [c, i, j] order
    return _dense_128(jax.nn.relu(patches @ kernel + b))


VARIANTS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "conv2d": conv2d_torso,
    "im2col": im2col_float32_torso,
    "patches": patches_torso,
    "current": networks.minatar_torso,
}


def nature_torso_fast_weight_gradient(x: jax.Array) -> jax.Array:
    """The Nature torso with its dense layer through `weight_gradient_as_transpose`."""
    original = networks._dense
    networks._dense = networks._torso_dense
    try:
        return networks.nature_cnn_torso(x)
    finally:
        networks._dense = original


NATURE_VARIANTS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "nature (hk.Linear, as softeq has it)": networks.nature_cnn_torso,
    "nature (dense via weight_gradient_as_transpose)": nature_torso_fast_weight_gradient,
}


# --------------------------------------------------------------------------------------
# Timing.
# --------------------------------------------------------------------------------------


def _interleaved(
    fns: dict[str, Callable[[], object]], *, repeats: int, inner: int
) -> dict[str, list[tuple[float, float]]]:
    """(wall s, process CPU s) per call of each thunk, `repeats` interleaved rounds."""
    for fn in fns.values():
        jax.block_until_ready(fn())
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            wall, cpu = time.perf_counter(), time.process_time()
            for _ in range(inner):
                out = fn()
            jax.block_until_ready(out)
            samples[name].append(
                ((time.perf_counter() - wall) / inner, (time.process_time() - cpu) / inner)
            )
    return samples


def _med(samples: list[tuple[float, float]], index: int) -> float:
    return statistics.median(s[index] for s in samples)


def _ratio(three: list[tuple[float, float]], one: list[tuple[float, float]]) -> float:
    return statistics.median(a[0] / b[0] for a, b in zip(three, one, strict=True))


def _observations(batch: int, channels: int = 4) -> np.ndarray:
    rng = np.random.default_rng(0)
    return (rng.random((batch, 10, 10, channels)) < 0.1).astype(np.uint8)


def _torso_gradient(torso, obs: np.ndarray, seeds: int):
    """A thunk: the gradient of Σ features² over `seeds` vmapped parameter sets."""
    net = hk.without_apply_rng(hk.transform(lambda x: jnp.sum(torso(x) ** 2)))
    # One initialisation per seed, stacked: orthogonal initialisation vmapped over seeds
    # (batched QR of the Nature CNN's 3136 × 512 layer) is itself very slow on XLA:CPU.
    init = jax.jit(net.init)
    per_seed = [init(key, obs[:1]) for key in jax.random.split(jax.random.key(0), seeds)]
    params = jax.tree.map(lambda *leaves: jnp.stack(leaves), *per_seed)
    batch = jnp.broadcast_to(jnp.asarray(obs), (seeds, *obs.shape)) + 0
    grad = jax.jit(jax.vmap(jax.grad(net.apply)))
    return lambda: grad(params, batch)


def torso_section(*, repeats: int, family: str) -> str:
    """Markdown of the torso forward + backward timings of one family ("minatar", "nature")."""
    if family == "minatar":
        variants, obs = VARIANTS, _observations(NUM_ENVS * (NUM_STEPS + 1))
        what = (
            f"MinAtar torso, batch {NUM_ENVS}×{NUM_STEPS + 1} = {NUM_ENVS * (NUM_STEPS + 1)} "
            "Breakout-MinAtar observations `[10, 10, 4]`"
        )
    else:
        variants = NATURE_VARIANTS
        obs = np.random.default_rng(0).integers(0, 256, (32, 4, 84, 84), dtype=np.uint8)
        what = "Nature-CNN torso (convolutions are `hk.Conv2D`), batch 32 frames `[4, 84, 84]`"
    cases = {
        f"{name}:{seeds}": _torso_gradient(torso, obs, seeds)
        for name, torso in variants.items()
        for seeds in SEED_COUNTS
    }
    samples = _interleaved(cases, repeats=repeats, inner=3 if family == "minatar" else 1)
    lines = [
        f"## torso ({family}): forward + backward, 1 vs 3 vmapped seeds",
        "",
        f"{what}. Medians over {repeats} interleaved rounds; ms per call (wall / process CPU).",
        "",
        "| torso | 1 seed wall | 1 seed CPU | 3 seeds wall | 3 seeds CPU "
        "| 3 seeds / 1 seed (wall) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name in variants:
        one, three = samples[f"{name}:1"], samples[f"{name}:3"]
        lines.append(
            f"| {name} | {_med(one, 0) * 1e3:.2f} | {_med(one, 1) * 1e3:.2f} | "
            f"{_med(three, 0) * 1e3:.2f} | {_med(three, 1) * 1e3:.2f} | "
            f"{_ratio(three, one):.2f}× |"
        )
    return "\n".join(lines) + "\n"


def _iteration_thunk(variant: str, seeds: int, *, iterations: int):
    """A thunk running `iterations` driver iterations of `seeds` vmapped seeds."""
    from softeq.adapters.agents import default_config
    from softeq.adapters.jit_driver import JitProgram

    original = networks.minatar_torso
    networks.minatar_torso = VARIANTS[variant]
    try:
        program = JitProgram("a2c", default_config("a2c", ENV_ID), env_id=ENV_ID, num_envs=NUM_ENVS)
        state = jax.jit(jax.vmap(program.init))(jnp.arange(seeds))
        chunk = jax.vmap(lambda s: program.train_chunk(s, iterations, 0, length=iterations)[0])
        compiled = jax.jit(chunk).lower(state).compile()  # traced while the variant is set
    finally:
        networks.minatar_torso = original
    return lambda: compiled(state)


def iteration_section(*, repeats: int, variants: tuple[str, ...]) -> str:
    """Markdown of the driver-iteration timings per torso variant."""
    iterations = 5
    cases = {
        f"{v}:{s}": _iteration_thunk(v, s, iterations=iterations)
        for v in variants
        for s in SEED_COUNTS
    }
    samples = _interleaved(cases, repeats=repeats, inner=1)
    steps = NUM_ENVS * NUM_STEPS
    lines = [
        "## iteration: one jitted-driver iteration (rollout 64 envs × 8 steps + a2c update)",
        "",
        f"Breakout-MinAtar, `JitProgram.train_chunk` of {iterations} iterations vmapped over "
        f"seeds. Medians over {repeats} interleaved rounds; ms per iteration (wall / "
        "process CPU); env steps/s of one seed from the wall time.",
        "",
        "| torso | 1 seed wall | 1 seed CPU | env-steps/s | 3 seeds wall | 3 seeds CPU "
        "| env-steps/s per seed | 3 seeds / 1 seed (wall) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for v in variants:
        one, three = samples[f"{v}:1"], samples[f"{v}:3"]
        w1, w3 = _med(one, 0) / iterations, _med(three, 0) / iterations
        lines.append(
            f"| {v} | {w1 * 1e3:.2f} | {_med(one, 1) / iterations * 1e3:.2f} | "
            f"{steps / w1:,.0f} | {w3 * 1e3:.2f} | {_med(three, 1) / iterations * 1e3:.2f} | "
            f"{steps / w3:,.0f} | {_ratio(three, one):.2f}× |"
        )
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------
# End to end, one process per case.
# --------------------------------------------------------------------------------------


def _child(variant: str, seeds: int, steps: int) -> dict:
    from softeq.adapters import jit_loop
    from softeq.adapters.agents import default_config
    from softeq.adapters.run_config import RunConfig

    networks.minatar_torso = VARIANTS[variant]
    with tempfile.TemporaryDirectory() as workdir:
        run = RunConfig(
            env_id=ENV_ID,
            algo="a2c",
            driver="jit",
            backend="gymnax",
            seeds=tuple(range(seeds)),
            total_steps=steps,
            eval_every=0,
            eval_episodes=0,
            checkpoint_every=steps,
            keep_checkpoints=1,
            progress=False,
            run_dir=os.path.join(workdir, "run"),
        )
        config = default_config("a2c", ENV_ID, lr_decay_steps=steps)
        result = jit_loop.train(run, config, out=lambda _: None)
    return {
        "sps": result.sps,
        "sps_total": result.total_sps,
        "compile_s": float(sum(result.compile_s.values())),
    }


def _measure(variant: str, seeds: int, steps: int) -> dict:
    return run_child("benchmarks.seed_batching", f"{variant}:{seeds}:{steps}", timeout=1800)


def driver_section(*, rounds: int, steps: int, variants: tuple[str, ...]) -> str:
    """Markdown of end-to-end `jit_loop.train` runs, 1 vs 3 seeds."""
    samples: dict[tuple[str, int], list[dict]] = {(v, s): [] for v in variants for s in SEED_COUNTS}
    for _ in range(rounds):
        for v in variants:
            for s in SEED_COUNTS:
                samples[v, s].append(_measure(v, s, steps))
    lines = [
        "## driver: `softeq.adapters.jit_loop.train` end to end",
        "",
        f"a2c on {ENV_ID}, {NUM_ENVS} envs × {NUM_STEPS} steps, {steps:,} env steps per "
        f"seed, no evaluation; one fresh process per case, medians over {rounds} "
        "interleaved rounds. Env steps/s exclude compilation, evaluation, logging and "
        "checkpoints (as the driver reports them).",
        "",
        "| torso | 1 seed: env-steps/s | 3 seeds: per seed | 3 seeds: all | compile s (1 / 3) "
        "| time of 3 seeds / time of 1 seed |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for v in variants:
        one, three = samples[v, 1], samples[v, 3]
        cost = statistics.median(
            3 * a["sps"] / b["sps_total"] for a, b in zip(one, three, strict=True)
        )
        lines.append(
            f"| {v} | {statistics.median(a['sps'] for a in one):,.0f} | "
            f"{statistics.median(b['sps'] for b in three):,.0f} | "
            f"{statistics.median(b['sps_total'] for b in three):,.0f} | "
            f"{statistics.median(a['compile_s'] for a in one):.1f} / "
            f"{statistics.median(b['compile_s'] for b in three):.1f} | {cost:.2f}× |"
        )
    lines += ["", "Per-round samples (env-steps/s of one seed, 1 seed / 3 seeds):", ""]
    for v in variants:
        pairs = ", ".join(
            f"{a['sps']:,.0f} / {b['sps']:,.0f}"
            for a, b in zip(samples[v, 1], samples[v, 3], strict=True)
        )
        lines.append(f"- {v}: {pairs}")
    return "\n".join(lines) + "\n"


def _header(argv: list[str]) -> str:
    from benchmarks.run import git_revision
    from softeq.adapters.reproduce import machine_description

    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    now = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    command = " ".join(["python -m benchmarks.seed_batching", *argv])
    return "\n".join(
        [
            "# Seed batching on MinAtar (and the Nature CNN)",
            "",
            f"- Machine: {machine_description()}",
            f"- Date: {now}",
            f"- Commit: {git_revision()}",
            f"- Command: `{command}`",
            f"- Load average (1, 5, 15 min) at start: {load}",
            "",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--repeats", type=int, default=15, help="in-process rounds")
    parser.add_argument("--nature-repeats", type=int, default=3, help="rounds, Nature CNN")
    parser.add_argument("--driver-rounds", type=int, default=3)
    parser.add_argument("--driver-steps", type=int, default=100_000)
    parser.add_argument(
        "--driver-variants", nargs="+", default=["im2col", "current"], choices=list(VARIANTS)
    )
    parser.add_argument(
        "--iteration-variants",
        nargs="+",
        default=["conv2d", "im2col", "current"],
        choices=list(VARIANTS),
    )
    parser.add_argument(
        "--sections",
        nargs="+",
        default=["torso", "nature", "iteration", "driver"],
        choices=["torso", "nature", "iteration", "driver"],
    )
    parser.add_argument("--output", default=None, help="also write the report here")
    args = parser.parse_args(argv)
    if args.child:
        variant, seeds, steps = args.child.split(":")
        print("RESULT " + json.dumps(_child(variant, int(seeds), int(steps))))
        return 0
    parts = [_header(sys.argv[1:] if argv is None else argv)]
    if "torso" in args.sections:
        parts.append(torso_section(repeats=args.repeats, family="minatar"))
    if "nature" in args.sections:
        parts.append(torso_section(repeats=args.nature_repeats, family="nature"))
    if "iteration" in args.sections:
        parts.append(
            iteration_section(repeats=args.repeats, variants=tuple(args.iteration_variants))
        )
    if "driver" in args.sections:
        parts.append(
            driver_section(
                rounds=args.driver_rounds,
                steps=args.driver_steps,
                variants=tuple(args.driver_variants),
            )
        )
    end_load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    parts.append(f"Load average (1, 5, 15 min) at the end: {end_load}\n")
    report = "\n".join(parts)
    print(report)
    if args.output:
        Path(args.output).write_text(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
