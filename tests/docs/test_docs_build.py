"""The documentation builds with --strict, completely, offline, and within a size budget."""

from __future__ import annotations

import importlib.util
import re
import sys
import tomllib
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"

# A page, script, stylesheet, image or frame that the browser would fetch from
# outside the site (an absolute http(s) or protocol-relative address).
# (A canonical link names the page's published address; nothing is fetched from it.)
_EXTERNAL_RESOURCE = re.compile(
    r"<(?:script|img|iframe)\b[^>]*\bsrc=\"(?:https?:)?//"
    r"|<link\b(?![^>]*\brel=\"canonical\")[^>]*\bhref=\"(?:https?:)?//",
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


class _ConfigLoader(yaml.SafeLoader):
    """Reads mkdocs.yml; its `!ENV [NAME, default]` values become their defaults."""


_ConfigLoader.add_constructor("!ENV", lambda loader, node: loader.construct_sequence(node)[-1])


def load_config() -> dict:
    return yaml.load((REPO / "mkdocs.yml").read_text(encoding="utf-8"), Loader=_ConfigLoader)


def _load_nav() -> list[str]:
    return _nav_pages(load_config()["nav"])


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
    page = page.replace("<wbr>", "")  # the file names may break after "/" and "_"
    beyond_the_paper = ["l1", "m1", "m2", "m3", "s1", "s2"]
    for label in [f"e{k}" for k in range(1, 19)] + ["dqn", *beyond_the_paper]:
        assert f'id="{label}"' in page, f"anchor #{label} missing from the properties page"
    assert "<!-- prop:" not in page and "<!-- property-files -->" not in page
    files = sorted((REPO / "properties").glob("test_*.py"))
    for path in files:
        assert f"properties/{path.name}" in page, f"{path.name} missing from the properties page"


def test_property_index_is_complete():
    """Every claim has a property that cites it; the other labels say they are definitions."""
    hook = _load_hook()
    source = (DOCS / "properties.md").read_text(encoding="utf-8")
    rendered = hook.render(source, REPO)
    assert "none yet" not in rendered, "a claim on the properties page has no property file"
    rows = re.findall(
        r"^\| <span id=\"([a-z0-9-]+)\"></span>\*\*\[([^\]]+)\]\*\* \| (\w+) \|", source, re.M
    )
    assert len(rows) == 19 + 6, rows  # [E1]–[E18], [DQN-1–3], [L1], [M1]–[M3], [S1]–[S2]
    kinds = {label: kind for _, label, kind in rows}
    # Every label defined on a derivation page, a new family included, has its row.
    defined = set(_load_links_hook().find_definitions(DOCS))
    listed = {f"DQN-{k}" for k in (1, 2, 3)} | set(kinds)
    assert defined <= listed, f"labels without a row on the properties page: {defined - listed}"
    assert {kinds[f"E{k}"] for k in (1, 2, 3, 10)} == {"definition"}
    cited = set().union(*(labels for _, _, labels in hook.property_files(REPO)))
    for label, kind in kinds.items():
        assert kind in ("claim", "definition"), (label, kind)
        key = "DQN" if label.startswith("DQN") else label
        if kind == "claim":
            assert key in cited, f"no property file cites the claim [{label}]"
        else:
            assert f"<!-- prop:{key} definition -->" in source, label


def test_property_files_named_on_pages_exist():
    """A property file named on a page (`properties/test_x.py` or `test_x`) exists."""
    named = set()
    for page in DOCS.rglob("*.md"):
        text = page.read_text(encoding="utf-8")
        named |= set(re.findall(r"properties/(test_\w+)\.py", text))
        named |= set(re.findall(r"`(test_\w+)`", text))
    assert named, "no page names a property file"
    missing = sorted(n for n in named if not (REPO / "properties" / f"{n}.py").is_file())
    assert not missing, f"pages name property files that do not exist: {missing}"


def _load_links_hook():
    path = DOCS / "hooks" / "equation_links.py"
    spec = importlib.util.spec_from_file_location("equation_links_for_build_tests", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


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
    assert "| [E4] | <code>properties/<wbr>test_<wbr>gibbs.py</code> |" in out
    assert "| [E6] | *none yet* |" in out
    defined = hook.render("| [E2] | <!-- prop:E2 definition --> |\n", tmp_path)
    assert defined == "| [E2] | *definition* |\n"
    assert "Gibbs identity [E4] \\| with a pipe." in out
    assert "| Gibbs identity [E4] \\| with a pipe. | [E4], [E5] |" in out


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
    # Material's own bundle (search included) is about 2.5 MB of the site; the Results
    # page's figures (docs/results, 256-colour PNGs of 10-150 kB) under 1 MB more.
    assert site < 16_000_000, site


def _pyproject_version() -> str:
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "version"
    ]


def test_version_citation_and_changelog_agree(built_site):
    version = _pyproject_version()
    citation = yaml.safe_load((REPO / "CITATION.cff").read_text(encoding="utf-8"))
    assert citation["cff-version"] == "1.2.0"
    assert str(citation["version"]) == version
    preferred = citation["preferred-citation"]
    assert preferred["title"] == "Equivalence Between Policy Gradients and Soft Q-Learning"
    assert "arxiv.org/abs/1704.06440" in preferred["url"]
    home = (built_site / "index.html").read_text(encoding="utf-8")
    assert 'href="https://arxiv.org/abs/1704.06440"' in home
    source = (DOCS / "index.md").read_text(encoding="utf-8")
    assert "@misc{schulman2017equivalence," in source and "eprint        = {1704.06440}" in source
    assert re.findall(r"version = \{([^}]*)\}", source) == [version]
    assert set(re.findall(r"softeq (\d+\.\d+\.\d+)", source)) <= {version}
    for page in built_site.rglob("index.html"):
        assert f"softeq {version}" in page.read_text(encoding="utf-8"), f"no version on {page}"
    changelog = (REPO / "CHANGELOG.md").read_text(encoding="utf-8")
    assert f"## {version}" in changelog
    rendered = (built_site / "changelog" / "index.html").read_text(encoding="utf-8")
    # The changelog's own heading for this version is on its page (every page shows the
    # version in its header, so the bare number would prove nothing).
    heading = re.search(r"<h2[^>]*>(.*?)</h2>", rendered, flags=re.DOTALL)
    assert heading and heading.group(1).lstrip().startswith(f"{version} —"), heading


def test_benchmarks_page_renders_every_results_file(built_site):
    page = (built_site / "benchmarks" / "index.html").read_text(encoding="utf-8")
    results = sorted((REPO / "benchmarks").glob("RESULTS*.md"))
    assert results
    for path in results:
        assert f"benchmarks/{path.name}" in page, f"{path.name} is not on the Benchmarks page"
        first_row = next(
            line for line in path.read_text(encoding="utf-8").splitlines() if line.startswith("| ")
        )
        first_cell = first_row.strip("| ").split(" | ")[0]
        assert first_cell in page, f"the first table of {path.name} is not rendered"


def test_repository_files_hook_nests_included_files(tmp_path):
    path = DOCS / "hooks" / "repository_files.py"
    spec = importlib.util.spec_from_file_location("repository_files_hook", path)
    hook = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hook)
    (tmp_path / "bench").mkdir()
    (tmp_path / "bench" / "RESULTS-b.md").write_text(
        "# Second\n\n## Part\n\n```\n# not a heading\n```\n"
    )
    (tmp_path / "bench" / "RESULTS.md").write_text("# Main\n\ntext\n")
    (tmp_path / "NOTES.md").write_text("# Notes\n")
    out = hook.render(
        "<!-- include-each: bench/RESULTS*.md -->\n<!-- include: NOTES.md -->\n", tmp_path
    )
    assert out.index("## Main") < out.index("## Second")
    assert "*From `bench/RESULTS.md`.*" in out and "### Part" in out
    assert "# not a heading" in out and "## not a heading" not in out
    assert "# Notes" in out


def test_source_is_shown_in_place_of_a_repository_link(built_site):
    """softeq has no public repository: the API pages carry the source of each object."""
    config = load_config()
    assert "repo_url" not in config
    python = config["plugins"][2]["mkdocstrings"]["handlers"]["python"]
    assert python["options"]["show_source"] is True
    page = (built_site / "api" / "core" / "soft" / "index.html").read_text(encoding="utf-8")
    assert "Source code in <code>core/soft.py</code>" in page and "soft_value" in page


def test_404_page_links_follow_site_url(site_builder, tmp_path):
    """With the site published under a sub-path, the 404 page's links stay inside it."""
    result = site_builder(
        tmp_path / "site", env={"SOFTEQ_SITE_URL": "https://docs.invalid/softeq/"}
    )
    assert result.returncode == 0, result.stderr[-4000:]
    page = (tmp_path / "site" / "404.html").read_text(encoding="utf-8")
    assets = re.findall(r'(?:href|src)="(/[^"]*)"', page)
    assert assets, "the 404 page has no absolute links"
    outside = [link for link in assets if not link.startswith("/softeq/")]
    assert not outside, f"404 links outside the site's sub-path: {outside[:5]}"
