"""The `softeq` command line: `train`, `compare`, `evaluate`, `plot` and `demo`.

`--backend gymnax|gymnasium|ale|auto` says where the env comes from and
`--driver jit|host|auto` how the run is driven: "jit" runs the whole loop as
one XLA program (`softeq.adapters.jit_loop`, gymnax envs: CartPole-v1,
Acrobot-v1, the MinAtar games), "host" the Python loop (`softeq.adapters.loop`,
gymnasium and ALE envs); "auto" picks jit wherever the env runs inside a
program. `train --seeds S [S ...]` trains several seeds in one jitted program,
one folder `seed-<s>` each, and writes `summary.json`.

Every algorithm hyperparameter is a flag generated from the algorithms' frozen
config dataclasses (`--temperature`, `--entropy naive|proper`,
`--value-weight`, `--target hard|soft-kl|soft-entropy`, `--n-step`, ...);
unset flags take the per-environment defaults of
`softeq.adapters.agents.default_config`. The jitted driver changes three of
them unless they are given: a learning rate decays linearly to 0 over
`--total-steps` (`--lr-decay-steps`), and it evaluates and checkpoints every
50 000 env steps (the host loop's 25 000 / 10 000 would cost more in host
visits than the program spends training in between).

Bad arguments end the program with exit status 2 and one line on stderr that
names the flag, the value and what is allowed. Other exit statuses: 1 a
runtime error (one line, no traceback; set SOFTEQ_DEBUG=1 for the traceback),
3 the learner diverged (non-finite loss), 75 a jitted program stalled (no
progress for `SOFTEQ_STALL_MINUTES`, see `softeq.adapters.stall`; continue with
`--resume`), 130 interrupted (a checkpoint was saved; continue with `--resume`).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from softeq.adapters.atomic_file import STAGING_PREFIX
from softeq.adapters.run_config import (
    ATARI_EVAL_MAX_EPISODE_STEPS,
    CONFIG_FILENAME,
    EVAL_POLICIES,
    RESUMABLE_CHANGES,
    ConfigError,
    FieldSpec,
    RunConfig,
    algo_field_specs,
    build_algo_config,
    check_batch_compatibility,
    check_env,
    config_differences,
    configs_to_dict,
    default_run_dir,
    read_config_json,
    resolve_driver,
    resolve_eval_protocol,
    resolve_num_envs,
    validate_eval_settings,
)
from softeq.adapters.stall import STALL_RECORD_FILENAME

EXIT_USAGE = 2
EXIT_DIVERGED = 3
EXIT_INTERRUPTED = 130

#: Files and folders a run writes; `--force` removes exactly these.
RUN_ARTIFACTS = (
    "config.json",
    "metrics.csv",
    "checkpoints",
    "tb",
    "videos",
    "train.log",
    "training.png",
    "summary.json",
    STALL_RECORD_FILENAME,
)
#: Per-seed folders of a jitted run (`seed-<s>`); `--force` removes them too.
SEED_FOLDER_PREFIX = "seed-"
#: Checkpoint and evaluation intervals (env steps per seed) of a jitted run when the
#: flags are not given: the host loop's 10k / 25k would cost more in host visits
#: than the program spends training in between.
JIT_CHECKPOINT_EVERY = 50_000
JIT_EVAL_EVERY = 50_000


class UsageError(Exception):
    """A bad command-line argument (exit status 2)."""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line, without the usage block."""

    def error(self, message: str):
        raise UsageError(f"{self.prog}: error: {message} (see `{self.prog} --help`)")


def _algo_specs() -> dict[str, list[FieldSpec]]:
    from softeq.adapters import agents

    return {algo: algo_field_specs(agents.config_for(algo)) for algo in agents.ALGORITHMS}


def _merged_field_specs() -> dict[str, tuple[FieldSpec, list[str]]]:
    """Each hyperparameter name → (its spec, the algorithms that have it)."""
    merged: dict[str, tuple[FieldSpec, list[str]]] = {}
    for algo, specs in _algo_specs().items():
        for spec in specs:
            if spec.name in merged:
                merged[spec.name][1].append(algo)
            else:
                merged[spec.name] = (spec, [algo])
    return merged


