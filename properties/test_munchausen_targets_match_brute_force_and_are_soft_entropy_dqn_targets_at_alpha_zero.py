"""[M1] Munchausen targets: brute force, α = 0 is soft-entropy DQN, and the backup is their mean.

- `munchausen_targets` equals a transition-by-transition NumPy oracle of
  y = r + ατ clip(ln π(a|s), l0, 0) + γ Σ_a' π(a'|s')(q̄(s', a') − τ ln π(a'|s')),
  π = softmax(q̄/τ), with and without the clip, episode ends included;
- with α = 0 it is the entropy-bonus soft DQN target (`soft_dqn_targets`,
  mode "soft-entropy", n = 1), and r + γ τ logsumexp(q̄(s')/τ);
- on a tabular MDP, the average of the targets over the next state s' ∼ P(·|s, a)
  is `munchausen_bellman_backup` [M2] for every (s, a).

Tolerances: targets are sums of three terms of magnitude ≤ M = 1 +
max(|r|, |q̄|, τ·|ln π|) ≲ 60 (|q̄| ≤ 5, τ ≥ 0.05, so τ|ln π| ≤ 10 + τ ln 3):
1e-12·M. The backup averages ≤ 3 targets: the same bound.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from softeq.core import munchausen_bellman_backup, munchausen_targets, soft_dqn_targets
from softeq.properties import oracles
from softeq.properties import strategies as sqst
from softeq.properties._testing import assert_close, fast_jit, magnitude

LENGTH = 5
CLIPS = (None, -1.0, -0.3)


@st.composite
def munchausen_batches(draw):
    num_actions = draw(st.sampled_from(sqst.ACTION_MENU))
    stream = draw(sqst.soft_streams(length=LENGTH))
    q_tm1 = draw(sqst.q_tables((LENGTH, num_actions), scale=5.0))
    q_t = draw(sqst.q_tables((LENGTH, num_actions), scale=5.0))
    actions = np.array([draw(st.integers(0, num_actions - 1)) for _ in range(LENGTH)])
    return q_tm1, actions, stream.r_t, stream.discount_t, q_t


def _clip_arguments(clip):
    """(traced clip value, static flag): every clip level shares one compiled program."""
    return (0.0, False) if clip is None else (clip, True)


@fast_jit(static_argnames=("clipped",))
def _targets(q_tm1, a_tm1, r_t, discount_t, q_t, tau, alpha, clip, *, clipped):
    kwargs = dict(temperature=tau, log_policy_clip=clip if clipped else None)
    return (
        munchausen_targets(q_tm1, a_tm1, r_t, discount_t, q_t, alpha=alpha, **kwargs),
        munchausen_targets(q_tm1, a_tm1, r_t, discount_t, q_t, alpha=0.0, **kwargs),
        soft_dqn_targets(r_t, discount_t, q_t, mode="soft-entropy", temperature=tau, n=1),
    )


@given(
    batch=munchausen_batches(),
    tau=sqst.temperatures(max_value=2.0),
    alpha=st.one_of(st.just(0.9), st.floats(0.0, 1.0)),
    clip=st.sampled_from(CLIPS),
)
def test_targets_equal_the_oracle_and_alpha_zero_gives_soft_entropy_dqn_targets(
    batch, tau, alpha, clip
):
    q_tm1, actions, r_t, discount_t, q_t = batch
    clip_value, clipped = _clip_arguments(clip)
    targets, without_bonus, soft_dqn = _targets(*batch, tau, alpha, clip_value, clipped=clipped)
    expected = oracles.munchausen_targets(
        q_tm1, actions, r_t, discount_t, q_t, temperature=tau, alpha=alpha, log_policy_clip=clip
    )
    scale = magnitude(expected, q_t, tau * np.log(oracles.softmax(q_tm1 / tau)))
    assert_close(targets, expected, tolerance=1e-12, scale=scale, what="vs oracle")
    assert_close(without_bonus, soft_dqn, tolerance=1e-12, scale=scale, what="α = 0 vs soft DQN")
    log_sum_exp = r_t + discount_t * tau * oracles.logsumexp(q_t / tau)
    assert_close(without_bonus, log_sum_exp, tolerance=1e-12, scale=scale, what="r + γτ lse")


@fast_jit(static_argnames=("clipped",))
def _backup(q, mdp, tau, alpha, clip, *, clipped):
    clip = clip if clipped else None
    return munchausen_bellman_backup(q, mdp, temperature=tau, alpha=alpha, log_policy_clip=clip)


@given(
    mdp=sqst.tabular_mdps(),
    tau=sqst.temperatures(max_value=2.0),
    alpha=st.floats(0.0, 1.0),
    clip=st.sampled_from(CLIPS),
    data=st.data(),
)
def test_the_backup_is_the_expected_target_over_the_next_state(mdp, tau, alpha, clip, data):
    q = data.draw(sqst.q_tables((mdp.num_states, mdp.num_actions), scale=5.0))
    clip_value, clipped = _clip_arguments(clip)
    backup = np.asarray(_backup(q, mdp, tau, alpha, clip_value, clipped=clipped))
    transitions, rewards = np.asarray(mdp.transitions), np.asarray(mdp.rewards)
    expected = np.empty_like(backup)
    states = np.arange(mdp.num_states)
    for s in range(mdp.num_states):
        for a in range(mdp.num_actions):
            # one transition from (s, a) into every next state, averaged with P(·|s, a)
            targets = oracles.munchausen_targets(
                np.repeat(q[s][None], mdp.num_states, axis=0),
                np.full(mdp.num_states, a),
                np.full(mdp.num_states, rewards[s, a]),
                np.full(mdp.num_states, float(mdp.discount)),
                q[states],
                temperature=tau,
                alpha=alpha,
                log_policy_clip=clip,
            )
            expected[s, a] = transitions[s, a] @ targets
    scale = magnitude(expected, q, tau * np.log(oracles.softmax(q / tau)))
    assert_close(backup, expected, tolerance=1e-12, scale=scale, what="backup vs E_s' y")
