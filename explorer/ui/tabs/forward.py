"""The Forward process tab: a picture buried in noise at chosen timesteps [/forward].

Take an uploaded picture (or, with none, one generated from the prompt), encode it, and show
x_t = √ᾱ_t·x_0 + √(1−ᾱ_t)·ε at each chosen training timestep t: the latent's channels, the latent
decoded, ᾱ_t and the signal-to-noise ratio. Beside them, blur and masking at the same strength,
labelled as illustrations. A flow model (SD3) is shown in its own terms: x_t = σ·ε + (1 − σ)·x_0
with σ = t / 1000, and σ in the table. The engine is `explorer.studies.forward`.
"""

from __future__ import annotations

import math
from typing import Any

import gradio as gr

from explorer.inputs.controls import validate_int
from explorer.inputs.lists import describe_limits, format_list, parse_numbers
from explorer.studies import forward
from explorer.ui.common import (
    RUN_CONCURRENCY,
    AppContext,
    bind,
    explain,
    pixel_gallery,
    pixel_image,
    run_engine,
)
from explorer.ui.pending import until_run
from explorer.ui.upload import NO_UPLOAD, fallback_inputs, picture, picture_inputs

TITLE = "Forward process"
LIMITS = dict(integer=True, lo=0, hi=999, max_count=8)
DEFAULT_TIMESTEPS = format_list(forward.DEFAULT_TIMESTEPS)  # the box's text
INTRO = (
    "Training teaches the UNet to undo one corruption: **x_t = √ᾱ_t · x_0 + √(1 − ᾱ_t) · ε**. "
    "Pick timesteps t (0 = clean, 999 = almost pure noise); each shows the noisy latent, what the "
    "VAE decodes from it, and its signal-to-noise ratio **SNR = ᾱ_t / (1 − ᾱ_t)**. The noise is "
    "drawn once from the seed and reused at every t, as img2img does."
)


FLOW_NOTE = (
    "This model is a **flow model** (rectified flow, as SD3): it was trained on the straight line "
    "**x_t = σ·ε + (1 − σ)·x_0** with σ = t / 1000, so each t below is that σ, and its SNR is "
    "((1 − σ)/σ)². "
)


# the table's head: an epsilon model's ᾱ_t, or a flow model's σ
HEADS = {
    False: "| t | ᾱ_t (signal share) | 1 − ᾱ_t (noise share) | SNR = ᾱ/(1−ᾱ) | SNR in dB |",
    True: "| t | σ = t/1000 (noise weight) | 1 − σ (picture weight) | SNR ((1−σ)/σ)² | SNR in dB |",
}


def is_flow(result: forward.ForwardResult) -> bool:
    """Whether the result is a flow model's (its steps carry σ)."""
    return bool(result.steps) and result.steps[0].sigma is not None


def snr_table(result: forward.ForwardResult) -> str:
    """The numbers of every timestep as a Markdown table: ᾱ_t, or a flow model's σ."""
    flow = is_flow(result)
    rows = [HEADS[flow], "| --- | --- | --- | --- | --- |"]
    for s in result.steps:
        db = "+∞" if math.isinf(s.snr_db) else f"{s.snr_db:+.1f}"
        snr = "∞" if math.isinf(s.snr) else f"{s.snr:.4g}"
        share = s.sigma if flow else s.alpha_bar
        rows.append(f"| {s.t} | {share:.4f} | {1 - share:.4f} | {snr} | {db} |")
    return "\n".join(rows)


def add_noise(
    ctx: AppContext,
    upload=NO_UPLOAD["upload"],  # a default of None: API callers may omit it
    how=NO_UPLOAD["how"],
    prompt=NO_UPLOAD["prompt"],
    timesteps_text=DEFAULT_TIMESTEPS,
    seed=NO_UPLOAD["seed"],
) -> dict[str, Any]:
    """The picture noised to each timestep, with blur and masking beside it."""
    ts = parse_numbers(timesteps_text, name="timesteps", **LIMITS)
    seed = validate_int("seed", seed)
    pipe = ctx.pipe()
    image, note = picture(pipe, upload, how, prompt, seed)
    r = run_engine(forward.forward_process, pipe, image, ts, seed=seed)
    flow = is_flow(r)
    cap = lambda s: f"t={s.t} · {f'σ {s.sigma:.3f} · ' if flow else ''}SNR {s.snr:.3g}"  # noqa: E731
    done = f"Noised to {len(r.steps)} timesteps of {r.num_train_timesteps}."
    return {
        "status": f"{note}{FLOW_NOTE if flow else ''}{done}",
        "clean": r.image,
        "table": snr_table(r),
        "latents": [(s.channels, cap(s)) for s in r.steps],
        "decoded": [(s.decoded, cap(s)) for s in r.steps],
        "blurred": [(s.blurred, f"t={s.t} · blur {1 - s.alpha_bar:.2f}") for s in r.steps],
        "masked": [(s.masked, f"t={s.t} · {1 - s.alpha_bar:.0%} masked") for s in r.steps],
    }


def create_tab(ctx: AppContext) -> None:
    """Build the Forward process tab inside an open gr.Blocks."""
    explain(INTRO)
    with gr.Row():
        with gr.Column(scale=2):
            upload, how = picture_inputs()
        with gr.Column(scale=3):
            prompt, seed = fallback_inputs("forward")
            timesteps = gr.Textbox(
                label="Timesteps t",
                value=DEFAULT_TIMESTEPS,
                info=describe_limits(**LIMITS),
            )
            button = gr.Button("Add noise", variant="primary")
            status = gr.Markdown()
    with until_run(
        "Press Add noise: the picture at every t, and its numbers, appear here."
    ) as later:
        with gr.Row():
            clean = pixel_image("x_0: the clean picture", height=160)
            table = gr.Markdown()
        outputs = dict(status=status, clean=clean, table=table)
        outputs["latents"] = pixel_gallery("x_t: the noisy latent's channels", columns=3, wide=True)
        outputs["decoded"] = pixel_gallery("x_t decoded by the VAE", columns=8)
        gr.Markdown("### For comparison: other corruptions at the same strength")
        explain(f"**{forward.ILLUSTRATION}**")
        outputs["blurred"] = pixel_gallery("Illustration: blur", columns=8)
        outputs["masked"] = pixel_gallery("Illustration: masking", columns=8)
    later.reveal_on(button)
    button.click(
        bind(add_noise, ctx, outputs=outputs),
        [upload, how, prompt, timesteps, seed],
        list(outputs.values()),
        api_name="forward",
        concurrency_limit=RUN_CONCURRENCY,
        concurrency_id="run",
    )
