"""DQN with a standard or soft target and n-step returns (paper §6.2, paper-notes §5).

The target of every sampled n-step window comes from
`softeq.core.soft_dqn_targets` evaluated on the target network's rows
Q̄(s_{i+1}, ·) … Q̄(s_{i+n}, ·): "hard" bootstraps from max_a Q̄, the soft
modes from τ log mean/sum exp(Q̄/τ) and subtract τ·KL of the target network's
Boltzmann policy at the intermediate states [E13]. A termination inside the
window gives a zero discount, which cuts the later rewards and the bootstrap;
a time-limit truncation is not terminal: the window bootstraps there from the
target network's value of the ended episode's final observation and stops
(`softeq.core.bootstrap_truncations`). Online Q is fitted with the Huber loss,
Adam and global-norm clipping; the target network is a periodic hard copy made
inside the jitted update. Behaviour is ε-greedy with a linear schedule.
"""

from __future__ import annotations

from typing import NamedTuple

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import optax

from softeq.adapters import parallel, replay
from softeq.adapters.agents import common, eval_policies
from softeq.adapters.agents.config import DQNConfig
from softeq.adapters.agents.replay_agent import store_and_update
from softeq.core import (
    DQN_TARGET_MODES,
    bootstrap_truncations,
    dqn_bootstrap_value,
    soft_dqn_targets,
)


class DQNLearnerState(NamedTuple):
    """params, target_params (hk.Params), opt_state, updates (`[]` int32, done so far)."""

    params: hk.Params
    target_params: hk.Params
    opt_state: optax.OptState
    updates: jax.Array


class DQNState(NamedTuple):
    """Everything a DQN agent carries between calls; arrays only.

    learner: `DQNLearnerState` (replicated over the mesh).
    rng: `uint32[2]` PRNG key for ε-greedy action selection.
    replay: the `softeq.adapters.replay.ReplayBuffer` (numpy, written in place).
    seed: `[]` int64 run seed; replay sampling for update k uses the numpy
      generator seeded with (seed, k), so a restored state resamples identically.
    steps: `[]` int64 transitions observed so far, summed over environments.
    updates: `[]` int64 learner updates done so far.
    """

    learner: DQNLearnerState
    rng: jax.Array
    replay: replay.ReplayBuffer
    seed: np.ndarray
    steps: np.ndarray
    updates: np.ndarray


def linear_epsilon(step: int, *, start: float, end: float, decay_steps: int) -> float:
    """ε after `step` transitions: linear from `start` to `end` over `decay_steps`, then flat."""
    fraction = min(max(step, 0) / decay_steps, 1.0)
    return start + fraction * (end - start)


def dqn_targets(target_params, batch: replay.NStepBatch, *, apply, config: DQNConfig):
    """n-step targets `[B]` of the sampled windows from the target network (no gradient).

    y = `softeq.core.soft_dqn_targets` of the window's rewards, discounts
    γ·(1 − terminated) and target rows Q̄(s_{i+1}, ·) … Q̄(s_{i+n}, ·), at its
    first index, after `softeq.core.bootstrap_truncations` has folded the
    bootstrap value of each truncated transition's final observation (the row
    `next_obs[:, j]` holds it there) into its reward and cut the window.

    Args:
      target_params: target network parameters.
      batch: `NStepBatch` with rewards/terminated/truncated `[B, n]` and next_obs `[B, n, …]`.
      apply: the Q-network's `apply(params, obs) -> q [B, A]`.
      config: target mode, temperature and discount. `config.target` is a mode's
        name, or inside a sweep whose lanes differ in it a traced `[]` int32
        index into `DQN_TARGET_MODES` (registry `sweepable_choices`): every mode
        is then computed (cheap beside the network) and the lane's is kept.
    """
    size, n = batch.rewards.shape
    next_obs = batch.next_obs.reshape((size * n, *batch.next_obs.shape[2:]))
    q_next = apply(target_params, next_obs)
    q_next = q_next.reshape((size, n, q_next.shape[-1]))
    discounts = config.discount * (1.0 - batch.terminated)

    def targets_for(mode: str) -> jax.Array:
        def target(r, d, trunc, qn):
            v_next = jax.vmap(
                lambda q: dqn_bootstrap_value(q, mode=mode, temperature=config.temperature)
            )(qn)
            r, d = bootstrap_truncations(r, d, trunc, v_next)
            return soft_dqn_targets(r, d, qn, mode=mode, temperature=config.temperature, n=n)

        return jax.vmap(target)(batch.rewards, discounts, batch.truncated, q_next)[:, 0]

    if isinstance(config.target, str):
        targets = targets_for(config.target)
    else:
        branches = [lambda mode=mode: targets_for(mode) for mode in DQN_TARGET_MODES]
        targets = jax.lax.switch(config.target, branches)
    return jax.lax.stop_gradient(targets)


