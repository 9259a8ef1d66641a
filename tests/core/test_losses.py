"""Hand-computed examples for softeq.core.losses: soft Q-learning and regularised PG losses."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import rlax

from softeq.core import (
    ENTROPY_MODES,
    A2CLossExtras,
    a2c_loss,
    a2c_matched_soft_q_loss,
    regularised_policy_gradient_loss,
    soft_q_learning,
    soft_q_learning_loss,
    value_loss,
)

# Closed forms of a few logs, products and means: float64 results lie within a
# few ulps (eps 2.2e-16) of them, so 1e-12 leaves ample room yet catches any
# missing or wrongly weighted term.
TIGHT = {"rtol": 1e-12, "atol": 1e-12}
LOG2, LOG3 = math.log(2.0), math.log(3.0)
# policy (1/4, 3/4): KL to uniform, and KL to pi_bar = 1 (minus its entropy)
KL_QUARTER = 0.25 * math.log(0.5) + 0.75 * math.log(1.5)
NEG_H_QUARTER = 0.25 * math.log(0.25) + 0.75 * math.log(0.75)


def close(actual, expected, **tol):
    actual = np.asarray(actual)
    assert actual.dtype == np.float64, actual.dtype
    np.testing.assert_allclose(actual, expected, **(tol or TIGHT))


def softmax_grad_of_log_prob(pi, a):
    """d log softmax(z)[a] / dz = e_a - pi."""
    e = np.zeros_like(pi)
    e[a] = 1.0
    return e - pi


# --- soft_q_learning [E13] -------------------------------------------------------------


@pytest.mark.parametrize(
    ("q_t", "log_prior", "expected"),
    [
        # pi_bar = 1: y = 1 + 0.5 log(e^0 + e^0); td = y - Q(s, a=1) = 0.5 log 2
        ([0.0, 0.0], [0.0, 0.0], 0.5 * LOG2),
        # uniform prior: V = 0, td = 1 + 0 - 1
        ([0.0, 0.0], None, 0.0),
        # uniform prior: V = log((1 + 3) / 2) = log 2
        ([0.0, LOG3], None, 0.5 * LOG2),
    ],
)
def test_soft_q_learning_td_error_by_hand(q_t, log_prior, expected):
    lp = None if log_prior is None else jnp.array(log_prior)
    td = soft_q_learning(
        jnp.array([0.0, 1.0]), 1, 1.0, 0.5, jnp.array(q_t), temperature=1.0, log_prior=lp
    )
    close(td, expected)


def test_soft_q_learning_gradients():
    def td(q_tm1, q_t, stop):
        return soft_q_learning(q_tm1, 1, 1.0, 0.5, q_t, temperature=1.0, stop_target_gradients=stop)

    q_tm1, q_t = jnp.array([0.0, 1.0]), jnp.array([0.0, LOG3])
    g_tm1, g_t = jax.grad(td, argnums=(0, 1))(q_tm1, q_t, True)
    close(g_tm1, [0.0, -1.0])
    close(g_t, [0.0, 0.0])
    # without the stop: d (gamma V(q_t)) / d q_t = gamma pi^B(q_t) = 0.5 (1/4, 3/4)
    _, g_t = jax.grad(td, argnums=(0, 1))(q_tm1, q_t, False)
    close(g_t, [0.125, 0.375])


# --- soft_q_learning_loss [E13], [E15] -----------------------------------------------------


def q_stream():
    return {
        "q_tm1": jnp.array([[1.0, 0.0], [0.0, 2.0]]),
        "a_tm1": jnp.array([0, 1]),
        "r_t": jnp.array([1.0, 0.0]),
        "discount_t": jnp.array([0.5, 0.5]),
        # rows: pi^B = (1/4, 3/4), V = log 2; pi^B uniform, V = 5 (uniform prior, tau = 1)
        "q_t": jnp.array([[0.0, LOG3], [5.0, 5.0]]),
    }


def test_soft_q_learning_loss_one_step_by_hand():
    s = q_stream()
    loss = soft_q_learning_loss(*s.values(), temperature=1.0)
    # y = (1 + 0.5 log 2, 0 + 0.5 * 5); Q(s_i, a_i) = (1, 2); errors (-0.5 log 2, -0.5)
    errors = np.array([-0.5 * LOG2, -0.5])
    close(loss, np.mean(0.5 * errors**2))

    def loss_fn(q, qt):
        return soft_q_learning_loss(q, s["a_tm1"], s["r_t"], s["discount_t"], qt, temperature=1.0)

    g_q, g_qt = jax.grad(loss_fn, argnums=(0, 1))(s["q_tm1"], s["q_t"])
    # d/dQ = (Q - y) / T on the taken entries only; the targets carry no gradient
    close(g_q, [[errors[0] / 2, 0.0], [0.0, errors[1] / 2]])
    close(g_qt, np.zeros((2, 2)))


def test_soft_q_learning_loss_two_step_includes_the_intermediate_kl():
    s = q_stream()
    loss = soft_q_learning_loss(*s.values(), temperature=1.0, n=2)
    # y_0 = r_0 + g_0 (r_1 - tau KL(s_1)) + g_0 g_1 V(s_2), with KL(s_1) from pi^B(q_t[0])
    y0 = 1.0 + 0.5 * (0.0 - KL_QUARTER) + 0.25 * 5.0
    y1 = 0.0 + 0.5 * 5.0  # window cut by the end of the sequence
    errors = np.array([1.0 - y0, 2.0 - y1])
    close(loss, np.mean(0.5 * errors**2))


# --- regularised_policy_gradient_loss [E7], [E14] ---------------------------------------------


def pg_batch():
    return jnp.array([[0.0, 0.0], [0.0, LOG3]]), jnp.array([0, 1]), jnp.array([2.0, -1.0])


def test_regularised_policy_gradient_loss_by_hand():
    logits, a, adv = pg_batch()
    loss = regularised_policy_gradient_loss(logits, a, adv, temperature=0.1)
    # row 0: pi = (1/2, 1/2), -log(1/2) * 2, KL 0; row 1: pi = (1/4, 3/4), -log(3/4) * (-1), KL
    close(loss, (2.0 * LOG2 + math.log(0.75) + 0.1 * KL_QUARTER) / 2.0)


def test_regularised_policy_gradient_loss_gradient_by_hand():
    logits, a, adv = pg_batch()
    g_logits, g_adv = jax.grad(
        lambda z, d: regularised_policy_gradient_loss(z, a, d, temperature=0.1), argnums=(0, 1)
    )(logits, adv)
    pi0, pi1 = np.array([0.5, 0.5]), np.array([0.25, 0.75])
    # -(e_a - pi) adv + tau * pi (log(pi / pi_bar) - KL), averaged over T = 2
    row0 = -softmax_grad_of_log_prob(pi0, 0) * 2.0 + 0.1 * pi0 * (np.log(pi0 / 0.5) - 0.0)
    row1 = -softmax_grad_of_log_prob(pi1, 1) * -1.0 + 0.1 * pi1 * (np.log(pi1 / 0.5) - KL_QUARTER)
    close(g_logits, np.stack([row0, row1]) / 2.0)
    close(g_adv, np.zeros(2))


@pytest.mark.filterwarnings("ignore:Rlax softmax will be deprecated:PendingDeprecationWarning")
def test_regularised_policy_gradient_loss_at_temperature_zero_is_rlax_loss():
    logits, a, adv = pg_batch()
    ours = regularised_policy_gradient_loss(logits, a, adv, temperature=0.0)
    theirs = rlax.policy_gradient_loss(logits, a, adv, jnp.ones(2))
    close(ours, theirs)


# --- value_loss [E14] --------------------------------------------------------------------------


def test_value_loss_and_its_gradient():
    v, target = jnp.array([0.0, 0.0]), jnp.array([1.0, 3.0])
    close(value_loss(v, target), (0.5 * 1.0 + 0.5 * 9.0) / 2.0)
    g_v, g_t = jax.grad(value_loss, argnums=(0, 1))(v, target)
    close(g_v, [-0.5, -1.5])
    close(g_t, [0.0, 0.0])


# --- a2c_loss: naive vs proper [E14] ---------------------------------------------------------

TAU, C = 0.1, 0.5


def a2c_batch():
    """Three states (s2 only bootstraps), two transitions, n = 2 windows.

    Policies: s0 (1/2, 1/2), s1 (1/4, 3/4), s2 (3/4, 1/4); values 1, 2, 3.
    """
    return {
        "logits": jnp.array([[0.0, 0.0], [0.0, LOG3], [LOG3, 0.0]]),
        "values": jnp.array([1.0, 2.0, 3.0]),
        "a_tm1": jnp.array([0, 1]),
        "r_t": jnp.array([1.0, 1.0]),
        "discount_t": jnp.array([0.9, 0.9]),
    }


# uniform prior: KL(s0) = 0, KL(s1) = KL(s2) = KL_QUARTER
NAIVE_ADV = np.array(
    [
        1.0 + 0.9 * 1.0 + 0.81 * 3.0 - 1.0,  # 3.33
        1.0 + 0.9 * 3.0 - 2.0,  # 1.7 (window cut by the end of the sequence)
    ]
)
PROPER_ADV = np.array(
    [
        1.0 + 0.9 * (1.0 - TAU * KL_QUARTER) + 0.81 * 3.0 - TAU * 0.0 - 1.0,
        1.0 + 0.9 * 3.0 - TAU * KL_QUARTER - 2.0,
    ]
)
LOG_PI_TAKEN = np.array([math.log(0.5), math.log(0.75)])
KLS = np.array([0.0, KL_QUARTER])


def test_entropy_modes_are_naive_and_proper():
    assert ENTROPY_MODES == ("naive", "proper")


@pytest.mark.parametrize(("entropy", "adv"), [("naive", NAIVE_ADV), ("proper", PROPER_ADV)])
def test_a2c_loss_by_hand(entropy, adv):
    loss, extras = a2c_loss(**a2c_batch(), temperature=TAU, n=2, value_weight=C, entropy=entropy)
    pg = np.mean(-LOG_PI_TAKEN * adv + TAU * KLS)
    vf = np.mean(0.5 * adv**2)  # V-hat = V + Delta, so V - V-hat = -Delta
    assert isinstance(extras, A2CLossExtras)
    close(extras.advantages, adv)
    close(extras.value_targets, np.array([1.0, 2.0]) + adv)
    close(extras.policy_loss, pg)
    close(extras.value_loss, vf)
    close(extras.kl, KL_QUARTER / 2.0)
    close(loss, pg + C * vf)


def test_a2c_naive_and_proper_differ_by_the_future_kl_terms():
    batch = a2c_batch()
    _, naive = a2c_loss(**batch, temperature=TAU, n=2, value_weight=C, entropy="naive")
    _, proper = a2c_loss(**batch, temperature=TAU, n=2, value_weight=C, entropy="proper")
    # proper - naive = -tau [KL(s_i) + sum_{d=1}^{n-1} g^d KL(s_{i+d})] over each window
    close(
        proper.advantages - naive.advantages,
        [-TAU * (0.0 + 0.9 * KL_QUARTER), -TAU * KL_QUARTER],
    )


@pytest.mark.parametrize(("entropy", "adv"), [("naive", NAIVE_ADV), ("proper", PROPER_ADV)])
def test_a2c_loss_gradients_by_hand(entropy, adv):
    batch = a2c_batch()

    def loss_fn(logits, values):
        rest = {k: v for k, v in batch.items() if k not in ("logits", "values")}
        return a2c_loss(
            logits, values, **rest, temperature=TAU, n=2, value_weight=C, entropy=entropy
        )[0]

    g_logits, g_values = jax.grad(loss_fn, argnums=(0, 1))(batch["logits"], batch["values"])
    pis = [np.array([0.5, 0.5]), np.array([0.25, 0.75])]
    rows = [
        (-softmax_grad_of_log_prob(pi, a) * d + TAU * pi * (np.log(pi / 0.5) - kl)) / 2.0
        for pi, a, d, kl in zip(pis, [0, 1], adv, KLS, strict=True)
    ]
    # the bootstrap state s2 gets no gradient: its KL and value are held fixed
    close(g_logits, np.stack([*rows, np.zeros(2)]))
    close(g_values, [-C * adv[0] / 2.0, -C * adv[1] / 2.0, 0.0])


# --- a2c_matched_soft_q_loss [E16] ----------------------------------------------------------


def matched_expectations():
    """Targets and Q of the batch under the entropy convention pi_bar = 1."""
    # KL to pi_bar = 1 is minus the entropy: s1 has NEG_H_QUARTER
    y = np.array(
        [
            1.0 + 0.9 * (1.0 - TAU * NEG_H_QUARTER) + 0.81 * 3.0,
            1.0 + 0.9 * 3.0,
        ]
    )
    q = np.array([1.0, 2.0]) + TAU * LOG_PI_TAKEN  # Q = V + tau log pi(a)
    return y, q


def test_a2c_matched_soft_q_loss_value_by_hand():
    loss, extras = a2c_matched_soft_q_loss(**a2c_batch(), temperature=TAU, n=2, value_weight=C)
    y, q = matched_expectations()
    close(loss, np.mean(0.5 * (q - y) ** 2))
    kls = np.array([-LOG2, NEG_H_QUARTER])
    close(extras.advantages, y - TAU * kls - np.array([1.0, 2.0]))
    close(extras.kl, np.mean(kls))


def test_a2c_matched_soft_q_loss_gradient_scaling():
    batch = a2c_batch()
    rest = {k: v for k, v in batch.items() if k not in ("logits", "values")}

    def loss_fn(logits, values):
        return a2c_matched_soft_q_loss(
            logits, values, **rest, temperature=TAU, n=2, value_weight=C
        )[0]

    g_logits, g_values = jax.grad(loss_fn, argnums=(0, 1))(batch["logits"], batch["values"])
    y, q = matched_expectations()
    # value stream: c (Q - y) / T; the bootstrap value is held fixed
    close(g_values, [C * (q[0] - y[0]) / 2.0, C * (q[1] - y[1]) / 2.0, 0.0])
    # advantage stream: the 1/tau scale cancels the tau of tau log pi, leaving (Q - y) grad log pi
    pis = [np.array([0.5, 0.5]), np.array([0.25, 0.75])]
    rows = [
        (qi - yi) * softmax_grad_of_log_prob(pi, a) / 2.0
        for qi, yi, pi, a in zip(q, y, pis, [0, 1], strict=True)
    ]
    close(g_logits, np.stack([*rows, np.zeros(2)]))


def test_a2c_matched_with_c_one_over_tau_is_plain_soft_q_learning_over_tau():
    batch = a2c_batch()
    rest = {k: v for k, v in batch.items() if k not in ("logits", "values")}
    y, _ = matched_expectations()

    def matched(logits, values):
        return a2c_matched_soft_q_loss(
            logits, values, **rest, temperature=TAU, n=2, value_weight=1.0 / TAU
        )[0]

    def plain(logits, values):
        log_pi = jax.nn.log_softmax(logits)
        q = values[:2] + TAU * log_pi[jnp.arange(2), batch["a_tm1"]]
        return jnp.mean(0.5 * (q - y) ** 2)

    g_matched = jax.grad(matched, argnums=(0, 1))(batch["logits"], batch["values"])
    g_plain = jax.grad(plain, argnums=(0, 1))(batch["logits"], batch["values"])
    for gm, gp in zip(g_matched, g_plain, strict=True):
        close(gm, np.asarray(gp) / TAU)


def test_a2c_matched_expected_gradient_equals_the_proper_a2c_gradient():
    # [E16] in expectation over a ~ pi: one transition, three actions, exact enumeration.
    logits = jnp.array([[0.3, -0.2, 1.0], [0.5, 0.0, -0.5]])
    values = jnp.array([0.7, 1.5])
    r_t, discount_t = jnp.array([0.4]), jnp.array([0.9])
    tau, c = 0.2, 0.5
    pi = np.asarray(jax.nn.softmax(logits[0]))

    def matched(z, v, a):
        return a2c_matched_soft_q_loss(
            z, v, jnp.array([a]), r_t, discount_t, temperature=tau, n=1, value_weight=c
        )[0]

    def a2c(z, v, a):
        return a2c_loss(
            z,
            v,
            jnp.array([a]),
            r_t,
            discount_t,
            temperature=tau,
            n=1,
            value_weight=c,
            entropy="proper",
            log_prior=jnp.zeros(3),
        )[0]

    def expected_grad(fn):
        grads = [jax.grad(fn, argnums=(0, 1))(logits, values, a) for a in range(3)]
        return [sum(p * np.asarray(g[k]) for p, g in zip(pi, grads, strict=True)) for k in (0, 1)]

    for gm, ga in zip(expected_grad(matched), expected_grad(a2c), strict=True):
        close(gm, ga)
