"""Every equation label such as [E7] in a page's prose or rendered docstrings is a link.

The build hook `docs/hooks/equation_links.py` turns labels into links to their
definitions; these tests check the hook on small inputs and then every page of
the built site: a label left as plain text in the article (outside code and
math) fails, naming the page and the label, and so does a label link whose
target page has no such anchor.
"""

from __future__ import annotations

import html.parser
import importlib.util
import re
import sys
from pathlib import Path
from urllib.parse import urljoin, urlsplit

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"


def _load_hook():
    path = DOCS / "hooks" / "equation_links.py"
    spec = importlib.util.spec_from_file_location("equation_links_hook", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


hook = _load_hook()
# Text that is not prose: code, scripts, styles and the TeX sources of math.
_NOT_PROSE = {"code", "pre", "script", "style", "textarea"}
_VOID = {
    "area",
    "base",
    "br",
    "col",
    "embed",
    "hr",
    "img",
    "input",
    "link",
    "meta",
    "source",
    "wbr",
}


def test_hook_links_labels_in_prose_only():
    page = (
        '<p>By [E7] and [E9–E12], see <a href="x">[E4]</a>.</p>'
        '<p><code>[E7]</code> <span class="arithmatex">\\(\\tag*{[E7]}\\)</span></p>'
        "<pre><code>y = x[E7]</code></pre><p>[DQN-2] and [DQN-1–3]; [Z9] is unknown.</p>"
    )
    hrefs = {"E7": "bandit/#E7", "E9": "mdp/#E9", "E4": "bandit/#E4", "DQN-1": "d/#DQN-1",
             "DQN-2": "d/#DQN-2"}  # fmt: skip
    linked, missing = hook.link_labels(page, hrefs.get, lambda name: f"{name}: title")
    assert '<a class="eq-ref" href="bandit/#E7" title="E7: title">[E7]</a>' in linked
    assert '<a class="eq-ref" href="mdp/#E9" title="E9–E12 (from E9: title)">[E9–E12]</a>' in linked
    assert '<a href="x">[E4]</a>' in linked  # already a link: untouched
    assert "<code>[E7]</code>" in linked and "\\tag*{[E7]}" in linked and "x[E7]</code>" in linked
    assert '<a class="eq-ref" href="d/#DQN-2" title="DQN-2: title">[DQN-2]</a>' in linked
    assert 'href="d/#DQN-1" title="DQN-1–DQN-3 (from DQN-1: title)">[DQN-1–3]</a>' in linked
    assert missing == ["Z9"]
    assert linked.count("eq-ref") == 4


def test_definitions_cover_every_label_of_the_paper():
    definitions = hook.find_definitions(DOCS)
    expected = {f"E{k}" for k in range(1, 19)} | {"DQN-1", "DQN-2", "DQN-3"}
    assert expected <= set(definitions), sorted(expected - set(definitions))
    assert definitions["E4"].src_uri == "derivations/bandit.md"
    assert definitions["E4"].title == "Gibbs variational identity"
    assert all(d.title for name, d in definitions.items() if name in expected), definitions


class _Article(html.parser.HTMLParser):
    """The prose text of a page's article and the label links in it."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.depth = 0  # > 0 while inside <article>
        self.stack: list[tuple[str, bool]] = []  # (tag, hides prose)
        self.prose: list[str] = []
        self.label_links: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if attributes.get("id"):
            self.ids.add(attributes["id"])
        if tag == "article":
            self.depth += 1
        if tag in _VOID:
            return
        classes = (attributes.get("class") or "").split()
        if tag == "a" and "eq-ref" in classes:
            self.label_links.append(attributes.get("href") or "")
        hides = tag in _NOT_PROSE or tag == "a" or "arithmatex" in classes
        self.stack.append((tag, hides))

    def handle_endtag(self, tag):
        if tag == "article":
            self.depth -= 1
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == tag:
                del self.stack[i:]
                return

    def handle_data(self, data):
        if self.depth > 0 and not any(hides for _, hides in self.stack):
            self.prose.append(data)


def _parse(path: Path) -> _Article:
    article = _Article()
    article.feed(path.read_text(encoding="utf-8"))
    article.close()
    return article


def test_no_label_is_left_unlinked_in_the_built_site(built_site):
    unlinked = {}
    for path in sorted(built_site.rglob("*.html")):
        prose = " ".join(_parse(path).prose)
        labels = sorted({m.group(0) for m in hook.LABEL_IN_TEXT.finditer(prose)})
        if labels:
            unlinked[path.relative_to(built_site).as_posix()] = labels
    assert not unlinked, (
        "equation labels left as plain text (define each with `[](){#LABEL}` and "
        "`**[LABEL] Title**` on a derivation page): " + repr(unlinked)
    )


def test_every_label_link_reaches_its_anchor(built_site):
    broken, count = [], 0
    ids_of: dict[Path, set[str]] = {}
    for path in sorted(built_site.rglob("*.html")):
        page = _parse(path)
        url = "http://site/" + path.relative_to(built_site).as_posix()
        for href in page.label_links:
            count += 1
            target = urlsplit(urljoin(url, href))
            file = built_site / target.path.removeprefix("/")
            if target.path.endswith("/"):
                file = file / "index.html"
            if file not in ids_of:
                ids_of[file] = _parse(file).ids if file.is_file() else set()
            if target.fragment not in ids_of[file]:
                broken.append(f"{path.relative_to(built_site)}: {href}")
    assert count > 200, f"only {count} label links in the site: is the hook running?"
    assert not broken, "label links without a target anchor:\n" + "\n".join(broken[:20])


def test_docstrings_are_linked_too(built_site):
    """The rendered API pages carry label links (the hook sees mkdocstrings' output)."""
    page = (built_site / "api" / "core" / "returns" / "index.html").read_text(encoding="utf-8")
    assert re.search(r'<a class="eq-ref" href="\.\./\.\./\.\./derivations/[^"]+#E13"', page)
