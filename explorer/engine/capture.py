"""Run a real diffusers Stable Diffusion pipeline and record every step in a `Trace`.

SD 1.x/2.x, SDXL and SD3 (rectified flow) pipelines all run through `trace`; what differs
between them (the private copy, the recorder, the tokens, the settings) is in
`explorer.engine.kinds`, and a flow run records in σ and v (`explorer.engine.flow`).

Nothing here re-implements the denoising loop: the pipeline's own `__call__` runs, on a shallow
copy of the pipeline that shares its weights but holds a fresh scheduler and tokenizer
(`models.run_copy`). Three public hooks
watch it (numbered as in the loop of `StableDiffusionPipeline.__call__`, step 7):

  7a. `scheduler.scale_model_input` (wrapped, on our private scheduler): a step starts;
  7b. a UNet forward hook: the UNet input x_in and its raw output, split into
      (uncond, text) with guidance -- the only place those two exist;
  7c. `scheduler.step` (wrapped): x_t, the guided noise ε it used, and x_0 when the scheduler
      gives `pred_original_sample`; it is still called exactly once per step;
  7d. `callback_on_step_end`: x_{t-1}, live updates (`on_step`) and cancelling (`should_stop`).

The UNet is shared with the caller's pipeline (and with other traces running in other threads),
so the forward hook records only when the thread running it is the trace that added it: a
context variable names the current recorder. The hook is removed in `finally`.

The hook API (`explorer.engine.recorder`, re-exported here: `Recorder`, `recording`,
`stop_when`) serves any code that makes its own pipeline call: `batch.run_batch` records its
batched call with it, on the copy `private_pipeline(pipe, scheduler)` gives, with the settings
`run_settings` lists.
"""

from __future__ import annotations

import contextlib
import json
import platform
from collections.abc import Callable
from typing import Any

import diffusers
import numpy as np
import torch
import transformers
from diffusers import StableDiffusionPipeline
from PIL import Image

from explorer.engine import decode as dec
from explorer.engine import kinds, threads
from explorer.engine.attention_taps import capture_attention
from explorer.engine.kinds import private_pipeline, prompt_tokens  # noqa: F401 - re-exported
from explorer.engine.recorder import (  # noqa: F401 - re-exported: the hook API, by capture's name
    Recorder,
    denoiser,
    predict_x0,
    recording,
    step_coefficients,
    stop_requested,
    stop_when,
)
from explorer.engine.tracefile import Trace


def run_settings(pipe: Any, run: Any, scheduler: str, steps: int, guidance: float) -> dict:
    """The settings every trace records about the model, the scheduler and the libraries."""
    fresh = run.scheduler
    param = next(denoiser(pipe).parameters())  # its device and dtype, without a module walk
    return {
        "steps": steps,
        "guidance": float(guidance),
        "scheduler": scheduler,
        "model": pipe.name_or_path or None,
        "pipeline_class": type(pipe).__name__,
        "scheduler_class": type(fresh).__name__,
        "scheduler_config": _jsonable(dict(fresh.config)),
        "prediction_type": fresh.config.get("prediction_type", "epsilon"),
        "vae_scale_factor": int(run.vae_scale_factor),
        "device": str(param.device),
        "dtype": str(param.dtype),
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "diffusers": diffusers.__version__,
            "transformers": transformers.__version__,
        },
        **kinds.kind_settings(pipe),  # the objective; SDXL's and SD3's text encoders
    }


def _jsonable(value: Any) -> Any:
    """A JSON-safe copy of a config value (numpy, tuples, dtypes -> lists, numbers, strings)."""

    def default(o):
        return o.tolist() if isinstance(o, np.ndarray | np.generic | torch.Tensor) else str(o)

    return json.loads(json.dumps(value, default=default))


