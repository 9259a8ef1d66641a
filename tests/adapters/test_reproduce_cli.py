"""`softeq reproduce` as a user runs it: subprocesses, tiny budgets, an interruption."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from softeq.adapters import reproduce_claims as claims

OUTCOMES = {claims.REPRODUCED, claims.NOT_REPRODUCED, claims.INCONCLUSIVE}


def _softeq(*args: str, env: dict | None = None, timeout: float = 900):
    return subprocess.run(
        [sys.executable, "-m", "softeq.adapters.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def _report(out: Path, experiment: str, suite: str) -> Path:
    return out / experiment / suite / "report"


def _table_rows(verdicts_md: Path) -> tuple[list[str], list[str]]:
    """The rows (header included) of a verdicts.md's claim table and per-game score table."""
    claims_part, _, games_part = verdicts_md.read_text().partition("Score per game")

    def rows(text: str) -> list[str]:
        return [line for line in text.splitlines() if line.startswith("| ")]

    return rows(claims_part), rows(games_part)


def _check_report(report: Path, claim_count: int, seeds: int) -> dict:
    assert (report / "curves.png").stat().st_size > 10_000
    verdicts = json.loads((report / "verdicts.json").read_text())
    assert len(verdicts["verdicts"]) == claim_count
    assert all(v["outcome"] in OUTCOMES for v in verdicts["verdicts"])
    claim_rows, game_rows = _table_rows(report / "verdicts.md")
    assert len(claim_rows) == claim_count + 1  # header and one row per claim
    with open(report / "scores.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len({(r["game"], r["variant"]) for r in rows}) * seeds == len(rows)
    games = {r["game"] for r in rows}
    assert len(game_rows) == 1 + len(games)  # header and one row per game
    per_game = len(rows) // (len(games) * seeds)  # variants, each with `seeds` runs
    assert all(row.count(f"({seeds})") == per_game for row in game_rows[1:])
    assert all(float(r["episode_length"]) >= 1 for r in rows)  # every run ended episodes
    return verdicts


def test_experiment_3_on_minatar_breakout_writes_figures_and_verdicts(tmp_path):
    """The command of the issue's "done when", verbatim."""
    proc = _softeq(
        "reproduce", "experiment-3", "--suite", "minatar", "--games", "Breakout-MinAtar",
        "--seeds", "0", "--total-steps", "20000", "--out", str(tmp_path),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = _report(tmp_path, "experiment-3", "minatar")
    verdicts = _check_report(report, claim_count=3, seeds=1)
    # one seed gives no verdict: a bootstrap over one run has no spread.
    assert {v["outcome"] for v in verdicts["verdicts"]} == {claims.INCONCLUSIVE}
    assert (report / "cosine.png").stat().st_size > 10_000
    assert "soft-q ≈ a2c" in proc.stdout


@pytest.mark.fast_compile
def test_experiment_2_runs_every_dqn_target_and_n_step(tmp_path):
    """Six DQN variants in two programs (the three targets of each n-step share one),
    side by side in worker processes (`--workers 2`)."""
    proc = _softeq(
        "reproduce", "experiment-2", "--games", "CartPole-v1", "--seeds", "0", "1", "2",
        "--total-steps", "1500", "--workers", "2", "--out", str(tmp_path),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "2 program(s) to run, 2 side by side" in proc.stdout
    assert proc.stdout.count("\n  CartPole-v1 ") == 6  # one status line per variant
    assert proc.stdout.count("shared by 3 variants") == 6
    report = _report(tmp_path, "experiment-2", "classic")
    _check_report(report, claim_count=3, seeds=3)
    with open(report / "aggregates.csv") as fh:
        variants = [r["variant"] for r in csv.DictReader(fh)]
    assert sorted(variants) == sorted(
        f"{t}-{n}" for t in ("hard", "soft-kl", "soft-entropy") for n in (1, 5)
    )

    # --report-only redraws the report elsewhere from the finished runs, training nothing.
    summaries = sorted(tmp_path.rglob("summary.json"))
    stamps = [p.stat().st_mtime_ns for p in summaries]
    elsewhere = tmp_path / "published"
    again = _softeq(
        "reproduce", "experiment-2", "--games", "CartPole-v1", "--seeds", "0", "1", "2",
        "--total-steps", "1500", "--out", str(tmp_path), "--report-only",
        "--report-dir", str(elsewhere),
    )  # fmt: skip
    assert again.returncode == 0, again.stderr[-3000:]
    assert "program(s) to run" not in again.stdout
    assert [p.stat().st_mtime_ns for p in sorted(tmp_path.rglob("summary.json"))] == stamps
    _check_report(elsewhere, claim_count=3, seeds=3)
    assert _scores(elsewhere) == _scores(report)


def _scores(report: Path) -> list[dict]:
    with open(report / "scores.csv") as fh:
        return sorted(csv.DictReader(fh), key=lambda r: (r["variant"], r["seed"]))


@pytest.mark.fast_compile
def test_an_interrupted_reproduction_continues_where_it_stopped(tmp_path, kill_in_checkpoint_write):
    """Kill mid-way, rerun: finished runs are kept, the rest continues, same final table.

    Experiment 3's variants at c = 0.5 and c = 1/τ of one algorithm share a program
    (only the sweepable `value_weight` differs): two programs of two variants each.
    """
    args = ["reproduce", "experiment-3", "--games", "CartPole-v1", "--seeds", "0", "1", "2",
            "--total-steps", "3000"]  # fmt: skip
    whole = _softeq(*args, "--out", str(tmp_path / "whole"))
    assert whole.returncode == 0, whole.stderr[-3000:]
    assert "12 runs, 0 already finished, 2 program(s) to run" in whole.stdout

    # A checkpoint of a shared program is three writes (the program's, then one per
    # member); each program makes 13 of them. Write 59 is the first member's copy of
    # the second program's 7th checkpoint: the process pauses there and is killed.
    cut = tmp_path / "cut"
    kill_in_checkpoint_write([*args, "--out", str(cut)], 59, tmp_path / "paused")
    root = cut / "experiment-3" / "classic"
    runs = root / "runs" / "CartPole-v1"
    first = [runs / v / "seeds-0-1-2" / "summary.json" for v in ("a2c", "a2c-c1_tau")]
    second = root / "programs" / "CartPole-v1" / "soft-q+soft-q-c1_tau" / "seeds-0-1-2"
    assert all(p.exists() for p in first)
    assert not (runs / "soft-q" / "seeds-0-1-2" / "summary.json").exists()
    before = [(p.read_text(), p.stat().st_mtime_ns) for p in first]
    # The programs that finished left their run cards before the kill.
    cards = root / "report" / "runs" / "CartPole-v1"
    assert sorted(p.relative_to(cards).as_posix() for p in cards.rglob("*.json")) == sorted(
        f"{v}/seed-{s}.json" for v in ("a2c", "a2c-c1_tau") for s in (0, 1, 2)
    )

    # --status reads where it stands and runs nothing.
    status = _softeq(*args, "--out", str(cut), "--status")
    assert status.returncode == 0, status.stderr[-3000:]
    lines = status.stdout.splitlines()
    assert lines[0].startswith("experiment-3 (§6.3) on the classic suite: 12 runs, 6 finished, "
                               "1 program(s) left")  # fmt: skip
    assert re.fullmatch(
        r"  CartPole-v1 soft-q \+ soft-q-c1/tau seeds \[0, 1, 2\]: [\d,]+ of 3,\d{3} env steps"
        r", last written \d+ min ago",
        lines[1],
    ), lines[1]
    assert re.match(r"left: [\d,]+ env steps; at the pace of the finished runs", lines[2])
    assert len(lines) == 3
    # A cap does not cut a program that has saved a checkpoint: it continues whole.
    capped = _softeq(*args, "--out", str(cut), "--status", "--max-lanes", "1")
    assert capped.returncode == 0, capped.stderr[-3000:]
    assert capped.stdout.splitlines()[0] == lines[0]
    assert capped.stdout.splitlines()[1].startswith("  CartPole-v1 soft-q + soft-q-c1/tau")
    assert not (runs / "soft-q" / "seeds-0-1-2" / "summary.json").exists()

    again = _softeq(*args, "--out", str(cut))
    assert again.returncode == 0, again.stderr[-3000:]
    assert "12 runs, 6 already finished, 1 program(s) to run" in again.stdout
    assert [(p.read_text(), p.stat().st_mtime_ns) for p in first] == before  # not redone
    assert "resumed from" in (second / "train.log").read_text()
    # The continued runs end where the uninterrupted ones did, run by run.
    assert _scores(_report(cut, "experiment-3", "classic")) == _scores(
        _report(tmp_path / "whole", "experiment-3", "classic")
    )

    # The verdict table too (its header names the folder and the wall time, which differ).
    def table(out: Path, report: Path | None = None) -> list[str]:
        report = report or _report(out, "experiment-3", "classic")
        claim_rows, game_rows = _table_rows(report / "verdicts.md")
        return claim_rows + game_rows

    assert table(cut) == table(tmp_path / "whole") and len(table(cut)) == 4 + 2
    assert (
        "12 finished runs in 2 jitted programs"
        in (_report(cut, "experiment-3", "classic") / "verdicts.md").read_text()
    )

    # Another machine with the report folder alone (a clone of a repository that
    # committed it): its run cards count as finished runs and the report is redrawn
    # from them, the same table, figures and compute.
    whole_report = _report(tmp_path / "whole", "experiment-3", "classic")
    cards = sorted((whole_report / "runs").rglob("seed-*.json"))
    assert len(cards) == 12
    elsewhere = tmp_path / "clone" / "report"
    shutil.copytree(whole_report, elsewhere)
    for png in elsewhere.glob("*.png"):
        png.unlink()
    clone = tmp_path / "clone" / "runs"
    again = _softeq(*args, "--out", str(clone), "--report-dir", str(elsewhere))
    assert again.returncode == 0, again.stderr[-3000:]
    assert "12 runs, 12 already finished, 0 program(s) to run" in again.stdout
    assert not (clone / "experiment-3" / "classic" / "runs").exists()
    assert _scores(elsewhere) == _scores(whole_report)
    assert table(tmp_path / "whole") == table(tmp_path / "clone", elsewhere)
    compute = re.compile(r"Compute: .*? min of program time")
    assert (
        compute.search((elsewhere / "verdicts.md").read_text()).group()
        == compute.search((whole_report / "verdicts.md").read_text()).group()
    )
    assert (elsewhere / "curves.png").stat().st_size > 10_000
    assert (elsewhere / "cosine.png").stat().st_size > 10_000


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["experiment-9"], "EXPERIMENT"),
        (["experiment-1", "--suite", "mujoco"], "--suite"),
        (["experiment-1", "--games", "Pong-MinAtar"], "--games"),
        (["experiment-1", "--seeds", "1", "1"], "--seeds"),
        (["experiment-1", "--total-steps", "0"], "--total-steps"),
        (["experiment-1", "--workers", "0"], "--workers"),
        (["experiment-1", "--max-lanes", "0"], "--max-lanes"),
        (["experiment-1", "--status", "--max-lanes", "-3"], "--max-lanes"),
    ],
)
def test_bad_arguments_are_named(tmp_path, args, flag):
    proc = _softeq("reproduce", *args, "--out", str(tmp_path))
    assert proc.returncode == 2
    assert f"error: {flag}: got" in proc.stderr and "allowed" in proc.stderr