def _add_algo_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "algorithm hyperparameters (default: the algorithm's per-environment default; "
        "on the jitted driver a learning rate decays linearly to 0 over --total-steps)"
    )
    for name, (spec, algos) in _merged_field_specs().items():
        text = spec.help or name.replace("_", " ")
        text += f" [{', '.join(algos)}]"
        kwargs: dict[str, Any] = {"dest": "algo__" + name, "default": argparse.SUPPRESS}
        if spec.type is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["metavar"] = "|".join(spec.choices) if spec.choices else spec.type.__name__
            kwargs["type"] = str  # converted and validated by parse_field_value
        group.add_argument(spec.flag, help=text, **kwargs)


def _add_run_flags(parser: argparse.ArgumentParser, *, compare: bool = False) -> None:
    d = RunConfig()
    g = parser.add_argument_group("run")

    def add(flag: str, field: str, metavar: str, text: str) -> None:
        g.add_argument(
            flag, dest="run__" + field, default=argparse.SUPPRESS, metavar=metavar, help=text
        )

    add(
        "--env",
        "env_id",
        "ENV",
        f"CartPole-v1, Acrobot-v1, <Game>-MinAtar or ALE/<Game>-v5 ({d.env_id})",
    )
    if not compare:
        from softeq.adapters.agents import ALGORITHMS

        add("--algo", "algo", "ALGO", f"{'|'.join(ALGORITHMS)} ({d.algo})")
        add("--seed", "seed", "INT", f"seed of agent and envs ({d.seed})")
        g.add_argument(
            "--seeds",
            dest="run__seeds",
            nargs="+",
            default=argparse.SUPPRESS,
            metavar="S",
            help="several seeds trained together in one jitted program, one folder seed-<s> "
            "each (instead of --seed)",
        )
    add("--num-envs", "num_envs", "INT", "parallel envs (default: the algorithm's per-env default)")
    add("--total-steps", "total_steps", "INT", f"env-step budget, all envs ({d.total_steps})")
    add(
        "--eval-every",
        "eval_every",
        "INT",
        f"env steps; 0 = only at the end ({d.eval_every}; {JIT_EVAL_EVERY} on the jitted driver)",
    )
    add("--eval-episodes", "eval_episodes", "INT", f"episodes per evaluation ({d.eval_episodes})")
    _add_eval_protocol_flags(g, d)
    add(
        "--checkpoint-every",
        "checkpoint_every",
        "INT",
        f"env steps ({d.checkpoint_every}; {JIT_CHECKPOINT_EVERY} on the jitted driver)",
    )
    add("--keep-checkpoints", "keep_checkpoints", "INT", f"newest kept ({d.keep_checkpoints})")
    add("--log-every", "log_every", "INT", f"learner updates per CSV row ({d.log_every})")
    add(
        "--torso",
        "torso",
        "auto|nature|minatar|mlp",
        "network torso (auto: nature for Atari, minatar for MinAtar, mlp otherwise; "
        "mlp flattens frames)",
    )
    add(
        "--backend",
        "backend",
        "auto|ale|gymnasium|gymnax",
        "where the env comes from (auto: gymnax for the ids it has, ALE for ALE/...)",
    )
    add(
        "--driver",
        "driver",
        "auto|jit|host",
        "jit: the whole run as one XLA program (gymnax envs; ALE games through ale_py's "
        "XLA interface); host: the Python loop; auto: jit for gymnax envs, host for the rest",
    )
    if not compare:
        add(
            "--run-dir",
            "run_dir",
            "DIR",
            "output folder (default runs/<env>-<algo>-seed<k>-<time>, with --seeds "
            "runs/<env>-<algo>-seeds<k>-<l>-...-<time>)",
        )
        g.add_argument(
            "--video",
            dest="run__video",
            default=argparse.SUPPRESS,
            action="store_true",
            help="record one evaluation episode to mp4 at each evaluation (jitted: per seed)",
        )
        g.add_argument(
            "--no-progress",
            dest="run__progress",
            default=argparse.SUPPRESS,
            action="store_false",
            help="no progress bar",
        )


