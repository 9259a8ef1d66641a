"""The built site, opened in headless Chromium: math, links, layout at 420 px, figures.

The site is built with --strict into a temporary directory, served on
127.0.0.1 by `http.server` in a thread, and each page below is loaded with
`chromium --headless --dump-dom` after its scripts have run. A probe page,
written into the served copy of the site, then loads the pages one after
another in an iframe 420 px wide (a phone) and measures them after KaTeX has
run: no equation tag may overlap its equation, no code may run out of its
column, the page may not scroll sideways, and every figure must load (pages
with figures are also measured at desktop width). Screenshots of a few pages
at both widths are written to build/docs-screenshots/ for a human look.
Chromium is required: install it with `apt-get install -y chromium`.
"""

from __future__ import annotations

import concurrent.futures
import functools
import html.parser
import http.server
import json
import os
import re
import shutil
import subprocess
import threading
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import pytest

REPO = Path(__file__).resolve().parents[2]

DERIVATIONS = (
    "derivations/bandit/",
    "derivations/mdp/",
    "derivations/soft-q-and-pg/",
    "derivations/main-theorem/",
    "derivations/a2c-matched/",
    "derivations/natural-gradient/",
    "derivations/soft-dqn/",
    "derivations/lambda-returns/",
    "derivations/munchausen/",
    "derivations/sac-discrete/",
)
# The derivations, the other prose pages, and the core API pages (their
# docstrings carry math too). The adapters page is left out: its docstrings
# may legitimately show shell prompts with "$".
PAGES = (
    "",
    "getting-started/",
    "notation/",
    *DERIVATIONS,
    "tutorials/soft-value-iteration/",
    "tutorials/custom-loss/",
    "tutorials/property-suite/",
    "tutorials/cli/",
    "reproduction/",
    "properties/",
    "benchmarks/",
    "building/",
    "changelog/",
    *(
        f"api/core/{module}/"
        for module in ("soft", "mdp", "returns", "losses", "dqn", "natural", "munchausen", "sac")
    ),
    "api/properties/",
)
# Pages measured at 420 px: all of the above and the adapters API pages (whose
# shell prompts only keep them out of the raw-TeX check).
LAYOUT_PAGES = (*PAGES, "api/adapters/", "api/adapters/envs/", "api/adapters/cli/")
NARROW, DESKTOP = 420, 1280
SCREENSHOTS = (
    ("derivations/main-theorem/", DESKTOP),
    ("derivations/bandit/", DESKTOP),
    ("derivations/main-theorem/", NARROW),
    ("getting-started/", NARROW),
    ("tutorials/custom-loss/", NARROW),
)
SCREENSHOT_DIR = REPO / "build" / "docs-screenshots"
# Flags from the CI recipe: no sandbox (root in a container), no GPU, and no
# background traffic of any kind; the virtual-time budget lets the page's
# scripts (KaTeX) finish before the DOM is dumped.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--virtual-time-budget=15000",
)
_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source"}
_HIDDEN_TAGS = {"script", "style", "code", "pre", "svg", "noscript", "template"}
_TEX_COMMAND = re.compile(r"\\[A-Za-z]{2,}")


def chromium_binary() -> str:
    candidates = [os.environ.get("SOFTEQ_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium")]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return candidate
    pytest.fail(
        "Chromium is required for the documentation browser test but /usr/bin/chromium "
        "was not found. Install it with `apt-get update && apt-get install -y chromium` "
        "(or point SOFTEQ_CHROMIUM at a Chromium binary)."
    )