def test_max_lanes_cuts_the_programs_a_status_lists(tmp_path):
    args = ["reproduce", "experiment-2", "--games", "CartPole-v1", "--seeds", "0", "1", "2",
            "--total-steps", "3000", "--out", str(tmp_path), "--status"]  # fmt: skip
    whole = _softeq(*args)
    assert whole.returncode == 0, whole.stderr[-3000:]
    assert "2 program(s) left" in whole.stdout.splitlines()[0]
    capped = _softeq(*args, "--max-lanes", "3")
    assert capped.returncode == 0, capped.stderr[-3000:]
    lines = capped.stdout.splitlines()
    assert "6 program(s) left" in lines[0]
    targets = [f"{t}-{n}" for n in (1, 5) for t in ("hard", "soft-kl", "soft-entropy")]
    assert lines[1:7] == [f"  CartPole-v1 {t} seeds [0, 1, 2]: not started" for t in targets]
    assert list(tmp_path.iterdir()) == []  # --status writes nothing


def test_a_second_budget_in_the_same_folder_is_refused(tmp_path):
    from softeq.adapters import reproduce

    plan = reproduce.make_plan("experiment-1", seeds=[0], total_steps=1000, out_dir=tmp_path)
    reproduce._check_plan_file(plan)
    other = reproduce.make_plan("experiment-1", seeds=[0], total_steps=2000, out_dir=tmp_path)
    with pytest.raises(Exception, match="use another --out"):
        reproduce._check_plan_file(other)


