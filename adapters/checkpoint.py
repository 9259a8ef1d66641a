"""Atomic, self-checking checkpoints that hold arrays and plain data only.

Nothing in a checkpoint can run code when it is loaded: the file holds a JSON
document and numpy `.npy` array records, both parsed as data. No pickle is
written or read, so a checkpoint from a run folder someone else shared is as
safe to `softeq evaluate` or `--resume` as one of your own.

File format, version 2 (`ckpt-<env_steps:012d>.ckpt`):

    b"SOFTEQ-CKPT\\x02"  magic (12 bytes; the last byte is the format version)
    8-byte little-endian body length
    32-byte SHA-256 of the body
    body:
      8-byte little-endian length of the document
      document: UTF-8 JSON {"format": 2, "arrays": K, "payload": <tree>}
      K array records in numpy's `.npy` format (version 1.0 or 2.0)

The payload tree is plain JSON where it can be; everything else is a JSON
object whose keys all start with a single `$` (a dict key of the payload that
starts with `$` is stored with one more `$`):

    {"$float": "nan" | "inf" | "-inf"}     a non-finite float
    {"$tuple": [...]}                       a tuple (e.g. for `random.setstate`)
    {"$array": i}                           numpy array = array record i
    {"$scalar": i}                          numpy scalar = 0-d array record i
    ... "$dtype": "bfloat16"                an ml_dtypes array stored as raw unsigned ints
    {"$prng_key": i, "$impl": "threefry2x32"}   a typed JAX PRNG key (its key data)
    {"$leaves": [...]}                      a NamedTuple or other pytree node (agent
                                            states, optax states, the replay buffer)

A pytree node other than dict, list and tuple is stored as the flat list of its
leaves and read back as that list: `restore_like(template, saved)` puts the
leaves back into the template's structure, checking their number, shapes and
dtypes, so the Python types themselves never need to be stored. Arrays with
object dtype (which `.npy` could only store as a pickle) are refused on write;
on read every array record is parsed without pickle and an object dtype is
refused.

A checkpoint is written to a temporary file in the same folder, flushed and
fsynced, then moved into place with `os.replace` (atomic on POSIX), and the
folder is fsynced. A reader therefore sees either the old set of files or the
new one, never a half-written checkpoint under a final name; a file truncated
or damaged later (disk trouble, manual copying) fails the length/hash check,
and `load_latest` falls back to the previous good checkpoint with a warning.
Version-1 files (whose body was a pickle) are refused without being unpickled.

Fault injection (tests): with `SOFTEQ_FAULT_PAUSE_IN_CHECKPOINT_WRITE=<marker
path>` in the environment, the N-th checkpoint write of the process
(`SOFTEQ_FAULT_PAUSE_AT_WRITE=N`, default 1) stops halfway through its
temporary file, creates the marker file and sleeps for a minute, so that a test
can kill the process mid-write at a known moment.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import struct
import tempfile
import time
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any, BinaryIO

import jax
import numpy as np

from softeq.adapters.atomic_file import STAGING_PREFIX, fsync_dir

FORMAT_VERSION = 2
_MAGIC_PREFIX = b"SOFTEQ-CKPT"
MAGIC = _MAGIC_PREFIX + bytes([FORMAT_VERSION])
_HEADER = struct.Struct("<Q32s")  # body length, SHA-256 of the body
_LENGTH = struct.Struct("<Q")
_NAME = re.compile(r"^ckpt-(\d{12})\.ckpt$")
#: numpy dtype kinds an array record may have: bool, signed/unsigned int, float, complex.
_ARRAY_KINDS = frozenset("biufc")
#: Keys of the tagged JSON objects that stand for values JSON has no type for.
_TAGS = frozenset(
    {"$float", "$tuple", "$leaves", "$array", "$scalar", "$dtype", "$prng_key", "$impl"}
)

FAULT_PAUSE_ENV = "SOFTEQ_FAULT_PAUSE_IN_CHECKPOINT_WRITE"
FAULT_PAUSE_AT_ENV = "SOFTEQ_FAULT_PAUSE_AT_WRITE"
FAULT_PAUSE_SECONDS = 60.0
_writes_in_this_process = 0


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, truncated, corrupted or of an unsupported format."""


