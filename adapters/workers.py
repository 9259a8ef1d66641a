"""Worker processes that stop with the process that started them.

`softeq compare` and `softeq reproduce --workers N` train in a pool of worker
processes. If the parent ends abruptly (`kill`, an out-of-memory kill, a
crashed shell), Python's pool cannot tell its workers, which would train on
as orphans, and a rerun would then write the same run folders twice at once.
`pool_initializer` makes each worker ask the kernel (Linux `prctl`,
`PR_SET_PDEATHSIG`) for SIGTERM when its parent dies: a training run handles
SIGTERM by saving a checkpoint and stopping, so the rerun resumes it cleanly.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

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


def pool_initializer(parent_pid: int, *, one_thread: bool = False) -> None:
    """Initializer of a `ProcessPoolExecutor` worker (pass `initargs=(os.getpid(),)`).

    `one_thread`: give XLA one core's worth of threads (for as many workers as
    cores, whose own thread pools would only contend with each other).
    """
    stop_with_parent(parent_pid)
    if one_thread:
        os.environ.setdefault(
            "XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
        )