def test_suite_settings_reach_the_replay_learners_only():
    """The MinAtar suite trains DQN at one update per 4 transitions (the Nature DQN's
    ratio); the classic suite keeps the registry's defaults, and actor-critics are
    untouched by a suite's replay settings."""
    from softeq.adapters import agents, reproduce

    minatar_dqn = reproduce.make_plan("experiment-2", suite="minatar", seeds=[0])
    for variant in minatar_dqn.experiment.variants:
        config = minatar_dqn.config("Breakout-MinAtar", variant)
        assert config.train_every == 4
        assert config.target == variant.overrides["target"]
    classic_dqn = reproduce.make_plan("experiment-2", suite="classic", seeds=[0])
    default = agents.default_config("dqn", "CartPole-v1").train_every
    assert classic_dqn.config("CartPole-v1", classic_dqn.experiment.variants[0]).train_every == (
        default
    )
    minatar_a2c = reproduce.make_plan("experiment-3", suite="minatar", seeds=[0])
    for variant in minatar_a2c.experiment.variants:
        assert minatar_a2c.config("Breakout-MinAtar", variant) == variant.config(
            "Breakout-MinAtar", minatar_a2c.budget(variant)
        )


def _alive(pid: int) -> bool:  # a zombie has exited; only its reaping is missing
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split(")")[-1].split()[0] != "Z"


