r"""The natural-gradient view of damped soft Q-learning (paper §5, [E17]–[E18]).

Natural policy gradient as least squares [E17]: with Ψ the `[N, P]` rows
∇_θ log π_θ(a_t|s_t) and b the `[N]` regularised advantages,

$$w = \arg\min_w\|\Psi w - b\|^2 = \hat F^{-1}\hat g,\quad
  \hat F = \Psi^\top\Psi/N,\ \hat g = \Psi^\top b/N.$$

Damped soft Q-learning [E18] regresses Q_θ = V + τ log(π_θ/π̄) (V held fixed)
on Q̂^ε = (1 − ε)Q_old + εy; its squared error equals τ² times the squared
error of log π_θ − log π_old − (ε/τ)b, so its Gauss–Newton step is the natural
gradient step (ε/τ)F̂⁻¹ĝ.
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp

from softeq.core import _checks

Array = chex.Array
Scalar = float | chex.Array


def damped_soft_q_targets(q_old_tm1: Array, targets: Array, *, epsilon: Scalar) -> Array:
    r"""Damped soft Q-learning targets Q̂^ε = (1 − ε)Q_old(s,a) + ε y [E18].

    Args:
      q_old_tm1: `[T]` Q_old(s_i, a_i) of the parameters before the step.
      targets: `[T]` soft targets y_i.
      epsilon: damping ε in (0, 1].

    Returns:
      `[T]` damped targets (no gradient flows through them).

    Examples:
      >>> import jax.numpy as jnp
      >>> from softeq.core import damped_soft_q_targets
      >>> damped_soft_q_targets(jnp.array([0.0]), jnp.array([4.0]), epsilon=0.25).tolist()
      [1.0]
    """
    _checks.check_rank(q_old_tm1, 1, name="q_old_tm1")
    _checks.check_rank(targets, 1, name="targets")
    _checks.check_same_leading({"q_old_tm1": q_old_tm1, "targets": targets})
    value = _checks._python_number(epsilon)
    if value is not None and not 0.0 < value <= 1.0:
        raise ValueError(f"`epsilon` must lie in (0, 1], got {epsilon!r}.")
    return jax.lax.stop_gradient((1.0 - epsilon) * q_old_tm1 + epsilon * targets)


def regularised_npg_advantages(
    adv_t: Array, log_pi_old_tm1: Array, log_prior_tm1: Array, kl_tm1: Array, *, temperature: Scalar
) -> Array:
    r"""Advantages b of the entropy-regularised natural policy gradient [E17].

    $$b_i = \Delta_i - \tau\Big(\log\frac{\pi_{\text{old}}(a_i|s_i)}{\bar\pi(a_i|s_i)}
            - \mathrm{KL}(s_i)\Big).$$

    Args:
      adv_t: `[T]` soft advantages Δ.
      log_pi_old_tm1: `[T]` log π_old(a_i|s_i) of the taken actions.
      log_prior_tm1: `[T]` log π̄(a_i|s_i) of the taken actions.
      kl_tm1: `[T]` KL(s_i) of π_old.
      temperature: τ ≥ 0.

    Returns:
      `[T]` b.

    Examples:
      >>> import jax.numpy as jnp
      >>> from softeq.core import regularised_npg_advantages
      >>> one = jnp.ones(1)
      >>> regularised_npg_advantages(one, 0 * one, 0 * one, one, temperature=0.5).tolist()
      [1.5]
    """
    arrays = {
        "adv_t": adv_t,
        "log_pi_old_tm1": log_pi_old_tm1,
        "log_prior_tm1": log_prior_tm1,
        "kl_tm1": kl_tm1,
    }
    for name, x in arrays.items():
        _checks.check_rank(x, 1, name=name)
    _checks.check_same_leading(arrays)
    _checks.check_temperature(temperature, allow_zero=True)
    return adv_t - temperature * (log_pi_old_tm1 - log_prior_tm1 - kl_tm1)


def natural_gradient_direction(
    score_rows: Array, advantages: Array, *, damping: Scalar = 0.0
) -> Array:
    r"""Least-squares natural gradient w = (F̂ + λI)⁻¹ĝ [E17].

    Args:
      score_rows: `[N, P]` Ψ, one row ∇_θ log π_θ(a_i|s_i) per sample.
      advantages: `[N]` b.
      damping: λ ≥ 0 added to the diagonal of F̂ = ΨᵀΨ/N (0 gives the
        minimum-norm least-squares solution).

    Returns:
      `[P]` w.

    Examples:
      >>> import jax.numpy as jnp
      >>> from softeq.core import natural_gradient_direction
      >>> natural_gradient_direction(jnp.eye(2), jnp.array([1.0, 2.0])).tolist()
      [1.0, 2.0]
    """
    _checks.check_rank(score_rows, 2, name="score_rows")
    _checks.check_rank(advantages, 1, name="advantages")
    _checks.check_same_leading({"score_rows": score_rows, "advantages": advantages}, axis_name="N")
    _checks.check_non_negative_finite(damping, name="damping")
    n, p = score_rows.shape
    # ridge regression as one stacked least-squares problem: min ‖Ψw − b‖² + Nλ‖w‖²
    # is solved by (F̂ + λI)⁻¹ĝ, and by the minimum-norm solution at λ = 0, traced or not.
    rows = jnp.concatenate([score_rows, jnp.sqrt(n * damping) * jnp.eye(p, dtype=score_rows.dtype)])
    rhs = jnp.concatenate([advantages, jnp.zeros((p,), advantages.dtype)])
    solution, *_ = jnp.linalg.lstsq(rows, rhs)
    return solution
