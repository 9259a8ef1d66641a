"""Files written whole or not at all (`softeq.adapters.atomic_file`)."""

from __future__ import annotations

import json
import stat

import pytest

from softeq.adapters.atomic_file import STAGING_PREFIX, atomic_write, write_json


def test_a_finished_write_replaces_the_file_and_leaves_no_staging_file(tmp_path):
    target = tmp_path / "new" / "summary.json"  # the folder is made
    write_json(target, {"b": 1, "a": [1.5, None]}, sort_keys=True)
    assert target.read_text() == '{\n  "a": [\n    1.5,\n    null\n  ],\n  "b": 1\n}\n'
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert [p.name for p in target.parent.iterdir()] == ["summary.json"]


def test_a_write_that_fails_half_way_keeps_the_old_file(tmp_path):
    target = tmp_path / "scores.csv"
    target.write_text("old\n")
    with pytest.raises(KeyboardInterrupt), atomic_write(target, newline="") as fh:
        fh.write("half of the new")
        raise KeyboardInterrupt  # Ctrl-C in the middle of the write
    assert target.read_text() == "old\n"
    assert not list(tmp_path.glob(STAGING_PREFIX + "*"))


def test_bytes_are_written_in_binary_mode(tmp_path):
    target = tmp_path / "figure.png"
    with atomic_write(target, "wb") as fh:
        fh.write(b"\x89PNG\r\n")
    assert target.read_bytes() == b"\x89PNG\r\n"
    assert json.loads(write_json(tmp_path / "x.json", [1]).read_text()) == [1]


def test_a_mode_that_would_not_replace_the_file_is_named(tmp_path):
    with pytest.raises(ValueError, match=r"`mode` must be 'w' or 'wb', got 'a'"):
        with atomic_write(tmp_path / "log.txt", "a"):
            pass