def huber_regression(q: jax.Array, actions: jax.Array, targets: jax.Array, *, delta: float):
    """Mean Huber loss (threshold `delta`) of Q(s_i, a_i) against fixed `targets`.

    Args:
      q: `[B, A]` online Q-values.
      actions: `[B]` int actions taken.
      targets: `[B]` regression targets (already without gradient).
      delta: the Huber threshold.

    Returns:
      `(loss [], metrics dict)`: the loss, the mean Q-value taken, the mean target and
      the mean absolute TD error.
    """
    q_taken = jnp.take_along_axis(q, actions[:, None], axis=-1)[:, 0]
    loss = jnp.mean(optax.losses.huber_loss(q_taken, targets, delta=delta))
    metrics = {
        "loss": loss,
        "q_mean": jnp.mean(q_taken),
        "target_mean": jnp.mean(targets),
        "td_abs_mean": jnp.mean(jnp.abs(targets - q_taken)),
    }
    return loss, metrics


def dqn_loss(params, target_params, batch: replay.NStepBatch, *, apply, config: DQNConfig):
    """Mean Huber loss between Q(s_i, a_i) and the targets of `dqn_targets`.

    Args:
      params: online network parameters (differentiated).
      target_params: target network parameters (held fixed).
      batch: `NStepBatch` with obs `[B, …]`, actions `[B]`, rewards/terminated/truncated `[B, n]`,
        next_obs `[B, n, …]`.
      apply: the Q-network's `apply(params, obs) -> q [B, A]`.
      config: target mode, temperature, discount and Huber δ.

    Returns:
      `(loss [], metrics dict)`.
    """
    q = apply(params, batch.obs)
    targets = dqn_targets(target_params, batch, apply=apply, config=config)
    return huber_regression(q, batch.actions, targets, delta=config.huber_delta)


def learner_update_for(loss):
    """`make_learner_update` for a Q-learner whose loss is `loss(params, target_params, batch, *,
    apply, config) -> (loss, metrics)`: the same optimiser step and periodic target copy as DQN.
    """

    def make(apply, optimizer: optax.GradientTransformation, *, config):
        def learner_update(learner: DQNLearnerState, batch: replay.NStepBatch):
            grads, metrics = jax.grad(loss, has_aux=True)(
                learner.params, learner.target_params, batch, apply=apply, config=config
            )
            updates, opt_state = optimizer.update(grads, learner.opt_state, learner.params)
            params = optax.apply_updates(learner.params, updates)
            count = learner.updates + 1
            target_params = optax.periodic_update(
                params, learner.target_params, count, config.target_update_every
            )
            metrics["grad_norm"] = optax.tree.norm(grads)
            return DQNLearnerState(params, target_params, opt_state, count), metrics

        return learner_update

    return make


#: The pure learner update `(DQNLearnerState, NStepBatch) -> (DQNLearnerState, metrics)`,
#: built as `make_learner_update(apply, optimizer, *, config)`.
make_learner_update = learner_update_for(dqn_loss)


def init_learner(params: hk.Params, optimizer: optax.GradientTransformation, *, config):
    """The learner state of fresh `params`: a target copy, the optimiser state, 0 updates."""
    del config
    target = jax.tree.map(jnp.copy, params)
    return DQNLearnerState(params, target, optimizer.init(params), jnp.zeros((), jnp.int32))


