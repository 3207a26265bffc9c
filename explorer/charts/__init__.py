"""Plotly charts: pure functions from plain data (numpy arrays, or a Trace) to a Figure."""

from explorer.charts.steps import (
    coefficients_figure,
    flow_step_figure,
    frequency_figure,
    guidance_figure,
    latent_figure,
    run_figures,
    schedule_figure,
    sigma_figure,
)

__all__ = [
    "coefficients_figure",
    "flow_step_figure",
    "frequency_figure",
    "guidance_figure",
    "latent_figure",
    "run_figures",
    "schedule_figure",
    "sigma_figure",
]
