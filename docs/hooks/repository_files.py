"""MkDocs hook: pages that show files of the repository, and the version in the footer.

A page may hold, on a line of its own,

* `<!-- include: CHANGELOG.md -->`: the Markdown of that file (path relative
  to the repository root), inserted as it is;
* `<!-- include-each: benchmarks/RESULTS*.md -->`: every file matching the
  pattern (a file named exactly like the pattern's fixed part, e.g.
  `RESULTS.md`, first; the rest by name), each as a section: its first
  heading becomes a `##` heading, a line names the file, and its other
  headings move one level down so they nest under it.

Nothing is copied by hand, so the Benchmarks and Changelog pages always show
the committed files. The footer of every page names the version of the
package (`[project] version` in pyproject.toml), and the "Source code in"
line under each API entry names the file by its path in the repository.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

_INCLUDE = re.compile(r"^<!--\s*include:\s*(?P<path>\S+)\s*-->[ \t]*$", re.MULTILINE)
_INCLUDE_EACH = re.compile(r"^<!--\s*include-each:\s*(?P<pattern>\S+)\s*-->[ \t]*$", re.MULTILINE)
_HEADING = re.compile(r"^(?P<hashes>#{1,6})(?P<rest>[ \t].*)$", re.MULTILINE)
_FENCE = re.compile(r"^(```|~~~)")


def _root(config) -> Path:
    return Path(config["config_file_path"]).resolve().parent


def package_version(root: Path) -> str:
    """The `[project] version` of pyproject.toml."""
    with open(root / "pyproject.toml", "rb") as handle:
        return tomllib.load(handle)["project"]["version"]


def _read(root: Path, relative: str) -> str:
    path = (root / relative).resolve()
    if root not in path.parents or not path.is_file():
        raise FileNotFoundError(f"include: {relative!r} is not a file of the repository")
    return path.read_text(encoding="utf-8")


def _outside_fences(text: str, transform) -> str:
    """Applies `transform` to each line that is not inside a fenced code block."""
    lines, fenced = [], False
    for line in text.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
            lines.append(line)
        else:
            lines.append(line if fenced else transform(line))
    return "\n".join(lines) + "\n"


def as_section(text: str, relative: str) -> str:
    """A file's Markdown as one `##` section named after its first heading."""
    first = _HEADING.search(text)
    title = first.group("rest").strip() if first else relative
    body = text[first.end() :] if first else text

    def demote(line: str) -> str:
        match = _HEADING.match(line)
        if not match:
            return line
        level = min(len(match.group("hashes")) + 1, 6)
        return "#" * level + match.group("rest")

    body = _outside_fences(body, demote)
    return f"## {title}\n\n*From `{relative}`.*\n\n{body.strip()}\n"


def matching_files(root: Path, pattern: str) -> list[str]:
    """Repository-relative paths matching `pattern`, the pattern's plain name first."""
    plain = re.sub(r"\*", "", Path(pattern).name)
    paths = sorted(p.relative_to(root).as_posix() for p in root.glob(pattern) if p.is_file())
    return sorted(paths, key=lambda p: (Path(p).name != plain, p))


def render(markdown: str, root: Path) -> str:
    markdown = _INCLUDE.sub(lambda m: _read(root, m.group("path")).strip() + "\n", markdown)

    def each(match: re.Match) -> str:
        files = matching_files(root, match.group("pattern"))
        if not files:
            raise FileNotFoundError(f"include-each: nothing matches {match.group('pattern')!r}")
        return "\n".join(as_section(_read(root, path), path) for path in files)

    return _INCLUDE_EACH.sub(each, markdown)


def on_config(config):
    version = package_version(_root(config))
    config["copyright"] = f"softeq {version} · Apache-2.0"
    config["extra"]["softeq_version"] = version
    return config


# mkdocstrings names a module's file by its path under docs/_python (symlinks to the
# real folders); "Source code in" shows the path in the repository instead.
_SHOWN_SOURCE_PATH = re.compile(
    r"(Source code in <code>)docs/_python/softeq/(core|adapters|properties)/"
)


def on_page_content(html, page, config, files):
    return _SHOWN_SOURCE_PATH.sub(r"\1\2/", html)


def on_page_markdown(markdown, page, config, files):
    if "<!-- include" not in markdown:
        return markdown
    return render(markdown, _root(config))
