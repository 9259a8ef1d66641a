"""Numerical extremes: soft values, policies, KLs, targets, losses and gradients stay finite.

Q-values up to ±1e6, temperatures from 1e-6 to 1e6, near-deterministic and
near-uniform policies, priors with tiny probabilities, in float32, bfloat16
and float64. Everything must be finite, and the soft value must respect the
bounds of [E12]: max_a Q + τ log π̄(a*) ≤ V_Q ≤ max_a Q for a normalised prior,
up to the rounding of the dtype.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from softeq.core import (
    boltzmann_kl,
    boltzmann_log_policy,
    regularised_policy_gradient_loss,
    soft_n_step_targets,
    soft_q_learning_loss,
    soft_value,
)

DTYPES = (jnp.float32, jnp.bfloat16, jnp.float64)
NUM_ACTIONS = (2, 6)


@st.composite
def extreme_rows(draw):
    """A Q-row, temperature, normalised log-prior and dtype at the edges of the range."""
    num_actions = draw(st.sampled_from(NUM_ACTIONS))
    scale = 10.0 ** draw(st.integers(-6, 6))
    unit = draw(
        st.lists(st.floats(-1.0, 1.0, allow_nan=False), min_size=num_actions, max_size=num_actions)
    )
    q = scale * np.asarray(unit)
    temperature = 10.0 ** draw(st.floats(-6.0, 6.0))
    # prior logits spread over up to 60 nats: the smallest probability can be ~1e-26.
    prior_spread = draw(st.floats(0.0, 60.0))
    prior_logits = prior_spread * np.asarray(
        draw(st.lists(st.floats(0.0, 1.0), min_size=num_actions, max_size=num_actions))
    )
    log_prior = prior_logits - np.logaddexp.reduce(prior_logits)
    dtype = draw(st.sampled_from(DTYPES))
    return q, temperature, log_prior, dtype


def _relative_slack(dtype, *magnitudes) -> float:
    # a handful of roundings of the largest magnitude involved.
    return 8.0 * float(jnp.finfo(dtype).eps) * max((1.0, *magnitudes))


# Temperatures are traced arguments, so each (shape, dtype) pair compiles once.
@jax.jit
def _soft_value_and_grad(q, temperature, log_prior):
    return jax.value_and_grad(
        lambda x: soft_value(x, temperature=temperature, log_prior=log_prior)
    )(q)


@jax.jit
def _policy_stats(q, temperature, log_prior):
    log_pi = boltzmann_log_policy(q, temperature=temperature, log_prior=log_prior)
    kl, kl_grad = jax.value_and_grad(
        lambda x: boltzmann_kl(x, temperature=temperature, log_prior=log_prior)
    )(q)
    return log_pi, kl, kl_grad


@given(extreme_rows())
def test_soft_value_is_finite_and_within_the_e12_bounds(row):
    q, temperature, log_prior, dtype = row
    q_arr, lp = jnp.asarray(q, dtype), jnp.asarray(log_prior, dtype)
    v, grad = _soft_value_and_grad(q_arr, jnp.asarray(temperature, dtype), lp)
    assert jnp.isfinite(v) and bool(jnp.all(jnp.isfinite(grad)))
    q_in = np.asarray(q_arr.astype(jnp.float64))
    lp_in = np.asarray(lp.astype(jnp.float64))
    best = int(np.argmax(q_in))
    upper = q_in.max()
    lower = q_in.max() + temperature * lp_in[best]
    # τ·logsumexp(q/τ + log π̄) is off by about τ·eps·(|q/τ + log π̄| + log A) in the
    # dtype: the log of a sum near 1 loses the low bits, and τ multiplies that loss.
    slack = _relative_slack(
        dtype, abs(upper), abs(lower), temperature * (1.0 + np.max(np.abs(lp_in)))
    )
    assert lower - slack <= float(v) <= upper + slack
    # ∂V/∂q is the Boltzmann policy: a probability vector.
    assert abs(float(jnp.sum(grad.astype(jnp.float64))) - 1.0) <= _relative_slack(dtype) * len(q)


@given(extreme_rows())
def test_boltzmann_policy_and_kl_are_finite_and_normalised(row):
    q, temperature, log_prior, dtype = row
    q_arr, lp = jnp.asarray(q, dtype), jnp.asarray(log_prior, dtype)
    log_pi, kl, kl_grad = _policy_stats(q_arr, jnp.asarray(temperature, dtype), lp)
    assert bool(jnp.all(jnp.isfinite(log_pi)))
    assert jnp.isfinite(kl) and bool(jnp.all(jnp.isfinite(kl_grad)))
    total = float(jnp.sum(jnp.exp(log_pi.astype(jnp.float64))))
    assert abs(total - 1.0) <= _relative_slack(dtype) * len(q)
    # KL to a normalised prior is ≥ 0 up to rounding of its terms (each ≤ 60 nats here).
    assert float(kl) >= -_relative_slack(dtype, 60.0) * len(q)


@st.composite
def extreme_trajectories(draw):
    q, temperature, log_prior, dtype = draw(extreme_rows())
    steps = 4  # one length keeps compilations few; discounts put episode ends inside it
    num_actions = len(q)
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    scale = max(1.0, float(np.max(np.abs(q))))
    q_tm1 = q[None, :] + scale * 1e-3 * rng.standard_normal((steps, num_actions))
    q_t = q[None, :] + scale * 1e-3 * rng.standard_normal((steps, num_actions))
    actions = rng.integers(0, num_actions, size=steps)
    rewards = scale * rng.uniform(-1, 1, size=steps)
    discounts = 0.99 * (rng.random(steps) > 0.3)
    return q_tm1, q_t, actions, rewards, discounts, temperature, log_prior, dtype


@functools.partial(jax.jit, static_argnames="n")
def _losses_gradients_targets(q_tm1, q_t, a, rewards, discounts, temperature, lp, *, n):
    def sq_loss(q):
        return soft_q_learning_loss(
            q, a, rewards, discounts, q_t, temperature=temperature, n=n, log_prior=lp
        )

    def pg_loss(q):
        logits = q / temperature + lp
        return regularised_policy_gradient_loss(
            logits, a, rewards, temperature=temperature, log_prior=lp
        )

    v_t = jax.vmap(lambda r: soft_value(r, temperature=temperature, log_prior=lp))(q_t)
    kl_t = jax.vmap(lambda r: boltzmann_kl(r, temperature=temperature, log_prior=lp))(q_t)
    targets = soft_n_step_targets(rewards, discounts, v_t, kl_t, temperature=temperature, n=n)
    return jax.value_and_grad(sq_loss)(q_tm1), jax.value_and_grad(pg_loss)(q_tm1), targets


@given(extreme_trajectories(), st.sampled_from((1, 3)))
def test_soft_q_and_policy_gradient_losses_and_gradients_are_finite(traj, n):
    q_tm1, q_t, actions, rewards, discounts, temperature, log_prior, dtype = traj
    cast = lambda x: jnp.asarray(x, dtype)  # noqa: E731
    (sq, sq_grad), (pg, pg_grad), targets = _losses_gradients_targets(
        cast(q_tm1),
        cast(q_t),
        jnp.asarray(actions, jnp.int32),
        cast(rewards),
        cast(discounts),
        cast(temperature),
        cast(log_prior),
        n=n,
    )
    for name, value, grad in (("soft-Q", sq, sq_grad), ("policy", pg, pg_grad)):
        assert jnp.isfinite(value), name
        assert bool(jnp.all(jnp.isfinite(grad))), name
    assert bool(jnp.all(jnp.isfinite(targets)))
