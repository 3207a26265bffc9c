"""Plotly figures for CLIP and embeddings: heatmaps, norms, maps. Plain data in, a Figure out."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence

import numpy as np
import plotly.colors as pc
import plotly.graph_objects as go
from PIL import Image

KIND_COLOURS = {"start": "#2a9d8f", "word": "#264653", "end": "#e76f51", "pad": "#bbbbbb"}
# one colour per run, 24 apart (the map draws at most 16 runs)
RUN_COLOURS = pc.qualitative.Dark24


def _data_uri(image: Image.Image, side: int = 48) -> str:
    buf = io.BytesIO()
    image.convert("RGB").resize((side, side), Image.Resampling.NEAREST).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def numbered(labels: Sequence[str], width: int = 40, start: int = 1) -> list[str]:
    """Unique axis labels ("1. a red circle…"): plotly merges equal category labels. Tokens
    count from `start` = 0, their positions (as the token table and the norms chart)."""
    cut = lambda s: s if len(s) <= width else s[: width - 1] + "…"  # noqa: E731
    return [f"{i}. {cut(s)}" for i, s in enumerate(labels, start)]


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
    fig = go.Figure(_heatmap(z, rows, cols, zmin, zmax, value_name))
    if mark_diagonal:
        _mark_best(fig, z)
    if row_images is not None:
        _thumbnails(fig, row_images, n, beside_rows=True)
    if col_images is not None:
        _thumbnails(fig, col_images, n, beside_rows=False)
    side = max(360, min(1100, 220 + 48 * max(n, m)))  # 48 px a row, room for slanted captions
    left = 70 if row_images is not None else 60
    _layout(fig, title, side, (left, 50, 60))
    lo_x = -1.5 if row_images is not None else -0.5
    hi_y = n + 0.5 if col_images is not None else n - 0.5
    fig.update_xaxes(
        tickvals=list(range(m)),
        ticktext=list(cols),
        range=[lo_x, m - 0.5],
        tickangle=-45,
        showgrid=False,
    )
    fig.update_yaxes(
        tickvals=list(range(n)), ticktext=list(rows), range=[hi_y, -0.5], showgrid=False
    )
    return fig


def _heatmap(
    z: np.ndarray,
    rows: Sequence[str],
    cols: Sequence[str],
    zmin: float,
    zmax: float,
    value_name: str,
) -> go.Heatmap:
    """The cells of `heatmap_figure`: values written in them while there are at most 400."""
    n, m = z.shape
    return go.Heatmap(
        z=z,
        x=list(range(m)),
        y=list(range(n)),
        zmin=zmin,
        zmax=zmax,
        colorscale="RdBu_r",
        zmid=0 if zmin < 0 < zmax else None,
        text=[[f"{rows[i]}<br>{cols[j]}" for j in range(m)] for i in range(n)],
        texttemplate="%{z:.2f}" if n * m <= 400 else None,
        hovertemplate=f"%{{text}}<br>{value_name} = %{{z:.4f}}<extra></extra>",
        colorbar={"title": value_name, "thickness": 12},
    )


def _mark_best(fig: go.Figure, z: np.ndarray) -> None:
    """Outline the cells (i, i), the matching pairs, and star each row's largest value."""
    n, m = z.shape
    for i in range(min(n, m)):
        fig.add_shape(
            type="rect",
            x0=i - 0.5,
            x1=i + 0.5,
            y0=i - 0.5,
            y1=i + 0.5,
            line={"color": "black", "width": 2},
        )
    for i, j in enumerate(z.argmax(axis=1)):  # (N,)
        fig.add_scatter(  # in the cell's corner, clear of its number
            x=[j + 0.32],
            y=[i - 0.28],
            mode="markers",
            showlegend=False,
            hoverinfo="skip",
            marker={
                "symbol": "star",
                "size": 7,
                "color": "gold",
                "line": {"color": "black", "width": 1},
            },
        )


def _thumbnails(fig: go.Figure, images: Sequence[Image.Image], n: int, beside_rows: bool) -> None:
    """A thumbnail left of each of the n rows (`beside_rows`), or under each column."""
    for k, im in enumerate(images):
        fig.add_layout_image(
            source=_data_uri(im),
            xref="x",
            yref="y",
            x=-0.55 if beside_rows else k,
            y=k if beside_rows else n - 0.45,
            sizex=0.9,
            sizey=0.9,
            xanchor="right" if beside_rows else "center",
            yanchor="middle" if beside_rows else "bottom",
            layer="above",
        )


