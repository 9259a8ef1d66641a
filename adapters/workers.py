"""Worker processes that stop with the process that started them.

`softeq compare` (host-loop runs) and `softeq reproduce --workers N` train in
worker processes, one per run or program (`run_in_processes`). If the parent
ends abruptly (`kill`, an out-of-memory kill, a crashed shell), it cannot tell
its workers, which would train on as orphans, and a rerun would then write the
same run folders twice at once. Each worker asks the kernel (Linux `prctl`,
`PR_SET_PDEATHSIG`) for SIGTERM when its parent dies: a training run handles
SIGTERM by saving a checkpoint and stopping, so the rerun resumes it cleanly.
A worker also ignores a second stop signal (its parent passes on a Ctrl-C the
worker may have had already), so that stopping never costs a checkpoint.
Workers allocate accelerator memory as they need it
(`XLA_PYTHON_CLIENT_PREALLOCATE=false` unless set), so that several can share
one GPU.
"""

from __future__ import annotations

import copy
import ctypes
import os
import pickle
import signal
import sys
import traceback
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from softeq.adapters.stall import STALLED_EXIT_STATUS

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def stop_with_parent(parent_pid: int, sig: int = signal.SIGTERM) -> bool:
    """Ask for `sig` when the parent process dies (Linux); False where unsupported.

    Raises:
      SystemExit: the parent `parent_pid` has already gone (this process was
        orphaned before it could ask).
    """
    supported = False
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        supported = libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0
    if os.getppid() != parent_pid:
        raise SystemExit(f"worker {os.getpid()}: parent {parent_pid} has already exited")
    return supported


def use_one_thread() -> None:
    """Give XLA one core's worth of threads in this process, unless `XLA_FLAGS` is set
    (for as many workers as cores, whose own thread pools would only contend with
    each other). Call it before the first computation."""
    os.environ.setdefault(
        "XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
    )


def _worker_setup(parent_pid: int) -> None:
    from softeq.adapters.loop import ignore_repeated_stop_signals

    # Workers may share one GPU: by default JAX reserves 75% of its memory in the
    # first process to start and leaves the next one too little to run. On demand,
    # side by side programs fit as long as their sum does (unless the user says
    # otherwise). It is read when the backend starts, after this.
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    stop_with_parent(parent_pid)
    ignore_repeated_stop_signals()


Task = tuple[Callable[..., Any], tuple]


def run_in_processes(
    tasks: Sequence[Task], *, workers: int, on_result: Callable[[Any], None]
) -> None:
    """Runs each task `(fn, args)` as `fn(*args)` in a process of its own, in order,
    at most `workers` at a time; `on_result` gets each return value as it arrives.

    A process per task, started fresh (spawn), instead of a pool: no idle worker
    is left waiting for work when something goes wrong, so stopping is simple.
    When a task raises, a task's process dies, or this process is interrupted
    (Ctrl-C, any exception), no further task starts, the running ones get
    SIGTERM (a training run saves a checkpoint and stops) and are waited for,
    and the first error is raised again here: the task's own exception where it
    pickles, else a `RuntimeError` with its traceback. A second Ctrl-C while
    waiting kills them at once.

    Args:
      tasks: `(fn, args)` pairs; `fn` must be importable by name (a module-level
        function) and `args` picklable.
      workers: how many tasks may run at once (>= 1).
      on_result: called in this process with each task's return value.
    """
    import multiprocessing
    import multiprocessing.connection

    if workers < 1:
        raise ValueError(f"`workers` must be >= 1, got {workers}.")
    ctx = multiprocessing.get_context("spawn")
    pending = deque(enumerate(tasks))
    running: dict[Any, Any] = {}  # reading end of the task's pipe -> its process, task index
    try:
        while pending or running:
            while pending and len(running) < workers:
                index, (fn, args) = pending.popleft()
                reader, writer = ctx.Pipe(duplex=False)
                process = ctx.Process(target=_task_main, args=(fn, args, writer, os.getpid()))
                process.start()
                writer.close()  # the child's copy stays open until it has answered
                running[reader] = process, index
            for reader in multiprocessing.connection.wait(list(running)):
                process, index = running.pop(reader)
                try:
                    status, payload = reader.recv()
                except EOFError:  # closed without an answer: the process died
                    process.join()
                    message = (
                        f"worker process {process.pid} ended without a result "
                        f"(exit code {process.exitcode})"
                    )
                    if process.exitcode == STALLED_EXIT_STATUS:
                        raise WorkerStalled(message, task=index) from None
                    raise RuntimeError(message) from None
                finally:
                    reader.close()
                process.join()
                if status == "error":
                    raise payload
                on_result(payload)
    except BaseException:
        _stop([process for process, _ in running.values()])
        raise


class WorkerStalled(RuntimeError):
    """A worker ended itself because its program stalled (`softeq.adapters.stall`).

    `task` is the index of its task in the list given to `run_in_processes`.
    """

    def __init__(self, message: str, *, task: int):
        super().__init__(message)
        self.task = task


def _stop(processes: list[Any]) -> None:
    """SIGTERM to every live process of `processes`, then wait for them all."""
    for process in processes:
        if process.is_alive():
            try:
                os.kill(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    try:
        for process in processes:
            process.join()
    except KeyboardInterrupt:  # a second Ctrl-C: do not wait for checkpoints
        for process in processes:
            process.kill()
        for process in processes:
            process.join()
        raise


def _task_main(fn: Callable[..., Any], args: tuple, conn: Any, parent_pid: int) -> None:
    """A task's process: runs `fn(*args)` and sends `("ok", value)` or `("error", exc)`."""
    _worker_setup(parent_pid)
    try:
        message = ("ok", fn(*args))
    except BaseException as exc:
        message = ("error", _portable(exc))
    try:
        conn.send(message)
    finally:
        conn.close()
    if message[0] == "error":
        sys.exit(1)


def _portable(exc: BaseException) -> BaseException:
    """`exc` if it survives pickling, else a RuntimeError that names it with its traceback.

    Checked without unpickling anything (softeq never does): `pickle.dumps` finds its
    class by name, `copy.deepcopy` rebuilds it the way unpickling would.
    """
    try:
        pickle.dumps(exc)
        copy.deepcopy(exc)
        return exc
    except Exception:
        text = "".join(traceback.format_exception(exc))
        return RuntimeError(f"{type(exc).__name__} in a worker process: {exc}\n{text}")
