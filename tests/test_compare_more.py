"""Run A against run B, continued: both paths on one map, the per-word attention difference,
the embedding magnitude as B's change, and the tab's new outputs and messages."""

from __future__ import annotations

import numpy as np
import pytest

from explorer.engine.capture import trace
from explorer.inputs.errors import VisitorError
from explorer.studies.attention_difference import attention_difference, word_pairs
from explorer.studies.compare import compare, compare_runs, comparison_map, trajectory_points
from explorer.studies.trajectories import pca_2d
from explorer.studies.word_maps import WordMaps, token_kinds

BASE = dict(prompt="a red circle", steps=6, guidance=3.0, seed=1)
QUIET = lambda *a, **k: None  # noqa: E731 - gradio's progress, silenced


@pytest.fixture(scope="module")
def same(tiny_pipe):
    return compare_runs(tiny_pipe, BASE, {}, attention=True)


@pytest.fixture(scope="module")
def one_word(tiny_pipe):
    return compare_runs(tiny_pipe, BASE, {"prompt": "a blue circle"})


# ---- the shared map ----------------------------------------------------------------------------


def test_the_same_run_twice_draws_one_path_on_the_map(same):
    m = comparison_map(same, "pca")
    assert m.labels == ["A", "B"] and m.paths[0].shape == (7, 2)  # 6 steps, then the end
    assert np.array_equal(m.paths[0], m.paths[1])  # identical points, not merely close
    assert np.ptp(m.paths[0], axis=0).max() > 0  # ... and a path, not one dot


def test_the_map_is_pca_of_both_runs_inputs_and_ends(one_word):
    a = one_word.a
    points = trajectory_points(a)
    assert np.array_equal(points[:-1], a.model_input.numpy().reshape(6, -1))
    assert np.array_equal(points[-1], a.latents[-1].numpy().ravel())
    m = comparison_map(one_word, "pca")
    both = np.concatenate([trajectory_points(one_word.a), trajectory_points(one_word.b)])
    reference, _ = pca_2d(both)
    assert np.allclose(np.concatenate(m.paths), reference, atol=1e-6)
    assert np.array_equal(m.paths[0][0], m.paths[1][0])  # the shared starting noise
    assert not np.allclose(m.paths[0][-1], m.paths[1][-1])  # two different ends


def test_umap_is_asked_for_by_name_and_says_when_pca_stands_in(one_word, monkeypatch):
    from explorer.studies import trajectories

    monkeypatch.setattr(trajectories, "start_warm_up", lambda: None)  # no numba build in tests
    monkeypatch.setattr(trajectories, "umap_ready", lambda: False)
    p = comparison_map(one_word, "umap").projection
    assert p.method == "pca" and "still warming up" in p.note
    with pytest.raises(VisitorError, match="umap' or 'pca"):
        comparison_map(one_word, "tsne")


def test_umap_gets_each_distinct_point_once_so_equal_runs_draw_one_path(same, monkeypatch):
    from explorer.studies import compare as cmp_module
    from explorer.studies.trajectories import Projection

    seen = []

    def scatter(points, method, seed):  # like UMAP: each point placed on its own
        seen.append(len(points))
        assert len(np.unique(points, axis=0)) == len(points)
        return Projection(np.random.default_rng(0).normal(size=(len(points), 2)), "umap", "")

    monkeypatch.setattr(cmp_module, "project", scatter)
    m = comparison_map(same, "umap")
    assert seen == [7] and np.array_equal(m.paths[0], m.paths[1]) and m.projection.method == "umap"


# ---- the attention difference ------------------------------------------------------------------


def test_a_run_against_itself_has_no_attention_difference(same):
    diffs = attention_difference(same.a, same.b, same.pairs)
    assert [d.label for d in diffs] == ["a", "red", "circle"] and {d.kind for d in diffs} == {
        "shared"
    }
    assert all(np.array_equal(d.diff, np.zeros_like(d.diff)) for d in diffs)
    at_step = attention_difference(same.a, same.b, same.pairs, step=3)
    assert all(d.largest == 0.0 for d in at_step)


def test_a_one_word_change_moves_the_changed_words_attention(one_word):
    a, b = one_word.a, one_word.b
    diffs = attention_difference(a, b, one_word.pairs)
    changed = diffs[0]  # the changed words come first
    assert (changed.label, changed.kind, changed.a, changed.b) == ("red → blue", "changed", 2, 2)
    assert changed.largest > 1e-5
    # B's map minus A's, each averaged over its steps: against the traces' own tensors
    ref = b.attention[2].double().mean(0) - a.attention[2].double().mean(0)  # (h, w)
    assert np.allclose(changed.diff, ref.numpy(), atol=1e-7)
    at = attention_difference(a, b, one_word.pairs, step=4)[0]
    ref4 = b.attention[2, 4].double() - a.attention[2, 4].double()  # (h, w)
    assert np.allclose(at.diff, ref4.numpy(), atol=1e-7)
    assert [d.label for d in diffs[1:]] == ["a", "circle"]


