"""pytest set-up of the property suite: float64 JAX and the hypothesis profiles.

Run with `--hypothesis-profile=ci` (or `dev`, `nightly`); without it the `dev`
profile is loaded. The identities checked here are exact, so every property
runs in float64.
"""

from __future__ import annotations

import jax
import pytest
from hypothesis import settings

from softeq.properties import profiles

jax.config.update("jax_enable_x64", True)


def pytest_configure(config: pytest.Config) -> None:
    # hypothesis' own plugin loads a profile named by `--hypothesis-profile`;
    # only when none is named does the suite fall back to its default.
    if not config.getoption("hypothesis_profile", default=None):
        settings.load_profile(profiles.DEFAULT_PROFILE)


@pytest.fixture(scope="session")
def hypothesis_profile_name(pytestconfig: pytest.Config) -> str:
    """The name of the profile this session runs under."""
    return pytestconfig.getoption("hypothesis_profile", default=None) or profiles.DEFAULT_PROFILE
