"""Hand-computed examples for softeq.core.soft: soft values, Boltzmann policies, KL."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from softeq.core import (
    LOG_PRIOR_CONVENTIONS,
    boltzmann_kl,
    boltzmann_log_policy,
    kl_divergence,
    policy_entropy,
    policy_kl,
    policy_soft_value,
    scale_gradient,
    soft_value,
    tabular_soft_values,
)

# Each expected value below is a closed form of a handful of logs and exps; in
# float64 (eps 2.2e-16) the computed results differ from it by a few ulps, so
# 1e-12 is three orders of magnitude of slack that still catches any wrong term.
TIGHT = {"rtol": 1e-12, "atol": 1e-12}

LOG2, LOG3 = math.log(2.0), math.log(3.0)
# KL[(1/4, 3/4) || (1/2, 1/2)] = 1/4 log(1/2) + 3/4 log(3/2), used in several places.
KL_QUARTER = 0.25 * math.log(0.5) + 0.75 * math.log(1.5)


def close(actual, expected, **tol):
    actual = np.asarray(actual)
    assert actual.dtype == np.float64, actual.dtype
    np.testing.assert_allclose(actual, expected, **(tol or TIGHT))


# --- soft_value [E3] -------------------------------------------------------------


@pytest.mark.parametrize(
    ("q", "temperature", "log_prior", "expected"),
    [
        # uniform prior: tau log mean(e^0) = 0
        ([0.0, 0.0], 1.0, None, 0.0),
        # pi_bar = 1 (entropy convention): log(1 + 1)
        ([0.0, 0.0], 1.0, [0.0, 0.0], LOG2),
        # log(e + e^2) = 2 + log(1 + e^-1)
        ([1.0, 2.0], 1.0, [0.0, 0.0], 2.0 + math.log1p(math.exp(-1.0))),
        # q = [0, tau log 3], tau = 1/2, uniform: 1/2 log((1 + 3) / 2) = 1/2 log 2
        ([0.0, 0.5 * LOG3], 0.5, None, 0.5 * LOG2),
        # non-uniform prior (1/4, 3/4), q = [tau log 2, 0], tau = 2: 2 log(1/4 * 2 + 3/4)
        ([2.0 * LOG2, 0.0], 2.0, [math.log(0.25), math.log(0.75)], 2.0 * math.log(1.25)),
        # three actions, all equal to c: the soft value of a constant is that constant
        ([-3.5, -3.5, -3.5], 0.3, None, -3.5),
    ],
)
def test_soft_value_hand_examples(q, temperature, log_prior, expected):
    lp = None if log_prior is None else jnp.array(log_prior)
    close(soft_value(jnp.array(q), temperature=temperature, log_prior=lp), expected)


def test_soft_value_is_finite_for_huge_scores():
    # q / tau = 1e7: without the max-shift exp overflows. The second action's
    # weight e^{-1e7} underflows to exactly 0, so v = 1e4 + tau log(1/2).
    v = soft_value(jnp.array([1e4, 0.0]), temperature=1e-3)
    close(v, 1e4 + 1e-3 * math.log(0.5))
    v_equal = soft_value(jnp.array([1000.0, 1000.0]), temperature=0.01)
    close(v_equal, 1000.0)


def test_soft_value_shifts_with_a_constant_and_gradient_is_the_boltzmann_policy():
    q = jnp.array([0.0, LOG3])
    # [E5]: adding c to q adds c to v_q.
    close(soft_value(q + 7.25, temperature=1.0), soft_value(q, temperature=1.0) + 7.25)
    # d v_q / d q = pi^B_q = (1/4, 3/4).
    close(jax.grad(lambda x: soft_value(x, temperature=1.0))(q), [0.25, 0.75])


# --- boltzmann_log_policy [E2] ---------------------------------------------------


@pytest.mark.parametrize(
    ("q", "temperature", "log_prior", "expected_probs"),
    [
        ([0.0, LOG3], 1.0, None, [0.25, 0.75]),
        # the same policy at tau = 2 needs scores twice as far apart
        ([0.0, 2.0 * LOG3], 2.0, None, [0.25, 0.75]),
        # equal scores give back the prior
        ([5.0, 5.0], 0.7, [math.log(0.25), math.log(0.75)], [0.25, 0.75]),
        # prior (1/4, 3/4) tilted by e^{q} = (3, 1): weights (3/4, 3/4) -> (1/2, 1/2)
        ([LOG3, 0.0], 1.0, [math.log(0.25), math.log(0.75)], [0.5, 0.5]),
        # unnormalised prior pi_bar = 1 is normalised away: softmax(q / tau)
        ([0.0, LOG2, LOG3], 1.0, [0.0, 0.0, 0.0], [1 / 6, 2 / 6, 3 / 6]),
    ],
)
def test_boltzmann_log_policy_hand_examples(q, temperature, log_prior, expected_probs):
    lp = None if log_prior is None else jnp.array(log_prior)
    log_pi = boltzmann_log_policy(jnp.array(q), temperature=temperature, log_prior=lp)
    close(log_pi, np.log(expected_probs))


def test_boltzmann_log_policy_is_q_minus_v_over_tau():
    # [E2]/[E5]: log pi = log pi_bar + (q - v_q) / tau, here with tau = 0.5 and uniform prior.
    q = jnp.array([1.0, -2.0, 0.5])
    tau = 0.5
    v = soft_value(q, temperature=tau)
    close(boltzmann_log_policy(q, temperature=tau), math.log(1 / 3) + (q - v) / tau)


# --- kl_divergence ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("p", "log_q", "expected"),
    [
        # 1/2 log(1/2 / 1/4) + 1/2 log(1/2 / 3/4) = 1/2 log(4/3)
        ([0.5, 0.5], [math.log(0.25), math.log(0.75)], 0.5 * math.log(4.0 / 3.0)),
        # the reverse direction: 1/4 log(1/2) + 3/4 log(3/2)
        ([0.25, 0.75], [math.log(0.5), math.log(0.5)], KL_QUARTER),
        # KL of a distribution to itself
        ([0.2, 0.3, 0.5], list(np.log([0.2, 0.3, 0.5])), 0.0),
        # log q = 0 (pi_bar = 1): minus the entropy, -log 2
        ([0.5, 0.5], [0.0, 0.0], -LOG2),
    ],
)
def test_kl_divergence_hand_examples(p, log_q, expected):
    close(kl_divergence(jnp.log(jnp.array(p)), jnp.array(log_q)), expected)


def test_kl_divergence_ignores_zero_probability_actions():
    # p = (1, 0): log p = (0, -inf); the 0 * (-inf) term counts as 0, so KL = log 2.
    log_p = jnp.array([0.0, -jnp.inf])
    out = kl_divergence(log_p, jnp.log(jnp.array([0.5, 0.5])))
    close(out, LOG2)


# --- boltzmann_kl and policy_kl [E9] ---------------------------------------------


def test_boltzmann_kl_matches_the_hand_value_and_its_closed_form():
    q = jnp.array([0.0, LOG3])  # pi^B = (1/4, 3/4) under the uniform prior
    out = boltzmann_kl(q, temperature=1.0)
    close(out, KL_QUARTER)
    # KL = (E_pi[q] - v_q) / tau = 3/4 log 3 - log 2
    close(out, 0.75 * LOG3 - LOG2)
    # same policy at tau = 4 (scores scaled by 4): same KL
    close(boltzmann_kl(4.0 * q, temperature=4.0), KL_QUARTER)
    # entropy convention: KL to pi_bar = 1 is minus the entropy of (1/4, 3/4)
    close(boltzmann_kl(q, temperature=1.0, log_prior=jnp.zeros(2)), KL_QUARTER - LOG2)


def test_policy_kl_hand_examples():
    close(policy_kl(jnp.array([0.0, LOG3])), KL_QUARTER)
    # logits are shift-invariant
    close(policy_kl(jnp.array([10.0, 10.0 + LOG3])), KL_QUARTER)
    close(policy_kl(jnp.zeros(4), log_prior=jnp.zeros(4)), -math.log(4.0))
    # with a prior equal to the policy, KL = 0
    prior = jnp.log(jnp.array([0.25, 0.75]))
    close(policy_kl(jnp.array([0.0, LOG3]), log_prior=prior), 0.0)


def test_policy_kl_gradient_matches_the_softmax_closed_form():
    # d KL[softmax(z) || pi_bar] / dz = pi * (log(pi / pi_bar) - KL)   ([E6] for logits)
    z = jnp.array([0.0, LOG3])
    pi = np.array([0.25, 0.75])
    expected = pi * (np.log(pi / 0.5) - KL_QUARTER)
    close(jax.grad(policy_kl)(z), expected)


# --- scale_gradient ----------------------------------------------------------------


def test_scale_gradient_is_exactly_the_identity_forward():
    x = jnp.array([0.1, -3.7, 1e-300, 12345.678])
    out = scale_gradient(x, 0.37)
    # bitwise equal, not just close: no rounding from the scale
    assert np.array_equal(np.asarray(out), np.asarray(x))


@pytest.mark.parametrize("scale", [3.0, 0.5, 0.0, -2.0])
def test_scale_gradient_multiplies_the_gradient(scale):
    w = jnp.array([1.0, -2.0, 0.5])
    grad = jax.grad(lambda x: jnp.sum(w * scale_gradient(x, scale) ** 2))(
        jnp.array([1.0, 2.0, 3.0])
    )
    # d/dx sum w x^2 = 2 w x, times the scale
    close(grad, scale * 2.0 * np.array([1.0, -2.0, 0.5]) * np.array([1.0, 2.0, 3.0]))


# --- the two named conventions of log_prior -------------------------------------------


def test_the_named_conventions_are_uniform_and_entropy():
    assert LOG_PRIOR_CONVENTIONS == ("uniform", "entropy")


def test_named_conventions_equal_their_arrays():
    q = jnp.array([0.5, -1.0, 2.0])
    for name, array in (("uniform", jnp.full(3, -LOG3)), ("entropy", jnp.zeros(3))):
        close(
            soft_value(q, temperature=0.7, log_prior=name),
            soft_value(q, temperature=0.7, log_prior=array),
        )
        close(
            boltzmann_log_policy(q, temperature=0.7, log_prior=name),
            boltzmann_log_policy(q, temperature=0.7, log_prior=array),
        )
    close(soft_value(q, temperature=0.7, log_prior="uniform"), soft_value(q, temperature=0.7))
    # the entropy bonus pays τ log A more than the KL to uniform
    gap = soft_value(q, temperature=0.7, log_prior="entropy") - soft_value(q, temperature=0.7)
    close(gap, 0.7 * LOG3)
    # tabular functions take the names too
    table = jnp.stack([q, -q])
    close(
        tabular_soft_values(table, temperature=0.7, log_prior="entropy")[1],
        soft_value(-q, temperature=0.7, log_prior="entropy"),
    )


def test_an_unknown_convention_name_is_refused():
    with pytest.raises(
        ValueError, match="`log_prior` must be one of 'uniform', 'entropy'; got 'kl'"
    ):
        soft_value(jnp.zeros(2), temperature=1.0, log_prior="kl")


def test_temperature_zero_is_refused_by_soft_value_with_a_pointer_to_what_accepts_it():
    with pytest.raises(
        ValueError, match="`temperature` must be a finite number > 0, got 0"
    ) as info:
        soft_value(jnp.zeros(2), temperature=0)
    assert "unregularised limit" in str(info.value)
    assert "returns functions" in str(info.value)


# --- policy_kl is −H under the entropy convention; policy_entropy ------------------


def test_policy_kl_with_the_entropy_convention_is_minus_the_entropy():
    logits = jnp.array([0.0, LOG3])  # π = (1/4, 3/4)
    entropy = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))
    close(policy_kl(logits, "entropy"), -entropy)
    close(policy_entropy(logits), entropy)
    close(policy_kl(logits, "uniform"), LOG2 - entropy)
    close(policy_kl(logits), KL_QUARTER)


def test_policy_entropy_bounds():
    close(policy_entropy(jnp.zeros(3)), LOG3)
    close(policy_entropy(jnp.array([0.0, -jnp.inf, -jnp.inf])), 0.0)


# --- policy_soft_value [E4], [E9] -------------------------------------------------------


def test_policy_soft_value_by_hand():
    q = jnp.array([1.0, 3.0])
    log_pi = jnp.log(jnp.array([0.25, 0.75]))
    expected_q = 0.25 * 1.0 + 0.75 * 3.0
    close(policy_soft_value(q, log_pi, temperature=0.5), expected_q - 0.5 * KL_QUARTER)
    entropy = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))
    close(
        policy_soft_value(q, log_pi, temperature=0.5, log_prior="entropy"),
        expected_q + 0.5 * entropy,
    )
    close(policy_soft_value(q, log_pi, temperature=0.0), expected_q)


def test_policy_soft_value_of_the_boltzmann_policy_is_the_soft_value_and_others_are_lower():
    q = jnp.array([0.2, -1.0, 1.5])
    for prior in ("uniform", "entropy"):
        best = boltzmann_log_policy(q, temperature=0.3, log_prior=prior)
        v = soft_value(q, temperature=0.3, log_prior=prior)
        close(policy_soft_value(q, best, temperature=0.3, log_prior=prior), v)
        other = jnp.log(jnp.array([0.2, 0.3, 0.5]))
        assert policy_soft_value(q, other, temperature=0.3, log_prior=prior) < v


def test_policy_soft_value_ignores_the_scores_of_actions_it_never_takes():
    log_pi = jnp.array([0.0, -jnp.inf])
    value = policy_soft_value(jnp.array([2.0, jnp.inf]), log_pi, temperature=0.5)
    close(value, 2.0 - 0.5 * LOG2)  # KL[(1, 0) || (½, ½)] = log 2
