"""Compare algorithm specs over seeds: parallel training runs, curves, summary table.

A spec is an algorithm name with optional hyperparameter overrides:
`a2c`, `soft-q`, `a2c:entropy=naive`, `dqn:target=soft-entropy,n_step=5`.
`run_compare` trains every (spec, seed) pair, each into its own run folder.
Where the env runs inside a program (gymnax: CartPole-v1, Acrobot-v1, the
MinAtar games; driver "jit"), all seeds of one spec are one jitted program
(`softeq.adapters.jit_loop.train`), `workers` programs side by side, each in a
worker process of its own (one after the other in this process with
`workers=1`); specs of one algorithm that differ only in sweepable
hyperparameters (`softeq.adapters.sweep`: temperature, value_weight, DQN's
target) share one program whose lanes are spec × seed, compiled once;
host-loop envs (ALE, gymnasium) train one run per worker process.
The compare folder then holds:

    compare.json          manifest (env, specs, seeds, run folders)
    runs/<spec>/seed<k>/  one ordinary run folder per pair (host loop)
    runs/<spec>/seed-<k>/ the same, inside the spec's jitted run folder
    programs/<name>/      a program shared by several specs: its log and checkpoints
    learning_curves.png   episode return vs env steps, mean ± std over seeds
    grad_cosine.png       soft-q's cos(∇ soft-Q loss, ∇ A2C loss) vs env steps
    summary.md, summary.csv

`resume=True` (`softeq compare --resume`) continues an interrupted comparison
in the same folder: finished programs and runs are kept (read back, not
redone), interrupted ones continue from their newest checkpoint, and a folder
started with other specs, seeds or settings is refused.

"Final return" of a run is the mean raw return of its last 100 training
episodes; "final eval" is the evaluation at the end of the run. The
cosine statistics pool every logged `grad_cosine` value of every seed.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import re
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from softeq.adapters.logger import read_metrics
from softeq.adapters.plots import COMPARE_MANIFEST, compare_groups, plot_compare
from softeq.adapters.run_config import (
    ConfigError,
    RunConfig,
    algo_field_specs,
    build_algo_config,
    check_algo,
    check_batch_compatibility,
    check_env,
    parse_field_value,
    resolve_driver,
    resolve_num_envs,
    resolve_seeds,
)

SUMMARY_MD = "summary.md"
SUMMARY_CSV = "summary.csv"
PROGRAMS_DIRNAME = "programs"
FINAL_EPISODES = 100


@dataclasses.dataclass(frozen=True)
class AlgoSpec:
    """One line of a comparison: an algorithm and its hyperparameter overrides."""

    label: str
    algo: str
    overrides: tuple[tuple[str, Any], ...] = ()

    @property
    def folder(self) -> str:
        return re.sub(r"[^A-Za-z0-9._=-]+", "_", self.label.replace(":", "-"))


def parse_algo_spec(text: str, *, flag: str = "--algos") -> AlgoSpec:
    """Parse `ALGO` or `ALGO:field=value[,field=value...]` (field names with - or _)."""
    from softeq.adapters import agents

    algo, _, rest = text.partition(":")
    algo = algo.strip()
    if algo not in agents.ALGORITHMS:
        raise ConfigError(flag, text, "algorithm must be one of " + "|".join(agents.ALGORITHMS))
    specs = {s.name: s for s in algo_field_specs(agents.config_for(algo))}
    overrides = []
    for item in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not eq or key not in specs:
            raise ConfigError(
                flag,
                text,
                f"expected ALGO:field=value,... with fields of {algo}: " + ", ".join(sorted(specs)),
            )
        try:
            overrides.append((key, parse_field_value(specs[key], value.strip())))
        except ConfigError as exc:
            raise ConfigError(flag, text, f"{key}: {exc.allowed}") from None
    return AlgoSpec(label=text.strip(), algo=algo, overrides=tuple(overrides))


@dataclasses.dataclass(frozen=True)
class CompareResult:
    out_dir: Path
    files: list[Path]
    rows: list[dict[str, Any]]
    seconds: float


def _train_one_in_worker(task: dict[str, Any]) -> dict[str, Any]:
    """A worker process's task: `_train_one`, its error naming the run.

    Each worker gets one core's worth of threads: with `workers` processes on as
    many cores, XLA's own thread pools would only contend with each other.
    """
    from softeq.adapters.workers import use_one_thread

    use_one_thread()
    try:
        return _train_one(task)
    except Exception as exc:
        raise _failed(task, exc) from exc


def _train_jit_in_worker(task: dict[str, Any], resume: bool) -> list[dict[str, Any]]:
    """A worker process's task: `_train_jit` on one core's worth of threads, its error
    naming the program."""
    from softeq.adapters.workers import use_one_thread

    use_one_thread()
    try:
        return _train_jit(task, resume=resume)
    except Exception as exc:
        where = task["program"] if "program" in task else task["runs"][0]
        raise _named(f"program {' + '.join(task['labels'])} ({where.run_dir})", exc) from exc


def _named(where: str, exc: BaseException) -> BaseException:
    """`exc` of the same type with `where` put in front of its message."""
    try:
        return type(exc)(f"{where}: {exc}")
    except Exception:
        return RuntimeError(f"{where}: {type(exc).__name__}: {exc}")


def _failed(task: dict[str, Any], exc: BaseException) -> BaseException:
    """`exc` with the run it happened in named."""
    return _named(f"run {task['label']} seed {task['run']['seed']} ({task['run']['run_dir']})", exc)


def _train_one(task: dict[str, Any]) -> dict[str, Any]:
    """Worker: train one (spec, seed) pair; status lines go to the run's train.log."""
    from softeq.adapters import loop
    from softeq.adapters.run_config import config_dicts_to_objects

    run, algo_config = config_dicts_to_objects({"run": task["run"], "algo": task["algo"]})
    Path(run.run_dir).mkdir(parents=True, exist_ok=True)
    log_path = Path(run.run_dir) / "train.log"
    start = time.perf_counter()
    resume = task.get("resume", False)
    if resume and _host_run_finished(run):
        final = _run_final(Path(run.run_dir))
        ev = final["final_eval"]
        return {
            "label": task["label"],
            "seed": run.seed,
            "run_dir": str(run.run_dir),
            "recent_return": final["final_return"],
            "final_eval": None if math.isnan(ev) else {"return_mean": ev, "return_std": math.nan},
            "sps": math.nan,
            "seconds": 0.0,
            "kept": True,
        }
    with open(log_path, "a" if resume else "w") as log:
        result = loop.train(
            run, algo_config, resume=resume, out=lambda line: print(line, file=log, flush=True)
        )
    return {
        "label": task["label"],
        "seed": run.seed,
        "run_dir": str(run.run_dir),
        "recent_return": result.recent_return,
        "final_eval": result.final_eval,
        "sps": result.sps,
        "seconds": time.perf_counter() - start,
    }


