"""The documentation builds with --strict, completely, offline, and within a size budget."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"

# A page, script, stylesheet, image or frame that the browser would fetch from
# outside the site (an absolute http(s) or protocol-relative address).
_EXTERNAL_RESOURCE = re.compile(
    r"<(?:script|img|iframe)\b[^>]*\bsrc=\"(?:https?:)?//"
    r"|<link\b[^>]*\bhref=\"(?:https?:)?//",
    re.IGNORECASE,
)


def _nav_pages(nav) -> list[str]:
    pages = []
    for entry in nav:
        value = next(iter(entry.values())) if isinstance(entry, dict) else entry
        if isinstance(value, list):
            pages.extend(_nav_pages(value))
        else:
            pages.append(value)
    return pages


def _load_nav() -> list[str]:
    config = yaml.safe_load((REPO / "mkdocs.yml").read_text(encoding="utf-8"))
    return _nav_pages(config["nav"])


def _built_path(site: Path, page: str) -> Path:
    stem = page.removesuffix(".md")
    if stem == "index" or stem.endswith("/index"):
        return site / f"{stem}.html"
    return site / stem / "index.html"


def test_strict_build_renders_every_page_of_the_nav(built_site):
    pages = _load_nav()
    assert len(pages) >= 20, pages
    missing = [page for page in pages if not _built_path(built_site, page).is_file()]
    assert not missing, f"pages in the nav without a built HTML file: {missing}"
    for page in pages:
        assert (DOCS / page).is_file(), f"nav entry {page} has no source file"


def test_site_fetches_nothing_from_outside(built_site):
    offenders = {}
    for html in built_site.rglob("*.html"):
        hits = _EXTERNAL_RESOURCE.findall(html.read_text(encoding="utf-8"))
        if hits:
            offenders[str(html.relative_to(built_site))] = hits[:3]
    assert not offenders, f"pages that load resources from the network: {offenders}"
    # The math renderer is served from the site itself.
    for asset in ("katex.min.js", "katex.min.css", "contrib/auto-render.min.js"):
        assert (built_site / "javascripts/vendor/katex" / asset).is_file(), asset
    assert len(list((built_site / "javascripts/vendor/katex/fonts").glob("*.woff2"))) == 20


def test_properties_page_lists_every_property_file_and_every_label(built_site):
    page = (built_site / "properties" / "index.html").read_text(encoding="utf-8")
    beyond_the_paper = ["l1", "m1", "m2", "m3", "s1", "s2"]
    for label in [f"e{k}" for k in range(1, 19)] + ["dqn", *beyond_the_paper]:
        assert f'id="{label}"' in page, f"anchor #{label} missing from the properties page"
    assert "<!-- prop:" not in page and "<!-- property-files -->" not in page
    files = sorted((REPO / "properties").glob("test_*.py"))
    for path in files:
        assert f"properties/{path.name}" in page, f"{path.name} missing from the properties page"


def _load_hook():
    path = DOCS / "hooks" / "property_index.py"
    spec = importlib.util.spec_from_file_location("property_index_hook", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_property_hook_reads_labels_and_ranges():
    hook = _load_hook()
    assert hook.labels_cited("checks [E3] and [E15].") == {"E3", "E15"}
    assert hook.labels_cited("[E9]–[E12]") == {"E9", "E10", "E11", "E12"}
    assert hook.labels_cited("bandit [E1–E8]") == {f"E{k}" for k in range(1, 9)}
    assert hook.labels_cited("soft DQN targets") == {"DQN"}
    assert hook.labels_cited("nothing", file_name="test_dqn_modes.py") == {"DQN"}
    assert hook.labels_cited("E3 without brackets") == set()
    assert hook.labels_cited("[L1], [M1]–[M3] and [S1–S2]") == {"L1", "M1", "M2", "M3", "S1", "S2"}
    assert hook.labels_cited("shapes [S, A] and [T]") == set()


def test_property_hook_fills_cells(tmp_path):
    hook = _load_hook()
    (tmp_path / "properties").mkdir()
    (tmp_path / "properties" / "test_gibbs.py").write_text(
        '"""Gibbs identity [E4] | with a pipe."""\n\ndef test_x():\n    """Also [E5]."""\n'
    )
    page = "| [E4] | <!-- prop:E4 --> |\n| [E6] | <!-- prop:E6 --> |\n\n<!-- property-files -->\n"
    out = hook.render(page, tmp_path)
    assert "| [E4] | `properties/test_gibbs.py` |" in out
    assert "| [E6] | *none yet* |" in out
    assert "Gibbs identity [E4] \\| with a pipe." in out
    assert "[E4](#e4), [E5](#e5)" in out


def test_committed_docs_and_built_site_stay_small(built_site):
    def size(root: Path) -> int:
        return sum(
            p.stat().st_size
            for p in root.rglob("*")
            if p.is_file() and not p.is_symlink() and "_python" not in p.parts
        )

    committed = size(DOCS)
    vendored = size(DOCS / "javascripts" / "vendor")
    site = size(built_site)
    # KaTeX (js, css, woff2 fonts) is about 0.6 MB; the pages are text.
    assert vendored < 1_000_000, vendored
    assert committed < 5_000_000, committed
    # Material's own bundle (search included) is about 2.5 MB of the site.
    assert site < 15_000_000, site
