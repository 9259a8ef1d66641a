"""Typed run configuration and helpers that turn algorithm configs into CLI flags.

A training run is described by two frozen dataclasses:

- `RunConfig` (this module): everything about the run that is *not* the learning
  algorithm — environment, seed, number of parallel envs, step budget, evaluation,
  checkpointing, logging and output folder.
- the algorithm's own frozen config (`softeq.adapters.agents.config_for(algo)`),
  e.g. `A2CConfig` / `SoftQConfig` / `DQNConfig`, whose fields are simple types so
  that they can be exposed as command-line flags automatically.

Both are saved together as `config.json` in the run folder; `load_run_configs`
reads them back.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from softeq.adapters.atomic_file import write_json

CONFIG_FILENAME = "config.json"
#: Environment backends of `softeq.adapters.envs.make_vector_env`.
BACKENDS = ("auto", "ale", "gymnasium", "gymnax")
#: How a run is driven: "jit" (the whole loop inside one XLA program: gymnax envs, and
#: ALE games through ale_py's XLA interface), "host" (the Python loop of
#: `softeq.adapters.loop`) or "auto" (jit for gymnax envs, host for the rest).
DRIVERS = ("auto", "jit", "host")
TORSO_CHOICES = ("auto", "nature", "minatar", "mlp")
CONFIG_FORMAT_VERSION = 1

#: Evaluation policies (`RunConfig.eval_policy`); "auto" picks the standard protocol of
#: `resolve_eval_protocol` for the environment and algorithm.
EVAL_POLICIES = ("auto", "greedy", "sample", "epsilon")
#: ε of ε-greedy evaluation: 0.05, as in Mnih et al. (2015), "Human-level control through
#: deep reinforcement learning".
DEFAULT_EVAL_EPSILON = 0.05
#: Per-episode cap of an Atari evaluation in agent steps: 4 500 steps × frame skip 4 =
#: 18 000 frames = 5 minutes of play (Mnih et al. 2015). The env's own limit is 27 000.
ATARI_EVAL_MAX_EPISODE_STEPS = 4_500

#: Allowed values for string-valued algorithm fields whose config dataclass does not
#: declare them itself (via `dataclasses.field(metadata={"choices": ...})`).
KNOWN_FIELD_CHOICES: dict[str, tuple[str, ...]] = {}


def _known_choices() -> dict[str, tuple[str, ...]]:
    if not KNOWN_FIELD_CHOICES:
        from softeq.core import DQN_TARGET_MODES, ENTROPY_MODES

        KNOWN_FIELD_CHOICES.update(
            {
                "entropy": tuple(ENTROPY_MODES),
                "target": tuple(DQN_TARGET_MODES),
                "torso": ("nature", "mlp"),
            }
        )
        from softeq.adapters import agents

        optimizers = getattr(agents, "OPTIMIZERS", None)
        if optimizers is None and hasattr(agents, "config"):
            optimizers = getattr(agents.config, "OPTIMIZERS", None)
        if optimizers is not None:
            KNOWN_FIELD_CHOICES["optimizer"] = tuple(optimizers)
    return KNOWN_FIELD_CHOICES


class ConfigError(ValueError):
    """A bad setting; `flag` names the command-line flag (or config field) at fault."""

    def __init__(self, flag: str, value: Any, allowed: str):
        self.flag = flag
        self.value = value
        self.allowed = allowed
        super().__init__(f"{flag}: got {value!r}; {allowed}")

    def __reduce__(self):  # rebuilt from its three fields (a worker process sends it back)
        return (type(self), (self.flag, self.value, self.allowed))


@dataclasses.dataclass(frozen=True, kw_only=True)
class RunConfig:
    """Everything about a training run except the algorithm's hyperparameters.

    Attributes:
      env_id: environment id, e.g. `"CartPole-v1"` or `"ALE/Pong-v5"`.
      algo: one of `softeq.adapters.agents.ALGORITHMS`.
      seed: seed for the agent, the training envs and the evaluation envs.
      num_envs: number of parallel training environments; `0` = the algorithm's
        default for this environment (see `resolve_num_envs`).
      total_steps: training budget in environment steps, summed over all envs.
      eval_every: evaluate every this many env steps (`0` = only at the end).
      eval_episodes: episodes per evaluation (on a separate env).
      eval_policy: how evaluation acts: "greedy" (argmax), "sample" (draws from
        the learned stochastic policy π_θ; a2c, soft-q and sac-discrete only), "epsilon"
        (ε-greedy with `eval_epsilon`) or "auto" (see `resolve_eval_protocol`).
      eval_epsilon: ε of the "epsilon" evaluation policy, in [0, 1].
      eval_max_episode_steps: an evaluation episode that reaches this many agent
        steps ends there and its return so far is recorded; `0` = auto
        (`ATARI_EVAL_MAX_EPISODE_STEPS` for Atari, no cap beyond the env's own
        time limit otherwise).
      checkpoint_every: save a checkpoint every this many env steps (the run also
        saves one at the end).
      keep_checkpoints: how many most recent checkpoints to keep on disk.
      log_every: write averaged learner metrics every this many learner updates.
      run_dir: output folder (config, metrics, checkpoints, TensorBoard events).
      torso: network torso, `"auto"` = `"nature"` for Atari, `"minatar"` for the
        MinAtar games, `"mlp"` otherwise.
      video: record one evaluation episode to an mp4 at each evaluation.
      progress: show a tqdm progress bar.
      backend: where the env comes from: "gymnax" (JAX-native: CartPole-v1,
        Acrobot-v1, the MinAtar games), "gymnasium", "ale", or "auto" (gymnax
        for the ids it has unless the host loop drives the run, ALE for
        `ALE/…`); see `resolve_backend`.
      driver: "jit", "host" or "auto" (jit wherever the env runs inside a
        program); see `resolve_driver`.
      seeds: several seeds trained together in one jitted program, one folder
        each; empty = just `seed`. See `resolve_seeds`.
    """

    env_id: str = "CartPole-v1"
    algo: str = "a2c"
    seed: int = 0
    num_envs: int = 0
    total_steps: int = 100_000
    eval_every: int = 25_000
    eval_episodes: int = 5
    eval_policy: str = "auto"
    eval_epsilon: float = DEFAULT_EVAL_EPSILON
    eval_max_episode_steps: int = 0
    checkpoint_every: int = 10_000
    keep_checkpoints: int = 3
    log_every: int = 1
    run_dir: str = ""
    torso: str = "auto"
    video: bool = False
    progress: bool = True
    backend: str = "auto"
    driver: str = "auto"
    seeds: tuple[int, ...] = ()

    def __post_init__(self):
        if isinstance(self.seeds, list):  # read back from JSON
            object.__setattr__(self, "seeds", tuple(self.seeds))
        validate_run_config(self)

    def replace(self, **changes: Any) -> RunConfig:
        """A copy with `changes` applied (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["seeds"] = list(self.seeds)  # as JSON reads it back, so saved and new compare equal
        return out


#: Fields that may differ between a saved run and the same run resumed.
RESUMABLE_CHANGES = frozenset(
    {
        "total_steps",
        "progress",
        "video",
        "eval_episodes",
        "eval_every",
        "eval_policy",
        "eval_epsilon",
        "eval_max_episode_steps",
    }
)


def is_atari(env_id: str) -> bool:
    """Whether `env_id` names an Arcade Learning Environment game (`ALE/<Game>-v5`)."""
    return env_id.startswith("ALE/") or env_id.endswith("NoFrameskip-v4")


def validate_run_config(config: RunConfig) -> None:
    """Raise `ConfigError` naming the first bad field of `config`."""
    checks: list[tuple[str, Any, bool, str]] = [
        ("env_id", config.env_id, bool(config.env_id), "must be a non-empty environment id"),
        ("seed", config.seed, 0 <= config.seed < 2**31, "allowed: 0 <= seed < 2**31"),
        ("num_envs", config.num_envs, config.num_envs >= 0, "allowed: >= 1 (0 = default)"),
        ("total_steps", config.total_steps, config.total_steps > 0, "allowed: > 0"),
        ("eval_every", config.eval_every, config.eval_every >= 0, "allowed: >= 0 (0 = at end)"),
        ("eval_episodes", config.eval_episodes, config.eval_episodes >= 0, "allowed: >= 0"),
        ("checkpoint_every", config.checkpoint_every, config.checkpoint_every > 0, "allowed: > 0"),
        ("keep_checkpoints", config.keep_checkpoints, config.keep_checkpoints >= 1, ">= 1"),
        ("log_every", config.log_every, config.log_every >= 1, "allowed: >= 1"),
        ("torso", config.torso, config.torso in TORSO_CHOICES, "|".join(TORSO_CHOICES)),
        ("backend", config.backend, config.backend in BACKENDS, "allowed: " + "|".join(BACKENDS)),
        ("driver", config.driver, config.driver in DRIVERS, "allowed: " + "|".join(DRIVERS)),
    ]
    for name, value, ok, allowed in checks:
        if not ok:
            raise ConfigError(f"--{name.replace('_', '-')}", value, allowed)
    _check_torso_fits_env(config)
    for name in ("seed", "num_envs", "total_steps", "eval_every", "eval_episodes"):
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"--{name.replace('_', '-')}", value, "must be an integer")
    seeds = config.seeds
    if not isinstance(seeds, tuple) or not all(
        isinstance(s, int) and not isinstance(s, bool) and 0 <= s < 2**31 for s in seeds
    ):
        raise ConfigError("--seeds", seeds, "allowed: integers 0 <= seed < 2**31")
    if len(set(seeds)) != len(seeds):
        raise ConfigError("--seeds", list(seeds), "each seed at most once")
    validate_eval_settings(
        config.eval_policy,
        config.eval_epsilon,
        config.eval_max_episode_steps,
        algo=config.algo,
    )