def run_compare(
    specs: Sequence[AlgoSpec],
    *,
    seeds: Sequence[int],
    run_overrides: Mapping[str, Any] | None = None,
    shared_algo_overrides: Mapping[str, Any] | None = None,
    out_dir: str | os.PathLike | None = None,
    workers: int = 2,
    force: bool = False,
    resume: bool = False,
    out: Callable[[str], None] = print,
) -> CompareResult:
    """Train every spec with every seed (in `workers` processes) and summarise.

    Args:
      specs: the algorithm specs (labels must be distinct).
      seeds: seeds; each spec runs once per seed.
      run_overrides: `RunConfig` fields shared by all runs (env_id, total_steps, ...).
      shared_algo_overrides: hyperparameters applied to every spec that has them.
      out_dir: the compare folder (default `runs/compare-<time>`).
      workers: how many jitted programs or host-loop runs train side by side, each in
        a worker process of its own; 1 trains them one after the other in this process.
      force: replace an existing compare folder.
      resume: continue the comparison already in `out_dir` (same specs, seeds and
        settings, else refused): finished runs are kept, interrupted ones continue
        from their newest checkpoint, the others start.
      out: where progress lines go.

    Returns:
      A `CompareResult` with the written files and one summary row per spec.
    """
    run_overrides = dict(run_overrides or {})
    shared = dict(shared_algo_overrides or {})
    if not specs:
        raise ConfigError("--algos", [], "give at least one algorithm spec")
    labels = [s.label for s in specs]
    if len(set(labels)) != len(labels):
        raise ConfigError("--algos", labels, "specs must be distinct")
    if len(set(seeds)) != len(seeds):
        raise ConfigError("--seeds", list(seeds), "seeds must be distinct")
    for name in ("algo", "seed", "run_dir"):
        run_overrides.pop(name, None)
    run_overrides.setdefault("progress", False)
    env_id = run_overrides.get("env_id", RunConfig().env_id)
    check_env(env_id)
    if shared:
        known = set()
        for spec in specs:
            known |= {f.name for f in algo_field_specs(type(_base_config(spec, env_id, {})))}
        for key in shared:
            if key not in known:
                raise ConfigError(
                    "--" + key.replace("_", "-"), shared[key], "applies to none of the --algos"
                )
    if out_dir is None:
        out_dir = os.path.join("runs", "compare-" + time.strftime("%Y%m%d-%H%M%S"))
    base = Path(out_dir)
    if resume and force:
        raise ConfigError("--resume", True, "allowed: --resume or --force, not both")
    if resume and not (base / COMPARE_MANIFEST).exists():
        raise ConfigError("--resume", str(base), f"allowed: a compare folder; {base} holds none")
    if not resume and ((base / COMPARE_MANIFEST).exists() or (base / "runs").exists()):
        if not force:
            raise ConfigError(
                "--out",
                str(base),
                "already holds a comparison; pass --resume to continue it or --force to "
                "overwrite it",
            )
        shutil.rmtree(base / "runs", ignore_errors=True)
        shutil.rmtree(base / PROGRAMS_DIRNAME, ignore_errors=True)
        for name in (COMPARE_MANIFEST, SUMMARY_MD, SUMMARY_CSV):
            (base / name).unlink(missing_ok=True)
    base.mkdir(parents=True, exist_ok=True)

    tasks = []
    jit_tasks = []
    manifest_specs = []
    for spec in specs:
        algo_config = _base_config(spec, env_id, shared)
        runs = []
        batched = RunConfig(**run_overrides, algo=spec.algo, seeds=tuple(seeds))
        # The host loop trains one run per seed: its driver is decided for one seed
        # (`--driver host` with several seeds is refused for a single run only).
        if resolve_driver(batched.replace(seeds=tuple(seeds[:1]))) == "jit":
            from softeq.adapters.jit_driver import jit_default_overrides
            from softeq.adapters.jit_loop import seed_dirname

            # as `softeq train` does: the jitted run's defaults (the learning rate decays
            # to 0 over the budget) under the shared and the spec's own overrides
            defaults = jit_default_overrides(spec.algo, env_id, batched.total_steps)
            algo_config = _base_config(spec, env_id, {**defaults, **shared})
            rel_dir = os.path.join("runs", spec.folder)
            run = batched.replace(run_dir=str(base / rel_dir), driver="jit")
            run = run.replace(num_envs=resolve_num_envs(run, algo_config))
            runs = [os.path.join(rel_dir, seed_dirname(s)) for s in seeds]
            jit_tasks.append({"labels": [spec.label], "runs": [run], "algos": [algo_config]})
            manifest_specs.append(_manifest_entry(spec, algo_config, runs))
            continue
        for seed in seeds:
            rel = os.path.join("runs", spec.folder, f"seed{seed}")
            run = RunConfig(**run_overrides, algo=spec.algo, seed=seed, run_dir=str(base / rel))
            run = run.replace(num_envs=resolve_num_envs(run, algo_config))
            check_batch_compatibility(run.num_envs, spec.algo, algo_config)
            runs.append(rel)
            tasks.append(
                {
                    "label": spec.label,
                    "run": run.to_dict(),
                    "algo": dataclasses.asdict(algo_config),
                }
            )
        manifest_specs.append(_manifest_entry(spec, algo_config, runs))
    manifest = {
        "env_id": env_id,
        "seeds": list(seeds),
        "run_overrides": run_overrides,
        "shared_algo_overrides": shared,
        "specs": manifest_specs,
    }
    if resume:
        _check_same_comparison(base, manifest)
    else:
        with open(base / COMPARE_MANIFEST, "w") as fh:
            json.dump(manifest, fh, indent=2)
            fh.write("\n")
    # Interleave seeds and specs so that every spec progresses at the same pace.
    order = sorted(range(len(tasks)), key=lambda i: (tasks[i]["run"]["seed"], i))
    tasks = [tasks[i] for i in order]
    count = len(tasks) + len(jit_tasks) * len(seeds)
    jit_tasks = _group_jit_tasks(jit_tasks, base)
    parts = []
    if jit_tasks:
        parts.append(f"{len(jit_tasks)} jitted program(s)")
    if tasks:
        parts.append(f"{len(tasks)} host-loop run(s)")
    side_by_side = min(workers, len(jit_tasks) + len(tasks))
    how = " and ".join(parts) + (f", {side_by_side} side by side" if side_by_side > 1 else "")
    shared_programs = [t for t in jit_tasks if len(t["labels"]) > 1]
    if shared_programs:
        how += "; specs sharing one program: " + "; ".join(
            " + ".join(t["labels"]) for t in shared_programs
        )
    out(f"compare: {len(specs)} spec(s) × {len(seeds)} seed(s) = {count} runs on {env_id}, {how}")
    out(f"  -> {base}")
    start = time.perf_counter()
    done = 0

    def report(r: dict[str, Any]) -> None:
        nonlocal done
        done += 1
        ev = r["final_eval"]
        ev_text = f", eval {ev['return_mean']:.1f}" if ev else ""
        if r.get("kept"):
            how = "finished before, kept"
        elif r.get("jitted"):
            how = f"{r['seconds']:.0f} s for the program, {r['sps']:,.0f} steps/s per seed"
        else:
            how = f"{r['seconds']:.0f} s, {r['sps']:,.0f} steps/s"
        out(
            f"  [{done}/{count}] {r['label']} seed {r['seed']}: recent return "
            f"{r['recent_return']:.1f}{ev_text} ({how})"
        )

    def report_any(result: dict[str, Any] | list[dict[str, Any]]) -> None:
        for r in result if isinstance(result, list) else [result]:
            report(r)

    if resume:
        for task in tasks:
            task["resume"] = True
    # Jitted programs first (each trains several runs), then the host-loop runs.
    jobs = [(_train_jit_in_worker, (task, resume)) for task in jit_tasks]
    jobs += [(_train_one_in_worker, (task,)) for task in tasks]
    if workers == 1 or len(jobs) < 2:
        for task in jit_tasks:
            report_any(_train_jit(task, resume=resume))
        for task in tasks:
            try:
                result = _train_one(task)
            except Exception as exc:
                raise _failed(task, exc) from exc
            report(result)
    else:
        from softeq.adapters.workers import run_in_processes

        # One process per program or run; a failure or a stop signal stops the others
        # with a checkpoint (`--resume` continues them) and starts no more.
        run_in_processes(jobs, workers=workers, on_result=report_any)
    files = [*plot_compare(base), *write_summary(base)]
    rows = summary_rows(base)
    return CompareResult(out_dir=base, files=files, rows=rows, seconds=time.perf_counter() - start)