class _KeyData:
    """A typed PRNG key held as its raw `uint32` key data and the name of its implementation."""

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

    `saved` may have the template's structure or be the flat list of its leaves
    (which is how a checkpoint stores NamedTuple states). Leaves that are JAX
    arrays in `template` become JAX arrays with the template's dtype, weak type
    and sharding; numpy leaves stay numpy; other leaves are taken from `saved`
    unchanged. The number of leaves, their shapes and dtypes must match.
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
            if isinstance(t, jax.Array) and np.shape(s.data) != jax.random.key_data(t).shape:
                raise CheckpointError(
                    f"checkpoint PRNG key data of shape {np.shape(s.data)} does not match the "
                    f"agent state's key data of shape {jax.random.key_data(t).shape}"
                )
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


# --------------------------------------------------------------------------------------
# Encoding a payload as a JSON document plus array records.
# --------------------------------------------------------------------------------------


def _ml_dtype_name(dtype: np.dtype) -> str | None:
    """The ml_dtypes name of an extended float/int dtype (bfloat16, float8_*, int4), else None."""
    if dtype.kind == "V" and dtype.names is None and dtype.type.__module__.startswith("ml_dtypes"):
        return dtype.name
    return None


def _ml_dtype(name: str) -> np.dtype:
    import ml_dtypes

    kind = getattr(ml_dtypes, name, None) if re.fullmatch(r"[a-z0-9_]+", name) else None
    if not (isinstance(kind, type) and issubclass(kind, np.generic)):
        raise ValueError(f"unknown ml_dtypes dtype {name!r}")
    return np.dtype(kind)


class _Encoder:
    """Turns a payload tree into JSON-ready plain data and a list of arrays."""

    def __init__(self):
        self.arrays: list[np.ndarray] = []

    def _array_ref(self, arr: np.ndarray, tag: str, where: str) -> dict[str, Any]:
        if arr.dtype.hasobject or (
            arr.dtype.kind not in _ARRAY_KINDS and _ml_dtype_name(arr.dtype) is None
        ):
            raise TypeError(
                f"checkpoint {where}: arrays of dtype {arr.dtype} cannot be stored "
                f"(allowed: bool, integer, float and complex dtypes, and ml_dtypes such as "
                f"bfloat16; object arrays would need a pickle)"
            )
        ref: dict[str, Any] = {tag: len(self.arrays)}
        name = _ml_dtype_name(arr.dtype)
        if name is not None:
            ref["$dtype"] = name
            arr = arr.view(np.dtype(f"u{arr.dtype.itemsize}"))
        self.arrays.append(arr)
        return ref

    def encode(self, value: Any, where: str = "payload") -> Any:
        if value is None or isinstance(value, bool | str):
            return value
        if isinstance(value, int) and not isinstance(value, np.generic):
            return int(value)
        if isinstance(value, float) and not isinstance(value, np.generic):
            if math.isfinite(value):
                return float(value)
            return {"$float": "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")}
        if isinstance(value, jax.Array):
            value = _to_host(value)
        if isinstance(value, _KeyData):
            ref = self._array_ref(np.asarray(value.data), "$prng_key", where)
            ref["$impl"] = str(value.impl)
            return ref
        if isinstance(value, np.ndarray):
            return self._array_ref(value, "$array", where)
        if isinstance(value, np.generic):
            return self._array_ref(np.asarray(value), "$scalar", where)
        if isinstance(value, dict):
            out = {}
            for key, item in value.items():
                if not isinstance(key, str):
                    raise TypeError(
                        f"checkpoint {where}: dict keys must be str, got {key!r} "
                        f"({type(key).__name__})"
                    )
                stored = "$" + key if key.startswith("$") else key
                out[stored] = self.encode(item, f"{where}[{key!r}]")
            return out
        if type(value) is list:
            return [self.encode(x, f"{where}[{i}]") for i, x in enumerate(value)]
        if type(value) is tuple:
            return {"$tuple": [self.encode(x, f"{where}[{i}]") for i, x in enumerate(value)]}
        leaves, treedef = jax.tree.flatten(value, is_leaf=lambda x: isinstance(x, _KeyData))
        if not (treedef.num_nodes == 1 and treedef.num_leaves == 1):
            # A NamedTuple / registered pytree: keep its leaves, not its Python type.
            return {"$leaves": [self.encode(x, f"{where}.leaf{i}") for i, x in enumerate(leaves)]}
        raise TypeError(
            f"checkpoint {where}: cannot store a value of type {type(value).__name__} (allowed: "
            f"dict with str keys, list, tuple, NamedTuple/pytree of arrays, numpy array or "
            f"scalar, JAX array, str, int, float, bool, None)"
        )


