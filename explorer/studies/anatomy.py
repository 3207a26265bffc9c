"""One run taken apart: the pictures and numbers the step views show, computed from a `Trace`.

Pure functions of a Trace (no UI, no model beyond the decoder a trace may carry), so the web app's
handlers only format what these return. Notation as in `explorer.engine.tracefile`: for step i,
x_t = latents[i], ε = noise_pred[i], x_{t-1} = latents[i+1] ≈ a·x_t + b·ε with (a, b) =
step_coeffs[i]. A flow trace (`trace.objective == "flow"`) also gets its own terms: σ_t, σ_next,
the velocity v and x_next = x_t + (σ_next − σ_t)·v (`explorer.engine.flow`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from PIL import Image

from explorer.engine import decode as dec
from explorer.engine import flow
from explorer.engine.tracefile import Trace
from explorer.inputs.errors import VisitorError
from explorer.studies import latent_space
from explorer.studies.inventory import tensor_inventory  # noqa: F401 - part of this API


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
    """How step i used the predicted noise: x_{t-1} ≈ a·x_t + b·ε; for a flow model also
    x_next = x_t + (σ_next − σ_t)·v, its own form (the flow fields are None otherwise)."""

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
    objective: str = "epsilon"  # or "flow"
    sigma: float | None = None  # σ_t, where x_t = σ·ε + (1 − σ)·x_0 lies on the line
    sigma_next: float | None = None  # σ the step moved to
    velocity: torch.Tensor | None = None  # (C, h, w) v, the guided velocity
    moved: torch.Tensor | None = None  # (C, h, w) (σ_next − σ_t)·v, the step itself
    euler_residual: float | None = None  # what x_t + (σ_next − σ_t)·v leaves out of x_next


def is_flow(trace: Trace) -> bool:
    """Whether the trace is a flow model's with its velocities recorded."""
    return trace.objective == "flow" and trace.velocity is not None


def relative(rest: torch.Tensor, of: torch.Tensor) -> float:
    """‖rest‖ / ‖of‖: the share of `of` that a formula leaves out."""
    return float(rest.norm() / of.norm().clamp_min(1e-12))


def sigma_next(trace: Trace, i: int) -> float:
    """σ_next of flow step i: the recorded schedule's next entry (else the next σ, 0 at the end)."""
    if "sigma_schedule" in trace.settings:
        return float(flow.sigma_next(trace)[i])
    return float(trace.sigmas[i + 1]) if i + 1 < trace.num_steps else 0.0


def flow_fields(trace: Trace, i: int) -> dict:
    """StepParts' flow fields of step i of a flow trace: σ_t, σ_next, v, (σ_next − σ_t)·v."""
    s, s_next = float(trace.sigmas[i]), sigma_next(trace, i)
    v, x_t, x_next = trace.velocity[i], trace.latents[i], trace.latents[i + 1]  # (C, h, w)
    moved = (s_next - s) * v  # (C, h, w)
    return dict(
        objective="flow",
        sigma=s,
        sigma_next=s_next,
        velocity=v,
        moved=moved,
        euler_residual=relative(x_next - (x_t + moved), x_next),
    )


def step_parts(trace: Trace, i: int) -> StepParts:
    """The pieces of step i (0-based, 0..T-1)."""
    if not 0 <= i < trace.num_steps:
        raise VisitorError(f"step {i} out of range 0..{trace.num_steps - 1}")
    a, b = (float(v) for v in trace.step_coeffs[i])
    x_t, eps, x_next = trace.latents[i], trace.noise_pred[i], trace.latents[i + 1]
    rest = x_next - (a * x_t + b * eps)  # (C, h, w)
    extra = flow_fields(trace, i) if is_flow(trace) else {}
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
        residual=relative(rest, x_next),
        **extra,
    )


@dataclass
class GuidanceParts:
    """Classifier-free guidance at one step: ε = ε_u + g·(ε_c − ε_u); for a flow model the same
    mix of its velocities, v = v_u + g·(v_c − v_u) (`symbol` says which)."""

    uncond: torch.Tensor  # (C, h, w) ε_u (v_u), the denoiser without the prompt
    text: torch.Tensor  # (C, h, w) ε_c (v_c), the denoiser with the prompt
    guided: torch.Tensor  # (C, h, w) ε (v), what the scheduler used
    difference: torch.Tensor  # (C, h, w) ε_c − ε_u (v_c − v_u), the prompt's push
    norms: dict[str, float]
    symbol: str = "ε"


def guidance_parts(trace: Trace, i: int) -> GuidanceParts | None:
    """Guidance taken apart at step i; None when the run had no guidance. A flow trace's parts
    are its velocities v_u, v_c, v (the model's own output)."""
    if not trace.guided:
        return None
    if is_flow(trace) and trace.velocity_uncond is not None:
        e, parts = "v", (trace.velocity_uncond[i], trace.velocity_text[i], trace.velocity[i])
    else:
        e, parts = "ε", (trace.noise_uncond[i], trace.noise_text[i], trace.noise_pred[i])
    uncond, text, guided = parts  # (C, h, w) each
    diff = text - uncond
    norms = {
        f"unconditional {e}_u": float(uncond.norm()),
        f"text {e}_c": float(text.norm()),
        f"guided {e}": float(guided.norm()),
        f"difference {e}_c − {e}_u": float(diff.norm()),
    }
    return GuidanceParts(uncond, text, guided, diff, norms, e)


def compression(trace: Trace) -> dict[str, int | float]:
    """Pixels vs latent numbers of this run (`latent_space.compression`)."""
    C, h, w = trace.latents.shape[1:]
    s = trace.vae_scale_factor
    height = int(trace.settings.get("height", h * s))
    width = int(trace.settings.get("width", w * s))
    return latent_space.compression(height, width, (C, h, w))
