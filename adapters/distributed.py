"""Multi-process start-up through `jax.distributed`.

Call `initialize` once per process, before any other JAX work, with the same
coordinator address and process count everywhere and a distinct process id:

    from softeq.adapters import distributed
    distributed.initialize(coordinator_address="10.0.0.1:1234", num_processes=2, process_id=0)

On CPU the cross-process collectives go through gloo. After start-up
`jax.devices()` lists the devices of every process and `jax.local_devices()`
those of this one. The learner updates of `softeq.adapters.agents` shard their
batch over `jax.local_devices()`; wiring a global mesh into `softeq train` is
not done yet, so today a multi-process launch gives one independent learner per
process (useful for seeds), with `process_allgather` to combine results.
"""

from __future__ import annotations

import jax
import numpy as np


def initialize(*, coordinator_address: str, num_processes: int, process_id: int) -> None:
    """Joins this process to a `jax.distributed` group, with named errors for bad input.

    Args:
      coordinator_address: "host:port" of process 0's coordinator service.
      num_processes: total number of processes, >= 1.
      process_id: this process's index in [0, num_processes).
    """
    host, _, port = str(coordinator_address).rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(
            f"`coordinator_address` must look like host:port, got {coordinator_address!r}."
        )
    if isinstance(num_processes, bool) or not isinstance(num_processes, int) or num_processes < 1:
        raise ValueError(f"`num_processes` must be an integer >= 1, got {num_processes!r}.")
    if not isinstance(process_id, int) or not 0 <= process_id < num_processes:
        raise ValueError(
            f"`process_id` must be an integer in [0, {num_processes}), got {process_id!r}."
        )
    # CPU devices need an explicit collectives backend to talk across processes; the
    # setting is ignored by GPU and TPU backends. (Asking which backend is in use here
    # would start it, and initialize() must come first.)
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(
        coordinator_address=coordinator_address,
        num_processes=num_processes,
        process_id=process_id,
    )


def gather_from_processes(value) -> np.ndarray:
    """`[P, ...]` the value of every process, stacked in process order."""
    from jax.experimental import multihost_utils

    return np.asarray(multihost_utils.process_allgather(np.asarray(value)))
