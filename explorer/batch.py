"""Run K variants of one generation as ONE batched pipeline call, and record a `Trace` for each.

`capture.trace` runs one prompt string; the magnitude sweep and the seed grid need K runs that
differ only in their prompt embedding or their starting noise. Batching them is K times fewer
UNet calls' worth of overhead, and exactly as `pipe(prompt_embeds=..., latents=...)` documents:

  1. starting noise: for each item, `randn_tensor` from `torch.Generator("cpu").manual_seed(seed)`,
     the very draw `prepare_latents` makes in a plain run with that seed, so item i starts where
     the plain run with seeds[i] starts; the pipeline scales it by `init_noise_sigma` itself;
  2. one generator per item, already advanced past that draw, so stochastic samplers (DDPM,
     Euler-ancestral) add the same per-step noise to item i as the plain run would;
  3. the pipeline runs with `prompt_embeds`/`negative_prompt_embeds` (K, L, D), `latents` (K, C, h, w);
  4. the hooks record the whole batch (a deliberate near-copy of `capture._Recorder`, which keeps
     item 0 only; the UNet hook is routed through `capture._route`, so concurrent traces on the
     shared UNet never see these calls), and `traces()` slices one `Trace` per item.
"""

from __future__ import annotations

import functools
import time
from typing import Any

import torch
from diffusers import StableDiffusionPipeline
from diffusers.utils.torch_utils import randn_tensor

from explorer import capture
from explorer import decode as dec
from explorer.capture import _cpu, predict_x0, step_coefficients
from explorer.models import run_copy
from explorer.schedulers import has_sigmas
from explorer.tracefile import Trace


