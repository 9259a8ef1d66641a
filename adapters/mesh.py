"""The device mesh of the jitted driver: seeds on one axis, each seed's envs on the other.

A jitted run trains S seeds, each stepping N environments. Its program runs
on a two-dimensional `jax.sharding.Mesh` with axes

    "seeds"  the seed lanes of the vmapped program; seeds never talk to each other,
    "data"   each seed's N envs (the batch of its learner updates).

A seed's parameters and optimiser state are copied on every device of its
"data" row; its envs, observations and replay columns are split over that row,
so each device steps N / data envs. The learner loss is a mean over the batch:
with the batch split over "data", XLA computes each device's partial sum and
adds them with an all-reduce over "data", so the gradient is the mean over the
whole global batch and the update equals the one-device update up to float32
rounding (the partial sums are added in another order).

With several processes (`softeq.adapters.distributed`) the mesh is built from
`jax.devices()`, all devices of all processes, ordered by process: the "seeds"
axis is the outer one (it may span hosts: seeds need no communication) and
"data" the inner one (within a host where it fits). Every process runs the same
program and steps its own devices' share of the envs.

Inside the per-seed program (`softeq.adapters.jit_driver`), `shard_env_axis`
pins the env axis of a value to "data" while `env_layout(mesh)` is active (the
host side activates it while tracing); outside it does nothing, so the per-seed
functions stay plain functions.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator, Sequence
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

SEED_AXIS = "seeds"
DATA_AXIS = "data"

#: State fields whose leaves carry the env axis, and which axis it is.
ENV_AXIS_OF_FIELD = {"env": 0, "obs": 0, "replay": 1}


def _largest_common_divisor_at_most(count: int, limit: int) -> int:
    return max(d for d in range(1, min(count, limit) + 1) if count % d == 0 and limit % d == 0)


def mesh_shape(num_seeds: int, num_envs: int, num_devices: int) -> tuple[int, int]:
    """`(seed_shards, data_shards)` of the training mesh on `num_devices` devices.

    Seeds first (they need no communication): seed_shards is the largest
    divisor of `num_seeds` that also divides `num_devices`; data_shards the
    largest divisor of `num_envs` that divides the devices left per seed shard.
    Their product may be smaller than `num_devices` (then some devices idle).

    Example:
      >>> mesh_shape(1, 8, 4), mesh_shape(2, 8, 4), mesh_shape(4, 8, 4), mesh_shape(3, 6, 4)
      ((1, 4), (2, 2), (4, 1), (1, 2))
    """
    for name, value in (
        ("num_seeds", num_seeds),
        ("num_envs", num_envs),
        ("num_devices", num_devices),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"`{name}` must be an integer >= 1, got {value!r}.")
    seed_shards = _largest_common_divisor_at_most(num_seeds, num_devices)
    data_shards = _largest_common_divisor_at_most(num_envs, num_devices // seed_shards)
    return seed_shards, data_shards


def training_mesh(
    num_seeds: int, num_envs: int, devices: Sequence[jax.Device] | None = None
) -> Mesh:
    """The `("seeds", "data")` mesh of a jitted run (see the module docstring).

    Args:
      num_seeds: S, the seed lanes of the program.
      num_envs: N, envs per seed.
      devices: the devices to use; None means `jax.local_devices()` in a
        single-process run and `jax.devices()` (every process's) in a
        multi-process one.

    Returns:
      a `Mesh` of shape `[seed_shards, data_shards]` (`mesh_shape`).

    Raises:
      ValueError: with several processes, the mesh must use every device (each
        process steps its share); a seed or env count that does not split over
        them is refused by name.
    """
    multi_process = jax.process_count() > 1
    if devices is None:
        devices = jax.devices() if multi_process else jax.local_devices()
    devices = list(devices)
    if not devices:
        raise ValueError("`devices` must name at least one device, got an empty sequence.")
    seed_shards, data_shards = mesh_shape(num_seeds, num_envs, len(devices))
    used = seed_shards * data_shards
    if multi_process and used != len(devices):
        raise ValueError(
            f"{jax.process_count()} processes hold {len(devices)} devices, but {num_seeds} "
            f"seed(s) x {num_envs} envs split over only {used} of them "
            f"({seed_shards} seed shard(s) x {data_shards} data shard(s)); choose --num-envs "
            f"(and the number of seeds) so that seeds x envs-per-device fill every device, "
            f"e.g. --num-envs a multiple of {len(devices) // seed_shards}."
        )
    grid = np.asarray(devices[:used], dtype=object).reshape(seed_shards, data_shards)
    return Mesh(grid, (SEED_AXIS, DATA_AXIS))


# --------------------------------------------------------------------------------------
# Shardings of the seeds' state.
# --------------------------------------------------------------------------------------


def env_axes(state: Any, num_envs: int) -> Any:
    """Per leaf of a per-seed state, the axis that holds its N envs, or None.

    The env axis is 0 for the `env` and `obs` fields of the jitted driver's
    states and 1 for the `replay` buffer's `[rows, N, ...]` arrays (the fields its
    `ROW_FIELDS` names; its side ring of final observations has none); a leaf whose
    size there is not `num_envs` (a counter, an emulator handle) has none.

    Args:
      state: a per-seed state (NamedTuple with fields among `learner`, `env`,
        `obs`, `replay`, ...) of arrays or `jax.ShapeDtypeStruct`s.
      num_envs: N.

    Returns:
      a pytree of the state's structure whose leaves are ints or None.
    """

    def axis_for(field: str, leaf: Any) -> int | None:
        axis = ENV_AXIS_OF_FIELD.get(field)
        if axis is None or len(leaf.shape) <= axis or leaf.shape[axis] != num_envs:
            return None
        return axis

    def axes_of(field: str, value: Any) -> Any:
        # A record that names its per-env fields (the replay's `ROW_FIELDS`) gets env
        # axes there only: its other arrays may match N in size by coincidence.
        rows = getattr(type(value), "ROW_FIELDS", None)
        if rows is None:
            return jax.tree.map(lambda leaf: axis_for(field, leaf), value)
        return type(value)(
            *(
                axis_for(field, leaf) if name in rows else None
                for name, leaf in zip(value._fields, value, strict=True)
            )
        )

    fields = getattr(state, "_fields", None)
    if fields is None:
        return jax.tree.map(lambda _: None, state)
    return type(state)(*(axes_of(field, getattr(state, field)) for field in fields))


def seed_batched_spec(env_axis: int | None) -> PartitionSpec:
    """The spec of a `[S, ...]` leaf whose per-seed env axis is `env_axis` (None: none)."""
    if env_axis is None:
        return PartitionSpec(SEED_AXIS)
    return PartitionSpec(SEED_AXIS, *([None] * env_axis), DATA_AXIS)


def state_shardings(mesh: Mesh, batched_state: Any, num_envs: int) -> Any:
    """`NamedSharding` of every leaf of a `[S, ...]` seeds' state.

    `batched_state` holds arrays or `jax.ShapeDtypeStruct`s with the seed axis
    first; the env axes come from `env_axes` of one seed's shapes.
    """
    one_seed = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape[1:], x.dtype), batched_state)
    axes = env_axes(one_seed, num_envs)
    return jax.tree.map(
        lambda axis, _: NamedSharding(mesh, seed_batched_spec(axis)),
        axes,
        batched_state,
        is_leaf=lambda x: x is None,
    )


# --------------------------------------------------------------------------------------
# Inside the program.
# --------------------------------------------------------------------------------------

_ACTIVE_MESH: contextvars.ContextVar[Mesh | None] = contextvars.ContextVar(
    "softeq_env_layout", default=None
)


@contextlib.contextmanager
def env_layout(mesh: Mesh | None) -> Iterator[None]:
    """While active, `shard_env_axis` pins env axes to the "data" axis of `mesh`.

    Activate it around the tracing of a per-seed function that is vmapped with
    `spmd_axis_name="seeds"` and jitted over `mesh`.
    """
    token = _ACTIVE_MESH.set(mesh)
    try:
        yield
    finally:
        _ACTIVE_MESH.reset(token)


def data_shards() -> int:
    """Size of the active mesh's "data" axis (1 outside `env_layout`)."""
    mesh = _ACTIVE_MESH.get()
    return 1 if mesh is None else int(mesh.shape[DATA_AXIS])


