"""Checkpoint files: plain data only, atomic writes, verification, keep-last-K, fallback."""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import pickle
import random
import re
import struct
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from softeq.adapters import checkpoint as ck


def _payload(step: int) -> dict:
    rng = np.random.default_rng(step)
    return {"step": step, "params": {"w": rng.normal(size=(3, 4)).astype(np.float32)}}


def test_write_read_round_trip_is_exact(tmp_path):
    payload = _payload(7)
    path = ck.write_checkpoint(tmp_path / ck.checkpoint_name(7), payload)
    back = ck.read_checkpoint(path)
    assert back["step"] == 7
    np.testing.assert_array_equal(back["params"]["w"], payload["params"]["w"])
    assert back["params"]["w"].dtype == np.float32
    assert not list(tmp_path.glob(".tmp-*")), "temporary file left behind"


def test_manager_keeps_only_the_newest_k(tmp_path):
    manager = ck.CheckpointManager(tmp_path, keep=2)
    for step in (100, 200, 300, 400):
        manager.save(step, _payload(step))
    assert [p.name for p in manager.paths()] == [ck.checkpoint_name(s) for s in (300, 400)]
    payload, path = manager.load_latest()
    assert payload["step"] == 400 and path.name == ck.checkpoint_name(400)


def test_empty_folder_has_no_checkpoint(tmp_path):
    assert ck.CheckpointManager(tmp_path / "missing").load_latest() is None