class _Page(html.parser.HTMLParser):
    """Collects class counts, ids, links and the text a reader would see."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.class_counts: dict[str, int] = {}
        self.links: list[tuple[str, str]] = []  # (tag, url)
        self.ids: set[str] = set()
        self.text: list[str] = []
        self._stack: list[tuple[str, bool]] = []  # (tag, hides its content)

    def _hidden(self) -> bool:
        return any(hides for _, hides in self._stack)

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        classes = (attributes.get("class") or "").split()
        for name in classes:
            self.class_counts[name] = self.class_counts.get(name, 0) + 1
        if attributes.get("id"):
            self.ids.add(attributes["id"])
        for key in ("href", "src"):
            if attributes.get(key) is not None and tag in {"a", "link", "script", "img"}:
                if tag == "link" and attributes.get("rel") == "canonical":
                    continue  # the page's published address, not something fetched
                self.links.append((tag, attributes[key]))
        if tag in _VOID:
            return
        # The MathML copy of each formula holds its TeX source for screen
        # readers; it is not visible text.
        hides = tag in _HIDDEN_TAGS or "katex-mathml" in classes
        self._stack.append((tag, hides))

    def handle_endtag(self, tag):
        for i in range(len(self._stack) - 1, -1, -1):
            if self._stack[i][0] == tag:
                del self._stack[i:]
                return

    def handle_data(self, data):
        if not self._hidden():
            self.text.append(data)


def _parse(dom: str) -> _Page:
    page = _Page()
    page.feed(dom)
    page.close()
    return page


@pytest.fixture(scope="module")
def server(built_site):
    handler = functools.partial(_QuietHandler, directory=str(built_site))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/", built_site
    finally:
        httpd.shutdown()
        httpd.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # silence the per-request log lines
        pass


def _chromium(args: list[str], profile: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [chromium_binary(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=180,
    )


@pytest.fixture(scope="module")
def rendered(server, tmp_path_factory):
    """page → (URL, DOM after scripts ran), fetched two at a time."""
    base, _ = server
    chromium_binary()

    def dump(page: str) -> tuple[str, str, str]:
        profile = tmp_path_factory.mktemp("chromium-profile")
        result = _chromium(["--dump-dom", base + page], profile)
        if result.returncode != 0 or "<html" not in result.stdout:
            pytest.fail(f"chromium could not render {page!r}: {result.stderr[-2000:]}")
        return page, base + page, result.stdout

    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        return {page: (url, dom) for page, url, dom in pool.map(dump, PAGES)}


@pytest.mark.parametrize("page", PAGES)
def test_math_is_typeset(rendered, page):
    _, dom = rendered[page]
    parsed = _parse(dom)
    sources = parsed.class_counts.get("arithmatex", 0)
    typeset = parsed.class_counts.get("katex", 0)
    assert "katex-error" not in parsed.class_counts, f"KaTeX reported an error on {page!r}"
    if page in DERIVATIONS or page == "":
        assert sources > 0, f"no math found on {page!r}"
    assert typeset == sources, f"{page!r}: {sources} math elements but {typeset} typeset"


@pytest.mark.parametrize("page", PAGES)
def test_no_raw_tex_left_in_visible_text(rendered, page):
    _, dom = rendered[page]
    text = " ".join(_parse(dom).text)
    for token in ("$$", "$", "\\(", "\\)", "\\[", "\\]"):
        assert token not in text, f"raw {token!r} in the visible text of {page!r}"
    leftovers = sorted(set(_TEX_COMMAND.findall(text)))
    assert not leftovers, f"untypeset TeX commands on {page!r}: {leftovers}"


def _target_file(site: Path, path: str) -> Path:
    target = site / unquote(path).lstrip("/")
    if path.endswith("/") or target.is_dir():
        target = target / "index.html"
    return target


@pytest.mark.parametrize("page", PAGES)
def test_internal_links_resolve(rendered, server, page):
    base, site = server
    url, dom = rendered[page]
    parsed = _parse(dom)
    broken, external_resources = [], []
    for tag, link in parsed.links:
        absolute = urljoin(url, link)
        parts = urlsplit(absolute)
        if parts.scheme not in ("http", "https"):
            continue  # mailto:, data:, javascript:
        if not absolute.startswith(base):
            if tag != "a":
                external_resources.append(link)
            continue
        target = _target_file(site, parts.path)
        if not target.is_file():
            broken.append(f"{link} -> {target.relative_to(site)} (missing file)")
            continue
        if parts.fragment and target.suffix == ".html":
            fragment = unquote(parts.fragment)
            ids = parsed.ids if absolute.split("#")[0] == url.split("#")[0] else None
            if ids is None:
                ids = _parse(target.read_text(encoding="utf-8")).ids
            if fragment not in ids:
                broken.append(f"{link} -> no id {fragment!r} in {target.relative_to(site)}")
    assert not external_resources, f"{page!r} loads resources from outside: {external_resources}"
    assert not broken, f"broken internal links on {page!r}:\n" + "\n".join(broken)
    assert any(tag == "a" for tag, _ in parsed.links)


@pytest.mark.parametrize(("page", "width"), SCREENSHOTS)
def test_screenshot(server, page, width, tmp_path):
    base, _ = server
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    target = SCREENSHOT_DIR / (page.strip("/").replace("/", "-") + f"-{width}px.png")
    target.unlink(missing_ok=True)
    result = _chromium(
        [f"--window-size={width},2400", f"--screenshot={target}", base + page],
        tmp_path / "profile",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    data = target.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{target} is not a PNG"
    # A page of typeset text is far larger than a blank or error page (~10 kB).
    assert len(data) > 50_000, f"{target} is suspiciously small ({len(data)} bytes)"


# The probe: loads each page of ?pages=a,b,c in an iframe of ?width= px, waits
# for KaTeX and the images, measures the layout inside the iframe (same
# origin) and writes one JSON report into <pre id="report">.
PROBE_PAGE = "__layout_probe.html"
PROBE_HTML = r"""<!doctype html>
<html><head><meta charset="utf-8"><title>layout probe</title></head>
<body style="margin:0">
<pre id="report"></pre>
<script>
"use strict";
const params = new URLSearchParams(location.search);
const pages = params.get("pages").split(",");
const width = Number(params.get("width"));
const report = {};

