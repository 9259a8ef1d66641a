"""Metrics logging: one flushed CSV per run plus TensorBoard event files.

`metrics.csv` is in long ("tidy") form, one scalar per row:

    env_step,time_s,tag,value

Tags used by the training loop:

- `train/episode_return`, `train/episode_length`: one row per finished episode
  (raw, unclipped return as reported by the environment);
- `train/sps`: environment steps per second over the last logging interval;
- `learner/<name>`: learner metrics (`soft_q_loss`, `grad_cosine`, ...), averaged
  over `log_every` consecutive updates;
- `eval/return_mean`, `eval/return_std`, `eval/length_mean`: evaluation episodes.

The logger's state (CSV byte offset at the last flush, pending averages, recent
returns) is part of each checkpoint, so a resumed run truncates the CSV back to
the checkpoint and continues it without duplicated or missing rows; the
TensorBoard writer is reopened with `purge_step` for the same effect.
"""

from __future__ import annotations

import csv
import math
import os
import time
from collections import deque
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

CSV_FILENAME = "metrics.csv"
CSV_HEADER = ("env_step", "time_s", "tag", "value")
TB_DIRNAME = "tb"


class MetricsLogger:
    """Writes scalar metrics of one run to CSV and TensorBoard.

    Args:
      run_dir: the run folder (created if missing).
      log_every: learner metrics are averaged over this many updates per row.
      tensorboard: also write TensorBoard event files under `run_dir/tb`.
      state: a dict from `state()` of an earlier logger of the same run (resume).
      recent_window: number of recent episodes behind `recent_return`.
    """

    def __init__(
        self,
        run_dir: str | os.PathLike,
        *,
        log_every: int = 1,
        tensorboard: bool = True,
        state: Mapping[str, Any] | None = None,
        recent_window: int = 100,
        flush_interval_s: float = 1.0,
    ):
        if log_every < 1:
            raise ValueError(f"log_every must be >= 1, got {log_every}")
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.csv_path = self.run_dir / CSV_FILENAME
        self.log_every = log_every
        self.flush_interval_s = flush_interval_s
        self._recent: deque[float] = deque(maxlen=recent_window)
        self._sums: dict[str, float] = {}
        self._counts: dict[str, int] = {}
        self._updates_pending = 0
        self._time_offset = 0.0
        self._last_step = 0
        purge_step = None
        if state is not None:
            offset = int(state["csv_offset"])
            if not self.csv_path.exists() or self.csv_path.stat().st_size < offset:
                raise RuntimeError(
                    f"{self.csv_path} is shorter than the checkpoint expects ({offset} bytes)"
                )
            with open(self.csv_path, "r+b") as fh:
                fh.truncate(offset)
            self._recent.extend(float(x) for x in state["recent_returns"])
            self._sums = dict(state["sums"])
            self._counts = dict(state["counts"])
            self._updates_pending = int(state["updates_pending"])
            self._time_offset = float(state["elapsed_s"])
            self._last_step = int(state["last_step"])
            purge_step = self._last_step
            self._fh = open(self.csv_path, "a", newline="")
        else:
            self._fh = open(self.csv_path, "w", newline="")
            csv.writer(self._fh).writerow(CSV_HEADER)
        self._csv = csv.writer(self._fh)
        self._start = time.perf_counter()
        self._last_flush = self._start
        self._tb = None
        if tensorboard:
            from tensorboardX import SummaryWriter

            self._tb = SummaryWriter(
                logdir=str(self.run_dir / TB_DIRNAME), purge_step=purge_step, flush_secs=10
            )
        self.flush()

    # ------------------------------------------------------------------ writing
    @property
    def elapsed_s(self) -> float:
        return self._time_offset + (time.perf_counter() - self._start)

    def scalar(self, tag: str, value: float, step: int) -> None:
        """Write one scalar row (CSV and TensorBoard)."""
        value = float(value)
        self._csv.writerow((int(step), f"{self.elapsed_s:.3f}", tag, repr(value)))
        if self._tb is not None:
            self._tb.add_scalar(tag, value, int(step))
        self._last_step = max(self._last_step, int(step))

    def scalars(self, values: Mapping[str, float], step: int, *, prefix: str = "") -> None:
        for k, v in values.items():
            self.scalar(prefix + k, v, step)

    def episodes(self, returns: Iterable[float], lengths: Iterable[float], step: int) -> None:
        """Record finished training episodes (their raw returns and lengths)."""
        for r, n in zip(returns, lengths, strict=True):
            self._recent.append(float(r))
            self.scalar("train/episode_return", r, step)
            self.scalar("train/episode_length", n, step)

    def learner(self, metrics: Mapping[str, float], step: int) -> None:
        """Accumulate one update's metrics; writes their means every `log_every` updates."""
        for k, v in metrics.items():
            v = float(v)
            if not math.isfinite(v):
                # A non-finite value is written immediately so it is never averaged away.
                self.scalar("learner/" + k, v, step)
                continue
            self._sums[k] = self._sums.get(k, 0.0) + v
            self._counts[k] = self._counts.get(k, 0) + 1
        self._updates_pending += 1
        if self._updates_pending >= self.log_every:
            self.flush_learner(step)

    def flush_learner(self, step: int) -> None:
        for k in sorted(self._sums):
            self.scalar("learner/" + k, self._sums[k] / self._counts[k], step)
        self._sums.clear()
        self._counts.clear()
        self._updates_pending = 0

    def maybe_flush(self) -> None:
        if time.perf_counter() - self._last_flush >= self.flush_interval_s:
            self.flush()

    def flush(self) -> None:
        self._fh.flush()
        os.fsync(self._fh.fileno())
        if self._tb is not None:
            self._tb.flush()
        self._last_flush = time.perf_counter()

    # ------------------------------------------------------------------ reading
    @property
    def recent_return(self) -> float:
        """Mean raw return of the most recent episodes (NaN before the first)."""
        return float(np.mean(self._recent)) if self._recent else float("nan")

    @property
    def num_recent(self) -> int:
        return len(self._recent)

    def state(self) -> dict[str, Any]:
        """Flushes, then returns what a resumed logger needs to continue exactly."""
        self.flush()
        return {
            "csv_offset": self._fh.tell(),
            "recent_returns": list(self._recent),
            "sums": dict(self._sums),
            "counts": dict(self._counts),
            "updates_pending": self._updates_pending,
            "elapsed_s": self.elapsed_s,
            "last_step": self._last_step,
        }

    def close(self) -> None:
        if self._fh.closed:
            return
        self.flush()
        self._fh.close()
        if self._tb is not None:
            self._tb.close()

    def __enter__(self) -> MetricsLogger:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_metrics(path: str | os.PathLike) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Read a `metrics.csv` (file or run folder) into `{tag: (env_steps [K], values [K])}`."""
    p = Path(path)
    if p.is_dir():
        p = p / CSV_FILENAME
    steps: dict[str, list[int]] = {}
    values: dict[str, list[float]] = {}
    with open(p, newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None or tuple(header) != CSV_HEADER:
            raise ValueError(f"{p} is not a softeq metrics file (header {header!r})")
        for row in reader:
            if len(row) != len(CSV_HEADER):
                continue  # a partially written last line
            step, _, tag, value = row
            steps.setdefault(tag, []).append(int(step))
            values.setdefault(tag, []).append(float(value))
    return {
        tag: (np.asarray(steps[tag], dtype=np.int64), np.asarray(values[tag], dtype=np.float64))
        for tag in steps
    }
