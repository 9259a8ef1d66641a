"""Run every benchmark section and write one markdown report.

    python -m benchmarks.run [--quick] [--only NAME ...] [--output PATH]

Sections (one module each under `benchmarks/`, each with a `run(...)` that
returns `(markdown, rows)`):

- `core_kernels`: softeq's loss/target kernels against rlax;
- `training_throughput`: env-steps/s of the training loop against the env's own ceiling;
- `learner_scaling`: learner-update time against batch size and device count;
- `learner_efficiency`: donation, host↔device copies, recompilation, diagnostic cost;
- `property_suite`: wall time of every property test under the `ci` profile.
- `jit_driver`: the jitted driver against the host loop and a hand-written jitted A2C.

`--quick` shrinks sizes and repeats so that a smoke test finishes in seconds;
its figures are only good for checking that the report is produced. A section
that raises is reported as failed in the markdown (with its error) and makes
the command exit with status 1 after the other sections have run.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import os
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = REPO_ROOT / "benchmarks" / "RESULTS.md"

# name -> (module, keyword arguments of its run() for a full run, for a quick run)
SECTIONS: dict[str, tuple[str, dict, dict]] = {
    "core_kernels": (
        "benchmarks.core_kernels",
        {},
        {"batches": (32, 256), "lengths": (5,), "repeats": 5},
    ),
    "training_throughput": ("benchmarks.training_throughput", {}, {"quick": True}),
    "learner_scaling": ("benchmarks.learner_scaling", {}, {"quick": True}),
    "learner_efficiency": ("benchmarks.learner_efficiency", {}, {"quick": True}),
    "property_suite": ("benchmarks.property_suite", {}, {"quick": True}),
    "jit_driver": (
        "benchmarks.jit_driver",
        {},
        {"rounds": 1, "cases": ("host:a2c", "jit:a2c")},
    ),
}


def git_revision(root: Path = REPO_ROOT) -> str:
    """`<short commit>` of the checkout, with a note when the tree has uncommitted changes."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown (not a git checkout)"
    return f"{commit} (with uncommitted changes)" if dirty else commit


def _load_average() -> str:
    try:
        return ", ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def header(*, quick: bool, argv: Sequence[str]) -> str:
    """The report's opening lines: machine, date, commit, command and load."""
    from softeq.adapters.reproduce import machine_description

    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    command = " ".join(["python -m benchmarks.run", *argv])
    lines = [
        "# softeq benchmarks",
        "",
        f"- Machine: {machine_description()}",
        f"- Date: {now}",
        f"- Commit: {git_revision()}",
        f"- Command: `{command}`"
        + (" (quick: shrunk sizes, smoke-test figures only)" if quick else ""),
        f"- Load average (1, 5, 15 min) at start: {_load_average()}",
        "",
        "Every figure is a median over repeated samples with its inter-quartile range (IQR) in "
        "brackets; each ratio compares against a reference timed in the same process, "
        "interleaved with the candidate where the section says so. Nothing here is asserted "
        "by a test: the figures describe one machine at one time.",
        "",
    ]
    return "\n".join(lines)


def run_section(name: str, *, quick: bool) -> tuple[str, list, float, bool]:
    """Runs one section; returns (markdown, rows, seconds, ok). A failure becomes markdown."""
    module_name, full, fast = SECTIONS[name]
    start = time.perf_counter()
    try:
        module = importlib.import_module(module_name)
        text, rows = module.run(**(fast if quick else full))
        ok = True
    except Exception as exc:  # reported in the markdown, not swallowed: exit status 1
        traceback.print_exc()
        text = f"## {name}\n\n**failed**: `{type(exc).__name__}: {exc}`\n"
        rows, ok = [], False
    return text, rows, time.perf_counter() - start, ok


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run", description="Run softeq's benchmarks into a markdown file."
    )
    parser.add_argument("--quick", action="store_true", help="shrunk sizes for a smoke test")
    parser.add_argument(
        "--only",
        nargs="+",
        metavar="NAME",
        help=f"run only these sections (of: {', '.join(SECTIONS)})",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=DEFAULT_OUTPUT,
        help=f"where the markdown goes (default: {DEFAULT_OUTPUT.relative_to(REPO_ROOT)})",
    )
    args = parser.parse_args(list(argv))
    if args.only:
        unknown = [n for n in args.only if n not in SECTIONS]
        if unknown:
            parser.error(f"--only: unknown section(s) {unknown}; choose from {', '.join(SECTIONS)}")
    return args


def main(argv: Sequence[str] | None = None, *, out: Callable[[str], None] = print) -> int:
    """Entry point; returns the exit status (0 when every section ran)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    names = [n for n in SECTIONS if not args.only or n in args.only]
    parts = [header(quick=args.quick, argv=argv)]
    timing = []
    all_ok = True
    for name in names:
        out(f"[benchmarks] {name} ...")
        text, _, seconds, ok = run_section(name, quick=args.quick)
        all_ok &= ok
        timing.append((name, seconds, ok))
        parts.append(text)
        out(text)
        out(f"[benchmarks] {name} took {seconds:.0f} s")
    summary = ", ".join(
        f"{name} {seconds:.0f} s" + ("" if ok else " (failed)") for name, seconds, ok in timing
    )
    parts.insert(1, f"Sections run (wall time): {summary}.\n")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text("\n".join(parts))
    out(f"[benchmarks] wrote {args.output}")
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
