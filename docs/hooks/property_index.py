"""MkDocs hook: fills the property-file columns of docs/properties.md from the sources.

Every property file `properties/test_*.py` states in its docstrings which labels
it checks ([E1] … [E18] of the paper, [L1], [M1] … and [S1] … beyond it; a
range such as "[E9]–[E12]" or "[E9–E12]" counts for every label in it; a file
whose name or docstrings mention DQN counts for the soft-DQN targets). The
hook reads those docstrings with `ast` (nothing is imported, so building the
docs needs no JAX) and replaces, in the page `properties.md` only:

* `<!-- prop:E7 -->` (or `<!-- prop:DQN -->`) with the files that cite that label,
  or with a visible "none yet" when no file does (the docs tests fail on it);
* `<!-- prop:E1 definition -->`, the cell of a label that defines an object
  rather than claims something about it, with the files that cite it, or
  with "definition" when none does;
* `<!-- property-files -->` with a table of every property file and the first
  line of its module docstring.

So the page follows the property suite without anyone editing it by hand.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

PAGE = "properties.md"
FILE_GLOB = "test_*.py"
# Label families: E (the paper), L (λ-returns), M (Munchausen), S (discrete SAC).
_FAMILIES = "ELMS"
_SINGLE = re.compile(rf"\[([{_FAMILIES}])(\d+)\]")
_BRACKET_RANGE = re.compile(rf"\[([{_FAMILIES}])(\d+)\s*[–—-]\s*(?:\1)?(\d+)\]")
_PAIR_RANGE = re.compile(rf"\[([{_FAMILIES}])(\d+)\]\s*(?:[–—-]|to)\s*\[\1(\d+)\]")
_CELL = re.compile(rf"<!--\s*prop:([{_FAMILIES}]\d+|DQN)(\s+definition)?\s*-->")
_FILES = "<!-- property-files -->"


def _docstrings(source: str) -> list[str]:
    """The module docstring and those of top-level functions and classes."""
    tree = ast.parse(source)
    texts = [ast.get_docstring(tree) or ""]
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            texts.append(ast.get_docstring(node) or "")
    return texts


def labels_cited(text: str, *, file_name: str = "") -> set[str]:
    """Labels such as "E3" (and "DQN") that a docstring text cites."""
    labels = {f"{family}{number}" for family, number in _SINGLE.findall(text)}
    for pattern in (_BRACKET_RANGE, _PAIR_RANGE):
        for family, low, high in pattern.findall(text):
            labels.update(f"{family}{k}" for k in range(int(low), int(high) + 1))
    if "dqn" in text.lower() or "dqn" in file_name.lower():
        labels.add("DQN")
    return labels


def property_files(root: Path) -> list[tuple[str, str, set[str]]]:
    """(path relative to root, summary line, labels) for every property file."""
    rows = []
    for path in sorted((root / "properties").glob(FILE_GLOB)):
        source = path.read_text(encoding="utf-8")
        texts = _docstrings(source)
        summary = texts[0].strip().splitlines()[0] if texts[0].strip() else ""
        labels = labels_cited("\n".join(texts), file_name=path.name)
        rows.append((path.relative_to(root).as_posix(), summary, labels))
    return rows


def _label_order(label: str) -> tuple[int, int, str]:
    """E1 … E18, then L1, M1 … M3, S1 …, then DQN (and anything else) by name."""
    family, number = label[0], label[1:]
    if family in _FAMILIES and number.isdigit():
        return _FAMILIES.index(family), int(number), label
    return len(_FAMILIES), 0, label


def file_cell(path: str) -> str:
    """A property file's path as code that may break only after "/" and "_" (long names)."""
    breakable = path.replace("/", "/<wbr>").replace("_", "_<wbr>")
    return f"<code>{breakable}</code>"


def _escape_cell(text: str) -> str:
    return text.replace("|", "\\|")


def render(markdown: str, root: Path) -> str:
    rows = property_files(root)

    def cell(match: re.Match) -> str:
        label, definition = match.group(1), bool(match.group(2))
        cited = [file_cell(path) for path, _, labels in rows if label in labels]
        if cited:
            return "<br>".join(cited)
        return "*definition*" if definition else "*none yet*"

    markdown = _CELL.sub(cell, markdown)
    if _FILES in markdown:
        if rows:
            lines = ["| Property file | What it states | Labels cited |", "|---|---|---|"]
            for path, summary, labels in rows:
                ordered = sorted(labels, key=_label_order)
                # plain labels: the equation-links hook turns each into a link
                cited = ", ".join("[DQN-1–3]" if x == "DQN" else f"[{x}]" for x in ordered) or "—"
                lines.append(f"| {file_cell(path)} | {_escape_cell(summary)} | {cited} |")
            table = "\n".join(lines)
        else:
            table = "*No property file `properties/test_*.py` exists yet.*"
        markdown = markdown.replace(_FILES, table)
    return markdown


def on_page_markdown(markdown, page, config, files):
    if page.file.src_uri != PAGE:
        return markdown
    root = Path(config["config_file_path"]).resolve().parent
    return render(markdown, root)
