"""Run a real diffusers Stable Diffusion pipeline and record every step in a `Trace`.

Nothing here re-implements the denoising loop: the pipeline's own `__call__` runs, on a shallow
copy of the pipeline that shares its weights but holds a fresh scheduler. Three public hooks
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
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import json
import platform
import time
from collections.abc import Callable
from typing import Any

import diffusers
import numpy as np
import torch
import transformers
from diffusers import StableDiffusionImg2ImgPipeline, StableDiffusionPipeline
from PIL import Image

from explorer import decode as dec
from explorer.attention import capture_attention
from explorer.schedulers import has_sigmas, make_scheduler
from explorer.tracefile import Trace

_CURRENT: contextvars.ContextVar[_Recorder | None] = contextvars.ContextVar(
    "explorer_trace_recorder", default=None
)


def _cpu(t: torch.Tensor) -> torch.Tensor:
    """A detached float32 CPU copy (never a view of a tensor the pipeline may reuse)."""
    return t.detach().to("cpu", torch.float32, copy=True)


def predict_x0(
    x_in: torch.Tensor, model_output: torch.Tensor, alpha_bar: torch.Tensor, prediction_type: str
) -> torch.Tensor:
    """x_0 from the UNet input x_in (after `scale_model_input`) and its output.

    epsilon:       x_0 = (x_in - sqrt(1-ᾱ)·ε) / sqrt(ᾱ)
    v_prediction:  x_0 = sqrt(ᾱ)·x_in - sqrt(1-ᾱ)·v
    sample:        x_0 = the output itself
    `alpha_bar` broadcasts against the tensors, e.g. (T, 1, 1, 1) for (T, C, h, w).
    """
    a, s = alpha_bar.sqrt(), (1 - alpha_bar).sqrt()
    if prediction_type == "epsilon":
        return (x_in - s * model_output) / a
    if prediction_type == "v_prediction":
        return a * x_in - s * model_output
    if prediction_type == "sample":
        return model_output
    raise ValueError(f"unsupported prediction_type {prediction_type!r}")


def step_coefficients(x_t: torch.Tensor, eps: torch.Tensor, x_next: torch.Tensor) -> torch.Tensor:
    """Per-step (a, b) with x_{t-1} ≈ a·x_t + b·ε by least squares: (T, ...) -> (T, 2)."""
    design = torch.stack([x_t.flatten(1), eps.flatten(1)], dim=2).double()  # (T, n, 2)
    target = x_next.flatten(1).double()[..., None]  # (T, n, 1)
    return torch.linalg.lstsq(design, target).solution[..., 0].float()  # (T, 2)


class _Recorder:
    """Collects one run, step by step; fed by the hooks listed in the module docstring."""

    def __init__(self, scheduler: Any, guided: bool, preview: int, factors: tuple) -> None:
        """`preview`: 0 for none, else the upscale factor of the per-step x_0 previews."""
        self.scheduler, self.guided, self.preview, self.factors = (
            scheduler,
            guided,
            preview,
            factors,
        )
        self.sigma_space = has_sigmas(scheduler)
        self.prediction_type = scheduler.config.get("prediction_type", "epsilon")
        self.x_t, self.after, self.eps, self.x0, self.x_in = [], [], [], [], []
        self.uncond, self.text, self.t, self.alpha_bar, self.sigma = [], [], [], [], []
        self.seconds, self.previews, self.x0_sources = [], [], set()
        self.embeds: torch.Tensor | None = None  # (1 or 2, L, D)
        self.init_latents: torch.Tensor | None = None
        self.started = 0.0
        self._wrap_scheduler()

    def _wrap_scheduler(self) -> None:
        """7a, 7c and img2img's add_noise, on this run's private scheduler only."""
        sched = self.scheduler
        scale, step, add_noise = sched.scale_model_input, sched.step, sched.add_noise

        @functools.wraps(scale)
        def scale_model_input(sample, *args, **kwargs):
            self.started = time.perf_counter()
            return scale(sample, *args, **kwargs)

        @functools.wraps(step)  # keeps the signature: the pipeline inspects it for eta/generator
        def wrapped_step(model_output, timestep, sample, *args, return_dict=True, **kwargs):
            out = step(model_output, timestep, sample, *args, return_dict=True, **kwargs)
            self._on_scheduler_step(model_output, timestep, sample, out)
            return out if return_dict else out.to_tuple()

        @functools.wraps(add_noise)
        def wrapped_add_noise(original_samples, noise, timesteps):
            self.init_latents = _cpu(original_samples[0])  # (C, h, w) clean init latent
            return add_noise(original_samples, noise, timesteps)

        sched.scale_model_input, sched.step, sched.add_noise = (
            scale_model_input,
            wrapped_step,
            wrapped_add_noise,
        )

    def unwrap_scheduler(self) -> None:
        """Drop the wrappers: breaks the recorder <-> scheduler cycle so memory frees at once."""
        for name in ("scale_model_input", "step", "add_noise"):
            vars(self.scheduler).pop(name, None)

    def unet_hook(self, module, args, kwargs, output) -> None:
        """7b. Record the UNet input and raw output (batch [uncond, text] with guidance)."""
        x_in = args[0] if args else kwargs["sample"]  # (B, C, h, w)
        out = output[0] if isinstance(output, tuple) else output.sample  # (B, C, h, w)
        self.x_in.append(_cpu(x_in[0]))  # (C, h, w); both halves are equal
        if self.guided:
            uncond, text = out.chunk(2)  # (1, C, h, w) each
            self.uncond.append(_cpu(uncond[0]))
            self.text.append(_cpu(text[0]))
        if self.embeds is None:
            states = kwargs.get("encoder_hidden_states", args[2] if len(args) > 2 else None)
            self.embeds = _cpu(states)  # (B, L, D)

    def _on_scheduler_step(self, eps, timestep, sample, out) -> None:
        """7c. x_t, the guided ε, ᾱ_t (σ_t) and x_0 of this step."""
        self.x_t.append(_cpu(sample[0]))  # (C, h, w)
        self.eps.append(_cpu(eps[0]))  # (C, h, w)
        self.t.append(float(timestep))
        if self.sigma_space:
            sigma = float(self.scheduler.sigmas[self.scheduler.step_index - 1])
            self.sigma.append(sigma)
            self.alpha_bar.append(1.0 / (1.0 + sigma**2))
        else:
            self.alpha_bar.append(float(self.scheduler.alphas_cumprod[int(timestep)]))
        x0 = getattr(out, "pred_original_sample", None)
        if x0 is not None:
            self.x0.append(_cpu(x0[0]))
            self.x0_sources.add("scheduler")
        else:
            alpha_bar = torch.tensor(self.alpha_bar[-1])
            self.x0.append(predict_x0(self.x_in[-1], self.eps[-1], alpha_bar, self.prediction_type))
            self.x0_sources.add("formula")
        if self.preview:
            self.previews += dec.linear_preview(self.x0[-1][None], *self.factors, self.preview)

    def on_step_end(self, latents: torch.Tensor) -> None:
        """7d. Record x_{t-1} and the step's wall time."""
        self.after.append(_cpu(latents[0]))  # (C, h, w)
        self.seconds.append(time.perf_counter() - self.started)

    def build(self, prompt_tokens: list[str], settings: dict, **extra) -> Trace:
        """The (possibly partial) record as a Trace of the T steps completed so far."""
        T = len(self.after)
        eps = torch.stack(self.eps[:T])  # (T, C, h, w)
        latents = torch.stack([self.x_t[0], *self.after])  # (T+1, C, h, w)
        embeds = self.embeds  # (B, L, D)
        return Trace(
            timesteps=torch.tensor(self.t[:T]),
            alphas_cumprod=torch.tensor(self.alpha_bar[:T]),
            sigmas=torch.tensor(self.sigma[:T]) if self.sigma_space else None,
            latents=latents,
            model_input=torch.stack(self.x_in[:T]),
            noise_pred=eps,
            noise_uncond=torch.stack(self.uncond[:T]) if self.guided else None,
            noise_text=torch.stack(self.text[:T]) if self.guided else None,
            x0_pred=torch.stack(self.x0[:T]),
            step_coeffs=step_coefficients(torch.stack(self.x_t[:T]), eps, latents[1:]),
            prompt_tokens=prompt_tokens,
            prompt_embeds=embeds[-1],
            negative_embeds=embeds[0] if self.guided else None,
            settings=settings,
            seconds=self.seconds[:T],
            preview_factors=self.factors[0],
            preview_bias=self.factors[1],
            init_latents=self.init_latents,
            previews=list(self.previews[:T]),
            **extra,
        )