def _decode(value: Any, arrays: list[np.ndarray]) -> Any:
    if isinstance(value, list):
        return [_decode(x, arrays) for x in value]
    if not isinstance(value, dict):
        return value
    if value and all(k.startswith("$") and not k.startswith("$$") for k in value):
        return _decode_tagged(value, arrays)
    return {(k[1:] if k.startswith("$$") else k): _decode(v, arrays) for k, v in value.items()}


def _array_at(index: Any, arrays: list[np.ndarray]) -> np.ndarray:
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(arrays):
        raise ValueError(f"array reference {index!r} is not one of the {len(arrays)} records")
    return arrays[index]


def _decode_tagged(node: dict[str, Any], arrays: list[np.ndarray]) -> Any:
    keys = set(node)
    if not keys <= _TAGS:
        raise ValueError(f"unknown tags {sorted(keys - _TAGS)}")
    if keys == {"$float"} and node["$float"] in ("nan", "inf", "-inf"):
        return float(node["$float"])
    if keys == {"$tuple"} and isinstance(node["$tuple"], list):
        return tuple(_decode(x, arrays) for x in node["$tuple"])
    if keys == {"$leaves"} and isinstance(node["$leaves"], list):
        return [_decode(x, arrays) for x in node["$leaves"]]
    if keys == {"$prng_key", "$impl"} and isinstance(node["$impl"], str):
        return _KeyData(_array_at(node["$prng_key"], arrays), node["$impl"])
    for tag in ("$array", "$scalar"):
        if keys in ({tag}, {tag, "$dtype"}):
            arr = _array_at(node[tag], arrays)
            if "$dtype" in node:
                name = node["$dtype"]
                dtype = _ml_dtype(name) if isinstance(name, str) else None
                if dtype is None or dtype.itemsize != arr.dtype.itemsize or arr.dtype.kind != "u":
                    raise ValueError(f"array record {node[tag]} cannot be viewed as {name!r}")
                arr = arr.view(dtype)
            if tag == "$scalar":
                if arr.ndim != 0:
                    raise ValueError(f"scalar record {node[tag]} has shape {arr.shape}")
                return arr[()]
            return arr
    raise ValueError(f"malformed tagged value {sorted(keys)}")


# --------------------------------------------------------------------------------------
# Array records: numpy's .npy format, parsed without pickle.
# --------------------------------------------------------------------------------------


