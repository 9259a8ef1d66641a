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

Runs are batched into as few jitted programs as the shapes allow, the env
stepping inside each (`softeq.adapters.jit_loop`): all seeds of a (game,
variant) pair are lanes of one program, and variants of one game whose configs
differ only in sweepable fields (`softeq.adapters.sweep`: experiment 3's
c = 0.5 and c = 1/τ of one algorithm, experiment 2's three DQN targets of one
n-step) share a program, their seeds side by side as lanes. Variants that run
other code (naive or proper entropy) or other shapes (n-step windows) are
programs of their own. Layout under `--out`:

    OUT/EXPERIMENT/SUITE/plan.json                 budget, seeds and games asked for
    OUT/EXPERIMENT/SUITE/runs/GAME/VARIANT/seeds-<a>-<b>/   a batch: one variant's seeds
        seed-<s>/metrics.csv, summary.json, checkpoints/
    OUT/EXPERIMENT/SUITE/programs/GAME/<V1>+<V2>/seeds-<a>-<b>/   a shared program:
        its log, lanes.json and checkpoints (each member batch also gets its own)
    OUT/EXPERIMENT/SUITE/report/                   scores.csv, verdicts.md, *.png
        runs/GAME/VARIANT/seed-<s>.json            a run card per finished run

Resuming: a batch folder with a `summary.json` is finished and never redone,
and so is a run with a card in the report folder (`--report-dir`) even where
its run folder is gone (`softeq.adapters.run_cards`: commit the report folder
and a reproduction continues on another machine); an interrupted shared program
continues from its newest checkpoint (exact state), and so does a batch that
trained alone; seeds not in any batch get new batches. Running the same command
again after an interruption therefore does only the work that is left. Changing
the budget of a started reproduction is refused (use another `--out`).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

from softeq.adapters import reproduce_claims as claims
from softeq.adapters import run_cards, stall
from softeq.adapters.atomic_file import write_json
from softeq.adapters.run_config import ConfigError

PLAN_FILENAME = "plan.json"
#: How many times `run_plan` continues after a program stalled before it gives up.
MAX_STALL_RETRIES = 3


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
    report_dir: Path | None = None  # None: `root / "report"`

    @property
    def root(self) -> Path:
        return self.out_dir / self.experiment.name / self.suite.name

    @property
    def report_root(self) -> Path:
        """The report folder, with a run card per finished run (`softeq.adapters.run_cards`)."""
        return self.report_dir if self.report_dir is not None else self.root / "report"

    def finished_seeds(self, game: str, variant: Variant) -> set[int]:
        """Seeds of `variant` on `game` with a finished run folder or a run card."""
        done = set(finished_runs(self.variant_dir(game, variant)))
        return done | run_cards.recorded_seeds(self.report_root, game, variant.label)

    def budget(self, variant: Variant) -> int:
        return self.total_steps or self.suite.total_steps(variant.algo)

    def config(self, game: str, variant: Variant) -> Any:
        """`variant`'s resolved config on `game` under this plan's suite and budget."""
        return variant.config(game, self.budget(variant), self.suite.overrides(variant.algo))

    def variant_dir(self, game: str, variant: Variant) -> Path:
        return self.root / "runs" / folder_name(game) / folder_name(variant.label)

    def programs_dir(self, game: str) -> Path:
        """Where the programs that several variants of `game` share keep their state."""
        return self.root / "programs" / folder_name(game)