def _manifest_entry(spec: AlgoSpec, algo_config: Any, runs: list[str]) -> dict[str, Any]:
    return {
        "label": spec.label,
        "algo": spec.algo,
        "overrides": dict(spec.overrides),
        "algo_config": dataclasses.asdict(algo_config),
        "runs": runs,
    }


def _group_jit_tasks(tasks: list[dict[str, Any]], base: Path) -> list[dict[str, Any]]:
    """Merge the jitted specs that can share one program (`sweep.batch_key`, same run).

    A merged task trains its specs' seeds as the lanes of one program in
    `base/programs/<algo>-<i>`; a spec alone keeps its own program, as before.
    """
    from softeq.adapters import sweep

    groups: dict[Any, list[dict[str, Any]]] = {}
    for task in tasks:
        run = task["runs"][0]
        key = (run.replace(run_dir=""), sweep.batch_key(task["algos"][0]))
        groups.setdefault(key, []).append(task)
    merged = []
    for members in groups.values():
        if len(members) == 1:
            merged.append(members[0])
            continue
        run = members[0]["runs"][0]
        folder = base / PROGRAMS_DIRNAME / f"{run.algo}-{len(merged)}"
        merged.append(
            {
                "labels": [label for t in members for label in t["labels"]],
                "runs": [r for t in members for r in t["runs"]],
                "algos": [a for t in members for a in t["algos"]],
                "program": run.replace(run_dir=str(folder)),
            }
        )
    return merged


