"""Checkers that run the suite's central properties against a user's own functions.

`check_soft_q_gradient_identity(my_loss)` runs the main theorem [E15] with
hypothesis against any soft Q-learning loss that has the signature of
`softeq.core.soft_q_learning_loss`; `check_soft_n_step_targets(my_targets)`
runs the brute-force comparison of [E13] against any n-step soft target
function with the signature of `softeq.core.soft_n_step_targets`. Both raise
`PropertyViolation` (a subclass of `AssertionError`) carrying the (shrunk)
counterexample when the property fails and return None when it holds; they
raise explicitly, so `python -O` cannot switch them off. They switch JAX to
float64 while they run.

Example:
  >>> from softeq.core import soft_q_learning_loss
  >>> from softeq.properties import check_soft_q_gradient_identity
  >>> check_soft_q_gradient_identity(soft_q_learning_loss, max_examples=5)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from softeq.core import TabularMDP, soft_n_step_targets, soft_q_learning_loss
from softeq.properties import oracles
from softeq.properties import strategies as sqst
from softeq.properties.equivalence import EquivalenceGradients, expected_gradients
from softeq.properties.violations import PropertyViolation

__all__ = [
    "IDENTITY_SHAPES",
    "MODELS",
    "PropertyViolation",
    "SoftQIdentityCase",
    "assert_soft_q_gradient_identity",
    "check_soft_n_step_targets",
    "check_soft_q_gradient_identity",
    "linear_q_table",
    "soft_q_identity_cases",
    "tabular_q_table",
]

MODELS = ("tabular", "linear")
"""Parameterisations of Q_θ that the main-theorem cases draw from."""

IDENTITY_SHAPES = ((2, 3), (3, 2))
"""`(S, A)` sizes of the main-theorem cases: unequal, so a mix-up of the state
and action axes cannot go unnoticed, and few, so each compiles once."""


def tabular_q_table(params: jax.Array) -> jax.Array:
    """Q_θ = θ: the `[S, A]` parameters are the table."""
    return params


def linear_q_table(params: dict) -> jax.Array:
    """Q_θ(s, a) = φ(s, a)·w with `params = {"features": [S, A, F], "weights": [F]}`.

    Both leaves are differentiated, so the identity is checked for the
    weights and for the features alike.
    """
    return jnp.einsum("saf,f->sa", params["features"], params["weights"])


_Q_TABLE_FNS = {"tabular": tabular_q_table, "linear": linear_q_table}


class SoftQIdentityCase(NamedTuple):
    """One instance of the main theorem [E15].

    Attributes:
      mdp: the MDP (its discount is γ; its μ gives s_0).
      model: "tabular" or "linear".
      params: θ (`[S, A]` array, or the dict of `linear_q_table`).
      temperature: τ.
      n: window of the n-step targets.
      horizon: H, the length of the enumerated trajectories.
      log_prior: `[A]` log π̄.
      terminal_states: `[S]` bool; entering one ends the episode.
    """

    mdp: TabularMDP
    model: str
    params: object
    temperature: float
    n: int
    horizon: int
    log_prior: np.ndarray
    terminal_states: np.ndarray

    @property
    def q_table_fn(self) -> Callable:
        return _Q_TABLE_FNS[self.model]


@st.composite
def soft_q_identity_cases(
    draw,
    *,
    models: Sequence[str] = MODELS,
    n_values: Sequence[int] = (1, 2, 3),
    horizon: int = 3,
    shapes: Sequence[tuple[int, int]] = IDENTITY_SHAPES,
    num_features: int = 2,
    min_temperature: float = 0.05,
    max_temperature: float = 5.0,
    q_scale: float = 3.0,
    logit_scale: float = 4.0,
) -> SoftQIdentityCase:
    """Random instances of [E15]: MDP, Q_θ, τ, n, π̄ and terminal states.

    Args:
      models: parameterisations of Q_θ to draw from.
      n_values: windows to draw n from.
      horizon: length H of the enumerated trajectories.
      shapes: `(S, A)` pairs to draw the MDP's size from; each pair, model and
        n is one compilation of the exact expectation, so the menu is short.
      num_features: F of the linear model.
      min_temperature: lower end of the range of τ (drawn log-uniformly).
      max_temperature: upper end of the range of τ.
      q_scale: tabular Q entries lie in [−q_scale, q_scale]; linear weights
        in [−q_scale·2/3, q_scale·2/3] with features in [−1, 1].
      logit_scale: transition and μ logits lie in [−logit_scale, logit_scale].
    """
    if not shapes:
        raise ValueError("`shapes` must list at least one (num_states, num_actions) pair.")
    unknown = [m for m in models if m not in MODELS]
    if unknown or not models:
        raise ValueError(f"`models` must be a non-empty subset of {MODELS}, got {models!r}.")
    if not n_values or any(int(n) < 1 for n in n_values):
        raise ValueError(f"`n_values` must be integers >= 1, got {n_values!r}.")
    num_states, num_actions = draw(st.sampled_from(tuple(shapes)))
    mdp = draw(
        sqst.tabular_mdps(
            min_states=num_states,
            max_states=num_states,
            min_actions=num_actions,
            max_actions=num_actions,
            logit_scale=logit_scale,
        )
    )
    model = draw(st.sampled_from(tuple(models)))
    shape = (mdp.num_states, mdp.num_actions)
    if model == "tabular":
        params = draw(sqst.q_tables(shape, scale=q_scale))
    else:
        features = draw(sqst.linear_feature_maps(*shape, num_features=num_features))
        weight_scale = q_scale * 2.0 / 3.0
        weights = draw(
            sqst.float_arrays(features.shape[-1:], min_value=-weight_scale, max_value=weight_scale)
        )
        params = {"features": features, "weights": weights}
    return SoftQIdentityCase(
        mdp=mdp,
        model=model,
        params=params,
        temperature=draw(sqst.temperatures(min_value=min_temperature, max_value=max_temperature)),
        n=int(draw(st.sampled_from(tuple(n_values)))),
        horizon=horizon,
        log_prior=draw(sqst.log_priors(mdp.num_actions)),
        terminal_states=draw(sqst.terminal_states(mdp.num_states)),
    )


def _max_abs(tree) -> float:
    return float(max(np.max(np.abs(np.asarray(x))) for x in jax.tree_util.tree_leaves(tree)))


def assert_soft_q_gradient_identity(
    case: SoftQIdentityCase,
    *,
    loss_fn: Callable = soft_q_learning_loss,
    tolerance: float = 1e-9,
) -> EquivalenceGradients:
    """Checks ∇E[L_soft-Q] = −τ·(policy gradient) + ∇E[L_V] on one case, in exact expectation.

    The difference must be at most `tolerance` times the gradient scale (the
    largest entry of the three gradients, floored at 1e-3 so that an instance
    whose gradients all vanish is held to an absolute 1e-3·tolerance). A
    non-finite difference fails too.

    Returns:
      the `EquivalenceGradients` of the case.

    Raises:
      PropertyViolation: when the difference exceeds the allowance; the message
        gives the difference, the allowance, the case and both gradients.
    """
    grads = expected_gradients(
        case.q_table_fn,
        case.params,
        case.mdp,
        temperature=case.temperature,
        n=case.n,
        horizon=case.horizon,
        log_prior=case.log_prior,
        terminal_states=case.terminal_states,
        soft_q_loss_fn=loss_fn,
    )
    scale = max(
        _max_abs(grads.soft_q),
        case.temperature * _max_abs(grads.policy_gradient),
        _max_abs(grads.value),
        1e-3,
    )
    difference = float(grads.max_abs_difference)
    if not difference <= tolerance * scale:  # also true for NaN
        raise PropertyViolation(
            f"soft Q-learning gradient differs from −τ·policy gradient + value gradient by "
            f"{difference:.3e} (allowed {tolerance:.1e} × scale {scale:.3e}) for "
            f"model={case.model!r}, n={case.n}, τ={case.temperature!r}, "
            f"γ={float(case.mdp.discount)!r}, terminal_states={case.terminal_states.tolist()}, "
            f"log_prior={case.log_prior.tolist()}.\n"
            f"soft-Q gradient:  {jax.tree_util.tree_map(np.asarray, grads.soft_q)}\n"
            f"−τ·PG + ∇value:   {jax.tree_util.tree_map(np.asarray, grads.combined)}"
        )
    return grads


def _checker_settings(max_examples: int, derandomize: bool) -> settings:
    if isinstance(max_examples, bool) or not isinstance(max_examples, int) or max_examples < 1:
        raise ValueError(f"`max_examples` must be an integer >= 1, got {max_examples!r}.")
    return settings(
        max_examples=max_examples,
        derandomize=derandomize,
        database=None,
        deadline=None,
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow],
    )


def check_soft_q_gradient_identity(
    loss_fn: Callable = soft_q_learning_loss,
    *,
    max_examples: int = 100,
    tolerance: float = 1e-9,
    n_values: Sequence[int] = (1, 2, 3),
    models: Sequence[str] = MODELS,
    horizon: int = 3,
    shapes: Sequence[tuple[int, int]] = IDENTITY_SHAPES,
    derandomize: bool = True,
) -> None:
    """Checks the main theorem [E15] for a user's soft Q-learning loss.

    For random MDPs (with random terminal states), tabular and linear Q_θ,
    temperatures, priors and n, the exact expected gradient of `loss_fn` over
    every trajectory of length `horizon` (actions from the Boltzmann policy of
    Q_θ) must equal −τ times the entropy-regularised n-step policy gradient
    plus the value-fit gradient, both computed with softeq.

    Args:
      loss_fn: a loss with the signature of `softeq.core.soft_q_learning_loss`:
        `(q_tm1 [T, A], a_tm1 [T], r_t [T], discount_t [T], q_t [T, A], *,
        temperature, n, log_prior) -> []`. It is jitted with `n` static and
        `temperature` traced.
      max_examples: number of hypothesis examples.
      tolerance: allowed difference relative to the gradient scale; 1e-9 is
        far above float64 round-off (at most ~5e-14 here) and far below any real
        discrepancy.
      n_values: windows to draw n from.
      models: parameterisations of Q_θ to draw from ("tabular", "linear").
      horizon: trajectory length H (S^(H+1)·A^H paths are enumerated).
      shapes: `(S, A)` sizes to draw the MDPs from.
      derandomize: use a fixed sequence of examples (reproducible runs).

    Raises:
      PropertyViolation: (an `AssertionError`) with the shrunk counterexample,
        when the identity fails.
    """
    cases = soft_q_identity_cases(
        models=models,
        n_values=n_values,
        horizon=horizon,
        shapes=shapes,
    )

    @_checker_settings(max_examples, derandomize)
    @given(case=cases)
    def soft_q_gradient_identity(case):
        assert_soft_q_gradient_identity(case, loss_fn=loss_fn, tolerance=tolerance)

    with jax.enable_x64(True):
        soft_q_gradient_identity()


def _check_targets_match(
    got: np.ndarray, expected: np.ndarray, *, tolerance: float, temperature: float, n: int
) -> None:
    """Raises `PropertyViolation` unless `got [T]` equals the oracle's `expected [T]`."""
    if got.shape != expected.shape:
        raise PropertyViolation(
            f"n-step soft targets have shape {got.shape}, expected {expected.shape} ([T], one "
            f"target per transition) for n={n}, τ={temperature!r}."
        )
    scale = 1.0 + max(float(np.max(np.abs(expected))), temperature)
    errors = np.abs(got.astype(np.float64) - expected)
    worst = int(np.argmax(np.where(np.isnan(errors), np.inf, errors)))
    if not np.all(errors <= tolerance * scale):  # NaN fails too
        raise PropertyViolation(
            f"n-step soft targets differ from the brute-force recursion [E13] by "
            f"{errors[worst]:.3e} at index {worst} (allowed {tolerance:.1e} × scale "
            f"{scale:.3e}) for n={n}, τ={temperature!r}.\n"
            f"got:      {got.tolist()}\nexpected: {expected.tolist()}"
        )


