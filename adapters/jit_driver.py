"""The jitted driver: a whole training run as pure functions that compile into one program.

For environments that run inside XLA (`softeq.adapters.jax_envs`: gymnax's
CartPole-v1, Acrobot-v1 and the five MinAtar games; `softeq.adapters.ale_xla`:
the `ALE/<Game>-v5` games through ale-py's XLA custom calls) everything a
training run does between two host visits is one XLA program:

    state = program.init(seed)                       # params, optimiser, envs, replay, key
    state, log = program.train_chunk(state, k)        # k iterations, one lax.while_loop
    returns, lengths, capped = program.evaluate(params, key)   # evaluation episodes

One *iteration* is, for the on-policy learners (a2c, soft-q), a rollout of
`num_steps` steps of all N envs (an inner `lax.scan`: act from π_θ, step,
record) followed by one learner update; for the replay learners (dqn, mdqn,
sac-discrete), one behaviour step of the N envs (the entry's `act`: ε-greedy
for the Q-learners, a draw from the actor for sac-discrete), the transitions
written to an on-device replay ring buffer and the learner updates that fall
due (`train_every`, `learning_starts`), each on an n-step batch sampled
uniformly from the buffer (target networks are the learner's business).

The network, the optimiser, the pure learner update and, for the replay
learners, the learner's initial state (`init_learner`), behaviour (`act`) and
greedy scores (`policy_scores`) come from the algorithm's registry entry
(`softeq.adapters.agents.get_algorithm`), exactly as the host agents get
them, so both drivers compute identical updates on the same batch; the
entry's `on_policy` flag picks rollouts or replay.

Time limits are not terminal: rollouts fold γ·V(final observation) into the
reward of each truncated transition with `softeq.core.bootstrap_truncations`
(V from the parameters the update starts from) before building the `Rollout`;
the replay stores each transition's own next observation (the final one where
the episode ended), and the replay learners' targets bootstrap a truncated
window from it.

Every function here is written for one seed; `softeq.adapters.jit_loop` maps
them over seeds with `jax.vmap` and lays the seed axis over devices.

Randomness: the initial parameters come from `PRNGKey(seed)` exactly as the
host agents draw them; everything after that (env resets and steps, actions,
replay sampling) draws from stream 0 of the seed (`stream_key`), evaluation k
from stream 1 + k, all threefry keys held in the state as raw key data. The
faster "rbg" generators are not used: `jax.vmap` of XLA's RngBitGenerator
draws every lane's bits from the first lane's key, so a seed's run would
depend on which other seeds share its program.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from typing import Any, NamedTuple

import haiku as hk
import jax
import jax.numpy as jnp

from softeq.adapters import jax_envs
from softeq.adapters import mesh as mesh_lib
from softeq.adapters.agents import actor_critic, dqn
from softeq.adapters.agents.config import DQNConfig
from softeq.adapters.agents.registry import Algorithm
from softeq.adapters.replay import NStepBatch, side_ring_slots
from softeq.core import bootstrap_truncations

#: PRNG implementation of the run's random streams (see the module docstring).
KEY_IMPL = "threefry2x32"


def wrap_key(raw: jax.Array) -> jax.Array:
    """A typed `KEY_IMPL` key from the raw key data the states hold."""
    return jax.random.wrap_key_data(raw, impl=KEY_IMPL)


def stream_key(seed: jax.Array | int, index: jax.Array | int = 0) -> jax.Array:
    """Raw key data of stream `index` of `seed` (0: training, 1 + k: evaluation k)."""
    key = jax.random.fold_in(jax.random.key(seed, impl=KEY_IMPL), index)
    return jax.random.key_data(key)


EVAL_POLICIES = ("greedy", "sample", "epsilon")


# --------------------------------------------------------------------------------------
# States and logs.
# --------------------------------------------------------------------------------------


class DeviceReplay(NamedTuple):
    """On-device ring buffer of `rows` time rows × N environments, laid out as the host
    loop's `softeq.adapters.replay.ReplayBuffer`: each observation is stored once.

    Row i holds, for each env, s_i, a_i, r_i and how the episode ended there. The next
    state s_{i+1} is the next row of the same env; after a termination that row is the
    next episode's first state, which the zero discount ignores. A truncation must
    still bootstrap from the ended episode's last observation, which goes to a side
    ring of S slots (`final_obs`); the row keeps its slot in `final_slot`.

    obs: `[rows, N, *obs_shape]` s_i.
    actions: `[rows, N]` int32 a_i.
    rewards: `[rows, N]` float32 r_i.
    terminated: `[rows, N]` bool, s_{i+1} is terminal.
    truncated: `[rows, N]` bool, the episode hit its time limit (and did not terminate).
    final_slot: `[rows, N]` int32 side-ring slot of a truncated transition, −1 elsewhere.
    final_obs: `[S, *obs_shape]` last observations of truncated episodes.
    final_owner: `[S]` int32 `row_count · N + env` of the transition owning each slot
      (−1: free), `row_count` being the absolute row number.
    final_count: `[]` int32 final observations written so far.
    lost_truncations: `[]` int32 truncations whose slot was reused while their row was
      still stored (sampled as terminations; see `softeq.adapters.replay`).
    count: `[]` int32 rows written so far (the next goes to `count % rows`).
    """

    #: The fields laid out `[rows, N, ...]`, whose axis 1 holds the envs (the side ring
    #: is indexed by slot: `softeq.adapters.mesh.env_axes` must not split it over envs).
    ROW_FIELDS = ("obs", "actions", "rewards", "terminated", "truncated", "final_slot")

    obs: jax.Array
    actions: jax.Array
    rewards: jax.Array
    terminated: jax.Array
    truncated: jax.Array
    final_slot: jax.Array
    final_obs: jax.Array
    final_owner: jax.Array
    final_count: jax.Array
    lost_truncations: jax.Array
    count: jax.Array


class ActorCriticTrainState(NamedTuple):
    """One seed's a2c / soft-q run between two iterations.

    learner: parameters and optimiser state (`actor_critic.LearnerState`).
    env: the N environments (`jax_envs.JaxEnvState`).
    obs: `[N, *obs_shape]` the observations the next actions are chosen from.
    key: raw `KEY_IMPL` key data of everything random that follows.
    env_steps: `[]` int32 transitions so far, summed over the N envs.
    updates: `[]` int32 learner updates so far.
    """

    learner: actor_critic.LearnerState
    env: jax_envs.JaxEnvState
    obs: jax.Array
    key: jax.Array
    env_steps: jax.Array
    updates: jax.Array


class ReplayTrainState(NamedTuple):
    """One seed's replay-learner run between two iterations; fields as `ActorCriticTrainState`,
    plus

    learner: the entry's learner state (`init_learner`; for dqn and mdqn
      `dqn.DQNLearnerState`: online and target parameters, optimiser).
    replay: the `DeviceReplay`.
    """

    learner: Any
    replay: DeviceReplay
    env: jax_envs.JaxEnvState
    obs: jax.Array
    key: jax.Array
    env_steps: jax.Array
    updates: jax.Array


#: The name the replay state had when dqn was the only replay learner.
DQNTrainState = ReplayTrainState


class IterationLog(NamedTuple):
    """What one iteration reports; `train_chunk` stacks K of them (`[K, ...]`).

    env_steps: `[]` int32 transitions done after the iteration.
    episode_returns: `[T, N]` float32 return of each episode that ended at that
      step, NaN elsewhere (T = steps per iteration: num_steps or 1).
    episode_lengths: `[T, N]` float32 its length, NaN elsewhere.
    updated: `[]` bool whether a learner update ran (dqn waits for learning_starts).
    learner: dict of `[]` float32 metrics of the iteration's last update.
    """

    env_steps: jax.Array
    episode_returns: jax.Array
    episode_lengths: jax.Array
    updated: jax.Array
    learner: dict[str, jax.Array]


# --------------------------------------------------------------------------------------
# Replay buffer on the device.
# --------------------------------------------------------------------------------------


def replay_rows(capacity: int, num_envs: int) -> int:
    """Rows of a buffer holding at least `capacity` transitions of `num_envs` envs."""
    return max(2, -(-capacity // num_envs))


def device_replay_init(
    *, capacity: int, num_envs: int, observation_shape: tuple, observation_dtype
) -> DeviceReplay:
    """An empty buffer of `replay_rows(capacity, num_envs)` rows."""
    rows = replay_rows(capacity, num_envs)
    slots = side_ring_slots(rows, num_envs)
    zero = jnp.zeros((), jnp.int32)
    return DeviceReplay(
        obs=jnp.zeros((rows, num_envs, *observation_shape), observation_dtype),
        actions=jnp.zeros((rows, num_envs), jnp.int32),
        rewards=jnp.zeros((rows, num_envs), jnp.float32),
        terminated=jnp.zeros((rows, num_envs), bool),
        truncated=jnp.zeros((rows, num_envs), bool),
        final_slot=jnp.full((rows, num_envs), -1, jnp.int32),
        final_obs=jnp.zeros((slots, *observation_shape), observation_dtype),
        final_owner=jnp.full((slots,), -1, jnp.int32),
        final_count=zero,
        lost_truncations=zero,
        count=zero,
    )


def device_replay_add(
    replay: DeviceReplay, obs, actions, rewards, terminated, truncated, final_obs
) -> DeviceReplay:
    """Writes one row of N transitions (`[N, …]` each) at `count % rows`.

    `final_obs` is the env step's `final_obs` (`[N, *obs_shape]`); only the rows of
    truncated transitions are kept, in the side ring.
    """
    rows, num_envs = replay.actions.shape
    slots = replay.final_owner.shape[0]
    row = replay.count % rows
    terminated = terminated.astype(bool)
    truncated = truncated.astype(bool) & ~terminated  # a termination wins
    # The k-th truncation of this row takes slot final_count + k; S >= 2N keeps the
    # slots of one row distinct. The others write out of range, which is dropped.
    slot = (replay.final_count + jnp.cumsum(truncated) - 1) % slots
    target = jnp.where(truncated, slot, slots)
    previous = replay.final_owner[slot]
    still_stored = (previous >= 0) & (previous // num_envs > replay.count - rows)
    lost = jnp.sum(truncated & still_stored, dtype=jnp.int32)
    owner = replay.count * num_envs + jnp.arange(num_envs, dtype=jnp.int32)

    def put(buffer, values):
        return jax.lax.dynamic_update_index_in_dim(buffer, values.astype(buffer.dtype), row, 0)

    return DeviceReplay(
        obs=put(replay.obs, obs),
        actions=put(replay.actions, actions),
        rewards=put(replay.rewards, rewards),
        terminated=put(replay.terminated, terminated),
        truncated=put(replay.truncated, truncated),
        final_slot=put(replay.final_slot, jnp.where(truncated, slot, -1)),
        final_obs=replay.final_obs.at[target].set(
            final_obs.astype(replay.final_obs.dtype), mode="drop"
        ),
        final_owner=replay.final_owner.at[target].set(owner, mode="drop"),
        final_count=replay.final_count + jnp.sum(truncated, dtype=jnp.int32),
        lost_truncations=replay.lost_truncations + lost,
        count=replay.count + 1,
    )


def device_replay_can_sample(replay: DeviceReplay, *, n: int) -> jax.Array:
    """Whether one complete n-step window (n + 1 rows) is stored (`[]` bool)."""
    return replay.count > n


def device_replay_sample(
    replay: DeviceReplay, key: jax.Array, *, batch_size: int, n: int
) -> NStepBatch:
    """`batch_size` n-step windows drawn uniformly over (start row, env).

    A window starting at absolute row i reads rows i … i + n of one env (row i + n
    for the last next state): i + n must be written (i + n < count) and row i not
    overwritten (i ≥ count − rows).

    Returns:
      `NStepBatch`: obs `[B, …]`, actions `[B]`, rewards / terminated / truncated
      `[B, n]` (float32 flags), next_obs `[B, n, …]`.
    """
    rows, num_envs = replay.actions.shape
    start_key, env_key = jax.random.split(key)
    first = jnp.maximum(replay.count - rows, 0)
    last = replay.count - 1 - n  # inclusive
    start = jax.random.randint(start_key, (batch_size,), first, last + 1)
    env = jax.random.randint(env_key, (batch_size,), 0, num_envs)
    return device_replay_windows(replay, start, env, n=n)


def device_replay_windows(
    replay: DeviceReplay, start: jax.Array, env: jax.Array, *, n: int
) -> NStepBatch:
    """The n-step windows at absolute rows `start` (`[B]`) of envs `env` (`[B]`)."""
    rows, num_envs = replay.actions.shape
    absolute = start[:, None] + jnp.arange(n + 1)[None, :]  # [B, n + 1]
    window = absolute % rows
    env_col = env[:, None]
    steps = window[:, :-1]
    terminated = replay.terminated[steps, env_col]
    truncated = replay.truncated[steps, env_col]
    slot = replay.final_slot[steps, env_col]
    owner = absolute[:, :-1] * num_envs + env_col
    kept = truncated & (slot >= 0) & (replay.final_owner[jnp.maximum(slot, 0)] == owner)
    following = replay.obs[window[:, 1:], env_col]
    final = replay.final_obs[jnp.maximum(slot, 0)]
    shaped = kept.reshape(kept.shape + (1,) * (following.ndim - kept.ndim))
    # A truncation whose final observation was overwritten cannot bootstrap: cut there.
    return NStepBatch(
        obs=replay.obs[window[:, 0], env],
        actions=replay.actions[window[:, 0], env],
        rewards=replay.rewards[steps, env_col],
        terminated=(terminated | (truncated & ~kept)).astype(jnp.float32),
        truncated=kept.astype(jnp.float32),
        next_obs=jnp.where(shaped, final, following),
    )


def linear_epsilon(env_steps: jax.Array, config: DQNConfig) -> jax.Array:
    """ε after `env_steps` transitions, as `dqn.linear_epsilon` (`[]` float32)."""
    return dqn.scheduled_epsilon(env_steps, config=config)


# --------------------------------------------------------------------------------------
# The program.
# --------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class EvalSettings:
    """How `JitProgram.evaluate` acts and ends episodes.

    episodes: evaluation episodes per call (each on its own fresh env copy).
    policy: "greedy" (argmax), "sample" (draw from the learned policy, if any) or
      "epsilon" (ε-greedy with `epsilon`).
    epsilon: ε of the "epsilon" policy.
    max_episode_steps: an episode reaching this many steps ends there with its
      return so far (0: only the env's own time limit).
    """

    episodes: int = 5
    policy: str = "greedy"
    epsilon: float = 0.05
    max_episode_steps: int = 0

    def __post_init__(self):
        if isinstance(self.episodes, bool) or not isinstance(self.episodes, int):
            raise ValueError(f"`episodes` must be an integer >= 1, got {self.episodes!r}.")
        if self.episodes < 1:
            raise ValueError(f"`episodes` must be an integer >= 1, got {self.episodes!r}.")
        if self.policy not in EVAL_POLICIES:
            raise ValueError(f"`policy` must be one of {EVAL_POLICIES}, got {self.policy!r}.")
        if not 0.0 <= self.epsilon <= 1.0:
            raise ValueError(f"`epsilon` must be in [0, 1], got {self.epsilon!r}.")
        if self.max_episode_steps < 0:
            raise ValueError(
                f"`max_episode_steps` must be >= 0 (0 = none), got {self.max_episode_steps!r}."
            )


class JitProgram:
    """The pure functions of one algorithm on one JAX-native env, for one seed.

    Args:
      algo: a registered algorithm name (`softeq.adapters.agents.ALGORITHMS`).
      config: the algorithm's config (`config_for(algo)`).
      env_id: one of `softeq.adapters.jax_envs.JAX_ENV_IDS`, or an `ALE/<Game>-v5` id.
      num_envs: N, environments stepped together.
      torso: "mlp", "minatar" or "nature"; None picks the one that fits the observations.
      evaluation: the `EvalSettings` of `evaluate`.
      lanes: seeds that share the program (its vmap size); the ALE env folds
        them into its emulators (`softeq.adapters.ale_xla`), gymnax envs ignore it.

    Attributes:
      env: the `JaxVectorEnv` (gymnax) or `ale_xla.AleXlaEnv` (`ALE/<Game>-v5`).
      eval_env: the env `evaluate` plays on (the same object for gymnax; for
        ALE its own `evaluation.episodes` emulators per lane).
      network: the haiku network of the registry entry.
      optimizer: the optax optimiser.
      learner_update: the agent's pure learner update, as the host agent uses it.
      steps_per_iteration: env transitions per iteration (N·num_steps or N).
      max_chunk_length: 1 where a chunk must be one loop-free iteration (the
        Nature CNN on CPU: XLA runs its gradient convolutions ~8x slower inside
        loops), else None.
    """

    def __init__(
        self,
        algo: str,
        config: Any,
        *,
        env_id: str,
        num_envs: int,
        torso: str | None = None,
        evaluation: EvalSettings | None = None,
        lanes: int = 1,
    ):
        from softeq.adapters import networks
        from softeq.adapters.agents import get_algorithm

        entry = get_algorithm(algo)
        if not isinstance(config, entry.config_class):
            raise TypeError(
                f"`config` for algo {algo!r} must be a {entry.config_class.__name__}, "
                f"got {type(config).__name__}."
            )
        if isinstance(num_envs, bool) or not isinstance(num_envs, int) or num_envs < 1:
            raise ValueError(f"`num_envs` must be an integer >= 1, got {num_envs!r}.")
        self.algo = algo
        self.entry: Algorithm = entry
        self.config = config
        self.num_envs = num_envs
        self.on_policy = entry.on_policy
        self.env, self.eval_env = _make_envs(env_id, num_envs, evaluation, lanes)
        self.env_id = env_id
        self.evaluation = evaluation or EvalSettings()
        if self.evaluation.policy == "sample" and not entry.stochastic_policy:
            raise ValueError(
                f"`policy` 'sample' evaluates a learned stochastic policy; {algo} has none "
                "(use 'greedy' or 'epsilon')."
            )
        if not self.on_policy:
            rows = replay_rows(config.replay_capacity, num_envs)
            if rows <= config.n_step:
                raise ValueError(
                    f"`replay_capacity` ({config.replay_capacity}) holds {rows} rows of "
                    f"{num_envs} envs; an {config.n_step}-step window needs "
                    f"{config.n_step + 1}: raise it."
                )
        self.torso = torso or networks.torso_for_observation(self.env.observation_shape)
        # XLA's CPU backend runs the Nature CNN's gradient convolutions about 8x slower
        # inside a loop body or a cond branch than at the top of a program (a soft-q
        # update of 80 Atari frames: 3-5 s against 0.3-0.5 s on a loaded 2-core CPU), so
        # on CPU such a program trains one iteration per call, without a loop.
        nature_on_cpu = self.torso == "nature" and jax.default_backend() == "cpu"
        self.max_chunk_length: int | None = 1 if nature_on_cpu else None
        self.network = entry.make_network(self.env.num_actions, torso=self.torso, config=config)
        self.optimizer = entry.make_optimizer(config, num_envs=num_envs)
        self.learner_update = entry.make_learner_update(
            self.network.apply, self.optimizer, config=config
        )
        self.steps_per_iteration = num_envs * (config.num_steps if self.on_policy else 1)

    # ---------------------------------------------------------------- helpers
    @property
    def updates_per_iteration(self) -> int:
        """Learner updates of one iteration once learning has started (at least 1)."""
        if self.on_policy:
            return 1
        return max(1, self.num_envs // self.config.train_every)

    @property
    def steps_per_log_row(self) -> int:
        """T of `IterationLog`'s `[T, N]` episode arrays."""
        return self.config.num_steps if self.on_policy else 1

    def _policy_scores(self, params: hk.Params, obs: jax.Array) -> jax.Array:
        """The entry's `policy_scores` `[N, A]` (logits or Q-values); argmax is greedy."""
        return self.entry.policy_scores(self.network.apply, params, obs)

    # ---------------------------------------------------------------- init
    def init(self, seed: jax.Array | int) -> ActorCriticTrainState | ReplayTrainState:
        """Fresh parameters, optimiser, envs (and replay) of one seed (traceable in `seed`).

        The parameters are those of the host agents for the same seed: the
        key of `network.init` is the second half of `split(PRNGKey(seed))`.
        """
        _, init_key = jax.random.split(jax.random.PRNGKey(seed))
        key, env_key = jax.random.split(wrap_key(stream_key(seed)))
        key = jax.random.key_data(key)
        env_state, obs = self.env.reset(env_key, self.num_envs)
        params = self.network.init(init_key, obs)
        zero = jnp.zeros((), jnp.int32)
        if self.on_policy:
            learner = actor_critic.LearnerState(params, self.optimizer.init(params))
            return ActorCriticTrainState(learner, env_state, obs, key, zero, zero)
        learner = self.entry.init_learner(params, self.optimizer, config=self.config)
        replay = device_replay_init(
            capacity=self.config.replay_capacity,
            num_envs=self.num_envs,
            observation_shape=self.env.observation_shape,
            observation_dtype=self.env.observation_dtype,
        )
        return ReplayTrainState(learner, replay, env_state, obs, key, zero, zero)

    # ---------------------------------------------------------------- actor-critic
    def collect_rollout(
        self, state: ActorCriticTrainState
    ) -> tuple[ActorCriticTrainState, actor_critic.Rollout, jax_envs.JaxStepResult]:
        """`num_steps` steps of the N envs under π_θ, as the learner's `Rollout`.

        Rewards and discounts already hold the truncation fold
        (`bootstrap_truncations` with V of the final observations under the
        current parameters). Returns `(state, rollout, steps [T, N, ...])`;
        the state's learner is unchanged.
        """
        params = state.learner.params
        apply = self.network.apply
        c = self.config

        def step(carry, _):
            env_state, obs, key = carry
            key, act_key, env_key = jax.random.split(key, 3)
            logits, _ = apply(params, obs)
            actions = jax.random.categorical(act_key, logits).astype(jnp.int32)
            env_state, result = self.env.step(env_key, env_state, actions)
            return (env_state, result.obs, key), (obs, actions, result)

        (env_state, last_obs, key), (obs, actions, steps) = jax.lax.scan(
            step, (state.env, state.obs, wrap_key(state.key)), None, length=c.num_steps
        )
        t, n = actions.shape
        if t <= self.env.max_episode_steps:
            # An episode that hits its time limit is that long, so each env truncates at
            # most once in a rollout no longer than the limit: one value per env, of the
            # final observation at its truncation (any step where it has none), costs a
            # forward pass of N observations instead of N·T.
            step_of = jnp.argmax(steps.truncated, axis=0)  # [N]
            final_obs = steps.final_obs[step_of, jnp.arange(n)]
            v_final = jnp.broadcast_to(apply(params, final_obs)[1], (t, n))
        else:
            final_obs = steps.final_obs.reshape((t * n, *steps.final_obs.shape[2:]))
            v_final = apply(params, final_obs)[1].reshape((t, n))
        discounts = c.discount * (1.0 - steps.terminated.astype(jnp.float32))
        rewards, discounts = jax.vmap(bootstrap_truncations, in_axes=1, out_axes=1)(
            steps.reward, discounts, steps.truncated.astype(jnp.float32), v_final
        )
        rollout = actor_critic.Rollout(
            obs=jnp.swapaxes(jnp.concatenate([obs, last_obs[None]], axis=0), 0, 1),
            actions=actions.T,
            rewards=rewards.T,
            discounts=discounts.T,
        )
        state = state._replace(
            env=env_state,
            obs=last_obs,
            key=jax.random.key_data(key),
            env_steps=state.env_steps + t * n,
        )
        return state, rollout, steps

    def _actor_critic_iteration(self, state: ActorCriticTrainState, keep_batch: bool):
        state, rollout, steps = self.collect_rollout(state)
        # Split over the mesh's "data" axis (if any), the batch mean of the update's
        # loss is an all-reduce: the gradient of the global batch.
        rollout = mesh_lib.shard_env_axis(rollout)
        learner, metrics = self.learner_update(state.learner, rollout)
        state = state._replace(learner=learner, updates=state.updates + 1)
        log = IterationLog(
            env_steps=state.env_steps,
            episode_returns=steps.episode_returns,
            episode_lengths=steps.episode_lengths,
            updated=jnp.ones((), bool),
            learner={k: jnp.asarray(v, jnp.float32) for k, v in metrics.items()},
        )
        return state, log, (rollout if keep_batch else None)

    # ---------------------------------------------------------------- replay learners
    def _replay_templates(self, state: ReplayTrainState):
        """Zero-filled learner metrics and batch, the shapes one update produces and uses."""
        batch = jax.eval_shape(self._sample, state.replay, wrap_key(state.key))
        _, metrics = jax.eval_shape(self.learner_update, state.learner, batch)
        zeros = {k: jnp.zeros((), jnp.float32) for k in metrics}
        return zeros, jax.tree.map(lambda x: jnp.zeros(x.shape, x.dtype), batch)

    def _sample(self, replay: DeviceReplay, key: jax.Array) -> NStepBatch:
        return device_replay_sample(
            replay, key, batch_size=self.config.batch_size, n=self.config.n_step
        )

    def _replay_iteration(self, state: ReplayTrainState, index: jax.Array, keep_batch: bool):
        c = self.config
        # The schedule (ε, learning_starts, train_every) follows the iteration number,
        # which all seeds share: passed unbatched, it keeps the update loop a plain loop
        # under vmap instead of one masked lane by lane.
        before = index * self.num_envs
        after = before + self.num_envs
        key, act_key, env_key, sample_key = jax.random.split(wrap_key(state.key), 4)
        actions = self.entry.act(
            self.network.apply,
            state.learner.params,
            act_key,
            state.obs,
            before,
            config=c,
            num_actions=self.env.num_actions,
        )
        env_state, step = self.env.step(env_key, state.env, actions)
        replay = device_replay_add(
            state.replay,
            state.obs,
            actions,
            step.reward,
            step.terminated,
            step.truncated,
            step.final_obs,
        )
        # After this add the buffer holds index + 1 rows: a window needs n + 1 of them
        # (its last next state is the row after it).
        ready = (after >= c.learning_starts) & (index >= c.n_step)
        due = jnp.where(ready, after // c.train_every - before // c.train_every, 0)

        def update(k, carry):
            learner = carry[0]
            batch = self._sample(replay, jax.random.fold_in(sample_key, k))
            learner, metrics = self.learner_update(learner, batch)
            metrics = {name: jnp.asarray(v, jnp.float32) for name, v in metrics.items()}
            return (learner, metrics, batch) if keep_batch else (learner, metrics)

        zero_metrics, zero_batch = self._replay_templates(state)
        carry = (state.learner, zero_metrics) + ((zero_batch,) if keep_batch else ())
        learner, metrics, *last_batch = jax.lax.fori_loop(0, due, update, carry)
        if self.entry.behaviour_metrics is not None:
            extra = self.entry.behaviour_metrics(after, config=c)
            metrics.update({name: jnp.asarray(v, jnp.float32) for name, v in extra.items()})
        state = ReplayTrainState(
            learner,
            replay,
            env_state,
            step.obs,
            jax.random.key_data(key),
            state.env_steps + self.num_envs,
            state.updates + due,
        )
        log = IterationLog(
            env_steps=state.env_steps,
            episode_returns=step.episode_returns[None],
            episode_lengths=step.episode_lengths[None],
            updated=due > 0,
            learner=metrics,
        )
        return state, log, (last_batch[0] if keep_batch else None)

    # ---------------------------------------------------------------- chunks
    def iteration(self, state, index: jax.Array | None = None):
        """One iteration (see the module docstring): `state -> (state, IterationLog)`.

        `index` is the run's iteration number (`env_steps / steps_per_iteration`
        before it), a scalar shared by all seeds; None reads it off the state.
        """
        state, log, _ = self.iteration_with_batch(state, index, keep_batch=False)
        return state, log

    def iteration_with_batch(self, state, index: jax.Array | None = None, *, keep_batch=True):
        """`iteration`, also returning the batch its (last) learner update consumed.

        Returns `(state, log, batch)`: the `Rollout` (on-policy learners) or
        the `NStepBatch` of the last update (replay learners; zeros when none
        ran); None when `keep_batch` is False.
        """
        if self.on_policy:
            return self._actor_critic_iteration(state, keep_batch)
        if index is None:
            index = state.env_steps // self.steps_per_iteration
        return self._replay_iteration(state, jnp.asarray(index, jnp.int32), keep_batch)

    def with_hyperparameters(self, values: dict[str, jax.Array]) -> JitProgram:
        """This program with the config's sweepable fields set to `values` (traced `[]` arrays).

        A shallow copy whose config comes from `sweep.with_traced_fields` and
        whose learner update is rebuilt from it; env, network and optimiser
        are shared (no sweepable field reaches them). Used inside a trace only.
        """
        from softeq.adapters import sweep

        if not values:
            return self
        program = copy.copy(self)
        program.config = sweep.with_traced_fields(self.config, values)
        program.learner_update = self.entry.make_learner_update(
            self.network.apply, self.optimizer, config=program.config
        )
        return program

    def train_chunk(
        self,
        state,
        num_iterations: jax.Array,
        first_index: jax.Array,
        *,
        length: int,
        hyperparameters: dict[str, jax.Array] | None = None,
    ):
        """Runs `num_iterations` (≤ `length`, traced) iterations in one `lax.while_loop`.

        `first_index` is the run's iteration number at the start of the chunk
        (iterations done so far). Returns `(state, logs)`: logs is an
        `IterationLog` with leading axis `length` whose first `num_iterations`
        rows are filled (NaN / 0 after). `length` is static (it fixes the logs'
        shape); `num_iterations` is not, so a shorter last chunk runs the same
        compiled program. `hyperparameters` (`{field: []}`, traced) replace
        sweepable config fields (`with_hyperparameters`), so slots of one vmap
        may train with different values.
        """
        if hyperparameters:
            return self.with_hyperparameters(hyperparameters).train_chunk(
                state, num_iterations, first_index, length=length
            )
        first_index = jnp.asarray(first_index, jnp.int32)
        if length == 1 and self.max_chunk_length == 1:
            # Loop-free (see `max_chunk_length`): the iteration always runs and is
            # discarded when `num_iterations` is 0 (ALE emulators have still stepped).
            new_state, log = self.iteration(state, first_index)
            ran = jnp.asarray(num_iterations, jnp.int32) >= 1
            state = jax.tree.map(lambda new, old: jnp.where(ran, new, old), new_state, state)

            def row(x):  # as the loop's logs: NaN / 0 where nothing ran
                blank = jnp.nan if jnp.issubdtype(x.dtype, jnp.floating) else 0
                return jnp.where(ran, x, blank).astype(x.dtype)[None]

            return state, jax.tree.map(row, log)
        template = jax.eval_shape(self.iteration, state, first_index)[1]

        def empty(leaf):
            shape = (length, *leaf.shape)
            if jnp.issubdtype(leaf.dtype, jnp.floating):
                return jnp.full(shape, jnp.nan, leaf.dtype)
            return jnp.zeros(shape, leaf.dtype)

        logs = jax.tree.map(empty, template)

        def body(carry):
            i, state, logs = carry
            state, log = self.iteration(state, first_index + i)
            state = mesh_lib.shard_state_env_axes(state, self.num_envs)  # envs stay split
            logs = jax.tree.map(
                lambda buf, x: jax.lax.dynamic_update_index_in_dim(buf, x, i, 0), logs, log
            )
            return i + 1, state, logs

        limit = jnp.minimum(jnp.asarray(num_iterations, jnp.int32), length)
        _, state, logs = jax.lax.while_loop(
            lambda carry: carry[0] < limit, body, (jnp.zeros((), jnp.int32), state, logs)
        )
        return state, logs

    # ---------------------------------------------------------------- evaluation
    def _eval_actions(self, params: hk.Params, obs: jax.Array, key: jax.Array) -> jax.Array:
        """Actions `[E]` int32 of the evaluation protocol (greedy, sampled or ε-greedy)."""
        ev = self.evaluation
        scores = self._policy_scores(params, obs)
        greedy = jnp.argmax(scores, axis=-1).astype(jnp.int32)
        if ev.policy == "greedy":
            return greedy
        sample_key, explore_key = jax.random.split(key)
        if ev.policy == "sample":
            return jax.random.categorical(sample_key, scores).astype(jnp.int32)
        random_actions = jax.random.randint(
            sample_key, greedy.shape, 0, self.env.num_actions, jnp.int32
        )
        explore = jax.random.uniform(explore_key, greedy.shape) < ev.epsilon
        return jnp.where(explore, random_actions, greedy)

    def _eval_cap(self) -> int:
        """Agent steps after which an evaluation episode is cut (the protocol's or env's)."""
        cap = self.evaluation.max_episode_steps
        return cap if cap > 0 else self.env.max_episode_steps

    def _play_evaluation(self, params: hk.Params, key: jax.Array, frames: jax.Array | None):
        """The evaluation episodes (see `evaluate`); also writes episode 0's observations
        into `frames` (`[L, *obs_shape]`, the first L steps) when it is given."""
        episodes = self.evaluation.episodes
        cap = self._eval_cap()
        key, reset_key = jax.random.split(wrap_key(key))
        env_state, obs = self.eval_env.reset(reset_key, episodes)

        def record(frames, t, obs, keep):
            """`frames` with row t set to `obs[0]` where `keep` and t < L (O(one row))."""
            if frames is None:
                return None
            row = jnp.minimum(t, frames.shape[0] - 1)
            keep = keep & (t < frames.shape[0])
            value = jnp.where(keep, self._video_view(obs[0]).astype(frames.dtype), frames[row])
            return jax.lax.dynamic_update_index_in_dim(frames, value, row, 0)

        def body(carry):
            t, env_state, obs, key, done, returns, lengths, frames = carry
            key, act_key, env_key = jax.random.split(key, 3)
            actions = self._eval_actions(params, obs, act_key)
            env_state, step = self.eval_env.step(env_key, env_state, actions)
            # Episode 0's observation after this step (`final_obs`: where it has just
            # ended, its last one rather than the next episode's first).
            frames = record(frames, t + 1, step.final_obs, ~done[0])
            ended = ~jnp.isnan(step.episode_returns) & ~done
            returns = jnp.where(ended, step.episode_returns, returns)
            lengths = jnp.where(ended, step.episode_lengths, lengths)
            return t + 1, env_state, step.obs, key, done | ended, returns, lengths, frames

        def running(carry):
            t, done = carry[0], carry[4]
            return (t < cap) & ~jnp.all(done)

        zeros = jnp.zeros((episodes,), jnp.float32)
        done = jnp.zeros((episodes,), bool)
        frames = record(frames, 0, obs, jnp.ones((), bool))
        carry = (jnp.zeros((), jnp.int32), env_state, obs, key, done, zeros, zeros, frames)
        _, env_state, _, _, done, returns, lengths, frames = jax.lax.while_loop(
            running, body, carry
        )
        capped = ~done
        returns = jnp.where(capped, env_state.episode_return, returns)
        lengths = jnp.where(capped, env_state.episode_length.astype(jnp.float32), lengths)
        return returns, lengths, capped, frames

    def evaluate(self, params: hk.Params, key: jax.Array):
        """One episode on each of `evaluation.episodes` fresh env copies.

        `key` is raw `KEY_IMPL` key data (`stream_key(seed, 1 + k)` for the k-th
        evaluation of a run). Runs until every episode has ended (terminated, time limit, or the
        `max_episode_steps` cap) in one `lax.while_loop`.

        Returns:
          `(returns [E], lengths [E], capped [E] bool)`: raw returns and lengths;
          `capped` marks episodes stopped by `max_episode_steps`.
        """
        returns, lengths, capped, _ = self._play_evaluation(params, key, None)
        return returns, lengths, capped

    def video_frames(self) -> int:
        """L, the observations `evaluate_with_video` keeps: one more than the steps of
        an episode, at most `VIDEO_MAX_STEPS` + 1."""
        return min(self._eval_cap(), VIDEO_MAX_STEPS) + 1

    def evaluate_with_video(self, params: hk.Params, key: jax.Array):
        """`evaluate`, plus the observations of its episode 0 (the same episode).

        Returns:
          `(returns [E], lengths [E], capped [E], frames [L, *obs_shape])`: the
          first three as `evaluate` returns them for the same `key`; `frames[t]`
          is episode 0's observation after t steps (Atari: its newest frame,
          `[1, H, W]`), for t ≤ min(its length, L − 1); rows after those are zeros
          (L = `video_frames()`).
        """
        shape = jax.eval_shape(self._video_view, jnp.zeros(self.env.observation_shape)).shape
        frames = jnp.zeros((self.video_frames(), *shape), self.env.observation_dtype)
        return self._play_evaluation(params, key, frames)

    def _video_view(self, obs: jax.Array) -> jax.Array:
        """What a video keeps of one observation: all of it, or for Atari the newest
        frame of the stack (`[1, H, W]`: a quarter of the memory, the frame drawn)."""
        from softeq.adapters import ale_xla

        return obs[-1:] if ale_xla.is_ale_id(self.env_id) else obs


#: Agent steps of an evaluation episode that a video shows at most (10 minutes at 15
#: frames/s for Atari, a whole CartPole or Acrobot episode).
VIDEO_MAX_STEPS = 9_000


def _make_envs(env_id: str, num_envs: int, evaluation: EvalSettings | None, lanes: int):
    """`(training env, evaluation env)`: one pure gymnax env, or two sets of ALE emulators."""
    from softeq.adapters import ale_xla

    if not ale_xla.is_ale_id(env_id):
        env = jax_envs.make_jax_env(env_id)
        return env, env
    episodes = (evaluation or EvalSettings()).episodes
    return (
        ale_xla.make_ale_xla_env(env_id, num_envs=num_envs, lanes=lanes),
        ale_xla.make_ale_xla_env(env_id, num_envs=episodes, lanes=lanes),
    )


# --------------------------------------------------------------------------------------
# Defaults of jitted runs.
# --------------------------------------------------------------------------------------


def jit_default_overrides(algo: str, env_id: str, total_steps: int) -> dict[str, Any]:
    """Field values a jitted run of `algo` on `env_id` uses unless the user sets them.

    They go on top of the registry's `default_config`: a learner with a
    learning-rate schedule (`lr_decay_steps`) decays it linearly to 0 over the
    whole budget, as the reference jitted A2C does.
    """
    from softeq.adapters.agents import get_algorithm

    del env_id  # the same rule for every env family so far
    fields = {f.name for f in dataclasses.fields(get_algorithm(algo).config_class)}
    return {"lr_decay_steps": int(total_steps)} if "lr_decay_steps" in fields else {}


def chunk_iterations(steps_per_iteration: int, every: int) -> int:
    """Iterations per chunk so that a chunk spans about `every` env steps (at least 1)."""
    return max(1, math.ceil(every / steps_per_iteration))
