r"""Soft Q-learning losses and entropy-regularised policy-gradient losses.

Paper §3.5–4 and §6.3 ([E8], [E13]–[E16]). Every loss is a scalar to be
*minimised*, averaged over the T steps of one trajectory (batch with `jax.vmap`
and average). With this sign convention the main theorem [E15] reads

$$\nabla_\theta L_{\text{soft-Q}} = \tau\,\nabla_\theta L_{\text{PG}} + \nabla_\theta L_V,$$

i.e. the soft Q-learning gradient is −τ times the entropy-regularised policy
gradient (the ascent direction −∇L_PG) plus the gradient of a value fit, when
π and V are the Boltzmann policy and soft value of the same Q and actions are
drawn from that π. `log_prior` in this module is one `[A]` vector shared by
all states (None = uniform).
"""

from __future__ import annotations

from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp

from softeq.core import _checks
from softeq.core.returns import soft_n_step_advantages, soft_n_step_targets
from softeq.core.soft import (
    boltzmann_log_policy,
    kl_divergence,
    scale_gradient,
    soft_value,
)

Array = chex.Array
Scalar = float | chex.Array

ENTROPY_MODES = ("naive", "proper")


def _check_q_stream(q, a, *, q_name: str, a_name: str):
    _checks.check_rank(q, 2, name=q_name)
    _checks.check_float(q, name=q_name)
    _checks.check_rank(a, 1, name=a_name)
    _checks.check_integer(a, name=a_name)


def _boltzmann_stats(q: Array, *, temperature: Scalar, log_prior) -> tuple[Array, Array, Array]:
    """Per-row soft value, Boltzmann log-policy and its KL to the prior, for `[T, A]`."""
    log_prior = _checks.resolve_log_prior(log_prior, q.shape[-1], q.dtype)

    def one(qs):
        log_pi = boltzmann_log_policy(qs, temperature=temperature, log_prior=log_prior)
        return (
            soft_value(qs, temperature=temperature, log_prior=log_prior),
            log_pi,
            kl_divergence(log_pi, log_prior),
        )

    return jax.vmap(one)(q)


def _taken(values: Array, a: Array) -> Array:
    return jnp.take_along_axis(values, a[:, None], axis=-1)[:, 0]


def soft_q_learning(
    q_tm1: Array,
    a_tm1: Scalar,
    r_t: Scalar,
    discount_t: Scalar,
    q_t: Array,
    *,
    temperature: Scalar,
    log_prior: Array | str | None = None,
    stop_target_gradients: bool = True,
) -> Array:
    r"""One-step soft Q-learning TD error for a single transition [E13].

    $$y = r + \gamma V_{Q}(s'),\qquad \text{returns } y - Q(s,a),$$

    the soft analogue of `rlax.q_learning` (max replaced by the soft value).

    Args:
      q_tm1: `[A]` Q(s, ·).
      a_tm1: `[]` int action taken in s.
      r_t: `[]` reward.
      discount_t: `[]` γ·(1 − terminal).
      q_t: `[A]` Q(s', ·) (online or target network).
      temperature: τ > 0.
      log_prior: `[A]` log π̄; None or "uniform" for uniform, "entropy" for π̄ ≡ 1.
      stop_target_gradients: if True, no gradient flows through y.

    Returns:
      `[]` TD error y − Q(s, a).

    Examples:
      >>> import jax.numpy as jnp
      >>> from softeq.core import soft_q_learning
      >>> td = soft_q_learning(jnp.array([0.0, 1.0]), 1, 1.0, 0.5, jnp.zeros(2),
      ...                      temperature=1.0, log_prior=jnp.zeros(2))
      >>> round(float(td), 4)  # 1 + 0.5·log 2 − 1
      0.3466
    """
    _checks.check_float(_checks.check_rank(q_tm1, 1, name="q_tm1"), name="q_tm1")
    _checks.check_float(_checks.check_rank(q_t, 1, name="q_t"), name="q_t")
    _checks.check_integer(a_tm1, name="a_tm1")
    _checks.check_last_dim(q_t, q_tm1.shape[-1], name="q_t", expected_from="`q_tm1`")
    target = r_t + discount_t * soft_value(q_t, temperature=temperature, log_prior=log_prior)
    if stop_target_gradients:
        target = jax.lax.stop_gradient(target)
    return target - q_tm1[a_tm1]