def trace(
    pipe: StableDiffusionPipeline,
    prompt: str,
    *,
    negative_prompt: str = "",
    steps: int = 25,
    guidance: float = 7.5,
    seed: int = 0,
    scheduler: str | None = None,
    height: int | None = None,
    width: int | None = None,
    image: Image.Image | None = None,
    strength: float = 0.6,
    on_step: Callable[[Trace], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    preview: bool = False,
    attention: bool = False,
    spacing: str | None = None,
) -> Trace:
    """Run `pipe` (SD 1.x/2.x, SDXL, SD3) once, exactly as `pipe(...)` would; record every step.

    The image equals `pipe(prompt, negative_prompt=..., num_inference_steps=steps,
    guidance_scale=guidance, generator=torch.Generator("cpu").manual_seed(seed))` with the named
    scheduler built from `pipe.scheduler.config` (None: "ddim"; "flow_euler" for a flow model;
    an empty negative prompt goes as None); `pipe` is not modified. With `image` the run is
    img2img (`strength` of the schedule, int(steps * strength) steps). `on_step` gets the
    partial Trace after every step; `should_stop()` returning True cancels between steps (the
    trace then holds the steps run, and the image decoded from the last latent). `preview=True`
    also makes a linear preview of each step's x_0 (`Trace.previews`). `attention=True` also
    records cross-attention maps (`Trace.attention`, in the final record only; see
    `explorer.engine.attention_taps`); the image is the same. `spacing` ("leading", "trailing",
    "linspace") overrides the config's `timestep_spacing`; a flow model's: `flow.spacing_sigmas`.
    """
    # 1. Check inputs
    _check_inputs(prompt, negative_prompt, steps, image, height, width, strength)
    kinds.check_supported(pipe, image is not None, spacing, attention)

    # 2. A shallow copy of the pipeline with a fresh scheduler (shares the weights)
    scheduler = kinds.scheduler_name(pipe, scheduler)
    run = private_pipeline(pipe, scheduler, img2img=image is not None, spacing=spacing)
    guided = kinds.is_guided(pipe, guidance)

    # 3. Settings and tokens, known before the run
    settings = {
        "prompt": prompt,
        "negative_prompt": negative_prompt,
        "seed": seed,
        "mode": "img2img" if image is not None else "txt2img",
        "strength": float(strength) if image is not None else None,
        **run_settings(pipe, run, scheduler, steps, guidance),
    }
    tokens = prompt_tokens(run, prompt)
    scale = int(run.vae_scale_factor) if preview else 0
    rec = kinds.make_recorder(run, guided, dec.preview_factors_for(pipe), scale)

    # 4. The step callback: record x_{t-1}, report, maybe cancel
    on_step_end = _step_callback(rec, tokens, settings, on_step, should_stop)

    # 5. Run the real pipeline with the UNet hook (and attention taps) in place
    sizes = {"height": height, "width": width, **kinds.call_arguments(pipe, spacing, steps)}
    call = {"image": image, "strength": strength} if image is not None else sizes  # σ grid: flow
    maps = capture_attention(denoiser(pipe), guided) if attention else contextlib.nullcontext()
    with threads.tracked(), recording(pipe, rec), maps as collector:
        result = run(
            prompt,
            negative_prompt=negative_prompt or None,  # SDXL zeroes a missing one, as pipe() does
            num_inference_steps=steps,
            guidance_scale=guidance,
            generator=torch.Generator("cpu").manual_seed(seed),
            callback_on_step_end=on_step_end,
            **call,
        )

    # 6. Assemble the record
    settings.update(_run_facts(rec, run))
    init = image.convert("RGB") if image is not None else None
    extra = {"attention": collector.maps(len(rec.after))} if attention else {}
    out = rec.build(tokens, settings, image=result.images[0], init_image=init, **extra)
    return out.attach_decoder(pipe.vae)


def _check_inputs(
    prompt: Any,
    negative_prompt: Any,
    steps: Any,
    image: Any,
    height: int | None,
    width: int | None,
    strength: float,
) -> None:
    """Step 1 of `trace`: `ValueError` for inputs the pipeline would fail on (or misread)."""
    if not isinstance(prompt, str) or not isinstance(negative_prompt, str):
        raise ValueError("prompt and negative_prompt must be strings")
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    if image is not None:
        if not isinstance(image, Image.Image):
            raise ValueError("image must be a PIL image")
        if height is not None or width is not None:
            raise ValueError("img2img takes its size from the image: resize it, not height/width")
        if not 0 < strength <= 1 or int(steps * strength) < 1:
            raise ValueError(f"strength {strength} with {steps} steps runs no step")


def _step_callback(
    rec: Recorder,
    tokens: list[str],
    settings: dict,
    on_step: Callable[[Trace], None] | None,
    should_stop: Callable[[], bool] | None,
) -> Callable:
    """Step 4 of `trace`: the pipeline's `callback_on_step_end`. It records x_{t-1}, gives
    `on_step` the partial Trace, and cancels when `should_stop()` or `stop_when` says so."""

    def on_step_end(p, i, t, kw):
        rec.on_step_end(kw["latents"])
        if on_step is not None:
            on_step(rec.build(tokens, dict(settings), image=None))
        if (should_stop is not None and should_stop()) or stop_requested():
            p._interrupt = True  # the copy's flag; the loop skips the remaining steps
        return {}

    return on_step_end


def _run_facts(rec: Recorder, run: Any) -> dict:
    """Step 6 of `trace`: the settings only the finished run knows (size, steps run, ...)."""
    h, w = rec.x_t[0].shape[-2:]  # (K, C, h, w)
    return {
        "height": int(h * run.vae_scale_factor),
        "width": int(w * run.vae_scale_factor),
        "steps_run": len(rec.after),
        "cancelled": bool(run.interrupt),
        "x0_source": rec.x0_source,
        **kinds.run_facts(run),  # a flow run's shift and σ schedule
    }