def _host_run_finished(run: RunConfig) -> bool:
    """Whether a host-loop run's newest checkpoint is at (or past) its budget."""
    from softeq.adapters import checkpoint as ckpt_lib
    from softeq.adapters import loop

    saved = ckpt_lib.list_checkpoints(loop.checkpoint_dir(run.run_dir))
    return bool(saved) and max(step for step, _ in saved) >= run.total_steps


def _check_same_comparison(base: Path, manifest: Mapping[str, Any]) -> None:
    """Refuses to resume `base` with other specs, seeds or settings than it was started with."""
    with open(base / COMPARE_MANIFEST) as fh:
        saved = json.load(fh)
    # JSON turns tuples into lists: compare what a reload of `manifest` would give.
    wanted = json.loads(json.dumps(manifest))
    differ = sorted(k for k in set(saved) | set(wanted) if saved.get(k) != wanted.get(k))
    if differ:
        raise ConfigError(
            "--resume",
            str(base),
            f"allowed: the command that started it; {', '.join(differ)} differ from the "
            f"saved {COMPARE_MANIFEST}",
        )


def _finished_jit_results(task: dict[str, Any]) -> list[dict] | None:
    """The results of a jitted program that has already finished (None if it has not)."""
    from softeq.adapters import jit_loop

    results = []
    for label, run in zip(task["labels"], task["runs"], strict=True):
        path = Path(run.run_dir) / "summary.json"
        if not path.exists():
            return None
        summary = jit_loop.read_summary(run.run_dir)
        if not summary.get("finished"):
            return None
        for seed in resolve_seeds(run):
            own = summary["seeds"][str(seed)]
            evaluated = own["final_eval_return"] is not None
            results.append(
                {
                    "label": label,
                    "seed": seed,
                    "recent_return": own["recent_return"],
                    "final_eval": {
                        "return_mean": own["final_eval_return"],
                        "return_std": own["final_eval_std"],
                    }
                    if evaluated
                    else None,
                    "sps": own["sps"],
                    "seconds": 0.0,
                    "kept": True,
                }
            )
    return results