def validate_eval_settings(
    policy: Any, epsilon: Any, max_episode_steps: Any, *, algo: str | None = None
) -> None:
    """Raise `ConfigError` naming the flag of the first bad evaluation setting.

    Args:
      policy: one of `EVAL_POLICIES`.
      epsilon: a number in [0, 1].
      max_episode_steps: an integer >= 0 (0 = auto).
      algo: when given, "sample" is refused for algorithms without a learned
        stochastic policy (dqn).
    """
    if policy not in EVAL_POLICIES:
        raise ConfigError("--eval-policy", policy, "allowed: " + "|".join(EVAL_POLICIES))
    if algo is not None and policy == "sample":
        from softeq.adapters.agents import get_algorithm

        if not get_algorithm(algo).stochastic_policy:
            raise ConfigError(
                "--eval-policy",
                policy,
                f"allowed for --algo {algo}: auto|greedy|epsilon ({algo} learns no stochastic "
                "policy to sample from)",
            )
    is_number = isinstance(epsilon, int | float) and not isinstance(epsilon, bool)
    if not is_number or not 0.0 <= epsilon <= 1.0:  # NaN fails the range test
        raise ConfigError("--eval-epsilon", epsilon, "allowed: a number with 0 <= ε <= 1")
    if isinstance(max_episode_steps, bool) or not isinstance(max_episode_steps, int):
        raise ConfigError("--eval-max-episode-steps", max_episode_steps, "must be an integer")
    if max_episode_steps < 0:
        raise ConfigError(
            "--eval-max-episode-steps",
            max_episode_steps,
            "allowed: >= 1 agent steps (0 = auto: "
            f"{ATARI_EVAL_MAX_EPISODE_STEPS} for Atari, no extra cap otherwise)",
        )


