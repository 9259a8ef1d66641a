"""The public checkers keep failing wrong code when Python runs with `-O`.

`python -O` deletes every bare `assert` statement, so a checker built on
`assert` would silently accept any loss there. A fresh `python -O` process
runs each public checker of softeq.properties (the main theorem [E15], the
n-step soft targets [E13]) against softeq's own function
(which must pass) and against a deliberately wrong one (which must raise
`PropertyViolation`), and reports what happened as JSON; the script itself
uses no `assert`, and it first confirms that `__debug__` is off, i.e. that
asserts really are gone in that process.

The wrong functions are the same bugs as in
test_checkers_accept_softeq_and_reject_wrong_soft_q_losses.py: an n-step
soft-Q target that forgets the −τ·KL terms of the intermediate states (found
with n = 2 within a few draws), and n-step targets without those terms. One
shape, one model and n = 2 keep it to one compilation per function.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from softeq.properties import PropertyViolation

_SCRIPT = textwrap.dedent(
    """
    import json

    import jax
    import jax.numpy as jnp
    import rlax

    from softeq.core import (
        soft_n_step_targets,
        soft_q_learning_loss,
        soft_value,
    )
    from softeq.properties import (
        PropertyViolation,
        check_soft_n_step_targets,
        check_soft_q_gradient_identity,
    )


    def loss_forgetting_the_kl_terms(
        q_tm1, a_tm1, r_t, discount_t, q_t, *, temperature, n, log_prior
    ):
        def one(row):
            return soft_value(row, temperature=temperature, log_prior=log_prior)

        v_t = jax.vmap(one)(jax.lax.stop_gradient(q_t))
        targets = jax.lax.stop_gradient(
            rlax.n_step_bootstrapped_returns(r_t, discount_t, v_t, n)
        )
        taken = jnp.take_along_axis(q_tm1, a_tm1[:, None], axis=-1)[:, 0]
        return jnp.mean(0.5 * jnp.square(taken - targets))


    def targets_forgetting_the_kl_terms(r_t, discount_t, v_t, kl_t, *, temperature, n):
        return rlax.n_step_bootstrapped_returns(r_t, discount_t, v_t, n)


    def outcome(check, fn, **options):
        try:
            check(fn, **options)
        except PropertyViolation as error:
            return {"raised": "PropertyViolation", "message": str(error)}
        except Exception as error:  # any other failure is reported, not hidden
            return {"raised": type(error).__name__, "message": str(error)}
        return {"raised": None, "message": ""}


    identity = dict(max_examples=10, n_values=(2,), models=("tabular",), shapes=((2, 3),))
    targets = dict(max_examples=10, n_values=(2,))
    report = {
        "debug": __debug__,
        "identity_softeq": outcome(
            check_soft_q_gradient_identity, soft_q_learning_loss, **identity
        ),
        "identity_wrong": outcome(
            check_soft_q_gradient_identity, loss_forgetting_the_kl_terms, **identity
        ),
        "targets_softeq": outcome(check_soft_n_step_targets, soft_n_step_targets, **targets),
        "targets_wrong": outcome(
            check_soft_n_step_targets, targets_forgetting_the_kl_terms, **targets
        ),
    }
    print("REPORT " + json.dumps(report))
    """
)


@pytest.fixture(scope="module")
def optimised_report() -> dict:
    """Runs `_SCRIPT` under `python -O` once and returns its JSON report."""
    env = dict(os.environ)
    env.pop("PYTHONDEBUG", None)
    done = subprocess.run(
        [sys.executable, "-O", "-c", _SCRIPT],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("REPORT ")]
    if done.returncode != 0 or len(lines) != 1:
        pytest.fail(
            f"the python -O script failed (exit {done.returncode}):\n{done.stdout}\n{done.stderr}"
        )
    return json.loads(lines[0][len("REPORT ") :])


def test_the_subprocess_really_runs_without_asserts(optimised_report):
    assert optimised_report["debug"] is False


@pytest.mark.parametrize("name", ["identity_softeq", "targets_softeq"])
def test_softeq_functions_pass_the_checkers_under_python_O(optimised_report, name):
    assert optimised_report[name] == {"raised": None, "message": ""}


@pytest.mark.parametrize(
    ("name", "names_the_failure"),
    [
        ("identity_wrong", "differs from −τ·policy gradient + value gradient by"),
        ("targets_wrong", "differ from the brute-force recursion [E13] by"),
    ],
)
def test_wrong_functions_raise_property_violation_under_python_O(
    optimised_report, name, names_the_failure
):
    result = optimised_report[name]
    assert result["raised"] == "PropertyViolation", result
    assert names_the_failure in result["message"]
    assert "allowed" in result["message"]  # the message says by how much, against what


def test_property_violation_is_an_assertion_error():
    # test runners and code written against the earlier AssertionError contract
    # treat it as an ordinary failure.
    assert issubclass(PropertyViolation, AssertionError)
