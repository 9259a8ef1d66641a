r"""Soft actor-critic for discrete actions: critic targets, actor loss, automatic temperature.

Discrete SAC (Christodoulou 2019) keeps two critics q_1, q_2 with target
copies q̄_1, q̄_2, an actor π and a temperature α ([S1]–[S2]). With a finite
action set every expectation over actions is a sum, so nothing is sampled:

$$y = r + \gamma\sum_{a'}\pi(a'|s')\big[\min_j\bar q_j(s',a') - \alpha\ln\pi(a'|s')\big],\qquad
  L_\pi = \mathbb{E}_s\sum_a\pi(a|s)\big[\alpha\ln\pi(a|s) - \min_j q_j(s,a)\big].$$

The actor loss is minus the soft value of π under the entropy convention
(π̄ ≡ 1): by the Gibbs identity [E4] its minimiser over the simplex is the
Boltzmann policy softmax(min_j q_j/α), where it equals −α logsumexp(min_j q_j/α).
The temperature follows the entropy of π toward a target H̄ = ρ ln|A|.

The temperature α of the SAC papers is the keyword `temperature`, as
everywhere in softeq. The leading axis `[T]` may be a trajectory or a replay
batch of transitions.

Reference: P. Christodoulou, "Soft Actor-Critic for Discrete Action
Settings", arXiv:1910.07207; T. Haarnoja et al., "Soft Actor-Critic
Algorithms and Applications", arXiv:1812.05905 (automatic temperature).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp

from softeq.core import _checks

Array = chex.Array
Scalar = float | chex.Array


def _check_rows(**arrays):
    for name, array in arrays.items():
        _checks.check_float(_checks.check_rank(array, 2, name=name), name=name)
    first_name, first = next(iter(arrays.items()))
    for name, array in arrays.items():
        if array.shape != first.shape:
            raise ValueError(
                f"`{name}` must have the shape of `{first_name}` {tuple(first.shape)}, "
                f"got {tuple(array.shape)}."
            )


def _check_weights(w_t, steps: int):
    if w_t is None:
        return None
    _checks.check_rank(w_t, 1, name="w_t")
    if jnp.shape(w_t)[0] != steps:
        raise ValueError(f"`w_t` must have shape [T] = ({steps},), got {jnp.shape(w_t)}.")
    return w_t


def _weighted_mean(per_step: Array, w_t) -> Array:
    """rlax's convention: the mean over steps of the per-step value times its weight."""
    return jnp.mean(per_step if w_t is None else per_step * w_t)


def _entropy_soft_values(q: Array, log_pi: Array, temperature) -> Array:
    """Σ_a π(a)[q(a) − α ln π(a)] per row; actions with π(a) = 0 contribute 0."""
    pi = jnp.exp(log_pi)
    return jnp.sum(jnp.where(pi > 0, pi * (q - temperature * log_pi), 0.0), axis=-1)


def sac_critic_targets(
    r_t: Array,
    discount_t: Array,
    q1_t: Array,
    q2_t: Array,
    logits_t: Array,
    *,
    temperature: Scalar,
) -> Array:
    r"""Discrete-SAC critic targets with clipped double Q [S1].

    $$y_i = r_i + \gamma_i\sum_{a'}\pi(a'|s_{i+1})\big[\min\big(\bar q_1(s_{i+1},a'),
            \bar q_2(s_{i+1},a')\big) - \alpha\ln\pi(a'|s_{i+1})\big].$$

    The expectation over the next action is exact (a sum over A), the
    minimum of the two target critics curbs over-estimation (Fujimoto et al.
    2018). When π is the Boltzmann policy softmax(min q̄/α) this is the
    entropy-bonus soft DQN target of min q̄ (`soft_dqn_targets`,
    `mode="soft-entropy"`). Both critics' regressions use the same y; the
    result carries no gradient.

    Args:
      r_t: `[T]` rewards.
      discount_t: `[T]` discounts γ·(1 − terminal).
      q1_t: `[T, A]` first target critic q̄_1(s_{i+1}, ·).
      q2_t: `[T, A]` second target critic q̄_2(s_{i+1}, ·) (pass `q1_t` again for one critic).
      logits_t: `[T, A]` actor logits at s_{i+1}.
      temperature: α ≥ 0 (may be a traced value, e.g. `TemperatureState.temperature`).

    Returns:
      `[T]` targets y.

    Examples:
      >>> import jax.numpy as jnp
      >>> from softeq.core import sac_critic_targets
      >>> q1, q2 = jnp.array([[1.0, 4.0]]), jnp.array([[2.0, 2.0]])  # min = (1, 2)
      >>> y = sac_critic_targets(jnp.zeros(1), jnp.ones(1), q1, q2, jnp.zeros((1, 2)),
      ...                        temperature=1.0)
      >>> round(float(y[0]), 4)  # ½·1 + ½·2 + log 2
      2.1931

    Reference: Christodoulou, arXiv:1910.07207, eq. (10).
    """
    for name, x in (("r_t", r_t), ("discount_t", discount_t)):
        _checks.check_float(_checks.check_rank(x, 1, name=name), name=name)
    _check_rows(q1_t=q1_t, q2_t=q2_t, logits_t=logits_t)
    _checks.check_same_leading({"r_t": r_t, "discount_t": discount_t, "q1_t": q1_t})
    _checks.check_temperature(temperature, allow_zero=True)
    q_min = jnp.minimum(q1_t, q2_t)
    log_pi = jax.nn.log_softmax(logits_t)
    v_t = _entropy_soft_values(q_min, log_pi, temperature)
    return jax.lax.stop_gradient(r_t + discount_t * v_t)


