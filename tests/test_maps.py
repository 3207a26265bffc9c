"""UMAP / PCA maps and the embedding charts, on synthetic points: no model, no UI."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import pytest
from PIL import Image

from explorer.charts import embeddings as charts
from explorer.studies import trajectories as maps


def paths(runs: int = 3, steps: int = 6, dim: int = 16, seed: int = 0) -> list[np.ndarray]:
    """Random walks that start apart and drift: (steps, 4, 2, dim // 8) each."""
    rng = np.random.default_rng(seed)
    return [
        np.cumsum(rng.normal(size=(steps, dim)), axis=0).reshape(steps, 4, 2, -1) + 5 * r
        for r in range(runs)
    ]


@pytest.mark.parametrize("n", [1, 2, 3])
def test_pca_stands_in_for_umap_for_three_points_or_fewer(n):
    p = maps.project(np.random.default_rng(0).normal(size=(n, 10)), "umap")
    assert p.method == "pca" and "at least 4 points" in p.note
    assert p.xy.shape == (n, 2) and np.isfinite(p.xy).all()


def test_pca_matches_the_svd_and_is_deterministic():
    x = np.random.default_rng(2).normal(size=(30, 5)) * [5, 3, 1, 0.5, 0.1]
    p = maps.project(x, "pca")
    assert p.method == "pca" and p.note == ""
    centred = x - x.mean(axis=0)
    var = np.linalg.svd(centred, compute_uv=False) ** 2
    np.testing.assert_allclose(p.explained, var[:2] / var.sum())
    expected = np.linalg.svd(centred)[0][:, :2] * np.sqrt(var[:2])  # U·S: the PC scores
    np.testing.assert_allclose(np.abs(p.xy), np.abs(expected), atol=1e-5)  # float32 points
    np.testing.assert_array_equal(maps.project(x, "pca").xy, p.xy)


def test_pca_says_why_it_stands_in_while_umap_warms_up(monkeypatch):
    monkeypatch.setattr(maps, "umap_ready", lambda: False)
    monkeypatch.setattr(maps, "start_warm_up", lambda: None)
    p = maps.project(np.random.default_rng(0).normal(size=(20, 8)), "umap")
    assert p.method == "pca" and "warming up" in p.note


def test_the_warm_up_imports_again_after_an_import_deadlock(monkeypatch):
    """Seen in a served app: the warm-up thread's ``import umap`` raced the server's imports and
    Python broke the deadlock by raising in it; the warm-up tries again instead of leaving PCA."""
    calls = []

    class Fit:
        def fit_transform(self, x):
            return x[:, :2]

    def racing(n, seed):
        calls.append(n)
        if len(calls) == 1:
            raise type("_DeadlockError", (RuntimeError,), {})("deadlock detected by _ModuleLock")
        return Fit()

    monkeypatch.setattr(maps, "_umap", racing)
    monkeypatch.setattr(maps.time, "sleep", lambda s: None)
    monkeypatch.setattr(maps, "_ready", maps.threading.Event())
    monkeypatch.setattr(maps, "warm_up_error", None)
    maps.warm_up()
    assert maps.umap_ready() and maps.warm_up_error is None and len(calls) == 3
    monkeypatch.setattr(maps, "_umap", lambda n, seed: (_ for _ in ()).throw(RuntimeError("x")))
    monkeypatch.setattr(maps, "_ready", maps.threading.Event())
    maps.warm_up()  # any other error is not retried: PCA stays, said why
    assert not maps.umap_ready() and maps.warm_up_error == "RuntimeError: x"


def test_trajectory_map_keeps_runs_apart_and_in_order():
    runs = paths(3, 6)
    m = maps.trajectory_map(runs, ["a", "b", "c"], method="pca")
    assert [len(p) for p in m.paths] == [6, 6, 6] and m.labels == ["a", "b", "c"]
    whole = maps.project(np.concatenate([r.reshape(6, -1) for r in runs]), "pca").xy
    np.testing.assert_allclose(np.concatenate(m.paths), whole)
    with pytest.raises(ValueError):
        maps.trajectory_map(runs, ["a"], method="pca")


@pytest.mark.slow
def test_umap_is_reproducible_with_a_fixed_seed():
    runs = paths(4, 10)
    a = maps.trajectory_map(runs, list("abcd"), method="umap", seed=3, wait=True)
    b = maps.trajectory_map(runs, list("abcd"), method="umap", seed=3, wait=True)
    assert a.projection.method == "umap" and a.projection.note == ""
    np.testing.assert_array_equal(np.concatenate(a.paths), np.concatenate(b.paths))


def test_heatmap_writes_values_and_unique_labels():
    m = np.array([[0.9, 0.1], [0.2, 0.8]])
    im = Image.new("RGB", (64, 64), "red")
    fig = charts.heatmap_figure(
        m, charts.numbered(["x", "x"]), ["p", "q"], "t", row_images=[im, im], mark_diagonal=True
    )
    assert isinstance(fig, go.Figure)
    heat = fig.data[0]
    assert heat.texttemplate == "%{z:.2f}" and np.array_equal(np.asarray(heat.z), m)
    assert list(fig.layout.yaxis.ticktext) == ["1. x", "2. x"]
    assert len(fig.layout.images) == 2 and len(fig.layout.shapes) == 2


def test_map_and_norm_charts():
    m = maps.trajectory_map(paths(2, 5), ["r1", "r2"], method="pca")
    fig = charts.map_figure(m.labels, m.paths, "map", highlight=2, note="PCA shown")
    lines = [d for d in fig.data if d.name in ("r1", "r2")]
    assert len(lines) == 2 and len(lines[0].x) == 5 and "PCA shown" in fig.layout.title.text
    fig = charts.token_norms_figure(
        ["<s>", "red", "</s>", "<pad>"], [1, 2, 3, 4], ["start", "word", "end", "pad"]
    )
    assert [d.name for d in fig.data] == ["start", "word", "end", "pad"]
    fig = charts.norms_figure({"raw": [3, 4], "normalised": [1, 1]}, ["a", "b"], "norms")
    assert len(fig.data) == 2


def test_warm_up_thread_yields_the_cpu_and_only_itself():
    import os
    import sys
    import threading

    if not sys.platform.startswith("linux"):
        pytest.skip("per-thread priority is Linux only")
    seen = {}

    def background():
        maps.lower_priority()
        seen["thread"] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    before = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    t = threading.Thread(target=background)
    t.start()
    t.join()
    assert seen["thread"] == 19
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == before


def test_every_run_on_the_map_has_its_own_colour():
    labels = [f"run {i}" for i in range(16)]  # the most the Maps sub-tab draws
    m = maps.trajectory_map(paths(16, 4), labels, method="pca")
    fig = charts.map_figure(m.labels, m.paths, "map", highlight=1)
    colours = [d.line.color for d in fig.data if d.name in labels]
    assert len(colours) == 16 and len(set(colours)) == 16
    assert all(d.marker.color == d.line.color for d in fig.data if d.name in labels)
