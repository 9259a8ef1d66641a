"""The figures of the documentation exist, are shown, and are what their script draws.

`docs/figures/make_figures.py` draws every figure (its `FIGURES`) from code and
from the metrics kept in `docs/figures/data/`; these tests redraw them into a
temporary folder, without training, and compare the pixels with the committed
PNGs. When one differs, redraw with `python docs/figures/make_figures.py` (or
`--train` when the training figures should change) and commit the result.
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
FIGURES = DOCS / "figures"
_IMAGE = re.compile(r"!\[[^\]]*\]\(([^)\s]+\.png)\)")


def _load_script():
    path = FIGURES / "make_figures.py"
    spec = importlib.util.spec_from_file_location("make_figures", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


script = _load_script()


def _shown() -> dict[Path, list[str]]:
    """Figure file → the pages that show it."""
    shown: dict[Path, list[str]] = {}
    for page in sorted(DOCS.rglob("*.md")):
        for target in _IMAGE.findall(page.read_text(encoding="utf-8")):
            shown.setdefault((page.parent / target).resolve(), []).append(
                page.relative_to(DOCS).as_posix()
            )
    return shown


def test_the_script_lists_exactly_the_committed_figures():
    committed = sorted(p.name for p in FIGURES.glob("*.png"))
    assert committed == sorted(script.FIGURES), (
        f"docs/figures holds {committed} but make_figures.FIGURES draws {sorted(script.FIGURES)}"
    )


def test_every_figure_shown_exists_and_every_figure_is_shown():
    shown = _shown()
    missing = {str(path): pages for path, pages in shown.items() if not path.is_file()}
    assert not missing, f"pages show figures that do not exist: {missing}"
    unshown = [name for name in script.FIGURES if (FIGURES / name).resolve() not in shown]
    assert not unshown, f"figures no page shows: {unshown}"
    results = (DOCS / "results").resolve()
    for path in shown:
        if results in path.parents:
            # Drawn by `softeq reproduce` / `softeq compare` beside the numbers they show.
            tables = {"scores.csv", "summary.csv"} & {p.name for p in path.parent.iterdir()}
            assert tables, f"{path} has no scores.csv or summary.csv beside it"
            continue
        assert path.parent == FIGURES.resolve(), f"{path} is not drawn by make_figures.py"


def test_training_figures_have_their_data():
    data = script.DATA_DIR
    manifest = json.loads((data / "compare.json").read_text(encoding="utf-8"))
    assert [spec["label"] for spec in manifest["specs"]] == list(script.ALGOS)
    assert manifest["seeds"] == list(script.SEEDS)
    assert manifest["run_overrides"]["total_steps"] == script.TRAIN_STEPS
    for spec in manifest["specs"]:
        for run in spec["runs"]:
            assert (data / run / "metrics.csv").is_file(), run
    provenance = json.loads((data / "provenance.json").read_text(encoding="utf-8"))
    assert provenance["command"] == "python docs/figures/make_figures.py --train"


@pytest.fixture(scope="module")
def redrawn(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("figures")
    script.draw_all(out)
    return out


@pytest.mark.parametrize("name", sorted(script.FIGURES))
def test_the_script_redraws_the_committed_figure(redrawn, name):
    import matplotlib.image

    committed = matplotlib.image.imread(FIGURES / name)
    again = matplotlib.image.imread(redrawn / name)
    assert committed.shape == again.shape, (
        f"{name}: committed {committed.shape}, redrawn {again.shape}; "
        "run `python docs/figures/make_figures.py` and commit the figures"
    )
    differing = float(np.mean(np.any(np.abs(committed - again) > 1e-6, axis=-1)))
    assert differing == 0.0, (
        f"{name}: {differing:.2%} of the pixels differ from what make_figures.py draws; "
        "run `python docs/figures/make_figures.py` and commit the figures"
    )