def sac_actor_loss(
    logits_tm1: Array,
    q1_tm1: Array,
    q2_tm1: Array,
    *,
    temperature: Scalar,
    w_t: Array | None = None,
) -> Array:
    r"""Discrete-SAC actor loss, an exact expectation over actions [S1].

    $$L_\pi = \frac1T\sum_i w_i\sum_a\pi(a|s_i)\big[\alpha\ln\pi(a|s_i)
              - \min\big(q_1(s_i,a), q_2(s_i,a)\big)\big].$$

    It is −`policy_soft_value`(min q, ln π, temperature=α, log_prior="entropy")
    averaged over states, so by the Gibbs identity [E4] it is minimised over
    the simplex by π = softmax(min q/α), where it equals −α logsumexp(min q/α).
    Gradients flow into the logits only: the critics and α are held fixed.

    Args:
      logits_tm1: `[T, A]` actor logits at s_i, differentiated.
      q1_tm1: `[T, A]` first online critic q_1(s_i, ·).
      q2_tm1: `[T, A]` second online critic q_2(s_i, ·) (pass `q1_tm1` again for one critic).
      temperature: α ≥ 0 (held fixed).
      w_t: `[T]` per-state weights (e.g. importance weights or a mask), or None for ones;
        the loss is the mean over i of w_i times the per-state loss, as in rlax.

    Returns:
      `[]` the loss.

    Examples:
      >>> import jax.numpy as jnp
      >>> from softeq.core import sac_actor_loss
      >>> q = jnp.array([[0.0, jnp.log(3.0)]])
      >>> loss = sac_actor_loss(q, q, q, temperature=1.0)  # π = softmax(q): the minimiser
      >>> round(float(loss), 4)  # −log(1 + 3)
      -1.3863

    Reference: Christodoulou, arXiv:1910.07207, eq. (12).
    """
    _check_rows(logits_tm1=logits_tm1, q1_tm1=q1_tm1, q2_tm1=q2_tm1)
    _checks.check_temperature(temperature, allow_zero=True)
    w_t = _check_weights(w_t, logits_tm1.shape[0])
    q_min = jax.lax.stop_gradient(jnp.minimum(q1_tm1, q2_tm1))
    alpha = jax.lax.stop_gradient(temperature)
    log_pi = jax.nn.log_softmax(logits_tm1)
    return -_weighted_mean(_entropy_soft_values(q_min, log_pi, alpha), w_t)


class TemperatureState(NamedTuple):
    """State of the automatic temperature [S2].

    Attributes:
      log_temperature: `[]` ln α, the parameter that is optimised.
    """

    log_temperature: Array

    @property
    def temperature(self) -> Array:
        """`[]` α = exp(ln α)."""
        return jnp.exp(self.log_temperature)


class AutoTemperature(NamedTuple):
    """An optax-style pair of pure functions, returned by `auto_temperature`.

    Attributes:
      init: `init() -> TemperatureState`, the starting state.
      update: `update(state, logits_tm1, w_t=None) -> (new_state, loss)`, one
        gradient step on ln α from the actor's logits `[T, A]`.
    """

    init: Callable[[], TemperatureState]
    update: Callable[..., tuple[TemperatureState, Array]]


def _check_target_entropy_ratio(ratio) -> None:
    value = _checks._python_number(ratio)
    if value is not None and not 0.0 < value < 1.0:
        raise ValueError(
            f"`target_entropy_ratio` must lie in (0, 1) (the target entropy is ratio·ln|A| and "
            f"ln|A| is reached only by the uniform policy, at α = ∞: a ratio of 1 or more "
            f"makes α grow without bound, 0 or less makes it fall to 0), got {ratio!r}."
        )