def _add_eval_protocol_flags(group: Any, d: RunConfig) -> None:
    """`--eval-policy`, `--eval-epsilon`, `--eval-max-episode-steps` (train, compare, evaluate)."""
    group.add_argument(
        "--eval-policy",
        dest="run__eval_policy",
        default=argparse.SUPPRESS,
        metavar="|".join(EVAL_POLICIES),
        help="how evaluation acts; auto: Atari a2c/soft-q sample from the learned policy, "
        f"Atari dqn is epsilon-greedy, classic control is greedy ({d.eval_policy})",
    )
    group.add_argument(
        "--eval-epsilon",
        dest="run__eval_epsilon",
        default=argparse.SUPPRESS,
        metavar="FLOAT",
        help=f"epsilon of --eval-policy epsilon, as in Mnih et al. 2015 ({d.eval_epsilon})",
    )
    group.add_argument(
        "--eval-max-episode-steps",
        dest="run__eval_max_episode_steps",
        default=argparse.SUPPRESS,
        metavar="INT",
        help="an evaluation episode ends after this many agent steps; 0 = auto: "
        f"{ATARI_EVAL_MAX_EPISODE_STEPS} for Atari (5 minutes of play), none otherwise "
        f"({d.eval_max_episode_steps})",
    )


#: Float-valued run fields given as text on the command line.
_FLOAT_RUN_FIELDS = {"eval_epsilon"}


def _parse_float(flag: str, text: Any) -> float:
    if isinstance(text, int | float) and not isinstance(text, bool):
        return float(text)
    try:
        return float(text)
    except (TypeError, ValueError):
        raise ConfigError(flag, text, "must be a number") from None


_INT_RUN_FIELDS = {
    "seed",
    "num_envs",
    "total_steps",
    "eval_every",
    "eval_episodes",
    "checkpoint_every",
    "keep_checkpoints",
    "log_every",
    "eval_max_episode_steps",
}


def _parse_int(flag: str, text: Any) -> int:
    if isinstance(text, int):
        return text
    try:
        value = float(text) if any(c in str(text) for c in "eE.") else int(text)
    except ValueError:
        raise ConfigError(flag, text, "must be an integer") from None
    if isinstance(value, float):
        if not value.is_integer():
            raise ConfigError(flag, text, "must be an integer")
        value = int(value)
    return value


def _run_overrides(ns: argparse.Namespace) -> dict[str, Any]:
    out = {}
    for key, value in vars(ns).items():
        if key.startswith("run__"):
            name = key[5:]
            if name in _INT_RUN_FIELDS:
                value = _parse_int("--" + name.replace("_", "-"), value)
            elif name == "seeds":
                value = tuple(_parse_int("--seeds", s) for s in value)
            elif name in _FLOAT_RUN_FIELDS:
                value = _parse_float("--" + name.replace("_", "-"), value)
            out[name] = value
    return out


def _algo_overrides(ns: argparse.Namespace) -> dict[str, Any]:
    return {k[6:]: v for k, v in vars(ns).items() if k.startswith("algo__")}


def _check_algo_flags_apply(algo: str, overrides: dict[str, Any]) -> None:
    merged = _merged_field_specs()
    for name in overrides:
        spec, algos = merged[name]
        if algo not in algos:
            raise ConfigError(
                spec.flag, overrides[name], f"does not apply to --algo {algo} (only {algos})"
            )


def make_configs(
    run_overrides: dict[str, Any], algo_overrides: dict[str, Any]
) -> tuple[RunConfig, Any]:
    """Validated `(RunConfig, algo_config)` from flag values (exit-2 errors as ConfigError)."""
    from softeq.adapters.run_config import check_algo

    algo = run_overrides.get("algo", RunConfig().algo)
    check_algo(algo)
    env_id = run_overrides.get("env_id", RunConfig().env_id)
    check_env(env_id)
    _check_algo_flags_apply(algo, algo_overrides)
    try:
        run = RunConfig(**run_overrides)
    except TypeError as exc:
        raise ConfigError("run", run_overrides, str(exc)) from None
    # The saved run names the driver it resolved to, so that a resumed run is driven
    # as it started even if "auto" comes to mean something else.
    driver = resolve_driver(run)
    run = run.replace(driver=driver)
    if driver == "jit":
        run, algo_overrides = _jit_defaults(run, run_overrides, algo_overrides)
    algo_config = build_algo_config(algo, env_id, algo_overrides)
    run = run.replace(num_envs=resolve_num_envs(run, algo_config))
    if driver == "host":  # the jitted driver lays seeds, not envs, over devices
        check_batch_compatibility(run.num_envs, algo, algo_config)
    return run, algo_config


