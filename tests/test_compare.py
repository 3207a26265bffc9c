"""Run A against run B from the same noise: distances per step, where they part, the tab."""

from __future__ import annotations

import numpy as np
import pytest

from explorer.studies.compare import compare_runs, nearest_steps, parted_at

BASE = dict(prompt="a red circle", steps=6, guidance=3.0, seed=1)
QUIET = lambda *a, **k: None  # noqa: E731 - gradio's progress, silenced


def test_the_same_run_twice_is_distance_zero_at_every_step(tiny_pipe):
    c = compare_runs(tiny_pipe, BASE, {})
    assert np.all(c.latent_distance == 0) and np.all(c.x0_distance == 0)
    assert c.parted_at is None and c.changed == {}


def test_a_one_word_change_starts_at_zero_and_grows(tiny_pipe):
    c = compare_runs(tiny_pipe, BASE, {"prompt": "a blue circle"})
    d = c.latent_distance
    assert d[0] == 0  # the shared starting noise
    assert 0 < d[1] < d[-1]  # apart after the first step, further apart at the end
    assert c.changed == {"prompt": ("a red circle", "a blue circle")}
    # the distances are those of the traces' own tensors
    a, b = c.a, c.b
    rms = lambda x: float(np.sqrt(np.mean(np.square(x.double().numpy()))))  # noqa: E731
    assert c.x0_distance[2] == pytest.approx(rms(a.x0_pred[2] - b.x0_pred[2]))
    assert d[-1] == pytest.approx(rms(a.latents[-1] - b.latents[-1]))


def test_other_step_counts_pair_the_nearest_timesteps_in_the_same_units(tiny_pipe):
    c = compare_runs(tiny_pipe, BASE, {"steps": 3, "scheduler": "euler"})
    ta, tb = c.a.timesteps.float().numpy(), c.b.timesteps.float().numpy()
    for i, j in enumerate(c.pairs):
        assert abs(tb[j] - ta[i]) == np.abs(tb - ta[i]).min()
    # Euler's x_t is x0 + σε (σ up to ~14.6); as the UNet sees it, it is in DDIM's units, so the
    # shared noise is (almost) the same input for both at the first step
    assert c.latent_distance[0] < 0.01 and c.changed["scheduler"] == ("ddim", "euler")


def test_helpers():
    assert nearest_steps(np.array([999.0, 500.0, 1.0]), np.array([999.0, 1.0])) == [0, 0, 1]
    # inputs' distances per step, then the final latents': half of 0.4 is first reached at step 3
    assert parted_at(np.array([0.0, 0.1, 0.3, 0.35, 0.4])) == 3 and parted_at(np.zeros(3)) is None
    with pytest.raises(ValueError, match="may change"):
        compare_runs(None, BASE, {"strength": 0.5})


def test_the_tab_runs_both_and_scrubs(tiny_pipe):
    from explorer.ui.common import AppContext
    from explorer.ui.tabs.compare import rescrub, run_compare

    ctx = AppContext(load=lambda: tiny_pipe)
    out = run_compare(
        ctx, "a red circle", 1, 4, 3.0, "ddim", "guidance", "", 6.0, "ddim", 4, progress=QUIET
    )
    assert "guidance: “3.0” → “6.0”" in out["status"] and "same noise" in out["status"]
    assert len(out["x0_a"]) == len(out["x0_b"]) == 4 and len(out["pair"]) == 4
    assert [c for _, c in rescrub(out["state"], 2)["pair"]][0] == "A x_t · step 2 · t=501"
    from explorer.inputs.errors import VisitorError

    with pytest.raises(VisitorError, match="change must be one of"):
        run_compare(ctx, "x", 1, 4, 3.0, "ddim", "seed", "", 6.0, "ddim", 4, progress=QUIET)


def test_the_chart_draws_both_distances_per_step_and_marks_the_parting():
    from explorer.charts.experiments import comparison_figure

    fig = comparison_figure([0.0, 0.2, 0.5, 0.6], [3.0, 1.0, 0.7], parted_at=2)
    assert [list(t.x) for t in fig.data] == [[1, 2, 3], [1, 2, 3]]
    assert list(fig.data[0].y) == [0.0, 0.2, 0.5]  # the final latents' entry is not a step
    assert fig.layout.shapes[0].x0 == 2