def _program_processes(pid: int) -> list[int]:
    """The worker processes (one per running program) of the command `pid`."""
    children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    found = []
    for child in children.stdout.split():
        cmdline = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ")
        if b"multiprocessing.spawn" in cmdline and b"resource_tracker" not in cmdline:
            found.append(int(child))
    return found


def _start_and_wait(args: list[str], ready) -> tuple[subprocess.Popen, list[int]]:
    """Start `softeq *args` in a session of its own (as a terminal would run it); wait
    until `ready()` and two programs run."""
    # A test runner may ignore SIGINT (pytest-xdist's workers do), and a child inherits
    # that: the command is started with Python's own Ctrl-C handler put back.
    ctrl_c = (
        "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
        "from softeq.adapters.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", ctrl_c, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + 600
    while not (ready() and len(_program_processes(proc.pid)) == 2):
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "the programs never got going"
        time.sleep(0.2)
    return proc, _program_processes(proc.pid)


def _stopped(proc: subprocess.Popen, workers: list[int]) -> str:
    """Wait for the command to exit; check that it says so and leaves no worker behind."""
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 130, stderr[-3000:]  # EXIT_INTERRUPTED
    deadline = time.monotonic() + 30
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(_alive(pid) for pid in workers)
    return stderr


def test_a_reproduction_with_workers_stops_cleanly_and_continues(tmp_path):
    """Ctrl-C in a terminal (SIGINT to every process of the command), then SIGTERM to
    one worker alone: each time the running programs save a checkpoint and stop, no
    further program starts, the command exits and no worker outlives it; a rerun
    finishes the interrupted game from the checkpoints (the rerun names that game
    alone, as a user who continues one game would: Acrobot's programs only show
    that no program starts after a stop, and training them adds nothing)."""
    args = ["reproduce", "experiment-2", "--games", "CartPole-v1", "Acrobot-v1", "--seeds",
            "0", "--total-steps", "20000", "--workers", "2", "--out", str(tmp_path)]  # fmt: skip
    # Four programs: per game, the three targets of each n-step share one.
    root = tmp_path / "experiment-2" / "classic"
    cartpole = root / "programs" / "CartPole-v1"

    def checkpoints() -> list[Path]:
        return sorted(cartpole.glob("*/seeds-0/checkpoints/ckpt-*"))

    proc, workers = _start_and_wait(args, lambda: len(checkpoints()) >= 2)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal sends
    _stopped(proc, workers)
    assert not (root / "runs" / "Acrobot-v1").exists()  # Acrobot's programs never started
    assert not (root / "programs" / "Acrobot-v1").exists()
    first = checkpoints()

    proc, workers = _start_and_wait(args, lambda: checkpoints() != first)
    os.kill(workers[0], signal.SIGTERM)  # one worker alone: the other stops too
    assert "stopped by signal 15" in _stopped(proc, workers)
    assert not (root / "programs" / "Acrobot-v1").exists()

    status = _softeq(*args, "--status")
    assert status.returncode == 0, status.stderr[-3000:]
    assert "12 runs, 0 finished, 4 program(s) left" in status.stdout.splitlines()[0]

    cartpole_only = [a for a in args if a != "Acrobot-v1"]
    again = _softeq(*cartpole_only)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "6 runs, 0 already finished, 2 program(s) to run" in again.stdout
    logs = sorted(cartpole.glob("*/seeds-0/train.log"))
    assert len(logs) == 2, logs
    for log in logs:
        assert log.read_text().count("resumed from") == 2
    assert len(list((root / "runs").glob("CartPole-v1/*/seeds-0/summary.json"))) == 6
    assert not (root / "programs" / "Acrobot-v1").exists()