def soft_q_learning_loss(
    q_tm1: Array,
    a_tm1: Array,
    r_t: Array,
    discount_t: Array,
    q_t: Array,
    *,
    temperature: Scalar,
    n: int = 1,
    log_prior: Array | str | None = None,
) -> Array:
    r"""n-step soft Q-learning loss along a trajectory [E13], [E15].

    $$L = \frac1T\sum_i \tfrac12\big(Q(s_i,a_i) - y_i\big)^2,$$

    with y the n-step soft targets bootstrapped from V_{Q_t} and using the KL of
    π^B_{Q_t}, both derived from `q_t` and held fixed.

    Args:
      q_tm1: `[T, A]` Q(s_i, ·), differentiated.
      a_tm1: `[T]` int actions.
      r_t: `[T]` rewards.
      discount_t: `[T]` discounts.
      q_t: `[T, A]` Q(s_{i+1}, ·) for the targets (no gradient flows through it).
      temperature: τ > 0.
      n: window ≥ 1 (1 gives y = r + γ V(s')).
      log_prior: `[A]` log π̄; None or "uniform" for uniform, "entropy" for π̄ ≡ 1.

    Returns:
      `[]` the loss.

    Examples:
      >>> import jax.numpy as jnp
      >>> from softeq.core import soft_q_learning_loss
      >>> loss = soft_q_learning_loss(jnp.zeros((2, 2)), jnp.array([0, 1]), jnp.ones(2),
      ...                             jnp.zeros(2), jnp.zeros((2, 2)), temperature=1.0)
      >>> float(loss)
      0.5
    """
    _check_q_stream(q_tm1, a_tm1, q_name="q_tm1", a_name="a_tm1")
    _checks.check_same_leading(
        {"q_tm1": q_tm1, "a_tm1": a_tm1, "r_t": r_t, "discount_t": discount_t}
    )
    _checks.check_rank(q_t, 2, name="q_t")
    if q_t.shape != q_tm1.shape:
        raise ValueError(f"`q_t` must have the shape of `q_tm1` {q_tm1.shape}, got {q_t.shape}.")
    _checks.check_temperature(temperature)
    v_t, _, kl_t = _boltzmann_stats(
        jax.lax.stop_gradient(q_t), temperature=temperature, log_prior=log_prior
    )
    targets = soft_n_step_targets(
        r_t, discount_t, v_t, kl_t, temperature=temperature, n=n, stop_target_gradients=True
    )
    return jnp.mean(0.5 * jnp.square(_taken(q_tm1, a_tm1) - targets))


def regularised_policy_gradient_loss(
    logits_tm1: Array,
    a_tm1: Array,
    adv_t: Array,
    *,
    temperature: Scalar,
    log_prior: Array | str | None = None,
) -> Array:
    r"""Entropy-regularised policy-gradient loss [E7], [E14], paper eq. 48–52.

    $$L_{\text{PG}} = \frac1T\sum_i\Big[-\log\pi(a_i|s_i)\,\Delta_i
                      + \tau\,\mathrm{KL}[\pi(\cdot|s_i)\|\bar\pi]\Big],$$

    with Δ held fixed; −∇L_PG is the policy-gradient estimator. Whether it is
    the "proper" or the "naive" estimator depends on Δ: the soft n-step
    advantages of `soft_n_step_advantages` give the proper one; plain returns
    (temperature 0 in the advantages) give the naive one. With temperature 0
    this equals `rlax.policy_gradient_loss` with unit weights.

    Args:
      logits_tm1: `[T, A]` unnormalised log π(·|s_i).
      a_tm1: `[T]` int actions.
      adv_t: `[T]` advantages Δ (gradients are stopped).
      temperature: τ ≥ 0.
      log_prior: `[A]` log π̄; None or "uniform" for uniform, "entropy" for π̄ ≡ 1.

    Returns:
      `[]` the loss.

    Examples:
      >>> import jax.numpy as jnp
      >>> from softeq.core import regularised_policy_gradient_loss
      >>> loss = regularised_policy_gradient_loss(jnp.zeros((1, 2)), jnp.array([0]),
      ...                                         jnp.ones(1), temperature=0.0)
      >>> round(float(loss), 4)  # −log ½
      0.6931
    """
    _check_q_stream(logits_tm1, a_tm1, q_name="logits_tm1", a_name="a_tm1")
    _checks.check_rank(adv_t, 1, name="adv_t")
    _checks.check_same_leading({"logits_tm1": logits_tm1, "a_tm1": a_tm1, "adv_t": adv_t})
    _checks.check_temperature(temperature, allow_zero=True)
    log_prior = _checks.resolve_log_prior(log_prior, logits_tm1.shape[-1], logits_tm1.dtype)
    log_pi = jax.nn.log_softmax(logits_tm1)
    kl = jax.vmap(kl_divergence, in_axes=(0, None))(log_pi, log_prior)
    pg = -_taken(log_pi, a_tm1) * jax.lax.stop_gradient(adv_t)
    return jnp.mean(pg + temperature * kl)


