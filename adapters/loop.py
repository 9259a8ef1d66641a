"""The host training loop: act → step → observe → log, with evaluation, checkpoints and resume.

`train(run, algo_config)` runs one agent on one vectorised environment:

    obs = env.reset()
    state = agent.init(seed, obs)
    repeat until run.total_steps environment steps:
        actions, state = agent.act(state, obs)
        step = env.step(actions)
        state, metrics = agent.observe(state, obs, actions, step)   # learns when due
        obs = step.obs
        log finished episodes and learner metrics (CSV + TensorBoard + progress bar)
        every eval_every steps: evaluation episodes on a separate env (greedy on
            classic control; on Atari sampled from π_θ or ε-greedy, capped at
            4 500 steps: run_config.resolve_eval_protocol)
        every checkpoint_every steps: atomic checkpoint

Resume (`resume=True`) restores, from the newest good checkpoint, the agent
state (parameters, optimiser, rollout/replay storage, PRNG key), the loop
counters, the logger state (the CSV is truncated back to the checkpoint), the
numpy / python RNG states and — for classic-control envs — the exact state of
every sub-environment, so the resumed run continues bit-for-bit as if it had
never stopped (on CPU; tested on CartPole).

Atari's fast path (`ale_py.AtariVectorEnv`) cannot export its emulator state,
so an Atari run resumes with freshly reset episodes (seeded from the seed and
the step count); everything else is restored exactly. Actor-critic checkpoints
are taken right after a learner update, when the rollout storage is empty, so a
restart of the episodes never splices two unrelated trajectories.

A learner loss that is not finite (or non-finite parameters at checkpoint
time) stops the run with `NonFiniteError`; no checkpoint is written from that
point on, so the last good one stays intact.
"""

from __future__ import annotations

import dataclasses
import math
import os
import random
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import numpy as np

from softeq.adapters import agents
from softeq.adapters import checkpoint as ckpt_lib
from softeq.adapters.logger import MetricsLogger
from softeq.adapters.run_config import (
    DEFAULT_EVAL_EPSILON,
    RunConfig,
    configs_to_dict,
    format_configs,
    resolve_eval_protocol,
    resolve_num_envs,
    resolve_torso,
    save_run_configs,
)
from softeq.adapters.video import (
    VIDEO_DIRNAME,
    VIDEO_MISSING_MESSAGE,
    frame_from_atari_observation,
    render_classic_control,
    video_writer_available,
    write_video,
)

CHECKPOINT_DIRNAME = "checkpoints"
CHECKPOINT_FORMAT = 2  # 2: env state and RNG states as plain data


class NonFiniteError(RuntimeError):
    """The learner produced a non-finite loss or non-finite parameters."""


class Interrupted(RuntimeError):
    """The run was stopped by SIGINT/SIGTERM after saving a checkpoint."""


@dataclasses.dataclass(frozen=True)
class TrainResult:
    """What `train` returns.

    Attributes:
      run_dir: the run folder.
      env_steps: environment steps done (summed over envs).
      updates: learner updates done.
      episodes: training episodes finished.
      recent_return: mean raw return of the last (up to) 100 training episodes.
      final_eval: `{"return_mean", "return_std", "length_mean", "episodes", "capped"}`
        of the last evaluation, or None if no evaluation ran.
      checkpoint: path of the last checkpoint written.
      sps: training throughput in env steps per second, measured from the end of the
        first learner update (compilation excluded) and leaving out the time spent
        in evaluation and checkpointing; NaN if no update ran.
      wall_s: wall-clock seconds of this call (setup and compilation included).
      finished: True if the step budget was reached (False: stopped early).
    """

    run_dir: Path
    env_steps: int
    updates: int
    episodes: int
    recent_return: float
    final_eval: dict[str, float] | None
    checkpoint: Path | None
    sps: float
    wall_s: float
    finished: bool


# --------------------------------------------------------------------------------------
# Environment state capture (exact resume for classic-control envs).
# --------------------------------------------------------------------------------------


def capture_env_state(env: Any) -> dict[str, Any] | None:
    """The complete state of a vector env as plain data, or None if it cannot be captured.

    Uses `env.get_state()` (`VectorEnv` implements it for classic control and
    returns None for Atari, whose emulators live in C++); an env without the
    method gives None, so its episodes restart on resume.
    """
    get_state = getattr(env, "get_state", None)
    return None if get_state is None else get_state()