def _maps(words: list[str]) -> WordMaps:
    tokens = ["<|startoftext|>", *[w + "</w>" for w in words], "<|endoftext|>", "<|endoftext|>"]
    return WordMaps(np.zeros((len(tokens), 1, 2, 2)), tokens, token_kinds(tokens), None)


def test_words_are_lined_up_like_a_text_diff():
    a, b = _maps(["a", "red", "circle"]), _maps(["a", "big", "blue", "square", "circle"])
    assert word_pairs(a, b) == [
        (2, 2, "changed"),  # red -> big
        (None, 3, "only in B"),
        (None, 4, "only in B"),
        (1, 1, "shared"),
        (3, 5, "shared"),
    ]
    assert word_pairs(b, a)[:3] == [
        (2, 2, "changed"),
        (3, None, "only in A"),
        (4, None, "only in A"),
    ]


def test_runs_without_attention_maps_are_refused(tiny_pipe):
    c = compare_runs(tiny_pipe, BASE, {"guidance": 5.0})  # attention: only for prompt changes
    assert c.a.attention is None
    with pytest.raises(VisitorError, match="no attention maps"):
        attention_difference(c.a, c.b, c.pairs)


# ---- the embedding magnitude as B's change -----------------------------------------------------


def test_magnitude_one_is_the_same_run_and_the_plain_run(tiny_pipe):
    c = compare_runs(tiny_pipe, BASE, {"embedding_scale": 1.0})
    assert np.array_equal(c.latent_distance, np.zeros(7)) and np.all(c.x0_distance == 0)
    assert c.parted_at is None and c.changed == {}
    za, zb, cos = c.embedding
    assert za == zb and cos == pytest.approx(1.0)
    plain = compare(c.a, trace(tiny_pipe, **BASE))  # A is the plain run, to float precision
    assert plain.latent_distance.max() < 1e-4


def test_magnitude_two_parts_from_the_same_noise_and_grows(tiny_pipe):
    c = compare_runs(tiny_pipe, BASE, {"embedding_scale": 2.0})
    d = c.latent_distance
    assert d[0] == 0 and np.all(d[1:] > 0) and np.all(np.diff(d) >= 0) and d[-1] > 2 * d[1]
    assert c.changed == {"embedding_scale": (1.0, 2.0)}
    za, zb, cos = c.embedding
    assert zb == pytest.approx(2 * za) and cos == pytest.approx(
        1.0
    )  # same direction, twice as long
    assert c.a.attention is None and c.b.settings["embedding_scale"] == 2.0
    with pytest.raises(ValueError, match="changes only the magnitude"):
        compare_runs(tiny_pipe, BASE, {"embedding_scale": 2.0, "steps": 3})


# ---- the tab -----------------------------------------------------------------------------------


def _run(ctx, change="prompt", **kw):
    from explorer.ui.tabs.compare import PROMPT_B, run_compare

    args = dict(prompt="a red circle", seed=1, steps=4, guidance=3.0, scheduler="ddim")
    args |= dict(change=change, prompt_b=PROMPT_B, guidance_b=6.0, scheduler_b="euler", steps_b=4)
    return run_compare(ctx, **{**args, **kw}, progress=QUIET)


@pytest.fixture(scope="module")
def ctx(tiny_pipe):
    from explorer.ui.common import AppContext

    return AppContext(load=lambda: tiny_pipe)


def _layout(plot) -> dict:
    """The layout of the figure a gr.Plot update carries (plotly JSON)."""
    import json

    return json.loads(plot.value["plot"])["layout"]


def test_the_tab_draws_the_map_and_the_attention_difference(ctx):
    from explorer.ui.tabs.compare import ATTENTION_AT, rescrub

    out = _run(ctx, prompt_b="a blue circle")
    fig = out["map"]
    assert [t.name for t in fig.data if t.name] == ["A", "B"]
    assert list(fig.data[0].text) == [
        "step 1 · t=751",
        "step 2 · t=501",
        "step 3 · t=251",
        "step 4 · t=1",
        "the end: the final latent",
    ]
    assert "PCA map" in fig.layout.title.text and "of the variance" in fig.layout.title.text
    att = out["attention"]
    assert att.visible and "averaged over the steps" in _layout(att)["title"]["text"]
    titles = [a["text"] for a in _layout(att)["annotations"]]
    assert titles[0].startswith("red → blue<br>±") and len(titles) == 3
    # scrubbing rings A's step and B's paired one, and redraws the attention at that step
    again = rescrub(out["state"], 2, ATTENTION_AT[1])
    paths = [t for t in again["map"].data if t.name]
    rings = [t for t in again["map"].data if not t.name]
    assert [list(r.x) for r in rings] == [[paths[0].x[1]], [paths[1].x[1]]]
    assert "at step 2 of A, 2 of B" in _layout(again["attention"])["title"]["text"]