def make_plan(
    experiment: str,
    *,
    suite: str = "classic",
    games: Sequence[str] | None = None,
    seeds: Sequence[int] | None = None,
    total_steps: int | None = None,
    out_dir: str | os.PathLike = "runs/reproduce",
    report_dir: str | os.PathLike | None = None,
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
        report_dir=None if report_dir is None else Path(report_dir),
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
    write_json(path, record)


def checked_cards(plan: Plan) -> dict[tuple[str, str, int], run_cards.RunRecord]:
    """The run cards of the plan's report folder, keyed `(game, variant, seed)`, each
    checked to hold a run of this plan's budget and softeq's current config."""
    cards = run_cards.read_cards(
        plan.report_root, experiment=plan.experiment.name, suite=plan.suite.name
    )
    labels = {v.label: v for v in plan.experiment.variants}
    for (game, label, seed), card in cards.items():
        if label not in labels or game not in plan.suite.games:
            raise run_cards.CardError(
                f"run card {run_cards.card_path(plan.report_root, game, label, seed)}: "
                f"variant {label!r} on {game!r}; allowed: the variants "
                f"({', '.join(labels)}) and games of {plan.experiment.name} {plan.suite.name}"
            )
        variant = labels[label]
        where = run_cards.card_path(plan.report_root, game, label, seed)
        if card.budget != plan.budget(variant):
            raise ConfigError(
                "--total-steps",
                plan.total_steps,
                f"run card {where} holds a run of {card.budget:,} env steps, this plan's "
                f"budget is {plan.budget(variant):,}; use another --report-dir",
            )
        config = json.loads(json.dumps(dataclasses.asdict(plan.config(game, variant))))
        if card.config is not None and dict(card.config) != config:
            raise ConfigError(
                "--report-dir",
                str(plan.report_root),
                f"run card {where} holds a run trained with other hyperparameters than "
                f"softeq's current defaults for {plan.experiment.name}; use another --report-dir",
            )
    return cards


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


@dataclasses.dataclass(frozen=True)
class Program:
    """One jitted program of a plan: variants of one game, the same seeds for each.

    One variant: its batch folder is the program's folder. Several (configs that
    differ only in sweepable fields): a shared program under `Plan.programs_dir`
    whose lanes are variant × seed, each variant's batch folder a member.
    """

    game: str
    variants: tuple[Variant, ...]
    seeds: tuple[int, ...]
    resume: bool

    @property
    def shared(self) -> bool:
        return len(self.variants) > 1

    def batch_dir(self, plan: Plan, variant: Variant) -> Path:
        return plan.variant_dir(self.game, variant) / batch_dirname(self.seeds)

    def folder(self, plan: Plan) -> Path:
        if not self.shared:
            return self.batch_dir(plan, self.variants[0])
        name = SHARED_NAME_SEPARATOR.join(folder_name(v.label) for v in self.variants)
        return plan.programs_dir(self.game) / name / batch_dirname(self.seeds)


SHARED_NAME_SEPARATOR = "+"


def _shared_programs_started(plan: Plan, game: str) -> list[tuple[tuple[Variant, ...], tuple]]:
    """(variants, seeds) of every shared program folder of `game` (finished or not)."""
    by_folder = {folder_name(v.label): v for v in plan.experiment.variants}
    found = []
    root = plan.programs_dir(game)
    for named in sorted(root.iterdir()) if root.is_dir() else ():
        names = named.name.split(SHARED_NAME_SEPARATOR)
        if not all(n in by_folder for n in names):
            continue
        for _, seeds, _ in _batches(named):
            found.append((tuple(by_folder[n] for n in names), seeds))
    return found


def plan_programs(plan: Plan, *, max_lanes: int | None = None) -> tuple[list[Program], int]:
    """The programs left to run, game by game, and how many runs are already finished.

    `max_lanes` caps the lanes (variants × seeds) of each program that has not
    saved a checkpoint yet; None: as many as can share one.
    """
    _check_max_lanes(max_lanes)
    programs: list[Program] = []
    reused = 0
    for game in plan.games:
        left, finished = _game_programs(plan, game, max_lanes)
        programs += left
        reused += finished
    return programs, reused


def _game_programs(plan: Plan, game: str, max_lanes: int | None) -> tuple[list[Program], int]:
    """The programs left to run on `game` and how many of its runs are finished.

    Interrupted shared programs continue as they were; other unfinished batches
    continue alone (a member of a shared program keeps checkpoints of its own);
    the seeds no batch holds become new programs, variants with the same seeds
    sharing one where `sweep.batch_key` allows. A started program with no
    checkpoint has nothing to lose: over `max_lanes` lanes, or stalled (its
    folder holds a stall record), its runs are planned again, within the cap or
    in programs of half its lanes.
    """
    from softeq.adapters import sweep

    wanted: dict[str, tuple[int, ...]] = {}
    unfinished: dict[str, list[tuple[int, ...]]] = {}
    reused = 0
    for v in plan.experiment.variants:
        vdir = plan.variant_dir(game, v)
        done = plan.finished_seeds(game, v)
        wanted[v.label] = tuple(s for s in plan.seeds if s not in done)
        reused += len(plan.seeds) - len(wanted[v.label])
        unfinished[v.label] = [
            seeds
            for _, seeds, finished in _batches(vdir)
            if not finished and set(seeds) & set(wanted[v.label])
        ]
    programs: list[Program] = []

    def take(variants: tuple[Variant, ...], seeds: tuple[int, ...], resume: bool) -> None:
        programs.append(Program(game, variants, seeds, resume))
        for v in variants:
            wanted[v.label] = tuple(s for s in wanted[v.label] if s not in seeds)

    # Lane caps of variants whose program stalled before its first checkpoint: that
    # stall was seen to repeat with the same program and to vanish with fewer lanes.
    halved: dict[str, int] = {}

    def planned_again(program: Program) -> bool:
        """Nothing saved and over the cap, or stalled (`softeq.adapters.stall`): its
        runs are planned again below, in smaller programs."""
        folder = program.folder(plan)
        if _has_checkpoint(folder):
            return False
        lanes = len(program.variants) * len(program.seeds)
        if stall.read_stall_record(folder) is not None:
            for v in program.variants:
                halved[v.label] = min(halved.get(v.label, lanes), max(1, lanes // 2))
            return True
        return max_lanes is not None and lanes > max_lanes

    for variants, seeds in _shared_programs_started(plan, game):
        if not all(unfinished[v.label] == [seeds] for v in variants):
            continue
        shared = Program(game, variants, seeds, resume=True)
        saved_at = _newest_checkpoint_step(shared.folder(plan))
        if any(_newest_checkpoint_step(shared.batch_dir(plan, v)) > saved_at for v in variants):
            continue  # its members went on alone (it was cut smaller): they continue alone
        if not planned_again(shared):
            take(variants, seeds, resume=True)
            for v in variants:
                unfinished[v.label] = []
        # else its members' folders are weighed one by one below.
    for v in plan.experiment.variants:
        for seeds in unfinished[v.label]:
            # A batch overlapping one taken already (an earlier attempt cut
            # differently) is left alone: no seed trains twice.
            if set(seeds) <= set(wanted[v.label]) and not planned_again(
                Program(game, (v,), seeds, resume=True)
            ):
                take((v,), seeds, resume=True)
    groups: dict[Any, list[Variant]] = {}
    for v in plan.experiment.variants:
        if wanted[v.label]:
            key = (sweep.batch_key(plan.config(game, v)), plan.budget(v), wanted[v.label])
            groups.setdefault(key, []).append(v)
    for (_, _, seeds), variants in groups.items():
        caps = [halved[v.label] for v in variants if v.label in halved]
        if max_lanes is not None:
            caps.append(max_lanes)
        for part_variants, part_seeds in split_lanes(
            tuple(variants), seeds, min(caps, default=None)
        ):
            program = _fresh_program(plan, game, part_variants, part_seeds)
            take(program.variants, program.seeds, resume=program.resume)
    return programs, reused


def _fresh_program(
    plan: Plan, game: str, variants: tuple[Variant, ...], seeds: tuple[int, ...]
) -> Program:
    """A program for runs no checkpoint holds. Its folder may exist from an earlier
    attempt (a shared program cut short before its members' folders were written,
    or one planned again smaller): resuming there without a checkpoint starts from
    scratch in it."""
    program = Program(game, variants, seeds, resume=False)
    return dataclasses.replace(program, resume=program.folder(plan).exists())


def split_lanes(
    variants: tuple[Variant, ...], seeds: tuple[int, ...], max_lanes: int | None
) -> list[tuple[tuple[Variant, ...], tuple[int, ...]]]:
    """`variants` × `seeds` as programs of at most `max_lanes` lanes, as few as can be.

    Whole variants stay together with all their seeds where those fit (their runs
    keep the batch folder they would have in one program); otherwise each variant
    runs alone, its seeds cut into near-equal consecutive parts.
    """
    if max_lanes is None or len(variants) * len(seeds) <= max_lanes:
        return [(variants, seeds)]
    if len(seeds) <= max_lanes:
        return [(part, seeds) for part in _near_equal_parts(variants, max_lanes // len(seeds))]
    return [((v,), part) for v in variants for part in _near_equal_parts(seeds, max_lanes)]


def _near_equal_parts(items: tuple, at_most: int) -> list[tuple]:
    """`items` cut into the fewest consecutive parts of at most `at_most`, sizes within one."""
    count = -(-len(items) // at_most)
    size, extra = divmod(len(items), count)
    parts, start = [], 0
    for i in range(count):
        end = start + size + (1 if i < extra else 0)
        parts.append(items[start:end])
        start = end
    return parts


def _newest_checkpoint_step(folder: Path) -> int:
    """The env step of the newest checkpoint in a program's or batch's folder (0: none)."""
    from softeq.adapters import checkpoint as ckpt_lib
    from softeq.adapters.jit_loop import checkpoint_dir

    return max((step for step, _ in ckpt_lib.list_checkpoints(checkpoint_dir(folder))), default=0)


def _has_checkpoint(folder: Path) -> bool:
    return _newest_checkpoint_step(folder) > 0


def _check_count(flag: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(flag, value, "allowed: an integer >= 1")


def _check_max_lanes(max_lanes: int | None) -> None:
    if max_lanes is not None:
        _check_count("--max-lanes", max_lanes)


def _run_program(plan: Plan, program: Program, *, out: Callable[[str], None]) -> None:
    from softeq.adapters import jit_loop
    from softeq.adapters.run_config import RunConfig, resolve_driver

    game, seeds = program.game, program.seeds
    total = plan.budget(program.variants[0])
    folder = program.folder(plan)
    run = RunConfig(
        env_id=game,
        algo=program.variants[0].algo,
        seeds=seeds,
        total_steps=total,
        # Twenty chunks: twenty learner rows (the gradient cosine across training),
        # a checkpoint after each, so an interruption loses at most 5% of a run.
        checkpoint_every=max(1, math.ceil(total / 20)),
        eval_every=0,
        eval_episodes=10,
        keep_checkpoints=1,
        run_dir=str(folder),
        progress=False,
        driver="jit",  # ALE games too: their emulators step inside the program
    )
    resolve_driver(run)  # a game that cannot run inside a program is named here
    configs = [plan.config(game, v) for v in program.variants]
    members = None
    if program.shared:
        members = [
            jit_loop.SweepMember(run.replace(run_dir=str(program.batch_dir(plan, v))), config)
            for v, config in zip(program.variants, configs, strict=True)
        ]
    folder.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with open(folder / "train.log", "a") as log:
        result = jit_loop.train(
            run,
            configs[0],
            resume=program.resume,
            keep_going_when_diverged=True,
            members=members,
            out=lambda line: print(line, file=log, flush=True),
        )
    seconds = time.perf_counter() - start
    from softeq.adapters.reproduce_report import write_cards

    # Cards at once: what has finished survives the loss of the run folders.
    write_cards(plan, games=(game,), variants=program.variants, seeds=seeds)
    shared = f", shared by {len(program.variants)} variants" if program.shared else ""
    # A program resumed at its last checkpoint only evaluates: it trained no step here.
    pace = "no steps left" if math.isnan(result.sps) else f"{result.sps:,.0f} steps/s per lane"
    for i, variant in enumerate(program.variants):
        lanes = range(i * len(seeds), (i + 1) * len(seeds))  # members' seeds, in order
        diverged = [result.seeds[j] for j in lanes if result.diverged_at[j] is not None]
        note = f", diverged: seeds {diverged}" if diverged else ""
        out(
            f"  {game} {variant.label} seeds {list(seeds)}: recent return "
            + ", ".join(f"{result.recent_returns[j]:.1f}" for j in lanes)
            + f" ({seconds:.0f} s, {pace}{shared}{note})"
        )


def run_plan(
    plan: Plan,
    *,
    workers: int = 1,
    out: Callable[[str], None] = print,
    stall_retries: int = MAX_STALL_RETRIES,
    max_lanes: int | None = None,
) -> dict[str, int]:
    """Trains what is missing of `plan`; returns counts of runs reused, resumed and new.

    `workers` > 1 runs that many programs side by side, each in a process of its
    own, still taken game by game. It pays where one program leaves cores idle;
    on a 2-core CPU two DQN programs at once gave about 7% more throughput
    (`benchmarks/RESULTS-seed-batching.md`). Stopping one (a signal, a crash)
    stops all with a checkpoint, and a worker whose parent dies stops with one
    too (`softeq.adapters.workers.run_in_processes`). A program that stalls
    (`softeq.adapters.stall`) is continued from its checkpoint, up to
    `stall_retries` times, as programs of half its lanes if it had saved
    nothing (XLA's CPU runtime was seen to stall for good on one program of nine
    lanes that ran through as programs of three). `max_lanes` caps the lanes of
    programs not yet saved from the start (`plan_programs`).
    """
    _check_count("--workers", workers)
    _check_max_lanes(max_lanes)
    _check_plan_file(plan)
    checked_cards(plan)  # before any training: a card of another budget or config stops it
    todo, reused = plan_programs(plan, max_lanes=max_lanes)
    counts = {"reused": reused, "resumed": 0, "new": 0}
    for program in todo:
        counts["resumed" if program.resume else "new"] += len(program.seeds) * len(program.variants)
    total_runs = len(plan.experiment.variants) * len(plan.games) * len(plan.seeds)
    side_by_side = f", {workers} side by side" if workers > 1 and len(todo) > 1 else ""
    out(
        f"reproduce {plan.experiment.name} ({plan.experiment.section}) on the "
        f"{plan.suite.name} suite: {total_runs} runs, {reused} already finished, "
        f"{len(todo)} program(s) to run{side_by_side} -> {plan.root}"
    )
    if workers == 1 or len(todo) <= 1:
        for program in todo:
            _run_program(plan, program, out=out)
        return counts
    from softeq.adapters.workers import WorkerStalled, run_in_processes

    arguments = _plan_arguments(plan)

    def show(lines: list[str]) -> None:
        for line in lines:
            out(line)

    for retry in range(stall_retries + 1):
        tasks = [
            (
                _run_program_in_worker,
                (arguments, p.game, tuple(v.label for v in p.variants), p.seeds, p.resume),
            )
            for p in todo
        ]
        # Ctrl-C, a failed program or a signal: the programs still running save a
        # checkpoint and stop, and no other program starts.
        try:
            run_in_processes(tasks, workers=workers, on_result=show)
            break
        except WorkerStalled as exc:
            if retry == stall_retries:
                raise
            # The stalled program and the one beside it stopped at their newest
            # checkpoints; planning again from what is on disk continues both (the
            # stalled one smaller if it had saved nothing: it left a stall record).
            stalled = todo[exc.task]
            todo, _ = plan_programs(plan, max_lanes=max_lanes)
            parts = [
                p
                for p in todo
                if p.game == stalled.game
                and {v.label for v in p.variants} <= {v.label for v in stalled.variants}
                and set(p.seeds) <= set(stalled.seeds)
            ]
            out(
                f"{stalled.game} {' + '.join(v.label for v in stalled.variants)} seeds "
                f"{list(stalled.seeds)} stalled ({exc}); "
                + (
                    f"it had saved nothing: running it as {len(parts)} smaller programs"
                    if len(parts) > 1
                    else "running it again from its newest checkpoint, if any"
                )
            )
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
        report_dir=None if plan.report_dir is None else str(plan.report_dir),
    )


def _run_program_in_worker(
    arguments: dict[str, Any],
    game: str,
    labels: tuple[str, ...],
    seeds: tuple[int, ...],
    resume: bool,
) -> list[str]:
    """A worker process's task: one program of the plan; returns its status lines."""
    plan = make_plan(**arguments)
    variants = tuple(plan.experiment.variant(label) for label in labels)
    lines: list[str] = []
    _run_program(plan, Program(game, variants, seeds, resume), out=lines.append)
    return lines
