"""Timing harness shared by the benchmarks: machine description, medians, tables.

Timings are wall-clock medians over repeated calls of already-compiled
functions, with `block_until_ready` so asynchronous dispatch is not mistaken
for speed. Reference and candidate are timed interleaved in the same process,
so that drift of the machine (other load, frequency changes) hits both alike.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence

import jax


def _block(x):
    return jax.block_until_ready(x)


def time_interleaved(
    fns: dict[str, Callable[[], object]], *, repeats: int = 30, inner: int = 5
) -> dict[str, list[float]]:
    """Seconds per call for each thunk, `repeats` samples each, interleaved.

    Each thunk is called once first (compilation), then in every round each
    thunk runs `inner` times back to back and the mean is one sample.
    """
    for fn in fns.values():
        _block(fn())
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            for _ in range(inner):
                out = fn()
            _block(out)
            samples[name].append((time.perf_counter() - start) / inner)
    return samples


def median(xs: Sequence[float]) -> float:
    return statistics.median(xs)


def spread(xs: Sequence[float], *, scale: float = 1e6, digits: int = 0) -> str:
    """Inter-quartile range as 'p25–p75', in units of 1/`scale` (default µs for seconds).

    With a single sample both ends are that sample.
    """
    if len(xs) < 2:
        lo = hi = xs[0]
    else:
        q = statistics.quantiles(xs, n=4)
        lo, hi = q[0], q[2]
    return f"{lo * scale:.{digits}f}–{hi * scale:.{digits}f}"


def ratio_samples(num: Sequence[float], den: Sequence[float]) -> list[float]:
    """Per-round ratios of two interleaved sample lists (same length)."""
    if len(num) != len(den):
        raise ValueError(f"sample lists differ in length: {len(num)} and {len(den)}")
    return [a / b for a, b in zip(num, den, strict=True)]


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def run_child(module: str, *args: str, timeout: float, env: dict | None = None) -> dict:
    """Runs `python -m module --child ARGS` in a fresh interpreter; returns the figures it
    printed on its `RESULT {json}` line (a case measured in its own process starts cold).

    `env`: variables set for the child on top of this process's (e.g. `XLA_FLAGS`).
    """
    proc = subprocess.run(
        [sys.executable, "-m", module, "--child", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
        env=None if env is None else {**os.environ, **env},
    )
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT ") :])
    raise RuntimeError(f"{module} case {' '.join(args)} failed:\n{proc.stderr[-3000:]}")
