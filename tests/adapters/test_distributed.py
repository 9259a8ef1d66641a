"""Multi-process start-up, exercised with two processes on this machine."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap

import pytest

from softeq.adapters import distributed

WORKER = textwrap.dedent(
    """
    import sys
    from softeq.adapters import distributed
    distributed.initialize(coordinator_address=sys.argv[1], num_processes=2,
                           process_id=int(sys.argv[2]))
    import jax
    gathered = distributed.gather_from_processes([10.0 * (int(sys.argv[2]) + 1)])
    print("RESULT", jax.process_count(), jax.device_count(), gathered.ravel().tolist())
    jax.distributed.shutdown()
    """
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_local_processes_join_one_group_and_exchange_values():
    address = f"127.0.0.1:{_free_port()}"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, address, str(i)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err[-2000:]
        line = next(x for x in out.splitlines() if x.startswith("RESULT"))
        # both processes see two processes, two devices in all, and both values in order.
        assert line.split(" ", 3)[1:] == ["2", "2", "[10.0, 20.0]"]


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"coordinator_address": "nohost", "num_processes": 2, "process_id": 0}, "coordinator"),
        ({"coordinator_address": "h:1", "num_processes": 0, "process_id": 0}, "num_processes"),
        ({"coordinator_address": "h:1", "num_processes": 2, "process_id": 2}, "process_id"),
    ],
)
def test_bad_start_up_arguments_are_named(kwargs, named):
    with pytest.raises(ValueError, match=f"`{named}"):
        distributed.initialize(**kwargs)
