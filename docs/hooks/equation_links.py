"""MkDocs hook: every equation label such as [E7] in a rendered page becomes a link.

The derivation pages define each label with a global anchor, `[](){#E7}`,
followed by a bold title, `**[E7] Regularised policy gradient**`. This hook
reads those definitions from the Markdown sources once per build, then walks
the HTML of every page after Markdown and mkdocstrings have run (so the
rendered docstrings are included) and wraps each label found in visible prose
in a link to its definition, with the title as a tooltip:

* single labels `[E7]`, `[DQN-2]`, and ranges `[E9–E12]` / `[DQN-1–3]` (the
  range links to its first label);
* text inside `<a>`, `<code>`, `<pre>`, `<script>`, `<style>` and the math
  sources (class `arithmatex`, typeset later by KaTeX) is left alone, so
  `\\tag*{[E7]}` stays a tag and code keeps its brackets.

A label with no definition is left as plain text; `tests/docs` fails on it,
naming the page and the label, rather than this hook failing the build, so a
page under construction does not block everyone else's build.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from pathlib import Path

from mkdocs.utils import get_relative_url

#: A label name: capital letters, an optional hyphen, digits ("E7", "DQN-2", "L1").
LABEL_NAME = r"[A-Z][A-Z]*-?\d+"
#: A label or a range of labels as written in prose: "[E7]", "[E9–E12]", "[DQN-1–3]".
LABEL_IN_TEXT = re.compile(
    rf"\[(?P<first>{LABEL_NAME})(?:\s*[–—-]\s*(?P<last>(?:[A-Z][A-Z]*-?)?\d+))?\]"
)
# A definition in a Markdown source: the global anchor, then (optionally) the bold title.
_DEFINITION = re.compile(
    rf"^\[\]\(\)\{{#(?P<name>{LABEL_NAME})\}}[ \t]*\n"
    rf"(?:\*\*\[(?P=name)\]\s*(?P<title>[^*]+?)\*\*)?",
    re.MULTILINE,
)
# Elements whose text is not prose: links, code, scripts, and math sources.
_SKIP_TAGS = {"a", "code", "pre", "script", "style", "textarea", "title", "kbd", "samp"}
_VOID_TAGS = {
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
    "track", "wbr",
}  # fmt: skip
_TOKEN = re.compile(r"(<!--.*?-->|<[^>]*>)", re.DOTALL)
_TAG = re.compile(r"<\s*(/)?\s*([A-Za-z][A-Za-z0-9-]*)([^>]*?)(/)?\s*>", re.DOTALL)
_CLASS = re.compile(r"""\bclass\s*=\s*("[^"]*"|'[^']*'|[^\s>]+)""")


@dataclass(frozen=True)
class Definition:
    """Where a label is defined: the Markdown file (relative to docs/) and its title."""

    name: str
    src_uri: str
    title: str


def find_definitions(docs_dir: Path) -> dict[str, Definition]:
    """Every `[](){#LABEL}` anchor of the Markdown pages under `docs_dir`."""
    found: dict[str, Definition] = {}
    for path in sorted(docs_dir.rglob("*.md")):
        src_uri = path.relative_to(docs_dir).as_posix()
        if src_uri.startswith(("_python/", "hooks/", "javascripts/")):
            continue
        for match in _DEFINITION.finditer(path.read_text(encoding="utf-8")):
            name = match.group("name")
            title = " ".join((match.group("title") or "").split())
            found.setdefault(name, Definition(name, src_uri, title))
    return found


def _expand_last(first: str, last: str | None) -> str | None:
    """The full name of a range's last label: "E12" for "E9–E12", "DQN-3" for "DQN-1–3"."""
    if last is None:
        return None
    if last[0].isalpha():
        return last
    return re.sub(r"\d+$", last, first)


def _classes(attributes: str) -> set[str]:
    match = _CLASS.search(attributes)
    if not match:
        return set()
    return set(match.group(1).strip("\"'").split())


def link_labels(content: str, href_for, title_for) -> tuple[str, list[str]]:
    """Wraps every label in visible prose of `content` (HTML) in a link.

    Args:
      content: the HTML of a page body.
      href_for: label name -> URL of its definition, or None when undefined.
      title_for: label name -> tooltip text.

    Returns:
      The new HTML and the names of labels that had no definition.
    """
    out: list[str] = []
    missing: list[str] = []
    stack: list[tuple[str, bool]] = []  # (tag, skips its text)

    def skipping() -> bool:
        return any(skips for _, skips in stack)

    def replace(match: re.Match) -> str:
        first = match.group("first")
        href = href_for(first)
        if href is None:
            missing.append(first)
            return match.group(0)
        title = title_for(first)
        last = _expand_last(first, match.group("last"))
        if last is not None and last != first:
            title = f"{first}–{last}" + (f" (from {title})" if title else "")
        title_attr = f' title="{html.escape(title, quote=True)}"' if title else ""
        href_attr = html.escape(href, quote=True)
        return f'<a class="eq-ref" href="{href_attr}"{title_attr}>{match.group(0)}</a>'

    for token in _TOKEN.split(content):
        if not token:
            continue
        if token.startswith("<!--"):
            out.append(token)
            continue
        if token.startswith("<"):
            out.append(token)
            tag = _TAG.match(token)
            if tag is None:
                continue
            closing, name, attributes, self_closing = tag.groups()
            name = name.lower()
            if closing:
                for i in range(len(stack) - 1, -1, -1):
                    if stack[i][0] == name:
                        del stack[i:]
                        break
            elif name not in _VOID_TAGS and not self_closing:
                skips = name in _SKIP_TAGS or "arithmatex" in _classes(attributes)
                stack.append((name, skips))
            continue
        out.append(token if skipping() else LABEL_IN_TEXT.sub(replace, token))
    return "".join(out), missing


_definitions: dict[str, Definition] = {}


def on_config(config):
    _definitions.clear()
    _definitions.update(find_definitions(Path(config["docs_dir"])))
    return config


def on_page_content(html_content, page, config, files):
    def href_for(name: str) -> str | None:
        definition = _definitions.get(name)
        if definition is None:
            return None
        target = files.get_file_from_path(definition.src_uri)
        if target is None:
            return None
        if target.url == page.file.url:
            return f"#{name}"
        return get_relative_url(target.url, page.file.url) + f"#{name}"

    def title_for(name: str) -> str:
        definition = _definitions.get(name)
        return f"{name}: {definition.title}" if definition and definition.title else ""

    content, _ = link_labels(html_content, href_for, title_for)
    return content
