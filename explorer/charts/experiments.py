"""Plotly figures for the side-by-side experiments: pure functions from plain lists to a Figure.

Nothing here knows about pipelines or traces: the experiments tab passes the numbers an
`explorer.studies.experiments` / `explorer.studies.sweeps` result holds (step counts, norms,
distances...).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

HEIGHT = 460  # the experiments' charts take the panel's whole width


def _layout(fig: go.Figure, title: str, x_title: str, y_title: str) -> go.Figure:
    fig.update_layout(
        title={"text": title, "font": {"size": 14}},
        height=HEIGHT,
        margin={"l": 60, "r": 60, "t": 40, "b": 110},  # room below for the axis title and legend
        xaxis_title=x_title,
        yaxis_title=y_title,
        legend={"orientation": "h", "y": -0.3, "yanchor": "top", "x": 0},
        template="plotly_white",
    )
    return fig


def _step_axis(steps: Sequence[int]) -> dict:
    """A log x axis ticked at the step counts run, and nowhere else (no crowded minor labels)."""
    ticks = sorted({int(n) for n in steps})
    return {"type": "log", "tickvals": ticks, "ticktext": [str(n) for n in ticks]}


def _finite(values: Sequence[float | None]) -> list[float | None]:
    """None for NaN / inf / None, so plotly leaves a gap instead of failing or lying."""
    return [None if v is None or not math.isfinite(v) else float(v) for v in values]


def steps_figure(
    steps: Sequence[int], distance: Sequence[float], seconds: Sequence[float]
) -> go.Figure:
    """Distance of each result to the most-steps result (left) and its time (right) per step
    count."""
    fig = go.Figure()
    fig.add_scatter(
        x=list(steps),
        y=_finite(distance),
        name="pixel distance to most steps",
        mode="lines+markers",
    )
    fig.add_scatter(
        x=list(steps),
        y=_finite(seconds),
        name="seconds",
        mode="lines+markers",
        yaxis="y2",
        line={"dash": "dot"},
    )
    fig.update_layout(
        xaxis=_step_axis(steps),
        yaxis2={"title": "seconds", "overlaying": "y", "side": "right", "rangemode": "tozero"},
    )
    return _layout(
        fig,
        "More steps: closer to the converged image, and slower",
        "steps (log)",
        "RMS pixel distance",
    )


def magnitude_figure(
    factors: Sequence[float],
    norms: Sequence[float],
    cosines: Sequence[float],
    distance: Sequence[float],
) -> go.Figure:
    """Per factor k: the embedding's norm, its cosine to k = 1 (right axis) and the image
    distance."""
    order = np.argsort(np.asarray(factors, dtype=np.float64), kind="stable")
    k = [float(factors[i]) for i in order]
    pick = lambda xs: _finite([xs[i] for i in order])  # noqa: E731
    fig = go.Figure()
    fig.add_scatter(x=k, y=pick(norms), name="‖z_k‖ embedding norm", mode="lines+markers")
    fig.add_scatter(x=k, y=pick(cosines), name="cos(z_k, z_1)", mode="lines+markers", yaxis="y2")
    scaled = [None if v is None else 100 * v for v in pick(distance)]
    fig.add_scatter(x=k, y=scaled, name="pixel distance to k = 1 (×100)", mode="lines+markers")
    fig.update_layout(
        yaxis2={"title": "cosine", "overlaying": "y", "side": "right", "range": [-1.05, 1.05]}
    )
    return _layout(fig, "Same direction, different length", "factor k", "norm · distance×100")


def guidance_norms_figure(
    scales: Sequence[float], norms: Sequence[Sequence[float] | None]
) -> go.Figure:
    """‖g·(ε_text − ε_uncond)‖ per step, one line per guidance scale g (none when g ≤ 1)."""
    fig = go.Figure()
    for g, per_step in zip(scales, norms):
        if per_step is None:
            continue
        fig.add_scatter(
            x=list(range(1, len(per_step) + 1)),  # steps counted from 1, as on the page
            y=_finite(per_step),
            name=f"g = {g:g}",
            mode="lines+markers",
        )
    if not fig.data:
        fig.add_annotation(
            text="no scale above 1: guidance never ran",
            showarrow=False,
            x=0.5,
            y=0.5,
            xref="paper",
            yref="paper",
        )
    return _layout(
        fig, "How hard the prompt pushes, step by step", "step", "‖g·(ε_text − ε_uncond)‖"
    )


def scheduler_accuracy_figure(
    curve_steps: Sequence[int],
    curve: Mapping[str, Sequence[float]],
    reference: str = "DDIM, 200 steps",
    chosen: int | None = None,
) -> go.Figure:
    """Log-log distance to the many-step reference against step count, one line per scheduler.

    Dashed guides of slope −1 and −2 show first- and second-order convergence: a solver of order p
    gains a factor 2^p in accuracy each time the steps double.
    """
    n = np.asarray(curve_steps, dtype=np.float64)
    fig = go.Figure()
    for name, dist in curve.items():
        y = [None if v is None or not v > 0 or not math.isfinite(v) else float(v) for v in dist]
        fig.add_scatter(x=n.tolist(), y=y, name=name, mode="lines+markers")
    values = [v for d in curve.values() for v in d if v is not None and v > 0 and math.isfinite(v)]
    if values and len(n) > 1:
        top = max(values)
        for order in (1, 2):
            guide = top * (n[0] / n) ** order  # (len(n),)
            fig.add_scatter(
                x=n.tolist(),
                y=guide.tolist(),
                name=f"slope −{order}",
                mode="lines",
                line={"dash": "dash", "color": "grey", "width": 1},
            )
    if chosen is not None:
        fig.add_vline(x=chosen, line_dash="dot", line_color="grey")
    fig.update_layout(xaxis=_step_axis(curve_steps), yaxis={"type": "log", "dtick": 1})  # decades
    return _layout(
        fig, f"Solver accuracy: distance to {reference}", "steps (log)", "RMS latent distance (log)"
    )


def seeds_figure(seeds: Sequence[int], distance: Sequence[float]) -> go.Figure:
    """Pixel distance of each seed's image to the first seed's: how much the seed alone changes."""
    fig = go.Figure()
    fig.add_bar(x=[str(s) for s in seeds], y=_finite(distance), name="distance to first seed")
    return _layout(fig, "Same prompt, different starting noise", "seed", "RMS pixel distance")


def comparison_figure(
    latent_distance: Sequence[float], x0_distance: Sequence[float], parted_at: int | None = None
) -> go.Figure:
    """Two runs from the same noise: per step, how far apart their x_t and their x0 are (the
    last entry of `latent_distance`, the final latents', is not a step and is left out)."""
    steps = list(range(1, len(x0_distance) + 1))
    fig = go.Figure()
    fig.add_scatter(x=steps, y=_finite(latent_distance[: len(steps)]), name="x_t: the inputs")
    fig.add_scatter(x=steps, y=_finite(x0_distance), name="x0: the predictions")
    if parted_at is not None:
        fig.add_vline(x=parted_at, line_dash="dot", line_color="grey")
        fig.add_annotation(x=parted_at, y=1, yref="paper", text="they part ways", showarrow=False)
    return _layout(fig, "Run A against run B, step by step", "step", "RMS latent distance")
