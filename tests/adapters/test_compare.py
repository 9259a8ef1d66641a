"""`compare` pieces on synthetic run folders: spec parsing, curve maths, summary, plots."""

from __future__ import annotations

import csv
import json
import math
import re

import numpy as np
import pytest

from softeq.adapters import compare, plots
from softeq.adapters.logger import MetricsLogger, read_metrics
from softeq.adapters.run_config import ConfigError


def test_parse_algo_spec_with_overrides():
    spec = compare.parse_algo_spec("a2c:entropy=naive,temperature=0.02,num-steps=5")
    assert spec.algo == "a2c"
    assert dict(spec.overrides) == {"entropy": "naive", "temperature": 0.02, "num_steps": 5}
    assert spec.label == "a2c:entropy=naive,temperature=0.02,num-steps=5"
    assert "/" not in spec.folder and ":" not in spec.folder
    plain = compare.parse_algo_spec("soft-q")
    assert plain.algo == "soft-q" and plain.overrides == ()


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("ppo", "a2c|soft-q|dqn"),
        ("a2c:entropy", "field=value"),
        ("a2c:target=hard", "fields of a2c"),
        ("dqn:n_step=two", "must be an integer"),
        ("dqn:target=max", "hard|soft-kl|soft-entropy"),
    ],
)
def test_parse_algo_spec_rejects_bad_specs(text, fragment):
    with pytest.raises(ConfigError, match="--algos") as info:
        compare.parse_algo_spec(text)
    assert fragment in str(info.value)


def test_smoothed_returns_are_trailing_means():
    steps = np.array([10, 20, 30, 40])
    returns = np.array([1.0, 3.0, 5.0, 7.0])
    s, v = plots.smoothed_episode_returns(steps, returns, window=2)
    np.testing.assert_array_equal(s, steps)
    np.testing.assert_allclose(v, [1.0, 2.0, 4.0, 6.0])


def test_interpolation_on_grid_averages_ties_and_is_nan_outside():
    steps = np.array([10, 10, 20])
    values = np.array([0.0, 2.0, 3.0])
    grid = np.array([0.0, 10.0, 15.0, 20.0, 25.0])
    out = plots.interpolate_on_grid(steps, values, grid)
    assert math.isnan(out[0]) and math.isnan(out[-1])
    np.testing.assert_allclose(out[1:4], [1.0, 2.0, 3.0])


def _fake_run(run_dir, *, returns, cosines=None, eval_return=None):
    """A run folder whose metrics.csv holds the given episode returns (one per 100 steps)."""
    with MetricsLogger(run_dir, tensorboard=False) as log:
        for i, r in enumerate(returns):
            step = 100 * (i + 1)
            log.episodes([r], [r], step)
            if cosines is not None:
                log.learner({"grad_cosine": cosines[i], "loss": 1.0}, step)
        if eval_return is not None:
            log.scalar("eval/return_mean", eval_return, 100 * len(returns))


def _fake_compare(tmp_path):
    rng = np.random.default_rng(0)
    specs = []
    layout = {"a2c": None, "soft-q": True}
    for label, with_cos in layout.items():
        runs = []
        for seed in (0, 1):
            rel = f"runs/{label}/seed{seed}"
            returns = list(np.linspace(10, 200 + 100 * seed, 150))
            cos = list(rng.uniform(0.5, 1.0, size=150)) if with_cos else None
            _fake_run(tmp_path / rel, returns=returns, cosines=cos, eval_return=300.0 + seed)
            runs.append(rel)
        specs.append({"label": label, "algo": label, "overrides": {}, "runs": runs})
    manifest = {"env_id": "CartPole-v1", "seeds": [0, 1], "specs": specs}
    (tmp_path / plots.COMPARE_MANIFEST).write_text(json.dumps(manifest))
    return tmp_path


