r"""DQN targets: standard, soft with KL to uniform, soft with entropy bonus (paper §6.2).

The three differ only in how a next-state row Q̄(s', ·) of the target network
is turned into a bootstrap value:

| mode            | bootstrap value                          | policy π̄     |
|-----------------|------------------------------------------|--------------|
| `"hard"`        | max_a Q̄(s', a)                          | —            |
| `"soft-kl"`     | τ log mean_a exp(Q̄(s', a)/τ)            | uniform 1/A  |
| `"soft-entropy"`| τ log Σ_a exp(Q̄(s', a)/τ)               | π̄ ≡ 1        |

The two soft values differ by exactly τ log|A|, so the entropy-bonus target
pays γτ log|A| more on every transition that does not end the episode: a
positive reward per step, which changes learning.
"""

from __future__ import annotations

import math

import chex
import jax
import jax.numpy as jnp

from softeq.core import _checks
from softeq.core.returns import soft_n_step_targets
from softeq.core.soft import boltzmann_log_policy, kl_divergence, soft_value

Array = chex.Array
Scalar = float | chex.Array

DQN_TARGET_MODES = ("hard", "soft-kl", "soft-entropy")


def _mode_log_prior(mode: str, num_actions: int, dtype) -> Array:
    if mode == "soft-kl":
        return jnp.full((num_actions,), -math.log(num_actions), dtype)
    return jnp.zeros((num_actions,), dtype)


def dqn_bootstrap_value(q_t: Array, *, mode: str, temperature: Scalar | None = None) -> Array:
    r"""The bootstrap value of one next-state row for each DQN target mode (paper §6.2).

    Args:
      q_t: `[A]` Q̄(s', ·) of the target network.
      mode: "hard", "soft-kl" or "soft-entropy".
      temperature: τ > 0 for the soft modes; ignored (may be None) for "hard".

    Returns:
      `[]` the bootstrap value.

    Examples:
      >>> import jax.numpy as jnp
      >>> from softeq.core import dqn_bootstrap_value
      >>> q = jnp.array([0.0, 0.0])
      >>> [round(float(dqn_bootstrap_value(q, mode=m, temperature=1.0)), 4)
      ...  for m in ("hard", "soft-kl", "soft-entropy")]
      [0.0, 0.0, 0.6931]

    Reference: arXiv:1704.06440, §6.2.
    """
    _checks.check_choice(mode, name="mode", choices=DQN_TARGET_MODES)
    _checks.check_rank(q_t, 1, name="q_t")
    if mode == "hard":
        return jnp.max(q_t)
    _checks.check_temperature(temperature)
    log_prior = _mode_log_prior(mode, q_t.shape[-1], q_t.dtype)
    return soft_value(q_t, temperature=temperature, log_prior=log_prior)


def soft_dqn_targets(
    r_t: Array,
    discount_t: Array,
    q_t: Array,
    *,
    mode: str,
    temperature: Scalar | None = None,
    n: int = 1,
) -> Array:
    r"""n-step DQN targets for a trajectory in any of the three modes (paper §6.2, [E13]).

    For n = 1 this is y_i = r_i + γ_i v(Q̄(s_{i+1}, ·)). For n > 1 the soft modes
    add the −τ KL terms of the target network's Boltzmann policy at the
    intermediate states, as in [E13]; the hard mode is the usual n-step return.
    The result carries no gradient.

    Args:
      r_t: `[T]` rewards.
      discount_t: `[T]` discounts.
      q_t: `[T, A]` target-network rows Q̄(s_{i+1}, ·).
      mode: "hard", "soft-kl" or "soft-entropy".
      temperature: τ > 0 for the soft modes.
      n: window ≥ 1.

    Returns:
      `[T]` targets.

    Examples:
      >>> import jax.numpy as jnp
      >>> from softeq.core import soft_dqn_targets
      >>> y = soft_dqn_targets(jnp.ones(1), jnp.ones(1), jnp.zeros((1, 4)),
      ...                      mode="soft-entropy", temperature=1.0)
      >>> round(float(y[0]), 4)  # 1 + log 4
      2.3863
    """
    _checks.check_choice(mode, name="mode", choices=DQN_TARGET_MODES)
    _checks.check_rank(q_t, 2, name="q_t")
    q_t = jax.lax.stop_gradient(q_t)
    if mode == "hard":
        v_t = jnp.max(q_t, axis=-1)
        return soft_n_step_targets(
            r_t,
            discount_t,
            v_t,
            jnp.zeros_like(v_t),
            temperature=0.0,
            n=n,
            stop_target_gradients=True,
        )
    _checks.check_temperature(temperature)
    log_prior = _mode_log_prior(mode, q_t.shape[-1], q_t.dtype)

    def stats(q):
        log_pi = boltzmann_log_policy(q, temperature=temperature, log_prior=log_prior)
        return soft_value(q, temperature=temperature, log_prior=log_prior), kl_divergence(
            log_pi, log_prior
        )

    v_t, kl_t = jax.vmap(stats)(q_t)
    return soft_n_step_targets(
        r_t, discount_t, v_t, kl_t, temperature=temperature, n=n, stop_target_gradients=True
    )