def value_loss(v_tm1: Array, target_tm1: Array) -> Array:
    r"""Value-fit loss [E14]: mean of ½(V(s_i) − V̂_i)² with V̂ held fixed.

    Args:
      v_tm1: `[T]` V(s_i), differentiated.
      target_tm1: `[T]` V̂_i.

    Returns:
      `[]` the loss.

    Examples:
      >>> import jax.numpy as jnp
      >>> from softeq.core import value_loss
      >>> float(value_loss(jnp.zeros(2), jnp.array([1.0, 3.0])))
      2.5
    """
    _checks.check_rank(v_tm1, 1, name="v_tm1")
    _checks.check_rank(target_tm1, 1, name="target_tm1")
    _checks.check_same_leading({"v_tm1": v_tm1, "target_tm1": target_tm1})
    return jnp.mean(0.5 * jnp.square(v_tm1 - jax.lax.stop_gradient(target_tm1)))


class A2CLossExtras(NamedTuple):
    """Diagnostics of `a2c_loss` and `a2c_matched_soft_q_loss` (all `[]` unless noted)."""

    policy_loss: Array
    value_loss: Array
    kl: Array
    advantages: Array  # [T]
    value_targets: Array  # [T]


def _check_sequence(logits, values, a_tm1, r_t, discount_t):
    _check_q_stream(logits, a_tm1, q_name="logits", a_name="a_tm1")
    _checks.check_rank(values, 1, name="values")
    for name, x in (("r_t", r_t), ("discount_t", discount_t)):
        _checks.check_rank(x, 1, name=name)
    _checks.check_same_leading({"a_tm1": a_tm1, "r_t": r_t, "discount_t": discount_t})
    steps = a_tm1.shape[0]
    for name, x in (("logits", logits), ("values", values)):
        if x.shape[0] != steps + 1:
            raise ValueError(
                f"`{name}` must cover T + 1 = {steps + 1} states (the last is the bootstrap "
                f"state), got leading size {x.shape[0]}."
            )


def a2c_loss(
    logits: Array,
    values: Array,
    a_tm1: Array,
    r_t: Array,
    discount_t: Array,
    *,
    temperature: Scalar,
    n: int,
    value_weight: Scalar,
    entropy: str = "proper",
    log_prior: Array | str | None = None,
) -> tuple[Array, A2CLossExtras]:
    r"""Entropy-regularised advantage actor-critic loss, naive or proper [E14], §6.1.

    $$L = L_{\text{PG}}(\Delta) + c\,\frac1T\sum_i\tfrac12\big(V(s_i) - \hat V_i\big)^2,
      \qquad \hat V_i = V(s_i) + \Delta_i.$$

    `entropy="proper"`: Δ are the n-step soft advantages (future KL terms in
    the returns); `"naive"`: Δ are plain n-step advantages, the entropy enters
    only through the per-state KL term of L_PG (paper eq. 48).

    Args:
      logits: `[T + 1, A]` policy logits of s_0 … s_T (s_T only bootstraps).
      values: `[T + 1]` V(s_0) … V(s_T).
      a_tm1: `[T]` int actions.
      r_t: `[T]` rewards.
      discount_t: `[T]` discounts.
      temperature: τ ≥ 0.
      n: window ≥ 1.
      value_weight: c, the weight of the value loss.
      entropy: "proper" or "naive".
      log_prior: `[A]` log π̄; None or "uniform" for uniform, "entropy" (or zeros) for
        the plain entropy bonus.

    Returns:
      `(loss, A2CLossExtras)`.

    Examples:
      >>> import jax.numpy as jnp
      >>> from softeq.core import a2c_loss
      >>> loss, extras = a2c_loss(jnp.zeros((3, 2)), jnp.zeros(3), jnp.array([0, 1]),
      ...                         jnp.ones(2), jnp.zeros(2), temperature=0.0, n=1,
      ...                         value_weight=0.5)
      >>> round(float(loss), 4)  # log 2 + 0.5 · ½
      0.9431
    """
    _check_sequence(logits, values, a_tm1, r_t, discount_t)
    _checks.check_choice(entropy, name="entropy", choices=ENTROPY_MODES)
    _checks.check_temperature(temperature, allow_zero=True)
    log_prior = _checks.resolve_log_prior(log_prior, logits.shape[-1], logits.dtype)
    log_pi = jax.nn.log_softmax(logits)
    kl = jax.lax.stop_gradient(jax.vmap(kl_divergence, in_axes=(0, None))(log_pi, log_prior))
    held_values = jax.lax.stop_gradient(values)
    advantage_temperature = temperature if entropy == "proper" else 0.0
    advantages = soft_n_step_advantages(
        r_t,
        discount_t,
        held_values[:-1],
        held_values[1:],
        kl[:-1],
        kl[1:],
        temperature=advantage_temperature,
        n=n,
    )
    value_targets = held_values[:-1] + advantages
    pg = regularised_policy_gradient_loss(
        logits[:-1], a_tm1, advantages, temperature=temperature, log_prior=log_prior
    )
    vf = value_loss(values[:-1], value_targets)
    extras = A2CLossExtras(pg, vf, jnp.mean(kl[:-1]), advantages, value_targets)
    return pg + value_weight * vf, extras


