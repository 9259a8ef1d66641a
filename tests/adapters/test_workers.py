"""Pool workers stop when the process that started them dies (no orphaned training)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from softeq.adapters import workers

# A parent that starts one pool worker (softeq's initializer), prints the worker's
# pid, and leaves it sleeping in a task.
PARENT = """
import concurrent.futures as cf, multiprocessing, os, time
from softeq.adapters.workers import pool_initializer
if __name__ == "__main__":
    pool = cf.ProcessPoolExecutor(
        1, mp_context=multiprocessing.get_context("spawn"),
        initializer=pool_initializer, initargs=(os.getpid(),),
    )
    print(pool.submit(os.getpid).result(), flush=True)
    pool.submit(time.sleep, 120)
    time.sleep(120)
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"  # a zombie has exited; only its parent's wait is missing


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux only")
def test_a_worker_gets_sigterm_when_its_parent_is_killed(tmp_path):
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True, cwd=tmp_path
    )
    try:
        worker = int(parent.stdout.readline())
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