def _read_array_record(fh: BinaryIO, remaining: int) -> np.ndarray:
    """Read one `.npy` record from `fh` (at most `remaining` bytes); object dtypes are refused."""
    start = fh.tell()
    version = np.lib.format.read_magic(fh)
    if version == (1, 0):
        shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(fh)
    elif version == (2, 0):
        shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(fh)
    else:
        raise ValueError(f".npy version {version} is not used by softeq checkpoints")
    if dtype.hasobject:
        raise ValueError(
            f"an array of dtype {dtype} (object arrays are stored as a pickle, which softeq "
            f"never loads)"
        )
    if dtype.kind not in _ARRAY_KINDS:
        raise ValueError(f"an array of dtype {dtype}, which softeq checkpoints never hold")
    if any(d < 0 for d in shape):
        raise ValueError(f"an array record has negative shape {shape}")
    count = math.prod(shape)
    nbytes = count * dtype.itemsize
    if fh.tell() - start + nbytes > remaining:
        raise ValueError(f"an array record of shape {shape} runs past the end of the body")
    flat = np.empty(count, dtype=dtype)
    if nbytes and fh.readinto(memoryview(flat.view(np.uint8))) != nbytes:
        raise ValueError("an array record is cut short")
    return flat.reshape(shape, order="F" if fortran_order else "C")


class _HashingWriter:
    """A write-only file wrapper that hashes and counts what passes through it."""

    def __init__(self, fh: BinaryIO):
        self._fh = fh
        self.sha = hashlib.sha256()
        self.size = 0

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self._fh.write(view)
        self.sha.update(view)
        self.size += view.nbytes
        return view.nbytes

    def flush(self) -> None:
        self._fh.flush()


def _fault_pause_due() -> str | None:
    """The marker path if this write is the one the fault-injection variables ask to pause."""
    global _writes_in_this_process
    _writes_in_this_process += 1
    marker = os.environ.get(FAULT_PAUSE_ENV)
    if not marker:
        return None
    at = int(os.environ.get(FAULT_PAUSE_AT_ENV, "1"))
    return marker if _writes_in_this_process == at else None


def _pause_mid_write(marker: str, tmp: str) -> None:
    """Announce the pause through `marker` (created atomically, naming `tmp`), then sleep."""
    staging = f"{marker}.{os.getpid()}.tmp"
    Path(staging).write_text(tmp + "\n")
    os.replace(staging, marker)  # a waiting test never reads a half-written marker
    time.sleep(FAULT_PAUSE_SECONDS)


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


def write_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> Path:
    """Atomically write `payload` to `path` in the format of the module docstring.

    Args:
      path: the final file name.
      payload: a dict with str keys whose values are dicts, lists, tuples, numpy
        arrays and scalars, JAX arrays (typed PRNG keys included), NamedTuples of
        arrays (stored as their list of leaves), str, int, float, bool or None.

    Raises:
      TypeError: the payload holds something else (e.g. an object array).
    """
    path = Path(path)
    encoder = _Encoder()
    document = {"format": FORMAT_VERSION, "arrays": 0, "payload": encoder.encode(payload)}
    document["arrays"] = len(encoder.arrays)
    doc_bytes = json.dumps(document, allow_nan=False, separators=(",", ":")).encode()
    pause_marker = _fault_pause_due()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=STAGING_PREFIX + path.name + "-", dir=path.parent)
    try:
        os.chmod(tmp, 0o644)  # mkstemp makes 0600 files; checkpoints are ordinary outputs
        with os.fdopen(fd, "wb") as fh:
            fh.write(MAGIC)
            fh.write(_HEADER.pack(0, bytes(32)))  # filled in once the body is written
            body = _HashingWriter(fh)
            body.write(_LENGTH.pack(len(doc_bytes)))
            body.write(doc_bytes)
            half = len(encoder.arrays) // 2
            for arr in encoder.arrays[:half]:
                np.lib.format.write_array(body, arr, allow_pickle=False)
            if pause_marker is not None:  # tests: stop with half the records on disk
                body.flush()
                _pause_mid_write(pause_marker, tmp)
            for arr in encoder.arrays[half:]:
                np.lib.format.write_array(body, arr, allow_pickle=False)
            fh.seek(len(MAGIC))
            fh.write(_HEADER.pack(body.size, body.sha.digest()))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)
    return path


