"""Shared pytest fixtures of the example-based tests.

Seeds: every test that trains or samples with a seed takes it through the
`shift_seeds` fixture, so the whole suite can be rerun on other seeds with
`SOFTEQ_TEST_SEED_OFFSET=100 make test` (or 1000, ...). A learning test whose
verdict depends on one lucky seed then fails where a new machine would fail
it, instead of passing here by chance.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest

SEED_OFFSET_ENV = "SOFTEQ_TEST_SEED_OFFSET"


def _seed_offset() -> int:
    raw = os.environ.get(SEED_OFFSET_ENV, "0")
    try:
        offset = int(raw)
    except ValueError:
        raise ValueError(f"{SEED_OFFSET_ENV} must be an integer >= 0, got {raw!r}.") from None
    if offset < 0:
        raise ValueError(f"{SEED_OFFSET_ENV} must be an integer >= 0, got {raw!r}.")
    return offset


@pytest.fixture(scope="session")
def seed_offset() -> int:
    """The offset added to every seed the tests use (`SOFTEQ_TEST_SEED_OFFSET`, default 0)."""
    return _seed_offset()


@pytest.fixture(scope="session")
def shift_seeds(seed_offset: int) -> Callable[..., list[int]]:
    """`shift_seeds(0, 1, 2)` → the same seeds moved by the suite's seed offset."""

    def shift(*seeds: int) -> list[int]:
        return [int(s) + seed_offset for s in seeds]

    return shift
