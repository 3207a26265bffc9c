"""Run K variants of one generation as ONE batched pipeline call, and record a `Trace` for each.

`capture.trace` runs one prompt string; the magnitude sweep and the seed grid need K runs that
differ only in their prompt embedding or their starting noise. Batching them is K times fewer
UNet calls' worth of overhead, and exactly as `pipe(prompt_embeds=..., latents=...)` documents:

  1. starting noise: for each item, `randn_tensor` from `torch.Generator("cpu").manual_seed(seed)`,
     the very draw `prepare_latents` makes in a plain run with that seed, so item i starts where
     the plain run with seeds[i] starts; the pipeline scales it by `init_noise_sigma` itself;
  2. one generator per item, already advanced past that draw, so stochastic samplers (DDPM,
     Euler-ancestral) add the same per-step noise to item i as the plain run would;
  3. the pipeline runs with `prompt_embeds`/`negative_prompt_embeds` (K, L, D) and `latents`
     (K, C, h, w);
  4. the hook API of `explorer.engine.recorder` records the whole batch (concurrent traces on
     the shared UNet never see these calls), and `Recorder.build(item=i)` slices one `Trace`
     per item.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from diffusers import StableDiffusionPipeline
from diffusers.utils.torch_utils import randn_tensor

from explorer.engine import capture, threads
from explorer.engine import decode as dec
from explorer.engine.models import image_size
from explorer.engine.recorder import Recorder, recording, stop_requested
from explorer.engine.tracefile import Trace

WIDE_BATCH = 4  # items from which a batch is worth every core


def latent_shape(pipe: Any, height: int | None = None, width: int | None = None) -> tuple:
    """(1, C, h, w) of one starting latent, with the pipeline's default size when not given."""
    default_height, default_width = image_size(pipe)
    scale = int(pipe.vae_scale_factor)
    height, width = height or default_height, width or default_width
    return (1, pipe.unet.config.in_channels, int(height) // scale, int(width) // scale)


def starting_noise(
    pipe: Any, seed: int, height: int | None = None, width: int | None = None
) -> tuple[torch.Tensor, torch.Generator]:
    """The noise a plain run with `seed` starts from, (1, C, h, w) unscaled, and its advanced
    generator."""
    gen = torch.Generator("cpu").manual_seed(int(seed))
    shape = latent_shape(pipe, height, width)
    noise = randn_tensor(shape, generator=gen, device=pipe.unet.device, dtype=pipe.unet.dtype)
    return noise, gen  # (1, C, h, w)


def _check_inputs(
    prompt_embeds: torch.Tensor,
    negative_embeds: torch.Tensor | None,
    k: int,
    steps: int,
    guided: bool,
) -> None:
    """`ValueError` unless the embeddings are (K, L, D), both alike with guidance, and steps are
    a positive integer."""
    if prompt_embeds.ndim != 3 or prompt_embeds.shape[0] != k:
        raise ValueError(f"prompt_embeds must be (K={k}, L, D), got {tuple(prompt_embeds.shape)}")
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    if guided and (negative_embeds is None or negative_embeds.shape != prompt_embeds.shape):
        raise ValueError("with guidance > 1, negative_embeds must have the shape of prompt_embeds")


def _batch_settings(
    pipe: Any, run: Any, rec: Recorder, shape: tuple, scheduler: str, steps: int, guidance: float
) -> dict:
    """The settings every item of a batch of latents of `shape` (K, C, h, w) shares, once the
    call has run."""
    scale = run.vae_scale_factor
    return {
        "mode": "txt2img",
        "strength": None,
        **capture.run_settings(pipe, run, scheduler, steps, guidance),
        "height": int(shape[-2] * scale),
        "width": int(shape[-1] * scale),
        "steps_run": len(rec.after),
        "cancelled": bool(run.interrupt),
        "x0_source": rec.x0_source,
        "batch": int(shape[0]),
    }


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
    should_stop: Callable[[], bool] | None = None,
) -> list[Trace]:
    """One batched pipeline call over K items; returns K traces (image and decoder attached).

    `prompt_embeds` and `negative_embeds` are (K, L, D) (negative may be None without guidance);
    item i starts from the noise of `seeds[i]`. `settings[i]` is merged into item i's settings.
    `should_stop()` returning True (or `recorder.stop_when`) ends the call at its next step.
    """
    # 1. Check inputs
    k = len(seeds)
    guided = guidance > 1 and pipe.unet.config.time_cond_proj_dim is None
    _check_inputs(prompt_embeds, negative_embeds, k, steps, guided)

    # 2. Starting noise and one advanced generator per item (see the module docstring)
    pairs = [starting_noise(pipe, s) for s in seeds]
    noise = torch.cat([n for n, _ in pairs])  # (K, C, h, w)
    generators = [g for _, g in pairs]

    # 3. A private pipeline copy with a fresh scheduler, and the recorder
    run = capture.private_pipeline(pipe, scheduler)
    run.set_progress_bar_config(disable=True)
    rec = Recorder(run.scheduler, guided, dec.preview_factors_for(pipe))

    def on_step_end(p, i, t, kw):
        rec.on_step_end(kw["latents"])  # (K, C, h, w)
        if (should_stop is not None and should_stop()) or stop_requested():
            p._interrupt = True  # the copy's flag; the loop skips the remaining steps
        return {}

    # 4. The real pipeline call, recorded through the recorder's hook API; a big batch alone on
    #    the machine gets every core (see explorer.engine.threads)
    cores = threads.wide() if k >= WIDE_BATCH else threads.tracked()
    with cores, recording(pipe, rec):
        result = run(
            prompt_embeds=prompt_embeds.to(pipe.unet.device, pipe.unet.dtype),
            negative_prompt_embeds=(
                negative_embeds.to(pipe.unet.device, pipe.unet.dtype) if guided else None
            ),
            num_inference_steps=steps,
            guidance_scale=guidance,
            latents=noise,
            generator=generators,
            callback_on_step_end=on_step_end,
        )

    # 5. One Trace per item
    base = _batch_settings(pipe, run, rec, noise.shape, scheduler, steps, guidance)
    extra = settings or [{}] * k
    return [
        rec.build(
            list(tokens or []),
            {**base, "seed": int(seeds[i]), **extra[i]},
            item=i,
            image=result.images[i],
        ).attach_decoder(pipe.vae)
        for i in range(k)
    ]