def check_soft_n_step_targets(
    targets_fn: Callable = soft_n_step_targets,
    *,
    max_examples: int = 100,
    tolerance: float = 1e-10,
    n_values: Sequence[int] = (1, 2, 3, 4),
    derandomize: bool = True,
) -> None:
    """Checks a user's n-step soft targets against the brute-force recursion of [E13].

    Args:
      targets_fn: a function with the signature of
        `softeq.core.soft_n_step_targets`: `(r_t, discount_t, v_t, kl_t, *,
        temperature, n) -> [T]`. It is jitted with `n` static and
        `temperature` traced.
      max_examples: number of hypothesis examples.
      tolerance: allowed absolute difference per target relative to the
        largest input magnitude (inputs lie in [−3, 3]).
      n_values: windows to draw n from.
      derandomize: use a fixed sequence of examples.

    Raises:
      PropertyViolation: (an `AssertionError`) with the shrunk counterexample,
        when a target differs or has the wrong shape.
    """

    jitted_targets = jax.jit(targets_fn, static_argnames=("n",))

    @_checker_settings(max_examples, derandomize)
    @given(
        stream=sqst.soft_streams(),
        temperature=sqst.temperatures(),
        n=st.sampled_from(tuple(n_values)),
    )
    def soft_n_step_targets_match_recursion(stream, temperature, n):
        expected = oracles.n_step_soft_targets(
            stream.r_t, stream.discount_t, stream.v_t, stream.kl_t, temperature=temperature, n=n
        )
        got = np.asarray(
            jitted_targets(
                stream.r_t, stream.discount_t, stream.v_t, stream.kl_t, temperature=temperature, n=n
            )
        )
        _check_targets_match(got, expected, tolerance=tolerance, temperature=temperature, n=n)

    with jax.enable_x64(True):
        soft_n_step_targets_match_recursion()