function intersects(a, b) {
  return a.left < b.right - 0.5 && b.left < a.right - 0.5 &&
         a.top < b.bottom - 0.5 && b.top < a.bottom - 0.5;
}

function scrollsSideways(element, win) {
  for (let node = element.parentElement; node; node = node.parentElement) {
    const overflow = win.getComputedStyle(node).overflowX;
    if (overflow === "auto" || overflow === "scroll") return true;
  }
  return false;
}

function measure(win) {
  const doc = win.document;
  const content = doc.querySelector(".md-content__inner") || doc.body;
  const column = content.getBoundingClientRect();
  const out = {tagOverlaps: [], codeOverflows: [], pageWidth: doc.documentElement.scrollWidth,
               viewport: win.innerWidth, images: [], brokenImages: [], tags: 0};
  for (const display of doc.querySelectorAll(".katex-display")) {
    const tag = display.querySelector(".katex-html > .katex-tag");
    if (!tag) continue;
    out.tags += 1;
    const tagBox = tag.getBoundingClientRect();
    for (const base of display.querySelectorAll(".katex-html > .katex-base")) {
      if (intersects(tagBox, base.getBoundingClientRect())) {
        out.tagOverlaps.push(tag.textContent.trim());
        break;
      }
    }
  }
  for (const code of content.querySelectorAll("pre > code")) {
    if (code.scrollWidth > code.clientWidth + 1) {
      out.codeOverflows.push("block: " + code.textContent.slice(0, 60));
    }
  }
  // Inline code wraps; each line of it may pass the column's edge only by its
  // own padding (about 0.3 em), never by a word.
  for (const code of content.querySelectorAll("code")) {
    if (code.parentElement.tagName === "PRE" || scrollsSideways(code, win)) continue;
    for (const fragment of code.getClientRects()) {
      if (fragment.right > column.right + 8) {
        out.codeOverflows.push("inline: " + code.textContent.slice(0, 60));
        break;
      }
    }
  }
  for (const img of content.querySelectorAll("img")) {
    const name = img.getAttribute("src");
    out.images.push(name);
    if (!img.complete || img.naturalWidth === 0) out.brokenImages.push(name);
  }
  return out;
}

