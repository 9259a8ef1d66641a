"""Atomic, self-checking checkpoints with keep-last-K rotation and fallback on load.

File format (`ckpt-<env_steps:012d>.ckpt`):

    b"SOFTEQ-CKPT\\x01"  magic (12 bytes)
    8-byte little-endian payload length
    32-byte SHA-256 of the payload
    payload: a pickle (protocol 5) of a plain dict of numpy arrays / python values

A checkpoint is written to a temporary file in the same folder, flushed and
fsynced, then moved into place with `os.replace` (atomic on POSIX), and the folder
is fsynced. A reader therefore sees either the old set of files or the new one,
never a half-written checkpoint under a final name; a file truncated or damaged
later (disk trouble, manual copying) fails the length/hash check, and
`load_latest` falls back to the previous good checkpoint with a warning.

JAX arrays are stored as numpy arrays; typed PRNG keys are stored as their raw key
data and rebuilt on restore (`restore_like`).
"""

from __future__ import annotations

import hashlib
import os
import pickle
import re
import struct
import tempfile
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import jax
import numpy as np

MAGIC = b"SOFTEQ-CKPT\x01"
_HEADER = struct.Struct("<Q32s")
_NAME = re.compile(r"^ckpt-(\d{12})\.ckpt$")


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, truncated or corrupted."""


class _KeyData:
    """Marker for a typed PRNG key saved as its raw `uint32` key data."""

    def __init__(self, data: np.ndarray, impl: str):
        self.data = data
        self.impl = impl


def _to_host(leaf: Any) -> Any:
    if isinstance(leaf, jax.Array):
        if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            return _KeyData(np.asarray(jax.random.key_data(leaf)), str(jax.random.key_impl(leaf)))
        return np.asarray(leaf)
    return leaf


def to_host(tree: Any) -> Any:
    """Copy every JAX array leaf of `tree` to a numpy array (PRNG keys as key data)."""
    return jax.tree.map(_to_host, tree)


def _as_weak(x: jax.Array, dtype: Any) -> jax.Array:
    """Mark `x` weakly typed like the template leaf it replaces (same values)."""
    try:
        from jax._src.lax import lax as lax_internal

        return lax_internal._convert_element_type(x, dtype, weak_type=True)
    except Exception:  # a private API: without it the value is kept, strongly typed
        return x


def restore_like(template: Any, saved: Any) -> Any:
    """Put the host arrays of `saved` back into the structure, types and devices of `template`.

    Leaves that are JAX arrays in `template` become JAX arrays with the template's
    dtype, weak type and sharding; numpy leaves stay numpy; other leaves are taken
    from `saved` unchanged. The tree structures must match.
    """
    t_leaves, treedef = jax.tree.flatten(template)
    s_leaves = jax.tree.leaves(saved, is_leaf=lambda x: isinstance(x, _KeyData))
    if len(t_leaves) != len(s_leaves):
        raise CheckpointError(
            f"checkpoint holds {len(s_leaves)} arrays but the agent state has "
            f"{len(t_leaves)}: was it written by a different algorithm or config?"
        )
    out = []
    for t, s in zip(t_leaves, s_leaves, strict=True):
        if isinstance(s, _KeyData):
            key = jax.random.wrap_key_data(s.data, impl=s.impl)
            out.append(jax.device_put(key, t.sharding) if isinstance(t, jax.Array) else key)
            continue
        if isinstance(t, jax.Array):
            arr = np.asarray(s)
            if arr.shape != t.shape or arr.dtype != t.dtype:
                raise CheckpointError(
                    f"checkpoint array {arr.shape}/{arr.dtype} does not match agent state "
                    f"array {t.shape}/{t.dtype}"
                )
            x = jax.device_put(arr, t.sharding)
            if getattr(t, "weak_type", False):
                x = _as_weak(x, t.dtype)
            out.append(x)
        elif isinstance(t, np.ndarray):
            out.append(np.array(s, dtype=t.dtype, copy=True))
        else:
            out.append(s)
    return jax.tree.unflatten(treedef, out)


def checkpoint_name(step: int) -> str:
    return f"ckpt-{step:012d}.ckpt"


def list_checkpoints(directory: str | os.PathLike) -> list[tuple[int, Path]]:
    """`(env_steps, path)` of the checkpoints in `directory`, oldest first."""
    d = Path(directory)
    if not d.is_dir():
        return []
    found = []
    for p in d.iterdir():
        m = _NAME.match(p.name)
        if m:
            found.append((int(m.group(1)), p))
    return sorted(found)


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> Path:
    """Atomically write `payload` (host values) to `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = pickle.dumps(payload, protocol=5)
    digest = hashlib.sha256(body).digest()
    fd, tmp = tempfile.mkstemp(prefix=".tmp-" + path.name + "-", dir=path.parent)
    try:
        os.chmod(tmp, 0o644)  # mkstemp makes 0600 files; checkpoints are ordinary outputs
        with os.fdopen(fd, "wb") as fh:
            fh.write(MAGIC)
            fh.write(_HEADER.pack(len(body), digest))
            fh.write(body)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)
    return path


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read and verify one checkpoint; raises `CheckpointError` if damaged."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: {exc}") from exc
    head = len(MAGIC) + _HEADER.size
    if len(data) < head or data[: len(MAGIC)] != MAGIC:
        raise CheckpointError(f"{path} is not a softeq checkpoint (bad header)")
    length, digest = _HEADER.unpack(data[len(MAGIC) : head])
    body = data[head:]
    if len(body) != length:
        raise CheckpointError(f"{path} is truncated ({len(body)} of {length} payload bytes)")
    if hashlib.sha256(body).digest() != digest:
        raise CheckpointError(f"{path} is corrupted (checksum mismatch)")
    try:
        return pickle.loads(body)
    except Exception as exc:  # a matching hash makes this very unlikely
        raise CheckpointError(f"{path} could not be unpickled: {exc}") from exc


class CheckpointManager:
    """Saves checkpoints into one folder, keeping the newest `keep` of them."""

    def __init__(self, directory: str | os.PathLike, *, keep: int = 3):
        if keep < 1:
            raise ValueError(f"keep must be >= 1, got {keep}")
        self.directory = Path(directory)
        self.keep = keep

    def save(self, step: int, payload: dict[str, Any]) -> Path:
        """Write the checkpoint for `step`, then delete all but the newest `keep`."""
        path = write_checkpoint(self.directory / checkpoint_name(step), payload)
        self._rotate()
        return path

    def _rotate(self) -> None:
        existing = list_checkpoints(self.directory)
        for _, old in existing[: max(0, len(existing) - self.keep)]:
            try:
                old.unlink()
            except FileNotFoundError:
                pass
        for p in self.directory.glob(".tmp-ckpt-*"):  # left by a killed writer
            try:
                p.unlink()
            except FileNotFoundError:
                pass

    def paths(self) -> list[Path]:
        return [p for _, p in list_checkpoints(self.directory)]

    def load_latest(self) -> tuple[dict[str, Any], Path] | None:
        """The newest checkpoint that verifies, or None if there is none at all.

        Damaged checkpoints are skipped with a `UserWarning` naming them; if every
        checkpoint is damaged a `CheckpointError` is raised.
        """
        return load_latest_good(reversed(self.paths()))


def load_latest_good(paths: Iterable[Path]) -> tuple[dict[str, Any], Path] | None:
    paths = list(paths)
    errors = []
    for p in paths:
        try:
            return read_checkpoint(p), p
        except CheckpointError as exc:
            errors.append(str(exc))
            warnings.warn(
                f"skipping damaged checkpoint: {exc}; falling back to the previous one",
                stacklevel=3,
            )
    if errors:
        raise CheckpointError("no usable checkpoint: " + "; ".join(errors))
    return None


def resolve_checkpoint(path: str | os.PathLike) -> tuple[dict[str, Any], Path]:
    """Load a checkpoint from a file, a checkpoint folder or a run folder."""
    p = Path(path)
    if p.is_file():
        return read_checkpoint(p), p
    for candidate in (p / "checkpoints", p):
        if list_checkpoints(candidate):
            found = CheckpointManager(candidate).load_latest()
            assert found is not None
            return found
    raise FileNotFoundError(f"no checkpoint found at {str(path)!r}")