def _jit_defaults(
    run: RunConfig, run_overrides: dict[str, Any], algo_overrides: dict[str, Any]
) -> tuple[RunConfig, dict[str, Any]]:
    """The jitted driver's defaults for what the flags leave unset."""
    from softeq.adapters.jit_driver import jit_default_overrides

    changes: dict[str, Any] = {}
    if "checkpoint_every" not in run_overrides:
        changes["checkpoint_every"] = JIT_CHECKPOINT_EVERY
    if "eval_every" not in run_overrides:
        changes["eval_every"] = JIT_EVAL_EVERY
    defaults = jit_default_overrides(run.algo, run.env_id, run.total_steps)
    return run.replace(**changes), {**defaults, **algo_overrides}


def _prepare_run_dir(run: RunConfig, algo_config: Any, *, resume: bool, force: bool) -> RunConfig:
    """Resolve the run folder and refuse to mix two different runs in one folder."""
    if not run.run_dir:
        if resume:
            raise ConfigError("--resume", True, "needs --run-dir naming the run to continue")
        run = run.replace(run_dir=default_run_dir(run))
    path = Path(run.run_dir)
    saved = read_config_json(path)
    if path.exists() and not path.is_dir():
        raise ConfigError("--run-dir", str(path), "exists and is not a folder")
    if saved is None:
        if resume:
            # A folder with config.json but no checkpoint yet (killed before the first
            # one) is resumable: train() then starts from scratch.
            raise ConfigError(
                "--resume",
                str(path),
                f"holds no softeq run to continue (no {CONFIG_FILENAME}); drop --resume to "
                f"start a new run",
            )
        if path.is_dir() and any(path.iterdir()) and not force:
            raise ConfigError(
                "--run-dir",
                str(path),
                "is a non-empty folder that holds no softeq run; choose another folder",
            )
        return run
    if resume:
        ignore = {*RESUMABLE_CHANGES, "run_dir"}
        diffs = config_differences(saved, configs_to_dict(run, algo_config), ignore=ignore)
        if diffs:
            raise ConfigError(
                "--resume",
                str(path),
                "the saved run has a different configuration in " + ", ".join(diffs),
            )
        return run
    if force:
        seed_folders = [p.name for p in path.glob(SEED_FOLDER_PREFIX + "*") if p.is_dir()]
        # Staging files a killed write left (`atomic_file`) go with the file they were for.
        staged = [p.name for a in RUN_ARTIFACTS for p in path.glob(f"{STAGING_PREFIX}{a}-*")]
        for name in (*RUN_ARTIFACTS, *seed_folders, *staged):
            target = path / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
        return run
    diffs = config_differences(
        saved, configs_to_dict(run, algo_config), ignore={"run_dir", "progress", "video"}
    )
    what = "a different run (" + ", ".join(diffs) + ")" if diffs else "this run"
    raise ConfigError(
        "--run-dir",
        str(path),
        f"already holds {what}; pass --resume to continue it or --force to overwrite it",
    )


# ------------------------------------------------------------------ subcommand: train
def _join_processes(ns: argparse.Namespace) -> bool:
    """Joins `jax.distributed` when a multi-process flag is given; True if it did.

    Runs before any other JAX work, as `jax.distributed.initialize` requires.
    """
    flags = {
        "--coordinator-address": ns.coordinator_address,
        "--num-processes": ns.num_processes,
        "--process-id": ns.process_id,
    }
    if not ns.distributed and all(v is None for v in flags.values()):
        return False
    if ns.num_processes is not None and ns.num_processes < 1:
        raise ConfigError("--num-processes", ns.num_processes, "allowed: >= 1")
    if ns.process_id is not None and not (
        0 <= ns.process_id < (ns.num_processes if ns.num_processes is not None else 2**31)
    ):
        raise ConfigError(
            "--process-id", ns.process_id, f"allowed: 0 .. {(ns.num_processes or 2**31) - 1}"
        )
    from softeq.adapters import distributed

    try:
        distributed.initialize(
            coordinator_address=ns.coordinator_address,
            num_processes=ns.num_processes,
            process_id=ns.process_id,
        )
    except ValueError as exc:
        raise ConfigError("--coordinator-address", ns.coordinator_address, str(exc)) from None
    return True


