"""Soak tests: long, wall-clock-bound runs; `make soak` runs them, `make unit` skips them."""

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "soak: long wall-clock soak test (make soak)")
