"""Experiment charts on synthetic data: no model, just numbers in and traces out."""

from __future__ import annotations

import math

import plotly.graph_objects as go
import pytest

from explorer.charts.experiments import (
    guidance_norms_figure,
    magnitude_figure,
    scheduler_accuracy_figure,
    seeds_figure,
    steps_figure,
)


def test_steps_figure():
    fig = steps_figure([1, 5, 25], [0.3, 0.1, 0.0], [0.1, 0.4, 2.0])
    assert isinstance(fig, go.Figure) and len(fig.data) == 2
    assert list(fig.data[0].y) == [0.3, 0.1, 0.0] and fig.data[1].yaxis == "y2"
    assert fig.layout.xaxis.type == "log" and list(fig.layout.xaxis.ticktext) == ["1", "5", "25"]


def test_magnitude_figure_sorts_by_k_and_leaves_nan_as_gap():
    fig = magnitude_figure(
        [2.0, 0.0, 1.0], [20.0, 0.0, 10.0], [1.0, math.nan, 1.0], [0.2, 0.5, 0.0]
    )
    norm, cos, dist = fig.data
    assert list(norm.x) == [0.0, 1.0, 2.0] and list(norm.y) == [0.0, 10.0, 20.0]
    assert list(cos.y) == [None, 1.0, 1.0]  # cos(0, z) is undefined: a gap, not a number
    assert list(dist.y) == pytest.approx([50.0, 0.0, 20.0])


def test_guidance_norms_figure_skips_unguided_scales():
    fig = guidance_norms_figure([1.0, 4.0, 8.0], [None, [3.0, 2.0], [6.0, 4.0]])
    assert [t.name for t in fig.data] == ["g = 4", "g = 8"]
    assert list(fig.data[0].x) == [1, 2]  # steps counted from 1, as in the step views
    empty = guidance_norms_figure([1.0], [None])
    assert not empty.data and "never ran" in empty.layout.annotations[0].text


def test_scheduler_accuracy_figure_log_log_with_order_guides():
    steps = [2, 4, 8]
    curve = {"ddim": [0.4, 0.2, 0.1], "dpmpp_2m": [0.2, 0.05, 0.0125], "zero": [0.0, math.nan, 1.0]}
    fig = scheduler_accuracy_figure(steps, curve, chosen=4)
    assert fig.layout.xaxis.type == "log" and fig.layout.yaxis.type == "log"
    # ticked at the step counts run and at decades: no crowded minor labels (2, 3, ... 9)
    assert list(fig.layout.xaxis.tickvals) == steps and fig.layout.yaxis.dtick == 1
    names = [t.name for t in fig.data]
    assert names[:3] == ["ddim", "dpmpp_2m", "zero"] and "slope −1" in names and "slope −2" in names
    assert list(fig.data[2].y) == [None, None, 1.0]  # non-positive and NaN cannot sit on a log axis
    guide2 = fig.data[names.index("slope −2")]
    assert guide2.y[0] / guide2.y[1] == pytest.approx(4.0)  # doubling steps: 2² times closer


def test_seeds_figure():
    fig = seeds_figure([0, 7], [0.0, 0.3])
    assert list(fig.data[0].x) == ["0", "7"] and list(fig.data[0].y) == [0.0, 0.3]
