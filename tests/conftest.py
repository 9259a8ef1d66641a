"""Shared pytest fixtures of the example-based tests.

Seeds: every test that trains or samples with a seed takes it through the
`shift_seeds` fixture, so the whole suite can be rerun on other seeds with
`SOFTEQ_TEST_SEED_OFFSET=100 make test` (or 1000, ...). A learning test whose
verdict depends on one lucky seed then fails where a new machine would fail
it, instead of passing here by chance.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest

SEED_OFFSET_ENV = "SOFTEQ_TEST_SEED_OFFSET"
COMPILATION_CACHE_ENV = "JAX_COMPILATION_CACHE_DIR"
_CACHE_KEY = pytest.StashKey[str]()


def pytest_configure(config: pytest.Config) -> None:
    """Registers the `fast_compile` marker; one XLA compilation cache for the whole
    test run, shared by its processes.

    Many tests compile the same program more than once: a resumed run recompiles
    what the interrupted one compiled, and each `softeq` subprocess compiles afresh.
    JAX's persistent cache hands back the executable XLA made the first time (the
    same program, byte for byte), so only the first compile of each is paid. The
    folder is made by the first pytest process (xdist's workers and the subprocesses
    inherit the variable) and removed when it ends. A value already set is kept:
    `JAX_COMPILATION_CACHE_DIR= make test` (empty) runs without the cache.
    """
    config.addinivalue_line(
        "markers", "fast_compile: softeq subprocesses compile fast (_fast_compile_for_marked_tests)"
    )
    if COMPILATION_CACHE_ENV in os.environ:
        return
    path = tempfile.mkdtemp(prefix="softeq-tests-xla-cache-")
    os.environ[COMPILATION_CACHE_ENV] = path
    config.stash[_CACHE_KEY] = path
    if "jax" in sys.modules:  # imported before this hook: it read the variable already
        sys.modules["jax"].config.update("jax_compilation_cache_dir", path)


FAST_COMPILE_FLAG = "--xla_backend_optimization_level=0"


@pytest.fixture(autouse=True)
def _fast_compile_for_marked_tests(request: pytest.FixtureRequest, monkeypatch) -> None:
    """`@pytest.mark.fast_compile`: the `softeq` processes the test starts compile with
    LLVM's optimisation turned down (`FAST_COMPILE_FLAG`, an XLA flag).

    For smoke runs of a few thousand env steps, compiling is most of the cost: the flag
    took a Breakout-MinAtar comparison of four algorithms from 136 s to 94 s on a busy
    2-core CPU, while a 50k-step DQN learning run took twice as long with it. It changes
    how fast the program runs, not what it computes up to float rounding, and every run a
    marked test compares with another runs under the same flag. The test process itself
    keeps its backend (XLA reads the flag once per process).
    """
    if request.node.get_closest_marker("fast_compile") is None:
        return
    flags = f"{os.environ.get('XLA_FLAGS', '')} {FAST_COMPILE_FLAG}".strip()
    monkeypatch.setenv("XLA_FLAGS", flags)


def pytest_unconfigure(config: pytest.Config) -> None:
    path = config.stash.get(_CACHE_KEY, None)
    if path is not None:
        shutil.rmtree(path, ignore_errors=True)


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


def _kill_in_checkpoint_write(
    argv: list[str], nth: int, marker: Path, timeout: float = 600
) -> None:
    """Run `softeq *argv` and SIGKILL it while its `nth` checkpoint write is half done.

    Uses the checkpoint writer's fault injection (`softeq.adapters.checkpoint`):
    the write pauses after its first half and touches `marker`; the process is
    killed there, as a crash or a lost machine would stop it.
    """
    from softeq.adapters.checkpoint import FAULT_PAUSE_AT_ENV, FAULT_PAUSE_ENV

    proc = subprocess.Popen(
        [sys.executable, "-m", "softeq.adapters.cli", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, FAULT_PAUSE_ENV: str(marker), FAULT_PAUSE_AT_ENV: str(nth)},
    )
    deadline = time.monotonic() + timeout
    try:
        while not marker.exists():
            assert proc.poll() is None, proc.communicate()[1][-3000:]
            assert time.monotonic() < deadline, f"checkpoint write {nth} was never reached"
            time.sleep(0.2)
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        assert proc.returncode == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


@pytest.fixture(scope="session")
def kill_in_checkpoint_write() -> Callable[..., None]:
    """`kill_in_checkpoint_write(argv, nth, marker)`: run `softeq *argv` and SIGKILL it
    halfway through its `nth` checkpoint write (see `_kill_in_checkpoint_write`)."""
    return _kill_in_checkpoint_write


def _softeq_side_by_side(
    runs: list[tuple[list[str], dict[str, str]]], *, timeout: float = 900
) -> list[tuple[str, str]]:
    """Starts `softeq *argv` with environment `env` for each `(argv, env)` at once, waits
    for all (killing any left at the timeout), checks that each exited 0 and returns
    their `(stdout, stderr)`."""
    softeq = Path(sys.executable).with_name("softeq")
    procs = [
        subprocess.Popen(
            [str(softeq), *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
        for argv, env in runs
    ]
    try:
        outputs = [p.communicate(timeout=timeout) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, (out[-2000:], err[-2000:])
    return outputs


@pytest.fixture(scope="session")
def softeq_side_by_side() -> Callable[..., list[tuple[str, str]]]:
    """`softeq_side_by_side([(argv, env), ...], timeout=900)`: `softeq` commands run at
    once, each checked to exit 0 (see `_softeq_side_by_side`)."""
    return _softeq_side_by_side


def _train_on_both_drivers(algo: str, run_root: Path) -> dict[str, tuple[str, dict]]:
    """`softeq train --algo algo` for 2 000 CartPole steps on the host loop and on the
    jitted driver, side by side; per driver its stdout and its metrics (the jitted
    run's seed 0). Asserts that both exit 0."""
    from softeq.adapters.logger import read_metrics

    common = ["--env", "CartPole-v1", "--algo", algo, "--total-steps", "2000", "--no-progress"]
    common += ["--learning-starts", "500", "--eval-episodes", "2"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    drivers = ("host", "jit")
    outputs = _softeq_side_by_side(
        [(["train", *common, "--driver", d, "--run-dir", str(run_root / d)], env) for d in drivers],
        timeout=300,
    )
    return {
        "host": (outputs[0][0], read_metrics(run_root / "host")),
        "jit": (outputs[1][0], read_metrics(run_root / "jit" / "seed-0")),
    }


@pytest.fixture(scope="session")
def train_on_both_drivers() -> Callable[[str, Path], dict[str, tuple[str, dict]]]:
    """`train_on_both_drivers(algo, run_root)`: a short CartPole run of `algo` on each
    driver (see `_train_on_both_drivers`)."""
    return _train_on_both_drivers
