"""Per-state quantities of entropy regularisation: soft values, Boltzmann policies, KL.

These are the bandit-level objects of paper §2 ([E1]–[E8], derived on the
Bandit page of the documentation). Each function takes one state's `[A]` vector; batch with
`jax.vmap`. The reference policy π̄ enters as `log_prior` (log π̄, `[A]`).
Two conventions have names (`LOG_PRIOR_CONVENTIONS`), accepted by every
function of softeq.core that takes `log_prior`:

- `"uniform"` (also `None`, the default): π̄ = 1/A, the penalty is the KL
  divergence to uniform, log A − H(π);
- `"entropy"` (also `log_prior = 0`): π̄ ≡ 1, the penalty is −H(π), the plain
  entropy bonus of most published code.

They differ by the constant τ log A per step, which changes learning.

Reference: Schulman, Chen & Abbeel, "Equivalence Between Policy Gradients and
Soft Q-Learning", arXiv:1704.06440, §2.
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp

from softeq.core import _checks

Array = chex.Array
Scalar = float | chex.Array

LOG_PRIOR_CONVENTIONS: tuple[str, ...] = _checks.PRIOR_CONVENTIONS
"""Names accepted by `log_prior` for the two standard reference policies.

`"uniform"`: π̄ = 1/A (the same as `None`), so the penalty τ KL[π‖π̄] is the KL
to uniform, τ(log A − H(π)). `"entropy"`: π̄ ≡ 1 (the same as zeros), so the
penalty is −τ H(π): the entropy bonus used by soft DQN, SAC and Munchausen
code. The soft values of the two differ by τ log A; targets by γτ log A per
step (paper §6.2).
"""


def soft_value(q: Array, *, temperature: Scalar, log_prior: Array | str | None = None) -> Array:
    r"""Soft value (log-partition) of a score vector [E3], paper eq. 10–12.

    $$v_q = \tau \log \mathbb{E}_{a\sim\bar\pi}\big[e^{q(a)/\tau}\big]
          = \tau\,\mathrm{logsumexp}(q/\tau + \log\bar\pi).$$

    It is the maximum over policies of $\mathbb{E}_\pi[q] - \tau\,\mathrm{KL}[\pi\|\bar\pi]$
    [E4], and lies between $\max_a q + \tau\log\bar\pi(a^*)$ and $\max_a q$ [E12].
    Computed with a max-shift, so it stays finite for $|q|/\tau$ up to about 1e30
    in float32.

    Args:
      q: `[A]` float scores (Q-values of one state).
      temperature: τ > 0, scalar.
      log_prior: `[A]` log π̄; None or "uniform" for the uniform prior, "entropy" for π̄ ≡ 1.

    Returns:
      `[]` the soft value, same dtype as `q`.

    Examples:
      >>> import jax.numpy as jnp
      >>> from softeq.core import soft_value
      >>> q = jnp.array([1.0, 2.0])
      >>> print(round(float(soft_value(q, temperature=1.0, log_prior=jnp.zeros(2))), 4))
      2.3133

    Reference: arXiv:1704.06440, eq. 10–12.
    """
    q = _checks.check_float(_checks.check_rank(q, 1, name="q"), name="q")
    _checks.check_temperature(temperature)
    log_prior = _checks.resolve_log_prior(log_prior, q.shape[-1], q.dtype)
    return temperature * jax.nn.logsumexp(q / temperature + log_prior)


def boltzmann_log_policy(
    q: Array, *, temperature: Scalar, log_prior: Array | str | None = None
) -> Array:
    r"""Log-probabilities of the Boltzmann policy of a score vector [E2], paper eq. 2.

    $$\log\pi^B_q(a) = \log\bar\pi(a) + \frac{q(a) - v_q}{\tau}.$$

    Args:
      q: `[A]` float scores.
      temperature: τ > 0, scalar.
      log_prior: `[A]` log π̄; None or "uniform" for the uniform prior, "entropy" for π̄ ≡ 1.

    Returns:
      `[A]` normalised log-probabilities.

    Examples:
      >>> import jax.numpy as jnp
      >>> from softeq.core import boltzmann_log_policy
      >>> p = jnp.exp(boltzmann_log_policy(jnp.array([0.0, jnp.log(3.0)]), temperature=1.0))
      >>> print([round(float(x), 4) for x in p])
      [0.25, 0.75]

    Reference: arXiv:1704.06440, eq. 2 and 12.
    """
    q = _checks.check_float(_checks.check_rank(q, 1, name="q"), name="q")
    _checks.check_temperature(temperature)
    log_prior = _checks.resolve_log_prior(log_prior, q.shape[-1], q.dtype)
    return jax.nn.log_softmax(q / temperature + log_prior)


def kl_divergence(log_p: Array, log_q: Array) -> Array:
    r"""KL divergence between two categorical distributions given as log-weights.

    $$\mathrm{KL}[p\|q] = \sum_a p(a)\,(\log p(a) - \log q(a)).$$

    `log_p` must be normalised; `log_q` need not be: with `log_q = 0` (π̄ ≡ 1)
    the result is the negative entropy of p, the convention under which the KL
    penalty is the plain entropy bonus. Terms with p(a) = 0 contribute 0.

    Args:
      log_p: `[A]` normalised log-probabilities of p.
      log_q: `[A]` log-weights of q.

    Returns:
      `[]` KL[p‖q].

    Examples:
      >>> import jax.numpy as jnp
      >>> from softeq.core import kl_divergence
      >>> log_p = jnp.log(jnp.array([0.5, 0.5]))
      >>> print(round(float(kl_divergence(log_p, jnp.log(jnp.array([0.25, 0.75])))), 4))
      0.1438
    """
    log_p = _checks.check_float(_checks.check_rank(log_p, 1, name="log_p"), name="log_p")
    log_q = _checks.check_rank(log_q, 1, name="log_q")
    _checks.check_last_dim(log_q, log_p.shape[-1], name="log_q", expected_from="`log_p`")
    p = jnp.exp(log_p)
    # where p = 0 the product p·(log p − log q) is 0 even if log p = −inf.
    return jnp.sum(jnp.where(p > 0, p * (log_p - log_q), 0.0))


def boltzmann_kl(q: Array, *, temperature: Scalar, log_prior: Array | str | None = None) -> Array:
    r"""KL of a score vector's Boltzmann policy to the prior, KL(s) of [E9].

    $$\mathrm{KL}[\pi^B_q\|\bar\pi] = \frac{\mathbb{E}_{\pi^B_q}[q] - v_q}{\tau}.$$

    Args:
      q: `[A]` float scores.
      temperature: τ > 0, scalar.
      log_prior: `[A]` log π̄; None or "uniform" for the uniform prior, "entropy" for π̄ ≡ 1.

    Returns:
      `[]` the KL divergence (≥ 0 for a normalised prior).

    Examples:
      >>> import jax.numpy as jnp
      >>> from softeq.core import boltzmann_kl
      >>> print(round(float(boltzmann_kl(jnp.zeros(3), temperature=0.5)), 6))
      0.0
    """
    q = _checks.check_float(_checks.check_rank(q, 1, name="q"), name="q")
    log_prior = _checks.resolve_log_prior(log_prior, q.shape[-1], q.dtype)
    log_pi = boltzmann_log_policy(q, temperature=temperature, log_prior=log_prior)
    return kl_divergence(log_pi, log_prior)


def policy_kl(logits: Array, log_prior: Array | str | None = None) -> Array:
    r"""KL of the softmax policy of `logits` to the prior, KL(s) of [E9].

    $$\mathrm{KL}[\pi\|\bar\pi] = \sum_a \pi(a)\,\big(\log\pi(a) - \log\bar\pi(a)\big),
      \qquad \pi = \mathrm{softmax}(\text{logits}).$$

    Warning: with `log_prior="entropy"` (or zeros) π̄ ≡ 1 is not a
    distribution and the result is **minus the entropy**, −H(π) ≤ 0, not a
    divergence: it is the penalty of the entropy-bonus convention. For the
    entropy itself use `policy_entropy`.

    Args:
      logits: `[A]` unnormalised log-probabilities of π.
      log_prior: `[A]` log π̄; None or "uniform" for the uniform prior, "entropy" for π̄ ≡ 1.

    Returns:
      `[]` KL[softmax(logits) ‖ π̄] (−H(π) for π̄ ≡ 1).

    Examples:
      >>> import jax.numpy as jnp
      >>> from softeq.core import policy_kl
      >>> print(round(float(policy_kl(jnp.zeros(4), log_prior=jnp.zeros(4))), 4))  # −H = −log 4
      -1.3863
    """
    logits = _checks.check_float(_checks.check_rank(logits, 1, name="logits"), name="logits")
    log_prior = _checks.resolve_log_prior(log_prior, logits.shape[-1], logits.dtype)
    return kl_divergence(jax.nn.log_softmax(logits), log_prior)


def policy_entropy(logits: Array) -> Array:
    r"""Entropy of the softmax policy of `logits`.

    $$H(\pi) = -\sum_a \pi(a)\log\pi(a),\qquad \pi = \mathrm{softmax}(\text{logits}),$$

    between 0 (deterministic) and log A (uniform). It equals
    −`policy_kl(logits, "entropy")` and log A − `policy_kl(logits, "uniform")`.
    The discrete-SAC temperature update [S2] drives it toward its target.

    Args:
      logits: `[A]` unnormalised log-probabilities of π.

    Returns:
      `[]` H(π) ≥ 0.

    Examples:
      >>> import jax.numpy as jnp
      >>> from softeq.core import policy_entropy
      >>> print(round(float(policy_entropy(jnp.zeros(4))), 4))  # log 4
      1.3863
    """
    logits = _checks.check_float(_checks.check_rank(logits, 1, name="logits"), name="logits")
    return -kl_divergence(jax.nn.log_softmax(logits), jnp.zeros_like(logits))


def policy_soft_value(
    q: Array, log_pi: Array, *, temperature: Scalar, log_prior: Array | str | None = None
) -> Array:
    r"""Soft value of an arbitrary policy in one state, [E4] and [E9] (paper eq. 26).

    $$V^\pi_q = \mathbb{E}_{a\sim\pi}[q(a)] - \tau\,\mathrm{KL}[\pi\|\bar\pi]
              = v_q - \tau\,\mathrm{KL}[\pi\|\pi^B_q].$$

    With q = Q_π(s, ·) this is V_π(s) of [E9]; the Gibbs identity [E4] (second
    form) shows it never exceeds the soft value `soft_value(q)` and reaches
    it only at the Boltzmann policy. With `log_prior="entropy"` it is
    E_π q + τ H(π), minus the discrete-SAC actor loss of one state [S1].
    Temperature 0 is allowed (the expected score E_π q).

    Args:
      q: `[A]` float scores (Q-values of one state).
      log_pi: `[A]` normalised log-probabilities of π (e.g. `jax.nn.log_softmax(logits)`);
        −inf where π(a) = 0 is allowed.
      temperature: τ ≥ 0, scalar.
      log_prior: `[A]` log π̄; None or "uniform" for the uniform prior, "entropy" for π̄ ≡ 1.

    Returns:
      `[]` E_π q − τ KL[π‖π̄].

    Examples:
      >>> import jax.numpy as jnp
      >>> from softeq.core import policy_soft_value
      >>> log_pi = jnp.log(jnp.array([0.5, 0.5]))
      >>> v = policy_soft_value(jnp.array([1.0, 3.0]), log_pi, temperature=1.0, log_prior="entropy")
      >>> print(round(float(v), 4))  # 2 + log 2
      2.6931

    Reference: arXiv:1704.06440, eq. 13 and 26.
    """
    q = _checks.check_float(_checks.check_rank(q, 1, name="q"), name="q")
    log_pi = _checks.check_float(_checks.check_rank(log_pi, 1, name="log_pi"), name="log_pi")
    _checks.check_last_dim(log_pi, q.shape[-1], name="log_pi", expected_from="`q`")
    _checks.check_temperature(temperature, allow_zero=True)
    log_prior = _checks.resolve_log_prior(log_prior, q.shape[-1], q.dtype)
    pi = jnp.exp(log_pi)
    # where π(a) = 0 the score may be anything (even ±inf) without changing E_π q.
    expected_q = jnp.sum(jnp.where(pi > 0, pi * q, 0.0))
    if _checks._python_number(temperature) == 0.0:
        return expected_q  # a known zero drops the KL outright (0·inf would be NaN).
    return expected_q - temperature * kl_divergence(log_pi, log_prior)


def scale_gradient(x: Array, scale: Scalar) -> Array:
    r"""Identity in the forward pass; multiplies the gradient flowing into `x` by `scale`.

    $$f(x) = x,\qquad \partial f/\partial x = \text{scale}.$$

    Used by the A2C-matched soft Q-learner [E16] to weight its advantage and
    value streams.

    Args:
      x: any array.
      scale: scalar gradient multiplier.

    Returns:
      `x`, with its gradient scaled.

    Examples:
      >>> import jax
      >>> from softeq.core import scale_gradient
      >>> print(float(jax.grad(lambda x: scale_gradient(x, 3.0) ** 2)(1.0)))
      6.0
    """
    held = jax.lax.stop_gradient(x)
    # written so the forward value is exactly x, with no rounding from the scale.
    return held + scale * (x - held)
