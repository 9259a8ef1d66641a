"""Small helpers shared by the property files (not part of the public API)."""

from __future__ import annotations

import functools

import jax
import numpy as np

from softeq.properties.equivalence import FAST_COMPILE


def fast_jit(fn=None, **jit_kwargs):
    """`jax.jit` with the suite's fast-compile XLA options (each program runs few times)."""
    if fn is None:
        return functools.partial(fast_jit, **jit_kwargs)
    return jax.jit(fn, compiler_options=FAST_COMPILE, **jit_kwargs)


def assert_close(actual, expected, *, tolerance: float, scale: float = 1.0, what: str = "") -> None:
    """|actual − expected| ≤ tolerance·scale elementwise, with a message naming `what`."""
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    np.testing.assert_allclose(actual, expected, rtol=0.0, atol=tolerance * scale, err_msg=what)


def magnitude(*arrays) -> float:
    """1 + the largest absolute entry of the arrays: the scale of round-off in their sums."""
    return 1.0 + max(float(np.max(np.abs(np.asarray(a, np.float64)))) for a in arrays)
