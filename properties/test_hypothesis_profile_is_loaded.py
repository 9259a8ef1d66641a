"""The hypothesis profile named on the command line is the one in force.

Under `--hypothesis-profile=ci` every property runs at least 100
derandomised examples with no deadline and no example database; the check
guards against a conftest that fails to register or load the profiles.
"""

from __future__ import annotations

from hypothesis import settings

from softeq.properties import profiles


def test_loaded_profile_matches_its_registration(hypothesis_profile_name):
    assert hypothesis_profile_name in profiles.PROFILES
    expected = settings.get_profile(hypothesis_profile_name)
    current = settings()
    assert current.max_examples == expected.max_examples
    assert current.derandomize == expected.derandomize
    assert current.deadline is None
    assert current.database is None
    if hypothesis_profile_name == "ci":
        assert current.max_examples >= profiles.CI_MIN_EXAMPLES
        assert current.derandomize
        assert current.print_blob
