"""Entry checks shared by the core functions.

Everything here runs at trace time on static information (Python numbers,
shapes, dtypes), so it costs nothing inside `jax.jit`. A traced hyperparameter
(for example a temperature that is itself a jitted argument) cannot be checked
and is let through unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from numbers import Integral, Real

import chex
import jax
import jax.numpy as jnp
import numpy as np


def _python_number(value) -> float | None:
    """The value as a float when it is known before tracing, else None."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, Real):
        return float(value)
    if isinstance(value, jax.core.Tracer):
        return None
    try:
        array = jnp.asarray(value)
    except TypeError:
        return None
    if array.ndim == 0 and not isinstance(array, jax.core.Tracer):
        return float(array)
    return None


def check_temperature(temperature, *, allow_zero: bool = False, name: str = "temperature"):
    """Rejects a temperature that is not a positive (or, if allowed, zero) number."""
    allowed = "a finite number >= 0" if allow_zero else "a finite number > 0"
    if temperature is None:
        raise ValueError(f"`{name}` is required and must be {allowed}, got None.")
    if not isinstance(temperature, Real | np.ndarray | jax.Array):
        raise TypeError(
            f"`{name}` must be {allowed}, got {temperature!r} of type {type(temperature).__name__}."
        )
    value = _python_number(temperature)
    if value is None:
        if jnp.ndim(temperature) != 0:
            raise ValueError(f"`{name}` must be a scalar, got shape {jnp.shape(temperature)}.")
        return temperature
    bad = math.isnan(value) or math.isinf(value) or value < 0 or (value == 0 and not allow_zero)
    if bad:
        hint = ""
        if value == 0:
            # the one refusal users meet on purpose: say what zero would mean and who takes it.
            hint = (
                " Temperature 0 is the unregularised limit (soft values become max_a q, "
                "Boltzmann policies greedy), which this function does not compute; the "
                "returns functions (targets, TD errors, advantages, λ-returns) accept 0."
            )
        raise ValueError(f"`{name}` must be {allowed}, got {temperature!r}.{hint}")
    return temperature


def check_discount(discount, *, name: str = "discount"):
    value = _python_number(discount)
    if value is not None and not 0.0 <= value <= 1.0:
        raise ValueError(f"`{name}` must lie in [0, 1], got {discount!r}.")
    return discount


def check_in_interval(
    value, *, name: str, low: float, high: float, open_low: bool = False, open_high: bool = False
):
    """Rejects a Python number outside [low, high] (ends open when asked); traced values pass."""
    number = _python_number(value)
    if number is None:
        return value
    above = number > low if open_low else number >= low
    below = number < high if open_high else number <= high
    if not (above and below):  # also catches NaN, for which every comparison is False
        interval = f"{'(' if open_low else '['}{low:g}, {high:g}{')' if open_high else ']'}"
        raise ValueError(f"`{name}` must lie in {interval}, got {value!r}.")
    return value


def check_positive_int(value, *, name: str):
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
        raise ValueError(f"`{name}` must be an integer >= 1, got {value!r}.")
    return value


def check_choice(value, *, name: str, choices: Collection[str]):
    if value not in choices:
        allowed = ", ".join(repr(c) for c in choices)
        raise ValueError(f"`{name}` must be one of {allowed}; got {value!r}.")
    return value


def check_rank(array, rank: int, *, name: str):
    """chex's rank check with an error that names the argument."""
    if not hasattr(array, "shape"):
        array = jnp.asarray(array)
    if array.ndim != rank:
        raise ValueError(
            f"`{name}` must have rank {rank}, got shape {tuple(array.shape)} (rank {array.ndim})."
        )
    chex.assert_rank(array, rank)
    return array


def check_integer(array, *, name: str):
    dtype = jnp.asarray(array).dtype
    if not jnp.issubdtype(dtype, jnp.integer):
        raise TypeError(f"`{name}` must hold integer actions, got dtype {dtype}.")
    return array


def check_non_negative_finite(value, *, name: str):
    number = _python_number(value)
    if number is not None and not (number >= 0.0 and math.isfinite(number)):
        raise ValueError(f"`{name}` must be a finite number >= 0, got {value!r}.")
    return value


def check_float(array, *, name: str):
    if not jnp.issubdtype(jnp.asarray(array).dtype, jnp.floating):
        raise TypeError(f"`{name}` must hold floating-point values, got dtype {array.dtype}.")
    return array


def check_same_leading(arrays: dict, *, axis_name: str = "T"):
    """All named arrays share their leading dimension."""
    lengths = {name: jnp.shape(a)[0] for name, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        listed = ", ".join(f"`{k}` has {v}" for k, v in lengths.items())
        raise ValueError(f"arguments must share their leading axis {axis_name}: {listed}.")


def check_last_dim(array, size: int, *, name: str, expected_from: str):
    if jnp.shape(array)[-1] != size:
        raise ValueError(
            f"`{name}` must have {size} actions in its last axis to match {expected_from}, "
            f"got shape {tuple(jnp.shape(array))}."
        )


PRIOR_CONVENTIONS = ("uniform", "entropy")
"""The names `log_prior` accepts for the two standard conventions (see `resolve_log_prior`)."""


def resolve_log_prior(log_prior, num_actions: int, dtype, *, name: str = "log_prior"):
    """log π̄ as an array broadcastable against `[..., A]`.

    None or "uniform" mean the uniform prior 1/A (the penalty is the KL to
    uniform); "entropy" means π̄ ≡ 1, log π̄ = 0 (the penalty is minus the
    entropy: the entropy-bonus convention); anything else is taken as log π̄.
    """
    if isinstance(log_prior, str):
        check_choice(log_prior, name=name, choices=PRIOR_CONVENTIONS)
        if log_prior == "entropy":
            return jnp.zeros((num_actions,), dtype)
        log_prior = None
    if log_prior is None:
        return jnp.full((num_actions,), -math.log(num_actions), dtype)
    log_prior = jnp.asarray(log_prior)
    if log_prior.ndim == 0 or log_prior.shape[-1] != num_actions:
        raise ValueError(
            f"`{name}` must end in an axis of {num_actions} actions, got shape {log_prior.shape}."
        )
    return log_prior