def test_only_the_box_of_what_b_changes_is_shown():
    from explorer.ui.tabs.compare import b_boxes

    shown = [u["visible"] for u in b_boxes("magnitude")]
    assert shown == [False, False, False, False, True, False]  # B's k; no attention choice
    assert [u["visible"] for u in b_boxes("prompt")] == [True, False, False, False, False, True]


def test_the_tab_compares_magnitudes_and_hides_the_attention(ctx):
    from explorer.ui.tabs.compare import attention_shown

    out = _run(ctx, change="magnitude", magnitude_b=2.0)
    assert (
        "embedding magnitude k: “1.0” → “2.0”" in out["status"]
        and "cosine to A's 1.0000" in (out["status"])
    )
    assert out["attention"].visible is False and len(out["x0_b"]) == 4
    assert attention_shown(out["state"]).visible is False and attention_shown(None).visible is False
    assert "same run" in _run(ctx, change="magnitude", magnitude_b=1)["status"]


@pytest.mark.parametrize(
    "kw, message",
    [
        (dict(change="magnitude", magnitude_b=9), "B's magnitude k must be between -3 and 5"),
        (dict(change="magnitude", magnitude_b="two"), "B's magnitude k must be a number"),
        (dict(prompt_b="   "), "B's prompt is empty"),
        (dict(map_method="tsne"), "map_method must be one of"),
        (dict(change="guidance", guidance_b=99), "guidance must be between"),
        (dict(steps=0), "steps must be between"),
    ],
)
def test_bad_input_is_a_message(ctx, kw, message):
    with pytest.raises(VisitorError, match=message):
        _run(ctx, **kw)


def test_bad_input_reaches_the_visitor_as_a_gradio_error_not_a_traceback(ctx):
    import gradio as gr

    from explorer.ui.common import bind
    from explorer.ui.tabs.compare import run_compare

    handler = bind(run_compare, ctx)
    with pytest.raises(gr.Error, match="B's magnitude k must be between"):
        handler("a red circle", 1, 4, 3.0, "ddim", "magnitude", "", 3.0, "ddim", 4, 7.5, "pca")


@pytest.mark.slow
def test_the_endpoint_takes_the_new_parameters_by_name(tiny_pipe):
    from conftest import tab_client
    from gradio_client.exceptions import AppError

    with tab_client(tiny_pipe, ["explorer.ui.tabs.compare"]) as client:
        names = [
            p["parameter_name"]
            for p in client.view_api(print_info=False, return_format="dict")["named_endpoints"][
                "/compare_runs"
            ]["parameters"]
        ]
        assert names[-3:] == ["magnitude_b", "map_method", "attention_at"]
        out = client.predict(
            prompt="a red circle",
            steps=3,
            change="magnitude",
            magnitude_b=2.0,
            api_name="/compare_runs",
        )
        status, chart, trajectories, attention, x0_a, x0_b, step, pair = out
        assert (
            "embedding magnitude k: “1.0” → “2.0”" in status and len(x0_b) == 3 and len(pair) == 4
        )
        assert trajectories["type"] == "plotly"
        with pytest.raises(AppError, match="B's magnitude k must be between -3 and 5"):
            client.predict(change="magnitude", magnitude_b=6, api_name="/compare_runs")


def test_the_attention_chart_shares_one_symmetric_scale_and_wraps_rows():
    from explorer.charts.compare import attention_difference_figure

    diffs = [np.full((2, 3), v) for v in (0.01, -0.03, 0.0, 0.02, 0.005)]
    fig = attention_difference_figure(list("abcde"), diffs, "t")
    assert len(fig.data) == 5 and {t.coloraxis for t in fig.data} == {"coloraxis"}
    assert (fig.layout.coloraxis.cmin, fig.layout.coloraxis.cmax) == (-0.03, 0.03)
    assert [a.text for a in fig.layout.annotations][:2] == ["a<br>±1.00%", "b<br>±3.00%"]
    assert fig.data[4].xaxis == "x5" and fig.layout.yaxis5.domain[1] < fig.layout.yaxis.domain[0]
    flat = attention_difference_figure(["a"], [np.zeros((2, 2))], "t")  # all 0: still a scale
    assert flat.layout.coloraxis.cmax > 0


def test_the_map_rings_each_runs_own_step():
    from explorer.charts.embeddings import map_figure

    paths = [np.arange(8.0).reshape(4, 2), -np.arange(6.0).reshape(3, 2)]
    fig = map_figure(["A", "B"], paths, "t", highlight=[3, 0])
    rings = [(t.x[0], t.y[0]) for t in fig.data if not t.name]
    assert rings == [(6.0, 7.0), (-0.0, -1.0)]
    assert len([t for t in map_figure(["A", "B"], paths, "t", highlight=2).data if not t.name]) == 2