def restore_env_state(env: Any, state: dict[str, Any]) -> None:
    """Load a state from `capture_env_state` into a freshly made env of the same kind."""
    env.set_state(state)


# --------------------------------------------------------------------------------------
# Evaluation and video.
# --------------------------------------------------------------------------------------


def _check_eval_options(policy: str, epsilon: float, max_episode_steps: int) -> None:
    from softeq.adapters.agents.eval_policies import EVAL_POLICY_NAMES, check_eval_policy

    check_eval_policy(policy, epsilon, allowed=EVAL_POLICY_NAMES)
    if (
        isinstance(max_episode_steps, bool)
        or not isinstance(max_episode_steps, int | np.integer)
        or max_episode_steps < 0
    ):
        raise ValueError(
            f"`max_episode_steps` must be an integer >= 0 (0 = no cap), got {max_episode_steps!r}."
        )


def _evaluation_actions(
    agent: Any, state: Any, obs: np.ndarray, policy: str, epsilon: float, base_key, t: int
) -> np.ndarray:
    """The `[N]` actions of evaluation step `t`; draws use `fold_in(base_key, t)`."""
    if policy == "greedy":
        return np.asarray(agent.act_greedy(state, obs))
    key = jax.random.fold_in(base_key, t)
    return np.asarray(agent.act_eval(state, obs, key, policy=policy, epsilon=epsilon))


