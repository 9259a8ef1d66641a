"""Shared set-up for the example-based tests of softeq.core.

Every test here runs in float64: the expected values are worked out by hand in
exact arithmetic, so the only error left is floating-point rounding, which in
float64 is small enough to compare at rtol = atol = 1e-12 (see each file).
x64 is switched on per test with `jax.enable_x64`, not globally, so that the
doctests of core (which print float32 results) and other test folders that
share a pytest process keep jax's default precision.
"""

from __future__ import annotations

import jax
import pytest


@pytest.fixture(autouse=True)
def _float64():
    with jax.enable_x64(True):
        yield
