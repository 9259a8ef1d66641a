"""Ending a jitted run whose program has stopped making progress.

XLA's CPU runtime was seen to stall: the host waited for a chunk's results
while every runtime thread slept, and the program never finished. One program
did so every time (DQN with 5-step targets on Freeway-MinAtar, nine lanes, in
its first chunk; the docs' Reliability page lists the XLA settings tried), and
the same program with fewer lanes ran through. The host cannot interrupt such
a wait, so `StallWatch` ends the whole process from a timer thread, with exit
status `STALLED_EXIT_STATUS`, when one chunk takes far longer than the slowest
so far. Checkpoints are atomic, so a rerun (`--resume`, or `softeq reproduce`,
which reruns a stalled program itself, smaller if it had saved nothing)
continues from the newest one.

Limits: a chunk may take `factor` times the slowest chunk so far, and never
less than `floor_s`; the first chunk, which compiles the program, gets twice the
floor. `SOFTEQ_STALL_MINUTES` sets the floor (default 30 minutes).

Before it exits, the watch can leave a record of the stall in the run folder
(`write_stall_record`, a small JSON file): `softeq reproduce` reads it to run a
program that stalled before its first checkpoint as smaller programs.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from softeq.adapters.atomic_file import write_json

#: The exit status of a process ended by `StallWatch` (sysexits' EX_TEMPFAIL: try again).
STALLED_EXIT_STATUS = 75
STALL_MINUTES_ENV = "SOFTEQ_STALL_MINUTES"
DEFAULT_STALL_MINUTES = 30.0
#: The record a stalled run leaves in its folder.
STALL_RECORD_FILENAME = "stalled.json"


def write_stall_record(run_dir: str | os.PathLike, **fields: Any) -> None:
    """Writes `fields` (JSON values) as the stall record of `run_dir`, atomically."""
    write_json(Path(run_dir) / STALL_RECORD_FILENAME, fields)


def read_stall_record(run_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The stall record of `run_dir`, or None if it has none (or an unreadable one)."""
    try:
        record = json.loads((Path(run_dir) / STALL_RECORD_FILENAME).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def stall_floor_s() -> float:
    """The floor in seconds, from `SOFTEQ_STALL_MINUTES` (a positive number) or the default."""
    text = os.environ.get(STALL_MINUTES_ENV, "")
    if not text:
        return 60.0 * DEFAULT_STALL_MINUTES
    try:
        minutes = float(text)
    except ValueError:
        minutes = float("nan")
    if not minutes > 0:
        raise ValueError(
            f"`{STALL_MINUTES_ENV}` must be a positive number of minutes, got {text!r}."
        )
    return 60.0 * minutes


class StallWatch:
    """Times each chunk (`with watch.chunk(): ...`) and ends the process if one stalls.

    Args:
      out: where the one line explaining the exit goes (flushed before exiting).
      floor_s: the least time a chunk is allowed (the first chunk: twice this).
      factor: a chunk may take this many times the slowest chunk so far.
      exit: how to end the process (`os._exit`; tests pass their own).
      on_stall: called with the limit in seconds just before the process ends
        (e.g. to `write_stall_record`); an error there does not stop the exit.
    """

    def __init__(
        self,
        out: Callable[[str], None],
        *,
        floor_s: float | None = None,
        factor: float = 10.0,
        exit: Callable[[int], None] = os._exit,
        on_stall: Callable[[float], None] | None = None,
    ):
        self.out = out
        self.on_stall = on_stall
        self.floor_s = stall_floor_s() if floor_s is None else floor_s
        self.factor = factor
        self.exit = exit
        self.slowest_s: float | None = None

    def limit_s(self) -> float:
        if self.slowest_s is None:
            return 2.0 * self.floor_s
        return max(self.floor_s, self.factor * self.slowest_s)

    @contextlib.contextmanager
    def chunk(self) -> Iterator[None]:
        limit = self.limit_s()
        timer = threading.Timer(limit, self._stalled, args=(limit,))
        timer.daemon = True
        timer.start()
        start = time.perf_counter()
        try:
            yield
        finally:
            timer.cancel()
            took = time.perf_counter() - start
            self.slowest_s = took if self.slowest_s is None else max(self.slowest_s, took)

    def _stalled(self, limit: float) -> None:
        if self.on_stall is not None:
            try:
                self.on_stall(limit)
            except Exception as exc:  # the exit matters more than the record
                self.out(f"could not record the stall: {exc}")
        self.out(
            f"stalled: one chunk of the program made no progress for {limit / 60:.1f} min "
            f"(the slowest before took {(self.slowest_s or 0) / 60:.1f} min); ending with "
            f"status {STALLED_EXIT_STATUS} so that a rerun continues from the newest "
            f"checkpoint ({STALL_MINUTES_ENV} sets the limit; a program that stalls again "
            "in the same place may run with fewer seeds, which softeq reproduce does itself)"
        )
        self.exit(STALLED_EXIT_STATUS)
