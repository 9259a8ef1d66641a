"""Vectorised environments with one learner-facing contract.

Two families are supported:

* **Atari** — any `ALE/<Game>-v5` id that ale-py registers. Frames are
  preprocessed the DQN way (no-op starts, frame skip with max-pooling of the
  last two frames, 84×84 grayscale, a stack of the last 4 frames, rewards
  clipped to their sign, sticky actions with probability 0.25). Two backends
  produce the same observations layout:

  - `"ale"`: `ale_py.AtariVectorEnv`, the C++ vector interface (threaded, the
    fast path);
  - `"gymnasium"`: a `gymnasium.vector.SyncVectorEnv` of
    `gym.make("ALE/<Game>-v5", frameskip=1)` + `AtariPreprocessing` +
    `FrameStackObservation`. The base env is made with `frameskip=1` because
    the preprocessing wrapper does the skipping: frames are skipped once.

* **Classic control** — `"CartPole-v1"` and `"Acrobot-v1"` through
  `SyncVectorEnv`, float32 vector observations, for fast runs.

Observation layout
------------------
Atari observations are `uint8` arrays of shape `[N, stack, H, W]` (default
`[N, 4, 84, 84]`): the frame stack comes **first**, oldest frame at index 0,
newest at index `stack - 1`. This is what both backends produce natively, so no
copy is made per step; `softeq.adapters.networks.nature_cnn_torso` moves the
stack to the channel axis itself. With `grayscale=False` the shape is
`[N, stack, H, W, 3]`. At the start of an episode the older slots of the stack
are zeros. Classic-control observations are `float32 [N, D]`.

Step semantics (the learner-facing contract)
--------------------------------------------
`step(actions)` returns a `StepResult` whose `obs` is always the observation
the *next* action is chosen from: where an episode ended this step, the env has
already been reset and `obs` is the first observation of the new episode
(gymnasium's `SAME_STEP` autoreset). The last observation of the finished
episode is handed over separately in `final_obs` (equal to `obs` where no
episode ended). A `terminated` transition gets discount 0; a `truncated` one
(a time limit: the 30-minute Atari limit, the 500-step limits of CartPole and
Acrobot) is not terminal and bootstraps from `final_obs` (Pardo et al. 2018;
`softeq.core.bootstrap_truncations`). Never bootstrap an ended episode from
`obs`, which belongs to the next episode.

* `reward` — float32 `[N]`; the sign of the raw reward for Atari when
  `clip_rewards` is on, the raw reward otherwise.
* `terminated` — bool `[N]`; the episode reached a terminal state (or, with
  `terminal_on_life_loss`, a life was lost): the value target must not
  bootstrap through this transition.
* `truncated` — bool `[N]`; the episode was cut by a time limit.
* `episode_returns` / `episode_lengths` — float64 `[N]`, NaN except where a
  *game* ended this step (terminated by the game, or truncated), where they
  hold the raw, unclipped return and the number of agent steps of the whole
  game. With `terminal_on_life_loss` a life loss sets `terminated` but the
  game goes on (the emulator is not reset) and the logged episode is still the
  full game.

Seeding: `make_vector_env(..., seed=s)` seeds the first `reset()` so that
sub-env `i` gets seed `s + i`; later auto-resets draw from each sub-env's own
generator. Same seed and same actions give the same observations, rewards and
flags on CPU, for both backends and for classic control.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, SyncVectorEnv

CLASSIC_CONTROL_IDS: tuple[str, ...] = ("CartPole-v1", "Acrobot-v1")
BACKENDS: tuple[str, ...] = ("auto", "ale", "gymnasium")
_EXAMPLE_GAMES: tuple[str, ...] = ("Pong", "Breakout", "SpaceInvaders", "Seaquest", "Qbert")
_MAX_SEED = 2**31 - 1


@functools.cache
def _ale_module() -> Any | None:
    """Import ale_py once and register its envs with gymnasium; None if not installed."""
    try:
        import ale_py
    except ImportError:
        return None
    gym.register_envs(ale_py)
    return ale_py


@functools.cache
def _atari_roms() -> dict[str, str]:
    """Map each registered `ALE/<Game>-v5` id to its ROM name (e.g. "ms_pacman")."""
    if _ale_module() is None:
        return {}
    roms = {}
    for env_id, spec in gym.registry.items():
        if env_id.startswith("ALE/") and env_id.endswith("-v5") and "game" in spec.kwargs:
            roms[env_id] = spec.kwargs["game"]
    return dict(sorted(roms.items()))


def _env_kinds() -> tuple[str, ...]:
    return CLASSIC_CONTROL_IDS + tuple(_atari_roms())


ENV_KINDS: tuple[str, ...] = _env_kinds()
"""Every supported env id: the classic-control ids, then each `ALE/<Game>-v5`
id registered by ale-py (empty of Atari ids when ale-py is not installed)."""


def _allowed_ids_text() -> str:
    examples = ", ".join(repr(f"ALE/{game}-v5") for game in _EXAMPLE_GAMES)
    text = ", ".join(repr(i) for i in CLASSIC_CONTROL_IDS)
    if _ale_module() is None:
        return f"{text} (ALE/<Game>-v5 ids need ale-py: install softeq[atari])"
    return f"{text}, or 'ALE/<Game>-v5' for a game ale-py registers (e.g. {examples})"


def _check_env_id(env_id: str) -> None:
    if not isinstance(env_id, str):
        raise TypeError(f"`env_id` must be a str, got {env_id!r} ({type(env_id).__name__}).")
    if env_id in CLASSIC_CONTROL_IDS or env_id in _atari_roms():
        return
    raise ValueError(f"Unsupported `env_id`={env_id!r}; allowed: {_allowed_ids_text()}.")


def _is_int(value) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _check_seed(seed, *, num_envs: int, name: str = "seed") -> int:
    if not _is_int(seed) or not 0 <= seed <= _MAX_SEED - num_envs:
        raise ValueError(
            f"`{name}` must be an int in [0, {_MAX_SEED - num_envs}] (sub-env i gets seed + i), "
            f"got {seed!r}."
        )
    return int(seed)


@dataclasses.dataclass(frozen=True)
class AtariOptions:
    """Atari preprocessing options, applied identically by both backends.

    Attributes:
      frame_skip: emulator frames per agent step (the action is repeated); done
        once, by the preprocessing, never also by the base env.
      noop_max: at most this many no-op actions after each reset (0 = none).
      frame_size: observations are `frame_size × frame_size`.
      grayscale: grayscale frames; False gives RGB, `[stack, H, W, 3]`.
      stack: number of most recent frames stacked in one observation.
      max_pool: max-pool the last two emulator frames of each step (removes
        sprite flicker). Only `True` is available on the gymnasium backend.
      clip_rewards: the learner sees `sign(reward)`; logged returns stay raw.
      terminal_on_life_loss: flag `terminated` on each life loss (the game
        itself goes on; the logged episode is the full game).
      repeat_action_probability: sticky-action probability per emulator frame
        (0.25 is the v5 default).
      full_action_space: use all 18 actions instead of the game's minimal set.
      max_episode_frames: truncate a game after this many emulator frames
        (108 000 = 30 minutes of play = 27 000 agent steps at frame_skip 4).
    """

    frame_skip: int = 4
    noop_max: int = 30
    frame_size: int = 84
    grayscale: bool = True
    stack: int = 4
    max_pool: bool = True
    clip_rewards: bool = True
    terminal_on_life_loss: bool = False
    repeat_action_probability: float = 0.25
    full_action_space: bool = False
    max_episode_frames: int = 108_000

    def __post_init__(self):
        for name, low in (
            ("frame_skip", 1),
            ("noop_max", 0),
            ("frame_size", 8),
            ("stack", 1),
            ("max_episode_frames", 1),
        ):
            value = getattr(self, name)
            if not _is_int(value) or value < low:
                raise ValueError(f"`{name}` must be an int >= {low}, got {value!r}.")
        for name in (
            "grayscale",
            "max_pool",
            "clip_rewards",
            "terminal_on_life_loss",
            "full_action_space",
        ):
            value = getattr(self, name)
            if not isinstance(value, bool | np.bool_):
                raise TypeError(f"`{name}` must be a bool, got {value!r}.")
        p = self.repeat_action_probability
        if not isinstance(p, int | float) or isinstance(p, bool) or not 0.0 <= p <= 1.0:
            raise ValueError(f"`repeat_action_probability` must be a float in [0, 1], got {p!r}.")


class StepResult(NamedTuple):
    """What `VectorEnv.step` returns; N is `num_envs`.

    Attributes:
      obs: `[N, *observation_shape]` next observations (the new episode's first
        observation where an episode ended this step).
      reward: float32 `[N]` rewards (sign-clipped for Atari when `clip_rewards`).
      terminated: bool `[N]` terminal transitions (no bootstrap through them).
      truncated: bool `[N]` episodes cut by a time limit.
      final_obs: `[N, *observation_shape]` the last observation of each episode
        that ended this step (what a truncated transition bootstraps from);
        equal to `obs` where no episode ended.
      episode_returns: float64 `[N]` raw return of each game that ended this
        step, NaN elsewhere.
      episode_lengths: float64 `[N]` agent steps of each game that ended this
        step, NaN elsewhere.
    """

    obs: np.ndarray
    reward: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    final_obs: np.ndarray
    episode_returns: np.ndarray
    episode_lengths: np.ndarray


class VectorEnv:
    """A batch of `num_envs` environments behind the contract of this module.

    Do not construct directly; use `make_vector_env`.

    Attributes:
      env_id: the env id it was made from.
      num_envs: N, the number of sub-environments.
      observation_shape: shape of one observation (`(stack, H, W)` for Atari,
        `(D,)` for classic control).
      observation_dtype: `np.uint8` for Atari, `np.float32` for classic control.
      num_actions: size of the discrete action set.
      is_atari: whether this is an ALE env.
      backend: `"ale"` or `"gymnasium"`, the backend actually used.
      last_info: the backend's info dict of the latest reset/step (diagnostics:
        for Atari it holds per-env `lives`, `episode_frame_number`, ...).
    """

    def __init__(
        self,
        *,
        env_id: str,
        inner: Any,
        num_envs: int,
        seed: int,
        is_atari: bool,
        backend: str,
        observation_shape: tuple[int, ...],
        observation_dtype: Any,
        num_actions: int,
        clip_rewards: bool,
        terminal_on_life_loss: bool,
    ):
        self.env_id = env_id
        self.num_envs = num_envs
        self.observation_shape = tuple(int(d) for d in observation_shape)
        self.observation_dtype = np.dtype(observation_dtype).type
        self.num_actions = int(num_actions)
        self.is_atari = is_atari
        self.backend = backend
        self.last_info: dict[str, Any] = {}
        self._inner = inner
        self._seed = seed
        self._clip_rewards = clip_rewards
        self._terminal_on_life_loss = terminal_on_life_loss
        self._needs_reset = True
        self._closed = False
        self._returns = np.zeros(num_envs, np.float64)
        self._lengths = np.zeros(num_envs, np.int64)
        self._lives = np.zeros(num_envs, np.int64)

    def __repr__(self) -> str:
        return (
            f"VectorEnv(env_id={self.env_id!r}, num_envs={self.num_envs}, "
            f"backend={self.backend!r}, observation_shape={self.observation_shape}, "
            f"num_actions={self.num_actions})"
        )

    def _observations(self, obs) -> np.ndarray:
        return np.asarray(obs, dtype=self.observation_dtype)

    def _final_observations(self, obs: np.ndarray, info: dict[str, Any], ended) -> np.ndarray:
        """`obs` with each ended sub-env's row replaced by its episode's last observation."""
        if not ended.any():
            return obs
        final = obs.copy()
        # gymnasium: an object array with None where no episode ended; ALE: a dense array.
        given = info["final_obs"]
        for i in np.flatnonzero(ended):
            final[i] = np.asarray(given[i], dtype=self.observation_dtype)
        return final

    def _track_lives(self, info: dict[str, Any]) -> None:
        if self.is_atari and "lives" in info:
            self._lives = np.asarray(info["lives"], np.int64).copy()

    def reset(self, seed: int | None = None) -> np.ndarray:
        """Reset every sub-environment.

        Args:
          seed: sub-env i is seeded with `seed + i`. None on the first reset
            uses the seed given to `make_vector_env`; None later continues the
            sub-envs' own random streams.

        Returns:
          `[N, *observation_shape]` first observations.
        """
        if self._closed:
            raise RuntimeError(f"{self!r} is closed.")
        if seed is None and self._seed is not None:
            seed = self._seed
        if seed is not None:
            seed = _check_seed(seed, num_envs=self.num_envs)
        self._seed = None
        obs, info = self._inner.reset(seed=seed)
        self.last_info = info
        self._track_lives(info)
        self._returns[:] = 0.0
        self._lengths[:] = 0
        self._needs_reset = False
        return self._observations(obs)

    def _check_actions(self, actions) -> np.ndarray:
        actions = np.asarray(actions)
        if actions.shape != (self.num_envs,) or not np.issubdtype(actions.dtype, np.integer):
            raise ValueError(
                f"`actions` must be an int array of shape ({self.num_envs},), got dtype "
                f"{actions.dtype} and shape {actions.shape}."
            )
        if actions.size and (actions.min() < 0 or actions.max() >= self.num_actions):
            raise ValueError(
                f"`actions` must lie in [0, {self.num_actions}), got values in "
                f"[{actions.min()}, {actions.max()}]."
            )
        return actions.astype(np.int64, copy=False)

    def step(self, actions: np.ndarray) -> StepResult:
        """Advance every sub-environment by one agent step.

        Args:
          actions: int `[N]` action indices in `[0, num_actions)`.

        Returns:
          A `StepResult` (see the module docstring for the conventions).
        """
        if self._closed:
            raise RuntimeError(f"{self!r} is closed.")
        if self._needs_reset:
            raise RuntimeError("Call `reset()` before the first `step()`.")
        actions = self._check_actions(actions)
        obs, reward, terminated, truncated, info = self._inner.step(actions)
        self.last_info = info
        raw = np.asarray(reward, np.float64)
        terminated = np.asarray(terminated, bool).copy()
        truncated = np.asarray(truncated, bool).copy()
        game_over = terminated | truncated

        self._returns += raw
        self._lengths += 1
        episode_returns = np.where(game_over, self._returns, np.nan)
        episode_lengths = np.where(game_over, self._lengths.astype(np.float64), np.nan)
        self._returns[game_over] = 0.0
        self._lengths[game_over] = 0

        if self.is_atari and "lives" in info:
            lives = np.asarray(info["lives"], np.int64)
            if self._terminal_on_life_loss:
                # Where the game ended, `lives` already belongs to the new game.
                terminated |= (lives < self._lives) & ~game_over
            self._lives = lives.copy()

        reward_out = np.sign(raw) if self._clip_rewards else raw
        obs = self._observations(obs)
        return StepResult(
            obs=obs,
            reward=reward_out.astype(np.float32),
            terminated=terminated,
            truncated=truncated,
            final_obs=self._final_observations(obs, info, game_over),
            episode_returns=episode_returns,
            episode_lengths=episode_lengths,
        )

    def cut_episodes(self, mask) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """End the running episodes of the sub-envs in `mask` now and start new ones there.

        For a limit the caller imposes on top of the env's own, such as an
        evaluation's per-episode cap. No later step reports a cut episode; its
        raw return and length so far are returned here instead. The other
        sub-envs are left as they are. The new episodes continue each sub-env's
        own random stream (nothing is reseeded), so a seeded run stays
        reproducible.

        Args:
          mask: bool `[N]`, the sub-envs whose episodes end (at least one).

        Returns:
          `(obs, episode_returns, episode_lengths)`: `[N, *observation_shape]`
          the observations to act on next (a new episode's first observation
          where `mask`, the current one elsewhere); float64 `[N]` raw return
          and agent-step length of each cut episode, NaN where `mask` is False.
        """
        if self._closed:
            raise RuntimeError(f"{self!r} is closed.")
        if self._needs_reset:
            raise RuntimeError("Call `reset()` before `cut_episodes()`.")
        mask = np.asarray(mask)
        if mask.shape != (self.num_envs,) or mask.dtype != np.bool_ or not mask.any():
            raise ValueError(
                f"`mask` must be a bool array of shape ({self.num_envs},) selecting at least one "
                f"sub-env, got dtype {mask.dtype}, shape {mask.shape} and {int(mask.sum())} set."
            )
        episode_returns = np.where(mask, self._returns, np.nan)
        episode_lengths = np.where(mask, self._lengths.astype(np.float64), np.nan)
        obs, info = self._inner.reset(options={"reset_mask": mask.copy()})
        self.last_info = info
        if self.is_atari and "lives" in info:
            self._lives[mask] = np.asarray(info["lives"], np.int64)[mask]
        self._returns[mask] = 0.0
        self._lengths[mask] = 0
        return self._observations(obs), episode_returns, episode_lengths

    def close(self) -> None:
        """Release the sub-environments (idempotent)."""
        if not self._closed:
            self._inner.close()
            self._closed = True

    def __enter__(self) -> VectorEnv:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ----------------------------------------------------------------------------------
    # Exact state as plain data (checkpoints of classic-control runs).
    # ----------------------------------------------------------------------------------

    def get_state(self) -> dict[str, Any] | None:
        """The complete state of a classic-control vector env as plain data, or None for Atari.

        Plain data means dicts, lists, str, int, float, bool, None and numpy
        arrays, so a checkpoint can store it without pickle. It holds, per
        sub-env, the physics state (`[4]` float64 for CartPole and Acrobot),
        CartPole's `steps_beyond_terminated`, the time limit's step count and the
        bit-generator state of the sub-env's `np_random` (which draws the
        auto-reset starts), plus this wrapper's running returns, lengths and
        lives. `set_state` on a fresh env of the same id and size continues
        exactly where this one was. Atari emulators cannot export their state:
        None.
        """
        if self.is_atari:
            return None
        sub_envs = []
        for sub in self._inner.envs:
            base = sub.unwrapped
            physics = getattr(base, "state", None)
            entry: dict[str, Any] = {
                "physics": None if physics is None else np.array(physics, copy=True),
                "rng": base.np_random.bit_generator.state,
                "rng_seed": base.np_random_seed,
            }
            if hasattr(base, "steps_beyond_terminated"):
                entry["steps_beyond_terminated"] = base.steps_beyond_terminated
            for wrapper in _wrapper_chain(sub):
                if isinstance(wrapper, gym.wrappers.TimeLimit):
                    entry["elapsed_steps"] = wrapper._elapsed_steps
                if isinstance(wrapper, gym.wrappers.OrderEnforcing):
                    entry["has_reset"] = wrapper._has_reset
            sub_envs.append(entry)
        return {
            "kind": "classic-control",
            "env_id": self.env_id,
            "num_envs": self.num_envs,
            "returns": self._returns.copy(),
            "lengths": self._lengths.copy(),
            "lives": self._lives.copy(),
            "needs_reset": self._needs_reset,
            "pending_seed": self._seed,
            # Read only by gymnasium's NEXT_STEP / DISABLED modes; kept so the copy is whole.
            "autoreset_envs": np.array(self._inner._autoreset_envs, copy=True),
            "sub_envs": sub_envs,
        }

    def set_state(self, state: dict[str, Any]) -> None:
        """Load a state from `get_state` of an env with the same id and `num_envs`.

        Raises:
          ValueError: `state` was taken from another kind of env, or this env
            cannot restore a state (Atari).
        """
        if self._closed:
            raise RuntimeError(f"{self!r} is closed.")
        if self.is_atari:
            raise ValueError(f"{self!r} cannot restore a saved state (Atari emulator state).")
        if (
            not isinstance(state, dict)
            or state.get("kind") != "classic-control"
            or state.get("env_id") != self.env_id
            or state.get("num_envs") != self.num_envs
            or len(state.get("sub_envs", ())) != self.num_envs
        ):
            found = (
                {k: state.get(k) for k in ("kind", "env_id", "num_envs")}
                if isinstance(state, dict)
                else type(state).__name__
            )
            raise ValueError(
                f"`state` must come from get_state() of a classic-control {self.env_id!r} env "
                f"with {self.num_envs} sub-envs, got {found}."
            )
        for sub, entry in zip(self._inner.envs, state["sub_envs"], strict=True):
            base = sub.unwrapped
            physics = entry["physics"]
            base.state = None if physics is None else np.array(physics, copy=True)
            if "steps_beyond_terminated" in entry:
                base.steps_beyond_terminated = entry["steps_beyond_terminated"]
            base.np_random = np.random.Generator(_bit_generator(entry["rng"]))
            base._np_random_seed = entry["rng_seed"]
            for wrapper in _wrapper_chain(sub):
                if isinstance(wrapper, gym.wrappers.TimeLimit) and "elapsed_steps" in entry:
                    wrapper._elapsed_steps = entry["elapsed_steps"]
                if isinstance(wrapper, gym.wrappers.OrderEnforcing) and "has_reset" in entry:
                    wrapper._has_reset = entry["has_reset"]
        self._returns = np.array(state["returns"], np.float64, copy=True)
        self._lengths = np.array(state["lengths"], np.int64, copy=True)
        self._lives = np.array(state["lives"], np.int64, copy=True)
        self._needs_reset = bool(state["needs_reset"])
        self._seed = state["pending_seed"]
        self._inner._autoreset_envs = np.array(state["autoreset_envs"], bool, copy=True)
        self.last_info = {}


def _wrapper_chain(env: gym.Env) -> list[gym.Env]:
    """`env` and every wrapper below it, outermost first (the base env last)."""
    chain = [env]
    while isinstance(chain[-1], gym.Wrapper):
        chain.append(chain[-1].env)
    return chain


#: The numpy bit generators a saved `np_random` state may name.
_BIT_GENERATORS = {
    cls.__name__: cls
    for cls in (np.random.PCG64, np.random.PCG64DXSM, np.random.MT19937, np.random.Philox)
}


def _bit_generator(state: dict[str, Any]) -> np.random.BitGenerator:
    """A numpy bit generator set to `state` (a `bit_generator.state` dict)."""
    name = state.get("bit_generator") if isinstance(state, dict) else None
    if name not in _BIT_GENERATORS:
        raise ValueError(
            f"saved random state names bit generator {name!r}; allowed: {sorted(_BIT_GENERATORS)}."
        )
    generator = _BIT_GENERATORS[name]()
    generator.state = state
    return generator


def _ale_vector_available() -> bool:
    ale_py = _ale_module()
    return ale_py is not None and hasattr(ale_py, "AtariVectorEnv")


def _make_ale_backend(
    rom: str,
    num_envs: int,
    options: AtariOptions,
    autoreset_mode: AutoresetMode = AutoresetMode.SAME_STEP,
):
    # ale_py's XLA interface (softeq.adapters.ale_xla) needs NEXT_STEP and resets
    # ended games itself; every other option is shared with the host loop's env.
    ale_py = _ale_module()
    return ale_py.AtariVectorEnv(
        rom,
        num_envs,
        max_num_frames_per_episode=options.max_episode_frames,
        repeat_action_probability=float(options.repeat_action_probability),
        full_action_space=options.full_action_space,
        autoreset_mode=autoreset_mode,
        img_height=options.frame_size,
        img_width=options.frame_size,
        grayscale=options.grayscale,
        stack_num=options.stack,
        frameskip=options.frame_skip,
        maxpool=options.max_pool,
        noop_max=options.noop_max,
        # Life losses, reward clipping and fire-on-reset are handled (or not
        # done) identically for both backends in `VectorEnv`.
        episodic_life=False,
        reward_clipping=False,
        use_fire_reset=False,
    )


def _atari_thunk(env_id: str, options: AtariOptions) -> Callable[[], gym.Env]:
    def thunk() -> gym.Env:
        env = gym.make(
            env_id,
            frameskip=1,
            repeat_action_probability=float(options.repeat_action_probability),
            full_action_space=options.full_action_space,
            max_num_frames_per_episode=options.max_episode_frames,
            disable_env_checker=True,
        )
        env = gym.wrappers.AtariPreprocessing(
            env,
            noop_max=options.noop_max,
            frame_skip=options.frame_skip,
            screen_size=options.frame_size,
            terminal_on_life_loss=False,
            grayscale_obs=options.grayscale,
            scale_obs=False,
        )
        return gym.wrappers.FrameStackObservation(env, options.stack, padding_type="zero")

    return thunk


def _classic_thunk(env_id: str) -> Callable[[], gym.Env]:
    def thunk() -> gym.Env:
        return gym.make(env_id, disable_env_checker=True)

    return thunk


def make_vector_env(
    env_id: str,
    *,
    num_envs: int,
    seed: int,
    atari_options: AtariOptions | None = None,
    backend: str = "auto",
) -> VectorEnv:
    """Build `num_envs` copies of `env_id` behind the `VectorEnv` contract.

    Args:
      env_id: one of `ENV_KINDS`: `"CartPole-v1"`, `"Acrobot-v1"` or an
        `"ALE/<Game>-v5"` id.
      num_envs: N ≥ 1.
      seed: int ≥ 0; the first `reset()` seeds sub-env i with `seed + i`.
      atari_options: Atari preprocessing (defaults to `AtariOptions()`);
        ignored for classic control.
      backend: `"auto"` (the ALE vector env for Atari when available, else
        gymnasium), `"ale"` (require `ale_py.AtariVectorEnv`) or
        `"gymnasium"` (a `SyncVectorEnv` of wrapped single envs).

    Returns:
      A `VectorEnv`; call `reset()` before stepping.

    Example:
      >>> from softeq.adapters.envs import make_vector_env
      >>> env = make_vector_env("CartPole-v1", num_envs=2, seed=0)
      >>> env.reset().shape
      (2, 4)
      >>> env.close()
    """
    _check_env_id(env_id)
    if not _is_int(num_envs) or num_envs < 1:
        raise ValueError(f"`num_envs` must be an int >= 1, got {num_envs!r}.")
    num_envs = int(num_envs)
    seed = _check_seed(seed, num_envs=num_envs)
    if backend not in BACKENDS:
        raise ValueError(f"`backend` must be one of {BACKENDS}, got {backend!r}.")
    if atari_options is None:
        atari_options = AtariOptions()
    elif not isinstance(atari_options, AtariOptions):
        raise TypeError(
            f"`atari_options` must be an AtariOptions or None, got {type(atari_options).__name__}."
        )

    if env_id in CLASSIC_CONTROL_IDS:
        if backend == "ale":
            raise ValueError(
                f"`backend`='ale' only applies to ALE envs, not `env_id`={env_id!r}; "
                "use 'auto' or 'gymnasium'."
            )
        inner = SyncVectorEnv(
            [_classic_thunk(env_id) for _ in range(num_envs)],
            autoreset_mode=AutoresetMode.SAME_STEP,
        )
        return VectorEnv(
            env_id=env_id,
            inner=inner,
            num_envs=num_envs,
            seed=seed,
            is_atari=False,
            backend="gymnasium",
            observation_shape=inner.single_observation_space.shape,
            observation_dtype=np.float32,
            num_actions=inner.single_action_space.n,
            clip_rewards=False,
            terminal_on_life_loss=False,
        )

    options = atari_options
    use_ale = backend == "ale" or (backend == "auto" and _ale_vector_available())
    if use_ale and not _ale_vector_available():
        raise RuntimeError(
            "`backend`='ale' needs ale_py.AtariVectorEnv, which this ale-py build lacks; "
            "use backend='gymnasium'."
        )
    if not use_ale and not options.max_pool:
        raise ValueError(
            "`max_pool`=False is only available with the 'ale' backend (gymnasium's "
            "AtariPreprocessing always max-pools)."
        )
    if use_ale:
        inner = _make_ale_backend(_atari_roms()[env_id], num_envs, options)
    else:
        inner = SyncVectorEnv(
            [_atari_thunk(env_id, options) for _ in range(num_envs)],
            autoreset_mode=AutoresetMode.SAME_STEP,
        )
    shape = (options.stack, options.frame_size, options.frame_size)
    if not options.grayscale:
        shape += (3,)
    if inner.single_observation_space.shape != shape:
        raise RuntimeError(
            f"Backend produced observations of shape {inner.single_observation_space.shape}, "
            f"expected {shape}."
        )
    return VectorEnv(
        env_id=env_id,
        inner=inner,
        num_envs=num_envs,
        seed=seed,
        is_atari=True,
        backend="ale" if use_ale else "gymnasium",
        observation_shape=shape,
        observation_dtype=np.uint8,
        num_actions=inner.single_action_space.n,
        clip_rewards=options.clip_rewards,
        terminal_on_life_loss=options.terminal_on_life_loss,
    )
