"""Every `softeq` command the README shows is one the CLI accepts."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from softeq.adapters.cli import build_parser

README = Path(__file__).resolve().parents[1] / "README.md"


def _readme_commands() -> list[str]:
    text = README.read_text(encoding="utf-8")
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.DOTALL):
        joined = re.sub(r"\\\n\s*", " ", block)  # continuation lines
        for line in joined.splitlines():
            line = line.split("#", 1)[0].strip()
            if re.match(r"^(\.venv/bin/)?softeq\s", line):
                commands.append(line)
    return commands


def test_the_readme_shows_commands():
    assert len(_readme_commands()) >= 10


@pytest.mark.parametrize("command", _readme_commands())
def test_readme_command_parses(command):
    argv = shlex.split(command)[1:]
    namespace = build_parser().parse_args(argv)
    assert namespace.command == argv[0]
