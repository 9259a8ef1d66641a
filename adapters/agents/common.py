"""Pieces shared by the agents: optimisers, metric conversion, a trace counter."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax


def make_optimizer(
    *,
    name: str,
    learning_rate: float | optax.Schedule,
    max_grad_norm: float,
    rmsprop_decay: float = 0.99,
    rmsprop_eps: float = 1e-5,
    adam_eps: float = 1e-8,
) -> optax.GradientTransformation:
    """Global-norm clipping followed by RMSProp or Adam."""
    if name == "rmsprop":
        base = optax.rmsprop(learning_rate, decay=rmsprop_decay, eps=rmsprop_eps)
    elif name == "adam":
        base = optax.adam(learning_rate, eps=adam_eps)
    else:
        raise ValueError(f"`optimizer` must be 'rmsprop' or 'adam', got {name!r}.")
    return optax.chain(optax.clip_by_global_norm(max_grad_norm), base)


def to_floats(metrics) -> dict[str, float]:
    """Device metrics (a dict of scalars) as plain Python floats; waits for them."""
    return {k: float(v) for k, v in jax.device_get(metrics).items()}


def flat_dot(a, b) -> jax.Array:
    """The inner product of two pytrees of identical structure, as if flattened."""
    leaves = jax.tree.leaves(jax.tree.map(lambda x, y: jnp.sum(x * y), a, b))
    return sum(leaves[1:], leaves[0])


def cosine(a, b) -> jax.Array:
    """Cosine similarity of two pytrees of identical structure, as flattened vectors.

    Clipped to [−1, 1]: for nearly parallel float32 gradients the rounded ratio
    can exceed 1 by a few ulps (seen: 1.0000000186).
    """
    norm = jnp.sqrt(flat_dot(a, a) * flat_dot(b, b))
    return jnp.clip(flat_dot(a, b) / jnp.maximum(norm, jnp.finfo(norm.dtype).tiny), -1.0, 1.0)


def new_key(seed: int) -> np.ndarray:
    """A raw `uint32[2]` PRNG key as a numpy array (picklable, device-free)."""
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise TypeError(f"`seed` must be an integer, got {seed!r}.")
    if seed < 0:
        raise ValueError(f"`seed` must be an integer >= 0, got {seed!r}.")
    return np.asarray(jax.random.PRNGKey(int(seed)))


class TraceCounter:
    """Wraps a function so that every (re)trace under `jax.jit` is counted."""

    def __init__(self, fn: Callable):
        self._fn = fn
        self.count = 0

    def __call__(self, *args, **kwargs):
        self.count += 1
        return self._fn(*args, **kwargs)


def check_obs(obs, *, shape: tuple, num_envs: int, name: str = "obs") -> np.ndarray:
    """Rejects a batch of observations whose shape is not `[num_envs, *shape]`."""
    obs = np.asarray(obs)
    if obs.shape != (num_envs, *shape):
        raise ValueError(
            f"`{name}` must have shape {(num_envs, *shape)} ([num_envs, *observation_shape]), "
            f"got {obs.shape}."
        )
    return obs
