"""One run taken apart: the pictures and numbers the step views show, computed from a `Trace`.

Pure functions of a Trace (no UI, no model beyond the decoder a trace may carry), so the web app's
handlers only format what these return. Notation as in `explorer.engine.tracefile`: for step i,
x_t = latents[i], ε = noise_pred[i], x_{t-1} = latents[i+1] ≈ a·x_t + b·ε with (a, b) =
step_coeffs[i].
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from PIL import Image

from explorer.engine import decode as dec
from explorer.engine.tracefile import TENSOR_FIELDS, Trace
from explorer.inputs.errors import VisitorError
from explorer.studies import latent_space


@dataclass
class RunPictures:
    """Every step as pictures: T+1 noisy latents, T clean predictions, T noises."""

    latents: list[Image.Image]  # x_T .. x_0, T+1 images
    x0: list[Image.Image]  # predicted clean image at each step, T images
    noise: list[Image.Image]  # the guided noise ε of each step, T images
    method: str  # "vae" or "preview"


def run_pictures(trace: Trace, method: str | None = None) -> RunPictures:
    """Decode the whole run: with the VAE in one batched pass when one is attached (bfloat16 where
    the CPU has it, see `decode.vae_decode`), else linear."""
    if method is None:
        method = "vae" if trace.decoder is not None else "preview"
    if method == "vae":
        both = torch.cat([trace.latents, trace.x0_pred])  # (2T+1, C, h, w)
        images = dec.vae_decode(trace.decoder, both, batch_size=len(both), fast=True)
        latents, x0 = images[: len(trace.latents)], images[len(trace.latents) :]
    else:
        latents = trace.decode(what="latents", method="preview")
        x0 = trace.decode(what="x0", method="preview")
    return RunPictures(latents, x0, trace.decode(what="noise"), method)


class StepDecoder:
    """VAE-decodes a run's steps while it runs, so little is left to decode when it ends.

    Feed it the partial traces of `trace(..., on_step=...)` with `update`; `finish` decodes what
    is left of the final trace and returns its `RunPictures`.
    """

    def __init__(self, vae) -> None:
        self.vae = vae
        self.latents: list[Image.Image] = []  # x_T, x after step 1, ...
        self.x0: list[Image.Image] = []

    def update(self, trace: Trace, at_least: int = 1) -> None:
        """Decode the latents and x0 predictions not decoded yet, in one batch, once there are
        `at_least` of them (bigger batches: less per-call overhead beside the running UNet)."""
        new_latents = trace.latents[len(self.latents) :]  # (n, C, h, w)
        new_x0 = trace.x0_pred[len(self.x0) :]  # (m, C, h, w)
        both = torch.cat([new_latents, new_x0])
        if len(both) < max(1, at_least):
            return
        images = dec.vae_decode(self.vae, both, batch_size=len(both), fast=True)
        self.latents += images[: len(new_latents)]
        self.x0 += images[len(new_latents) :]

    def finish(self, trace: Trace) -> RunPictures:
        """All pictures of the final (possibly cancelled, so shorter) trace.

        What is left (the last step or two) decodes with the run's own thread count, never
        widened (`explorer.engine.threads.wide`): float sums can differ in the last bit between
        thread counts, so a picture would otherwise depend on whether other runs were in
        flight."""
        self.update(trace)
        T = trace.num_steps
        noise = trace.decode(what="noise")
        return RunPictures(self.latents[: T + 1], self.x0[:T], noise, "vae")


def noise_pictures(trace: Trace, noises: list[torch.Tensor]) -> list[Image.Image]:
    """Noise-like latents (C, h, w) as auto-contrasted pictures."""
    return dec.noise_to_images(torch.stack(noises), trace.preview_factors, trace.vae_scale_factor)


def latent_pictures(trace: Trace, latents: list[torch.Tensor]) -> list[Image.Image]:
    """Image latents (C, h, w) with the cheap linear preview (no model needed)."""
    z = torch.stack(latents)  # (n, C, h, w)
    return dec.linear_preview(z, trace.preview_factors, trace.preview_bias, trace.vae_scale_factor)


def channels_image(trace: Trace, i: int) -> Image.Image:
    """The C channels of latent x_t at index i (0..T) as a row of greyscale tiles."""
    return dec.channels_to_image(trace.latents[i], trace.vae_scale_factor)


@dataclass
class StepParts:
    """How step i used the predicted noise: x_{t-1} ≈ a·x_t + b·ε."""

    step: int
    timestep: float
    alpha_bar: float
    a: float
    b: float
    x_t: torch.Tensor  # (C, h, w)
    eps: torch.Tensor  # (C, h, w) the guided noise
    removed: torch.Tensor  # (C, h, w) b·ε, the part added (b < 0: removed)
    x_next: torch.Tensor  # (C, h, w) x_{t-1}
    residual: float  # relative size of what a·x_t + b·ε does not explain (history, fresh noise)


def step_parts(trace: Trace, i: int) -> StepParts:
    """The pieces of step i (0-based, 0..T-1)."""
    if not 0 <= i < trace.num_steps:
        raise VisitorError(f"step {i} out of range 0..{trace.num_steps - 1}")
    a, b = (float(v) for v in trace.step_coeffs[i])
    x_t, eps, x_next = trace.latents[i], trace.noise_pred[i], trace.latents[i + 1]
    rest = x_next - (a * x_t + b * eps)  # (C, h, w)
    return StepParts(
        step=i,
        timestep=float(trace.timesteps[i]),
        alpha_bar=float(trace.alphas_cumprod[i]),
        a=a,
        b=b,
        x_t=x_t,
        eps=eps,
        removed=b * eps,
        x_next=x_next,
        residual=float(rest.norm() / x_next.norm().clamp_min(1e-12)),
    )


@dataclass
class GuidanceParts:
    """Classifier-free guidance at one step: ε = ε_u + g·(ε_c − ε_u)."""

    uncond: torch.Tensor  # (C, h, w) ε_u, the UNet without the prompt
    text: torch.Tensor  # (C, h, w) ε_c, the UNet with the prompt
    guided: torch.Tensor  # (C, h, w) ε, what the scheduler used
    difference: torch.Tensor  # (C, h, w) ε_c − ε_u, the prompt's push
    norms: dict[str, float]


def guidance_parts(trace: Trace, i: int) -> GuidanceParts | None:
    """Guidance taken apart at step i; None when the run had no guidance."""
    if not trace.guided:
        return None
    uncond, text, guided = trace.noise_uncond[i], trace.noise_text[i], trace.noise_pred[i]
    diff = text - uncond
    norms = {
        "unconditional ε_u": float(uncond.norm()),
        "text ε_c": float(text.norm()),
        "guided ε": float(guided.norm()),
        "difference ε_c − ε_u": float(diff.norm()),
    }
    return GuidanceParts(uncond, text, guided, diff, norms)


def compression(trace: Trace) -> dict[str, int | float]:
    """Pixels vs latent numbers of this run (`latent_space.compression`)."""
    C, h, w = trace.latents.shape[1:]
    s = trace.vae_scale_factor
    height = int(trace.settings.get("height", h * s))
    width = int(trace.settings.get("width", w * s))
    return latent_space.compression(height, width, (C, h, w))


def _sentence(name: str, trace: Trace) -> str:
    T = trace.num_steps
    C, h, w = trace.latents.shape[1:]
    grid = f"{C} channels of a {h}×{w} grid"
    L, D = trace.prompt_embeds.shape
    batch = (
        "The UNet ran on a batch of 2 (unconditional + text) because guidance is on; "
        if trace.guided
        else "Guidance is off, so the UNet ran on a batch of 1; "
    )
    return {
        "timesteps": f"The scheduler's timestep t for each of the {T} steps (1000 = pure noise).",
        "alphas_cumprod": "ᾱ_t per step: the share of signal (not noise) power in x_t.",
        "sigmas": "σ_t per step: the noise level of sigma-space schedulers (x_t = x_0 + σ·ε).",
        "latents": f"The noisy latent x_t before the first step and after each step: {grid}.",
        "model_input": (
            f"What the UNet saw at each step (x_t after scaling); {batch}this keeps one copy."
        ),
        "noise_pred": f"The noise ε each step used (after guidance): {grid}.",
        "noise_uncond": "The UNet's noise without the prompt (first half of the doubled batch).",
        "noise_text": "The UNet's noise with the prompt (second half of the doubled batch).",
        "x0_pred": f"The clean latent x_0 each step predicts, the image it is heading to: {grid}.",
        "step_coeffs": "Per step (a, b) with x_{t-1} ≈ a·x_t + b·ε: how the scheduler mixes.",
        "prompt_embeds": (
            f"The text encoder's output: {L} token vectors of {D} numbers, the UNet's condition."
        ),
        "negative_embeds": (
            f"The same {L}×{D} vectors for the negative (or empty) prompt, used by ε_u."
        ),
        "preview_factors": f"A {C}×3 matrix mapping latent channels to RGB for cheap previews.",
        "preview_bias": "The RGB offset of the cheap preview.",
        "init_latents": "The clean latent of the img2img start image.",
    }.get(name, "")


def tensor_inventory(trace: Trace) -> list[dict]:
    """Every captured array: name, shape, dtype, bytes and one plain sentence."""
    rows = []
    for name in TENSOR_FIELDS:
        t = getattr(trace, name)
        if t is None:
            continue
        rows.append(
            {
                "name": name,
                "shape": " × ".join(str(s) for s in t.shape),
                "dtype": str(t.dtype).replace("torch.", ""),
                "bytes": t.numel() * t.element_size(),
                "what it holds": _sentence(name, trace),
            }
        )
    return rows