def auto_temperature_loss(
    log_temperature: Array,
    logits_tm1: Array,
    *,
    target_entropy_ratio: Scalar,
    w_t: Array | None = None,
) -> Array:
    r"""The automatic-temperature objective in ln α [S2], with the entropies held fixed.

    $$J(\ln\alpha) = \frac1T\sum_i w_i\,\ln\alpha\,\big(H(\pi(\cdot|s_i)) - \bar H\big),
      \qquad \bar H = \rho\ln|A|,$$

    so ∂J/∂ln α = mean of w_i (H_i − H̄): descending it lowers α while the
    policy's entropy is above the target and raises it below; the gradient
    vanishes exactly at H = H̄. (The α-form J(α) = α(H − H̄) of Haarnoja et al.
    has gradient α(H − H̄) in ln α: the same sign and stationary point, with a
    step that shrinks with α.) Take `jax.grad` of this to drive ln α with any
    optimiser (e.g. Adam from optax); `auto_temperature` applies a plain
    gradient step itself.

    Args:
      log_temperature: `[]` ln α, differentiated.
      logits_tm1: `[T, A]` the actor's logits at the batch states (no gradient flows into them).
      target_entropy_ratio: ρ in (0, 1); published choices are 0.98 (Christodoulou)
        and 0.89 (CleanRL). High ratios are the usual cause of a runaway α.
      w_t: `[T]` per-state weights, or None for ones.

    Returns:
      `[]` J.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from softeq.core import auto_temperature_loss
      >>> logits = jnp.zeros((1, 2))  # H = ln 2, target 0.5·ln 2
      >>> g = jax.grad(auto_temperature_loss)(0.0, logits, target_entropy_ratio=0.5)
      >>> round(float(g), 4)  # ½ ln 2 > 0: α falls
      0.3466

    Reference: Haarnoja et al., arXiv:1812.05905, eq. (18); Christodoulou,
    arXiv:1910.07207, eq. (11).
    """
    _checks.check_rank(log_temperature, 0, name="log_temperature")
    gaps = _entropy_gaps(logits_tm1, target_entropy_ratio, w_t)
    return _weighted_mean(log_temperature * gaps, w_t)


def _entropy_gaps(logits_tm1: Array, target_entropy_ratio, w_t) -> Array:
    """`[T]` H(π(·|s_i)) − ρ ln|A|, held fixed, after checking the arguments."""
    _checks.check_float(_checks.check_rank(logits_tm1, 2, name="logits_tm1"), name="logits_tm1")
    _check_target_entropy_ratio(target_entropy_ratio)
    _check_weights(w_t, logits_tm1.shape[0])
    log_pi = jax.nn.log_softmax(jax.lax.stop_gradient(logits_tm1))
    entropies = -jnp.sum(jnp.where(log_pi > -jnp.inf, jnp.exp(log_pi) * log_pi, 0.0), axis=-1)
    return entropies - target_entropy_ratio * math.log(logits_tm1.shape[-1])


def auto_temperature(
    *,
    target_entropy_ratio: Scalar,
    learning_rate: Scalar,
    initial_temperature: Scalar = 1.0,
) -> AutoTemperature:
    r"""Automatic temperature as an optax-style `(init, update)` pair [S2].

    `update` takes one plain gradient step on ln α of `auto_temperature_loss`:

    $$\ln\alpha \leftarrow \ln\alpha
      - \eta\,\frac1T\sum_i w_i\big(H(\pi(\cdot|s_i)) - \rho\ln|A|\big),$$

    i.e. α is multiplied by exp(−η·gap). For a policy that follows the
    critic, π = softmax(q/α), the entropy increases with α, so each step
    moves the entropy toward the target; a state is stationary exactly when
    the (weighted) mean entropy equals ρ ln|A|. To use another optimiser,
    differentiate `auto_temperature_loss` and apply its update instead.

    Args:
      target_entropy_ratio: ρ in (0, 1); H̄ = ρ ln|A| with |A| read from the logits.
      learning_rate: η > 0, the step on ln α per nat of entropy gap.
      initial_temperature: α at `init()`, > 0.

    Returns:
      `AutoTemperature(init, update)`: `init() -> TemperatureState` and
      `update(state, logits_tm1, w_t=None) -> (new_state, loss)`, both pure
      (jit them, or call them inside a jitted step).

    Examples:
      >>> import jax.numpy as jnp
      >>> from softeq.core import auto_temperature
      >>> init, update = auto_temperature(target_entropy_ratio=0.5, learning_rate=0.1)
      >>> state, loss = update(init(), jnp.zeros((1, 2)))  # H = ln 2 above ½ ln 2
      >>> round(float(state.temperature), 4)  # exp(−0.1 · ½ ln 2)
      0.9659

    Reference: Haarnoja et al., arXiv:1812.05905, §5; Christodoulou,
    arXiv:1910.07207, §3.
    """
    _check_target_entropy_ratio(target_entropy_ratio)
    rate = _checks._python_number(learning_rate)
    if rate is not None and not (rate > 0.0 and math.isfinite(rate)):
        raise ValueError(f"`learning_rate` must be a finite number > 0, got {learning_rate!r}.")
    _checks.check_temperature(initial_temperature, name="initial_temperature")

    def init() -> TemperatureState:
        return TemperatureState(jnp.log(jnp.asarray(initial_temperature, dtype=float)))

    def update(
        state: TemperatureState, logits_tm1: Array, w_t: Array | None = None
    ) -> tuple[TemperatureState, Array]:
        gaps = _entropy_gaps(logits_tm1, target_entropy_ratio, w_t)
        # the loss is linear in ln α, so its gradient is the mean gap (no autodiff needed).
        gradient = _weighted_mean(gaps, w_t)
        loss = state.log_temperature * gradient
        return TemperatureState(state.log_temperature - learning_rate * gradient), loss

    return AutoTemperature(init, update)
