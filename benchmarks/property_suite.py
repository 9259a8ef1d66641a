"""Wall time of every property test under the `ci` hypothesis profile.

Runs `pytest properties --hypothesis-profile=ci --durations=0` in a
subprocess (one worker, so that per-test times are not inflated by a second
worker on the same cores) and parses pytest's duration report: setup, call
and teardown of each test are summed per test. The first example of each
property pays for jit compilation, which is part of the figure.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

from benchmarks.harness import markdown_table

REPO_ROOT = Path(__file__).resolve().parent.parent
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)s\s+(setup|call|teardown)\s+(\S.*?)\s*$")
_SUMMARY = re.compile(r"\b\d+ (?:passed|failed|errors?)\b.*\bin [\d.]+s")
QUICK_FILE = "test_boltzmann_parameterisation_and_shift_invariance.py"


def parse_durations(output: str) -> dict[str, dict[str, float]]:
    """{test id: {"setup": s, "call": s, "teardown": s}} from pytest's `--durations` report."""
    per_test: dict[str, dict[str, float]] = defaultdict(
        lambda: {"setup": 0.0, "call": 0.0, "teardown": 0.0}
    )
    for line in output.splitlines():
        match = _DURATION.match(line)
        if match:
            seconds, phase, test_id = match.groups()
            per_test[test_id][phase] += float(seconds)
    return dict(per_test)


def run_suite(paths, *, profile: str, extra=()) -> tuple[dict, str, float, int]:
    """Runs pytest; returns (durations per test, summary line, wall seconds, exit status)."""
    command = [
        sys.executable,
        "-m",
        "pytest",
        *paths,
        f"--hypothesis-profile={profile}",
        "--durations=0",
        "--durations-min=0",
        "-q",
        *extra,
    ]
    start = time.perf_counter()
    proc = subprocess.run(
        command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=3600, check=False
    )
    wall = time.perf_counter() - start
    summary = ""
    for line in proc.stdout.splitlines():
        if _SUMMARY.search(line):
            summary = line.strip(" =")
    durations = parse_durations(proc.stdout)
    if not durations:
        raise RuntimeError(
            f"no durations in pytest's output (status {proc.returncode}):\n"
            f"{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
        )
    return durations, summary, wall, proc.returncode


def run(*, paths=("properties",), profile: str = "ci", quick: bool = False) -> tuple[str, list]:
    """Returns the markdown section and the raw rows (slowest test first)."""
    if quick:
        candidate = REPO_ROOT / "properties" / QUICK_FILE
        if candidate.exists():
            paths = (str(candidate.relative_to(REPO_ROOT)),)
        else:
            files = sorted((REPO_ROOT / "properties").glob("test_*.py"))
            paths = (str(files[0].relative_to(REPO_ROOT)),)
        profile = "dev"
    durations, summary, wall, status = run_suite(paths, profile=profile)
    totals = {k: sum(v.values()) for k, v in durations.items()}
    grand = sum(totals.values())
    rows = []
    for test_id in sorted(totals, key=totals.get, reverse=True):
        d = durations[test_id]
        rows.append(
            (
                f"`{test_id}`",
                f"{totals[test_id]:.2f}",
                f"{d['call']:.2f}",
                f"{d['setup'] + d['teardown']:.2f}",
                f"{totals[test_id] / grand:.3f}",
            )
        )
    rows.append(("**total (sum over tests)**", f"{grand:.2f}", "", "", "1.000"))
    header = ["test", "total s", "call s", "setup + teardown s", "share of total"]
    status_text = "all passed" if status == 0 else f"pytest exit status {status}"
    text = (
        "## Property suite wall time\n\n"
        f"`pytest {' '.join(paths)} --hypothesis-profile={profile} --durations=0` in one "
        f"process (no xdist); {summary or 'no summary line'} ({status_text}); wall time of "
        f"the subprocess including start-up and collection: {wall:.1f} s. Slowest first; "
        "'share of total' is each test's part of the summed durations.\n\n"
        + markdown_table(header, rows)
        + "\n"
    )
    return text, rows