def _route(module, args, *rest, owner: _Recorder) -> None:
    """The UNet forward hook: pass the call to `owner` only if this thread is tracing for it.

    `rest` is (kwargs, output), or just (output,) while another thread is removing its hook: torch
    drops a hook's with_kwargs flag before the hook itself, so a forward running meanwhile can call
    that hook without kwargs. Such a call belongs to the other thread's trace and is ignored.
    """
    if _CURRENT.get() is owner and len(rest) == 2:
        owner.unet_hook(module, args, *rest)


def _jsonable(value: Any) -> Any:
    """A JSON-safe copy of a config value (numpy, tuples, dtypes -> lists, numbers, strings)."""

    def default(o):
        return o.tolist() if isinstance(o, np.ndarray | np.generic | torch.Tensor) else str(o)

    return json.loads(json.dumps(value, default=default))


def prompt_tokens(pipe: Any, prompt: str) -> list[str]:
    """The token strings the text encoder sees for `prompt`, padding and truncation included."""
    tok = pipe.tokenizer
    ids = tok(prompt, padding="max_length", max_length=tok.model_max_length, truncation=True)
    return [str(t) for t in tok.convert_ids_to_tokens(ids["input_ids"])]


def trace(
    pipe: StableDiffusionPipeline,
    prompt: str,
    *,
    negative_prompt: str = "",
    steps: int = 25,
    guidance: float = 7.5,
    seed: int = 0,
    scheduler: str = "ddim",
    height: int | None = None,
    width: int | None = None,
    image: Image.Image | None = None,
    strength: float = 0.6,
    on_step: Callable[[Trace], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    preview: bool = False,
    attention: bool = False,
) -> Trace:
    """Run `pipe` once, exactly as `pipe(...)` would, and return the record of every step.

    The image equals `pipe(prompt, negative_prompt=..., num_inference_steps=steps,
    guidance_scale=guidance, generator=torch.Generator("cpu").manual_seed(seed))` with the named
    scheduler built from `pipe.scheduler.config`; `pipe` itself is not modified. With `image`
    the run is img2img (`strength` of the schedule, int(steps * strength) steps). `on_step`
    gets the partial Trace after every step; `should_stop()` returning True cancels between
    steps (the trace then holds the steps run, and the image decoded from the last latent).
    `preview=True` also makes a linear preview of each step's x_0 (`Trace.previews`).
    `attention=True` also records cross-attention maps (`Trace.attention`, in the final record
    only; see `explorer.attention`); the image is the same.
    """
    # 1. Check inputs
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

    # 2. A shallow copy of the pipeline with a fresh scheduler (shares the weights)
    fresh = make_scheduler(pipe, scheduler)
    cls = StableDiffusionImg2ImgPipeline if image is not None else StableDiffusionPipeline
    run = cls(**{**pipe.components, "scheduler": fresh}, requires_safety_checker=False)
    run.set_progress_bar_config(**getattr(pipe, "_progress_bar_config", {}))
    guided = guidance > 1 and pipe.unet.config.time_cond_proj_dim is None

    # 3. Settings and tokens, known before the run
    settings = {
        "prompt": prompt,
        "negative_prompt": negative_prompt,
        "steps": steps,
        "guidance": float(guidance),
        "seed": seed,
        "scheduler": scheduler,
        "mode": "img2img" if image is not None else "txt2img",
        "strength": float(strength) if image is not None else None,
        "model": pipe.name_or_path or None,
        "pipeline_class": type(pipe).__name__,
        "scheduler_class": type(fresh).__name__,
        "scheduler_config": _jsonable(dict(fresh.config)),
        "prediction_type": fresh.config.get("prediction_type", "epsilon"),
        "vae_scale_factor": int(run.vae_scale_factor),
        "device": str(pipe.unet.device),
        "dtype": str(pipe.unet.dtype),
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "diffusers": diffusers.__version__,
            "transformers": transformers.__version__,
        },
    }
    tokens = prompt_tokens(pipe, prompt)
    scale = int(run.vae_scale_factor) if preview else 0
    rec = _Recorder(fresh, guided, scale, dec.preview_factors_for(pipe))

    # 4. The step callback: record x_{t-1}, report, maybe cancel
    def on_step_end(p, i, t, kw):
        rec.on_step_end(kw["latents"])
        if on_step is not None:
            on_step(rec.build(tokens, dict(settings), image=None))
        if should_stop is not None and should_stop():
            p._interrupt = True  # the copy's flag; the loop skips the remaining steps
        return {}

    # 5. Run the real pipeline with the UNet hook (and attention taps) in place, removing them
    #    whatever happens
    call = {"image": image, "strength": strength} if image is not None else {}
    if image is None:
        call.update(height=height, width=width)
    handle = pipe.unet.register_forward_hook(functools.partial(_route, owner=rec), with_kwargs=True)
    token = _CURRENT.set(rec)
    maps = capture_attention(pipe.unet, guided) if attention else contextlib.nullcontext()
    try:
        with maps as collector:
            result = run(
                prompt,
                negative_prompt=negative_prompt,
                num_inference_steps=steps,
                guidance_scale=guidance,
                generator=torch.Generator("cpu").manual_seed(seed),
                callback_on_step_end=on_step_end,
                **call,
            )
    finally:
        _CURRENT.reset(token)
        handle.remove()
        rec.unwrap_scheduler()

    # 6. Assemble the record
    h, w = rec.x_t[0].shape[-2:]
    settings.update(
        height=int(h * run.vae_scale_factor),
        width=int(w * run.vae_scale_factor),
        steps_run=len(rec.after),
        cancelled=bool(run.interrupt),
        x0_source="+".join(sorted(rec.x0_sources)),
    )
    init = image.convert("RGB") if image is not None else None
    extra = {"attention": collector.maps(len(rec.after))} if attention else {}
    out = rec.build(tokens, settings, image=result.images[0], init_image=init, **extra)
    return out.attach_decoder(pipe.vae)