function next(i) {
  if (i >= pages.length) {
    document.getElementById("report").textContent = JSON.stringify(report);
    return;
  }
  const frame = document.createElement("iframe");
  frame.style.width = width + "px";
  frame.style.height = "900px";
  frame.style.border = "0";
  frame.addEventListener("load", () => {
    // KaTeX typesets on Material's page-load signal; give it and the images time.
    setTimeout(() => {
      try {
        report[pages[i]] = measure(frame.contentWindow);
      } catch (error) {
        report[pages[i]] = {error: String(error)};
      }
      frame.remove();
      next(i + 1);
    }, 3000);
  });
  frame.src = "/" + pages[i];
  document.body.appendChild(frame);
}
next(0);
</script>
</body></html>
"""


def _probe(server, pages, width: int, profile: Path) -> dict:
    base, site = server
    (site / PROBE_PAGE).write_text(PROBE_HTML, encoding="utf-8")
    url = f"{base}{PROBE_PAGE}?width={width}&pages=" + ",".join(pages)
    budget = 10_000 + 6_000 * len(pages)
    result = subprocess.run(
        [
            chromium_binary(),
            *(f for f in CHROMIUM_FLAGS if not f.startswith("--virtual-time-budget")),
            f"--virtual-time-budget={budget}",
            f"--window-size={width + 40},1000",
            f"--user-data-dir={profile}",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    match = re.search(r'<pre id="report">(.*?)</pre>', result.stdout, re.DOTALL)
    if result.returncode != 0 or not match or not match.group(1).strip():
        pytest.fail(f"the layout probe did not report for {pages}: {result.stderr[-2000:]}")
    return json.loads(html.unescape(match.group(1)))


@pytest.fixture(scope="module")
def narrow_layout(server, tmp_path_factory):
    """page → layout report at 420 px, two Chromium processes over halves of the pages."""
    halves = (LAYOUT_PAGES[::2], LAYOUT_PAGES[1::2])
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        reports = pool.map(
            lambda pages: _probe(server, pages, NARROW, tmp_path_factory.mktemp("probe")), halves
        )
        merged = {}
        for report in reports:
            merged.update(report)
    return merged


def _pages_with_figures(site: Path) -> list[str]:
    pages = []
    for path in sorted(site.rglob("index.html")):
        text = path.read_text(encoding="utf-8")
        article = text[text.find('class="md-content"') :]
        if "<img " in article:
            relative = path.parent.relative_to(site).as_posix()
            pages.append("" if relative == "." else relative + "/")
    return pages


@pytest.mark.parametrize("page", LAYOUT_PAGES)
def test_narrow_screen_layout(narrow_layout, page):
    report = narrow_layout[page]
    assert "error" not in report, f"{page!r}: the probe failed: {report.get('error')}"
    assert report["viewport"] == NARROW, report["viewport"]
    assert not report["tagOverlaps"], (
        f"{page!r} at {NARROW} px: equation tags overlap their equations: {report['tagOverlaps']}"
    )
    assert not report["codeOverflows"], (
        f"{page!r} at {NARROW} px: code runs out of its column: {report['codeOverflows']}"
    )
    assert report["pageWidth"] <= NARROW + 1, (
        f"{page!r} at {NARROW} px: the page scrolls sideways ({report['pageWidth']} px wide)"
    )
    assert not report["brokenImages"], (
        f"{page!r}: figures that did not load: {report['brokenImages']}"
    )


def test_the_probe_sees_tags_and_figures(narrow_layout):
    """The probe measured something: the main theorem has its tag, getting started its figures."""
    assert narrow_layout["derivations/main-theorem/"]["tags"] >= 1
    assert len(narrow_layout["getting-started/"]["images"]) >= 3


def test_every_page_with_a_figure_loads_it(server, tmp_path):
    _, site = server
    pages = _pages_with_figures(site)
    assert "getting-started/" in pages, pages
    report = _probe(server, pages, DESKTOP, tmp_path / "profile")
    for page in pages:
        assert "error" not in report[page], report[page]
        assert report[page]["images"], f"{page!r}: the probe found no figure"
        assert not report[page]["brokenImages"], (
            f"{page!r}: figures that did not load: {report[page]['brokenImages']}"
        )
