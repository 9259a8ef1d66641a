"""Bad inputs to softeq.core are rejected with an error that names the argument and the value.

Each row of `CASES` is one misuse: the call, the exception type it must raise,
the argument the message must name (in backquotes, as core writes it) and a
piece of the message that shows the offending value (or shape / dtype / sum).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np
import pytest

import softeq.core as core


class Case(NamedTuple):
    id: str
    call: Callable[[], object]
    error: type[Exception]
    argument: str
    shown: str


def mdp(**overrides) -> core.TabularMDP:
    """A valid 2-state, 2-action MDP, or one with some fields replaced."""
    fields = {
        "transitions": jnp.full((2, 2, 2), 0.5),
        "rewards": jnp.zeros((2, 2)),
        "discount": jnp.array(0.9),
        "initial_distribution": jnp.array([1.0, 0.0]),
    }
    fields.update(overrides)
    return core.TabularMDP(**fields)


def one_state_mdp() -> core.TabularMDP:
    return core.TabularMDP(
        transitions=jnp.ones((1, 2, 1)),
        rewards=jnp.zeros((1, 2)),
        discount=jnp.array(0.5),
        initial_distribution=jnp.ones(1),
    )


def z(*shape, dtype=float):
    return jnp.zeros(shape, dtype)


def ones(n):
    return jnp.ones(n)


def sqll(**overrides):
    """soft_q_learning_loss on a valid T = 2, A = 2 batch, with some arguments replaced."""
    args = {
        "q_tm1": z(2, 2),
        "a_tm1": jnp.array([0, 1]),
        "r_t": ones(2),
        "discount_t": ones(2),
        "q_t": z(2, 2),
        "temperature": 1.0,
    }
    args.update(overrides)
    return core.soft_q_learning_loss(**args)


def a2c(**overrides):
    """a2c_loss on a valid T = 2, A = 2 batch, with some arguments replaced."""
    args = {
        "logits": z(3, 2),
        "values": z(3),
        "a_tm1": jnp.array([0, 1]),
        "r_t": ones(2),
        "discount_t": ones(2),
        "temperature": 0.1,
        "n": 1,
        "value_weight": 0.5,
    }
    args.update(overrides)
    return core.a2c_loss(**args)


def targets(**overrides):
    """soft_n_step_targets on a valid T = 3 trajectory, with some arguments replaced."""
    args = {"r_t": ones(3), "discount_t": ones(3), "v_t": ones(3), "kl_t": ones(3)}
    args.update(temperature=0.5, n=2)
    args.update(overrides)
    return core.soft_n_step_targets(**args)


def munchausen(**overrides):
    """munchausen_targets on a valid T = 1, A = 2 batch, with some arguments replaced."""
    args = {
        "q_tm1": z(1, 2),
        "a_tm1": jnp.array([0]),
        "r_t": ones(1),
        "discount_t": ones(1),
        "q_t": z(1, 2),
        "temperature": 0.03,
        "alpha": 0.9,
    }
    args.update(overrides)
    return core.munchausen_targets(**args)


def lambda_returns(**overrides):
    """soft_lambda_returns on a valid T = 3 trajectory, with some arguments replaced."""
    args = {"r_t": ones(3), "discount_t": ones(3), "v_t": ones(3), "kl_t": ones(3)}
    args.update(temperature=0.5, lambda_=0.9)
    args.update(overrides)
    return core.soft_lambda_returns(**args)


def sac_targets(**overrides):
    """sac_critic_targets on a valid T = 2, A = 2 batch, with some arguments replaced."""
    args = {
        "r_t": ones(2),
        "discount_t": ones(2),
        "q1_t": z(2, 2),
        "q2_t": z(2, 2),
        "logits_t": z(2, 2),
        "temperature": 0.1,
    }
    args.update(overrides)
    return core.sac_critic_targets(**args)


def temperature_pair(**overrides):
    """auto_temperature with valid settings, some replaced."""
    args = {"target_entropy_ratio": 0.98, "learning_rate": 3e-4}
    args.update(overrides)
    return core.auto_temperature(**args)


CASES = [
    # --- wrong rank or shape
    Case("q-rank-2", lambda: core.soft_value(z(1, 2), temperature=1.0), ValueError, "q", "(1, 2)"),
    Case(
        "q-table-rank-1",
        lambda: core.boltzmann_policy_table(z(2), temperature=1.0),
        ValueError,
        "q",
        "(2,)",
    ),
    Case(
        "discount_t-rank-2",
        lambda: targets(discount_t=jnp.ones((3, 1))),
        ValueError,
        "discount_t",
        "(3, 1)",
    ),
    Case(
        "transitions-not-square",
        lambda: mdp(transitions=jnp.full((2, 2, 3), 1 / 3)),
        ValueError,
        "transitions",
        "(2, 2, 3)",
    ),
    Case("rewards-shape", lambda: mdp(rewards=z(2, 3)), ValueError, "rewards", "(2, 3)"),
    Case(
        "policy-shape",
        lambda: core.evaluate_policy(jnp.full((3, 2), 0.5), mdp(), temperature=1.0),
        ValueError,
        "policy",
        "(3, 2)",
    ),
    Case(
        "q_t-shape",
        lambda: sqll(q_t=z(2, 3)),
        ValueError,
        "q_t",
        "(2, 3)",
    ),
    Case(
        "log_q-length",
        lambda: core.kl_divergence(jnp.log(jnp.array([0.5, 0.5])), z(3)),
        ValueError,
        "log_q",
        "(3,)",
    ),
    Case(
        "a2c-logits-not-T+1",
        lambda: a2c(logits=z(2, 2)),
        ValueError,
        "logits",
        "got leading size 2",
    ),
    Case(
        "temperature-not-scalar",
        lambda: core.soft_value(z(2), temperature=jnp.ones(2)),
        ValueError,
        "temperature",
        "(2,)",
    ),
    # --- mismatched lengths
    Case(
        "td-lengths",
        lambda: core.soft_td_errors(ones(3), ones(3), ones(2), ones(3), ones(3), temperature=1.0),
        ValueError,
        "v_tm1",
        "`v_tm1` has 2",
    ),
    Case(
        "targets-lengths",
        lambda: targets(kl_t=ones(4)),
        ValueError,
        "kl_t",
        "`kl_t` has 4",
    ),
    Case(
        "soft-q-loss-actions-length",
        lambda: sqll(a_tm1=jnp.array([0, 1, 1])),
        ValueError,
        "a_tm1",
        "`a_tm1` has 3",
    ),
    Case(
        "pg-advantages-length",
        lambda: core.regularised_policy_gradient_loss(
            z(2, 2), jnp.array([0, 1]), ones(3), temperature=0.1
        ),
        ValueError,
        "adv_t",
        "`adv_t` has 3",
    ),
    Case(
        "npg-lengths",
        lambda: core.natural_gradient_direction(jnp.eye(2), ones(3)),
        ValueError,
        "advantages",
        "`advantages` has 3",
    ),
    # --- temperature given as a bad Python number (or not a number at all)
    Case(
        "temperature-zero",
        lambda: core.soft_value(z(2), temperature=0.0),
        ValueError,
        "temperature",
        "0.0",
    ),
    Case(
        "temperature-negative",
        lambda: core.soft_bellman_backup(z(2, 2), mdp(), temperature=-1.5),
        ValueError,
        "temperature",
        "-1.5",
    ),
    Case(
        "temperature-nan",
        lambda: sqll(temperature=float("nan")),
        ValueError,
        "temperature",
        "nan",
    ),
    Case(
        "temperature-inf",
        lambda: core.boltzmann_log_policy(z(2), temperature=float("inf")),
        ValueError,
        "temperature",
        "inf",
    ),
    Case(
        "temperature-zero-matched-soft-q",
        lambda: core.a2c_matched_soft_q_loss(
            z(3, 2), z(3), jnp.array([0, 1]), ones(2), ones(2), temperature=0, n=1, value_weight=0.5
        ),
        ValueError,
        "temperature",
        "got 0",
    ),
    Case(
        "temperature-negative-evaluation",
        lambda: core.evaluate_policy(jnp.full((2, 2), 0.5), mdp(), temperature=-0.25),
        ValueError,
        "temperature",
        "-0.25",
    ),
    Case(
        "temperature-missing-for-soft-dqn",
        lambda: core.soft_dqn_targets(ones(1), ones(1), z(1, 2), mode="soft-kl"),
        ValueError,
        "temperature",
        "None",
    ),
    Case(
        "temperature-string",
        lambda: core.soft_value(z(2), temperature="0.1"),
        TypeError,
        "temperature",
        "'0.1'",
    ),
    # --- n, horizon, iterations below 1 or not integers
    Case("n-zero", lambda: targets(n=0), ValueError, "n", "got 0"),
    Case("n-negative", lambda: a2c(n=-1), ValueError, "n", "-1"),
    Case("n-fractional", lambda: targets(n=2.5), ValueError, "n", "2.5"),
    Case(
        "horizon-zero",
        lambda: core.finite_horizon_regularised_objective(
            jnp.full((2, 2), 0.5), mdp(), temperature=0.1, horizon=0
        ),
        ValueError,
        "horizon",
        "got 0",
    ),
    Case(
        "max-iterations-zero",
        lambda: core.soft_value_iteration(one_state_mdp(), temperature=1.0, max_iterations=0),
        ValueError,
        "max_iterations",
        "got 0",
    ),
    Case(
        "tolerance-negative",
        lambda: core.soft_value_iteration(one_state_mdp(), temperature=1.0, tolerance=-1e-3),
        ValueError,
        "tolerance",
        "-0.001",
    ),
    # --- MDPs that are not probability models
    Case(
        "transitions-sum",
        lambda: mdp(transitions=jnp.full((2, 2, 2), 0.3)),
        ValueError,
        "transitions",
        "0.6",
    ),
    Case(
        "transitions-negative",
        lambda: mdp(transitions=jnp.array([[[1.5, -0.5], [0.5, 0.5]], [[0.5, 0.5]] * 2])),
        ValueError,
        "transitions",
        "-0.5",
    ),
    Case(
        "initial-distribution-sum",
        lambda: mdp(initial_distribution=jnp.array([0.5, 0.0])),
        ValueError,
        "initial_distribution",
        "0.5",
    ),
    Case(
        "initial-distribution-negative",
        lambda: mdp(initial_distribution=jnp.array([1.25, -0.25])),
        ValueError,
        "initial_distribution",
        "-0.25",
    ),
    Case("discount-above-one", lambda: mdp(discount=1.5), ValueError, "discount", "1.5"),
    Case(
        "policy-negative",
        lambda: core.evaluate_policy(jnp.array([[1.5, -0.5], [0.5, 0.5]]), mdp(), temperature=0.1),
        ValueError,
        "policy",
        "-0.5",
    ),
    # --- unknown modes
    Case(
        "dqn-mode",
        lambda: core.soft_dqn_targets(ones(1), ones(1), z(1, 2), mode="soft", temperature=1.0),
        ValueError,
        "mode",
        "'soft'",
    ),
    Case(
        "bootstrap-mode",
        lambda: core.dqn_bootstrap_value(z(2), mode="max", temperature=1.0),
        ValueError,
        "mode",
        "'max'",
    ),
    Case("entropy-mode", lambda: a2c(entropy="full"), ValueError, "entropy", "'full'"),
    # --- log_prior of the wrong length
    Case(
        "log-prior-length",
        lambda: core.soft_value(z(2), temperature=1.0, log_prior=z(3)),
        ValueError,
        "log_prior",
        "(3,)",
    ),
    Case(
        "log-prior-length-a2c",
        lambda: a2c(log_prior=z(3)),
        ValueError,
        "log_prior",
        "(3,)",
    ),
    Case(
        "log-prior-states-backup",
        lambda: core.soft_bellman_backup(z(2, 2), mdp(), temperature=1.0, log_prior=z(3, 2)),
        ValueError,
        "log_prior",
        "(3, 2)",
    ),
    Case(
        "log-prior-states-soft-values",
        lambda: core.tabular_soft_values(z(1, 2), temperature=1.0, log_prior=z(3, 2)),
        ValueError,
        "log_prior",
        "(3, 2)",
    ),
    # --- integer q, float actions
    Case(
        "q-integer",
        lambda: core.soft_value(z(2, dtype=int), temperature=1.0),
        TypeError,
        "q",
        "int",
    ),
    Case(
        "q-table-integer",
        lambda: core.tabular_soft_values(z(2, 2, dtype=int), temperature=1.0),
        TypeError,
        "q",
        "int",
    ),
    Case("q_tm1-integer", lambda: sqll(q_tm1=z(2, 2, dtype=int)), TypeError, "q_tm1", "int"),
    Case(
        "q_tm1-integer-single",
        lambda: core.soft_q_learning(z(2, dtype=int), 0, 1.0, 0.5, z(2), temperature=1.0),
        TypeError,
        "q_tm1",
        "int",
    ),
    Case(
        "rewards-stream-integer",
        lambda: targets(r_t=jnp.ones(3, int)),
        TypeError,
        "r_t",
        "int",
    ),
    Case(
        "actions-float",
        lambda: sqll(a_tm1=jnp.array([0.0, 1.0])),
        TypeError,
        "a_tm1",
        "float",
    ),
    Case(
        "actions-float-a2c", lambda: a2c(a_tm1=jnp.array([0.0, 1.0])), TypeError, "a_tm1", "float"
    ),
    Case(
        "action-float-single",
        lambda: core.soft_q_learning(z(2), 0.0, 1.0, 0.5, z(2), temperature=1.0),
        TypeError,
        "a_tm1",
        "float",
    ),
    # --- epsilon out of (0, 1], negative or infinite damping
    Case(
        "epsilon-zero",
        lambda: core.damped_soft_q_targets(ones(2), ones(2), epsilon=0.0),
        ValueError,
        "epsilon",
        "0.0",
    ),
    Case(
        "epsilon-above-one",
        lambda: core.damped_soft_q_targets(ones(2), ones(2), epsilon=1.5),
        ValueError,
        "epsilon",
        "1.5",
    ),
    Case(
        "epsilon-nan",
        lambda: core.damped_soft_q_targets(ones(2), ones(2), epsilon=float("nan")),
        ValueError,
        "epsilon",
        "nan",
    ),
    Case(
        "damping-negative",
        lambda: core.natural_gradient_direction(jnp.eye(2), ones(2), damping=-0.1),
        ValueError,
        "damping",
        "-0.1",
    ),
    Case(
        "damping-inf",
        lambda: core.natural_gradient_direction(jnp.eye(2), ones(2), damping=float("inf")),
        ValueError,
        "damping",
        "inf",
    ),
    # --- the named log_prior conventions
    Case(
        "log-prior-unknown-name",
        lambda: core.soft_value(z(2), temperature=1.0, log_prior="kl-uniform"),
        ValueError,
        "log_prior",
        "'kl-uniform'",
    ),
    Case(
        "log-prior-unknown-name-tabular",
        lambda: core.soft_bellman_backup(z(2, 2), mdp(), temperature=1.0, log_prior="none"),
        ValueError,
        "log_prior",
        "'none'",
    ),
    # --- policy_soft_value and policy_entropy
    Case(
        "policy-soft-value-log-pi-length",
        lambda: core.policy_soft_value(z(2), jnp.log(jnp.full(3, 1 / 3)), temperature=0.1),
        ValueError,
        "log_pi",
        "(3,)",
    ),
    Case(
        "policy-soft-value-temperature-negative",
        lambda: core.policy_soft_value(z(2), jnp.log(jnp.full(2, 0.5)), temperature=-0.5),
        ValueError,
        "temperature",
        "-0.5",
    ),
    Case(
        "policy-entropy-logits-rank",
        lambda: core.policy_entropy(z(2, 2)),
        ValueError,
        "logits",
        "(2, 2)",
    ),
    # --- Munchausen targets and backup
    Case("munchausen-alpha", lambda: munchausen(alpha=1.5), ValueError, "alpha", "1.5"),
    Case("munchausen-alpha-negative", lambda: munchausen(alpha=-0.1), ValueError, "alpha", "-0.1"),
    Case(
        "munchausen-clip-positive",
        lambda: munchausen(log_policy_clip=0.5),
        ValueError,
        "log_policy_clip",
        "0.5",
    ),
    Case(
        "munchausen-temperature-zero",
        lambda: munchausen(temperature=0.0),
        ValueError,
        "temperature",
        "0.0",
    ),
    Case("munchausen-q_t-actions", lambda: munchausen(q_t=z(1, 3)), ValueError, "q_t", "(1, 3)"),
    Case(
        "munchausen-actions-float",
        lambda: munchausen(a_tm1=jnp.array([0.0])),
        TypeError,
        "a_tm1",
        "float",
    ),
    Case(
        "munchausen-lengths",
        lambda: munchausen(r_t=ones(2)),
        ValueError,
        "r_t",
        "`r_t` has 2",
    ),
    Case(
        "munchausen-backup-q-shape",
        lambda: core.munchausen_bellman_backup(z(3, 2), mdp(), temperature=0.1, alpha=0.5),
        ValueError,
        "q",
        "(3, 2)",
    ),
    # --- soft λ-returns
    Case("lambda-above-one", lambda: lambda_returns(lambda_=1.5), ValueError, "lambda_", "1.5"),
    Case("lambda-nan", lambda: lambda_returns(lambda_=float("nan")), ValueError, "lambda_", "nan"),
    Case(
        "lambda-per-step-length",
        lambda: lambda_returns(lambda_=jnp.full(2, 0.5)),
        ValueError,
        "lambda_",
        "(2,)",
    ),
    Case(
        "lambda-returns-temperature-negative",
        lambda: lambda_returns(temperature=-1.0),
        ValueError,
        "temperature",
        "-1.0",
    ),
    Case(
        "lambda-advantages-lengths",
        lambda: core.soft_lambda_advantages(
            ones(3), ones(3), ones(2), ones(3), ones(3), ones(3), temperature=0.1, lambda_=0.9
        ),
        ValueError,
        "v_tm1",
        "`v_tm1` has 2",
    ),
    # --- discrete SAC
    Case("sac-q2-shape", lambda: sac_targets(q2_t=z(2, 3)), ValueError, "q2_t", "(2, 3)"),
    Case(
        "sac-temperature-negative",
        lambda: sac_targets(temperature=-0.1),
        ValueError,
        "temperature",
        "-0.1",
    ),
    Case("sac-rewards-length", lambda: sac_targets(r_t=ones(3)), ValueError, "r_t", "`r_t` has 3"),
    Case(
        "sac-actor-weights-length",
        lambda: core.sac_actor_loss(z(2, 2), z(2, 2), z(2, 2), temperature=0.1, w_t=ones(3)),
        ValueError,
        "w_t",
        "(3,)",
    ),
    Case(
        "sac-actor-logits-integer",
        lambda: core.sac_actor_loss(z(2, 2, dtype=int), z(2, 2), z(2, 2), temperature=0.1),
        TypeError,
        "logits_tm1",
        "int",
    ),
    Case(
        "target-entropy-ratio-one",
        lambda: temperature_pair(target_entropy_ratio=1.0),
        ValueError,
        "target_entropy_ratio",
        "1.0",
    ),
    Case(
        "learning-rate-zero",
        lambda: temperature_pair(learning_rate=0.0),
        ValueError,
        "learning_rate",
        "0.0",
    ),
    Case(
        "initial-temperature-zero",
        lambda: temperature_pair(initial_temperature=0.0),
        ValueError,
        "initial_temperature",
        "0.0",
    ),
    Case(
        "temperature-loss-log-temperature-rank",
        lambda: core.auto_temperature_loss(ones(2), z(2, 2), target_entropy_ratio=0.5),
        ValueError,
        "log_temperature",
        "(2,)",
    ),
]


def test_the_table_is_big_enough_and_ids_are_unique():
    ids = [case.id for case in CASES]
    assert len(ids) >= 20
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_is_rejected_with_a_helpful_message(case: Case):
    with pytest.raises(case.error) as info:
        case.call()
    message = str(info.value)
    assert f"`{case.argument}`" in message, f"message does not name `{case.argument}`: {message}"
    assert case.shown in message, f"message does not show {case.shown!r}: {message}"


def test_valid_inputs_of_the_same_calls_are_accepted():
    # the helpers above must be valid apart from the one field each case breaks,
    # or the cases would pass for the wrong reason
    mdp()
    sqll()
    a2c()
    targets()
    core.soft_value(z(2), temperature=1.0)
    core.natural_gradient_direction(jnp.eye(2), ones(2), damping=0.1)
    core.damped_soft_q_targets(ones(2), ones(2), epsilon=1.0)
    core.soft_dqn_targets(ones(1), ones(1), z(1, 2), mode="soft-kl", temperature=1.0)
    munchausen()
    lambda_returns()
    sac_targets()
    temperature_pair()
    assert np.isfinite(float(core.soft_value_iteration(one_state_mdp(), temperature=1.0)[0, 0]))
