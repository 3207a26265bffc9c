"""The Latent space tab: what the VAE keeps of a picture, and what each channel carries [/vae].

Encode a picture, show its latent channels, decode it back (the reconstruction and its PSNR),
state the compression ratio, and decode an edited latent: one channel (or all) scaled by k, where
k = 0 zeroes it. The engine is `explorer.studies.latent_space`.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from explorer.inputs.controls import ControlError, validate_float_range
from explorer.studies import latent_space as vae
from explorer.ui.common import RUN_CONCURRENCY, AppContext, bind, explain, pixel_image, run_engine
from explorer.ui.pending import until_run
from explorer.ui.upload import NO_UPLOAD, fallback_inputs, picture, picture_inputs
from explorer.ui.widgets import passthrough

TITLE = "Latent space"
CHANNELS = ["all", "0", "1", "2", "3"]
DEFAULT_CHANNEL, DEFAULT_SCALE = "0", 0.0  # the edit: channel 0 zeroed
SCALE_LIMITS = (-4.0, 4.0)
INTRO = (
    "Stable Diffusion never denoises pixels: its VAE squeezes the picture into a small latent, "
    "the UNet works there, and the decoder paints pixels back. Upload a picture (with none, one "
    "is generated from the prompt) to see its latent channels, how well it comes back, and what "
    "happens when you zero (k = 0) or scale one channel before decoding."
)


def channel_index(value) -> int | None:
    """'all' -> None, '2' -> 2; anything else is refused in words."""
    if value in (None, "all"):
        return None
    if str(value) not in CHANNELS:
        raise ControlError(f"channel must be one of: {', '.join(CHANNELS)}; got {value!r}")
    return int(value)


def edit_scale(value) -> float:
    """The factor k of the edit, within SCALE_LIMITS."""
    return validate_float_range("scale k", value, *SCALE_LIMITS)


def numbers_markdown(r: vae.RoundTrip) -> str:
    """Compression, PSNR and per-channel statistics, in words and a table."""
    c = r.compression
    lines = [
        f"{r.image.width}×{r.image.height} pixels × 3 colours = **{c['pixels']:,} numbers** → "
        f"latent {c['channels']} × {c['h']} × {c['w']} = **{c['latent']:,} numbers**: "
        f"**{c['ratio']:.0f}× fewer** (each side shrunk {c['factor']}×, {c['channels']} channels).",
        f"Reconstruction PSNR: **{r.psnr:.1f} dB** "
        "(higher is closer; 30 dB and up looks identical).",
    ]
    if r.edited is not None:
        lines.append(
            f"Edit **{r.edit_words}**: {r.edited_psnr:.1f} dB from the plain reconstruction."
        )
    lines += ["", "| channel | mean | std | min | max |", "| --- | --- | --- | --- | --- |"]
    lines += [
        f"| {i} | {s['mean']:+.2f} | {s['std']:.2f} | {s['min']:+.2f} | {s['max']:+.2f} |"
        for i, s in enumerate(r.channel_stats)
    ]
    return "\n".join(lines)


def encode_decode(
    ctx: AppContext,
    upload=NO_UPLOAD["upload"],  # a default of None: API callers may omit it
    how=NO_UPLOAD["how"],
    prompt=NO_UPLOAD["prompt"],
    seed=NO_UPLOAD["seed"],
    channel=DEFAULT_CHANNEL,
    scale=DEFAULT_SCALE,
) -> dict[str, Any]:
    """The picture through the VAE and back, and with one channel edited."""
    ch, k = channel_index(channel), edit_scale(scale)
    pipe = ctx.pipe()
    image, note = picture(pipe, upload, how, prompt, seed)
    r = run_engine(vae.round_trip, pipe.vae, image, ch, k)
    return {
        "status": note or "Encoded and decoded.",
        "original": r.image,
        "reconstruction": r.reconstruction,
        "edited": r.edited,
        "channels": r.channels,
        "numbers": numbers_markdown(r),
    }


def create_tab(ctx: AppContext) -> None:
    """Build the Latent space tab inside an open gr.Blocks."""
    explain(INTRO)
    with gr.Row():
        with gr.Column(scale=2):
            upload, how = picture_inputs()
        with gr.Column(scale=3):
            prompt, seed = fallback_inputs("vae")
            with gr.Row():
                channel = gr.Dropdown(CHANNELS, value=DEFAULT_CHANNEL, label="Edit: channel")
                scale = passthrough(
                    gr.Slider(
                        *SCALE_LIMITS,
                        value=DEFAULT_SCALE,
                        step=0.25,
                        label="Edit: scale k (0 zeroes the channel, 1 leaves it)",
                    )
                )
            button = gr.Button("Encode and decode", variant="primary")
    outputs = dict(status=gr.Markdown())
    with until_run("Press Encode and decode: the picture, its latent and its way back.") as later:
        with gr.Row():
            outputs["original"] = pixel_image("The picture x", height=200)
            outputs["reconstruction"] = pixel_image("Reconstruction D(E(x))", height=200)
            outputs["edited"] = pixel_image("Decoded edited latent", height=200)
        outputs["channels"] = pixel_image(
            "The latent E(x): its channels, each stretched to its range", height=160
        )
        outputs["numbers"] = gr.Markdown()
    later.reveal_on(button)
    button.click(
        bind(encode_decode, ctx, outputs=outputs),
        [upload, how, prompt, seed, channel, scale],
        list(outputs.values()),
        api_name="vae",
        concurrency_limit=RUN_CONCURRENCY,
        concurrency_id="run",
    )
