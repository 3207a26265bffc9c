"""Plotly figures over the steps of one run: pure functions from plain arrays to a Figure.

Each `*_figure` takes numpy arrays (see `explorer.charts.metrics` for the notation); `run_figures`
builds them all from a `Trace`. A flow trace (SD3) gets its own schedule and step charts: σ_t
over the steps (its first σ = 1 has SNR 0, which a log axis cannot show) and the Euler step sizes
σ_next − σ_t, x_next = x_t + (σ_next − σ_t)·v.
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


def sigma_figure(sigmas: np.ndarray) -> go.Figure:
    """A flow run's σ_t (noise share, left axis), 1 − σ_t (the picture's share) and the SNR
    ((1 − σ)/σ)² on a log axis (right), where it is positive and finite."""
    s = np.asarray(sigmas, dtype=np.float64)
    x = np.arange(len(s))
    with np.errstate(divide="ignore"):
        snr = ((1 - s) / s) ** 2
    shown = np.where((snr > 0) & np.isfinite(snr), snr, np.nan)  # σ = 1: SNR 0, off the log axis
    fig = go.Figure()
    fig.add_scatter(x=x, y=s, name="σ_t (noise share)", mode="lines+markers")
    fig.add_scatter(x=x, y=1 - s, name="1 − σ_t (picture share)", mode="lines")
    fig.add_scatter(x=x, y=shown, name="SNR ((1−σ)/σ)²", mode="lines", yaxis="y2")
    fig.update_layout(
        yaxis2={"title": "SNR (log)", "type": "log", "overlaying": "y", "side": "right"}
    )
    return _layout(fig, "Flow schedule σ_t of this run", "σ_t")


def flow_step_figure(sigmas: np.ndarray, sigma_next: np.ndarray) -> go.Figure:
    """A flow run's Euler steps: σ_next − σ_t per step, the multiple of v each step adds."""
    s, n = np.asarray(sigmas, dtype=np.float64), np.asarray(sigma_next, dtype=np.float64)
    x = np.arange(len(s))
    fig = go.Figure()
    fig.add_bar(x=x, y=n - s, name="σ_next − σ_t (times v)")
    return _layout(fig, "Euler step sizes σ_next − σ_t", "value")


def guidance_figure(
    uncond: np.ndarray | None, text: np.ndarray | None, guided: np.ndarray, symbol: str = "ε"
) -> go.Figure:
    """Norms per step of ε_u, ε_c, the guided ε and ε_c − ε_u; just ε when guidance was off.
    `symbol` "v": a flow model's velocities v_u, v_c, v instead."""
    fig = go.Figure()
    x = np.arange(len(guided))
    if uncond is None or text is None:
        fig.add_scatter(x=x, y=metrics.norms(guided), name=f"{symbol} (no guidance)")
    else:
        for name, y in metrics.guidance_norms(uncond, text, guided).items():
            fig.add_scatter(x=x, y=y, name=name.replace("ε", symbol))
    what = "noise" if symbol == "ε" else "velocity"
    return _layout(fig, f"Guidance: {what} norms per step", "L2 norm")


def _np(t) -> np.ndarray | None:
    return None if t is None else t.detach().cpu().numpy()


def flow_figures(trace) -> dict[str, go.Figure]:
    """The charts a flow `Trace` shows in its own terms: σ_t, the step sizes, v's norms."""
    schedule = np.asarray(trace.settings.get("sigma_schedule", []), dtype=np.float64)  # (N + 1,)
    s = _np(trace.sigmas)  # (T,)
    T = len(s)
    nxt = schedule[1 : T + 1] if len(schedule) > T else np.append(s[1:], 0.0)[:T]  # (T,)
    v = (_np(trace.velocity_uncond), _np(trace.velocity_text), _np(trace.velocity))
    return {
        "schedule": sigma_figure(s),
        "coefficients": flow_step_figure(s, nxt),
        "guidance": guidance_figure(*v, symbol="v"),
    }


def run_figures(trace) -> dict[str, go.Figure]:
    """Every step chart of a `Trace` (or a partial one), keyed by view name."""
    if getattr(trace, "objective", "epsilon") == "flow" and trace.velocity is not None:
        own = flow_figures(trace)
    else:
        own = {
            "schedule": schedule_figure(_np(trace.alphas_cumprod)),
            "coefficients": coefficients_figure(_np(trace.step_coeffs)),
            "guidance": guidance_figure(
                _np(trace.noise_uncond), _np(trace.noise_text), _np(trace.noise_pred)
            ),
        }
    return {
        "schedule": own["schedule"],
        "latent": latent_figure(_np(trace.latents), _np(trace.x0_pred)),
        "frequency": frequency_figure(_np(trace.x0_pred)),
        "coefficients": own["coefficients"],
        "guidance": own["guidance"],
    }
