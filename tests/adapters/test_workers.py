"""Worker processes: one per task, stopped together, and never outliving their parent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from softeq.adapters import workers

# A parent that runs one task, sleeping, in a worker process of its own.
PARENT = """
import time
from softeq.adapters.workers import run_in_processes
if __name__ == "__main__":
    run_in_processes([(time.sleep, (120,))], workers=1, on_result=print)
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"  # a zombie has exited; only its parent's wait is missing


def _children(pid: int) -> list[int]:
    """The worker processes `pid` started (not multiprocessing's resource tracker)."""
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [
        int(child)
        for child in found.split()
        if b"resource_tracker" not in Path(f"/proc/{child}/cmdline").read_bytes()
    ]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux only")
def test_a_worker_gets_sigterm_when_its_parent_is_killed(tmp_path):
    parent = subprocess.Popen([sys.executable, "-c", PARENT], cwd=tmp_path)
    try:
        deadline = time.monotonic() + 60
        while not (found := _children(parent.pid)):
            assert parent.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        worker = found[0]
        assert _alive(worker)
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=30)
        deadline = time.monotonic() + 30
        while _alive(worker) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(worker), "the worker outlived its parent"
    finally:
        if parent.poll() is None:
            parent.kill()


def test_a_worker_whose_parent_is_already_gone_exits():
    with pytest.raises(SystemExit, match="has already exited"):
        workers.stop_with_parent(os.getppid() + 10_000_000)


# --------------------------------------------------------------------------------------
# One process per task (`run_in_processes`, used by `softeq reproduce --workers N`).
# --------------------------------------------------------------------------------------


def test_every_task_runs_in_a_process_of_its_own():
    results: list[int] = []
    tasks = [(os.getpid, ())] * 3
    workers.run_in_processes(tasks, workers=2, on_result=results.append)
    assert len(set(results)) == 3 and os.getpid() not in results


def test_workers_allocate_accelerator_memory_on_demand(monkeypatch):
    """Side by side programs on one GPU: no worker reserves most of its memory up front."""
    monkeypatch.delenv("XLA_PYTHON_CLIENT_PREALLOCATE", raising=False)
    results: list[str | None] = []
    tasks = [(os.getenv, ("XLA_PYTHON_CLIENT_PREALLOCATE",))]
    workers.run_in_processes(tasks, workers=1, on_result=results.append)
    assert results == ["false"]
    monkeypatch.setenv("XLA_PYTHON_CLIENT_PREALLOCATE", "true")  # the user's choice stands
    workers.run_in_processes(tasks, workers=1, on_result=results.append)
    assert results == ["false", "true"]


def test_a_failing_task_is_raised_here_and_later_tasks_never_start(tmp_path):
    import operator

    marker = tmp_path / "started"
    tasks = [(operator.truediv, (1, 0)), (marker.touch, ())]
    with pytest.raises(ZeroDivisionError):
        workers.run_in_processes(tasks, workers=1, on_result=lambda _: None)
    assert not marker.exists()


def test_an_error_that_does_not_pickle_arrives_as_a_runtime_error_naming_it():
    # A class made by `exec` in a bare namespace cannot be found again by pickle.
    source = "class Unfindable(Exception): pass\nraise Unfindable('lost in transit')"
    tasks = [(exec, (source, {}))]
    with pytest.raises(RuntimeError, match="Unfindable in a worker process: lost in transit"):
        workers.run_in_processes(tasks, workers=1, on_result=lambda _: None)


def test_softeq_configuration_errors_cross_the_process_boundary_whole():
    from softeq.adapters import reproduce
    from softeq.adapters.run_config import ConfigError

    with pytest.raises(ConfigError, match="EXPERIMENT: got 'experiment-9'") as caught:
        workers.run_in_processes(
            [(reproduce.make_plan, ("experiment-9",))], workers=1, on_result=lambda _: None
        )
    assert caught.value.flag == "EXPERIMENT" and caught.value.value == "experiment-9"


def test_a_task_whose_process_dies_is_reported():
    with pytest.raises(RuntimeError, match=r"ended without a result \(exit code 3\)"):
        workers.run_in_processes([(os._exit, (3,))], workers=1, on_result=lambda _: None)


def test_a_task_that_ended_itself_as_stalled_is_told_apart():
    from softeq.adapters.stall import STALLED_EXIT_STATUS

    with pytest.raises(workers.WorkerStalled, match=r"exit code 75\)") as caught:
        workers.run_in_processes(
            [(abs, (-1,)), (os._exit, (STALLED_EXIT_STATUS,))],
            workers=1,
            on_result=lambda _: None,
        )
    assert caught.value.task == 1  # which task stalled: the caller runs it again smaller


def test_workers_must_be_positive():
    with pytest.raises(ValueError, match="`workers` must be >= 1, got 0"):
        workers.run_in_processes([], workers=0, on_result=lambda _: None)


def _send_two_stop_signals() -> None:
    os.kill(os.getpid(), signal.SIGTERM)
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(0.2)  # Python runs signal handlers between bytecodes of the main thread


def test_a_second_stop_signal_aborts_a_run_unless_the_process_is_a_worker(monkeypatch):
    from softeq.adapters import loop

    with pytest.raises(KeyboardInterrupt), loop._StopFlag():
        _send_two_stop_signals()  # an interactive run: the second Ctrl-C gives up
    monkeypatch.setattr(loop._StopFlag, "second_signal_aborts", True)
    loop.ignore_repeated_stop_signals()  # what a worker process does first
    with loop._StopFlag() as stop:
        _send_two_stop_signals()
    assert stop.signal == signal.SIGTERM  # the first request stands; the second is ignored