class EvalProtocol(typing.NamedTuple):
    """How evaluation episodes are played (resolved from a `RunConfig`).

    Attributes:
      policy: "greedy", "sample" or "epsilon".
      epsilon: ε of the "epsilon" policy.
      max_episode_steps: per-episode cap in agent steps (0 = none beyond the env's own).
    """

    policy: str
    epsilon: float
    max_episode_steps: int


def resolve_eval_protocol(config: RunConfig) -> EvalProtocol:
    """The evaluation protocol of `config`, with "auto" and 0 replaced by the standard ones.

    Atari follows Mnih et al. (2015): agents with a learned stochastic policy
    (a2c, soft-q, sac-discrete) sample from it, Q-learners (dqn, mdqn) act
    ε-greedily with ε = `eval_epsilon` (0.05 by default), and an episode ends after
    `ATARI_EVAL_MAX_EPISODE_STEPS` agent steps (5 minutes of play); a greedy
    agent that never presses FIRE would otherwise idle for the env's whole
    30-minute limit. Classic control and MinAtar evaluate greedily, with only the
    env's own time limit (500 steps for CartPole-v1 and Acrobot-v1).
    """
    atari = is_atari(config.env_id)
    policy = config.eval_policy
    if policy == "auto":
        if not atari:
            policy = "greedy"
        else:
            from softeq.adapters.agents import get_algorithm

            stochastic = get_algorithm(config.algo).stochastic_policy
            policy = "sample" if stochastic else "epsilon"
    cap = config.eval_max_episode_steps
    if cap == 0 and atari:
        cap = ATARI_EVAL_MAX_EPISODE_STEPS
    return EvalProtocol(policy, float(config.eval_epsilon), int(cap))


