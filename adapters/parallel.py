"""Data parallelism for the learner updates with `jax.sharding`.

Every learner update in `softeq.adapters.agents` is one jitted function of
`(learner_state, batch)`. Here it is compiled over a one-dimensional device
mesh with a single axis named ``"batch"``: the batch is split along its
batch axis (environments for rollouts, samples for replay batches), the
learner state (parameters, optimiser state) is replicated. Means over the
batch inside the loss then become cross-device reductions that XLA inserts
itself, so the code of the update is the same on one device and on many; with
one device the result is the ordinary `jax.jit`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

BATCH_AXIS = "batch"


def usable_device_count(batch_size: int, num_devices: int) -> int:
    """The largest number of devices, at most `num_devices`, that divides `batch_size`.

    Example:
      >>> usable_device_count(16, 8), usable_device_count(6, 4), usable_device_count(7, 2)
      (8, 3, 1)
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"`batch_size` must be an integer >= 1, got {batch_size!r}.")
    if isinstance(num_devices, bool) or not isinstance(num_devices, int) or num_devices < 1:
        raise ValueError(f"`num_devices` must be an integer >= 1, got {num_devices!r}.")
    return max(d for d in range(1, min(batch_size, num_devices) + 1) if batch_size % d == 0)


def batch_mesh(batch_size: int, devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A 1-D mesh named ``"batch"`` over as many devices as evenly split `batch_size`.

    Args:
      batch_size: the size of the axis that will be sharded.
      devices: devices to choose from; `jax.local_devices()` when None.

    Returns:
      a `Mesh` of shape `[d]` with d = `usable_device_count(batch_size, len(devices))`.
    """
    devices = list(jax.local_devices() if devices is None else devices)
    if not devices:
        raise ValueError("`devices` must name at least one device, got an empty sequence.")
    count = usable_device_count(batch_size, len(devices))
    return Mesh(np.asarray(devices[:count]), (BATCH_AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
    """The sharding that keeps a full copy on every device of `mesh`."""
    return NamedSharding(mesh, PartitionSpec())


def batch_sharded(mesh: Mesh, *, axis: int = 0) -> NamedSharding:
    """The sharding that splits array axis `axis` over the mesh's ``"batch"`` axis."""
    if isinstance(axis, bool) or not isinstance(axis, int) or axis < 0:
        raise ValueError(f"`axis` must be an integer >= 0, got {axis!r}.")
    return NamedSharding(mesh, PartitionSpec(*([None] * axis), BATCH_AXIS))


def put_replicated(tree, mesh: Mesh):
    """Copies a pytree onto every device of `mesh`."""
    return jax.device_put(tree, replicated(mesh))


def data_parallel_update(
    update: Callable, mesh: Mesh, *, batch_axis: int, donate_state: bool = True
) -> Callable:
    """Compiles `update(state, batch) -> (state, metrics)` data-parallel over `mesh`.

    Args:
      update: a pure function of a replicated state pytree and a batch pytree
        whose leaves all carry the batch in axis `batch_axis`.
      mesh: a mesh from `batch_mesh`.
      batch_axis: which axis of every batch leaf is split across devices.
      donate_state: let XLA reuse the buffers of the incoming state for the
        outgoing one (the caller must then drop the old state).

    Returns:
      the jitted update; state and metrics come back replicated.
    """
    state_sharding = replicated(mesh)
    return jax.jit(
        update,
        in_shardings=(state_sharding, batch_sharded(mesh, axis=batch_axis)),
        out_shardings=(state_sharding, state_sharding),
        donate_argnums=(0,) if donate_state else (),
    )
