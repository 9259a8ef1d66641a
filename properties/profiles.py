"""Hypothesis profiles of the property suite, registered in this one place.

| profile   | examples per property | randomness                | use                  |
|-----------|-----------------------|---------------------------|----------------------|
| `dev`     | 20                    | random, no database       | quick local runs     |
| `ci`      | 100                   | derandomised (fixed)      | `make properties`/CI |
| `nightly` | 2000                  | random, no database       | long scheduled runs  |

All three turn off the deadline and the `too_slow` health check: the first
example of a property pays for jit compilation, and on a shared machine the
wall-clock time of an example says nothing about the code under test. No
profile writes an example database, so running the suite from an installed
package leaves no files behind.

`conftest.py` imports this module (so `--hypothesis-profile=NAME` finds the
names) and loads `dev` when no profile is named; `python -m softeq.properties`
imports it too.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings

PROFILES: dict[str, dict] = {
    "dev": dict(max_examples=20, derandomize=False),
    "ci": dict(max_examples=100, derandomize=True, print_blob=True),
    "nightly": dict(max_examples=2000, derandomize=False, print_blob=True),
}
"""Keyword arguments of each profile beyond the shared ones below."""

DEFAULT_PROFILE = "dev"
"""The profile loaded when none is named on the command line."""

CI_MIN_EXAMPLES = 100
"""The least number of examples every property runs under the `ci` profile."""

_SHARED = dict(
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def register_profiles() -> None:
    """Registers `dev`, `ci` and `nightly` with hypothesis (idempotent)."""
    for name, options in PROFILES.items():
        settings.register_profile(name, **_SHARED, **options)


register_profiles()