def q_values(apply, params: hk.Params, obs: jax.Array) -> jax.Array:
    """The scores `[N, A]` whose argmax is the greedy action: the Q-values themselves."""
    return apply(params, obs)


def scheduled_epsilon(env_steps: jax.Array, *, config) -> jax.Array:
    """ε after `env_steps` transitions as `linear_epsilon`, traceable (`[]` float32)."""
    fraction = jnp.clip(env_steps.astype(jnp.float32) / config.epsilon_decay_steps, 0.0, 1.0)
    return config.epsilon_start + fraction * (config.epsilon_end - config.epsilon_start)


def epsilon_greedy_act(apply, params, key, obs, env_steps, *, config, num_actions: int):
    """ε-greedy behaviour actions `[N]` int32 at ε = `scheduled_epsilon(env_steps)` (traceable).

    `key` is this step's typed PRNG key; `env_steps` the `[]` int transitions done so far.
    """
    epsilon = scheduled_epsilon(env_steps, config=config)
    explore_key, action_key = jax.random.split(key)
    greedy = jnp.argmax(q_values(apply, params, obs), axis=-1)
    random_actions = jax.random.randint(action_key, (obs.shape[0],), 0, num_actions, jnp.int32)
    explore = jax.random.uniform(explore_key, (obs.shape[0],)) < epsilon
    return jnp.where(explore, random_actions, greedy.astype(jnp.int32))


def epsilon_metrics(env_steps: jax.Array, *, config) -> dict[str, jax.Array]:
    """What ε-greedy behaviour logs beside the learner's metrics: ε for the next action."""
    return {"epsilon": scheduled_epsilon(env_steps, config=config)}


def make_network(num_actions: int, *, torso: str, config: DQNConfig) -> hk.Transformed:
    """The Q-network `q [B, A]` (dueling when `config.dueling`)."""
    from softeq.adapters.networks import make_q_network

    return make_q_network(int(num_actions), torso=torso, dueling=config.dueling)


def make_dqn_optimizer(config: DQNConfig, *, num_envs: int) -> optax.GradientTransformation:
    """Global-norm clipping then Adam (the number of envs does not matter here)."""
    del num_envs
    return common.make_optimizer(
        name="adam",
        learning_rate=config.learning_rate,
        max_grad_norm=config.max_grad_norm,
        adam_eps=config.adam_eps,
    )