def evaluate_agent(
    agent: Any,
    state: Any,
    env: Any,
    *,
    episodes: int,
    seed: int,
    policy: str = "greedy",
    epsilon: float = DEFAULT_EVAL_EPSILON,
    max_episode_steps: int = 0,
    max_steps: int = 200_000,
) -> dict[str, Any]:
    """Play `episodes` evaluation episodes on `env` and summarise their raw returns.

    Every sub-env is reset with seed `seed + i`; sub-env i contributes its first
    `quota_i` episodes, with the quotas spread evenly, so that short episodes
    are not over-represented.

    Args:
      agent: has `act_greedy(state, obs)`, and `act_eval(state, obs, key, *,
        policy, epsilon)` for the "sample" and "epsilon" policies.
      state: the agent state; it is only read, so evaluating mid-run leaves the
        training key `state.rng` (and exact resume) untouched.
      env: the evaluation vector env; with a cap it must offer
        `cut_episodes(mask)` (`softeq.adapters.envs.VectorEnv` does).
      episodes: number of episodes to record, >= 1.
      seed: seeds the env resets and the policy's draws: step t uses the key
        `fold_in(PRNGKey(seed), t)`, so the same seed replays the same evaluation.
      policy: "greedy" (argmax), "sample" (draws from the agent's learned
        stochastic policy π_θ) or "epsilon" (ε-greedy).
      epsilon: ε of "epsilon", in [0, 1]; 0.05 by default (Mnih et al. 2015).
      max_episode_steps: an episode that reaches this many agent steps ends
        there and its raw return so far is recorded (and counted in `capped`);
        0 = no cap beyond the env's own time limit.
      max_steps: safety limit on the number of vector steps of the whole call.

    Returns:
      `{"return_mean", "return_std", "length_mean", "episodes", "capped"}`
      (`capped`: how many of the recorded episodes ended at the cap), with the
      `returns` and `lengths` lists as well.
    """
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    _check_eval_options(policy, epsilon, max_episode_steps)
    if max_episode_steps > 0 and not hasattr(env, "cut_episodes"):
        raise TypeError(
            f"`max_episode_steps`={max_episode_steps} needs an env with `cut_episodes(mask)`, "
            f"and {type(env).__name__} has none; pass max_episode_steps=0."
        )
    n = env.num_envs
    quota = np.full(n, episodes // n) + (np.arange(n) < episodes % n)
    done = np.zeros(n, np.int64)
    steps_in_episode = np.zeros(n, np.int64)
    returns: list[float] = []
    lengths: list[float] = []
    capped = 0
    base_key = jax.random.PRNGKey(seed)
    obs = env.reset(seed=seed)
    for t in range(max_steps):
        if (done >= quota).all():
            break
        step = env.step(_evaluation_actions(agent, state, obs, policy, epsilon, base_key, t))
        obs = step.obs
        steps_in_episode += 1
        ended = ~np.isnan(step.episode_returns)
        for i in np.flatnonzero(ended):
            if done[i] < quota[i]:
                returns.append(float(step.episode_returns[i]))
                lengths.append(float(step.episode_lengths[i]))
                done[i] += 1
        steps_in_episode[ended] = 0
        if max_episode_steps > 0:
            # Only sub-envs that still owe episodes are cut; the others play on unrecorded.
            at_cap = (steps_in_episode >= max_episode_steps) & (done < quota)
            if at_cap.any():
                obs, cut_returns, cut_lengths = env.cut_episodes(at_cap)
                for i in np.flatnonzero(at_cap):
                    returns.append(float(cut_returns[i]))
                    lengths.append(float(cut_lengths[i]))
                    done[i] += 1
                    capped += 1
                steps_in_episode[at_cap] = 0
    else:
        warnings.warn(
            f"evaluation stopped after {max_steps} steps with {len(returns)} episodes",
            stacklevel=2,
        )
    arr = np.asarray(returns, np.float64)
    return {
        "return_mean": float(arr.mean()) if arr.size else float("nan"),
        "return_std": float(arr.std()) if arr.size else float("nan"),
        "length_mean": float(np.mean(lengths)) if lengths else float("nan"),
        "episodes": float(arr.size),
        "capped": float(capped),
        "returns": returns,
        "lengths": lengths,
    }


def record_video_episode(
    agent: Any,
    state: Any,
    *,
    env_id: str,
    num_envs: int,
    seed: int,
    path: str | os.PathLike,
    backend: str = "auto",
    max_steps: int = 30_000,
    policy: str = "greedy",
    epsilon: float = DEFAULT_EVAL_EPSILON,
    max_episode_steps: int = 0,
) -> Path:
    """Record one evaluation episode of sub-env 0 of a fresh vector env to an mp4.

    Atari: the newest preprocessed frame the agent sees (84×84, upscaled 4×).
    Classic control: the state drawn by `render_classic_control`. The agent acts
    as in `evaluate_agent` (`policy`, `epsilon`, draws keyed by `seed`); the
    recording stops when the episode ends, after `max_episode_steps` agent
    steps (0 = no cap) or after `max_steps` frames.
    """
    from softeq.adapters.envs import make_vector_env

    env = make_vector_env(env_id, num_envs=num_envs, seed=seed, backend=backend)
    try:

        def draw(o: np.ndarray) -> np.ndarray:
            return (
                frame_from_atari_observation(o)
                if env.is_atari
                else render_classic_control(env_id, o)
            )

        _check_eval_options(policy, epsilon, max_episode_steps)
        limit = min(max_steps, max_episode_steps) if max_episode_steps > 0 else max_steps
        base_key = jax.random.PRNGKey(seed)
        obs = env.reset(seed=seed)
        frames = [draw(obs[0])]
        for t in range(limit):
            actions = _evaluation_actions(agent, state, obs, policy, epsilon, base_key, t)
            step = env.step(actions)
            if not np.isnan(step.episode_returns[0]):
                break
            obs = step.obs
            frames.append(draw(obs[0]))
        fps = 15 if env.is_atari else 50
    finally:
        env.close()
    return write_video(path, frames, fps=fps)


# --------------------------------------------------------------------------------------
# Helpers.
# --------------------------------------------------------------------------------------


def _all_finite(tree: Any) -> bool:
    for leaf in jax.tree.leaves(tree):
        dtype = getattr(leaf, "dtype", None)
        if dtype is None or not np.issubdtype(np.dtype(dtype), np.inexact):
            continue
        if not bool(np.isfinite(np.asarray(leaf)).all()):
            return False
    return True


def _check_metrics(metrics: dict[str, float], env_steps: int) -> None:
    bad = {k: v for k, v in metrics.items() if "loss" in k and not math.isfinite(v)}
    if bad:
        shown = ", ".join(f"{k}={v}" for k, v in sorted(bad.items()))
        raise NonFiniteError(
            f"non-finite learner loss at env step {env_steps} ({shown}); the run is stopped "
            f"and the last good checkpoint is kept (try a smaller --learning-rate or "
            f"--max-grad-norm)"
        )


def _resume_seed(seed: int, env_steps: int) -> int:
    return int(np.random.SeedSequence([seed, env_steps]).generate_state(1)[0] % (2**31 - 1024))


class _StopFlag:
    """Turns SIGINT/SIGTERM into a flag the loop checks between iterations.

    A second signal gives up at once (KeyboardInterrupt, no checkpoint), as a
    second Ctrl-C should, except in a process that another softeq process
    manages (`ignore_repeated_stop_signals`).
    """

    second_signal_aborts = True

    def __init__(self):
        self.signal: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _StopFlag:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.signal is not None:  # second signal: give up immediately
            if _StopFlag.second_signal_aborts:
                raise KeyboardInterrupt
            return
        self.signal = signum

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def ignore_repeated_stop_signals() -> None:
    """In this process, a training run stops at its first SIGINT/SIGTERM (with a
    checkpoint) and ignores further ones.

    For worker processes (`softeq.adapters.workers`): a Ctrl-C in a terminal
    reaches the worker and its parent, and the parent then passes the stop on as
    SIGTERM; that second signal must not cost the checkpoint.
    """
    _StopFlag.second_signal_aborts = False


def checkpoint_dir(run_dir: str | os.PathLike) -> Path:
    return Path(run_dir) / CHECKPOINT_DIRNAME


def build_agent(run: RunConfig, algo_config: Any, env: Any) -> Any:
    """`agents.make_agent` for `run` on `env`."""
    return agents.make_agent_for_env(run.algo, algo_config, env, torso=resolve_torso(run))


# --------------------------------------------------------------------------------------
# The loop.
# --------------------------------------------------------------------------------------


def train(
    run: RunConfig,
    algo_config: Any,
    *,
    resume: bool = False,
    stop_after_steps: int | None = None,
    agent_wrapper: Callable[[Any], Any] | None = None,
    out: Callable[[str], None] = print,
) -> TrainResult:
    """Train `run.algo` with `algo_config` as described by `run`; see the module docstring.

    Args:
      run: the run configuration; `run.run_dir` must be set.
      algo_config: the algorithm's frozen config.
      resume: continue from the newest good checkpoint in `run.run_dir`.
      stop_after_steps: stop (with a checkpoint) once this many env steps are done
        in total, as if preempted — for on-policy learners at the end of the rollout
        in progress; `resume=True` continues the run later.
      agent_wrapper: optional function applied to the agent after construction
        (tests use it to inject faults).
      out: where status lines go.

    Returns:
      A `TrainResult`.

    Raises:
      NonFiniteError: a learner loss or the parameters became non-finite.
      Interrupted: SIGINT/SIGTERM arrived; a checkpoint was saved first.
    """
    from softeq.adapters.envs import make_vector_env

    if not run.run_dir:
        raise ValueError("run.run_dir must be set")
    call_start = time.perf_counter()
    run_dir = Path(run.run_dir)
    num_envs = resolve_num_envs(run, algo_config)
    # the saved config names the actual number of envs, and this driver
    run = run.replace(num_envs=num_envs, driver="host")
    manager = ckpt_lib.CheckpointManager(checkpoint_dir(run_dir), keep=run.keep_checkpoints)

    loaded = None
    if resume:
        loaded = manager.load_latest()
        if loaded is None:
            out(f"no checkpoint in {manager.directory}; starting from scratch")
    if run.video and video_writer_available() is None:
        raise RuntimeError(VIDEO_MISSING_MESSAGE)

    out(format_configs(run, algo_config))
    save_run_configs(run_dir, run, algo_config)

    env = make_vector_env(run.env_id, num_envs=num_envs, seed=run.seed, backend=run.backend)
    eval_env = None
    try:
        agent = build_agent(run, algo_config, env)
        if agent_wrapper is not None:
            agent = agent_wrapper(agent)
        obs = env.reset(seed=run.seed)
        state = agent.init(run.seed, obs)

        env_steps = updates = episodes = iteration = 0
        final_eval: dict[str, float] | None = None
        logger_state = None
        last_ckpt: Path | None = None
        if loaded is not None:
            payload, path = loaded
            if payload.get("algo") != run.algo or payload.get("env_id") != run.env_id:
                raise ckpt_lib.CheckpointError(
                    f"{path} belongs to algo={payload.get('algo')!r} env={payload.get('env_id')!r}"
                    f", not algo={run.algo!r} env={run.env_id!r}"
                )
            if int(payload["num_envs"]) != num_envs:
                raise ckpt_lib.CheckpointError(
                    f"{path} was written with {payload['num_envs']} envs but this run uses "
                    f"{num_envs}; resume with --num-envs {payload['num_envs']}"
                )
            state = ckpt_lib.restore_like(state, payload["agent_state"])
            loop = payload["loop"]
            env_steps, updates = loop["env_steps"], loop["updates"]
            episodes, iteration = loop["episodes"], loop["iteration"]
            final_eval = loop.get("final_eval")
            logger_state = payload["logger"]
            np.random.set_state(payload["numpy_rng"])  # noqa: NPY002 (global state of user code)
            random.setstate(payload["python_rng"])
            if payload["env_state"] is not None:
                restore_env_state(env, payload["env_state"])
                obs = payload["obs"]
                out(f"resumed from {path} at env step {env_steps} (exact env state)")
            else:
                obs = env.reset(seed=_resume_seed(run.seed, env_steps))
                out(
                    f"resumed from {path} at env step {env_steps}; this env's state cannot be "
                    f"saved, so its episodes restart"
                )
            last_ckpt = path

        logger = MetricsLogger(run_dir, log_every=run.log_every, state=logger_state)
        out(f"run folder: {run_dir}")

        def make_payload() -> dict[str, Any]:
            return {
                "format": CHECKPOINT_FORMAT,
                "algo": run.algo,
                "env_id": run.env_id,
                "config": configs_to_dict(run, algo_config),
                "num_envs": num_envs,
                "agent_state": ckpt_lib.to_host(state),
                "loop": {
                    "env_steps": env_steps,
                    "updates": updates,
                    "episodes": episodes,
                    "iteration": iteration,
                    "final_eval": final_eval,
                },
                "logger": logger.state(),
                "numpy_rng": np.random.get_state(),  # noqa: NPY002
                "python_rng": random.getstate(),
                "env_state": capture_env_state(env),
                "obs": np.asarray(obs),
            }

        def save_checkpoint() -> Path:
            if not _all_finite(state):
                raise NonFiniteError(
                    f"non-finite values in the agent state at env step {env_steps}; the run is "
                    f"stopped and the last good checkpoint is kept"
                )
            return manager.save(env_steps, make_payload())

        def run_eval() -> dict[str, float]:
            nonlocal eval_env
            if eval_env is None:
                # One env per evaluation episode (at most as many as for training).
                eval_env = make_vector_env(
                    run.env_id,
                    num_envs=min(num_envs, run.eval_episodes),
                    seed=run.seed + 1,
                    backend=run.backend,
                )
            index = env_steps // max(run.eval_every, 1)
            protocol = resolve_eval_protocol(run)
            result = evaluate_agent(
                agent,
                state,
                eval_env,
                episodes=run.eval_episodes,
                seed=_resume_seed(run.seed + 1, index),
                policy=protocol.policy,
                epsilon=protocol.epsilon,
                max_episode_steps=protocol.max_episode_steps,
            )
            logger.scalar("eval/return_mean", result["return_mean"], env_steps)
            logger.scalar("eval/return_std", result["return_std"], env_steps)
            logger.scalar("eval/length_mean", result["length_mean"], env_steps)
            logger.scalar("eval/capped_episodes", result["capped"], env_steps)
            if run.video:
                video = record_video_episode(
                    agent,
                    state,
                    env_id=run.env_id,
                    num_envs=1,
                    seed=run.seed + 2,
                    path=run_dir / VIDEO_DIRNAME / f"eval-{env_steps:012d}.mp4",
                    backend=run.backend,
                    policy=protocol.policy,
                    epsilon=protocol.epsilon,
                    max_episode_steps=protocol.max_episode_steps,
                )
                result["video"] = str(video)
            return result

        from tqdm import tqdm

        bar = tqdm(
            total=run.total_steps,
            initial=min(env_steps, run.total_steps),
            unit="step",
            unit_scale=True,
            dynamic_ncols=True,
            disable=not run.progress,
            file=sys.stderr,
            desc=f"{run.algo} {run.env_id} s{run.seed}",
        )
        start_time = time.perf_counter()
        window_steps, window_time = env_steps, start_time
        sps_logged_at = start_time
        warm_steps: int | None = None  # env steps when the first update had finished
        warm_time = 0.0
        side_time = 0.0  # evaluation and checkpointing after warm-up
        align = agents.get_algorithm(run.algo).on_policy
        next_ckpt = (env_steps // run.checkpoint_every + 1) * run.checkpoint_every
        eval_every = run.eval_every if run.eval_every > 0 else None
        next_eval = (env_steps // eval_every + 1) * eval_every if eval_every else None
        pending_ckpt = False

        with _StopFlag() as stop:
            while env_steps < run.total_steps:
                actions, state = agent.act(state, obs)
                step = env.step(np.asarray(actions))
                state, metrics = agent.observe(state, obs, actions, step)
                obs = step.obs
                env_steps += num_envs
                iteration += 1

                ended = ~np.isnan(step.episode_returns)
                if ended.any():
                    episodes += int(ended.sum())
                    logger.episodes(
                        step.episode_returns[ended], step.episode_lengths[ended], env_steps
                    )
                if metrics is not None:
                    updates += 1
                    _check_metrics(metrics, env_steps)
                    logger.learner(metrics, env_steps)
                    if warm_steps is None:
                        warm_steps, warm_time = env_steps, time.perf_counter()
                side_start = time.perf_counter()

                if next_eval is not None and env_steps >= next_eval:
                    next_eval = (env_steps // eval_every + 1) * eval_every
                    if run.eval_episodes > 0 and env_steps < run.total_steps:
                        final_eval = run_eval()
                if env_steps >= next_ckpt:
                    next_ckpt = (env_steps // run.checkpoint_every + 1) * run.checkpoint_every
                    pending_ckpt = True
                if pending_ckpt and (not align or metrics is not None):
                    last_ckpt = save_checkpoint()
                    pending_ckpt = False
                if warm_steps is not None:
                    side_time += time.perf_counter() - side_start

                now = time.perf_counter()
                if now - window_time >= 0.5:
                    sps = (env_steps - window_steps) / (now - window_time)
                    bar.set_postfix(sps=f"{sps:,.0f}", ret=f"{logger.recent_return:.1f}")
                    if warm_steps is not None and now - sps_logged_at >= 10.0:
                        logger.scalar("train/sps", sps, env_steps)
                        sps_logged_at = now
                    window_steps, window_time = env_steps, now
                bar.update(min(env_steps, run.total_steps) - bar.n)
                logger.maybe_flush()

                # Early stops wait for the end of a rollout (on-policy learners), so that
                # a checkpoint never holds half a rollout.
                at_boundary = not align or metrics is not None
                if stop.signal is not None and at_boundary:
                    last_ckpt = save_checkpoint()
                    bar.close()
                    logger.close()
                    raise Interrupted(
                        f"stopped by signal {stop.signal} at env step {env_steps}; checkpoint "
                        f"{last_ckpt}; continue with --resume"
                    )
                if stop_after_steps is not None and env_steps >= stop_after_steps and at_boundary:
                    break

        finished = env_steps >= run.total_steps
        if finished:  # an early stop keeps the pending averages in the checkpoint
            logger.flush_learner(env_steps)
        # measured before the final evaluation, which is not training time.
        sps = float("nan")
        if warm_steps is not None and env_steps > warm_steps:
            sps = (env_steps - warm_steps) / (time.perf_counter() - warm_time - side_time)
            logger.scalar("train/sps", sps, env_steps)
        if finished and run.eval_episodes > 0:
            final_eval = run_eval()
        last_ckpt = save_checkpoint()
        bar.close()
        recent = logger.recent_return
        logger.close()
        if final_eval is not None:
            final_eval = {k: v for k, v in final_eval.items() if k not in ("returns", "lengths")}
        return TrainResult(
            run_dir=run_dir,
            env_steps=env_steps,
            updates=updates,
            episodes=episodes,
            recent_return=recent,
            final_eval=final_eval,
            checkpoint=last_ckpt,
            sps=sps,
            wall_s=time.perf_counter() - call_start,
            finished=finished,
        )
    finally:
        env.close()
        if eval_env is not None:
            eval_env.close()


def load_agent_from_checkpoint(
    path: str | os.PathLike,
) -> tuple[Any, Any, RunConfig, Any, dict[str, Any], Path]:
    """Rebuild `(agent, state, run, algo_config, payload, checkpoint_path)` from a checkpoint.

    `path` may be a checkpoint file, a run folder or its `checkpoints/` folder.
    """
    from softeq.adapters.envs import make_vector_env
    from softeq.adapters.run_config import config_dicts_to_objects

    payload, ckpt_path = ckpt_lib.resolve_checkpoint(path)
    run, algo_config = config_dicts_to_objects(payload["config"])
    num_envs = int(payload["num_envs"])
    env = make_vector_env(run.env_id, num_envs=num_envs, seed=run.seed, backend=run.backend)
    try:
        agent = build_agent(run, algo_config, env)
        obs = env.reset(seed=run.seed)
        template = agent.init(run.seed, obs)
    finally:
        env.close()
    state = ckpt_lib.restore_like(template, payload["agent_state"])
    return agent, state, run, algo_config, payload, ckpt_path
