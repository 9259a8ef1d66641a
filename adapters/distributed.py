"""Multi-process start-up through `jax.distributed`, and the few collectives the host needs.

Call `initialize` once per process, before any other JAX work, with the same
coordinator address and process count everywhere and a distinct process id:

    from softeq.adapters import distributed
    distributed.initialize(coordinator_address="10.0.0.1:1234", num_processes=2, process_id=0)

`softeq train --coordinator-address ... --num-processes ... --process-id ...`
does this for you. Arguments left as None are filled in by JAX itself:
`coordinator_address` from the environment variable `JAX_COORDINATOR_ADDRESS`,
and all three from the cluster it recognises — Slurm (`SLURM_NTASKS`,
`SLURM_PROCID`, `SLURM_STEP_NODELIST`, ...), Open MPI (`OMPI_COMM_WORLD_SIZE`,
`OMPI_COMM_WORLD_RANK`, `OMPI_MCA_orte_hnp_uri`), Cloud TPU pod slices (the
TPU metadata server) and Kubernetes; `JAX_LOCAL_DEVICE_IDS` limits the devices
a process uses.

On CPU the cross-process collectives go through gloo. After start-up
`jax.devices()` lists the devices of every process and `jax.local_devices()`
those of this one. The jitted driver (`softeq.adapters.jit_loop`) then trains
ONE learner per seed over a mesh of every process's devices
(`softeq.adapters.mesh`): each process steps its share of the envs and the
gradients are all-reduced across processes. Process 0 writes the run folder
(config, metrics, checkpoints, summary); the others write nothing.
"""

from __future__ import annotations

import jax
import numpy as np


def initialize(
    *,
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
) -> None:
    """Joins this process to a `jax.distributed` group, with named errors for bad input.

    Args:
      coordinator_address: "host:port" of process 0's coordinator service;
        None: JAX reads `JAX_COORDINATOR_ADDRESS` or asks the cluster.
      num_processes: total number of processes, >= 1; None: from the cluster.
      process_id: this process's index in [0, num_processes); None: from the cluster.
    """
    if coordinator_address is not None:
        host, _, port = str(coordinator_address).rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(
                f"`coordinator_address` must look like host:port, got {coordinator_address!r}."
            )
    if num_processes is not None and (
        isinstance(num_processes, bool) or not isinstance(num_processes, int) or num_processes < 1
    ):
        raise ValueError(f"`num_processes` must be an integer >= 1, got {num_processes!r}.")
    if process_id is not None:
        upper = num_processes if num_processes is not None else None
        if (
            isinstance(process_id, bool)
            or not isinstance(process_id, int)
            or process_id < 0
            or (upper is not None and process_id >= upper)
        ):
            allowed = f"in [0, {upper})" if upper is not None else ">= 0"
            raise ValueError(f"`process_id` must be an integer {allowed}, got {process_id!r}.")
    # CPU devices need an explicit collectives backend to talk across processes; the
    # setting is ignored by GPU and TPU backends. (Asking which backend is in use here
    # would start it, and initialize() must come first.)
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(
        coordinator_address=coordinator_address,
        num_processes=num_processes,
        process_id=process_id,
    )


def is_main_process() -> bool:
    """True in process 0 (the only one that writes files) and in single-process runs."""
    return jax.process_index() == 0


def barrier(name: str) -> None:
    """Waits until every process has reached the barrier `name` (nothing with one process)."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


def any_process(flag: bool) -> bool:
    """True if `flag` is True in any process (a collective with several processes)."""
    if jax.process_count() == 1:
        return bool(flag)
    return bool(gather_from_processes(np.asarray([bool(flag)], np.int32)).any())


def gather_from_processes(value) -> np.ndarray:
    """`[P, ...]` the value of every process, stacked in process order."""
    from jax.experimental import multihost_utils

    return np.asarray(multihost_utils.process_allgather(np.asarray(value)))
