"""Per-state quantities of entropy regularisation: soft values, Boltzmann policies, KL.

These are the bandit-level objects of paper §2 ([E1]–[E8], derived on the
Bandit page of the documentation). Each function takes one state's `[A]` vector; batch with
`jax.vmap`. The reference policy π̄ enters as `log_prior` (log π̄, `[A]`);
`None` means the uniform prior 1/A, and `log_prior = 0` means π̄ ≡ 1, which
turns the KL penalty into the plain entropy bonus.

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


def soft_value(q: Array, *, temperature: Scalar, log_prior: Array | None = None) -> Array:
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
      log_prior: `[A]` log π̄, or None for the uniform prior.

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


def boltzmann_log_policy(q: Array, *, temperature: Scalar, log_prior: Array | None = None) -> Array:
    r"""Log-probabilities of the Boltzmann policy of a score vector [E2], paper eq. 2.

    $$\log\pi^B_q(a) = \log\bar\pi(a) + \frac{q(a) - v_q}{\tau}.$$

    Args:
      q: `[A]` float scores.
      temperature: τ > 0, scalar.
      log_prior: `[A]` log π̄, or None for the uniform prior.

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


def boltzmann_kl(q: Array, *, temperature: Scalar, log_prior: Array | None = None) -> Array:
    r"""KL of a score vector's Boltzmann policy to the prior, KL(s) of [E9].

    $$\mathrm{KL}[\pi^B_q\|\bar\pi] = \frac{\mathbb{E}_{\pi^B_q}[q] - v_q}{\tau}.$$

    Args:
      q: `[A]` float scores.
      temperature: τ > 0, scalar.
      log_prior: `[A]` log π̄, or None for the uniform prior.

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


def policy_kl(logits: Array, log_prior: Array | None = None) -> Array:
    r"""KL of the softmax policy of `logits` to the prior, KL(s) of [E9].

    Args:
      logits: `[A]` unnormalised log-probabilities of π.
      log_prior: `[A]` log π̄, or None for the uniform prior.

    Returns:
      `[]` KL[softmax(logits) ‖ π̄].

    Examples:
      >>> import jax.numpy as jnp
      >>> from softeq.core import policy_kl
      >>> print(round(float(policy_kl(jnp.zeros(4), log_prior=jnp.zeros(4))), 4))  # −H = −log 4
      -1.3863
    """
    logits = _checks.check_float(_checks.check_rank(logits, 1, name="logits"), name="logits")
    log_prior = _checks.resolve_log_prior(log_prior, logits.shape[-1], logits.dtype)
    return kl_divergence(jax.nn.log_softmax(logits), log_prior)


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
