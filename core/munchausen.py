r"""Munchausen targets and the Munchausen value-iteration backup ([M1]–[M3]).

Munchausen RL (Vieillard, Pietquin & Geist 2020) adds to the reward the
scaled log-probability that the current (target-network) policy gives to the
action taken, ατ ln π(a|s), and bootstraps with the entropy-bonus soft value:

$$y = r + \alpha\tau\,\mathrm{clip}\big(\ln\pi(a|s), l_0, 0\big)
      + \gamma\sum_{a'}\pi(a'|s')\big[\bar q(s',a') - \tau\ln\pi(a'|s')\big],
  \qquad \pi = \mathrm{softmax}(\bar q/\tau).$$

Without the clip this is mirror-descent value iteration, regularised by a
KL to the previous policy of weight ατ and an entropy of weight (1 − α)τ
[M2]; it converges to the optimum of the (1 − α)τ entropy-regularised MDP
[M3]. These methods are published in the entropy convention (π̄ ≡ 1,
`log_prior="entropy"` elsewhere in softeq), which this module uses throughout.

The log-policy is computed from the Q-values centred by their maximum
before dividing by τ: ln π = (q̄ − max q̄)/τ − logsumexp((q̄ − max q̄)/τ), so
the small temperatures of the method (τ = 0.03) never divide a large Q-value.

Reference: N. Vieillard, O. Pietquin, M. Geist, "Munchausen Reinforcement
Learning", NeurIPS 2020, arXiv:2007.14430 (reference implementation:
google-research/munchausen_rl, whose defaults are τ = 0.03, α = 0.9, l0 = −1).
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp

from softeq.core import _checks
from softeq.core.mdp import TabularMDP, _check_table

Array = chex.Array
Scalar = float | chex.Array


def _check_munchausen_settings(temperature, alpha, log_policy_clip) -> None:
    _checks.check_temperature(temperature)
    _checks.check_in_interval(alpha, name="alpha", low=0.0, high=1.0)
    if log_policy_clip is not None:
        clip = _checks._python_number(log_policy_clip)
        if clip is not None and not clip <= 0.0:  # −inf passes; NaN and +inf do not
            raise ValueError(
                f"`log_policy_clip` must be a number <= 0 (a log-probability), -inf or None "
                f"(no clipping), got {log_policy_clip!r}."
            )


def _centred_log_policy(q: Array, temperature: Scalar) -> Array:
    """ln softmax(q/τ) over the last axis, with q centred by its maximum before the division."""
    scaled = (q - jnp.max(q, axis=-1, keepdims=True)) / temperature
    return scaled - jax.nn.logsumexp(scaled, axis=-1, keepdims=True)


def _munchausen_bonus(log_pi_taken: Array, temperature, alpha, log_policy_clip) -> Array:
    if log_policy_clip is not None:
        log_pi_taken = jnp.clip(log_pi_taken, log_policy_clip, 0.0)
    return alpha * temperature * log_pi_taken


def _entropy_soft_value(q: Array, log_pi: Array, temperature) -> Array:
    """Σ_a π(a)[q(a) − τ ln π(a)] over the last axis (= τ logsumexp(q/τ))."""
    return jnp.sum(jnp.exp(log_pi) * (q - temperature * log_pi), axis=-1)


def munchausen_targets(
    q_tm1: Array,
    a_tm1: Array,
    r_t: Array,
    discount_t: Array,
    q_t: Array,
    *,
    temperature: Scalar,
    alpha: Scalar,
    log_policy_clip: Scalar | None = -1.0,
) -> Array:
    r"""One-step Munchausen DQN targets along a trajectory [M1].

    $$y_i = r_i + \alpha\tau\,\mathrm{clip}\big(\ln\pi(a_i|s_i), l_0, 0\big)
            + \gamma_i\sum_{a'}\pi(a'|s_{i+1})\big[\bar q(s_{i+1},a')
            - \tau\ln\pi(a'|s_{i+1})\big],\qquad \pi = \mathrm{softmax}(\bar q/\tau).$$

    Both π terms come from the target network q̄ (in the reference
    implementation too): pass its rows at s_i as `q_tm1` and at s_{i+1} as
    `q_t`. With α = 0 this is the entropy-bonus soft DQN target,
    `soft_dqn_targets(..., mode="soft-entropy", n=1)`. The clip at l0 < 0
    bounds the bonus of unlikely actions (ln π → −∞ as τ → 0); the result
    carries no gradient.

    Args:
      q_tm1: `[T, A]` target-network rows q̄(s_i, ·) of the states the actions were taken in.
      a_tm1: `[T]` int actions a_i.
      r_t: `[T]` rewards.
      discount_t: `[T]` discounts γ·(1 − terminal).
      q_t: `[T, A]` target-network rows q̄(s_{i+1}, ·).
      temperature: τ > 0 (the reference uses 0.03).
      alpha: Munchausen scaling α in [0, 1] (the reference uses 0.9).
      log_policy_clip: l0 ≤ 0, the lower clip of ln π(a_i|s_i) (the reference
        uses −1); None (or −inf) switches clipping off.

    Returns:
      `[T]` targets y.

    Examples:
      >>> import jax.numpy as jnp
      >>> from softeq.core import munchausen_targets
      >>> q = jnp.zeros((1, 2))  # π = (½, ½) in both states
      >>> y = munchausen_targets(q, jnp.array([0]), jnp.ones(1), jnp.ones(1), q,
      ...                        temperature=1.0, alpha=0.5, log_policy_clip=None)
      >>> round(float(y[0]), 4)  # 1 + ½ log ½ + log 2
      1.3466

    Reference: Vieillard, Pietquin & Geist, arXiv:2007.14430, eq. (2) and Alg. 1.
    """
    for name, q in (("q_tm1", q_tm1), ("q_t", q_t)):
        _checks.check_float(_checks.check_rank(q, 2, name=name), name=name)
    _checks.check_integer(_checks.check_rank(a_tm1, 1, name="a_tm1"), name="a_tm1")
    for name, x in (("r_t", r_t), ("discount_t", discount_t)):
        _checks.check_float(_checks.check_rank(x, 1, name=name), name=name)
    _checks.check_same_leading(
        {"q_tm1": q_tm1, "a_tm1": a_tm1, "r_t": r_t, "discount_t": discount_t, "q_t": q_t}
    )
    _checks.check_last_dim(q_t, q_tm1.shape[-1], name="q_t", expected_from="`q_tm1`")
    _check_munchausen_settings(temperature, alpha, log_policy_clip)
    q_tm1, q_t = jax.lax.stop_gradient(q_tm1), jax.lax.stop_gradient(q_t)
    log_pi_tm1 = _centred_log_policy(q_tm1, temperature)
    log_pi_taken = jnp.take_along_axis(log_pi_tm1, a_tm1[:, None], axis=-1)[:, 0]
    bonus = _munchausen_bonus(log_pi_taken, temperature, alpha, log_policy_clip)
    v_t = _entropy_soft_value(q_t, _centred_log_policy(q_t, temperature), temperature)
    return jax.lax.stop_gradient(r_t + bonus + discount_t * v_t)


def munchausen_bellman_backup(
    q: Array,
    mdp: TabularMDP,
    *,
    temperature: Scalar,
    alpha: Scalar,
    log_policy_clip: Scalar | None = -1.0,
) -> Array:
    r"""One step of Munchausen value iteration on a tabular MDP [M2].

    $$\pi_{k+1} = \mathrm{softmax}(q_k/\tau),\qquad
      q_{k+1} = r + \alpha\tau\,\mathrm{clip}(\ln\pi_{k+1}, l_0, 0)
              + \gamma P\big\langle\pi_{k+1},\ q_k - \tau\ln\pi_{k+1}\big\rangle,$$

    the expectation of `munchausen_targets` over the next state. Without the
    clip (`log_policy_clip=None`) the iterates are those of mirror-descent value
    iteration with KL weight ατ and entropy weight (1 − α)τ, shifted by
    ατ ln π_k [M2], and π_k converges to the optimal policy of the
    (1 − α)τ entropy-regularised MDP [M3].

    Args:
      q: `[S, A]` the current table q_k.
      mdp: the MDP.
      temperature: τ > 0.
      alpha: α in [0, 1].
      log_policy_clip: l0 ≤ 0, or None (or −inf) for no clipping.

    Returns:
      `[S, A]` q_{k+1}.

    Examples:
      >>> import jax.numpy as jnp
      >>> from softeq.core import TabularMDP, munchausen_bellman_backup
      >>> mdp = TabularMDP(transitions=jnp.ones((1, 2, 1)), rewards=jnp.zeros((1, 2)),
      ...                  discount=jnp.array(0.5), initial_distribution=jnp.ones(1))
      >>> q = jnp.log(jnp.array([[1.0, 3.0]]))  # π = (¼, ¾), soft value log 4
      >>> q1 = munchausen_bellman_backup(q, mdp, temperature=1.0, alpha=0.5,
      ...                                log_policy_clip=None)
      >>> [round(x, 4) for x in q1[0].tolist()]  # ½ log ¼ + ½ log 4, ½ log ¾ + ½ log 4
      [0.0, 0.5493]

    Reference: Vieillard, Pietquin & Geist, arXiv:2007.14430, §4 and Thm. 1.
    """
    _check_table(q, mdp, name="q")
    _checks.check_float(q, name="q")
    _check_munchausen_settings(temperature, alpha, log_policy_clip)
    log_pi = _centred_log_policy(q, temperature)
    bonus = _munchausen_bonus(log_pi, temperature, alpha, log_policy_clip)
    v = _entropy_soft_value(q, log_pi, temperature)
    return mdp.rewards + bonus + mdp.discount * jnp.einsum("sat,t->sa", mdp.transitions, v)