def _layout(fig: go.Figure, title: str, height: int, margin: tuple, **kwargs) -> go.Figure:
    """What every figure here shares: the title, height, margins (left, top, bottom) and the
    white template; `kwargs` go to `update_layout` too."""
    left, top, bottom = margin
    fig.update_layout(
        title={"text": title, "font": {"size": 14}},
        height=height,
        margin={"l": left, "r": 20, "t": top, "b": bottom},
        template="plotly_white",
        **kwargs,
    )
    return fig


def token_norms_figure(
    tokens: Sequence[str],
    norms: Sequence[float],
    kinds: Sequence[str],
    title: str = "Length of each token's vector",
) -> go.Figure:
    """One bar per token position: |last_hidden_state[i]|, coloured by start / word / end / pad."""
    fig = go.Figure()
    for kind, colour in KIND_COLOURS.items():
        idx = [i for i, k in enumerate(kinds) if k == kind]
        if idx:
            fig.add_bar(
                x=idx,
                y=[float(norms[i]) for i in idx],
                name=kind,
                marker_color=colour,
                text=[tokens[i] for i in idx],
                hovertemplate="%{x}: %{text}<br>norm %{y:.3f}<extra></extra>",
            )
    return _layout(
        fig,
        title,
        300,
        (50, 40, 40),
        xaxis_title="token position",
        yaxis_title="L2 norm",
        bargap=0.1,
        legend={"orientation": "h", "y": -0.3},
    )


def norms_figure(
    groups: dict[str, Sequence[float]], labels: Sequence[str], title: str
) -> go.Figure:
    """Grouped bars: for each item (label) one bar per group (e.g. raw and normalised norm)."""
    fig = go.Figure()
    for name, values in groups.items():
        fig.add_bar(
            x=list(labels),
            y=[float(v) for v in values],
            name=name,
            hovertemplate="%{x}<br>%{y:.4f}<extra>" + name + "</extra>",
        )
    return _layout(
        fig,
        title,
        320,
        (50, 40, 80),
        barmode="group",
        yaxis_title="L2 norm",
        legend={"orientation": "h", "y": -0.45},
    )


def map_figure(
    labels: Sequence[str],
    paths: Sequence[np.ndarray],
    title: str,
    *,
    hover: Sequence[Sequence[str]] | None = None,
    highlight: int | Sequence[int | None] | None = None,
    note: str = "",
) -> go.Figure:
    """One line per run through its (S, 2) points; the start is a circle, the end a square.

    `hover[r][s]` is the hover text of run r's step s; `highlight` rings every run's point at
    that step index (a sequence: run r's at `highlight[r]`). `note` (e.g. why PCA stands in) is
    written under the title.
    """
    fig = go.Figure()
    for r, (label, xy) in enumerate(zip(labels, paths)):
        colour = RUN_COLOURS[r % len(RUN_COLOURS)]  # its own: the ring traces take none
        xy = np.asarray(xy, dtype=np.float64)  # (S, 2)
        text = list(hover[r]) if hover else [f"step {s}" for s in range(len(xy))]
        sizes = [11 if s in (0, len(xy) - 1) else 5 for s in range(len(xy))]
        symbols = [
            "circle-open" if s == 0 else "square" if s == len(xy) - 1 else "circle"
            for s in range(len(xy))
        ]
        fig.add_scatter(
            x=xy[:, 0],
            y=xy[:, 1],
            mode="lines+markers",
            name=label,
            text=text,
            customdata=np.stack([np.full(len(xy), r), np.arange(len(xy))], axis=1),
            marker={"size": sizes, "symbol": symbols, "color": colour},
            line={"color": colour},
            legendgroup=str(r),
            hovertemplate="<b>" + label + "</b><br>%{text}<extra></extra>",
        )
        at = highlight[r] if isinstance(highlight, Sequence) else highlight
        if at is not None and 0 <= at < len(xy):
            fig.add_scatter(
                x=[xy[at, 0]],
                y=[xy[at, 1]],
                mode="markers",
                showlegend=False,
                hoverinfo="skip",
                legendgroup=str(r),
                marker={
                    "size": 18,
                    "symbol": "circle-open",
                    "color": "black",
                    "line": {"width": 2},
                },
            )
    full = f"{title}<br><sup>{note}</sup>" if note else title
    return _layout(
        fig,
        full,
        480,
        (40, 60, 40),
        xaxis_title="map x",
        yaxis_title="map y",
        legend={"orientation": "h", "y": -0.15},
    )
