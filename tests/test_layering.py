"""core/ stays the pure layer: it imports only jax, chex, rlax, numpy and the standard library.

Two checks: what a fresh interpreter has loaded after `import softeq.core`
(catches indirect imports too), and what core's source files name in their
import statements (catches imports that happen only inside functions).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

CORE_DIR = Path(__file__).resolve().parents[1] / "core"

# Packages that belong to adapters/ (or to softeq's other layers), never to core.
FORBIDDEN_AT_IMPORT = ("gymnasium", "ale_py", "haiku", "optax", "softeq.adapters")
ALLOWED_ROOTS = {"jax", "chex", "rlax", "numpy"}


def test_importing_core_loads_no_environment_network_or_optimiser_package():
    probe = (
        "import json, sys\n"
        "import softeq.core\n"
        f"forbidden = {FORBIDDEN_AT_IMPORT!r}\n"
        "loaded = sorted(m for m in sys.modules\n"
        "                if any(m == f or m.startswith(f + '.') for f in forbidden))\n"
        "print(json.dumps({'loaded': loaded, 'core': softeq.core.__name__}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["core"] == "softeq.core"
    assert report["loaded"] == [], f"import softeq.core pulled in {report['loaded']}"


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in a source file; relative ones resolved."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 1:  # from . import x / from .soft import y, inside softeq.core
                found.append(
                    (node.lineno, "softeq.core" + ("." + node.module if node.module else ""))
                )
            elif node.level > 1:  # climbs out of softeq.core
                found.append((node.lineno, "." * node.level + (node.module or "")))
            else:
                found.append((node.lineno, node.module))
    return found


def is_allowed(module: str) -> bool:
    root = module.split(".")[0]
    if root in ALLOWED_ROOTS or root == "__future__":
        return True
    if root == "softeq":
        return module == "softeq.core" or module.startswith("softeq.core.")
    return root in sys.stdlib_module_names


def test_core_sources_import_only_allowed_packages():
    sources = sorted(CORE_DIR.glob("*.py"))
    assert len(sources) >= 7, f"expected core's modules under {CORE_DIR}, found {sources}"
    bad = [
        f"{path.name}:{line}: {module}"
        for path in sources
        for line, module in imported_modules(path)
        if not is_allowed(module)
    ]
    assert bad == [], "core imports outside jax/chex/rlax/numpy/stdlib:\n" + "\n".join(bad)


def test_the_import_check_recognises_forbidden_imports(tmp_path):
    # the checker itself must flag what it is meant to flag
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import os\nimport jax.numpy as jnp\nfrom softeq.core import soft\nfrom . import mdp\n"
        "def f():\n    import haiku\n    from softeq.adapters import cli\n    import gymnasium\n"
        "from ..adapters import cli\n"
    )
    verdicts = {module: is_allowed(module) for _, module in imported_modules(sample)}
    assert verdicts == {
        "os": True,
        "jax.numpy": True,
        "softeq.core": True,
        "haiku": False,
        "softeq.adapters": False,
        "gymnasium": False,
        "..adapters": False,
    }