def _train_jit(task: dict[str, Any], *, resume: bool = False) -> list[dict[str, Any]]:
    """Train one jitted program (one spec's seeds, or several specs' × seeds); one result each.

    `resume`: a program that has finished is not run again (its results are read
    back); an interrupted one continues from its newest checkpoint.
    """
    from softeq.adapters import jit_loop

    labels = [
        label
        for label, r in zip(task["labels"], task["runs"], strict=True)
        for _ in resolve_seeds(r)
    ]
    if resume:
        kept = _finished_jit_results(task)
        if kept is not None:
            return kept
    shared = "program" in task
    run = task["program"] if shared else task["runs"][0]
    members = None
    if shared:
        members = [
            jit_loop.SweepMember(r, a) for r, a in zip(task["runs"], task["algos"], strict=True)
        ]
    Path(run.run_dir).mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with open(Path(run.run_dir) / "train.log", "a" if resume else "w") as log:
        result = jit_loop.train(
            run,
            task["algos"][0],
            resume=resume,
            members=members,
            out=lambda line: print(line, file=log, flush=True),
        )
    seconds = time.perf_counter() - start
    return [
        {
            "label": labels[i],
            "seed": seed,
            "recent_return": result.recent_returns[i],
            "final_eval": result.final_evals[i],
            "sps": result.sps,
            "seconds": seconds,
            "jitted": True,
        }
        for i, seed in enumerate(result.seeds)
    ]


def _base_config(spec: AlgoSpec, env_id: str, shared: Mapping[str, Any]) -> Any:
    from softeq.adapters import agents

    check_algo(spec.algo)
    names = {f.name for f in dataclasses.fields(agents.config_for(spec.algo))}
    overrides = {k: v for k, v in shared.items() if k in names}
    overrides.update(dict(spec.overrides))
    return build_algo_config(spec.algo, env_id, overrides)


def _run_final(run_dir: Path) -> dict[str, float]:
    metrics = read_metrics(run_dir)
    out = {"final_return": math.nan, "final_eval": math.nan}
    if "train/episode_return" in metrics:
        out["final_return"] = float(np.mean(metrics["train/episode_return"][1][-FINAL_EPISODES:]))
    if "eval/return_mean" in metrics:
        out["final_eval"] = float(metrics["eval/return_mean"][1][-1])
    cos = metrics.get("learner/grad_cosine")
    out["cosines"] = cos[1] if cos is not None else np.zeros(0)
    return out


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    arr = np.asarray([v for v in values if not math.isnan(v)], np.float64)
    if arr.size == 0:
        return math.nan, math.nan
    return float(arr.mean()), float(arr.std())


