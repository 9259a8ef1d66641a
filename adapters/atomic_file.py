"""Files written whole or not at all.

A reader (a resumed run, `softeq reproduce --status`, a report) never sees half a
file, and a crash in the middle of a write leaves the previous version in place:
the content goes to a staging file beside the target, is flushed to disk, and is
then moved onto the target with `os.replace`, which is atomic on POSIX.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

#: Staging files are named `.tmp-<target name>-<random>` in the target's folder.
STAGING_PREFIX = ".tmp-"


@contextlib.contextmanager
def atomic_write(
    path: str | os.PathLike, mode: str = "w", *, newline: str | None = None
) -> Iterator[IO[Any]]:
    """Opens a staging file for `path`; on a clean exit it replaces `path`.

    Args:
      path: the file to write; its folder is made when missing.
      mode: `"w"` (text) or `"wb"` (bytes).
      newline: as for `open` in text mode (`""` for the csv module).

    On an exception the staging file is removed and `path` is left as it was.

    Example:
      >>> import pathlib, tempfile
      >>> target = pathlib.Path(tempfile.mkdtemp()) / "note.txt"
      >>> with atomic_write(target) as fh:
      ...     _ = fh.write("whole\\n")
      >>> target.read_text()
      'whole\\n'
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"`mode` must be 'w' or 'wb', got {mode!r}.")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, staging = tempfile.mkstemp(prefix=f"{STAGING_PREFIX}{path.name}-", dir=path.parent)
    try:
        with os.fdopen(fd, mode, newline=newline) as fh:
            os.fchmod(fh.fileno(), 0o644)  # mkstemp makes 0600 files; these are ordinary outputs
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(staging, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(staging)
        raise
    fsync_dir(path.parent)


def fsync_dir(directory: str | os.PathLike) -> None:
    """Flushes `directory`'s entries (a rename into it) to disk, where the system allows."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems refuse to fsync a folder; the rename still happened
        pass
    finally:
        os.close(fd)


def write_json(path: str | os.PathLike, value: Any, **dump_options: Any) -> Path:
    """Writes `value` as indented JSON (and a final newline) to `path`, atomically.

    `dump_options` go to `json.dump` (e.g. `sort_keys=True`).
    """
    with atomic_write(path) as fh:
        json.dump(value, fh, indent=2, **dump_options)
        fh.write("\n")
    return Path(path)