def default_run_dir(config: RunConfig) -> str:
    """`runs/<env>-<algo>-seed<k>-<timestamp>`; several seeds name themselves instead.

    `--seeds 0 1 2` gives `...-seeds0-1-2-...`, more than four seeds `...-<n>seeds-...`;
    the env id has `/` replaced by `-`.
    """
    env = config.env_id.replace("/", "-")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    if not config.seeds:
        seeds = f"seed{config.seed}"
    elif len(config.seeds) <= 4:
        seeds = "seeds" + "-".join(map(str, config.seeds))
    else:
        seeds = f"{len(config.seeds)}seeds"
    return os.path.join("runs", f"{env}-{config.algo}-{seeds}-{stamp}")


def _check_torso_fits_env(config: RunConfig) -> None:
    """The convolutional torsos are built for one frame size each; the MLP takes any."""
    if config.torso not in ("nature", "minatar") or not config.env_id:
        return
    default = default_torso(config.env_id)
    if config.torso != default:
        frames = {"nature": "84×84 Atari frames", "minatar": "10×10 MinAtar frames"}
        raise ConfigError(
            "--torso",
            config.torso,
            f"allowed for --env {config.env_id}: auto|{default}|mlp "
            f"({config.torso} takes {frames[config.torso]})",
        )


def default_torso(env_id: str) -> str:
    """The torso `"auto"` picks for `env_id`: nature (Atari), minatar (MinAtar) or mlp."""
    from softeq.adapters.jax_envs import is_minatar

    if is_minatar(env_id):
        return "minatar"
    return "nature" if is_atari(env_id) else "mlp"


def resolve_torso(config: RunConfig) -> str:
    return default_torso(config.env_id) if config.torso == "auto" else config.torso


def resolve_seeds(config: RunConfig) -> tuple[int, ...]:
    """The seeds of a run: `config.seeds` when given, else `(config.seed,)`."""
    return config.seeds if config.seeds else (config.seed,)