def cmd_train(ns: argparse.Namespace) -> int:
    from softeq.adapters import loop

    # `jax.distributed` must be joined before anything starts a JAX backend.
    multi_process = _join_processes(ns)
    run_over = _run_overrides(ns)
    algo_over = _algo_overrides(ns)
    if ns.resume and "run_dir" in run_over:
        saved = read_config_json(run_over["run_dir"])
        if saved is not None:
            # Flags not given on the command line come from the saved run.
            merged_run = dict(saved["run"])
            merged_run.setdefault("driver", "host")  # saved before the jitted driver existed
            merged_run.update(run_over)
            run_over = merged_run
            saved_algo = dict(saved["algo"])
            saved_algo.update(algo_over)
            algo_over = {
                k: v
                for k, v in saved_algo.items()
                if k in {s.name for s in _algo_specs()[run_over["algo"]]}
            }
    if ns.stop_after is not None and ns.stop_after <= 0:
        raise ConfigError("--stop-after", ns.stop_after, "allowed: > 0")
    run, algo_config = make_configs(run_over, algo_over)
    if multi_process:
        return _train_multi_process(run, algo_config, ns)
    if run.video and loop.video_writer_available() is None:
        raise ConfigError("--video", True, loop.VIDEO_MISSING_MESSAGE)
    run = _prepare_run_dir(run, algo_config, resume=ns.resume, force=ns.force)
    if resolve_driver(run) == "jit":
        return _train_jit(run, algo_config, resume=ns.resume, stop_after=ns.stop_after)
    result = loop.train(run, algo_config, resume=ns.resume, stop_after_steps=ns.stop_after)
    print(f"env steps: {result.env_steps}  updates: {result.updates}  episodes: {result.episodes}")
    print(f"recent training return (last 100 episodes): {result.recent_return:.2f}")
    if result.final_eval is not None:
        fe = result.final_eval
        print(
            f"evaluation return: {fe['return_mean']:.2f} ± {fe['return_std']:.2f} "
            f"({int(fe['episodes'])} episodes, {_protocol_text(resolve_eval_protocol(run))}"
            f"{_capped_text(fe.get('capped', 0))})"
        )
    print(
        f"steps per second: {result.sps:,.0f} (after the first update, without evaluation); "
        f"wall time {result.wall_s:.1f} s"
    )
    print(f"config:     {Path(run.run_dir) / CONFIG_FILENAME}")
    print(f"metrics:    {Path(run.run_dir) / 'metrics.csv'}")
    print(f"checkpoint: {result.checkpoint}")
    if not result.finished:
        print(f"stopped at env step {result.env_steps}; continue with --resume")
    return 0


def _train_multi_process(run: RunConfig, algo_config: Any, ns: argparse.Namespace) -> int:
    """`train` as one of several processes: one learner over every process's devices."""
    import jax

    from softeq.adapters import distributed

    if resolve_driver(run) != "jit":
        raise ConfigError(
            "--driver",
            run.driver,
            "several processes train one learner only with the jitted driver (--driver jit, "
            "gymnax envs)",
        )
    if not run.run_dir:
        raise ConfigError(
            "--run-dir",
            None,
            "must be given with several processes (the same folder in every process)",
        )
    # Process 0 checks and prepares the run folder; the others wait until it has.
    if distributed.is_main_process():
        run = _prepare_run_dir(run, algo_config, resume=ns.resume, force=ns.force)
    distributed.barrier("softeq-run-folder-ready")
    status = _train_jit(run, algo_config, resume=ns.resume, stop_after=ns.stop_after)
    jax.distributed.shutdown()
    return status


