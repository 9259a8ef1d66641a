"""ALE games inside a jitted program: ale-py's XLA interface behind the `jax_envs` step contract.

`make_ale_xla_env("ALE/<Game>-v5", num_envs=N, lanes=S)` builds S·N Atari
emulators in one `ale_py.AtariVectorEnv` and exposes them as the
`reset(key, N)` / `step(key, state, actions)` pair that
`softeq.adapters.jit_driver.JitProgram` calls for gymnax envs, with the same
`softeq.adapters.jax_envs.JaxStepResult`. The emulators step through ale-py's
XLA custom calls, so rollouts, learner updates and evaluation stay one
compiled program (the emulators themselves run on CPU threads).

Same env as the host loop
-------------------------
The vector env is built by `softeq.adapters.envs._make_ale_backend` with the
host loop's `AtariOptions` (no-op starts, frame skip 4 with max-pooling, 84×84
gray, stack of 4 zero-padded at episode start, sticky actions 0.25, 30-minute
limit of 108 000 frames = 27 000 agent steps), and the wrapper logic of
`softeq.adapters.envs.VectorEnv` is repeated here in jax.numpy: rewards are
clipped to their sign for the learner while episode returns stay raw, a life
loss sets `terminated` when `terminal_on_life_loss` is on while the logged
episode is the whole game, and episode statistics are the raw return and the
agent-step length of each game, NaN elsewhere.

ale-py's XLA path only offers gymnasium's NEXT_STEP autoreset (a finished game
is restarted by the *next* step, which ignores its action). The host loop uses
SAME_STEP. To give the same transitions, `step` resets every game that ended
right after the step, inside the program, through the vector env's partial
reset (one custom call per ended game; games end rarely): `obs` is the new
game's first observation and `final_obs` the ended game's last, exactly as
the host env reports them. The partial reset continues each emulator's own
random stream (seed −1), as SAME_STEP's reset does, so the same seeds and
actions give the same observations, rewards, flags and statistics as the host
env (tested).

Seeds in one program
--------------------
The emulators live outside XLA and cannot be `jax.vmap`ped like gymnax's pure
functions. The jitted driver vmaps its per-seed functions over S seeds
("lanes"); `reset` and `step` are `jax.custom_batching.custom_vmap` functions
whose batching rule folds the lane axis into the env axis: lane j drives
emulators j·N … j·N + N − 1 of the one vector env, in one custom call per
step. Hence:

* the env must be built for the number of lanes it runs under (`lanes`); a
  vmap of another size raises `ValueError` while tracing;
* one level of vmap only, and one device: the emulators are one process's
  threads (`jit_loop` lays an ALE run's seeds on the first local device);
* called outside a vmap, the env is valid only with `lanes=1`; with more
  lanes the call raises `ValueError` when it runs.

The state holds the address of the emulators (`AleEnvState.handle`), valid in
this process only. A checkpoint cannot hold the emulators themselves: a
resumed jitted Atari run restores the learner exactly and restarts the
emulators with fresh games (`restart_envs`), as the host loop does.

Randomness: `reset(key, N)` draws one integer base seed from `key` and seeds
emulator i with base + i; `reset_seeded(seeds)` takes them explicitly (the
host env's `reset(seed=s)` seeds emulator i with s + i). `step` ignores its key:
sticky actions and no-op starts draw from each emulator's own generator.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from softeq.adapters import envs
from softeq.adapters.jax_envs import JaxStepResult

#: Largest base seed `reset` draws (emulator i gets base + i; ale-py's seeds are int32).
_MAX_BASE_SEED = 2**30
_HANDLE_BYTES = 8


def _ale_py():
    import ale_py

    return ale_py


def is_ale_id(env_id: str) -> bool:
    """Whether `env_id` is an `ALE/<Game>-v5` id that ale-py registers."""
    # The prefix test first: gymnax ids need not import ale-py.
    return isinstance(env_id, str) and env_id.startswith("ALE/") and env_id in envs._atari_roms()


class AleEnvState(NamedTuple):
    """The state of N emulators of one lane; array leaves have leading axis N.

    handle: `[8]` uint8, the address of ale-py's vector env (this process only).
    episode_return: `[N]` float32 raw return of the running game so far.
    episode_length: `[N]` int32 agent steps of the running game so far.
    lives: `[N]` int32 lives after the latest step (for `terminal_on_life_loss`).
    """

    handle: jax.Array
    episode_return: jax.Array
    episode_length: jax.Array
    lives: jax.Array


class AleXlaEnv:
    """S lanes × N Atari emulators as traceable `reset` / `step`; use `make_ale_xla_env`.

    Attributes:
      env_id: the `ALE/<Game>-v5` id.
      num_envs: N, emulators per lane.
      lanes: S, the vmap size the env runs under (seeds in one program).
      options: the `softeq.adapters.envs.AtariOptions`.
      num_actions: size of the (minimal, unless `full_action_space`) action set.
      observation_shape: `(stack, H, W)` (`(stack, H, W, 3)` in colour).
      observation_dtype: uint8.
      max_episode_steps: the time limit in agent steps (`max_episode_frames // frame_skip`).
      emulated_on_host: True; the program must stay on one device of this process.
    """

    emulated_on_host = True

    def __init__(
        self,
        env_id: str,
        *,
        num_envs: int,
        lanes: int = 1,
        options: envs.AtariOptions | None = None,
    ):
        from gymnasium.vector import AutoresetMode

        if not is_ale_id(env_id):
            raise ValueError(
                f"`env_id` must be an 'ALE/<Game>-v5' id that ale-py registers, got {env_id!r}."
            )
        for name, value in (("num_envs", num_envs), ("lanes", lanes)):
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
                raise ValueError(f"`{name}` must be an integer >= 1, got {value!r}.")
        if options is None:
            options = envs.AtariOptions()
        elif not isinstance(options, envs.AtariOptions):
            raise TypeError(f"`options` must be an AtariOptions, got {type(options).__name__}.")
        if not envs._ale_vector_available() or not hasattr(_ale_py().AtariVectorEnv, "xla"):
            raise RuntimeError(
                "the jitted Atari env needs ale_py.AtariVectorEnv with its XLA interface "
                f"(tested with ale-py 0.12.1), but ale-py {_ale_py().__version__} has none."
            )
        self.env_id = env_id
        self.num_envs = int(num_envs)
        self.lanes = int(lanes)
        self.options = options
        self._vector = envs._make_ale_backend(
            envs._atari_roms()[env_id],
            self.num_envs * self.lanes,
            options,
            autoreset_mode=AutoresetMode.NEXT_STEP,
        )
        # Registers ale-py's custom calls; the reset/step it returns are written for
        # one fixed batch and a concrete reset mask, so the calls are made here instead.
        handle, _, _ = self._vector.xla()
        self._handle = np.asarray(handle, np.uint8)
        self.num_actions = int(self._vector.single_action_space.n)
        self.observation_shape = tuple(int(d) for d in self._vector.single_observation_space.shape)
        self.observation_dtype = np.dtype(np.uint8)
        self.max_episode_steps = options.max_episode_frames // options.frame_skip
        self._reset_lanes = _fold_lanes(self._reset_all, self.lanes, "reset")
        self._step_lanes = _fold_lanes(self._step_and_restart, self.lanes, "step")

    def __repr__(self) -> str:
        return (
            f"AleXlaEnv(env_id={self.env_id!r}, num_envs={self.num_envs}, lanes={self.lanes}, "
            f"observation_shape={self.observation_shape}, num_actions={self.num_actions})"
        )

    # ---------------------------------------------------------------- custom calls
    def _results(self, batch: int, *kinds: str) -> tuple[jax.ShapeDtypeStruct, ...]:
        shapes = {
            "handle": ((_HANDLE_BYTES,), jnp.uint8),
            "obs": ((batch, *self.observation_shape), jnp.uint8),
            "i32": ((batch,), jnp.int32),
            "bool": ((batch,), jnp.bool_),
        }
        return tuple(jax.ShapeDtypeStruct(*shapes[k]) for k in kinds)

    def _call_reset(self, handle, indices, seeds, batch: int):
        """ale-py's reset of the emulators `indices` (`[K]` int32) with `seeds` (`[K]`, −1: none).

        Returns `(handle, obs [B, ...], lives [B])` of all B emulators (those not
        reset report their current observation).
        """
        call = jax.ffi.ffi_call(
            "atari_vector_xla_reset",
            self._results(batch, "handle", "obs", "i32", "i32", "i32", "i32"),
            has_side_effect=True,
        )
        handle, obs, _env_ids, lives, _frames, _episode_frames = call(handle, indices, seeds)
        return handle, obs, lives

    def _call_step(self, handle, actions):
        """ale-py's step of all B emulators: `(handle, obs, reward, terminated, truncated,
        lives)`, each with leading axis B (the handle excepted)."""
        batch = actions.shape[0]
        call = jax.ffi.ffi_call(
            "atari_vector_xla_step",
            self._results(
                batch, "handle", "obs", "i32", "bool", "bool", "i32", "i32", "i32", "i32"
            ),
            has_side_effect=True,
        )
        paddle_strength = jnp.ones((batch,), jnp.float32)
        handle, obs, reward, terminated, truncated, _ids, lives, _f, _ef = call(
            handle, actions.astype(jnp.int32), paddle_strength
        )
        return handle, obs, reward, terminated, truncated, lives

    def _reset_all(self, handle, seeds):
        """Every emulator reset with its seed: `(handle, obs [B, ...], lives [B])`."""
        batch = seeds.shape[0]
        indices = jnp.arange(batch, dtype=jnp.int32)
        return self._call_reset(handle, indices, seeds.astype(jnp.int32), batch)

    def _step_and_restart(self, handle, actions):
        """One step of all B emulators, then a fresh game wherever one ended (SAME_STEP).

        Returns `(handle, obs, final_obs, raw_reward, terminated, truncated, lives)`,
        each with leading axis B: `obs` holds the new game's first observation
        where a game ended, `final_obs` the step's own observation.
        """
        handle, final_obs, reward, terminated, truncated, lives = self._call_step(handle, actions)
        batch = actions.shape[0]
        ended = terminated | truncated
        order = jnp.nonzero(ended, size=batch, fill_value=0)[0].astype(jnp.int32)
        no_seed = jnp.full((1,), -1, jnp.int32)

        def restart(k, carry):
            handle, obs, lives = carry
            i = order[k]
            handle, fresh_obs, fresh_lives = self._call_reset(handle, i[None], no_seed, batch)
            return handle, obs.at[i].set(fresh_obs[i]), lives.at[i].set(fresh_lives[i])

        handle, obs, lives = jax.lax.fori_loop(
            0, jnp.sum(ended, dtype=jnp.int32), restart, (handle, final_obs, lives)
        )
        return handle, obs, final_obs, reward, terminated, truncated, lives

    # ---------------------------------------------------------------- the contract
    def reset(self, key: jax.Array, num_envs: int) -> tuple[AleEnvState, jax.Array]:
        """Fresh games in the N emulators of this lane, seeded from `key`.

        Args:
          key: a PRNG key; one base seed is drawn from it, emulator i gets base + i.
          num_envs: N; must equal the env's `num_envs` (the emulators exist already).

        Returns:
          `(state, obs [N, *observation_shape])`.
        """
        if num_envs != self.num_envs:
            raise ValueError(
                f"`num_envs` must be {self.num_envs} (the emulators this env was built with), "
                f"got {num_envs!r}."
            )
        base = jax.random.randint(key, (), 0, _MAX_BASE_SEED, jnp.int32)
        return self.reset_seeded(base + jnp.arange(self.num_envs, dtype=jnp.int32))

    def reset_seeded(self, seeds: jax.Array) -> tuple[AleEnvState, jax.Array]:
        """Fresh games with explicit emulator seeds.

        Args:
          seeds: `[N]` int32 seeds ≥ 0, one per emulator of this lane.

        Returns:
          `(state, obs [N, *observation_shape])`.
        """
        seeds = jnp.asarray(seeds, jnp.int32)
        if seeds.shape != (self.num_envs,):
            raise ValueError(f"`seeds` must have shape ({self.num_envs},), got {seeds.shape}.")
        handle, obs, lives = self._reset_lanes(jnp.asarray(self._handle), seeds)
        state = AleEnvState(
            handle=handle,
            episode_return=jnp.zeros((self.num_envs,), jnp.float32),
            episode_length=jnp.zeros((self.num_envs,), jnp.int32),
            lives=lives,
        )
        return state, obs

    def step(
        self, key: jax.Array, state: AleEnvState, actions: jax.Array
    ) -> tuple[AleEnvState, JaxStepResult]:
        """One agent step of the lane's N emulators, restarting the games that ended.

        Args:
          key: unused (the emulators draw from their own generators); kept so the
            call matches `softeq.adapters.jax_envs.JaxVectorEnv.step`.
          state: the lane's `AleEnvState`.
          actions: `[N]` integer actions in `[0, num_actions)`.

        Returns:
          `(state, JaxStepResult)`: the host env's `StepResult` conventions with
          float32 statistics (raw Atari returns are integers, exact in float32).
        """
        del key
        if actions.shape != (self.num_envs,):
            raise ValueError(f"`actions` must have shape ({self.num_envs},), got {actions.shape}.")
        handle, obs, final_obs, raw, terminated, truncated, lives = self._step_lanes(
            state.handle, actions.astype(jnp.int32)
        )
        raw = raw.astype(jnp.float32)
        game_over = terminated | truncated  # ale-py never sets both
        episode_return = state.episode_return + raw
        episode_length = state.episode_length + 1
        nan = jnp.float32(jnp.nan)
        if self.options.terminal_on_life_loss:
            # Where the game ended, `lives` already belongs to the new game.
            terminated = terminated | ((lives < state.lives) & ~game_over)
        reward = jnp.sign(raw) if self.options.clip_rewards else raw
        result = JaxStepResult(
            obs=obs,
            reward=reward,
            terminated=terminated,
            truncated=truncated,
            final_obs=final_obs,
            episode_returns=jnp.where(game_over, episode_return, nan),
            episode_lengths=jnp.where(game_over, episode_length.astype(jnp.float32), nan),
        )
        state = AleEnvState(
            handle=handle,
            episode_return=jnp.where(game_over, 0.0, episode_return),
            episode_length=jnp.where(game_over, 0, episode_length),
            lives=lives,
        )
        return state, result


def _fold_lanes(fn: Callable, lanes: int, name: str) -> Callable:
    """`fn(handle, *arrays [B, ...])` as a function of one lane whose vmap folds lanes into B.

    Unbatched, `fn` sees one lane's N rows. Under `jax.vmap` of size `lanes`
    the batching rule reshapes every `[S, N, ...]` argument to `[S·N, ...]`,
    makes ONE call (the emulators of all lanes step together) and splits the
    results back into lanes; the handle is the same for every lane.
    """

    @jax.custom_batching.custom_vmap
    def one_lane(handle, *arrays):
        if lanes == 1:
            return fn(handle, *arrays)
        # Traced unbatched (lax.scan traces its body before vmap batches it), but it
        # must never run so: the emulators of all lanes move together.
        shapes = jax.eval_shape(fn, handle, *arrays)

        def refuse(*_):
            raise ValueError(
                f"the jitted ALE env's {name} was built for `lanes`={lanes} and runs only "
                f"under a jax.vmap of that size, not for one lane."
            )

        return jax.pure_callback(refuse, shapes, handle, *arrays)

    @one_lane.def_vmap
    def all_lanes(axis_size, in_batched, handle, *arrays):
        if axis_size != lanes:
            raise ValueError(
                f"the jitted ALE env's {name} runs under a vmap of {axis_size} lanes but was "
                f"built for `lanes`={lanes}: build it with lanes={axis_size} (one per seed)."
            )
        if in_batched[0]:
            handle = handle[0]
        flat = []
        for array, batched in zip(arrays, in_batched[1:], strict=True):
            if not batched:
                array = jnp.broadcast_to(array, (axis_size, *array.shape))
            flat.append(array.reshape((-1, *array.shape[2:])))
        handle, *outputs = fn(handle, *flat)
        handle = jnp.broadcast_to(handle, (axis_size, *handle.shape))
        outputs = [x.reshape((axis_size, -1, *x.shape[1:])) for x in outputs]
        return (handle, *outputs), (True,) * (1 + len(outputs))

    return one_lane


def make_ale_xla_env(
    env_id: str,
    *,
    num_envs: int,
    lanes: int = 1,
    options: envs.AtariOptions | None = None,
) -> AleXlaEnv:
    """The jitted Atari env: `lanes` × `num_envs` emulators of `env_id` (see the module docstring).

    Example:
      >>> import jax, jax.numpy as jnp
      >>> env = make_ale_xla_env("ALE/Pong-v5", num_envs=2)
      >>> state, obs = jax.jit(env.reset_seeded)(jnp.arange(2))
      >>> state, step = jax.jit(env.step)(None, state, jnp.zeros(2, jnp.int32))
      >>> obs.shape, step.reward.tolist(), env.max_episode_steps
      ((2, 4, 84, 84), [0.0, 0.0], 27000)
    """
    return AleXlaEnv(env_id, num_envs=num_envs, lanes=lanes, options=options)


# --------------------------------------------------------------------------------------
# Resuming a jitted Atari run.
# --------------------------------------------------------------------------------------


def restart_seeds(seeds: Sequence[int], env_steps: int, num_envs: int) -> np.ndarray:
    """`[S, N]` emulator seeds of a resumed run: lane j's base seed from (seed_j, env_steps)."""
    from softeq.adapters.loop import _resume_seed

    bases = np.asarray([_resume_seed(int(s), int(env_steps)) for s in seeds], np.int64)
    return (bases[:, None] + np.arange(num_envs)[None, :]).astype(np.int32)


def restart_envs(seeded: Any, state: Any, env_steps: int) -> Any:
    """The seeds' state with fresh games in every training emulator; the rest exact.

    A checkpoint holds the learner, optimiser, replay, keys and counters, but
    not the emulators (their handle is an address in the process that wrote
    it). The running games are dropped (not logged), as in the host loop's
    Atari resume; each lane restarts with seeds drawn from its seed and the
    step count.

    Args:
      seeded: the `softeq.adapters.jit_loop.SeededProgram` (its program's env is an `AleXlaEnv`).
      state: the restored `[S, ...]` state.
      env_steps: env steps per seed at the checkpoint.
    """
    program = seeded.program
    seeds = restart_seeds(seeded.seeds, env_steps, program.num_envs)

    def restart(state, lane_seeds):
        env_state, obs = program.env.reset_seeded(lane_seeds)
        return state._replace(env=env_state, obs=obs)

    layout = jax.tree.map(lambda leaf: leaf.sharding, state)  # as restored, for the program
    fn = jax.jit(jax.vmap(restart), out_shardings=layout, donate_argnums=0)
    return fn(state, jax.device_put(seeds, seeded.batched))


def program_devices(program: Any, devices: Sequence[jax.Device] | None) -> Any:
    """The devices a program's seeds may be laid over: one for ALE emulators, else `devices`.

    The emulators are threads of this process behind one handle; a program
    split over several devices would make every device step them.
    """
    if not getattr(program.env, "emulated_on_host", False):
        return devices
    return list(devices if devices is not None else jax.local_devices())[:1]