def resolve_backend(config: RunConfig) -> str:
    """Where the env comes from: "gymnax", or the host backend ("auto", "ale", "gymnasium").

    "auto" becomes "gymnax" for the ids gymnax has (CartPole-v1, Acrobot-v1,
    the MinAtar games) unless `driver` is "host"; otherwise it stays "auto",
    which `make_vector_env` turns into ALE for `ALE/…` and gymnasium for the rest.
    Raises `ConfigError` naming the flag for combinations that cannot run.
    """
    from softeq.adapters.jax_envs import JAX_ENV_IDS, is_minatar

    env_id, backend, driver = config.env_id, config.backend, config.driver
    if backend == "gymnax":
        if env_id not in JAX_ENV_IDS:
            raise ConfigError(
                "--backend",
                "gymnax",
                f"gymnax has no {env_id!r}; its envs here: " + ", ".join(JAX_ENV_IDS),
            )
        if driver == "host":
            raise ConfigError(
                "--driver",
                "host",
                "gymnax envs run inside the jitted program: use --driver "
                "jit (or auto), or --backend gymnasium for the host loop",
            )
        return "gymnax"
    if is_minatar(env_id):
        if backend != "auto":
            raise ConfigError(
                "--backend", backend, f"{env_id} exists only in gymnax: use --backend gymnax"
            )
        if driver == "host":
            raise ConfigError(
                "--driver",
                "host",
                f"{env_id} runs only inside the jitted program (gymnax): use --driver jit",
            )
        return "gymnax"
    if backend == "auto" and driver != "host" and env_id in JAX_ENV_IDS:
        return "gymnax"
    return backend


def resolve_driver(config: RunConfig) -> str:
    """ "jit" or "host": how the run is driven (see `resolve_backend` for the env's origin).

    "auto" is "jit" for the gymnax backend and "host" otherwise. ALE games can
    also be jitted (`--driver jit` with backend auto or ale:
    `softeq.adapters.ale_xla`), but "auto" keeps them on the host loop: on a CPU
    the Nature-CNN learner, not the emulator, bounds an Atari run, so the jitted
    driver gains little there (benchmarks/RESULTS-atari-driver.md). Raises
    `ConfigError` for a jitted run of an env that cannot be traced, and for
    several seeds in one host-loop run.
    """
    backend = resolve_backend(config)
    driver = config.driver
    if driver == "auto":
        driver = "jit" if backend == "gymnax" else "host"
    if driver == "jit" and backend != "gymnax":
        if is_atari(config.env_id):
            if backend in ("auto", "ale"):
                return driver  # ale_py's XLA interface (softeq.adapters.ale_xla)
            raise ConfigError(
                "--backend",
                backend,
                "the jitted driver steps ALE games through ale_py's XLA interface: use "
                "--backend ale (or auto), or --driver host for gymnasium's Atari envs",
            )
        raise ConfigError(
            "--driver",
            "jit",
            f"runs gymnax envs only, not --backend {config.backend}; use "
            "--backend gymnax (or auto)",
        )
    if driver == "host" and len(resolve_seeds(config)) > 1:
        raise ConfigError(
            "--seeds",
            list(config.seeds),
            "several seeds in one run need the jitted driver "
            "(--driver jit, gymnax envs); for host-loop envs use `softeq compare --seeds`",
        )
    return driver


# --------------------------------------------------------------------------------------
# Algorithm configs (owned by softeq.adapters.agents) seen as flat, typed field lists.
# --------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class FieldSpec:
    """One algorithm hyperparameter: its name, python type, default and choices."""

    name: str
    type: type
    default: Any
    choices: tuple[str, ...] | None
    help: str

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


