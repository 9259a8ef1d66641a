"""[M2], [M3] Munchausen value iteration is mirror-descent VI; it reaches the τ'-optimum.

Iterating `munchausen_bellman_backup` without the clip (M-VI(α, τ)):
π_{k+1} = softmax(q_k/τ), q_{k+1} = r + ατ ln π_{k+1} + γP⟨π_{k+1}, q_k − τ ln π_{k+1}⟩.

- [M2] (Vieillard, Pietquin & Geist 2020, Thm. 1): started from
  q_0 = q'_0 + ατ ln π_0, its policies equal at every step k those of
  mirror-descent VI with KL weight λ = ατ and entropy weight τ' = (1 − α)τ
  (the NumPy oracle, π_{k+1} ∝ π_k^{λ/(λ+τ')} exp(q'_k/(λ+τ'))), and
  q_k = q'_k + ατ ln π_k, on random MDPs, random q'_0 and random π_0;
- [M3]: from q_0 = 0 the policies converge to softmax(Q*/τ'), the optimal
  policy of the τ'-entropy-regularised MDP (Q* from the oracle's soft value
  iteration with π̄ ≡ 1), and q_k to Q* + ατ ln π*.

Tolerances. [M2]: K = 8 steps of two exact recursions; each step's values
are of magnitude M ≲ (1 + τ·max|ln π|)/(1 − γ) and round-off is amplified
by at most 1/τ ≤ 10 in the policy step: 1e-10·M. [M3]: the iterates
contract at rate ≤ max(α, γ) ≤ 0.9 (measured on random MDPs), so 600 steps
leave ≤ 0.9^600·M ≈ 1e-27·M; the oracle's Q* stops at a change of 1e-12, so
its error is ≤ 1e-11: comparisons use 1e-9·M, and policies 1e-9·M/τ'.
"""

from __future__ import annotations

import jax
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from softeq.core import munchausen_bellman_backup
from softeq.properties import oracles
from softeq.properties import strategies as sqst
from softeq.properties._testing import assert_close, fast_jit, magnitude

STEPS = 8
CONVERGENCE_STEPS = 600


@fast_jit(static_argnames=("steps",))
def _munchausen_iterates(q0, mdp, tau, alpha, *, steps):
    """q_0 … q_K of M-VI without the clip, `[K + 1, S, A]`."""

    def step(q, _):
        following = munchausen_bellman_backup(
            q, mdp, temperature=tau, alpha=alpha, log_policy_clip=None
        )
        return following, following

    _, qs = jax.lax.scan(step, q0, None, length=steps)
    return jax.numpy.concatenate([q0[None], qs])


@fast_jit
def _munchausen_limit(q0, mdp, tau, alpha):
    def step(_, q):
        return munchausen_bellman_backup(q, mdp, temperature=tau, alpha=alpha, log_policy_clip=None)

    return jax.lax.fori_loop(0, CONVERGENCE_STEPS, step, q0)


def problems():
    return dict(
        mdp=sqst.tabular_mdps(discount=sqst.discounts(max_value=0.9)),
        tau=sqst.temperatures(min_value=0.1, max_value=2.0),
        alpha=st.one_of(st.just(0.9), st.floats(0.0, 0.9)),
    )


@given(**problems(), data=st.data())
def test_munchausen_iterates_are_mirror_descent_iterates_shifted_by_alpha_tau_log_pi(
    mdp, tau, alpha, data
):
    shape = (mdp.num_states, mdp.num_actions)
    q_prime0 = data.draw(sqst.q_tables(shape))
    policy0 = data.draw(sqst.policies(mdp))
    policies, q_primes = oracles.mirror_descent_value_iteration(
        mdp,
        q_prime0,
        policy0,
        kl_weight=alpha * tau,
        entropy_weight=(1.0 - alpha) * tau,
        iterations=STEPS,
    )
    q0 = q_prime0 + alpha * tau * np.log(policy0)
    qs = np.asarray(_munchausen_iterates(q0, mdp, tau, alpha, steps=STEPS))
    scale = magnitude(q_primes, tau * np.log(policies)) / (1.0 - float(mdp.discount))
    for k in range(1, STEPS + 1):
        # π_k of M-VI is softmax(q_{k−1}/τ); of MD-VI, the oracle's π_k.
        assert_close(
            oracles.softmax(qs[k - 1] / tau),
            policies[k],
            tolerance=1e-10,
            scale=scale / tau,
            what=f"π_{k}",
        )
        assert_close(
            qs[k],
            q_primes[k] + alpha * tau * np.log(policies[k]),
            tolerance=1e-10,
            scale=scale,
            what=f"q_{k} vs q'_{k} + ατ ln π_{k}",
        )


@given(**problems())
def test_munchausen_value_iteration_converges_to_the_optimum_of_the_reduced_temperature(
    mdp, tau, alpha
):
    reduced = (1.0 - alpha) * tau
    entropy_prior = np.zeros(mdp.num_actions)
    q_star = oracles.soft_value_iteration(mdp, temperature=reduced, log_prior=entropy_prior)
    pi_star = oracles.softmax(q_star / reduced)
    q_limit = np.asarray(_munchausen_limit(np.zeros_like(q_star), mdp, tau, alpha))
    scale = magnitude(q_star, tau * np.log(pi_star)) / (1.0 - float(mdp.discount))
    assert_close(
        oracles.softmax(q_limit / tau), pi_star, tolerance=1e-9, scale=scale / reduced, what="π"
    )
    assert_close(
        q_limit,
        q_star + alpha * tau * np.log(pi_star),
        tolerance=1e-9,
        scale=scale,
        what="q vs Q* + ατ ln π*",
    )
