"""`softeq reproduce`: the paper's three experiments (§6), resumable, seeds batched.

An experiment is a list of variants (an algorithm with a few settings) and the
paper's claims about them (`softeq.adapters.reproduce_claims`); a suite is a
list of games with a budget and a default number of seeds:

=============  =====================================  ======================================
suite          games                                  budget per run (default)
=============  =====================================  ======================================
``classic``    CartPole-v1, Acrobot-v1                450k steps on-policy, 100k DQN
``minatar``    the five gymnax MinAtar games          1M env steps (DQN: 1 update / 4 steps)
``atari``      six ALE v5 games of the paper          80M steps on-policy, 10M DQN
=============  =====================================  ======================================

Every (game, variant) pair trains all its seeds as one jitted program where the
env runs inside the program (`softeq.adapters.jit_loop`). Layout under `--out`:

    OUT/EXPERIMENT/SUITE/plan.json                 budget, seeds and games asked for
    OUT/EXPERIMENT/SUITE/runs/GAME/VARIANT/seeds-<a>-<b>/   one program's run folder
        seed-<s>/metrics.csv, summary.json, checkpoints/
    OUT/EXPERIMENT/SUITE/report/                   scores.csv, verdicts.md, *.png

Resuming: a batch folder with a `summary.json` is finished and never redone; one
without it is continued from its newest checkpoint (exact state); seeds not in
any batch get a new batch. Running the same command again after an
interruption therefore does only the work that is left. Changing the budget
of a started reproduction is refused (use another `--out`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

from softeq.adapters import reproduce_claims as claims
from softeq.adapters.run_config import ConfigError

PLAN_FILENAME = "plan.json"


@dataclasses.dataclass(frozen=True)
class Variant:
    """One arm of an experiment.

    Attributes:
      label: short name used in folders, tables and legends.
      algo: registered algorithm name.
      overrides: config fields set on top of the suite's defaults.
      derived: config fields computed from the resolved config (e.g. c = 1/τ).
    """

    label: str
    algo: str
    overrides: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    derived: Callable[[Any], Mapping[str, Any]] | None = None

    def config(
        self, env_id: str, total_steps: int, suite_overrides: Mapping[str, Any] | None = None
    ) -> Any:
        """The variant's resolved config on `env_id` for a jitted run of `total_steps`.

        `suite_overrides` (the suite's settings for this algorithm) go between the
        defaults and the variant's own overrides.
        """
        from softeq.adapters import agents
        from softeq.adapters.jit_driver import jit_default_overrides

        fields = {
            **jit_default_overrides(self.algo, env_id, total_steps),
            **(suite_overrides or {}),
            **self.overrides,
        }
        config = agents.default_config(self.algo, env_id, **fields)
        if self.derived is not None:
            config = agents.default_config(self.algo, env_id, **fields, **self.derived(config))
        return config


@dataclasses.dataclass(frozen=True)
class Experiment:
    """One of the paper's experiments: what it runs and what it claims."""

    name: str
    section: str
    title: str
    variants: tuple[Variant, ...]
    claims: tuple[claims.Claim, ...]
    #: variants whose per-update gradient cosine (soft-Q vs A2C) is plotted.
    cosine_variants: tuple[str, ...] = ()

    def variant(self, label: str) -> Variant:
        return next(v for v in self.variants if v.label == label)


@dataclasses.dataclass(frozen=True)
class Suite:
    """Games, default seeds and budget of one scale."""

    name: str
    games: tuple[str, ...]
    default_seeds: int
    on_policy_steps: int
    replay_steps: int
    #: config fields every replay learner of this suite uses (on top of its defaults).
    replay_overrides: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def overrides(self, algo: str) -> Mapping[str, Any]:
        """The suite's config fields for `algo` (none for on-policy learners)."""
        from softeq.adapters import agents

        return {} if agents.get_algorithm(algo).on_policy else self.replay_overrides

    def total_steps(self, algo: str) -> int:
        from softeq.adapters import agents

        on_policy = agents.get_algorithm(algo).on_policy
        return self.on_policy_steps if on_policy else self.replay_steps


def _inverse_temperature(config: Any) -> dict[str, float]:
    return {"value_weight": 1.0 / config.temperature}


_DQN_TARGETS = ("hard", "soft-kl", "soft-entropy")

EXPERIMENTS: Mapping[str, Experiment] = MappingProxyType(
    {
        e.name: e
        for e in (
            Experiment(
                name="experiment-1",
                section="§6.1",
                title="A2C with naive versus proper entropy regularisation",
                variants=(
                    Variant("proper", "a2c", {"entropy": "proper"}),
                    Variant("naive", "a2c", {"entropy": "naive"}),
                ),
                claims=(claims.NotWorse("proper", "naive"),),
            ),
            Experiment(
                name="experiment-2",
                section="§6.2",
                title="DQN with hard, soft-KL and soft-entropy targets, 1-step and 5-step",
                variants=tuple(
                    Variant(f"{t}-{n}", "dqn", {"target": t, "n_step": n})
                    for n in (1, 5)
                    for t in _DQN_TARGETS
                ),
                claims=(
                    claims.NotWorse("soft-entropy-1", "hard-1"),
                    claims.Worse("soft-kl-1", "soft-entropy-1"),
                    claims.MixedByGame("hard-5", "hard-1"),
                ),
            ),
            Experiment(
                name="experiment-3",
                section="§6.3",
                title="A2C versus the A2C-matched soft Q-learner, at c = 0.5 and c = 1/τ",
                variants=(
                    Variant("a2c", "a2c", {"entropy": "proper", "value_weight": 0.5}),
                    Variant("soft-q", "soft-q", {"value_weight": 0.5}),
                    Variant("a2c-c1/tau", "a2c", {"entropy": "proper"}, _inverse_temperature),
                    Variant("soft-q-c1/tau", "soft-q", {}, _inverse_temperature),
                ),
                claims=(
                    claims.Equivalent("soft-q", "a2c"),
                    claims.Unstable("a2c-c1/tau", "a2c"),
                    claims.Unstable("soft-q-c1/tau", "soft-q"),
                ),
                cosine_variants=("soft-q", "soft-q-c1/tau"),
            ),
        )
    }
)

# The paper's Atari games of Figures 1-3.
PAPER_ATARI_GAMES = (
    "ALE/BeamRider-v5",
    "ALE/Breakout-v5",
    "ALE/Enduro-v5",
    "ALE/Pong-v5",
    "ALE/Qbert-v5",
    "ALE/Seaquest-v5",
)

SUITES: Mapping[str, Suite] = MappingProxyType(
    {
        "classic": Suite("classic", ("CartPole-v1", "Acrobot-v1"), 10, 450_000, 100_000),
        "minatar": Suite(
            "minatar",
            (
                "Asterix-MinAtar",
                "Breakout-MinAtar",
                "Freeway-MinAtar",
                "Seaquest-MinAtar",
                "SpaceInvaders-MinAtar",
            ),
            3,
            1_000_000,
            1_000_000,
            # The Nature DQN's replay ratio, one update per 4 transitions (§6.2 changes
            # only the target of a standard DQN), instead of MinAtar's default of one per
            # 2: it halves the cost of experiment 2, whose 90 runs bound this suite.
            replay_overrides=MappingProxyType({"train_every": 4}),
        ),
        # The paper's 320M frames for A2C (frame skip 4); DQN: 40M frames, the paper names none.
        "atari": Suite("atari", PAPER_ATARI_GAMES, 2, 80_000_000, 10_000_000),
    }
)


def folder_name(label: str) -> str:
    """A variant label as a folder name ("/" is not allowed in one)."""
    return label.replace("/", "_")


@dataclasses.dataclass(frozen=True)
class Plan:
    """What one `softeq reproduce` call asks for, resolved against the suite."""

    experiment: Experiment
    suite: Suite
    games: tuple[str, ...]
    seeds: tuple[int, ...]
    total_steps: int | None  # None: the suite's budget per algorithm
    out_dir: Path

    @property
    def root(self) -> Path:
        return self.out_dir / self.experiment.name / self.suite.name

    def budget(self, variant: Variant) -> int:
        return self.total_steps or self.suite.total_steps(variant.algo)

    def config(self, game: str, variant: Variant) -> Any:
        """`variant`'s resolved config on `game` under this plan's suite and budget."""
        return variant.config(game, self.budget(variant), self.suite.overrides(variant.algo))

    def variant_dir(self, game: str, variant: Variant) -> Path:
        return self.root / "runs" / folder_name(game) / folder_name(variant.label)


def make_plan(
    experiment: str,
    *,
    suite: str = "classic",
    games: Sequence[str] | None = None,
    seeds: Sequence[int] | None = None,
    total_steps: int | None = None,
    out_dir: str | os.PathLike = "runs/reproduce",
) -> Plan:
    """Checks the arguments of `softeq reproduce` and resolves them into a `Plan`."""
    if experiment not in EXPERIMENTS:
        raise ConfigError("EXPERIMENT", experiment, f"allowed: {', '.join(EXPERIMENTS)}")
    if suite not in SUITES:
        raise ConfigError("--suite", suite, f"allowed: {', '.join(SUITES)}")
    chosen = SUITES[suite]
    if games:
        unknown = [g for g in games if g not in chosen.games]
        if unknown:
            raise ConfigError(
                "--games", list(games), f"allowed in the {suite} suite: {', '.join(chosen.games)}"
            )
        if len(set(games)) != len(games):
            raise ConfigError("--games", list(games), "allowed: distinct games")
    if seeds is not None:
        if not seeds or len(set(seeds)) != len(seeds) or any(int(s) < 0 for s in seeds):
            raise ConfigError("--seeds", list(seeds), "allowed: distinct integers >= 0")
    if total_steps is not None and total_steps <= 0:
        raise ConfigError("--total-steps", total_steps, "allowed: > 0")
    return Plan(
        experiment=EXPERIMENTS[experiment],
        suite=chosen,
        games=tuple(games or chosen.games),
        seeds=tuple(int(s) for s in seeds) if seeds else tuple(range(chosen.default_seeds)),
        total_steps=total_steps,
        out_dir=Path(out_dir),
    )


def machine_description() -> str:
    """CPU model, core count, Python and jax versions, and the devices jax sees."""
    import platform

    import jax

    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    devices = ", ".join(sorted({d.device_kind for d in jax.devices()}))
    return (
        f"{cpu}; {os.cpu_count()} logical cores; Python {platform.python_version()}; "
        f"jax {jax.__version__} on {jax.default_backend()} ({len(jax.devices())}× {devices})"
    )


def read_plan_file(plan: Plan) -> dict[str, Any]:
    """The saved `plan.json` of a reproduction (empty if it never ran)."""
    path = plan.root / PLAN_FILENAME
    if not path.exists():
        return {}
    with open(path) as fh:
        return json.load(fh)


def _check_plan_file(plan: Plan) -> None:
    """Records the budget on first use (a later call with another budget is refused) and
    the machine of every sitting."""
    path = plan.root / PLAN_FILENAME
    record = {
        "experiment": plan.experiment.name,
        "suite": plan.suite.name,
        "budget": {v.label: plan.budget(v) for v in plan.experiment.variants},
        "configs": {},
        "sittings": [],
    }
    saved = read_plan_file(plan)
    if saved:
        if saved.get("budget") != record["budget"]:
            raise ConfigError(
                "--total-steps",
                plan.total_steps,
                f"{plan.root} was started with budgets {saved.get('budget')}; "
                f"use another --out for a different budget",
            )
        record["configs"] = dict(saved.get("configs", {}))
        record["sittings"] = list(saved.get("sittings", []))
    for game in plan.games:
        configs = {
            v.label: dataclasses.asdict(plan.config(game, v)) for v in plan.experiment.variants
        }
        # JSON turns tuples into lists: compare what a reload would give.
        configs = json.loads(json.dumps(configs))
        if record["configs"].setdefault(game, configs) != configs:
            raise ConfigError(
                "--out",
                str(plan.out_dir),
                f"holds {game} runs trained with other hyperparameters than softeq's current "
                f"defaults for {plan.experiment.name}; use another --out",
            )
    record["sittings"].append(
        {"started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "machine": machine_description()}
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as fh:
        json.dump(record, fh, indent=2)
        fh.write("\n")
    os.replace(tmp, path)


def batch_dirname(seeds: Sequence[int]) -> str:
    return "seeds-" + "-".join(str(s) for s in seeds)


def _batches(variant_dir: Path) -> list[tuple[Path, tuple[int, ...], bool]]:
    """Every batch folder of a variant: (folder, its seeds, finished)."""
    found = []
    if not variant_dir.is_dir():
        return found
    for batch in sorted(variant_dir.iterdir()):
        if not batch.name.startswith("seeds-"):
            continue
        try:
            seeds = tuple(int(s) for s in batch.name[len("seeds-") :].split("-"))
        except ValueError:
            continue
        found.append((batch, seeds, (batch / "summary.json").exists()))
    return found


def finished_runs(variant_dir: Path) -> dict[int, Path]:
    """`{seed: batch folder}` of every finished run of one variant."""
    done: dict[int, Path] = {}
    for batch, seeds, finished in _batches(variant_dir):
        if finished:
            for s in seeds:
                done.setdefault(s, batch)
    return done


def _run_batch(
    plan: Plan,
    game: str,
    variant: Variant,
    seeds: tuple[int, ...],
    *,
    resume: bool,
    out: Callable[[str], None],
) -> None:
    from softeq.adapters import jit_loop
    from softeq.adapters.run_config import RunConfig, resolve_driver

    total = plan.budget(variant)
    batch = plan.variant_dir(game, variant) / batch_dirname(seeds)
    run = RunConfig(
        env_id=game,
        algo=variant.algo,
        seeds=seeds,
        total_steps=total,
        # Twenty chunks: twenty learner rows (the gradient cosine across training),
        # a checkpoint after each, so an interruption loses at most 5% of a run.
        checkpoint_every=max(1, math.ceil(total / 20)),
        eval_every=0,
        eval_episodes=10,
        keep_checkpoints=1,
        run_dir=str(batch),
        progress=False,
        driver="jit",  # ALE games too: their emulators step inside the program
    )
    resolve_driver(run)  # a game that cannot run inside a program is named here
    batch.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with open(batch / "train.log", "a") as log:
        result = jit_loop.train(
            run,
            plan.config(game, variant),
            resume=resume,
            keep_going_when_diverged=True,
            out=lambda line: print(line, file=log, flush=True),
        )
    diverged = [s for s, d in zip(result.seeds, result.diverged_at, strict=True) if d is not None]
    note = f", diverged: seeds {diverged}" if diverged else ""
    out(
        f"  {game} {variant.label} seeds {list(seeds)}: recent return "
        + ", ".join(f"{r:.1f}" for r in result.recent_returns)
        + f" ({time.perf_counter() - start:.0f} s, {result.sps:,.0f} steps/s per seed{note})"
    )


def run_plan(plan: Plan, *, workers: int = 1, out: Callable[[str], None] = print) -> dict[str, int]:
    """Trains what is missing of `plan`; returns counts of runs reused, resumed and new.

    `workers` > 1 runs that many programs side by side, each in a process of its
    own, still taken game by game. It pays where one program leaves cores idle;
    on a 2-core CPU two DQN programs at once gave about 7% more throughput
    (`benchmarks/RESULTS-seed-batching.md`). A worker whose parent dies stops
    with a checkpoint (`softeq.adapters.workers`).
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigError("--workers", workers, "allowed: an integer >= 1")
    _check_plan_file(plan)
    counts = {"reused": 0, "resumed": 0, "new": 0}
    todo = []
    # Game by game: a reproduction cut short leaves whole games to compare.
    for game in plan.games:
        for variant in plan.experiment.variants:
            vdir = plan.variant_dir(game, variant)
            done = finished_runs(vdir)
            wanted = [s for s in plan.seeds if s not in done]
            counts["reused"] += len(plan.seeds) - len(wanted)
            for _, seeds, finished in _batches(vdir):
                if not finished and set(seeds) & set(wanted):
                    todo.append((game, variant, seeds, True))
                    wanted = [s for s in wanted if s not in seeds]
            if wanted:
                todo.append((game, variant, tuple(wanted), False))
    total_runs = len(plan.experiment.variants) * len(plan.games) * len(plan.seeds)
    side_by_side = f", {workers} side by side" if workers > 1 and len(todo) > 1 else ""
    out(
        f"reproduce {plan.experiment.name} ({plan.experiment.section}) on the "
        f"{plan.suite.name} suite: {total_runs} runs, {counts['reused']} already finished, "
        f"{len(todo)} program(s) to run{side_by_side} -> {plan.root}"
    )
    for _, _, seeds, resume in todo:
        counts["resumed" if resume else "new"] += len(seeds)
    if workers == 1 or len(todo) <= 1:
        for game, variant, seeds, resume in todo:
            _run_batch(plan, game, variant, seeds, resume=resume, out=out)
        return counts
    import concurrent.futures as cf
    import multiprocessing

    from softeq.adapters.workers import pool_initializer

    arguments = _plan_arguments(plan)
    ctx = multiprocessing.get_context("spawn")
    pending = list(todo)
    running: set[cf.Future] = set()
    with cf.ProcessPoolExecutor(
        max_workers=workers,
        mp_context=ctx,
        initializer=pool_initializer,
        initargs=(os.getpid(),),  # workers stop (with a checkpoint) if this process dies
    ) as pool:
        try:
            while pending or running:
                # At most one program per worker is handed over, so that nothing is
                # queued in a worker that an interruption could not take back.
                while pending and len(running) < workers:
                    game, variant, seeds, resume = pending.pop(0)
                    task = (arguments, game, variant.label, seeds, resume)
                    running.add(pool.submit(_run_batch_in_worker, *task))
                done, running = cf.wait(running, return_when=cf.FIRST_COMPLETED)
                for future in done:
                    for line in future.result():
                        out(line)
        except BaseException:
            # Ctrl-C, a failed program or a signal: the programs still running save a
            # checkpoint and stop (SIGTERM), and no other program starts.
            for child in multiprocessing.active_children():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child.pid, signal.SIGTERM)
            cf.wait(running)
            raise
    return counts


def _plan_arguments(plan: Plan) -> dict[str, Any]:
    """The `make_plan` arguments that rebuild `plan` in a worker process (plain values:
    the plan itself holds mapping proxies, which do not pickle)."""
    return dict(
        experiment=plan.experiment.name,
        suite=plan.suite.name,
        games=plan.games,
        seeds=plan.seeds,
        total_steps=plan.total_steps,
        out_dir=str(plan.out_dir),
    )


def _run_batch_in_worker(
    arguments: dict[str, Any], game: str, label: str, seeds: tuple[int, ...], resume: bool
) -> list[str]:
    """Worker process: one program of the plan; returns its status lines."""
    plan = make_plan(**arguments)
    lines: list[str] = []
    _run_batch(plan, game, plan.experiment.variant(label), seeds, resume=resume, out=lines.append)
    return lines
