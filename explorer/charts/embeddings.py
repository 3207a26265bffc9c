"""Plotly figures for CLIP and embeddings: heatmaps, norms, maps. Plain data in, a Figure out."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from PIL import Image

KIND_COLOURS = {"start": "#2a9d8f", "word": "#264653", "end": "#e76f51", "pad": "#bbbbbb"}


def _data_uri(image: Image.Image, side: int = 48) -> str:
    buf = io.BytesIO()
    image.convert("RGB").resize((side, side), Image.Resampling.NEAREST).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def numbered(labels: Sequence[str], width: int = 40) -> list[str]:
    """Unique axis labels ("1. a red circle…"): plotly merges equal category labels."""
    cut = lambda s: s if len(s) <= width else s[: width - 1] + "…"  # noqa: E731
    return [f"{i + 1}. {cut(s)}" for i, s in enumerate(labels)]


def heatmap_figure(
    matrix: np.ndarray,
    rows: Sequence[str],
    cols: Sequence[str],
    title: str,
    *,
    row_images: Sequence[Image.Image] | None = None,
    col_images: Sequence[Image.Image] | None = None,
    mark_diagonal: bool = False,
    zmin: float = -1.0,
    zmax: float = 1.0,
    value_name: str = "cosine",
) -> go.Figure:
    """A (N, M) matrix with its values written in the cells; row i is `rows[i]`, top to bottom.

    `row_images` / `col_images` put a thumbnail beside each row / under each column;
    `mark_diagonal` outlines cells (i, i) (the matching pairs) and each row's largest value.
    """
    z = np.asarray(matrix, dtype=np.float64)  # (N, M)
    n, m = z.shape
    small = n * m <= 400
    fig = go.Figure(
        go.Heatmap(
            z=z, x=list(range(m)), y=list(range(n)), zmin=zmin, zmax=zmax,
            colorscale="RdBu_r", zmid=0 if zmin < 0 < zmax else None,
            text=[[f"{rows[i]}<br>{cols[j]}" for j in range(m)] for i in range(n)],
            texttemplate="%{z:.2f}" if small else None,
            hovertemplate=f"%{{text}}<br>{value_name} = %{{z:.4f}}<extra></extra>",
            colorbar={"title": value_name, "thickness": 12},
        )
    )  # fmt: skip
    if mark_diagonal:
        best = z.argmax(axis=1)  # (N,)
        for i in range(min(n, m)):
            fig.add_shape(type="rect", x0=i - 0.5, x1=i + 0.5, y0=i - 0.5, y1=i + 0.5,
                          line={"color": "black", "width": 2})  # fmt: skip
        for i, j in enumerate(best):
            fig.add_scatter(x=[j], y=[i], mode="markers", showlegend=False, hoverinfo="skip",
                            marker={"symbol": "star", "size": 7, "color": "gold",
                                    "line": {"color": "black", "width": 1}})  # fmt: skip
    left, bottom = 60, 60
    if row_images is not None:
        left = 70
        for i, im in enumerate(row_images):
            fig.add_layout_image(source=_data_uri(im), xref="x", yref="y", x=-0.55, y=i,
                                 sizex=0.9, sizey=0.9, xanchor="right", yanchor="middle",
                                 layer="above")  # fmt: skip
    if col_images is not None:
        for j, im in enumerate(col_images):
            fig.add_layout_image(source=_data_uri(im), xref="x", yref="y", x=j, y=n - 0.45,
                                 sizex=0.9, sizey=0.9, xanchor="center", yanchor="bottom",
                                 layer="above")  # fmt: skip
    side = max(320, min(900, 60 + 42 * max(n, m)))
    fig.update_layout(
        title={"text": title, "font": {"size": 14}},
        height=side,
        margin={"l": left, "r": 20, "t": 50, "b": bottom},
        template="plotly_white",
    )
    lo_x = -1.5 if row_images is not None else -0.5
    hi_y = n + 0.5 if col_images is not None else n - 0.5
    fig.update_xaxes(tickvals=list(range(m)), ticktext=list(cols), range=[lo_x, m - 0.5],
                     tickangle=-45, showgrid=False)  # fmt: skip
    fig.update_yaxes(tickvals=list(range(n)), ticktext=list(rows), range=[hi_y, -0.5],
                     showgrid=False)  # fmt: skip
    return fig


def token_norms_figure(tokens: Sequence[str], norms: Sequence[float], kinds: Sequence[str],
                       title: str = "Length of each token's vector") -> go.Figure:  # fmt: skip
    """One bar per token position: |last_hidden_state[i]|, coloured by start / word / end / pad."""
    fig = go.Figure()
    for kind, colour in KIND_COLOURS.items():
        idx = [i for i, k in enumerate(kinds) if k == kind]
        if idx:
            fig.add_bar(x=idx, y=[float(norms[i]) for i in idx], name=kind, marker_color=colour,
                        text=[tokens[i] for i in idx],
                        hovertemplate="%{x}: %{text}<br>norm %{y:.3f}<extra></extra>")  # fmt: skip
    fig.update_layout(title={"text": title, "font": {"size": 14}}, height=300,
                      margin={"l": 50, "r": 20, "t": 40, "b": 40}, template="plotly_white",
                      xaxis_title="token position", yaxis_title="L2 norm", bargap=0.1,
                      legend={"orientation": "h", "y": -0.3})  # fmt: skip
    return fig


def norms_figure(
    groups: dict[str, Sequence[float]], labels: Sequence[str], title: str
) -> go.Figure:
    """Grouped bars: for each item (label) one bar per group (e.g. raw and normalised norm)."""
    fig = go.Figure()
    for name, values in groups.items():
        fig.add_bar(x=list(labels), y=[float(v) for v in values], name=name,
                    hovertemplate="%{x}<br>%{y:.4f}<extra>" + name + "</extra>")  # fmt: skip
    fig.update_layout(title={"text": title, "font": {"size": 14}}, height=320, barmode="group",
                      margin={"l": 50, "r": 20, "t": 40, "b": 80}, template="plotly_white",
                      yaxis_title="L2 norm", legend={"orientation": "h", "y": -0.45})  # fmt: skip
    return fig


def map_figure(
    labels: Sequence[str],
    paths: Sequence[np.ndarray],
    title: str,
    *,
    hover: Sequence[Sequence[str]] | None = None,
    highlight: int | None = None,
    note: str = "",
) -> go.Figure:
    """One line per run through its (S, 2) points; the start is a circle, the end a square.

    `hover[r][s]` is the hover text of run r's step s; `highlight` rings every run's point at
    that step index. `note` (e.g. why PCA stands in) is written under the title.
    """
    fig = go.Figure()
    for r, (label, xy) in enumerate(zip(labels, paths)):
        xy = np.asarray(xy, dtype=np.float64)  # (S, 2)
        text = list(hover[r]) if hover else [f"step {s}" for s in range(len(xy))]
        sizes = [11 if s in (0, len(xy) - 1) else 5 for s in range(len(xy))]
        symbols = ["circle-open" if s == 0 else "square" if s == len(xy) - 1 else "circle"
                   for s in range(len(xy))]  # fmt: skip
        fig.add_scatter(x=xy[:, 0], y=xy[:, 1], mode="lines+markers", name=label, text=text,
                        customdata=np.stack([np.full(len(xy), r), np.arange(len(xy))], axis=1),
                        marker={"size": sizes, "symbol": symbols}, legendgroup=str(r),
                        hovertemplate="<b>" + label + "</b><br>%{text}<extra></extra>")  # fmt: skip
        if highlight is not None and 0 <= highlight < len(xy):
            fig.add_scatter(x=[xy[highlight, 0]], y=[xy[highlight, 1]], mode="markers",
                            showlegend=False, hoverinfo="skip", legendgroup=str(r),
                            marker={"size": 18, "symbol": "circle-open", "color": "black",
                                    "line": {"width": 2}})  # fmt: skip
    full = f"{title}<br><sup>{note}</sup>" if note else title
    fig.update_layout(title={"text": full, "font": {"size": 14}}, height=480,
                      margin={"l": 40, "r": 20, "t": 60, "b": 40}, template="plotly_white",
                      xaxis_title="map x", yaxis_title="map y",
                      legend={"orientation": "h", "y": -0.15})  # fmt: skip
    return fig