def test_summary_rows_follow_from_the_metrics(tmp_path):
    base = _fake_compare(tmp_path)
    rows = {r["algorithm"]: r for r in compare.summary_rows(base)}
    # Final return: mean of the last 100 episodes of each run, then mean ± std over seeds.
    finals = [np.mean(np.linspace(10, 200 + 100 * s, 150)[-100:]) for s in (0, 1)]
    assert rows["a2c"]["final_return_mean"] == pytest.approx(np.mean(finals))
    assert rows["a2c"]["final_return_std"] == pytest.approx(np.std(finals))
    assert rows["a2c"]["final_eval_mean"] == pytest.approx(300.5)
    assert rows["a2c"]["cosine_count"] == 0 and math.isnan(rows["a2c"]["cosine_mean"])
    cos = np.concatenate(
        [read_metrics(base / f"runs/soft-q/seed{s}")["learner/grad_cosine"][1] for s in (0, 1)]
    )
    assert rows["soft-q"]["cosine_count"] == 300
    assert rows["soft-q"]["cosine_mean"] == pytest.approx(cos.mean())
    assert rows["soft-q"]["cosine_median"] == pytest.approx(np.median(cos))
    assert rows["soft-q"]["cosine_p10"] == pytest.approx(np.percentile(cos, 10))


def test_plot_folder_redraws_figures_and_summary(tmp_path):
    base = _fake_compare(tmp_path)
    written = plots.plot_folder(base)
    names = sorted(p.name for p in written)
    assert names == sorted(["learning_curves.png", "grad_cosine.png", "summary.md", "summary.csv"])
    for p in written:
        assert p.stat().st_size > 0
    with open(base / "summary.csv") as fh:
        assert [r["algorithm"] for r in csv.DictReader(fh)] == ["a2c", "soft-q"]
    text = (base / "summary.md").read_text()
    assert "| soft-q | 2 |" in text and "grad_cosine.png" in text
    run_png = plots.plot_folder(base / "runs/soft-q/seed0")
    assert run_png[0].name == "training.png" and run_png[0].stat().st_size > 0


def test_curves_on_grid_mean_and_std_over_runs(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    _fake_run(a, returns=[0.0, 0.0, 0.0])
    _fake_run(b, returns=[2.0, 2.0, 2.0])
    grid = np.array([100.0, 200.0, 300.0])
    out_grid, mean, std = plots.curves_on_grid(
        [a, b], "train/episode_return", smooth=True, grid=grid
    )
    np.testing.assert_allclose(mean, [1.0, 1.0, 1.0])
    np.testing.assert_allclose(std, [1.0, 1.0, 1.0])
    np.testing.assert_array_equal(out_grid, grid)
    assert plots.curves_on_grid([a], "learner/grad_cosine", smooth=False) is None


def test_compare_refuses_an_existing_folder_without_force(tmp_path):
    base = _fake_compare(tmp_path)
    with pytest.raises(ConfigError, match="--force"):
        compare.run_compare([compare.parse_algo_spec("a2c")], seeds=[0], out_dir=base)


def test_save_figure_writes_a_palette_png_whole_and_closes_the_figure(tmp_path):
    from PIL import Image

    plt = plots._pyplot()
    fig, ax = plt.subplots(figsize=(4, 3))
    x = np.linspace(0, 1, 50)
    ax.plot(x, x**2)
    ax.fill_between(x, x**2 - 0.1, x**2 + 0.1, alpha=0.2)
    path = plots.save_figure(fig, tmp_path / "fig.png", dpi=80)
    assert not plt.fignum_exists(fig.number)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fig.png"]
    with Image.open(path) as image:
        assert image.format == "PNG" and image.mode == "P"
        assert image.size == (320, 240)
        # The line and its band survive the palette: more than background + one colour.
        assert len(image.getcolors(256)) > 2


def test_a_jitted_program_failing_in_a_worker_names_the_program(tmp_path, monkeypatch):
    from softeq.adapters.run_config import RunConfig

    monkeypatch.delenv("XLA_FLAGS", raising=False)  # the worker entry sets it; undo after
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("")
    run = RunConfig(env_id="CartPole-v1", algo="a2c", seeds=(0,), run_dir=str(blocked))
    task = {"labels": ["a2c"], "runs": [run], "algos": [None]}
    with pytest.raises(FileExistsError, match=re.escape(f"program a2c ({blocked}): ")):
        compare._train_jit_in_worker(task, False)
