"""The words of the step views in the model's own terms: epsilon (ᾱ_t, x_(t−1) = a·x_t + b·ε) or
flow (σ_t, x_next = x_t + (σ_next − σ_t)·v), as `Trace.objective` says.

`LABELS` names every picture and plot whose meaning differs; `labelled` wraps a view's value so
its label follows the run shown (a page that showed a flow run, then an epsilon one, reads right).
The epsilon words are those the views always had.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from explorer.engine.decode import is_neutral_preview
from explorer.engine.tracefile import Trace
from explorer.studies import anatomy

# the label of each view whose meaning depends on the objective
LABELS: dict[str, dict[str, str]] = {
    "epsilon": {
        "gallery_noise": "ε: the noise predicted at each step (stretched)",
        "use_eps": "ε predicted",
        "use_removed": "b·ε (the noise part)",
        "use_next": "x_(t−1) = a·x_t + b·ε",
        "use_x0": "x0 it heads to",
        "g_uncond": "ε_u without the prompt",
        "g_text": "ε_c with the prompt",
        "g_guided": "ε guided",
        "g_diff": "ε_c − ε_u: the prompt's push",
        "plot_coefficients": "scheduler coefficients",
    },
    "flow": {
        "gallery_noise": "ε = x_t + (1 − σ)·v: the noise each step's v implies",
        "use_eps": "v predicted (velocity)",
        "use_removed": "(σ_next − σ_t)·v (the step)",
        "use_next": "x_next = x_t + (σ_next − σ_t)·v",
        "use_x0": "x0 = x_t − σ_t·v it heads to",
        "g_uncond": "v_u without the prompt",
        "g_text": "v_c with the prompt",
        "g_guided": "v guided",
        "g_diff": "v_c − v_u: the prompt's push",
        "plot_coefficients": "step sizes σ_next − σ_t",
    },
}
FLOW_NOTE = (
    "This model predicts a **velocity v ≈ ε − x0** (rectified flow), not noise: x_t lies on the "
    "straight line x_t = σ_t·ε + (1 − σ_t)·x0, and each step moves along v."
)


def objective(trace: Trace) -> str:
    """ "flow" for a flow trace with its velocities, else "epsilon": the views' two vocabularies."""
    return "flow" if anatomy.is_flow(trace) else "epsilon"


def label(name: str, trace: Trace) -> str:
    """The label of view `name` for this trace's objective."""
    return LABELS[objective(trace)][name]


def labelled(values: dict[str, Any], trace: Trace) -> dict[str, Any]:
    """`values` with each objective-dependent view's value wrapped in an update of its label."""
    labels = LABELS[objective(trace)]
    return {
        name: gr.update(value=value, label=labels[name]) if name in labels else value
        for name, value in values.items()
    }


def denoiser(trace: Trace) -> str:
    """What ran at every step: "transformer" for a flow model, else "UNet"."""
    return "transformer" if objective(trace) == "flow" else "UNet"


def snr_text(sigma: float) -> str:
    """The SNR ((1 − σ)/σ)² of flow's σ, as text: 0 at σ = 1, ∞ at σ = 0."""
    if sigma <= 0:
        return "∞"
    return f"{((1 - sigma) / sigma) ** 2:.3g}"


def grey_preview(trace: Trace) -> bool:
    """Whether the trace's linear preview is the grey fallback (no colour map for its latent)."""
    return is_neutral_preview(trace.preview_factors, trace.preview_bias)


def step_info(p: anatomy.StepParts, trace: Trace, method: str) -> str:
    """The selected step's line: timestep and ᾱ_t; a flow step's σ_t → σ_next and its SNR."""
    head = f"**Step {p.step + 1} of {trace.num_steps}** · timestep t = {p.timestep:.0f} · "
    if method == "preview" and grey_preview(trace):
        method = f"preview (grey: no colour map for {trace.latents.shape[1]} channels)"
    if p.objective != "flow":
        return f"{head}ᾱ_t = {p.alpha_bar:.4f} (signal share) · decoded with {method}"
    return (
        f"{head}σ_t = {p.sigma:.4f} → σ_next = {p.sigma_next:.4f} (the noise's share of x_t) · "
        f"SNR ((1 − σ)/σ)² = {snr_text(p.sigma)} · decoded with {method}"
    )


def equation(p: anatomy.StepParts) -> str:
    """The step as the model takes it: x_(t−1) = a·x_t + b·ε, or x_next = x_t + (σ_next − σ_t)·v
    with this step's numbers, and how much of the result that leaves out, in words."""
    if p.objective != "flow":
        return epsilon_equation(p.a, p.b, p.residual)
    step = p.sigma_next - p.sigma
    head = (
        f"x_next = x_t + (σ_next − σ_t) · v = x_t + (**{p.sigma_next:.4f}** − "
        f"**{p.sigma:.4f}**) · v = x_t + (**{step:+.4f}**) · v"
    )
    heads = f"It heads to x0 = x_t − σ_t·v = x_t − **{p.sigma:.4f}** · v."
    return f"{FLOW_NOTE}\n\n{head} — {_leaves_out(p.euler_residual, 'x_next')} {heads}"


def epsilon_equation(a: float, b: float, residual: float) -> str:
    """The step as x_(t−1) = a·x_t + b·ε, and how much of x_(t−1) that leaves out, in words."""
    return f"x_(t−1) = **{a:.4f}** · x_t + (**{b:+.4f}**) · ε — {_leaves_out(residual, 'x_(t−1)')}"


def _leaves_out(residual: float, result: str) -> str:
    if residual < 0.0005:
        return "exactly: this step is that formula and nothing else."
    return (
        f"all but {residual:.1%} of {result}: the rest comes from the solver's history "
        "of earlier steps or from fresh noise."
    )


def guidance_line(g: anatomy.GuidanceParts, trace: Trace) -> str:
    """The guidance parts' norms; a flow model's after the mix of its velocities, quoted."""
    norms = " · ".join(f"‖{k}‖ = {v:.2f}" for k, v in g.norms.items())
    if g.symbol != "v":
        return norms
    scale = trace.settings.get("guidance")
    mix = f"v = v_u + g·(v_c − v_u), g = {scale:g}" if isinstance(scale, int | float) else ""
    return f"{mix}: {norms}" if mix else norms


def guidance_off(trace: Trace) -> str:
    """The guidance views' line when guidance was off."""
    return (
        f"Guidance was off (scale ≤ 1): the {denoiser(trace)} ran once per step, without the "
        "negative prompt."
    )


def opened_note(trace: Trace) -> str:
    """What a visitor opening a saved run should know of its terms and pictures ("" for an
    epsilon run with a colour preview)."""
    notes = []
    if objective(trace) == "flow":
        notes.append(
            " It is a flow model's run (rectified flow, as SD3): its views speak of σ_t and the "
            "velocity v, x_next = x_t + (σ_next − σ_t)·v."
        )
    if grey_preview(trace):
        notes.append(
            f" Its {trace.latents.shape[1]} latent channels have no colour map for the linear "
            "preview, so the step pictures are grey (every channel weighted alike)."
        )
    return "".join(notes)