def _resolve_type(annotation: Any) -> type:
    if isinstance(annotation, type):
        return annotation
    if isinstance(annotation, str):
        table = {"int": int, "float": float, "str": str, "bool": bool}
        if annotation in table:
            return table[annotation]
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return type(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return _resolve_type(args[0])
    raise TypeError(f"algorithm config field annotation {annotation!r} is not int/float/str/bool")


def algo_field_specs(config_cls: type) -> list[FieldSpec]:
    """The hyperparameters of an algorithm config dataclass as `FieldSpec`s."""
    hints = typing.get_type_hints(config_cls)
    specs = []
    for f in dataclasses.fields(config_cls):
        if f.name.startswith("_"):
            continue
        ftype = _resolve_type(hints.get(f.name, f.type))
        choices = f.metadata.get("choices") if f.metadata else None
        annotation = hints.get(f.name, f.type)
        if choices is None and typing.get_origin(annotation) is typing.Literal:
            choices = typing.get_args(annotation)
        if choices is None and ftype is str:
            choices = _known_choices().get(f.name)
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = None
        help_text = (f.metadata.get("help") if f.metadata else None) or ""
        specs.append(
            FieldSpec(f.name, ftype, default, tuple(choices) if choices else None, help_text)
        )
    return specs


def parse_field_value(spec: FieldSpec, text: str | Any) -> Any:
    """Convert `text` to the field's type, raising `ConfigError` naming the flag."""
    if not isinstance(text, str):
        value = text
    elif spec.type is bool:
        lowered = text.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            value = True
        elif lowered in ("0", "false", "no", "off"):
            value = False
        else:
            raise ConfigError(spec.flag, text, "allowed: true|false")
    elif spec.type is int:
        try:
            value = int(float(text)) if "e" in text.lower() else int(text)
        except ValueError:
            raise ConfigError(spec.flag, text, "must be an integer") from None
        if "e" in text.lower() and float(text) != value:
            raise ConfigError(spec.flag, text, "must be an integer")
    elif spec.type is float:
        try:
            value = float(text)
        except ValueError:
            raise ConfigError(spec.flag, text, "must be a number") from None
    else:
        value = text
    if spec.type is float and isinstance(value, int | float) and not math.isfinite(value):
        raise ConfigError(spec.flag, value, "must be a finite number")
    if spec.choices is not None and value not in spec.choices:
        raise ConfigError(spec.flag, value, "allowed: " + "|".join(spec.choices))
    return value


def build_algo_config(algo: str, env_id: str, overrides: Mapping[str, Any]) -> Any:
    """The algorithm's per-env default config with `overrides` (field name → value)."""
    from softeq.adapters import agents
    from softeq.adapters.agents.config import ConfigFieldError

    check_algo(algo)
    base = agents.default_config(algo, env_id)
    specs = {s.name: s for s in algo_field_specs(type(base))}
    changes = {}
    for name, raw in overrides.items():
        key = name.replace("-", "_")
        if key not in specs:
            allowed = ", ".join(sorted(specs))
            raise ConfigError(
                "--" + key.replace("_", "-"),
                raw,
                f"not a hyperparameter of algorithm {algo!r} (its fields: {allowed})",
            )
        changes[key] = parse_field_value(specs[key], raw)
    try:
        return dataclasses.replace(base, **changes)
    except ConfigFieldError as exc:
        if exc.field in changes:
            raise ConfigError(specs[exc.field].flag, changes[exc.field], str(exc)) from None
        # a default broke a rule only together with a changed field (e.g. batch size
        # above replay capacity): name the changed fields
        raise ConfigError(
            f"--algo {algo}", dict(changes), f"invalid configuration: {exc}"
        ) from None
    except (ValueError, TypeError) as exc:
        raise ConfigError(
            f"--algo {algo}", dict(changes), f"invalid configuration: {exc}"
        ) from None


def check_env(env_id: str) -> None:
    """Raise `ConfigError` unless `make_vector_env` or `make_jax_env` supports `env_id`."""
    from softeq.adapters import envs
    from softeq.adapters.jax_envs import JAX_ENV_IDS

    if env_id not in envs.ENV_KINDS and env_id not in JAX_ENV_IDS:
        raise ConfigError(
            "--env",
            env_id,
            "allowed: CartPole-v1, Acrobot-v1, a MinAtar game (Asterix-MinAtar, "
            "Breakout-MinAtar, Freeway-MinAtar, Seaquest-MinAtar, SpaceInvaders-MinAtar) "
            "or ALE/<Game>-v5 for a game that ale-py registers (e.g. ALE/Pong-v5)",
        )


def check_algo(algo: str) -> None:
    from softeq.adapters import agents

    if algo not in agents.ALGORITHMS:
        raise ConfigError("--algo", algo, "allowed: " + "|".join(agents.ALGORITHMS))


def algo_config_from_dict(algo: str, values: Mapping[str, Any]) -> Any:
    """Rebuild an algorithm config saved by `save_run_configs`."""
    from softeq.adapters import agents

    cls = agents.config_for(algo)
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in values.items() if k in names})