def _train_jit(run: RunConfig, algo_config: Any, *, resume: bool, stop_after: int | None) -> int:
    """`train` with the jitted driver: every seed in one program."""
    from softeq.adapters import jit_loop

    result = jit_loop.train(run, algo_config, resume=resume, stop_after_steps=stop_after)
    protocol = _protocol_text(resolve_eval_protocol(run))
    print(f"env steps per seed: {result.env_steps}  ({len(result.seeds)} seed(s) in one program)")
    for i, seed in enumerate(result.seeds):
        line = (
            f"seed {seed}: recent training return {result.recent_returns[i]:.2f} "
            f"({result.episodes[i]} episodes)"
        )
        fe = result.final_evals[i]
        if fe is not None:
            line += (
                f"; evaluation return {fe['return_mean']:.2f} ± {fe['return_std']:.2f} "
                f"({int(fe['episodes'])} episodes, {protocol}{_capped_text(fe.get('capped', 0))})"
            )
        print(line)
    print(
        f"steps per second: {result.sps:,.0f} per seed, {result.total_sps:,.0f} in all "
        f"(training only; compilation {result.compile_wall_s:.1f} s); "
        f"wall time {result.wall_s:.1f} s"
    )
    run_dir = Path(run.run_dir)
    print(f"config:     {run_dir / CONFIG_FILENAME}")
    print(f"metrics:    {run_dir / (jit_loop.seed_dirname(result.seeds[0]) + '/metrics.csv')}")
    print(f"checkpoint: {result.checkpoint}")
    if result.finished:
        print(f"summary:    {run_dir / jit_loop.SUMMARY_FILENAME}")
    else:
        print(f"stopped at env step {result.env_steps}; continue with --resume")
    return 0


# ------------------------------------------------------------------ subcommand: compare
def cmd_compare(ns: argparse.Namespace) -> int:
    from softeq.adapters import compare

    run_over = _run_overrides(ns)
    algo_over = _algo_overrides(ns)
    specs = [compare.parse_algo_spec(text, flag="--algos") for text in ns.algos]
    if ns.workers < 1:
        raise ConfigError("--workers", ns.workers, "allowed: >= 1")
    seeds = [_parse_int("--seeds", s) for s in ns.seeds]
    if not seeds:
        raise ConfigError("--seeds", seeds, "give at least one seed")
    result = compare.run_compare(
        specs,
        seeds=seeds,
        run_overrides=run_over,
        shared_algo_overrides=algo_over,
        out_dir=ns.out,
        workers=ns.workers,
        force=ns.force,
        resume=ns.resume,
    )
    compare.print_result(result)
    return 0


# ------------------------------------------------------------------ subcommand: evaluate
def cmd_evaluate(ns: argparse.Namespace) -> int:
    from softeq.adapters import evaluate

    if ns.episodes < 1:
        raise ConfigError("--episodes", ns.episodes, "allowed: >= 1")
    if not Path(ns.path).exists():
        raise ConfigError("path", ns.path, "must be a run folder or a checkpoint file")
    protocol = _run_overrides(ns)  # only the --eval-* flags are run flags here
    defaults = RunConfig()
    validate_eval_settings(  # before the checkpoint is loaded; the algo is checked after
        protocol.get("eval_policy", defaults.eval_policy),
        protocol.get("eval_epsilon", defaults.eval_epsilon),
        protocol.get("eval_max_episode_steps", defaults.eval_max_episode_steps),
    )
    summary = evaluate.evaluate_checkpoint(
        ns.path,
        episodes=ns.episodes,
        seed=ns.seed,
        policy=protocol.get("eval_policy"),
        epsilon=protocol.get("eval_epsilon"),
        max_episode_steps=protocol.get("eval_max_episode_steps"),
    )
    print(f"checkpoint: {summary['checkpoint']} (env step {summary['env_steps']})")
    used = (summary["policy"], summary["epsilon"], summary["max_episode_steps"])
    print(
        f"{summary['algo']} on {summary['env_id']}: return {summary['return_mean']:.2f} ± "
        f"{summary['return_std']:.2f} over {summary['episodes']} episodes "
        f"({_protocol_text(used)}{_capped_text(summary['capped'])}, seed {ns.seed})"
    )
    return 0


def _protocol_text(protocol: Sequence[Any]) -> str:
    """`(policy, epsilon, max_episode_steps)` in words: "epsilon 0.05 policy, cap 4500 steps"."""
    policy, epsilon, cap = protocol
    text = f"epsilon {epsilon:g} policy" if policy == "epsilon" else f"{policy} policy"
    return text + (f", cap {cap} steps" if cap > 0 else "")


def _capped_text(capped: float) -> str:
    return f", {int(capped)} capped" if capped else ""