def latent_shape(pipe: Any, height: int | None = None, width: int | None = None) -> tuple:
    """(1, C, h, w) of one starting latent, with the pipeline's default size when not given."""
    scale = int(pipe.vae_scale_factor)
    height = height or pipe.unet.config.sample_size * scale
    width = width or pipe.unet.config.sample_size * scale
    return (1, pipe.unet.config.in_channels, int(height) // scale, int(width) // scale)


def starting_noise(
    pipe: Any, seed: int, height: int | None = None, width: int | None = None
) -> tuple[torch.Tensor, torch.Generator]:
    """The noise a plain run with `seed` starts from, (1, C, h, w) unscaled, and its advanced generator."""
    gen = torch.Generator("cpu").manual_seed(int(seed))
    shape = latent_shape(pipe, height, width)
    noise = randn_tensor(shape, generator=gen, device=pipe.unet.device, dtype=pipe.unet.dtype)
    return noise, gen  # (1, C, h, w)


class BatchRecorder:
    """Collects a batched run step by step; every tensor keeps the batch dimension K."""

    def __init__(self, scheduler: Any, guided: bool) -> None:
        self.scheduler, self.guided = scheduler, guided
        self.sigma_space = has_sigmas(scheduler)
        self.prediction_type = scheduler.config.get("prediction_type", "epsilon")
        self.x_t, self.after, self.eps, self.x0, self.x_in = [], [], [], [], []
        self.uncond, self.text, self.t, self.alpha_bar, self.sigma = [], [], [], [], []
        self.seconds, self.started, self.from_scheduler = [], 0.0, False
        scale, step = scheduler.scale_model_input, scheduler.step

        @functools.wraps(scale)
        def scale_model_input(sample, *args, **kwargs):
            self.started = time.perf_counter()
            return scale(sample, *args, **kwargs)

        @functools.wraps(step)  # keeps the signature: the pipeline inspects it for eta/generator
        def wrapped_step(model_output, timestep, sample, *args, return_dict=True, **kwargs):
            out = step(model_output, timestep, sample, *args, return_dict=True, **kwargs)
            self.on_scheduler_step(model_output, timestep, sample, out)
            return out if return_dict else out.to_tuple()

        scheduler.scale_model_input, scheduler.step = scale_model_input, wrapped_step

    def unwrap(self) -> None:
        """Drop the wrappers (breaks the recorder <-> scheduler reference cycle)."""
        for name in ("scale_model_input", "step"):
            vars(self.scheduler).pop(name, None)

    def unet_hook(self, module, args, kwargs, output) -> None:
        """UNet input and raw output; with guidance the batch is [uncond x K, text x K]."""
        x_in = args[0] if args else kwargs["sample"]  # (K or 2K, C, h, w)
        out = output[0] if isinstance(output, tuple) else output.sample  # (K or 2K, C, h, w)
        k = len(out) // 2 if self.guided else len(out)
        self.x_in.append(_cpu(x_in[:k]))  # (K, C, h, w)
        if self.guided:
            uncond, text = out.chunk(2)  # (K, C, h, w) each
            self.uncond.append(_cpu(uncond))
            self.text.append(_cpu(text))

    def on_scheduler_step(self, eps, timestep, sample, out) -> None:
        """x_t, the guided ε, ᾱ_t (σ_t) and x_0 of this step, for the whole batch."""
        self.x_t.append(_cpu(sample))  # (K, C, h, w)
        self.eps.append(_cpu(eps))  # (K, C, h, w)
        self.t.append(float(timestep))
        if self.sigma_space:
            sigma = float(self.scheduler.sigmas[self.scheduler.step_index - 1])
            self.sigma.append(sigma)
            self.alpha_bar.append(1.0 / (1.0 + sigma**2))
        else:
            self.alpha_bar.append(float(self.scheduler.alphas_cumprod[int(timestep)]))
        x0 = getattr(out, "pred_original_sample", None)
        if x0 is not None:
            self.x0.append(_cpu(x0))  # (K, C, h, w)
            self.from_scheduler = True
        else:
            a = torch.tensor(self.alpha_bar[-1])
            self.x0.append(predict_x0(self.x_in[-1], self.eps[-1], a, self.prediction_type))

    def on_step_end(self, pipe, i, t, kw) -> dict:
        """`callback_on_step_end`: x_{t-1} (K, C, h, w) and the step's wall time."""
        self.after.append(_cpu(kw["latents"]))
        self.seconds.append(time.perf_counter() - self.started)
        return {}

    def trace(self, i: int, **fields) -> Trace:
        """Item i of the batch as a Trace; `fields` gives the per-item non-tensor fields."""
        pick = lambda xs: torch.stack([x[i] for x in xs])  # noqa: E731  (T, C, h, w)
        eps = pick(self.eps)  # (T, C, h, w)
        latents = torch.stack([self.x_t[0][i], *(a[i] for a in self.after)])  # (T+1, C, h, w)
        return Trace(
            timesteps=torch.tensor(self.t),
            alphas_cumprod=torch.tensor(self.alpha_bar),
            sigmas=torch.tensor(self.sigma) if self.sigma_space else None,
            latents=latents,
            model_input=pick(self.x_in),
            noise_pred=eps,
            noise_uncond=pick(self.uncond) if self.guided else None,
            noise_text=pick(self.text) if self.guided else None,
            x0_pred=pick(self.x0),
            step_coeffs=step_coefficients(latents[:-1], eps, latents[1:]),
            seconds=list(self.seconds),
            **fields,
        )


def run_batch(
    pipe: StableDiffusionPipeline,
    prompt_embeds: torch.Tensor,
    negative_embeds: torch.Tensor | None,
    seeds: list[int],
    *,
    steps: int,
    guidance: float,
    scheduler: str = "ddim",
    settings: list[dict] | None = None,
    tokens: list[str] | None = None,
) -> list[Trace]:
    """One batched pipeline call over K items; returns K traces (image and decoder attached).

    `prompt_embeds` and `negative_embeds` are (K, L, D) (negative may be None without guidance);
    item i starts from the noise of `seeds[i]`. `settings[i]` is merged into item i's settings.
    """
    # 1. Check inputs
    k = len(seeds)
    if prompt_embeds.ndim != 3 or prompt_embeds.shape[0] != k:
        raise ValueError(f"prompt_embeds must be (K={k}, L, D), got {tuple(prompt_embeds.shape)}")
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    guided = guidance > 1 and pipe.unet.config.time_cond_proj_dim is None
    if guided and (negative_embeds is None or negative_embeds.shape != prompt_embeds.shape):
        raise ValueError("with guidance > 1, negative_embeds must have the shape of prompt_embeds")

    # 2. Starting noise and one advanced generator per item (see the module docstring)
    pairs = [starting_noise(pipe, s) for s in seeds]
    noise = torch.cat([n for n, _ in pairs])  # (K, C, h, w)
    generators = [g for _, g in pairs]

    # 3. A private pipeline copy with a fresh scheduler, and the recorder
    run = run_copy(pipe, scheduler, StableDiffusionPipeline)  # shares the weights only
    run.set_progress_bar_config(disable=True)
    fresh = run.scheduler
    rec = BatchRecorder(fresh, guided)

    # 4. The real pipeline call, hook removed whatever happens
    handle = pipe.unet.register_forward_hook(
        functools.partial(capture._route, owner=rec), with_kwargs=True
    )
    token = capture._CURRENT.set(rec)
    try:
        result = run(
            prompt_embeds=prompt_embeds.to(pipe.unet.device, pipe.unet.dtype),
            negative_prompt_embeds=(
                negative_embeds.to(pipe.unet.device, pipe.unet.dtype) if guided else None
            ),
            num_inference_steps=steps,
            guidance_scale=guidance,
            latents=noise,
            generator=generators,
            callback_on_step_end=rec.on_step_end,
        )
    finally:
        capture._CURRENT.reset(token)
        handle.remove()
        rec.unwrap()

    # 5. One Trace per item
    base = {
        "steps": steps,
        "guidance": float(guidance),
        "scheduler": scheduler,
        "mode": "txt2img",
        "strength": None,
        "model": pipe.name_or_path or None,
        "pipeline_class": type(pipe).__name__,
        "scheduler_class": type(fresh).__name__,
        "prediction_type": rec.prediction_type,
        "vae_scale_factor": int(run.vae_scale_factor),
        "height": int(noise.shape[-2] * run.vae_scale_factor),
        "width": int(noise.shape[-1] * run.vae_scale_factor),
        "steps_run": len(rec.after),
        "cancelled": False,
        "x0_source": "scheduler" if rec.from_scheduler else "formula",
        "batch": k,
    }
    factors, bias = dec.preview_factors_for(pipe)
    out = []
    for i in range(k):
        item = rec.trace(
            i,
            prompt_tokens=list(tokens or []),
            prompt_embeds=_cpu(prompt_embeds[i]),
            negative_embeds=_cpu(negative_embeds[i]) if guided else None,
            image=result.images[i],
            settings={**base, "seed": int(seeds[i]), **((settings or [{}] * k)[i])},
            preview_factors=factors,
            preview_bias=bias,
        )
        out.append(item.attach_decoder(pipe.vae))
    return out
