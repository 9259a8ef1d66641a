"""Checkpoint files: atomic writes, verification, keep-last-K, fallback, exact restore."""

from __future__ import annotations

import os
import pickle

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
    with pytest.warns(UserWarning, match="damaged checkpoint"):
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


def test_restore_like_keeps_dtypes_weak_types_and_keys():
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
    saved = pickle.loads(pickle.dumps(ck.to_host(state)))
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
