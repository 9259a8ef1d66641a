"""The host side of the jitted driver: seeds in one program, I/O between chunks.

`train(run, algo_config)` trains every seed of `run` (`resolve_seeds`) as one
XLA program built from `softeq.adapters.jit_driver.JitProgram`:

    state = init(seeds)                          # vmapped over seeds, laid over devices
    repeat until run.total_steps env steps per seed:
        state, logs = train_chunk(state, k)      # k iterations on the device
        per seed: finished episodes and learner metrics → CSV + TensorBoard
        every eval_every steps: evaluation episodes inside the program
        every checkpoint_every steps: one atomic checkpoint of all seeds
        SIGINT/SIGTERM: checkpoint, then stop (`Interrupted`)

Seeds and envs: the per-seed functions are `jax.vmap`ped and run on a
`("seeds", "data")` mesh (`softeq.adapters.mesh`): the seed axis is split
over "seeds" (seeds never interact), each seed's envs over "data", where the
learner's batch mean becomes an all-reduce. With several processes
(`softeq.adapters.distributed`) the mesh spans every process's devices and
all of them run `train` in step: one learner per seed, process 0 alone writing
the run folder; a checkpoint gathers the state to every process first.

Sweeps: `train(..., members=[SweepMember(run, config), ...])` trains several
runs whose configs differ only in sweepable fields (`softeq.adapters.sweep`:
temperature, value weight) as the lanes of one program; the lanes' values
enter `train_chunk` as `[S]` arrays beside the state, and each member's
folder ends as if it had run alone (`softeq compare` uses this).

Run folder:

    RUN_DIR/config.json            the run and algorithm configs
    RUN_DIR/checkpoints/           ckpt-<env steps>.ckpt: every seed's state
    RUN_DIR/seed-<s>/metrics.csv   per seed, the host loop's tags (tb/ beside it)
    RUN_DIR/summary.json           written at the end (see `write_summary`)

Resume restores the whole program state (parameters, optimiser, envs, replay,
PRNG keys), the counters and the loggers from the newest good checkpoint;
on CPU the resumed run ends bit-for-bit where an uninterrupted one does. A
non-finite learner loss stops the run with `NonFiniteError` before any later
checkpoint is written.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from softeq.adapters import ale_xla, stall
from softeq.adapters import checkpoint as ckpt_lib
from softeq.adapters import distributed as dist
from softeq.adapters import mesh as mesh_lib
from softeq.adapters.agents import common
from softeq.adapters.atomic_file import write_json
from softeq.adapters.jit_driver import EvalSettings, JitProgram, chunk_iterations, stream_key
from softeq.adapters.logger import MetricsLogger
from softeq.adapters.loop import Interrupted, NonFiniteError, _StopFlag
from softeq.adapters.run_config import (
    CONFIG_FILENAME,
    RunConfig,
    config_dicts_to_objects,
    configs_to_dict,
    format_configs,
    read_config_json,
    resolve_eval_protocol,
    resolve_num_envs,
    resolve_seeds,
    save_run_configs,
)
from softeq.adapters.stall import StallWatch
from softeq.adapters.video import VIDEO_DIRNAME, write_observation_video

CHECKPOINT_DIRNAME = "checkpoints"
SUMMARY_FILENAME = "summary.json"
LANES_FILENAME = "lanes.json"  # a sweep program's lanes: seed, member folder, swept values
#: 2: a replay learner's device replay stores each observation once (format 1 kept a
#: second array of next observations); actor-critic states are the same in both.
JIT_CHECKPOINT_FORMAT = 2
SEED_AXIS = mesh_lib.SEED_AXIS


def seed_dirname(seed: int) -> str:
    """The per-seed folder name inside a jitted run folder: `seed-<s>`."""
    return f"seed-{seed}"


# --------------------------------------------------------------------------------------
# Seeds and envs over devices.
# --------------------------------------------------------------------------------------


def seed_mesh(num_seeds: int, devices: Sequence[jax.Device] | None = None) -> jax.sharding.Mesh:
    """A 1-D mesh (axis "seeds") of the largest number of devices dividing `num_seeds`."""
    devices = list(devices if devices is not None else jax.local_devices())
    count = max(d for d in range(1, len(devices) + 1) if num_seeds % d == 0)
    return jax.sharding.Mesh(np.asarray(devices[:count]), (SEED_AXIS,))


def _lane_values(values: Sequence[float] | Sequence[int]) -> np.ndarray:
    """One lane value per lane as the program reads it: int32 indices or float32 numbers."""
    array = np.asarray(values)
    return array.astype(np.int32 if np.issubdtype(array.dtype, np.integer) else np.float32)


class SeededProgram:
    """A `JitProgram`'s functions vmapped over seeds, jitted over a ("seeds", "data") mesh.

    The mesh (`softeq.adapters.mesh.training_mesh`) splits the seeds over its
    "seeds" axis and each seed's N envs over its "data" axis: parameters are
    copied along "data", envs, observations and replay columns split, and the
    learner's batch mean becomes an all-reduce over "data". Envs that do not
    run as pure JAX functions (`jax_envs.JaxVectorEnv`) are not split.

    Args:
      program: the per-seed program.
      seeds: the seeds, one program lane each.
      chunk_length: iterations per `train_chunk` call (a static shape).
      devices: devices of the mesh; None: `jax.local_devices()`, or every
        process's `jax.devices()` when the run spans processes.
      hyperparameters: `{field: [S] values}`, sweepable config fields
        (`softeq.adapters.sweep`) that differ between the lanes: each lane's
        learner trains with its own value, in the same compiled program
        (floats as float32; integers, a choice field's indices, as int32).

    Attributes:
      mesh: the `("seeds", "data")` mesh.
      compile_s: seconds spent compiling each function, by name.
      compile_wall_s: seconds of all compilation.
      trace_counts: how often each per-seed function has been traced.
    """

    def __init__(
        self,
        program: JitProgram,
        seeds: Sequence[int],
        *,
        chunk_length: int,
        devices: Sequence[jax.Device] | None = None,
        hyperparameters: dict[str, Sequence[float] | Sequence[int]] | None = None,
    ):
        from softeq.adapters import jax_envs

        self.program = program
        self.seeds = tuple(int(s) for s in seeds)
        self.hyperparameters = {
            name: _lane_values(values) for name, values in (hyperparameters or {}).items()
        }
        for name, values in self.hyperparameters.items():
            if values.shape != (len(self.seeds),):
                raise ValueError(
                    f"`hyperparameters[{name!r}]` must hold one value per lane "
                    f"({len(self.seeds)}), got shape {values.shape}."
                )
        self.chunk_length = int(chunk_length)
        splittable = isinstance(program.env, jax_envs.JaxVectorEnv)
        self.mesh = mesh_lib.training_mesh(
            len(self.seeds), program.num_envs if splittable else 1, devices
        )
        self.batched = NamedSharding(self.mesh, PartitionSpec(SEED_AXIS))
        self.replicated = NamedSharding(self.mesh, PartitionSpec())
        # What the host reads (logs, evaluations) must be whole on every process.
        self.readable = self.replicated if self.spans_processes else self.batched
        self._init = lambda seed: _strongly_typed(program.init(seed))
        self._state_shapes = None
        self._state_shardings = None
        num_envs = program.num_envs

        def chunk(state, n, first, hyperparameters):
            return program.train_chunk(
                state, n, first, length=self.chunk_length, hyperparameters=hyperparameters
            )

        self._counters = {
            "init": common.TraceCounter(self._init),
            "train_chunk": common.TraceCounter(chunk),
            "evaluate": common.TraceCounter(program.evaluate),
            "evaluate_with_video": common.TraceCounter(program.evaluate_with_video),
        }

        def laid_out(fn):
            def traced(*args):
                with mesh_lib.env_layout(self.mesh):
                    out = fn(*args)
                    if fn is self._counters["init"]:
                        out = mesh_lib.shard_state_env_axes(out, num_envs)
                    return out

            return traced

        def seeded(name, in_axes=0):
            return jax.vmap(
                laid_out(self._counters[name]), in_axes=in_axes, spmd_axis_name=SEED_AXIS
            )

        states = self.state_shardings()
        self._jitted = {
            "init": jax.jit(seeded("init"), out_shardings=states),
            "train_chunk": jax.jit(
                seeded("train_chunk", (0, None, None, 0)),
                in_shardings=(states, self.replicated, self.replicated, self.batched),
                out_shardings=(states, self.readable),
                donate_argnums=0,
            ),
            "evaluate": jax.jit(
                seeded("evaluate"),
                in_shardings=(states.learner.params, self.batched),
                out_shardings=self.readable,
            ),
            "evaluate_with_video": jax.jit(
                seeded("evaluate_with_video"),
                in_shardings=(states.learner.params, self.batched),
                out_shardings=self.readable,
            ),
        }
        self._compiled: dict[str, Any] = {}
        self.compile_s: dict[str, float] = {}
        self.compile_wall_s = 0.0

    @property
    def spans_processes(self) -> bool:
        """Whether the mesh holds devices of other processes too."""
        return len({d.process_index for d in self.mesh.devices.flat}) > 1

    @property
    def trace_counts(self) -> dict[str, int]:
        return {name: counter.count for name, counter in self._counters.items()}

    def _call(self, name: str, *args):
        if name not in self._compiled:
            self.compile_all({name: args})
        return self._compiled[name](*args)

    def compile_all(self, calls: dict[str, tuple]) -> None:
        """Compile the named functions for their example arguments, one after another.

        Arguments may be arrays or `jax.ShapeDtypeStruct`s (`state_shapes`,
        `chunk_shapes`, ...), so a program compiles before any state exists.
        (Compiling them in threads side by side was slower here: on two busy
        cores three XLA compilations in parallel took 25 s against 13 s.)
        """
        for name, args in calls.items():
            if name in self._compiled:
                continue
            start = time.perf_counter()
            self._compiled[name] = self._jitted[name].lower(*args).compile()
            self.compile_s[name] = time.perf_counter() - start
            self.compile_wall_s += self.compile_s[name]

    def compile(self, name: str, *args) -> None:
        """Compile `name` for `args` now (so that its time is not counted as training)."""
        self.compile_all({name: args})

    def _shapes(self, tree, shardings=None):
        if shardings is None:
            shardings = jax.tree.map(lambda _: self.batched, tree)
        return jax.tree.map(
            lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), tree, shardings
        )

    def _traced_state(self):
        seeds = jax.ShapeDtypeStruct((len(self.seeds),), jnp.int32)
        return jax.eval_shape(jax.vmap(self._init), seeds)

    def state_shardings(self):
        """`NamedSharding` of every leaf of the seeds' state (env axes over "data")."""
        if self._state_shardings is None:  # traced here once, outside the trace counters
            num_envs = self.program.num_envs if self.mesh.shape[mesh_lib.DATA_AXIS] > 1 else -1
            self._state_shardings = mesh_lib.state_shardings(
                self.mesh, self._traced_state(), num_envs
            )
        return self._state_shardings

    def state_shapes(self):
        """Shapes, dtypes and shardings of the seeds' state (traced, not computed)."""
        if self._state_shapes is None:
            self._state_shapes = self._shapes(self._traced_state(), self.state_shardings())
        return self._state_shapes

    def chunk_shapes(self):
        """Example arguments of `train_chunk` for `compile_all`."""
        count = jax.ShapeDtypeStruct((), jnp.int32, sharding=self.replicated)
        return self.state_shapes(), count, count, self._shapes(self.hyperparameters)

    def eval_shapes(self):
        """Example arguments of `evaluate` for `compile_all`."""
        keys = self._shapes(jax.ShapeDtypeStruct(eval_keys(self.seeds, 0).shape, jnp.uint32))
        return self.state_shapes().learner.params, keys

    def init_shapes(self):
        """Example arguments of `init` for `compile_all`."""
        return (jax.ShapeDtypeStruct((len(self.seeds),), jnp.int32, sharding=self.batched),)

    def init(self):
        """Every seed's fresh state, `[S, ...]` leaves laid over the mesh."""
        seeds = mesh_lib.put_global(np.asarray(self.seeds, np.int32), self.batched)
        return self._call("init", seeds)

    def restore(self, leaves: Sequence[np.ndarray]):
        """The state whose flat leaves a checkpoint holds, laid over the mesh.

        The structure, shapes and dtypes come from tracing `init` (nothing is
        compiled); a checkpoint of another program is refused.
        """
        shapes, treedef = jax.tree.flatten(self.state_shapes())
        leaves = list(leaves)
        if len(leaves) != len(shapes):
            raise ckpt_lib.CheckpointError(
                f"the checkpoint holds {len(leaves)} arrays but this program's state has "
                f"{len(shapes)}: was it written by another algorithm or config?"
            )
        arrays = []
        for leaf, shape in zip(leaves, shapes, strict=True):
            leaf = np.asarray(leaf)
            if leaf.shape != shape.shape or leaf.dtype != shape.dtype:
                raise ckpt_lib.CheckpointError(
                    f"checkpoint array {leaf.shape}/{leaf.dtype} does not match the program's "
                    f"{shape.shape}/{shape.dtype}"
                )
            arrays.append(mesh_lib.put_global(leaf, shape.sharding))
        return jax.tree.unflatten(treedef, arrays)

    def train_chunk(self, state, num_iterations: int, first_index: int):
        """`num_iterations` (≤ chunk_length) iterations of every seed (the state is donated).

        `first_index`: iterations done before this chunk (the same for every seed).
        """
        n = mesh_lib.put_global(np.asarray(num_iterations, np.int32), self.replicated)
        first = mesh_lib.put_global(np.asarray(first_index, np.int32), self.replicated)
        hyper = {k: mesh_lib.put_global(v, self.batched) for k, v in self.hyperparameters.items()}
        return self._call("train_chunk", state, n, first, hyper)

    def evaluate(self, params, eval_index: int, *, keys: np.ndarray | None = None):
        """Evaluation episodes of every seed: `(returns, lengths, capped)`, each `[S, E]`.

        `keys` (`[S, key]` raw keys) replaces the run's keys of evaluation `eval_index`.
        """
        keys = eval_keys(self.seeds, eval_index) if keys is None else keys
        return self._call("evaluate", params, mesh_lib.put_global(keys, self.batched))

    def evaluate_with_video(self, params, eval_index: int):
        """`evaluate`, plus each seed's observations of its episode 0:
        `(returns, lengths, capped, frames [S, L, *obs_shape])`."""
        keys = mesh_lib.put_global(eval_keys(self.seeds, eval_index), self.batched)
        return self._call("evaluate_with_video", params, keys)


def _strongly_typed(tree):
    """`tree` with every weakly typed leaf made strong (same dtype and values).

    gymnax builds a few state fields from Python numbers; a state restored from
    a checkpoint has none of that, and a compiled program accepts one typing.
    """
    return jax.tree.map(lambda x: jax.lax.convert_element_type(x, x.dtype), tree)


def eval_keys(seeds: Sequence[int], eval_index: int) -> np.ndarray:
    """`[S, key]` raw keys of evaluation number `eval_index` (fresh env copies every time)."""
    return np.stack([np.asarray(stream_key(int(s), 1 + int(eval_index))) for s in seeds])


# --------------------------------------------------------------------------------------
# Results.
# --------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class JitTrainResult:
    """What `train` returns.

    Attributes:
      run_dir: the run folder.
      seeds: the seeds, in program order.
      env_steps: environment steps done per seed.
      updates: learner updates per seed (`[S]`).
      episodes: finished training episodes per seed (`[S]`).
      recent_returns: mean raw return of each seed's last (up to) 100 training episodes.
      final_evals: per seed `{"return_mean", "return_std", "length_mean",
        "episodes", "capped"}` of the last evaluation, or None.
      checkpoint: path of the last checkpoint written.
      sps: env steps per second of one seed, training time only (no
        compilation, evaluation, logging or checkpointing); NaN if nothing ran.
      compile_s: seconds of compilation, by function.
      compile_wall_s: seconds of all compilation.
      wall_s: wall-clock seconds of this call.
      total_wall_s: wall-clock seconds of the whole run: this call plus the earlier
        sittings up to the checkpoint it resumed from (as that checkpoint records them;
        a checkpoint written before this was recorded gives its loggers' clock, which
        leaves out the earlier sittings' compilation).
      finished: True if the step budget was reached.
      diverged_at: per seed, the env step of its first non-finite learner loss, or
        None (set only by `keep_going_when_diverged`).
      devices: the number of devices the seeds were spread over.
      trace_counts: how often each per-seed function was traced (1 each: one
        compilation per program).
      mesh_shape: `{"seeds": seed shards, "data": env shards per seed}`.
      processes: how many processes trained together (`jax.process_count()`).
    """

    run_dir: Path
    seeds: tuple[int, ...]
    env_steps: int
    updates: list[int]
    episodes: list[int]
    recent_returns: list[float]
    final_evals: list[dict[str, float] | None]
    checkpoint: Path | None
    sps: float
    compile_s: dict[str, float]
    compile_wall_s: float
    wall_s: float
    finished: bool
    diverged_at: list[int | None]
    devices: int
    trace_counts: dict[str, int]
    mesh_shape: dict[str, int] = dataclasses.field(default_factory=lambda: {"seeds": 1, "data": 1})
    processes: int = 1
    total_wall_s: float = 0.0

    @property
    def total_sps(self) -> float:
        """Env steps per second summed over the seeds."""
        return self.sps * len(self.seeds)


def summary_dict(result: JitTrainResult, run: RunConfig) -> dict[str, Any]:
    """The content of `summary.json`.

    Top level: driver, env, algo, backend, num_envs, devices, `mesh` (seed and
    env shards), `processes`, env steps,
    `sps_total`, `compile_s` (by function, and their total), `wall_s` (the
    run's wall-clock seconds over all its sittings, `JitTrainResult.total_wall_s`),
    `finished` (a member of a shared program also `program`: that program's folder);
    `seeds`: `{"<seed>": {"final_eval_return", "final_eval_std",
    "final_eval_episodes", "recent_return", "diverged_at", "episodes", "updates", "env_steps",
    "sps", "wall_s", "compile_s"}}` — seeds share the program, so they share its
    time figures.
    """
    compile_total = float(result.compile_wall_s)
    seeds = {}
    for i, seed in enumerate(result.seeds):
        fe = result.final_evals[i]
        seeds[str(seed)] = {
            "final_eval_return": None if fe is None else fe["return_mean"],
            "final_eval_std": None if fe is None else fe["return_std"],
            "final_eval_episodes": None if fe is None else fe["episodes"],
            "recent_return": _json_float(result.recent_returns[i]),
            "diverged_at": result.diverged_at[i],
            "episodes": int(result.episodes[i]),
            "updates": int(result.updates[i]),
            "env_steps": int(result.env_steps),
            "sps": _json_float(result.sps),
            "wall_s": result.total_wall_s,
            "compile_s": compile_total,
        }
    return {
        "driver": "jit",
        "backend": "ale" if ale_xla.is_ale_id(run.env_id) else "gymnax",
        "env_id": run.env_id,
        "algo": run.algo,
        "num_envs": run.num_envs,
        "devices": result.devices,
        "mesh": dict(result.mesh_shape),
        "processes": result.processes,
        "env_steps": int(result.env_steps),
        "total_steps": run.total_steps,
        "finished": result.finished,
        "sps_total": _json_float(result.total_sps),
        "compile_s": {**result.compile_s, "total": compile_total},
        "wall_s": result.total_wall_s,
        "seeds": seeds,
    }


def _json_float(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def write_summary(run_dir: Path, summary: dict[str, Any]) -> Path:
    """Write `summary.json` atomically."""
    return write_json(Path(run_dir) / SUMMARY_FILENAME, summary)


def read_summary(run_dir: str | os.PathLike) -> dict[str, Any]:
    """The `summary.json` of a finished jitted run."""
    with open(Path(run_dir) / SUMMARY_FILENAME) as fh:
        return json.load(fh)


# --------------------------------------------------------------------------------------
# Logging a chunk.
# --------------------------------------------------------------------------------------


def _log_chunk(
    loggers: list[MetricsLogger], logs: Any, rows: int, *, steps_per_row: int, num_envs: int
) -> list[int]:
    """Writes each seed's finished episodes and learner metrics; returns episodes per seed."""
    env_steps = np.asarray(logs.env_steps)[:, :rows]  # [S, K]
    returns = np.asarray(logs.episode_returns)[:, :rows]  # [S, K, T, N]
    lengths = np.asarray(logs.episode_lengths)[:, :rows]
    updated = np.asarray(logs.updated)[:, :rows]
    learner = {k: np.asarray(v)[:, :rows] for k, v in logs.learner.items()}
    # env step at which step t of an iteration ended: the iteration's count minus the rest.
    offsets = (steps_per_row - 1 - np.arange(steps_per_row)) * num_envs  # [T]
    counts = []
    for s, logger in enumerate(loggers):
        ended = ~np.isnan(returns[s])
        counts.append(int(ended.sum()))
        for k in range(rows):
            step_ends = ended[k]
            if step_ends.any():
                for t in np.flatnonzero(step_ends.any(axis=1)):
                    mask = step_ends[t]
                    logger.episodes(
                        returns[s, k, t][mask],
                        lengths[s, k, t][mask],
                        int(env_steps[s, k] - offsets[t]),
                    )
            if updated[s, k]:
                logger.learner({name: v[s, k] for name, v in learner.items()}, int(env_steps[s, k]))
        logger.maybe_flush()
    return counts


def _first_nonfinite(logs: Any, rows: int) -> dict[int, int]:
    """`{seed index: env step}` of each seed's first non-finite learner loss in a chunk."""
    updated = np.asarray(logs.updated)[:, :rows]
    env_steps = np.asarray(logs.env_steps)[:, :rows]
    found: dict[int, int] = {}
    for name, values in logs.learner.items():
        if "loss" not in name:
            continue
        bad = updated & ~np.isfinite(np.asarray(values)[:, :rows])
        for s, k in np.argwhere(bad):
            step = int(env_steps[s, k])
            found[int(s)] = min(step, found.get(int(s), step))
    return found


def _check_finite(logs: Any, rows: int, seeds: Sequence[int]) -> None:
    updated = np.asarray(logs.updated)[:, :rows]
    env_steps = np.asarray(logs.env_steps)[:, :rows]
    for name, values in logs.learner.items():
        if "loss" not in name:
            continue
        values = np.asarray(values)[:, :rows]
        bad = updated & ~np.isfinite(values)
        if bad.any():
            s, k = np.argwhere(bad)[0]
            raise NonFiniteError(
                f"non-finite learner loss at env step {int(env_steps[s, k])} of seed "
                f"{seeds[s]} ({name}={values[s, k]}); the run is stopped and the last good "
                f"checkpoint is kept (try a smaller --learning-rate or --max-grad-norm)"
            )


def _all_finite(tree: Any) -> bool:
    for leaf in jax.tree.leaves(tree):
        if jnp.issubdtype(leaf.dtype, jnp.inexact) and not bool(np.isfinite(leaf).all()):
            return False
    return True


def _quiet(_: str) -> None:
    """Where the status lines of processes other than 0 go."""


class _SilentLogger:
    """The logger of processes other than 0: remembers recent returns, writes nothing."""

    def __init__(self, recent_window: int = 100):
        from collections import deque

        self._recent: Any = deque(maxlen=recent_window)

    def episodes(self, returns, lengths, step: int) -> None:
        self._recent.extend(float(r) for r in returns)

    def scalar(self, *args, **kwargs) -> None: ...

    def learner(self, *args, **kwargs) -> None: ...

    def flush_learner(self, *args, **kwargs) -> None: ...

    def maybe_flush(self) -> None: ...

    def close(self) -> None: ...

    def state(self) -> dict[str, Any]:
        return {}

    @property
    def recent_return(self) -> float:
        return float(np.mean(self._recent)) if self._recent else float("nan")


def _eval_summary(returns: np.ndarray, lengths: np.ndarray, capped: np.ndarray) -> dict:
    return {
        "return_mean": float(np.mean(returns)),
        "return_std": float(np.std(returns)),
        "length_mean": float(np.mean(lengths)),
        "episodes": float(returns.size),
        "capped": float(np.sum(capped)),
    }


# --------------------------------------------------------------------------------------
# The loop.
# --------------------------------------------------------------------------------------


def build_program(run: RunConfig, algo_config: Any, *, lanes: int | None = None) -> JitProgram:
    """The per-seed `JitProgram` of `run` (env, algorithm, envs, torso, evaluation).

    `lanes`: the program's vmap size (None: the run's seeds).
    """
    protocol = resolve_eval_protocol(run)
    evaluation = EvalSettings(
        episodes=max(1, run.eval_episodes),
        policy=protocol.policy,
        epsilon=protocol.epsilon,
        max_episode_steps=protocol.max_episode_steps,
    )
    torso = None if run.torso == "auto" else run.torso
    return JitProgram(
        run.algo,
        algo_config,
        env_id=run.env_id,
        num_envs=resolve_num_envs(run, algo_config),
        torso=torso,
        evaluation=evaluation,
        lanes=len(resolve_seeds(run)) if lanes is None else lanes,
    )


@dataclasses.dataclass(frozen=True)
class SweepMember:
    """One run of a sweep: its own folder, seeds and algorithm config (`train(members=...)`).

    Members share one program when their configs differ only in sweepable
    fields (`softeq.adapters.sweep.batch_key`); each ends with the run folder
    it would have had alone: `config.json`, `seed-<s>/` metrics, a final
    checkpoint of its lanes and `summary.json`.
    """

    run: RunConfig
    algo_config: Any


def checkpoint_dir(run_dir: str | os.PathLike) -> Path:
    return Path(run_dir) / CHECKPOINT_DIRNAME


def train(
    run: RunConfig,
    algo_config: Any,
    *,
    resume: bool = False,
    stop_after_steps: int | None = None,
    devices: Sequence[jax.Device] | None = None,
    keep_going_when_diverged: bool = False,
    members: Sequence[SweepMember] | None = None,
    out: Callable[[str], None] = print,
) -> JitTrainResult:
    """Train every seed of `run` as one jitted program; see the module docstring.

    Args:
      run: the run configuration; `run.run_dir` must be set.
      algo_config: the algorithm's frozen config.
      resume: continue from the newest good checkpoint in `run.run_dir`.
      stop_after_steps: stop (with a checkpoint) at the first chunk boundary at
        or after this many env steps per seed; `resume=True` continues later.
      devices: devices the seeds are laid over (`jax.local_devices()` when None).
      keep_going_when_diverged: a seed whose learner loss becomes non-finite is
        recorded as diverged (env step in `diverged_at`) and the other seeds go on;
        an experiment counts divergence as an outcome (`softeq reproduce`).
      members: train these runs (same env and budget as `run`; configs differing
        only in sweepable fields) as the lanes of this one program: each member's
        seeds are lanes with its own hyperparameter values. `run.run_dir` then
        holds the program's checkpoints, its `config.json` (the first member's
        config) and `lanes.json` (each lane's seed, member folder and swept
        values); each member's folder gets what a run of its own writes (see
        `SweepMember`). The result lists every lane.
      out: where status lines go.

    Raises:
      NonFiniteError: a learner loss became non-finite (unless
        `keep_going_when_diverged`).
      Interrupted: SIGINT/SIGTERM arrived; a checkpoint was saved first.
    """
    if not run.run_dir:
        raise ValueError("run.run_dir must be set")
    call_start = time.perf_counter()
    # With several processes (`softeq.adapters.distributed`) every process runs this
    # function in step; only process 0 writes files or prints.
    main = dist.is_main_process()
    if not main:
        out = _quiet
    run_dir = Path(run.run_dir)
    seeds = resolve_seeds(run)
    num_envs = resolve_num_envs(run, algo_config)
    run = run.replace(num_envs=num_envs, driver="jit")  # as the saved config records it
    lane_dirs = [run_dir / seed_dirname(s) for s in seeds]
    hyperparameters: dict[str, Any] = {}
    member_lanes: list[list[int]] = []
    lane_configs = [algo_config] * len(seeds)
    if members:
        from softeq.adapters import sweep

        members = [
            dataclasses.replace(m, run=m.run.replace(num_envs=num_envs, driver="jit"))
            for m in members
        ]
        lane_configs = [m.algo_config for m in members for _ in resolve_seeds(m.run)]
        seeds = tuple(s for m in members for s in resolve_seeds(m.run))
        lane_dirs = [
            Path(m.run.run_dir) / seed_dirname(s) for m in members for s in resolve_seeds(m.run)
        ]
        for m in members:
            first = sum(len(lanes) for lanes in member_lanes)
            member_lanes.append(list(range(first, first + len(resolve_seeds(m.run)))))
        hyperparameters = sweep.sweep_values(lane_configs)  # refuses unsweepable differences
        algo_config = lane_configs[0]
    program = build_program(run, algo_config, lanes=len(seeds))
    per_iteration = program.steps_per_iteration
    total_iterations = math.ceil(run.total_steps / per_iteration)
    span = min(
        run.checkpoint_every,
        run.eval_every if run.eval_every > 0 else run.total_steps,
        run.total_steps,
    )
    chunk = min(chunk_iterations(per_iteration, span), total_iterations)
    chunk = min(chunk, program.max_chunk_length or chunk)  # 1: Nature CNN on CPU
    devices = ale_xla.program_devices(program, devices)  # ALE emulators: one device
    seeded = SeededProgram(
        program, seeds, chunk_length=chunk, devices=devices, hyperparameters=hyperparameters
    )
    manager = ckpt_lib.CheckpointManager(checkpoint_dir(run_dir), keep=run.keep_checkpoints)

    loaded = None
    if resume:
        loaded = manager.load_latest()
        if loaded is None:
            out(f"no checkpoint in {manager.directory}; starting from scratch")
    out(format_configs(run, algo_config))
    if main:
        save_run_configs(run_dir, run, algo_config)
        for member in members or ():
            save_run_configs(Path(member.run.run_dir), member.run, member.algo_config)
        if members:  # config.json holds the first lane's config; this says what each lane ran
            lanes_record = [
                {"seed": seed, "folder": str(lane_dirs[i].parent)}
                | {name: getattr(lane_configs[i], name) for name in hyperparameters}
                for i, seed in enumerate(seeds)
            ]
            (run_dir / LANES_FILENAME).write_text(json.dumps(lanes_record, indent=2) + "\n")

    iterations = eval_index = 0
    final_evals: list[dict | None] = [None] * len(seeds)
    episodes = [0] * len(seeds)
    diverged_at: list[int | None] = [None] * len(seeds)
    logger_states: list[Any] = [None] * len(seeds)
    last_ckpt: Path | None = None
    earlier_wall_s = 0.0  # the sittings before this one, up to the checkpoint resumed from
    if loaded is not None:
        payload, path = loaded
        _check_payload(payload, path, run, seeds, num_envs)
        state = seeded.restore(payload["state"])
        loop_state = payload["loop"]
        iterations, eval_index = int(loop_state["iterations"]), int(loop_state["eval_index"])
        final_evals = list(loop_state["final_evals"])
        episodes = [int(e) for e in loop_state["episodes"]]
        diverged_at = list(loop_state.get("diverged_at", diverged_at))
        logger_states = list(payload["loggers"])
        last_ckpt = path
        earlier_wall_s = float(
            loop_state.get("wall_s", (logger_states[0] or {}).get("elapsed_s", 0.0))
        )
        if ale_xla.is_ale_id(run.env_id):
            state = ale_xla.restart_envs(seeded, state, iterations * per_iteration)
            out(
                f"resumed from {path} at env step {iterations * per_iteration}: learner, "
                "optimiser, replay, keys and counters exact; the Atari emulators cannot be "
                "saved, so every env starts a fresh game"
            )
        else:
            out(f"resumed from {path} at env step {iterations * per_iteration} (exact state)")
    # Everything compiles before the clock starts: the train time below is the device's.
    programs = {"train_chunk": seeded.chunk_shapes()}
    if loaded is None:
        programs["init"] = seeded.init_shapes()
    if run.eval_episodes > 0:
        programs["evaluate"] = seeded.eval_shapes()
    seeded.compile_all(programs)
    if loaded is None:
        state = seeded.init()

    # A learner row per chunk at least: thousands of per-update rows cost more in
    # TensorBoard writes than the training itself.
    log_every = max(run.log_every, program.updates_per_iteration * chunk)
    loggers = [
        MetricsLogger(lane_dirs[i], log_every=log_every, state=logger_states[i])
        if main
        else _SilentLogger()
        for i in range(len(seeds))
    ]
    shape = seeded.mesh.shape
    out(
        f"run folder: {run_dir} ({len(seeds)} seed(s), {seeded.mesh.size} device(s): "
        f"{shape[SEED_AXIS]} seed shard(s) x {shape[mesh_lib.DATA_AXIS]} env shard(s)"
        + (f", {jax.process_count()} processes)" if jax.process_count() > 1 else ")")
    )

    def env_steps() -> int:
        return iterations * per_iteration

    def make_payload(host_state: Any, lanes: Sequence[int] | None = None, member=None):
        # `lanes` and `member`: the checkpoint of one sweep member, as if it ran alone.
        lanes = list(range(len(seeds))) if lanes is None else list(lanes)
        if len(lanes) != len(seeds):
            host_state = jax.tree.map(lambda x: np.asarray(x)[np.asarray(lanes)], host_state)

        def pick(values):
            return [values[i] for i in lanes]

        own_run, own_config = (run, algo_config) if member is None else member
        return {
            "format": JIT_CHECKPOINT_FORMAT,
            "driver": "jit",
            "algo": run.algo,
            "env_id": run.env_id,
            "seeds": pick(seeds),
            "num_envs": num_envs,
            "config": configs_to_dict(own_run, own_config),
            "state": ckpt_lib.to_host(jax.tree.leaves(host_state)),
            "loop": {
                "iterations": iterations,
                "env_steps": env_steps(),
                "eval_index": eval_index,
                "final_evals": pick(final_evals),
                "episodes": pick(episodes),
                "diverged_at": pick(diverged_at),
                "wall_s": earlier_wall_s + (time.perf_counter() - call_start),
            },
            "loggers": pick([logger.state() for logger in loggers]),
        }

    def save_checkpoint() -> Path:
        # Every process gathers the whole state (a collective over a mesh that spans
        # processes), process 0 alone writes it, and the others wait for the file.
        host_state = mesh_lib.fetch(state)
        if not keep_going_when_diverged and not _all_finite(host_state.learner):
            raise NonFiniteError(
                f"non-finite values in the parameters at env step {env_steps()}; the run is "
                f"stopped and the last good checkpoint is kept"
            )
        path = manager.directory / ckpt_lib.checkpoint_name(env_steps())
        if main:
            path = manager.save(env_steps(), make_payload(host_state))
            for member, lanes in zip(members or (), member_lanes, strict=True):
                own = ckpt_lib.CheckpointManager(
                    checkpoint_dir(member.run.run_dir), keep=run.keep_checkpoints
                )
                member_payload = (member.run, member.algo_config)
                own.save(env_steps(), make_payload(host_state, lanes, member_payload))
        dist.barrier(f"softeq-checkpoint-{env_steps()}")
        return path

    def run_eval() -> list[dict]:
        nonlocal eval_index
        if run.video:
            returns, lengths, capped, frames = jax.device_get(
                seeded.evaluate_with_video(state.learner.params, eval_index)
            )
            if main:
                for i, lane_dir in enumerate(lane_dirs):
                    path = lane_dir / VIDEO_DIRNAME / f"eval-{env_steps():012d}.mp4"
                    shown = min(int(lengths[i, 0]), frames.shape[1] - 1) + 1
                    write_observation_video(run.env_id, frames[i, :shown], path)
        else:
            returns, lengths, capped = jax.device_get(
                seeded.evaluate(state.learner.params, eval_index)
            )
        eval_index += 1
        results = []
        for i, logger in enumerate(loggers):
            result = _eval_summary(returns[i], lengths[i], capped[i])
            logger.scalar("eval/return_mean", result["return_mean"], env_steps())
            logger.scalar("eval/return_std", result["return_std"], env_steps())
            logger.scalar("eval/length_mean", result["length_mean"], env_steps())
            logger.scalar("eval/capped_episodes", result["capped"], env_steps())
            results.append(result)
        return results

    from tqdm import tqdm

    bar = tqdm(
        total=run.total_steps,
        initial=min(env_steps(), run.total_steps),
        unit="step",
        unit_scale=True,
        dynamic_ncols=True,
        disable=not (run.progress and main),
        file=sys.stderr,
        desc=f"{run.algo} {run.env_id} seeds {','.join(map(str, seeds))}",
    )

    train_s = 0.0
    trained_steps = 0
    next_ckpt = (env_steps() // run.checkpoint_every + 1) * run.checkpoint_every
    eval_every = run.eval_every if run.eval_every > 0 else None
    next_eval = (env_steps() // eval_every + 1) * eval_every if eval_every else None

    def record_stall(limit_s: float) -> None:
        if main:  # reproduce reads it to run a program that saved nothing as smaller ones
            stall.write_stall_record(
                run_dir, env_step=env_steps(), lanes=len(seeds), limit_s=round(limit_s, 3),
                time=time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            )  # fmt: skip

    watch = StallWatch(out, on_stall=record_stall)
    try:
        with _StopFlag() as stop:
            while iterations < total_iterations:
                rows = min(chunk, total_iterations - iterations)
                start = time.perf_counter()
                with watch.chunk():
                    state, logs = seeded.train_chunk(state, rows, iterations)
                    logs = jax.device_get(logs)
                train_s += time.perf_counter() - start
                trained_steps += rows * per_iteration
                iterations += rows
                if keep_going_when_diverged:
                    for index, step in _first_nonfinite(logs, rows).items():
                        if diverged_at[index] is None:
                            diverged_at[index] = step
                            out(f"seed {seeds[index]} diverged at env step {step}; others go on")
                else:
                    _check_finite(logs, rows, seeds)
                counts = _log_chunk(
                    loggers,
                    logs,
                    rows,
                    steps_per_row=program.steps_per_log_row,
                    num_envs=num_envs,
                )
                episodes = [e + c for e, c in zip(episodes, counts, strict=True)]
                bar.update(min(env_steps(), run.total_steps) - bar.n)
                if train_s > 0:
                    # NaN until a seed has finished an episode (no empty-mean warning).
                    known = [r for r in (lg.recent_return for lg in loggers) if r == r]
                    recent = np.mean(known) if known else float("nan")
                    bar.set_postfix(sps=f"{trained_steps / train_s:,.0f}", ret=f"{recent:.1f}")
                if next_eval is not None and env_steps() >= next_eval:
                    next_eval = (env_steps() // eval_every + 1) * eval_every
                    if run.eval_episodes > 0 and iterations < total_iterations:
                        final_evals = run_eval()
                if env_steps() >= next_ckpt:
                    next_ckpt = (env_steps() // run.checkpoint_every + 1) * run.checkpoint_every
                    last_ckpt = save_checkpoint()
                # A signal to any process stops them all at the same chunk.
                if dist.any_process(stop.signal is not None):
                    last_ckpt = save_checkpoint()
                    by = stop.signal or "in another process"
                    raise Interrupted(
                        f"stopped by signal {by} at env step {env_steps()}; checkpoint "
                        f"{last_ckpt}; continue with --resume"
                    )
                if stop_after_steps is not None and env_steps() >= stop_after_steps:
                    break
        finished = iterations >= total_iterations
        sps = trained_steps / train_s if train_s > 0 else float("nan")
        for logger in loggers:
            if finished:
                logger.flush_learner(env_steps())
            if math.isfinite(sps):
                logger.scalar("train/sps", sps, env_steps())
        if finished and run.eval_episodes > 0:
            final_evals = run_eval()
        last_ckpt = save_checkpoint()
    finally:
        bar.close()
        for logger in loggers:
            logger.close()
    state_host = mesh_lib.fetch((state.updates,))
    result = JitTrainResult(
        run_dir=run_dir,
        seeds=seeds,
        env_steps=env_steps(),
        updates=[int(u) for u in state_host[0]],
        episodes=episodes,
        recent_returns=[lg.recent_return for lg in loggers],
        final_evals=final_evals,
        checkpoint=last_ckpt,
        sps=sps,
        compile_s=dict(seeded.compile_s),
        compile_wall_s=seeded.compile_wall_s,
        wall_s=time.perf_counter() - call_start,
        total_wall_s=earlier_wall_s + (time.perf_counter() - call_start),
        finished=finished,
        diverged_at=diverged_at,
        devices=int(seeded.mesh.size),
        mesh_shape={name: int(size) for name, size in seeded.mesh.shape.items()},
        processes=jax.process_count(),
        trace_counts=seeded.trace_counts,
    )
    if finished and main and not members:
        write_summary(run_dir, summary_dict(result, run))
    if finished and main:
        for member, lanes in zip(members or (), member_lanes, strict=True):
            own = member_result(result, lanes, Path(member.run.run_dir))
            # `program` names the shared folder, so that its time is counted once.
            summary = summary_dict(own, member.run) | {"program": str(run_dir.resolve())}
            write_summary(Path(member.run.run_dir), summary)
    return result


def member_result(result: JitTrainResult, lanes: Sequence[int], run_dir: Path) -> JitTrainResult:
    """The part of a sweep's `result` that belongs to the lanes `lanes` (one member's seeds)."""

    def pick(values):
        return [values[i] for i in lanes]

    return dataclasses.replace(
        result,
        run_dir=run_dir,
        seeds=tuple(pick(result.seeds)),
        updates=pick(result.updates),
        episodes=pick(result.episodes),
        recent_returns=pick(result.recent_returns),
        final_evals=pick(result.final_evals),
        diverged_at=pick(result.diverged_at),
        checkpoint=None,
    )


def _check_format(payload: dict, path: Path) -> None:
    """Refuse, by name, a checkpoint whose state layout this softeq does not read."""
    from softeq.adapters.agents import get_algorithm

    saved = int(payload.get("format", 1))
    if saved > JIT_CHECKPOINT_FORMAT:
        raise ckpt_lib.CheckpointError(
            f"{path} is a jitted checkpoint of format {saved}, newer than this softeq reads "
            f"({JIT_CHECKPOINT_FORMAT}); upgrade softeq"
        )
    algo = payload.get("algo")
    if saved < 2 and algo is not None and not get_algorithm(algo).on_policy:
        raise ckpt_lib.CheckpointError(
            f"{path} was written by an older softeq whose {algo} replay stored every "
            f"observation twice (jitted checkpoint format {saved}); this one reads format "
            f"{JIT_CHECKPOINT_FORMAT}: train the run again, or continue it with the softeq "
            "that wrote it"
        )


def _check_payload(payload: dict, path: Path, run: RunConfig, seeds, num_envs: int) -> None:
    _check_format(payload, path)
    if payload.get("algo") != run.algo or payload.get("env_id") != run.env_id:
        raise ckpt_lib.CheckpointError(
            f"{path} belongs to algo={payload.get('algo')!r} env={payload.get('env_id')!r}, "
            f"not algo={run.algo!r} env={run.env_id!r}"
        )
    if payload.get("driver") != "jit":
        raise ckpt_lib.CheckpointError(
            f"{path} was written by the host loop, not the jitted driver; resume it with "
            f"--driver host"
        )
    if [int(s) for s in payload.get("seeds", [])] != list(seeds):
        raise ckpt_lib.CheckpointError(
            f"{path} holds seeds {payload.get('seeds')}, not {list(seeds)}; resume with "
            f"--seeds {' '.join(map(str, payload.get('seeds', [])))}"
        )
    if int(payload["num_envs"]) != num_envs:
        raise ckpt_lib.CheckpointError(
            f"{path} was written with {payload['num_envs']} envs but this run uses "
            f"{num_envs}; resume with --num-envs {payload['num_envs']}"
        )


# --------------------------------------------------------------------------------------
# Evaluating a saved jitted run.
# --------------------------------------------------------------------------------------


def run_folder_of(path: str | os.PathLike) -> Path | None:
    """The run folder of a run folder, its `checkpoints/` folder or a checkpoint file."""
    p = Path(path)
    for candidate in (p, p.parent, p.parent.parent):
        if (candidate / CONFIG_FILENAME).is_file():
            return candidate
    return None


def is_jit_run(path: str | os.PathLike) -> bool:
    """Whether `path` (run folder, checkpoint folder or file) belongs to a jitted run."""
    folder = run_folder_of(path)
    saved = read_config_json(folder) if folder is not None else None
    return bool(saved) and saved.get("run", {}).get("driver") == "jit"


def evaluate_checkpoint(
    path: str | os.PathLike,
    *,
    episodes: int = 10,
    seed: int = 12345,
    policy: str | None = None,
    epsilon: float | None = None,
    max_episode_steps: int | None = None,
) -> dict[str, Any]:
    """`softeq.adapters.evaluate.evaluate_checkpoint` for a jitted run: every seed, one program.

    Each of the run's seeds plays `episodes` episodes on fresh env copies,
    keyed by `seed` (stream 1 + i of `seed` for the run's i-th seed), under
    the saved evaluation protocol unless overridden. The summary pools the
    episodes of all seeds; `per_seed` holds each seed's mean return.
    """
    if episodes < 1:
        raise ValueError(f"`episodes` must be >= 1, got {episodes!r}.")
    payload, ckpt_path = ckpt_lib.resolve_checkpoint(path)
    if payload.get("driver") != "jit":
        raise ckpt_lib.CheckpointError(f"{ckpt_path} was not written by the jitted driver")
    _check_format(payload, ckpt_path)
    run, algo_config = config_dicts_to_objects(payload["config"])
    overrides = {
        "eval_policy": policy,
        "eval_epsilon": epsilon,
        "eval_max_episode_steps": max_episode_steps,
    }
    run = run.replace(
        eval_episodes=episodes, **{k: v for k, v in overrides.items() if v is not None}
    )
    protocol = resolve_eval_protocol(run)
    seeds = resolve_seeds(run)
    program = build_program(run, algo_config)
    devices = ale_xla.program_devices(program, None)
    seeded = SeededProgram(program, seeds, chunk_length=1, devices=devices)
    state = seeded.restore(payload["state"])
    keys = np.stack([np.asarray(stream_key(int(seed), 1 + i)) for i in range(len(seeds))])
    returns, lengths, capped = jax.device_get(seeded.evaluate(state.learner.params, 0, keys=keys))
    return {
        "return_mean": float(returns.mean()),
        "return_std": float(returns.std()),
        "length_mean": float(lengths.mean()),
        "episodes": int(returns.size),
        "capped": int(capped.sum()),
        "returns": returns.reshape(-1),
        "per_seed": {int(s): float(returns[i].mean()) for i, s in enumerate(seeds)},
        "policy": protocol.policy,
        "epsilon": protocol.epsilon,
        "max_episode_steps": protocol.max_episode_steps,
        "checkpoint": str(ckpt_path),
        "env_steps": int(payload["loop"]["env_steps"]),
        "algo": run.algo,
        "env_id": run.env_id,
    }