def resolve_num_envs(run: RunConfig, algo_config: Any) -> int:
    """`run.num_envs`, or the algorithm's default when it is 0.

    The default comes from the algorithm config's `num_envs` field when it has one,
    else from the registry (`agents.default_num_envs(algo, env_id)`, per env family).
    """
    if run.num_envs > 0:
        return run.num_envs
    default = getattr(algo_config, "num_envs", None)
    if isinstance(default, int) and default > 0:
        return default
    from softeq.adapters import agents

    return int(agents.default_num_envs(run.algo, run.env_id))


def check_batch_compatibility(num_envs: int, algo: str, algo_config: Any) -> None:
    """Check that the learner batch can be split evenly over the local devices.

    Actor-critic learners shard the `[num_envs]` axis of each rollout over
    `jax.local_device_count()` devices; DQN shards its replay batch.
    """
    import jax

    from softeq.adapters.agents import get_algorithm

    devices = jax.local_device_count()
    if get_algorithm(algo).on_policy:
        if num_envs % devices:
            raise ConfigError(
                "--num-envs",
                num_envs,
                f"must be a multiple of the {devices} local devices the learner batch "
                f"is split over",
            )
    else:
        batch = getattr(algo_config, "batch_size", None)
        if isinstance(batch, int) and batch % devices:
            raise ConfigError(
                "--batch-size",
                batch,
                f"must be a multiple of the {devices} local devices the learner batch "
                f"is split over",
            )


# --------------------------------------------------------------------------------------
# Saving / loading.
# --------------------------------------------------------------------------------------


def configs_to_dict(run: RunConfig, algo_config: Any) -> dict[str, Any]:
    return {
        "format_version": CONFIG_FORMAT_VERSION,
        "run": run.to_dict(),
        "algo_config_class": type(algo_config).__name__,
        "algo": dataclasses.asdict(algo_config),
    }


def format_configs(run: RunConfig, algo_config: Any) -> str:
    """Human-readable two-block listing of the full configuration."""
    lines = ["run config:"]
    for k, v in run.to_dict().items():
        lines.append(f"  {k:<18} {v!r}")
    lines.append(f"algorithm config ({type(algo_config).__name__}):")
    for k, v in dataclasses.asdict(algo_config).items():
        lines.append(f"  {k:<18} {v!r}")
    return "\n".join(lines)


def save_run_configs(run_dir: str | os.PathLike, run: RunConfig, algo_config: Any) -> Path:
    """Write `config.json` into `run_dir` atomically; returns its path."""
    return write_json(Path(run_dir) / CONFIG_FILENAME, configs_to_dict(run, algo_config))


def read_config_json(run_dir: str | os.PathLike) -> dict[str, Any] | None:
    path = Path(run_dir) / CONFIG_FILENAME
    if not path.exists():
        return None
    with open(path) as fh:
        return json.load(fh)


def load_run_configs(run_dir: str | os.PathLike) -> tuple[RunConfig, Any]:
    """Read `(RunConfig, algo_config)` back from `run_dir/config.json`."""
    data = read_config_json(run_dir)
    if data is None:
        raise FileNotFoundError(f"no {CONFIG_FILENAME} in run folder {str(run_dir)!r}")
    return config_dicts_to_objects(data)


def config_dicts_to_objects(data: Mapping[str, Any]) -> tuple[RunConfig, Any]:
    run_fields = {f.name for f in dataclasses.fields(RunConfig)}
    run = RunConfig(**{k: v for k, v in data["run"].items() if k in run_fields})
    return run, algo_config_from_dict(run.algo, data["algo"])


def config_differences(
    saved: Mapping[str, Any], current: Mapping[str, Any], *, ignore: Sequence[str] = ()
) -> list[str]:
    """The fields whose values differ, as `run.x saved A, now B` / `algo.y ...` strings."""
    diffs = []
    for section in ("run", "algo"):
        a, b = saved.get(section, {}), current.get(section, {})
        for key in sorted(set(a) | set(b)):
            if section == "run" and key in ignore:
                continue
            if a.get(key) != b.get(key):
                diffs.append(f"{section}.{key} saved {a.get(key)!r}, now {b.get(key)!r}")
    return diffs