def summary_rows(compare_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """One row per spec: final return / final eval (mean ± std over seeds), cosine stats."""
    rows = []
    for label, runs in compare_groups(compare_dir).items():
        finals = [_run_final(r) for r in runs]
        fr_m, fr_s = _mean_std([f["final_return"] for f in finals])
        fe_m, fe_s = _mean_std([f["final_eval"] for f in finals])
        cos = np.concatenate([f["cosines"] for f in finals]) if finals else np.zeros(0)
        cos = cos[np.isfinite(cos)]
        rows.append(
            {
                "algorithm": label,
                "seeds": len(runs),
                "final_return_mean": fr_m,
                "final_return_std": fr_s,
                "final_eval_mean": fe_m,
                "final_eval_std": fe_s,
                "cosine_mean": float(cos.mean()) if cos.size else math.nan,
                "cosine_median": float(np.median(cos)) if cos.size else math.nan,
                "cosine_p10": float(np.percentile(cos, 10)) if cos.size else math.nan,
                "cosine_count": int(cos.size),
            }
        )
    return rows


def _fmt(x: float, digits: int = 1) -> str:
    return "–" if math.isnan(x) else f"{x:.{digits}f}"


def write_summary(compare_dir: str | os.PathLike) -> list[Path]:
    """Write `summary.csv` and `summary.md` of a compare folder; returns their paths."""
    base = Path(compare_dir)
    with open(base / COMPARE_MANIFEST) as fh:
        manifest = json.load(fh)
    rows = summary_rows(base)
    csv_path = base / SUMMARY_CSV
    with open(csv_path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]) if rows else ["algorithm"])
        writer.writeheader()
        for row in rows:
            writer.writerow(row)
    lines = [
        f"# Comparison on {manifest['env_id']}",
        "",
        f"Seeds: {', '.join(str(s) for s in manifest['seeds'])}. "
        f"Final return = mean raw return of the last {FINAL_EPISODES} training episodes of a "
        "run; final eval = evaluation at the end of the run; both as mean ± std over "
        "seeds. Cosine = cos(∇ soft-Q loss, ∇ A2C loss) per logged learner update, "
        "pooled over seeds.",
        "",
        "| algorithm | seeds | final return | final eval | cos mean | cos median | cos p10 |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['algorithm']} | {r['seeds']} | {_fmt(r['final_return_mean'])} ± "
            f"{_fmt(r['final_return_std'])} | {_fmt(r['final_eval_mean'])} ± "
            f"{_fmt(r['final_eval_std'])} | {_fmt(r['cosine_mean'], 4)} | "
            f"{_fmt(r['cosine_median'], 4)} | {_fmt(r['cosine_p10'], 4)} |"
        )
    lines += ["", "![learning curves](learning_curves.png)", ""]
    if (base / "grad_cosine.png").exists():
        lines += ["![gradient agreement](grad_cosine.png)", ""]
    md_path = base / SUMMARY_MD
    md_path.write_text("\n".join(lines))
    return [md_path, csv_path]


def format_rows(rows: Sequence[Mapping[str, Any]]) -> str:
    """A plain-text table of summary rows for the terminal."""
    head = f"{'algorithm':<24} {'final return':>16} {'final eval':>16} {'cos mean':>9} {'p10':>7}"
    lines = [head, "-" * len(head)]
    for r in rows:
        fr = f"{_fmt(r['final_return_mean'])} ± {_fmt(r['final_return_std'])}"
        fe = f"{_fmt(r['final_eval_mean'])} ± {_fmt(r['final_eval_std'])}"
        lines.append(
            f"{r['algorithm']:<24} {fr:>16} {fe:>16} {_fmt(r['cosine_mean'], 4):>9} "
            f"{_fmt(r['cosine_p10'], 4):>7}"
        )
    return "\n".join(lines)


def print_result(result: CompareResult, out: Callable[[str], None] = print) -> None:
    out(format_rows(result.rows))
    out(f"compare finished in {result.seconds:.0f} s; files:")
    for f in result.files:
        out(f"  {f}")
