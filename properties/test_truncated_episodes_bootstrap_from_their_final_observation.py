"""Time limits are not terminal: [E13] targets with truncations and terminations in the window.

A stream of T transitions carries, per transition, a termination flag (the
state reached is terminal: discount 0, no bootstrap), a truncation flag (a
time limit cut the episode: bootstrap from the value of the episode's final
observation, then stop, since the next transition starts a new episode) and
that final value. Folding the truncations into the stream with
`bootstrap_truncations` and running the ordinary `soft_n_step_targets` (and
`soft_dqn_targets`, in every mode) must give, window by window, the targets
of a brute-force walk that applies both rules by hand:

    y_i = r_i + Σ_{d=1}^{m−1} Γ_d (r_{i+d} − τ KL_{i+d}) + Γ_m · B,

where the walk stops at the first episode end or after n steps (or at the end
of the stream), Γ_d is the product of the discounts walked through, and B is
the final value at a truncation, 0 after a termination and V(s_{i+m})
otherwise. At least one truncation and one termination fall strictly inside
each drawn stream.

Tolerance: sums of ≤ n + 1 terms of magnitude ≤ 3·(1 + τ): 1e-12 × (1 + max|y|).
"""

from __future__ import annotations

import jax
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from softeq.core import (
    DQN_TARGET_MODES,
    bootstrap_truncations,
    dqn_bootstrap_value,
    soft_dqn_targets,
    soft_n_step_targets,
)
from softeq.properties import strategies as sqst
from softeq.properties._testing import assert_close, fast_jit, magnitude

N_VALUES = (1, 2, 3, 5)
LENGTHS = (4, 6, 8)


@st.composite
def _streams_with_time_limits(draw):
    """(r, γ, terminated, truncated, v_t, kl_t, v_final) with both kinds of end inside."""
    length = draw(st.sampled_from(LENGTHS))
    gamma = draw(sqst.discounts(min_value=0.5, max_value=1.0))
    floats = sqst.float_arrays
    terminated = draw(floats((length,), min_value=0.0, max_value=1.0)) < 0.2
    truncated = draw(floats((length,), min_value=0.0, max_value=1.0)) < 0.2
    first, second = draw(st.lists(st.integers(0, length - 2), min_size=2, max_size=2, unique=True))
    terminated[first], truncated[first] = True, False
    terminated[second], truncated[second] = False, True
    return (
        draw(floats((length,), min_value=-3.0, max_value=3.0)),
        gamma,
        terminated,
        truncated,
        draw(floats((length,), min_value=-3.0, max_value=3.0)),
        draw(floats((length,), min_value=0.0, max_value=3.0)),
        draw(floats((length,), min_value=-3.0, max_value=3.0)),
    )


def _brute_force(r, gamma, terminated, truncated, v_t, kl_t, v_final, *, tau, n):
    """Walks each window by hand (see the module docstring); float64 numpy."""
    length = len(r)
    targets = np.zeros(length)
    for i in range(length):
        total, weight, j = r[i], 1.0, i
        while True:
            if terminated[j]:
                break
            weight *= gamma
            if truncated[j]:
                total += weight * v_final[j]
                break
            if j - i + 1 == n or j + 1 == length:
                total += weight * v_t[j]
                break
            total += weight * (r[j + 1] - tau * kl_t[j])
            j += 1
        targets[i] = total
    return targets


@fast_jit(static_argnames=("n",))
def _folded_targets(r, discount_t, truncated, v_t, kl_t, v_final, tau, *, n):
    r2, d2 = bootstrap_truncations(r, discount_t, truncated, v_final)
    return soft_n_step_targets(r2, d2, v_t, kl_t, temperature=tau, n=n)


@given(
    stream=_streams_with_time_limits(),
    n=st.sampled_from(N_VALUES),
    tau=sqst.temperatures(),
)
def test_folded_soft_targets_equal_the_brute_force_walk(stream, n, tau):
    r, gamma, terminated, truncated, v_t, kl_t, v_final = stream
    discount_t = gamma * (1.0 - terminated)
    got = _folded_targets(r, discount_t, truncated.astype(float), v_t, kl_t, v_final, tau, n=n)
    expected = _brute_force(r, gamma, terminated, truncated, v_t, kl_t, v_final, tau=tau, n=n)
    assert_close(got, expected, tolerance=1e-12, scale=magnitude(expected, tau * kl_t, v_final))


@fast_jit(static_argnames=("n", "mode"))
def _folded_dqn_targets(r, discount_t, truncated, q_t, tau, *, n, mode):
    v_next = jax.vmap(lambda q: dqn_bootstrap_value(q, mode=mode, temperature=tau))(q_t)
    r2, d2 = bootstrap_truncations(r, discount_t, truncated, v_next)
    return soft_dqn_targets(r2, d2, q_t, mode=mode, temperature=tau, n=n)


def _soft_value_and_kl(q, *, mode, tau):
    """The mode's bootstrap value and τ-free KL of its Boltzmann policy, per row (numpy)."""
    if mode == "hard":
        return q.max(-1), np.zeros(len(q))
    log_prior = -np.log(q.shape[-1]) if mode == "soft-kl" else 0.0
    z = q / tau + log_prior
    shift = z.max(-1, keepdims=True)
    lse = shift[:, 0] + np.log(np.exp(z - shift).sum(-1))
    log_pi = z - lse[:, None]
    return tau * lse, np.sum(np.exp(log_pi) * (log_pi - log_prior), -1)


@given(
    stream=_streams_with_time_limits(),
    n=st.sampled_from(N_VALUES),
    tau=sqst.temperatures(),
    mode=st.sampled_from(DQN_TARGET_MODES),
    num_actions=st.sampled_from((2, 3)),
    data=st.data(),
)
def test_folded_dqn_targets_bootstrap_truncations_from_the_final_row(
    stream, n, tau, mode, num_actions, data
):
    """`q_t[i]` is Q̄ of the next state, the final observation's row where i was truncated."""
    r, gamma, terminated, truncated, _, _, _ = stream
    q_t = data.draw(sqst.float_arrays((len(r), num_actions), min_value=-3.0, max_value=3.0))
    discount_t = gamma * (1.0 - terminated)
    got = _folded_dqn_targets(r, discount_t, truncated.astype(float), q_t, tau, n=n, mode=mode)
    value, kl = _soft_value_and_kl(q_t, mode=mode, tau=tau)
    expected = _brute_force(r, gamma, terminated, truncated, value, kl, value, tau=tau, n=n)
    assert_close(got, expected, tolerance=1e-12, scale=magnitude(expected, tau * kl, value))


@given(stream=_streams_with_time_limits())
def test_a_termination_wins_over_a_truncation_on_the_same_transition(stream):
    r, gamma, terminated, _, _, _, v_final = stream
    both = terminated.astype(float)  # truncated exactly where terminated
    r2, d2 = bootstrap_truncations(r, gamma * (1.0 - terminated), both, v_final)
    np.testing.assert_array_equal(np.asarray(r2), r)
    np.testing.assert_array_equal(np.asarray(d2), gamma * (1.0 - terminated))