@pytest.mark.parametrize("damage", ["truncate", "flip_byte", "empty", "garbage_header"])
def test_damaged_newest_falls_back_to_previous_with_warning(tmp_path, damage):
    manager = ck.CheckpointManager(tmp_path, keep=3)
    for step in (10, 20, 30):
        manager.save(step, _payload(step))
    newest = manager.paths()[-1]
    data = newest.read_bytes()
    if damage == "truncate":
        newest.write_bytes(data[: len(data) // 2])
    elif damage == "flip_byte":
        i = len(data) - 5
        newest.write_bytes(data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1 :])
    elif damage == "empty":
        newest.write_bytes(b"")
    else:
        newest.write_bytes(b"not a checkpoint at all" + data[40:])
    with pytest.warns(UserWarning, match="unusable checkpoint"):
        payload, path = manager.load_latest()
    assert payload["step"] == 20
    assert path.name == ck.checkpoint_name(20)
    with pytest.raises(ck.CheckpointError):
        ck.read_checkpoint(newest)


def test_all_damaged_raises(tmp_path):
    manager = ck.CheckpointManager(tmp_path, keep=2)
    for step in (1, 2):
        manager.save(step, _payload(step))
    for p in manager.paths():
        p.write_bytes(p.read_bytes()[:-1])
    with pytest.warns(UserWarning), pytest.raises(ck.CheckpointError, match="no usable"):
        manager.load_latest()


def test_killed_writer_leaves_no_checkpoint_under_a_final_name(tmp_path, monkeypatch):
    manager = ck.CheckpointManager(tmp_path, keep=3)
    manager.save(1, _payload(1))

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        manager.save(2, _payload(2))
    monkeypatch.undo()
    assert [p.name for p in manager.paths()] == [ck.checkpoint_name(1)]
    assert not list(tmp_path.glob(".tmp-*"))
    # A temporary file left by a writer killed before the rename is cleaned up later.
    (tmp_path / ".tmp-ckpt-000000000003.ckpt-abc").write_bytes(b"partial")
    manager.save(3, _payload(3))
    assert not list(tmp_path.glob(".tmp-*"))


def test_restore_like_keeps_dtypes_weak_types_and_keys(tmp_path):
    template = {
        "params": jnp.ones((2, 3), jnp.float32),
        "count": jnp.asarray(0),  # weakly typed int
        "key": jax.random.key(0),
        "raw_key": np.asarray(jax.random.PRNGKey(1)),
        "buffer": np.zeros((4,), np.uint8),
        "flag": 3,
    }
    assert template["count"].weak_type
    state = {
        "params": jnp.arange(6, dtype=jnp.float32).reshape(2, 3) / 7,
        "count": jnp.asarray(5),
        "key": jax.random.split(jax.random.key(3))[0],
        "raw_key": np.asarray(jax.random.PRNGKey(9)),
        "buffer": np.arange(4, dtype=np.uint8),
        "flag": 4,
    }
    path = ck.write_checkpoint(tmp_path / "state.ckpt", {"state": ck.to_host(state)})
    saved = ck.read_checkpoint(path)["state"]
    restored = ck.restore_like(template, saved)
    np.testing.assert_array_equal(np.asarray(restored["params"]), np.asarray(state["params"]))
    assert isinstance(restored["params"], jax.Array)
    assert restored["count"].weak_type and int(restored["count"]) == 5
    np.testing.assert_array_equal(
        jax.random.key_data(restored["key"]), jax.random.key_data(state["key"])
    )
    # The restored typed key draws the same numbers as the original.
    np.testing.assert_array_equal(
        jax.random.uniform(restored["key"], (3,)), jax.random.uniform(state["key"], (3,))
    )
    assert isinstance(restored["buffer"], np.ndarray)
    np.testing.assert_array_equal(restored["buffer"], state["buffer"])
    np.testing.assert_array_equal(restored["raw_key"], state["raw_key"])
    assert restored["flag"] == 4


def test_restore_like_rejects_a_different_structure():
    template = {"a": jnp.zeros(3), "b": jnp.zeros(2)}
    with pytest.raises(ck.CheckpointError, match="different algorithm"):
        ck.restore_like(template, {"a": np.zeros(3)})
    with pytest.raises(ck.CheckpointError, match="does not match"):
        ck.restore_like(template, {"a": np.zeros(4, np.float32), "b": np.zeros(2, np.float32)})


def test_resolve_checkpoint_accepts_file_and_folders(tmp_path):
    manager = ck.CheckpointManager(tmp_path / "checkpoints", keep=2)
    manager.save(5, _payload(5))
    manager.save(6, _payload(6))
    for where in (tmp_path, tmp_path / "checkpoints", manager.paths()[0]):
        payload, _ = ck.resolve_checkpoint(where)
        assert payload["step"] == (5 if where == manager.paths()[0] else 6)
    with pytest.raises(FileNotFoundError):
        ck.resolve_checkpoint(tmp_path / "nothing-here")


# --------------------------------------------------------------------------------------
# Plain data only: what round-trips, what is refused on write and on read.
# --------------------------------------------------------------------------------------

SOFTEQ = Path(sys.executable).with_name("softeq")
REPO = Path(__file__).resolve().parents[2]


class _Pair(NamedTuple):
    first: object
    second: object


def test_plain_values_round_trip_with_their_types(tmp_path):
    payload = {
        "ints": [0, -3, 2**100],
        "floats": [0.1, -2.5e-300, float("nan"), float("inf"), -float("inf")],
        "tuple": (1, ("a", None), [True, False]),
        "numpy_rng": np.random.get_state(),  # noqa: NPY002 (the global state is the point)
        "python_rng": random.getstate(),
        "scalars": [np.float32(1.5), np.int64(-7), np.bool_(True)],
        "arrays": {
            "f64": np.linspace(0, 1, 7),
            "u8": np.arange(24, dtype=np.uint8).reshape(2, 3, 4),
            "fortran": np.asfortranarray(np.arange(6.0).reshape(2, 3)),
            "bf16": np.asarray(jnp.arange(5, dtype=jnp.bfloat16) / 3),
            "empty": np.zeros((0, 3), np.float32),
        },
        "$dollar": {"$$double": "kept"},
        "text": "résumé",
        "nothing": None,
        "empty": {},
    }
    back = ck.read_checkpoint(ck.write_checkpoint(tmp_path / "plain.ckpt", payload))
    assert back["ints"] == payload["ints"]
    for a, b in zip(back["floats"], payload["floats"], strict=True):
        assert (math.isnan(a) and math.isnan(b)) or a == b
    assert back["tuple"] == payload["tuple"] and isinstance(back["tuple"][1], tuple)
    # The restored RNG states are accepted and draw the same numbers.
    np.random.set_state(back["numpy_rng"])  # noqa: NPY002
    random.setstate(back["python_rng"])
    first = (np.random.random(), random.random())  # noqa: NPY002
    np.random.set_state(payload["numpy_rng"])  # noqa: NPY002
    random.setstate(payload["python_rng"])
    assert first == (np.random.random(), random.random())  # noqa: NPY002
    for a, b in zip(back["scalars"], payload["scalars"], strict=True):
        assert type(a) is type(b) and a == b
    for name, arr in payload["arrays"].items():
        assert back["arrays"][name].dtype == arr.dtype, name
        np.testing.assert_array_equal(back["arrays"][name], arr)
        assert back["arrays"][name].flags.writeable
    assert back["$dollar"] == {"$$double": "kept"}
    assert back["text"] == "résumé" and back["nothing"] is None and back["empty"] == {}


def test_named_tuples_are_stored_as_their_leaves_and_restored_into_the_template(tmp_path):
    state = _Pair(jnp.arange(3.0), _Pair(jax.random.key(4), (jnp.ones(2, jnp.int32), None)))
    saved = ck.read_checkpoint(ck.write_checkpoint(tmp_path / "s.ckpt", {"s": ck.to_host(state)}))
    assert isinstance(saved["s"], list) and len(saved["s"]) == 3
    template = _Pair(jnp.zeros(3), _Pair(jax.random.key(0), (jnp.zeros(2, jnp.int32), None)))
    restored = ck.restore_like(template, saved["s"])
    assert isinstance(restored, _Pair) and isinstance(restored.second, _Pair)
    np.testing.assert_array_equal(restored.first, state.first)
    np.testing.assert_array_equal(
        jax.random.key_data(restored.second.first), jax.random.key_data(state.second.first)
    )
    np.testing.assert_array_equal(restored.second.second[0], state.second.second[0])


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (np.array([object()], dtype=object), "dtype object cannot be stored"),
        (np.zeros(2, dtype=[("a", "f4"), ("b", "i4")]), "cannot be stored"),
        ({1: "int key"}, "dict keys must be str"),
        (object(), "cannot store a value of type object"),
    ],
    ids=["object-array", "structured-array", "int-key", "arbitrary-object"],
)
def test_values_that_are_not_plain_data_are_refused_on_write(tmp_path, value, message):
    with pytest.raises(TypeError, match=message) as info:
        ck.write_checkpoint(tmp_path / "bad.ckpt", {"x": [1, value]})
    assert "['x'][1]" in str(info.value)  # names where in the payload
    assert not list(tmp_path.iterdir()), "nothing is written"