def a2c_matched_soft_q_loss(
    logits: Array,
    values: Array,
    a_tm1: Array,
    r_t: Array,
    discount_t: Array,
    *,
    temperature: Scalar,
    n: int,
    value_weight: Scalar,
) -> tuple[Array, A2CLossExtras]:
    r"""Soft Q-learning loss built to match A2C [E16], paper §6.3.

    The network's policy and value heads define a dueling soft Q-function
    $Q_\theta(s,a) = V_\theta(s) + \tau\log\pi_\theta(a|s)$ (π̄ ≡ 1, the entropy
    bonus), regressed on n-step soft targets bootstrapped from V_θ (held fixed):

    $$L = \frac1T\sum_i\tfrac12\big(\tilde Q_\theta(s_i,a_i) - y_i\big)^2,\quad
      \tilde Q = \mathrm{scale}_c(V_\theta) + \mathrm{scale}_{1/\tau}(\tau\log\pi_\theta),$$

    where scale_k(x) = `scale_gradient(x, k)` has the value x and k times its
    gradient (a stop-gradient would be scale_0). The per-sample
    gradient is (Q − y)∇log π + c(Q − y)∇V, whose expectation over a ∼ π is the
    gradient of `a2c_loss(..., entropy="proper", log_prior=0)` with value
    weight c. With c = 1/τ the plain soft Q-learning gradient is recovered up
    to the factor 1/τ.

    Args:
      logits: `[T + 1, A]` policy logits of s_0 … s_T.
      values: `[T + 1]` V_θ(s_0) … V_θ(s_T).
      a_tm1: `[T]` int actions, drawn from π_θ.
      r_t: `[T]` rewards.
      discount_t: `[T]` discounts.
      temperature: τ > 0.
      n: window ≥ 1.
      value_weight: c, the gradient scale on the value stream.

    Returns:
      `(loss, A2CLossExtras)`; the extras' policy and value losses are the A2C
      terms of the same batch, for logging.

    Examples:
      >>> import jax.numpy as jnp
      >>> from softeq.core import a2c_matched_soft_q_loss
      >>> loss, _ = a2c_matched_soft_q_loss(jnp.zeros((2, 2)), jnp.zeros(2), jnp.array([0]),
      ...                                   jnp.zeros(1), jnp.zeros(1), temperature=1.0,
      ...                                   n=1, value_weight=0.5)
      >>> round(float(loss), 4)  # ½ (log ½)²
      0.2402
    """
    _check_sequence(logits, values, a_tm1, r_t, discount_t)
    _checks.check_temperature(temperature)
    log_pi = jax.nn.log_softmax(logits)
    entropy_prior = jnp.zeros(logits.shape[-1], logits.dtype)
    kl = jax.lax.stop_gradient(jax.vmap(kl_divergence, in_axes=(0, None))(log_pi, entropy_prior))
    held_values = jax.lax.stop_gradient(values)
    targets = soft_n_step_targets(
        r_t,
        discount_t,
        held_values[1:],
        kl[1:],
        temperature=temperature,
        n=n,
        stop_target_gradients=True,
    )
    q_taken = scale_gradient(values[:-1], value_weight) + scale_gradient(
        temperature * _taken(log_pi[:-1], a_tm1), 1.0 / temperature
    )
    loss = jnp.mean(0.5 * jnp.square(q_taken - targets))
    advantages = jax.lax.stop_gradient(targets - temperature * kl[:-1] - held_values[:-1])
    value_targets = held_values[:-1] + advantages
    extras = A2CLossExtras(
        regularised_policy_gradient_loss(
            logits[:-1], a_tm1, advantages, temperature=temperature, log_prior=entropy_prior
        ),
        value_loss(values[:-1], value_targets),
        jnp.mean(kl[:-1]),
        advantages,
        value_targets,
    )
    return loss, extras