def shard_env_axis(tree: Any, *, axis: int = 0) -> Any:
    """`tree` with array axis `axis` of every leaf laid over "data" (a sharding constraint).

    Only while `env_layout` is active with more than one data shard, and only
    for leaves whose size along `axis` splits evenly; otherwise the leaf is
    returned unchanged. The values never change, only where they live.
    """
    mesh = _ACTIVE_MESH.get()
    shards = data_shards()
    if mesh is None or shards == 1:
        return tree
    sharding = NamedSharding(mesh, PartitionSpec(*([None] * axis), DATA_AXIS))

    def pin(leaf):
        if not hasattr(leaf, "shape") or len(leaf.shape) <= axis:
            return leaf
        if leaf.shape[axis] % shards:
            return leaf
        return jax.lax.with_sharding_constraint(leaf, sharding)

    return jax.tree.map(pin, tree)


def shard_state_env_axes(state: Any, num_envs: int) -> Any:
    """A per-seed state with every env axis (`env_axes`) pinned to "data"."""
    if data_shards() == 1:
        return state
    fields = getattr(state, "_fields", None)
    if fields is None:
        return state
    axes = env_axes(state, num_envs)

    def pin(leaf, axis):
        return leaf if axis is None else shard_env_axis(leaf, axis=axis)

    return jax.tree.map(pin, state, axes, is_leaf=lambda x: x is None)


# --------------------------------------------------------------------------------------
# Moving arrays in and out of a mesh that may span processes.
# --------------------------------------------------------------------------------------


def put_global(value: Any, sharding: NamedSharding) -> jax.Array:
    """A global array laid out by `sharding`, from a host value every process holds in full.

    Each process fills only its own devices' shards, so this works whether or
    not the mesh spans processes.
    """
    value = np.asarray(value)
    return jax.make_array_from_callback(value.shape, sharding, lambda index: value[index])


def fetch(tree: Any) -> Any:
    """Every array leaf of `tree` as a full numpy array, on every process.

    Arrays this process holds completely are copied from its devices; arrays
    spread over devices of several processes are gathered from all of them
    (`process_allgather`, a collective: every process must call `fetch` on the
    same tree at the same point).
    """

    def get(leaf):
        if not isinstance(leaf, jax.Array):
            return leaf
        if leaf.is_fully_addressable:
            return np.asarray(leaf)
        from jax.experimental import multihost_utils

        return np.asarray(multihost_utils.process_allgather(leaf, tiled=True))

    return jax.tree.map(get, tree)