def _check_magic(head: bytes, path: Path) -> None:
    magic = head[: len(MAGIC)]
    if magic == MAGIC:
        return
    if len(magic) == len(MAGIC) and magic.startswith(_MAGIC_PREFIX):
        version = magic[-1]
        if version < FORMAT_VERSION:
            raise CheckpointError(
                f"{path} is a softeq checkpoint of format version {version}, an older format "
                f"this softeq no longer reads (its body is a pickle, which could run code, so "
                f"it is never unpickled); train again to write a version-{FORMAT_VERSION} "
                f"checkpoint"
            )
        raise CheckpointError(
            f"{path} is a softeq checkpoint of format version {version}, newer than this "
            f"softeq reads (version {FORMAT_VERSION}); upgrade softeq"
        )
    raise CheckpointError(f"{path} is not a softeq checkpoint (bad header)")


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read and verify one checkpoint; raises `CheckpointError` if it is not a usable one.

    Nothing in the file is executed: the document is parsed as JSON and the
    arrays as `.npy` records without pickle. NamedTuple states come back as the
    list of their leaves (see `restore_like`).
    """
    path = Path(path)
    try:
        fh = open(path, "rb")
    except OSError as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: {exc}") from exc
    with fh:
        head = fh.read(len(MAGIC) + _HEADER.size)
        _check_magic(head, path)
        if len(head) < len(MAGIC) + _HEADER.size:
            raise CheckpointError(f"{path} is truncated (its header is cut short)")
        length, digest = _HEADER.unpack(head[len(MAGIC) :])
        sha = hashlib.sha256()
        size = 0
        while chunk := fh.read(1 << 20):
            sha.update(chunk)
            size += len(chunk)
        if size < length:
            raise CheckpointError(f"{path} is truncated ({size} of {length} payload bytes)")
        if size > length or sha.digest() != digest:
            raise CheckpointError(f"{path} is corrupted (checksum mismatch)")
        fh.seek(len(head))
        try:
            return _read_body(fh, length)
        except (ValueError, TypeError, struct.error, RecursionError) as exc:
            raise CheckpointError(f"{path} is not a valid softeq checkpoint: {exc}") from exc


def _read_body(fh: BinaryIO, length: int) -> dict[str, Any]:
    start = fh.tell()
    (doc_length,) = _LENGTH.unpack(fh.read(_LENGTH.size))
    if doc_length > length - _LENGTH.size:
        raise ValueError("its document runs past the end of the body")

    def refuse_constant(name: str) -> Any:
        raise ValueError(f"non-standard JSON constant {name}")

    document = json.loads(fh.read(doc_length).decode("utf-8"), parse_constant=refuse_constant)
    if not isinstance(document, dict) or document.get("format") != FORMAT_VERSION:
        raise ValueError(f"its document is not a format-{FORMAT_VERSION} checkpoint document")
    count = document.get("arrays")
    if not isinstance(count, int) or count < 0:
        raise ValueError(f"bad array count {count!r}")
    arrays = []
    for i in range(count):
        try:
            arrays.append(_read_array_record(fh, length - (fh.tell() - start)))
        except ValueError as exc:
            raise ValueError(f"array record {i} is refused: {exc}") from exc
    if fh.tell() - start != length:
        raise ValueError(f"{length - (fh.tell() - start)} bytes follow the last array record")
    payload = _decode(document.get("payload"), arrays)
    if not isinstance(payload, dict):
        raise ValueError("its payload is not a dict")
    return payload


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
        for p in self.directory.glob(STAGING_PREFIX + "ckpt-*"):  # left by a killed writer
            try:
                p.unlink()
            except FileNotFoundError:
                pass

    def paths(self) -> list[Path]:
        return [p for _, p in list_checkpoints(self.directory)]

    def load_latest(self) -> tuple[dict[str, Any], Path] | None:
        """The newest checkpoint that verifies, or None if there is none at all.

        Unusable checkpoints (damaged, or of an older format) are skipped with a
        `UserWarning` naming them; if every checkpoint is unusable a
        `CheckpointError` is raised.
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
                f"skipping unusable checkpoint: {exc}; falling back to the previous one",
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