# ------------------------------------------------------------------ subcommand: plot
def cmd_plot(ns: argparse.Namespace) -> int:
    from softeq.adapters import plots

    if not Path(ns.path).is_dir():
        raise ConfigError("path", ns.path, "must be a run folder or a compare folder")
    for p in plots.plot_folder(ns.path):
        print(p)
    return 0


# ------------------------------------------------------------------ subcommand: demo
def cmd_demo(ns: argparse.Namespace) -> int:
    from softeq.adapters import demo

    if ns.total_steps is not None and ns.total_steps <= 0:
        raise ConfigError("--total-steps", ns.total_steps, "allowed: > 0")
    return demo.run_demo(
        out_dir=ns.out,
        seeds=ns.seeds,
        total_steps=ns.total_steps,
        table_only=ns.table_only,
    )


# ------------------------------------------------------------------ subcommand: reproduce
def _experiment_help() -> str:
    from softeq.adapters.reproduce import EXPERIMENTS

    return "; ".join(f"{e.name}: {e.title} ({e.section})" for e in EXPERIMENTS.values())


def cmd_reproduce(ns: argparse.Namespace) -> int:
    from softeq.adapters import reproduce, reproduce_report

    plan = reproduce.make_plan(
        ns.experiment,
        suite=ns.suite,
        games=ns.games,
        seeds=ns.seeds,
        total_steps=ns.total_steps,
        out_dir=ns.out,
        report_dir=ns.report_dir,
    )
    if ns.status:
        for line in reproduce_report.progress_lines(plan, max_lanes=ns.max_lanes):
            print(line)
        return 0
    if not ns.report_only:
        reproduce.run_plan(plan, workers=ns.workers, max_lanes=ns.max_lanes)
    files = reproduce_report.write_report(plan)
    print()
    print(next(p for p in files if p.name == "verdicts.md").read_text())
    for path in files:
        print(f"wrote {path}")
    return 0