class DQNAgent:
    """DQN agent with hard or soft targets; see `softeq.adapters.agents.make_agent`."""

    def __init__(
        self,
        config: DQNConfig,
        *,
        network: hk.Transformed,
        num_actions: int,
        observation_shape: tuple,
        observation_dtype,
        num_envs: int,
        devices=None,
    ):
        self.config = config
        self.network = network
        self.num_actions = num_actions
        self.observation_shape = tuple(observation_shape)
        self.observation_dtype = np.dtype(observation_dtype)
        self.num_envs = num_envs
        self.mesh = parallel.batch_mesh(config.batch_size, devices)
        self.optimizer = make_dqn_optimizer(config, num_envs=num_envs)
        self._traces = {
            "learner_update": common.TraceCounter(
                make_learner_update(network.apply, self.optimizer, config=config)
            ),
            "act": common.TraceCounter(self._epsilon_greedy),
            "act_greedy": common.TraceCounter(self._greedy),
        }
        self.learner_update = parallel.data_parallel_update(
            self._traces["learner_update"], self.mesh, batch_axis=0
        )
        self._act = jax.jit(self._traces["act"])
        self._act_greedy = jax.jit(self._traces["act_greedy"])

    @property
    def trace_counts(self) -> dict[str, int]:
        """How often each jitted function has been traced (1 each after warm-up)."""
        return {name: counter.count for name, counter in self._traces.items()}

    def _greedy(self, params, obs):
        return jnp.argmax(self.network.apply(params, obs), axis=-1).astype(jnp.int32)

    def _epsilon_greedy(self, params, key, obs, epsilon):
        key, explore_key, action_key = jax.random.split(key, 3)
        greedy = self._greedy(params, obs)
        size = greedy.shape[0]
        random_actions = jax.random.randint(action_key, (size,), 0, self.num_actions, jnp.int32)
        explore = jax.random.uniform(explore_key, (size,)) < epsilon
        return jnp.where(explore, random_actions, greedy), key

    def epsilon(self, state: DQNState) -> float:
        """The exploration rate ε for the next action."""
        c = self.config
        return linear_epsilon(
            int(state.steps),
            start=c.epsilon_start,
            end=c.epsilon_end,
            decay_steps=c.epsilon_decay_steps,
        )

    def init(self, seed: int, first_obs: np.ndarray) -> DQNState:
        """Fresh online/target parameters, optimiser state and an empty replay buffer."""
        first_obs = common.check_obs(
            first_obs, shape=self.observation_shape, num_envs=self.num_envs, name="first_obs"
        )
        key, init_key = jax.random.split(common.new_key(seed))
        params = jax.jit(self.network.init)(init_key, jnp.asarray(first_obs))
        target = jax.tree.map(jnp.copy, params)
        learner = DQNLearnerState(
            params, target, self.optimizer.init(params), jnp.zeros((), jnp.int32)
        )
        learner = parallel.put_replicated(learner, self.mesh)
        buffer = replay.replay_init(
            capacity=self.config.replay_capacity,
            num_envs=self.num_envs,
            observation_shape=self.observation_shape,
            observation_dtype=self.observation_dtype,
        )
        zero = np.zeros((), np.int64)
        return DQNState(
            learner,
            parallel.put_replicated(key, self.mesh),
            buffer,
            np.asarray(seed, np.int64),
            zero,
            zero.copy(),
        )

    def act(self, state: DQNState, obs: np.ndarray):
        """ε-greedy actions `[N]` int32; returns `(actions, state)`."""
        epsilon = np.float32(self.epsilon(state))
        actions, key = self._act(state.learner.params, state.rng, obs, epsilon)
        return np.asarray(actions), state._replace(rng=key)

    def act_greedy(self, state: DQNState, obs: np.ndarray) -> np.ndarray:
        """argmax_a Q(obs, a) for each observation, `[N]` int32."""
        return np.asarray(self._act_greedy(state.learner.params, obs))

    # ---- evaluation: own jitted function, randomness from the caller's key ----

    def act_eval(
        self,
        state: DQNState,
        obs: np.ndarray,
        key: jax.Array,
        *,
        policy: str,
        epsilon: float = 0.05,
    ) -> np.ndarray:
        """Evaluation actions `[N]` int32 for `obs` under `policy`.

        Args:
          state: the agent state; only its online parameters are read and no
            state is returned, so the training key `state.rng` is untouched.
          obs: `[N, *observation_shape]` observations.
          key: PRNG key of this step's draws, derived from the evaluation seed.
          policy: "greedy" (argmax_a Q) or "epsilon" (ε-greedy, the usual
            protocol for Q-learners); DQN learns no stochastic policy, so
            "sample" is refused.
          epsilon: ε of "epsilon", in [0, 1].
        """
        eval_policies.check_eval_policy(policy, epsilon, allowed=("greedy", "epsilon"))
        if policy == "greedy":
            return self.act_greedy(state, obs)
        explore = eval_policies.jitted_once(self, "act_eval_epsilon", self._eval_epsilon)
        return np.asarray(explore(state.learner.params, key, obs, np.float32(epsilon)))

    def _eval_epsilon(self, params, key, obs, epsilon):
        return eval_policies.epsilon_greedy_actions(
            self._greedy(params, obs), key, epsilon, num_actions=self.num_actions
        )

    def observe(self, state: DQNState, obs, actions, step):
        """Stores the transitions; runs the learner updates that fall due.

        One update per `train_every` transitions once `learning_starts`
        transitions are stored (several per call when N > train_every).
        Returns `(state, metrics of the last update or None)`.
        """
        state, metrics = store_and_update(
            state, obs, actions, step, config=self.config, num_envs=self.num_envs,
            mesh=self.mesh, learner_update=self.learner_update,
        )  # fmt: skip
        if metrics is not None:
            metrics["epsilon"] = self.epsilon(state)
        return state, metrics
