"""Plotly figures for two runs compared: the per-word attention difference. Plain data in.

(The distance chart is `explorer.charts.experiments.comparison_figure`, the shared trajectory
map `explorer.charts.embeddings.map_figure`.)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

MAX_COLUMNS = 3  # maps in a row (legible on a phone); more words wrap to further rows
ROW_HEIGHT = 170  # px a row of maps (a map, its title)


def attention_difference_figure(
    labels: Sequence[str], diffs: Sequence[np.ndarray], title: str
) -> go.Figure:
    """A row (or rows) of small (h, w) maps, one per word: B's attention minus A's.

    One colour scale for every map, symmetric around 0 (red: B attends more there, blue: less),
    values as shares of the attention (0.5% = 0.005); each map's title gives its largest |Δ|
    ("±0.63%"). The colour bar lies under the maps, so they keep the width on a phone.
    """
    n = max(len(diffs), 1)
    cols = min(n, MAX_COLUMNS)
    rows = math.ceil(n / cols)
    grids = [np.asarray(d, dtype=np.float64) for d in diffs]  # (h, w) each
    largest = [float(np.abs(g).max()) if g.size else 0.0 for g in grids]
    top = max(largest, default=0.0) or 1e-6  # a flat 0 still gets a scale
    titles = [f"{label}<br>±{m:.2%}" for label, m in zip(labels, largest)]
    fig = make_subplots(
        rows=rows,
        cols=cols,
        subplot_titles=titles or None,
        horizontal_spacing=0.04,
        vertical_spacing=0.5 / rows if rows > 1 else 0.1,
    )
    for k, (label, g) in enumerate(zip(labels, grids)):
        fig.add_heatmap(
            z=g,
            coloraxis="coloraxis",
            name=label,
            hovertemplate=label + "<br>row %{y}, column %{x}<br>Δ = %{z:.3%}<extra></extra>",
            row=k // cols + 1,
            col=k % cols + 1,
        )
    fig.update_xaxes(showticklabels=False, showgrid=False, zeroline=False)
    fig.update_yaxes(showticklabels=False, showgrid=False, zeroline=False, autorange="reversed")
    for k in range(len(grids)):  # square cells: each map keeps the latent grid's shape
        axis = "" if k == 0 else str(k + 1)
        fig.layout[f"yaxis{axis}"].update(scaleanchor=f"x{axis}", constrain="domain")
        fig.layout[f"xaxis{axis}"].update(constrain="domain")
    fig.update_annotations(font={"size": 12})
    fig.update_layout(
        title={"text": title, "font": {"size": 14}},
        height=150 + ROW_HEIGHT * rows,
        margin={"l": 10, "r": 10, "t": 80, "b": 70},
        template="plotly_white",
        coloraxis={
            "colorscale": "RdBu_r",
            "cmin": -top,
            "cmax": top,
            "colorbar": {
                "title": {"text": "B − A", "side": "right"},
                "tickformat": ".1%",
                "thickness": 12,
                "orientation": "h",
                "y": -0.04,
                "yanchor": "top",
                "len": 0.9,
            },
        },
    )
    return fig