def _framed(magic: bytes, body: bytes) -> bytes:
    """A file with a correct length and SHA-256 for `body` (a crafted file can have both)."""
    return magic + struct.pack("<Q32s", len(body), hashlib.sha256(body).digest()) + body


class _CreatesMarker:
    """Unpickling this object opens (creates) the marker file: stands for any code."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def _crafted_files(folder: Path, marker: Path) -> dict[str, Path]:
    """Three crafted checkpoints, each with a valid checksum, whose pickle would create `marker`."""
    evil = pickle.dumps({"agent_state": _CreatesMarker(marker)}, protocol=5)
    # The record of an object array is a pickle inside an otherwise valid .npy stream.
    record = io.BytesIO()
    np.lib.format.write_array(
        record, np.array([_CreatesMarker(marker)], dtype=object), allow_pickle=True
    )
    doc = json.dumps({"format": 2, "arrays": 1, "payload": {"x": {"$array": 0}}}).encode()
    npy_body = struct.pack("<Q", len(doc)) + doc + record.getvalue()
    files = {
        "old-format-pickle": _framed(b"SOFTEQ-CKPT\x01", evil),
        "pickle-body-new-magic": _framed(ck.MAGIC, evil),
        "object-array-record": _framed(ck.MAGIC, npy_body),
    }
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for step, (name, data) in enumerate(files.items(), start=1):
        paths[name] = folder / ck.checkpoint_name(step)
        paths[name].write_bytes(data)
    return paths


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("old-format-pickle", "older format this softeq no longer reads"),
        ("pickle-body-new-magic", "not a valid softeq checkpoint"),
        ("object-array-record", "array record 0 is refused: an array of dtype object"),
    ],
)
def test_crafted_checkpoint_is_refused_without_running_its_code(tmp_path, name, message):
    marker = tmp_path / "code-ran"
    path = _crafted_files(tmp_path / "checkpoints", marker)[name]
    with pytest.raises(ck.CheckpointError, match=message):
        ck.read_checkpoint(path)
    assert not marker.exists(), "loading the crafted checkpoint ran its code"


def test_softeq_evaluate_refuses_crafted_checkpoints_without_running_their_code(tmp_path):
    """The console script, pointed at a run folder holding only crafted checkpoints."""
    marker = tmp_path / "code-ran"
    run_dir = tmp_path / "shared-run"
    _crafted_files(run_dir / "checkpoints", marker)
    env = {k: v for k, v in os.environ.items() if k != "SOFTEQ_DEBUG"}
    proc = subprocess.run(
        [str(SOFTEQ), "evaluate", str(run_dir)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("softeq: error: no usable checkpoint"), last
    assert "older format" in last and "dtype object" in last and "not a valid" in last
    assert not marker.exists(), "softeq evaluate ran the crafted checkpoint's code"


def test_no_softeq_module_unpickles_or_allows_pickle():
    """The source-level half of the guarantee: nothing in the library can load a pickle."""
    pattern = re.compile(
        r"pickle\.loads?\(|Unpickler|allow_pickle=True|marshal\.loads?\(|shelve\.open|"
        r"dill\.loads?\(|joblib\.load\(|torch\.load\("
    )
    found, scanned = [], 0
    for folder in ("core", "adapters", "properties"):
        for path in sorted((REPO / folder).rglob("*.py")):
            scanned += 1
            for number, line in enumerate(path.read_text().splitlines(), start=1):
                if pattern.search(line):
                    found.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    assert scanned > 50  # the library's modules were read, not an empty glob
    assert not found, "\n".join(found)


def test_fault_injection_pauses_the_nth_write_with_half_a_temporary_file(tmp_path, monkeypatch):
    marker = tmp_path / "paused"
    seen = {}

    def pause(marker_path: str, tmp: str) -> None:  # instead of sleeping: look at the file
        seen["tmp"] = Path(tmp)
        seen["size"] = Path(tmp).stat().st_size
        Path(marker_path).write_text(tmp)

    monkeypatch.setattr(ck, "_pause_mid_write", pause)
    monkeypatch.setattr(ck, "_writes_in_this_process", 0)
    monkeypatch.setenv(ck.FAULT_PAUSE_ENV, str(marker))
    monkeypatch.setenv(ck.FAULT_PAUSE_AT_ENV, "2")
    manager = ck.CheckpointManager(tmp_path / "ckpts")
    manager.save(1, _payload(1))
    assert not marker.exists()
    manager.save(2, _payload(2))
    assert marker.exists() and seen["tmp"].name.startswith(".tmp-ckpt-000000000002")
    final = manager.paths()[-1]
    assert 0 < seen["size"] < final.stat().st_size  # part of the file was on disk
    manager.save(3, _payload(3))
    assert ck.read_checkpoint(final)["step"] == 2
