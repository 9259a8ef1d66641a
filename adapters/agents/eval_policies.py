"""Action selection for evaluation episodes, shared by the agents' `act_eval` methods.

Evaluation draws its randomness from a key the caller derives from the
evaluation seed, never from the agent's training key (`state.rng`): an
evaluation in the middle of a run must leave the training stream, and with it
exact resume, untouched.

Policies:

- "greedy": the argmax action (of the logits, or of Q).
- "sample": a draw from the learned stochastic policy π_θ (actor-critic
  agents: the object a2c and soft-q train).
- "epsilon": ε-greedy; with probability ε a uniformly random action, else the
  greedy one (the evaluation protocol of Mnih et al. 2015 uses ε = 0.05).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from softeq.adapters.agents import common

EVAL_POLICY_NAMES = ("greedy", "sample", "epsilon")


def check_eval_policy(policy: str, epsilon: float, *, allowed: Sequence[str]) -> None:
    """Raise `ValueError` naming `policy` or `epsilon` when either is not allowed.

    Args:
      policy: the requested policy.
      epsilon: ε of "epsilon" (checked for every policy, so a typo cannot hide).
      allowed: the policies the calling agent supports.
    """
    if policy not in allowed:
        raise ValueError(f"`policy` must be one of {tuple(allowed)}, got {policy!r}.")
    if (
        isinstance(epsilon, bool)
        or not isinstance(epsilon, int | float)
        or not math.isfinite(epsilon)
        or not 0.0 <= epsilon <= 1.0
    ):
        raise ValueError(f"`epsilon` must be a number in [0, 1], got {epsilon!r}.")


def sample_actions(logits: jax.Array, key: jax.Array) -> jax.Array:
    """One action per row of `logits [N, A]` drawn from softmax(logits); `[N]` int32."""
    return jax.random.categorical(key, logits).astype(jnp.int32)


def epsilon_greedy_actions(
    greedy: jax.Array, key: jax.Array, epsilon: jax.Array, *, num_actions: int
) -> jax.Array:
    """`greedy [N]` with each entry replaced, with probability ε, by a uniform random action.

    A replaced entry may draw the greedy action again, so the fraction of
    actions that differ from `greedy` is ε·(A − 1)/A in expectation.

    Args:
      greedy: `[N]` int32 greedy actions.
      key: PRNG key for this call's draws.
      epsilon: `[]` float ε in [0, 1] (traced: changing it does not recompile).
      num_actions: A.

    Returns:
      `[N]` int32 actions.
    """
    explore_key, action_key = jax.random.split(key)
    random_actions = jax.random.randint(action_key, greedy.shape, 0, num_actions, jnp.int32)
    explore = jax.random.uniform(explore_key, greedy.shape) < epsilon
    return jnp.where(explore, random_actions, greedy.astype(jnp.int32))


def jitted_once(agent: Any, name: str, fn: Callable) -> Callable:
    """`fn` under `jax.jit`, built on first use and cached on `agent`.

    Its traces are counted in `agent.trace_counts` under `name` (the entry
    appears once the function has been used), so a test can check that an
    evaluation compiles once per observation shape.
    """
    cache = agent.__dict__.setdefault("_eval_jitted", {})
    if name not in cache:
        counter = common.TraceCounter(fn)
        agent._traces[name] = counter
        cache[name] = jax.jit(counter)
    return cache[name]
