"""Every public name of softeq.core has an entry in the API pages, and no entry is stale."""

from __future__ import annotations

import re
from pathlib import Path

import softeq.core

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"

API = DOCS / "api"
_DIRECTIVE = re.compile(r"^:::\s+(softeq(?:\.\w+)+)\s*$", re.MULTILINE)
CORE_MODULES = sorted(p.stem for p in (REPO / "core").glob("*.py") if not p.stem.startswith("_"))


def _directives() -> dict[str, Path]:
    found = {}
    for page in sorted(API.rglob("*.md")):
        for identifier in _DIRECTIVE.findall(page.read_text(encoding="utf-8")):
            found[identifier] = page
    return found


def _documented_core_names(identifiers) -> set[str]:
    names = set()
    for identifier in identifiers:
        parts = identifier.split(".")
        if parts[:2] != ["softeq", "core"] or len(parts) < 3:
            continue
        if len(parts) == 3 and parts[2] not in CORE_MODULES:
            names.add(parts[2])  # softeq.core.<name>
        elif len(parts) == 4 and parts[2] in CORE_MODULES:
            names.add(parts[3])  # softeq.core.<module>.<name>
    return names


def test_every_name_in_core_all_has_an_api_entry():
    documented = _documented_core_names(_directives())
    missing = sorted(set(softeq.core.__all__) - documented)
    assert not missing, (
        f"names of softeq.core.__all__ without a `::: softeq.core.<name>` line in docs/api/: "
        f"{missing}"
    )


def test_api_entries_name_existing_core_objects():
    stale = []
    for identifier in _directives():
        parts = identifier.split(".")
        if parts[:2] != ["softeq", "core"]:
            continue
        if len(parts) == 3 and parts[2] in CORE_MODULES:
            continue  # a module page header
        name = parts[-1]
        if name not in softeq.core.__all__:
            stale.append(identifier)
    assert not stale, f"API entries for names that softeq.core does not export: {stale}"


def test_every_core_module_has_a_page():
    for module in CORE_MODULES:
        page = API / "core" / f"{module}.md"
        assert page.is_file(), f"no API page for softeq.core.{module}"
        assert f"::: softeq.core.{module}\n" in page.read_text(encoding="utf-8")


def adapters_modules() -> list[str]:
    """The public modules and packages of softeq.adapters (files, not imports)."""
    modules = [p.stem for p in (REPO / "adapters").glob("*.py") if not p.stem.startswith("_")]
    packages = [p.parent.name for p in (REPO / "adapters").glob("*/__init__.py")]
    return sorted(modules + packages)


def test_every_adapters_module_has_its_page():
    nav = (REPO / "mkdocs.yml").read_text(encoding="utf-8")
    index = (API / "adapters" / "index.md").read_text(encoding="utf-8")
    for module in adapters_modules():
        page = API / "adapters" / f"{module}.md"
        assert page.is_file(), (
            f"softeq.adapters.{module} has no API page: add docs/api/adapters/{module}.md "
            f"holding `::: softeq.adapters.{module}`, a row in docs/api/adapters/index.md "
            "and a nav entry"
        )
        assert f"::: softeq.adapters.{module}\n" in page.read_text(encoding="utf-8"), page
        assert f"api/adapters/{module}.md" in nav, f"{page.name} is not in the nav"
        assert f"]({module}.md)" in index, f"{module} is not in the table of the adapters index"


def test_adapters_pages_document_existing_modules():
    listed = [i for i in _directives() if i.startswith("softeq.adapters.")]
    for required in ("softeq.adapters.envs", "softeq.adapters.networks"):
        assert required in listed, f"{required} missing from docs/api/adapters/"
    for identifier in listed:
        relative = Path("adapters", *identifier.split(".")[2:])
        module_file = REPO / relative.with_suffix(".py")
        package_file = REPO / relative / "__init__.py"
        assert module_file.is_file() or package_file.is_file(), (
            f"{identifier} is documented in docs/api/adapters/ but neither {module_file} "
            f"nor {package_file} exists"
        )


def test_properties_page_documents_the_public_checkers():
    page = (API / "properties.md").read_text(encoding="utf-8")
    for name in (
        "check_soft_q_gradient_identity",
        "check_soft_n_step_targets",
        "PropertyViolation",
        "strategies",
        "oracles",
    ):
        assert f"::: softeq.properties.{name}\n" in page, name


def test_rendered_api_has_an_anchor_for_every_core_name(built_site):
    html = "\n".join(
        p.read_text(encoding="utf-8") for p in (built_site / "api").rglob("index.html")
    )
    missing = [name for name in softeq.core.__all__ if f'id="softeq.core.{name}"' not in html]
    assert not missing, f"rendered API pages lack anchors for: {missing}"
