"""Plotly figures over the steps of one run: pure functions from plain arrays to a Figure.

Each `*_figure` takes numpy arrays (see `explorer.charts.metrics` for the notation); `run_figures`
builds them all from a `Trace`.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from explorer.charts import metrics

HEIGHT = 300


def _layout(fig: go.Figure, title: str, y_title: str) -> go.Figure:
    fig.update_layout(
        title={"text": title, "font": {"size": 14}},
        height=HEIGHT,
        margin={"l": 50, "r": 20, "t": 40, "b": 40},
        xaxis_title="step",
        yaxis_title=y_title,
        legend={"orientation": "h", "y": -0.25},
        template="plotly_white",
    )
    return fig


def schedule_figure(alphas_cumprod: np.ndarray) -> go.Figure:
    """ᾱ_t (signal share, left axis) and SNR = ᾱ/(1−ᾱ) (log scale, right axis) per step."""
    a = np.asarray(alphas_cumprod, dtype=np.float64)
    x = np.arange(len(a))
    fig = go.Figure()
    fig.add_scatter(x=x, y=a, name="ᾱ_t (signal share)", mode="lines+markers")
    fig.add_scatter(x=x, y=metrics.snr(a), name="SNR ᾱ/(1−ᾱ)", mode="lines", yaxis="y2")
    fig.update_layout(
        yaxis2={"title": "SNR (log)", "type": "log", "overlaying": "y", "side": "right"}
    )
    return _layout(fig, "Noise schedule of this run", "ᾱ_t")


def latent_figure(latents: np.ndarray, x0: np.ndarray) -> go.Figure:
    """Per step: norm of x_t, how far x0 moved since the previous step, distance to the final
    x0."""
    T = len(x0)
    x = np.arange(T)
    fig = go.Figure()
    fig.add_scatter(x=x, y=metrics.norms(latents)[:T], name="‖x_t‖ latent norm")
    fig.add_scatter(x=x, y=metrics.x0_change(x0), name="‖x0_i − x0_{i−1}‖ change")
    fig.add_scatter(x=x, y=metrics.distance_to_final(x0), name="‖x0_i − x0_final‖ to final")
    return _layout(fig, "Latent and prediction over the steps", "L2 norm")


def frequency_figure(x0: np.ndarray, bands: int = 4) -> go.Figure:
    """Share of each spatial-frequency band of the final x0 settled by each step (coarse
    first)."""
    settled = metrics.band_settling(x0, bands)  # (T, bands)
    x = np.arange(len(settled))
    fig = go.Figure()
    for k, name in enumerate(metrics.band_names(bands)):
        fig.add_scatter(x=x, y=settled[:, k], name=name, mode="lines")
    fig.update_yaxes(range=[0, 1.02], tickformat=".0%")
    return _layout(fig, "Coarse to fine: share of each frequency band settled", "settled")


def coefficients_figure(step_coeffs: np.ndarray) -> go.Figure:
    """The scheduler's (a, b) per step, with x_{t-1} ≈ a·x_t + b·ε."""
    c = np.asarray(step_coeffs, dtype=np.float64)
    x = np.arange(len(c))
    fig = go.Figure()
    fig.add_scatter(x=x, y=c[:, 0], name="a (keeps x_t)")
    fig.add_scatter(x=x, y=c[:, 1], name="b (times ε)")
    return _layout(fig, "Scheduler coefficients: x_{t−1} ≈ a·x_t + b·ε", "value")


def guidance_figure(
    uncond: np.ndarray | None, text: np.ndarray | None, guided: np.ndarray
) -> go.Figure:
    """Norms per step of ε_u, ε_c, the guided ε and ε_c − ε_u; just ε when guidance was off."""
    fig = go.Figure()
    x = np.arange(len(guided))
    if uncond is None or text is None:
        fig.add_scatter(x=x, y=metrics.norms(guided), name="ε (no guidance)")
    else:
        for name, y in metrics.guidance_norms(uncond, text, guided).items():
            fig.add_scatter(x=x, y=y, name=name)
    return _layout(fig, "Guidance: noise norms per step", "L2 norm")


def _np(t) -> np.ndarray | None:
    return None if t is None else t.detach().cpu().numpy()


def run_figures(trace) -> dict[str, go.Figure]:
    """Every step chart of a `Trace` (or a partial one), keyed by view name."""
    return {
        "schedule": schedule_figure(_np(trace.alphas_cumprod)),
        "latent": latent_figure(_np(trace.latents), _np(trace.x0_pred)),
        "frequency": frequency_figure(_np(trace.x0_pred)),
        "coefficients": coefficients_figure(_np(trace.step_coeffs)),
        "guidance": guidance_figure(
            _np(trace.noise_uncond), _np(trace.noise_text), _np(trace.noise_pred)
        ),
    }
