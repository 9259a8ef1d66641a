"""Run the property suite from an installed package: `python -m softeq.properties`.

Usage:
  python -m softeq.properties [--profile {dev,ci,nightly}] [pytest arguments ...]

The suite is the set of `test_*.py` files installed beside this module; they
are collected from the package directory itself, with the hypothesis profile
given by `--profile` (default `ci`). Any other arguments go to pytest
unchanged, e.g. `-n 2` (with pytest-xdist) or `-k main_theorem`. No
configuration file of the current directory is read and nothing is written
to disk (no pytest cache, no example database).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from softeq.properties import profiles


def pytest_arguments(profile: str, extra: list[str]) -> list[str]:
    """The pytest command line that runs the installed suite under `profile`."""
    package_dir = Path(__file__).resolve().parent
    return [
        str(package_dir),
        f"--hypothesis-profile={profile}",
        "--import-mode=importlib",
        "-p",
        "no:cacheprovider",
        "--rootdir",
        str(package_dir),
        # an empty configuration: the caller's pytest.ini / pyproject.toml
        # (addopts, testpaths, markers) must not change what the suite does.
        "-c",
        os.devnull,
        # `python -m softeq.properties` imports hypothesis (through this
        # package) before pytest starts, so pytest cannot rewrite its asserts.
        "-W",
        "ignore::pytest.PytestAssertRewriteWarning",
        *extra,
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m softeq.properties",
        description="Run softeq's property suite (the paper's identities on random MDPs).",
        epilog="Further arguments are passed to pytest.",
    )
    parser.add_argument(
        "--profile",
        choices=sorted(profiles.PROFILES),
        default="ci",
        help="hypothesis profile: dev (20 examples), ci (100, derandomised), nightly (2000)",
    )
    args, extra = parser.parse_known_args(argv)
    import pytest

    return int(pytest.main(pytest_arguments(args.profile, extra)))


if __name__ == "__main__":
    sys.exit(main())
