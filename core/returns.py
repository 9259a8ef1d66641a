"""Soft TD errors, n-step and λ soft targets and soft advantages along one trajectory.

Paper §3.5–3.6 ([E11], [E13], [E14]) and their λ-mixture [L1]. Arrays are time-major with rlax's
alignment: index i is the transition s_i —a_i→ (r_i, s_{i+1}), so `r_t[i]`,
`discount_t[i]` = γ·(1 − terminal_{i+1}), `v_t[i]` = V(s_{i+1}) and
`kl_t[i]` = KL(s_{i+1}); `v_tm1[i]` = V(s_i) and `kl_tm1[i]` = KL(s_i).
A zero discount cuts every later reward, KL term and bootstrap, so episode
ends may fall anywhere in the window. Near the end of the sequence the
windows shrink and bootstrap from the last value, exactly as
`rlax.n_step_bootstrapped_returns` does (the property suite checks they agree).
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp

from softeq.core import _checks

Array = chex.Array
Scalar = float | chex.Array


def _check_stream(**arrays):
    for name, array in arrays.items():
        _checks.check_rank(array, 1, name=name)
        _checks.check_float(array, name=name)
    _checks.check_same_leading(arrays)


def _n_step_returns(r_t: Array, discount_t: Array, v_t: Array, n: int) -> Array:
    """n-step bootstrapped returns with rlax's alignment and end-of-sequence rule.

    The same backward recursion as `rlax.n_step_bootstrapped_returns` at λ = 1,
    without its λ-mixing terms, whose gradient made the rlax call up to several
    times slower (benchmarks/RESULTS.md); the property suite checks that the two
    agree exactly.
    """
    steps, pad = r_t.shape[0], n - 1
    bootstrap = jnp.concatenate([v_t, jnp.broadcast_to(v_t[-1:], (pad,))])
    rewards = jnp.concatenate([r_t, jnp.zeros((pad,), r_t.dtype)])
    discounts = jnp.concatenate([discount_t, jnp.ones((pad,), discount_t.dtype)])
    returns = bootstrap[pad : pad + steps]
    for i in reversed(range(n)):
        returns = rewards[i : i + steps] + discounts[i : i + steps] * returns
    return returns


@jax.jit
def _lambda_recursion(r_t, discount_t, v_t, kl_terms, lambdas):
    """G_i = r_i + γ_i[(1 − λ_i) v_i + λ_i(G_{i+1} − kl_terms_i)], backwards from the end.

    Jitted so that eager calls reuse one compiled scan per shape (an eager
    `lax.scan` recompiles its body at every call); under an outer jit it is inlined.
    """

    def backwards(following, step):
        r, discount, v, kl_term, lam = step
        g = r + discount * ((1.0 - lam) * v + lam * (following - kl_term))
        return g, g

    # starting from V + τ KL of the last state makes the last step r + γ V, with no KL.
    start = v_t[-1] + kl_terms[-1]
    _, returns = jax.lax.scan(
        backwards, start, (r_t, discount_t, v_t, kl_terms, lambdas), reverse=True
    )
    return returns


def soft_td_errors(
    r_t: Array, discount_t: Array, v_tm1: Array, v_t: Array, kl_tm1: Array, *, temperature: Scalar
) -> Array:
    r"""One-step soft TD errors along a trajectory [E11], paper eq. 36.

    $$\delta_i = r_i - \tau\,\mathrm{KL}(s_i) + \gamma_i V(s_{i+1}) - V(s_i).$$

    Args:
      r_t: `[T]` rewards.
      discount_t: `[T]` discounts γ·(1 − terminal).
      v_tm1: `[T]` V(s_i).
      v_t: `[T]` V(s_{i+1}).
      kl_tm1: `[T]` KL(s_i) of the policy that acts in s_i.
      temperature: τ ≥ 0.

    Returns:
      `[T]` δ.

    Examples:
      >>> import jax.numpy as jnp
      >>> from softeq.core import soft_td_errors
      >>> one = jnp.ones(1)
      >>> delta = soft_td_errors(one, 0.5 * one, one, 2 * one, one, temperature=0.1)
      >>> [round(x, 6) for x in delta.tolist()]  # 1 − 0.1 + 0.5·2 − 1
      [0.9]
    """
    _check_stream(r_t=r_t, discount_t=discount_t, v_tm1=v_tm1, v_t=v_t, kl_tm1=kl_tm1)
    _checks.check_temperature(temperature, allow_zero=True)
    return r_t - temperature * kl_tm1 + discount_t * v_t - v_tm1


def soft_n_step_targets(
    r_t: Array,
    discount_t: Array,
    v_t: Array,
    kl_t: Array,
    *,
    temperature: Scalar,
    n: int,
    stop_target_gradients: bool = False,
) -> Array:
    r"""n-step soft Q-learning targets [E13], paper §3.5.

    $$y_i = r_i + \sum_{d=1}^{n-1}\gamma^d\big(r_{i+d} - \tau\,\mathrm{KL}(s_{i+d})\big)
            + \gamma^n V(s_{i+n}).$$

    The first step carries no KL term (the action at s_i is given). Written as
    the ordinary n-step return of the shifted rewards r_i − τγ_i KL(s_{i+1})
    bootstrapped from V + τ KL, which cancels the KL of the bootstrap state;
    with temperature 0 it equals `rlax.n_step_bootstrapped_returns` exactly.

    Args:
      r_t: `[T]` rewards.
      discount_t: `[T]` discounts γ·(1 − terminal).
      v_t: `[T]` soft values V(s_{i+1}) to bootstrap from.
      kl_t: `[T]` KL(s_{i+1}) of the policy whose values `v_t` are.
      temperature: τ ≥ 0.
      n: window length ≥ 1.
      stop_target_gradients: if True, no gradient flows through the result.

    Returns:
      `[T]` targets y.

    Examples:
      >>> import jax.numpy as jnp
      >>> from softeq.core import soft_n_step_targets
      >>> r, g = jnp.array([1.0, 1.0]), jnp.array([0.5, 0.5])
      >>> v, kl = jnp.array([2.0, 4.0]), jnp.array([1.0, 1.0])
      >>> soft_n_step_targets(r, g, v, kl, temperature=0.5, n=2).tolist()  # 1 + .5(1 − .5) + .25·4
      [2.25, 3.0]

    Reference: arXiv:1704.06440, §3.5.
    """
    _check_stream(r_t=r_t, discount_t=discount_t, v_t=v_t, kl_t=kl_t)
    _checks.check_temperature(temperature, allow_zero=True)
    _checks.check_positive_int(n, name="n")
    if _checks._python_number(temperature) == 0.0:
        # a known zero temperature drops the KL terms outright (0·inf would be NaN).
        targets = _n_step_returns(r_t, discount_t, v_t, n)
    else:
        shifted_r_t = r_t - temperature * discount_t * kl_t
        targets = _n_step_returns(shifted_r_t, discount_t, v_t + temperature * kl_t, n)
    if stop_target_gradients:
        targets = jax.lax.stop_gradient(targets)
    return targets


def soft_n_step_advantages(
    r_t: Array,
    discount_t: Array,
    v_tm1: Array,
    v_t: Array,
    kl_tm1: Array,
    kl_t: Array,
    *,
    temperature: Scalar,
    n: int,
    stop_target_gradients: bool = True,
) -> Array:
    r"""n-step soft advantages Δ, the "proper" entropy-regularised advantage [E14].

    $$\Delta_i = \sum_{d<n}\gamma^d\delta_{i+d} = y_i - \tau\,\mathrm{KL}(s_i) - V(s_i),$$

    with y the targets of `soft_n_step_targets`. With temperature 0 this is
    the ordinary n-step advantage used by the "naive" estimator.

    Args:
      r_t: `[T]` rewards.
      discount_t: `[T]` discounts.
      v_tm1: `[T]` V(s_i).
      v_t: `[T]` V(s_{i+1}).
      kl_tm1: `[T]` KL(s_i).
      kl_t: `[T]` KL(s_{i+1}).
      temperature: τ ≥ 0.
      n: window length ≥ 1.
      stop_target_gradients: if True (default), the advantages are constants.

    Returns:
      `[T]` Δ.

    Examples:
      >>> import jax.numpy as jnp
      >>> from softeq.core import soft_n_step_advantages
      >>> one = jnp.ones(1)
      >>> adv = soft_n_step_advantages(one, 0.5 * one, one, 2 * one, one, one,
      ...                              temperature=0.1, n=1)
      >>> [round(x, 6) for x in adv.tolist()]
      [0.9]

    Reference: arXiv:1704.06440, eq. 36 and 52.
    """
    _check_stream(v_tm1=v_tm1, kl_tm1=kl_tm1, r_t=r_t)
    targets = soft_n_step_targets(r_t, discount_t, v_t, kl_t, temperature=temperature, n=n)
    advantages = targets - temperature * kl_tm1 - v_tm1
    if stop_target_gradients:
        advantages = jax.lax.stop_gradient(advantages)
    return advantages


def _check_lambda(lambda_, steps: int):
    """λ as a Python number in [0, 1], or a scalar / `[T]` array (values unchecked)."""
    if _checks._python_number(lambda_) is not None:
        return _checks.check_in_interval(lambda_, name="lambda_", low=0.0, high=1.0)
    shape = jnp.shape(lambda_)
    if shape not in ((), (steps,)):
        raise ValueError(f"`lambda_` must be a scalar or have shape [T] = ({steps},), got {shape}.")
    return lambda_


def soft_lambda_returns(
    r_t: Array,
    discount_t: Array,
    v_t: Array,
    kl_t: Array,
    *,
    temperature: Scalar,
    lambda_: Scalar | Array,
    stop_target_gradients: bool = False,
) -> Array:
    r"""Soft λ-returns, the λ-mixture of the n-step soft targets [L1].

    $$G^\lambda_i = (1-\lambda)\sum_{n\ge1}\lambda^{n-1}y^{(n)}_i,$$

    with y^{(n)} the n-step soft targets of [E13] and the tail weight on the
    longest target the sequence holds. Computed backwards by

    $$G_i = r_i + \gamma_i\big[(1-\lambda_i)V(s_{i+1})
            + \lambda_i\big(G_{i+1} - \tau\,\mathrm{KL}(s_{i+1})\big)\big],\qquad
      G_{T-1} = r_{T-1} + \gamma_{T-1}V(s_T).$$

    λ = 0 gives the 1-step targets r_i + γ_i V(s_{i+1}); λ = 1 gives the n-step
    targets with n = T (each window runs to the end of the sequence or of its
    episode); temperature 0 gives `rlax.lambda_returns` exactly. Zero discounts
    (episode ends) cut every later term. As with rlax, λ may vary per step.

    Args:
      r_t: `[T]` rewards.
      discount_t: `[T]` discounts γ·(1 − terminal).
      v_t: `[T]` soft values V(s_{i+1}) to bootstrap from.
      kl_t: `[T]` KL(s_{i+1}) of the policy whose values `v_t` are.
      temperature: τ ≥ 0.
      lambda_: λ in [0, 1], a scalar or `[T]` (λ_i mixes at step i).
      stop_target_gradients: if True, no gradient flows through the result.

    Returns:
      `[T]` λ-returns G.

    Examples:
      >>> import jax.numpy as jnp
      >>> from softeq.core import soft_lambda_returns
      >>> r, g = jnp.array([1.0, 1.0]), jnp.array([0.5, 0.5])
      >>> v, kl = jnp.array([2.0, 4.0]), jnp.array([1.0, 1.0])
      >>> soft_lambda_returns(r, g, v, kl, temperature=0.5, lambda_=0.5).tolist()  # ½·2 + ½·2.25
      [2.125, 3.0]

    Reference: Sutton & Barto, "Reinforcement Learning: An Introduction"
    (2018), §12.1; arXiv:1704.06440, §3.5 for the soft n-step targets.
    """
    _check_stream(r_t=r_t, discount_t=discount_t, v_t=v_t, kl_t=kl_t)
    _checks.check_temperature(temperature, allow_zero=True)
    lambda_ = _check_lambda(lambda_, r_t.shape[0])
    lambdas = jnp.broadcast_to(jnp.asarray(lambda_, r_t.dtype), r_t.shape)
    if _checks._python_number(temperature) == 0.0:
        # a known zero temperature drops the KL terms outright (0·inf would be NaN).
        kl_terms = jnp.zeros_like(kl_t)
    else:
        kl_terms = temperature * kl_t
    returns = _lambda_recursion(r_t, discount_t, v_t, kl_terms, lambdas)
    if stop_target_gradients:
        returns = jax.lax.stop_gradient(returns)
    return returns


def soft_lambda_advantages(
    r_t: Array,
    discount_t: Array,
    v_tm1: Array,
    v_t: Array,
    kl_tm1: Array,
    kl_t: Array,
    *,
    temperature: Scalar,
    lambda_: Scalar | Array,
    stop_target_gradients: bool = True,
) -> Array:
    r"""Soft λ-advantages (soft GAE), the λ-mixture of the n-step soft advantages [L1], [E14].

    $$\Delta^\lambda_i = G^\lambda_i - \tau\,\mathrm{KL}(s_i) - V(s_i)
      = \sum_{d\ge0}\Big(\prod_{j<d}\gamma_{i+j}\lambda_{i+j}\Big)\,\delta_{i+d},$$

    with G^λ from `soft_lambda_returns` and δ the soft TD errors of [E11]; the
    second form holds when the values and KLs of the two streams agree
    (`v_t[i] = v_tm1[i + 1]`, `kl_t[i] = kl_tm1[i + 1]`). Temperature 0 gives
    `rlax.truncated_generalized_advantage_estimation`.

    Args:
      r_t: `[T]` rewards.
      discount_t: `[T]` discounts.
      v_tm1: `[T]` V(s_i).
      v_t: `[T]` V(s_{i+1}).
      kl_tm1: `[T]` KL(s_i).
      kl_t: `[T]` KL(s_{i+1}).
      temperature: τ ≥ 0.
      lambda_: λ in [0, 1], a scalar or `[T]`.
      stop_target_gradients: if True (default), the advantages are constants.

    Returns:
      `[T]` Δ^λ.

    Examples:
      >>> import jax.numpy as jnp
      >>> from softeq.core import soft_lambda_advantages
      >>> one = jnp.ones(1)
      >>> adv = soft_lambda_advantages(one, 0.5 * one, one, 2 * one, one, one,
      ...                              temperature=0.1, lambda_=0.9)
      >>> [round(x, 6) for x in adv.tolist()]  # one step: δ = 1 − 0.1 + 0.5·2 − 1
      [0.9]

    Reference: Schulman et al., "High-Dimensional Continuous Control Using
    Generalized Advantage Estimation", arXiv:1506.02438.
    """
    _check_stream(v_tm1=v_tm1, kl_tm1=kl_tm1, r_t=r_t)
    returns = soft_lambda_returns(
        r_t, discount_t, v_t, kl_t, temperature=temperature, lambda_=lambda_
    )
    if _checks._python_number(temperature) == 0.0:
        advantages = returns - v_tm1
    else:
        advantages = returns - temperature * kl_tm1 - v_tm1
    if stop_target_gradients:
        advantages = jax.lax.stop_gradient(advantages)
    return advantages


def bootstrap_truncations(
    r_t: Array,
    discount_t: Array,
    truncated_t: Array,
    v_final_t: Array,
) -> tuple[Array, Array]:
    r"""Folds the bootstrap of time-limit truncations into the rewards and cuts there.

    A time limit is not a terminal state (Pardo et al. 2018): the transition
    that hits it should still bootstrap, from the value of the episode's *last*
    observation, while the sequence that follows belongs to a new episode and
    must not be summed into its return. Both are obtained without touching any
    target or loss function by rewriting the stream:

    $$r'_i = r_i + \mathbb 1[\text{trunc}_i]\,\gamma_i\,V(s^{\text{final}}_{i+1}),\qquad
      \gamma'_i = \gamma_i\,(1 - \mathbb 1[\text{trunc}_i]).$$

    Every n-step target of [E13] (and every advantage, DQN target or λ-return
    built from the same recursion) computed on `(r', γ')` equals the one with a
    bootstrap from the final observation at the truncation and a cut after it:
    the truncated step contributes γ^d (r_i + γ_i V(s^final)) and nothing later.
    The first step of a soft target carries no KL term, so no KL of the final
    state appears (V is the soft value, which already holds it).

    Args:
      r_t: `[T]` rewards.
      discount_t: `[T]` discounts γ·(1 − terminated): the discount the
        transition would have without the time limit (0 if it also terminated,
        which then wins: no bootstrap).
      truncated_t: `[T]` 1.0 (or True) where the episode was cut by a time
        limit at this transition, else 0.
      v_final_t: `[T]` value of the final observation of the finished episode,
        V(s^final_{i+1}); read only where `truncated_t` is set (any finite value
        elsewhere). Treated as a constant (no gradient flows into it).

    Returns:
      `(r'_t [T], discount'_t [T])`.

    Examples:
      >>> import jax.numpy as jnp
      >>> from softeq.core import bootstrap_truncations
      >>> r, g = jnp.array([1.0, 1.0]), jnp.array([0.5, 0.5])
      >>> trunc, v_final = jnp.array([1.0, 0.0]), jnp.array([4.0, 9.0])
      >>> r2, g2 = bootstrap_truncations(r, g, trunc, v_final)
      >>> r2.tolist(), g2.tolist()  # 1 + 0.5·4 at the truncation, which cuts
      ([3.0, 1.0], [0.0, 0.5])

    Reference: Pardo, Tavakoli, Levdik & Kormushev, "Time Limits in
    Reinforcement Learning", ICML 2018.
    """
    _check_stream(r_t=r_t, discount_t=discount_t, v_final_t=v_final_t)
    _checks.check_rank(truncated_t, 1, name="truncated_t")
    _checks.check_same_leading({"r_t": r_t, "truncated_t": truncated_t})
    cut = jnp.asarray(truncated_t).astype(r_t.dtype)
    bootstrap = cut * discount_t * jax.lax.stop_gradient(v_final_t)
    # where() rather than a product keeps an unused non-finite v_final out of r'.
    r_out = jnp.where(cut > 0, r_t + bootstrap, r_t)
    return r_out, discount_t * (1 - cut)
