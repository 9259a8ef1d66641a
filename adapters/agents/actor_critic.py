r"""A2C (naive or proper entropy, §6.1) and A2C-matched soft Q-learning ([E16], §6.3).

Both agents share the network (policy logits and value from one torso), the
synchronous rollouts and the optimiser; they differ only in the loss:

- "a2c": `softeq.core.a2c_loss` with π̄ ≡ 1 (`log_prior` = 0, the entropy bonus);
- "soft-q": `softeq.core.a2c_matched_soft_q_loss`, the dueling soft Q-function
  Q = V + τ log π regressed on n-step soft targets, with gradient scale 1/τ on
  the advantage stream and c on the value stream; π_θ itself is the behaviour
  policy (no target network, no ε).

Each rollout holds `num_steps` transitions of every environment and the state
after them; the n of the n-step returns is `num_steps`, so every step
bootstraps from the end of the rollout (windows shrink towards the end).
A termination gets discount 0. A time-limit truncation is not terminal: the
transition bootstraps from the value of the ended episode's final observation
(the vector env's `final_obs`), computed with the parameters the coming update
starts from, and the return is cut there (`softeq.core.bootstrap_truncations`
folds γ·V(s_final) into the reward and zeroes the discount), so the learner is
never taught that the value collapses at the time limit.

For soft-q every update also differentiates the matching A2C loss (entropy
"proper", π̄ ≡ 1, value weight c) on the same batch and parameters, sharing one
forward pass through `jax.vjp`, and reports the cosine between the two
gradients (`grad_cosine`): [E16] says they agree in expectation over actions.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import optax

from softeq.adapters import parallel
from softeq.adapters.agents import common, eval_policies
from softeq.adapters.agents.config import A2CConfig, SoftQConfig
from softeq.core import a2c_loss, a2c_matched_soft_q_loss, bootstrap_truncations


class Rollout(NamedTuple):
    """One synchronous rollout, environment-major (each env's sequence is time-major).

    obs: `[N, T + 1, *obs_shape]` states s_0 … s_T (s_T only bootstraps).
    actions: `[N, T]` int32 actions a_0 … a_{T-1}.
    rewards: `[N, T]` float32 rewards.
    discounts: `[N, T]` float32 γ·(1 − done) of each transition.
    """

    obs: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    discounts: np.ndarray


class LearnerState(NamedTuple):
    """The part of the agent state the learner update transforms: params and optimiser."""

    params: hk.Params
    opt_state: optax.OptState


class ActorCriticState(NamedTuple):
    """Everything an actor-critic agent carries between calls; arrays only.

    learner: parameters and optimiser state (replicated over the mesh).
    rng: `uint32[2]` PRNG key for action sampling.
    rollout: the `Rollout` being filled (numpy, written in place).
    cursor: `[]` int64 number of transitions stored in the current rollout.
    steps: `[]` int64 transitions observed so far, summed over environments.
    updates: `[]` int64 learner updates done so far.
    """

    learner: LearnerState
    rng: jax.Array
    rollout: Rollout
    cursor: np.ndarray
    steps: np.ndarray
    updates: np.ndarray


def forward(apply, params, obs):
    """Logits `[N, T + 1, A]` and values `[N, T + 1]` for rollout observations `[N, T + 1, …]`."""
    lead = obs.shape[:2]
    logits, values = apply(params, obs.reshape((-1, *obs.shape[2:])))
    return logits.reshape((*lead, logits.shape[-1])), values.reshape(lead)


def policy_logits(apply, params, obs):
    """The policy logits `[N, A]` of observations `[N, …]` (argmax: the greedy action)."""
    return apply(params, obs)[0]


def a2c_batch_loss(logits, values, rollout: Rollout, *, config, entropy: str):
    """Mean over environments of `softeq.core.a2c_loss` with π̄ ≡ 1.

    Args:
      logits: `[N, T + 1, A]`; values: `[N, T + 1]`; rollout: the batch.
      config: an `A2CConfig` or `SoftQConfig` (temperature, value weight, n = num_steps).
      entropy: "naive" or "proper".

    Returns:
      `(loss [], A2CLossExtras with [N]-leading fields)`.
    """
    log_prior = jnp.zeros(logits.shape[-1], logits.dtype)

    def one(lg, v, a, r, d):
        return a2c_loss(
            lg,
            v,
            a,
            r,
            d,
            temperature=config.temperature,
            n=config.num_steps,
            value_weight=config.value_weight,
            entropy=entropy,
            log_prior=log_prior,
        )

    losses, extras = jax.vmap(one)(
        logits, values, rollout.actions, rollout.rewards, rollout.discounts
    )
    return jnp.mean(losses), extras


def soft_q_batch_loss(logits, values, rollout: Rollout, *, config):
    """Mean over environments of `softeq.core.a2c_matched_soft_q_loss` [E16]."""

    def one(lg, v, a, r, d):
        return a2c_matched_soft_q_loss(
            lg,
            v,
            a,
            r,
            d,
            temperature=config.temperature,
            n=config.num_steps,
            value_weight=config.value_weight,
        )

    losses, extras = jax.vmap(one)(
        logits, values, rollout.actions, rollout.rewards, rollout.discounts
    )
    return jnp.mean(losses), extras


def _forward_and_a2c(apply, params, rollout: Rollout, *, config, entropy: str):
    """One forward pass; the A2C loss gradient pulled back; the A2C diagnostics.

    Returns `(pull_back, a2c_grads, metrics)`; `pull_back` maps cotangents of
    (logits, values) to parameter gradients through the same `jax.vjp`.
    """
    (logits, values), pull_back = jax.vjp(lambda p: forward(apply, p, rollout.obs), params)
    a2c_fn = functools.partial(a2c_batch_loss, rollout=rollout, config=config, entropy=entropy)
    (a2c_value, extras), a2c_cot = jax.value_and_grad(a2c_fn, argnums=(0, 1), has_aux=True)(
        logits, values
    )
    (a2c_grads,) = pull_back(a2c_cot)
    metrics = {
        "a2c_loss": a2c_value,
        "policy_loss": jnp.mean(extras.policy_loss),
        "value_loss": jnp.mean(extras.value_loss),
        "kl": jnp.mean(extras.kl),
        "entropy": -jnp.mean(extras.kl),
        "advantage_std": jnp.std(extras.advantages),
        "value_mean": jnp.mean(values[:, :-1]),
    }
    return (logits, values), pull_back, a2c_grads, metrics


def a2c_gradients(apply, params, rollout: Rollout, *, config: A2CConfig):
    """Gradients of the A2C loss (entropy `config.entropy`) and its diagnostics.

    Returns:
      `(grads, metrics)` with `loss`, `policy_loss`, `value_loss`, `kl`, `entropy`,
      `advantage_std`, `value_mean`.
    """
    _, _, grads, metrics = _forward_and_a2c(
        apply, params, rollout, config=config, entropy=config.entropy
    )
    metrics["loss"] = metrics["a2c_loss"]
    return grads, metrics


def soft_q_gradients(apply, params, rollout: Rollout, *, config: SoftQConfig):
    """Gradients of the A2C-matched soft-Q loss [E16], checked against A2C on the same batch.

    One forward pass; the cotangents of the soft-Q loss and of the matching A2C
    loss (entropy "proper", π̄ ≡ 1, value weight c) are pulled back through the
    same `jax.vjp`, and their cosine is reported: [E16] says the two agree in
    expectation over actions.

    Returns:
      `(grads, metrics)`: the A2C diagnostics plus `grad_cosine`, `soft_q_loss`,
      `a2c_loss`, `a2c_grad_norm`.
    """
    (logits, values), pull_back, a2c_grads, metrics = _forward_and_a2c(
        apply, params, rollout, config=config, entropy="proper"
    )
    sq_fn = functools.partial(soft_q_batch_loss, rollout=rollout, config=config)
    (sq_value, _), sq_cot = jax.value_and_grad(sq_fn, argnums=(0, 1), has_aux=True)(logits, values)
    (grads,) = pull_back(sq_cot)
    metrics.update(
        loss=sq_value,
        soft_q_loss=sq_value,
        grad_cosine=common.cosine(grads, a2c_grads),
        a2c_grad_norm=optax.tree.norm(a2c_grads),
    )
    return grads, metrics


def learner_update_for(gradients: Callable):
    """`(apply, optimizer, *, config) -> update` for an actor-critic gradient function.

    The update is the pure `(LearnerState, Rollout) -> (LearnerState, metrics)`.
    """

    def make(apply, optimizer: optax.GradientTransformation, *, config):
        def learner_update(learner: LearnerState, rollout: Rollout):
            grads, metrics = gradients(apply, learner.params, rollout, config=config)
            updates, opt_state = optimizer.update(grads, learner.opt_state, learner.params)
            params = optax.apply_updates(learner.params, updates)
            metrics["grad_norm"] = optax.tree.norm(grads)
            return LearnerState(params, opt_state), metrics

        return learner_update

    return make


def make_learner_update(apply, optimizer: optax.GradientTransformation, *, algo: str, config):
    """The pure learner update `(LearnerState, Rollout) -> (LearnerState, metrics)` of `algo`."""
    from softeq.adapters.agents.registry import get_algorithm

    return get_algorithm(algo).make_learner_update(apply, optimizer, config=config)


def make_network(num_actions: int, *, torso: str, config) -> hk.Transformed:
    """The shared-torso policy/value network of both actor-critic agents."""
    from softeq.adapters.networks import make_actor_critic

    del config  # one architecture for both losses (§6.3 compares them on the same network)
    return make_actor_critic(int(num_actions), torso=torso)


def make_actor_critic_optimizer(config, *, num_envs: int) -> optax.GradientTransformation:
    """Clipping then RMSProp or Adam; with `lr_decay_steps` > 0 the rate decays linearly to 0.

    The decay is counted in learner updates, each of which consumes
    `num_envs × num_steps` transitions.
    """
    learning_rate = config.learning_rate
    if config.lr_decay_steps > 0:
        decay_updates = max(1, config.lr_decay_steps // (num_envs * config.num_steps))
        learning_rate = optax.linear_schedule(config.learning_rate, 0.0, decay_updates)
    return common.make_optimizer(
        name=config.optimizer,
        learning_rate=learning_rate,
        max_grad_norm=config.max_grad_norm,
        rmsprop_decay=config.rmsprop_decay,
        rmsprop_eps=config.rmsprop_eps,
        adam_eps=config.adam_eps,
    )


def agent_for(gradients: Callable):
    """The host-loop agent constructor `(config, *, network, ...) -> ActorCriticAgent`."""

    def make(config, **kwargs) -> ActorCriticAgent:
        return ActorCriticAgent(config, gradients=gradients, **kwargs)

    return make


class ActorCriticAgent:
    """A2C or A2C-matched soft-Q agent; see `softeq.adapters.agents.make_agent`."""

    def __init__(
        self,
        config: A2CConfig | SoftQConfig,
        *,
        gradients: Callable,
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
        self.mesh = parallel.batch_mesh(num_envs, devices)
        self.optimizer = make_actor_critic_optimizer(config, num_envs=num_envs)
        self._traces = {
            "learner_update": common.TraceCounter(
                learner_update_for(gradients)(network.apply, self.optimizer, config=config)
            ),
            "act": common.TraceCounter(self._sample),
            "act_greedy": common.TraceCounter(self._greedy),
        }
        self.learner_update = parallel.data_parallel_update(
            self._traces["learner_update"], self.mesh, batch_axis=0
        )
        self._act = jax.jit(self._traces["act"])
        self._act_greedy = jax.jit(self._traces["act_greedy"])
        self._values = jax.jit(lambda params, obs: network.apply(params, obs)[1])

    @property
    def trace_counts(self) -> dict[str, int]:
        """How often each jitted function has been traced (1 each after warm-up)."""
        return {name: counter.count for name, counter in self._traces.items()}

    def _sample(self, params, key, obs):
        key, sub = jax.random.split(key)
        logits, _ = self.network.apply(params, obs)
        return jax.random.categorical(sub, logits).astype(jnp.int32), key

    def _greedy(self, params, obs):
        logits, _ = self.network.apply(params, obs)
        return jnp.argmax(logits, axis=-1).astype(jnp.int32)

    def init(self, seed: int, first_obs: np.ndarray) -> ActorCriticState:
        """Fresh parameters, optimiser state and an empty rollout."""
        first_obs = common.check_obs(
            first_obs, shape=self.observation_shape, num_envs=self.num_envs, name="first_obs"
        )
        key, init_key = jax.random.split(common.new_key(seed))
        params = jax.jit(self.network.init)(init_key, jnp.asarray(first_obs))
        learner = parallel.put_replicated(
            LearnerState(params, self.optimizer.init(params)), self.mesh
        )
        steps = self.config.num_steps
        n = self.num_envs
        rollout = Rollout(
            obs=np.zeros((n, steps + 1, *self.observation_shape), self.observation_dtype),
            actions=np.zeros((n, steps), np.int32),
            rewards=np.zeros((n, steps), np.float32),
            discounts=np.zeros((n, steps), np.float32),
        )
        zero = np.zeros((), np.int64)
        return ActorCriticState(
            learner,
            parallel.put_replicated(key, self.mesh),
            rollout,
            zero,
            zero.copy(),
            zero.copy(),
        )

    def act(self, state: ActorCriticState, obs: np.ndarray):
        """Samples actions `[N]` int32 from π_θ(·|obs); returns `(actions, state)`."""
        actions, key = self._act(state.learner.params, state.rng, obs)
        return np.asarray(actions), state._replace(rng=key)

    def act_greedy(self, state: ActorCriticState, obs: np.ndarray) -> np.ndarray:
        """The most probable action under π_θ for each observation, `[N]` int32."""
        return np.asarray(self._act_greedy(state.learner.params, obs))

    # ---- evaluation: own jitted functions, randomness from the caller's key ----

    def act_eval(
        self,
        state: ActorCriticState,
        obs: np.ndarray,
        key: jax.Array,
        *,
        policy: str,
        epsilon: float = 0.05,
    ) -> np.ndarray:
        """Evaluation actions `[N]` int32 for `obs` under `policy`.

        Args:
          state: the agent state; only its parameters are read and no state is
            returned, so the training key `state.rng` (and exact resume) is untouched.
          obs: `[N, *observation_shape]` observations.
          key: PRNG key of this step's draws, derived from the evaluation seed.
          policy: "greedy" (argmax of the logits), "sample" (a draw from π_θ, the
            policy a2c and soft-q train) or "epsilon" (ε-greedy).
          epsilon: ε of "epsilon", in [0, 1].
        """
        eval_policies.check_eval_policy(policy, epsilon, allowed=eval_policies.EVAL_POLICY_NAMES)
        if policy == "greedy":
            return self.act_greedy(state, obs)
        params = state.learner.params
        if policy == "sample":
            sample = eval_policies.jitted_once(self, "act_eval_sample", self._eval_sample)
            return np.asarray(sample(params, key, obs))
        explore = eval_policies.jitted_once(self, "act_eval_epsilon", self._eval_epsilon)
        return np.asarray(explore(params, key, obs, np.float32(epsilon)))

    def _eval_sample(self, params, key, obs):
        logits, _ = self.network.apply(params, obs)
        return eval_policies.sample_actions(logits, key)

    def _eval_epsilon(self, params, key, obs, epsilon):
        return eval_policies.epsilon_greedy_actions(
            self._greedy(params, obs), key, epsilon, num_actions=self.num_actions
        )

    def observe(self, state: ActorCriticState, obs, actions, step):
        """Stores one transition per env; after `num_steps` of them runs the learner.

        `obs` are the observations the `actions` were chosen in; `step` is the
        vector env's result. Returns `(state, metrics or None)`. The rollout
        buffers of `state` are written in place.
        """
        t = int(state.cursor)
        buf = state.rollout
        discounts = self.config.discount * (1.0 - np.asarray(step.terminated, np.float32))
        rewards = np.asarray(step.reward, np.float32)
        truncated = np.asarray(step.truncated, bool)
        if truncated.any():
            # The parameters do not change before the update at the end of this rollout.
            v_final = np.asarray(self._values(state.learner.params, step.final_obs))
            rewards, discounts = bootstrap_truncations(
                rewards, discounts, truncated.astype(np.float32), v_final
            )
        buf.obs[:, t] = obs
        buf.actions[:, t] = actions
        buf.rewards[:, t] = rewards
        buf.discounts[:, t] = discounts
        t += 1
        steps = state.steps + self.num_envs
        if t < self.config.num_steps:
            return state._replace(cursor=np.asarray(t, np.int64), steps=steps), None
        buf.obs[:, t] = step.obs
        learner = jax.device_put(state.learner, parallel.replicated(self.mesh))
        learner, metrics = self.learner_update(learner, buf)
        metrics = common.to_floats(metrics)
        state = state._replace(
            learner=learner,
            cursor=np.zeros((), np.int64),
            steps=steps,
            updates=state.updates + 1,
        )
        return state, metrics
