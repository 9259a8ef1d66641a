"""The host-loop agent of a replay learner, built from its registry entry's pure functions.

A replay learner (an `Algorithm` with `on_policy=False`) is described by pure
functions that both drivers call: `init_learner` (the learner state of fresh
parameters), `act` (behaviour actions from a key, the observations and the
number of transitions so far), `behaviour_metrics` (what the behaviour logs,
e.g. ε), `policy_scores` (the `[N, A]` scores whose argmax is greedy and whose
softmax is the learned policy, for agents that have one) and the learner
update. `ReplayAgent` wraps them with what the host loop needs: a numpy replay
buffer (`softeq.adapters.replay`), the update schedule (one update per
`train_every` transitions once `learning_starts` are stored, each on
`batch_size` n-step windows) and evaluation actions. The jitted driver runs
the same functions on its device replay (`softeq.adapters.jit_driver`).

All mutable state lives in `ReplayAgentState`, made of jax and numpy arrays
only, so a checkpoint of its leaves captures a run exactly; replay sampling
for update k draws from the numpy generator seeded with (seed, k).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np

from softeq.adapters import parallel, replay
from softeq.adapters.agents import common, eval_policies


class ReplayAgentState(NamedTuple):
    """Everything a replay agent carries between calls; arrays only.

    learner: the algorithm's learner state (replicated over the mesh).
    rng: `uint32[2]` PRNG key of the behaviour's draws.
    replay: the `softeq.adapters.replay.ReplayBuffer` (numpy, written in place).
    seed: `[]` int64 run seed (replay sampling for update k uses (seed, k)).
    steps: `[]` int64 transitions observed so far, summed over environments.
    updates: `[]` int64 learner updates done so far.
    """

    learner: Any
    rng: jax.Array
    replay: replay.ReplayBuffer
    seed: np.ndarray
    steps: np.ndarray
    updates: np.ndarray


def _int32_steps(steps: int) -> np.ndarray:
    return np.asarray(min(int(steps), np.iinfo(np.int32).max), np.int32)


class ReplayAgent:
    """A replay learner for the host loop; see `softeq.adapters.agents.make_agent`.

    Args:
      config: the algorithm's config (has `batch_size`, `replay_capacity`,
        `n_step`, `learning_starts`, `train_every`).
      algorithm: the registry entry (`softeq.adapters.agents.Algorithm`).
      network: the haiku network of the entry.
      num_actions: size of the discrete action set.
      observation_shape: shape of one observation.
      observation_dtype: dtype of observations.
      num_envs: number of parallel environments the agent acts in.
      devices: devices for the data-parallel learner; `jax.local_devices()` when None.
    """

    def __init__(
        self,
        config,
        *,
        algorithm,
        network: hk.Transformed,
        num_actions: int,
        observation_shape: tuple,
        observation_dtype,
        num_envs: int,
        devices=None,
    ):
        self.config = config
        self.algorithm = algorithm
        self.network = network
        self.num_actions = num_actions
        self.observation_shape = tuple(observation_shape)
        self.observation_dtype = np.dtype(observation_dtype)
        self.num_envs = num_envs
        self.mesh = parallel.batch_mesh(config.batch_size, devices)
        self.optimizer = algorithm.make_optimizer(config, num_envs=num_envs)
        self._traces = {
            "learner_update": common.TraceCounter(
                algorithm.make_learner_update(network.apply, self.optimizer, config=config)
            ),
            "act": common.TraceCounter(self._behaviour),
            "act_greedy": common.TraceCounter(self._greedy),
        }
        self.learner_update = parallel.data_parallel_update(
            self._traces["learner_update"], self.mesh, batch_axis=0
        )
        self._act = jax.jit(self._traces["act"])
        self._act_greedy = jax.jit(self._traces["act_greedy"])
        self.eval_policies = ("greedy", "epsilon") + (
            ("sample",) if algorithm.stochastic_policy else ()
        )

    @property
    def trace_counts(self) -> dict[str, int]:
        """How often each jitted function has been traced (1 each after warm-up)."""
        return {name: counter.count for name, counter in self._traces.items()}

    def _scores(self, params, obs):
        return self.algorithm.policy_scores(self.network.apply, params, obs)

    def _greedy(self, params, obs):
        return jnp.argmax(self._scores(params, obs), axis=-1).astype(jnp.int32)

    def _behaviour(self, params, key, obs, env_steps):
        key, act_key = jax.random.split(key)
        actions = self.algorithm.act(
            self.network.apply,
            params,
            act_key,
            obs,
            env_steps,
            config=self.config,
            num_actions=self.num_actions,
        )
        return actions, key

    def init(self, seed: int, first_obs: np.ndarray) -> ReplayAgentState:
        """Fresh parameters (as the jitted driver draws them), learner state, empty replay."""
        first_obs = common.check_obs(
            first_obs, shape=self.observation_shape, num_envs=self.num_envs, name="first_obs"
        )
        key, init_key = jax.random.split(common.new_key(seed))
        params = jax.jit(self.network.init)(init_key, jnp.asarray(first_obs))
        learner = self.algorithm.init_learner(params, self.optimizer, config=self.config)
        learner = parallel.put_replicated(learner, self.mesh)
        buffer = replay.replay_init(
            capacity=self.config.replay_capacity,
            num_envs=self.num_envs,
            observation_shape=self.observation_shape,
            observation_dtype=self.observation_dtype,
        )
        zero = np.zeros((), np.int64)
        return ReplayAgentState(
            learner,
            parallel.put_replicated(key, self.mesh),
            buffer,
            np.asarray(seed, np.int64),
            zero,
            zero.copy(),
        )

    def act(self, state: ReplayAgentState, obs: np.ndarray):
        """Behaviour actions `[N]` int32 (the algorithm's `act`); returns `(actions, state)`."""
        actions, key = self._act(state.learner.params, state.rng, obs, _int32_steps(state.steps))
        return np.asarray(actions), state._replace(rng=key)

    def act_greedy(self, state: ReplayAgentState, obs: np.ndarray) -> np.ndarray:
        """The argmax of the policy scores for each observation, `[N]` int32."""
        return np.asarray(self._act_greedy(state.learner.params, obs))

    def act_eval(
        self,
        state: ReplayAgentState,
        obs: np.ndarray,
        key: jax.Array,
        *,
        policy: str,
        epsilon: float = 0.05,
    ) -> np.ndarray:
        """Evaluation actions `[N]` int32 for `obs` under `policy`.

        Args:
          state: the agent state; only its parameters are read, so the
            training key `state.rng` is untouched.
          obs: `[N, *observation_shape]` observations.
          key: PRNG key of this step's draws, derived from the evaluation seed.
          policy: "greedy", "epsilon" (ε-greedy) or, for algorithms with a
            learned stochastic policy, "sample" (a draw from softmax of the scores).
          epsilon: ε of "epsilon", in [0, 1].
        """
        eval_policies.check_eval_policy(policy, epsilon, allowed=self.eval_policies)
        if policy == "greedy":
            return self.act_greedy(state, obs)
        if policy == "sample":
            sample = eval_policies.jitted_once(self, "act_eval_sample", self._eval_sample)
            return np.asarray(sample(state.learner.params, key, obs))
        explore = eval_policies.jitted_once(self, "act_eval_epsilon", self._eval_epsilon)
        return np.asarray(explore(state.learner.params, key, obs, np.float32(epsilon)))

    def _eval_sample(self, params, key, obs):
        return eval_policies.sample_actions(self._scores(params, obs), key)

    def _eval_epsilon(self, params, key, obs, epsilon):
        return eval_policies.epsilon_greedy_actions(
            self._greedy(params, obs), key, epsilon, num_actions=self.num_actions
        )

    def observe(self, state: ReplayAgentState, obs, actions, step):
        """Stores the transitions; runs the learner updates that fall due.

        One update per `train_every` transitions once `learning_starts`
        transitions are stored (several per call when N > train_every).
        Returns `(state, metrics of the last update or None)`.
        """
        state, metrics = store_and_update(
            state, obs, actions, step, config=self.config, num_envs=self.num_envs,
            mesh=self.mesh, learner_update=self.learner_update,
        )  # fmt: skip
        if metrics is not None and self.algorithm.behaviour_metrics is not None:
            extra = self.algorithm.behaviour_metrics(
                _int32_steps(int(state.steps)), config=self.config
            )
            metrics.update(common.to_floats(extra))
        return state, metrics


def store_and_update(state, obs, actions, step, *, config, num_envs, mesh, learner_update):
    """The host loop's replay schedule: stores one step of transitions of every env,
    then runs the learner updates that fall due.

    One update per `config.train_every` transitions once `config.learning_starts`
    are stored and an n-step window can be drawn (several per call when there
    are more envs than `train_every`); update k samples its `config.batch_size`
    windows with the numpy generator seeded with (seed, k), so a resumed run
    draws what an uninterrupted one does.

    Args:
      state: an agent state with fields `replay`, `steps`, `learner`, `updates`
        and `seed` (`ReplayAgentState`, `DQNState`).
      obs: `[N, ...]` observations the actions were taken in.
      actions: `[N]` actions.
      step: the env step's result (`reward`, `terminated`, `truncated`, `final_obs`).
      config: the learner's config (`train_every`, `learning_starts`, `n_step`,
        `batch_size`).
      num_envs: N, the transitions stored per call.
      mesh: the devices the learner state lives on (replicated).
      learner_update: `(learner, batch) -> (learner, metrics)`.

    Returns:
      `(state, metrics)`: the new state and the floats of the last update's
      metrics, or None when no update ran.
    """
    buffer = replay.replay_add(
        state.replay,
        obs,
        actions,
        step.reward,
        step.terminated,
        step.truncated,
        step.final_obs,
    )
    before = int(state.steps)
    after = before + num_envs
    state = state._replace(replay=buffer, steps=np.asarray(after, np.int64))
    due = after // config.train_every - before // config.train_every
    if after < config.learning_starts or not replay.replay_can_sample(buffer, n=config.n_step):
        return state, None
    learner = jax.device_put(state.learner, parallel.replicated(mesh))
    updates = int(state.updates)
    metrics = None
    for _ in range(due):
        rng = np.random.default_rng([int(state.seed), updates])
        batch = replay.replay_sample(buffer, rng, batch_size=config.batch_size, n=config.n_step)
        learner, metrics = learner_update(learner, batch)
        updates += 1
    state = state._replace(learner=learner, updates=np.asarray(updates, np.int64))
    return state, None if metrics is None else common.to_floats(metrics)


def agent_for(name: str):
    """`Algorithm.make_agent` of the registered replay learner `name` (looked up when called)."""

    def make(config, **kwargs) -> ReplayAgent:
        from softeq.adapters.agents.registry import get_algorithm

        return ReplayAgent(config, algorithm=get_algorithm(name), **kwargs)

    return make
