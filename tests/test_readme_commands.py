"""Every `softeq` command the README and the docs show is one the CLI accepts.

Parsing alone would accept `train --algo ppo --n-step zero`: flags are strings
until a subcommand checks them. So each command also goes through the checks
its subcommand runs before it trains anything (the configs of `train`, the
specs of `compare`, the plan of `reproduce`), without training.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from softeq.adapters import cli
from softeq.adapters.compare import parse_algo_spec
from softeq.adapters.reproduce import make_plan

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
# Stand-ins a reader replaces (`runs/<run>`, `HOST:PORT`, ...) make a command a template.
PLACEHOLDER = re.compile(r"<[^>]+>|\bHOST:PORT\b|\$\w+|\.\.\.")


def _commands(page: Path) -> list[str]:
    text = page.read_text(encoding="utf-8")
    commands = []
    for block in re.findall(r"```(?:bash|sh|console)\n(.*?)```", text, flags=re.DOTALL):
        joined = re.sub(r"\\\n\s*", " ", block)  # continuation lines
        for line in joined.splitlines():
            line = line.split(" #", 1)[0].strip().removeprefix("$ ")
            line = re.sub(r"^(\w+=\S*\s+)+", "", line)  # VAR=value before the command
            if re.match(r"^(\.venv/bin/)?softeq\s", line):
                commands.append(line)
    return commands


def _all_commands() -> list[tuple[str, str]]:
    return [(str(page.relative_to(REPO)), c) for page in PAGES for c in _commands(page)]


def check_command(argv: list[str], tmp_path: Path) -> None:
    """What `softeq` checks before it starts work: parsing, then the subcommand's own checks."""
    ns = cli.build_parser().parse_args(argv)
    if ns.command == "train" and not ns.resume:
        cli.make_configs(cli._run_overrides(ns), cli._algo_overrides(ns))
    elif ns.command == "compare":
        run = cli._run_overrides(ns)
        for text in ns.algos:
            spec = parse_algo_spec(text, flag="--algos")
            cli.make_configs({**run, "algo": spec.algo}, {})
    elif ns.command == "reproduce":
        make_plan(
            ns.experiment,
            suite=ns.suite,
            games=ns.games,
            seeds=ns.seeds,
            total_steps=ns.total_steps,
            out_dir=str(tmp_path / "reproduce"),
        )


def test_the_readme_and_the_docs_show_commands():
    readme = _commands(REPO / "README.md")
    assert len(readme) >= 10
    assert len(_all_commands()) >= len(readme) + 15


@pytest.mark.parametrize(("page", "command"), _all_commands())
def test_a_shown_command_is_accepted(page, command, tmp_path):
    argv = shlex.split(PLACEHOLDER.sub("x", command))[1:]
    check_command(argv, tmp_path)


def test_the_check_catches_what_parsing_lets_through(tmp_path):
    from softeq.adapters.run_config import ConfigError

    for argv in (
        ["train", "--algo", "ppo"],
        ["train", "--algo", "dqn", "--n-step", "zero"],
        ["compare", "--algos", "a2c:entropy=wild"],
        ["reproduce", "experiment-9"],
    ):
        with pytest.raises((ConfigError, SystemExit)):
            check_command(argv, tmp_path)