def _add_distributed_flags(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group(
        "several processes (one learner over every host's devices; jitted driver)",
        "Start one process per host (GPU: per host or per GPU) with the same flags and "
        "--run-dir, and a distinct --process-id. Omitted values come from JAX: the address "
        "from JAX_COORDINATOR_ADDRESS, all three from Slurm, Open MPI, Kubernetes or a Cloud "
        "TPU pod slice. Process 0 writes the run folder.",
    )
    g.add_argument(
        "--coordinator-address",
        default=None,
        metavar="HOST:PORT",
        help="process 0's address and a free port, the same in every process",
    )
    g.add_argument("--num-processes", type=int, default=None, metavar="P", help="processes in all")
    g.add_argument(
        "--process-id", type=int, default=None, metavar="I", help="this process, 0 .. P-1"
    )
    g.add_argument(
        "--distributed",
        action="store_true",
        help="join even with none of the three flags (JAX detects the cluster: TPU pod "
        "slice, Slurm, Open MPI, Kubernetes)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="softeq",
        description="Train, compare and evaluate the agents of 'Equivalence Between Policy "
        "Gradients and Soft Q-Learning' (arXiv:1704.06440).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser("train", help="train one agent")
    _add_run_flags(p)
    p.add_argument("--resume", action="store_true", help="continue the run in --run-dir")
    p.add_argument("--force", action="store_true", help="overwrite the run in --run-dir")
    p.add_argument(
        "--stop-after",
        type=int,
        default=None,
        metavar="STEPS",
        help="stop with a checkpoint after this many env steps (at the end of the rollout "
        "in progress; continue with --resume)",
    )
    _add_distributed_flags(p)
    _add_algo_flags(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("compare", help="train several algorithm specs over several seeds")
    p.add_argument(
        "--algos",
        nargs="+",
        default=["a2c", "soft-q"],
        help="specs: ALGO or ALGO:field=value,field=value (e.g. a2c:entropy=naive)",
    )
    p.add_argument("--seeds", nargs="+", default=["0", "1", "2"])
    p.add_argument(
        "--workers",
        type=int,
        default=2,
        help="jitted programs or host-loop runs trained side by side, each in a process of "
        "its own (2); 1 trains them one after the other in this process",
    )
    p.add_argument(
        "--run-dir",
        "--out",
        dest="out",
        default=None,
        metavar="DIR",
        help="output folder, as train's --run-dir (default runs/compare-<time>)",
    )
    p.add_argument("--force", action="store_true", help="overwrite an existing compare folder")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the comparison in --run-dir (the same command): finished runs are kept, "
        "interrupted ones continue from their checkpoints",
    )
    _add_run_flags(p, compare=True)
    _add_algo_flags(p)
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("evaluate", help="run a saved agent for N episodes")
    p.add_argument("path", help="run folder or checkpoint file")
    p.add_argument("--episodes", type=int, default=10)
    p.add_argument("--seed", type=int, default=12345)
    _add_eval_protocol_flags(
        p.add_argument_group("evaluation protocol (default: the saved run's)"), RunConfig()
    )
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("plot", help="redraw the figures of a run or compare folder")
    p.add_argument("path", help="run folder or compare folder")
    p.set_defaults(func=cmd_plot)

    p = sub.add_parser(
        "reproduce",
        help="run one of the paper's experiments and report it with statistics",
        description="Train every variant of EXPERIMENT on every game of the suite over the "
        "seeds (the seeds of variants that differ only in sweepable hyperparameters share one "
        "jitted program), then write scores, learning "
        "curves, aggregates with bootstrap intervals and a verdict per claim of the paper. "
        "Resumable: finished runs are kept and a rerun does only what is left.",
    )
    p.add_argument("experiment", metavar="EXPERIMENT", help=_experiment_help())
    p.add_argument("--suite", default="classic", help="classic | minatar | atari (classic)")
    p.add_argument("--games", nargs="+", default=None, help="a subset of the suite's games")
    p.add_argument(
        "--seeds", nargs="+", type=int, default=None, help="(the suite's default: 10/3/2)"
    )
    p.add_argument(
        "--total-steps", type=int, default=None, help="env steps per run (the suite's budget)"
    )
    p.add_argument("--out", default="runs/reproduce", help="output folder (runs/reproduce)")
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="programs run side by side in processes of their own (1); on a 2-core CPU two "
        "DQN programs at once gave 7%% more throughput than one after the other",
    )
    p.add_argument(
        "--max-lanes",
        type=int,
        default=None,
        help="at most this many runs (variants × seeds) in one jitted program not yet "
        "checkpointed (default: all that can share one); a smaller program is the way "
        "round a program that stalls in XLA's CPU runtime",
    )
    p.add_argument(
        "--report-only", action="store_true", help="redraw the report from the finished runs"
    )
    p.add_argument(
        "--status",
        action="store_true",
        help="show what is finished and what is left (each unfinished program's newest "
        "checkpoint, an estimate of the time left) and exit; runs and writes nothing",
    )
    p.add_argument(
        "--report-dir",
        default=None,
        help="where the report and its run cards go (OUT/EXPERIMENT/SUITE/report); a run "
        "with a card there counts as finished even where its run folder is gone",
    )
    p.set_defaults(func=cmd_reproduce)

    p = sub.add_parser(
        "demo", help="equivalence table, then a2c vs soft-q on CartPole-v1 (5 seeds, jitted)"
    )
    p.add_argument("--out", default=None, help="output folder (default runs/demo-<time>)")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    p.add_argument("--total-steps", type=int, default=None, help="override the demo budget")
    p.add_argument("--table-only", action="store_true", help="print the table and stop")
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `softeq` console script; returns the exit status."""
    from softeq.adapters.checkpoint import CheckpointError

    debug = bool(os.environ.get("SOFTEQ_DEBUG"))
    try:
        parser = build_parser()
        ns = parser.parse_args(argv)
        return int(ns.func(ns) or 0)
    except UsageError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_USAGE
    except ConfigError as exc:
        command = (argv if argv is not None else sys.argv[1:])[:1]
        print(f"softeq {' '.join(command)}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("softeq: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:
        from softeq.adapters.loop import Interrupted, NonFiniteError

        if debug:
            raise
        if isinstance(exc, NonFiniteError):
            print(f"softeq: error: {exc}", file=sys.stderr)
            return EXIT_DIVERGED
        if isinstance(exc, Interrupted):
            print(f"softeq: {exc}", file=sys.stderr)
            return EXIT_INTERRUPTED
        if isinstance(exc, CheckpointError | FileNotFoundError):
            print(f"softeq: error: {exc}", file=sys.stderr)
            return 1
        print(f"softeq: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())


__all__ = ["build_parser", "main", "make_configs"]
