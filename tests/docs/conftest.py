"""Shared fixtures of the documentation tests: the repository root and one strict build."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"


def build_site(site_dir: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Runs `mkdocs build --strict` for the repository into `site_dir` (extra `env` set)."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "--config-file",
            str(REPO / "mkdocs.yml"),
            "--site-dir",
            str(site_dir),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1", **(env or {})},
    )


@pytest.fixture(scope="session")
def built_site(tmp_path_factory) -> Path:
    """The site built once per test session (per xdist worker) with --strict."""
    site = tmp_path_factory.mktemp("site")
    result = build_site(site)
    if result.returncode != 0:
        pytest.fail(
            f"`mkdocs build --strict` failed (exit {result.returncode}):\n"
            f"{result.stdout[-4000:]}\n{result.stderr[-8000:]}"
        )
    return site


@pytest.fixture(scope="session")
def site_builder():
    """`build_site`, for tests that need a build with other settings."""
    return build_site
