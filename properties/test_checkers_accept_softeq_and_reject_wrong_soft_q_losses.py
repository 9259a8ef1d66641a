"""The public checkers accept softeq's functions and reject deliberately wrong ones.

`check_soft_q_gradient_identity` runs the main theorem [E15] against a
user-supplied soft Q-learning loss; it must pass for softeq's
`soft_q_learning_loss` and raise AssertionError (carrying the counterexample)
for a loss whose n-step target forgets the KL terms, and for one that lets
the gradient flow through the target. `check_soft_n_step_targets` likewise
accepts softeq's targets and rejects targets without the KL terms.

The wrong losses are checked with n = 2 (with n = 1 the target has no KL
term to forget), one shape and at most 20 examples: each wrong loss is a new
program to compile, the first violation is found within a handful of draws,
and shrinking it is bounded by hypothesis.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest
import rlax
from hypothesis import settings

from softeq.core import boltzmann_kl, soft_n_step_targets, soft_q_learning_loss, soft_value
from softeq.properties import check_soft_n_step_targets, check_soft_q_gradient_identity


def _values_and_kls(q_t, temperature, log_prior):
    def one(row):
        return (
            soft_value(row, temperature=temperature, log_prior=log_prior),
            boltzmann_kl(row, temperature=temperature, log_prior=log_prior),
        )

    return jax.vmap(one)(q_t)


def loss_forgetting_the_kl_terms(q_tm1, a_tm1, r_t, discount_t, q_t, *, temperature, n, log_prior):
    """n-step target r + γr' + … + γⁿV(s_n): the −τ KL of intermediate states is missing."""
    v_t, _ = _values_and_kls(jax.lax.stop_gradient(q_t), temperature, log_prior)
    targets = jax.lax.stop_gradient(rlax.n_step_bootstrapped_returns(r_t, discount_t, v_t, n))
    taken = jnp.take_along_axis(q_tm1, a_tm1[:, None], axis=-1)[:, 0]
    return jnp.mean(0.5 * jnp.square(taken - targets))


def loss_without_stop_gradient(q_tm1, a_tm1, r_t, discount_t, q_t, *, temperature, n, log_prior):
    """The right target, but the gradient also flows into it through Q(s')."""
    v_t, kl_t = _values_and_kls(q_t, temperature, log_prior)
    targets = soft_n_step_targets(r_t, discount_t, v_t, kl_t, temperature=temperature, n=n)
    taken = jnp.take_along_axis(q_tm1, a_tm1[:, None], axis=-1)[:, 0]
    return jnp.mean(0.5 * jnp.square(taken - targets))


def targets_forgetting_the_kl_terms(r_t, discount_t, v_t, kl_t, *, temperature, n):
    return rlax.n_step_bootstrapped_returns(r_t, discount_t, v_t, n)


def test_softeq_soft_q_loss_passes_the_gradient_identity_checker():
    # one model, n and shape (one compilation): the main-theorem file covers
    # the others; this runs the public entry point end to end.
    check_soft_q_gradient_identity(
        soft_q_learning_loss,
        max_examples=settings().max_examples,
        n_values=(2,),
        models=("linear",),
        shapes=((3, 2),),
    )


@pytest.mark.parametrize("wrong_loss", [loss_forgetting_the_kl_terms, loss_without_stop_gradient])
def test_wrong_soft_q_losses_are_rejected_with_a_counterexample(wrong_loss):
    with pytest.raises(AssertionError, match="differs from −τ·policy gradient") as failure:
        check_soft_q_gradient_identity(
            wrong_loss, max_examples=20, n_values=(2,), models=("tabular",), shapes=((2, 3),)
        )
    # hypothesis attaches the shrunk counterexample to the error.
    notes = "\n".join(getattr(failure.value, "__notes__", []))
    assert "case=SoftQIdentityCase(" in notes


def test_softeq_targets_pass_and_targets_without_kl_are_rejected():
    # n = 3 on streams of 3 and 5 steps covers full and truncated windows; the
    # n-step file checks n = 1 … 4 against the same oracle.
    check_soft_n_step_targets(
        soft_n_step_targets, max_examples=settings().max_examples, n_values=(3,)
    )
    with pytest.raises(AssertionError) as failure:
        check_soft_n_step_targets(targets_forgetting_the_kl_terms, max_examples=20, n_values=(2,))
    assert "stream=SoftStream(" in "\n".join(getattr(failure.value, "__notes__", []))
