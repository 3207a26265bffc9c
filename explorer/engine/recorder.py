"""The hook API: record what one pipeline call does, step by step, for one or K batch items.

`capture.trace` and `batch.run_batch` both record through it; any code that makes its own call
of a (private copy of a) diffusers SD pipeline can too (see `capture`'s module docstring for the
hooks, numbered as in `StableDiffusionPipeline.__call__`):

    rec = Recorder(copy.scheduler, guided, decode.preview_factors_for(pipe))
    with recording(pipe, rec):                 # routes the shared UNet's calls in this context
        copy(..., callback_on_step_end=lambda p, i, t, kw: rec.on_step_end(kw["latents"]) or {})
    trace_i = rec.build(tokens, settings, item=i)

`stop_when(fn)` cancels, between steps, every run recorded in its context (`stop_requested()`
is what the step callbacks check).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import time
from collections.abc import Callable, Iterator
from typing import Any

import torch

from explorer.engine import decode as dec
from explorer.engine.models import denoiser
from explorer.engine.schedulers import has_sigmas
from explorer.engine.tracefile import Trace

_CURRENT: contextvars.ContextVar[Recorder | None] = contextvars.ContextVar(
    "explorer_trace_recorder", default=None
)
_STOP: contextvars.ContextVar[Callable[[], bool] | None] = contextvars.ContextVar(
    "explorer_stop", default=None
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


class Recorder:
    """Collects one pipeline call step by step; fed by the hooks listed in the module docstring.

    Every tensor keeps the batch dimension K of the call (K = 1 for `trace`, K items for
    `batch.run_batch`); `build(..., item=i)` slices one item's `Trace`. Public: a recorder and
    `recording(pipe, recorder)` are the hook API for any code that runs the pipeline itself.
    """

    def __init__(self, scheduler: Any, guided: bool, factors: tuple, preview: int = 0) -> None:
        """`factors`: (preview factors, bias); `preview`: 0 for none, else the upscale factor
        of per-step linear previews of item 0's x_0."""
        self.scheduler, self.guided, self.factors, self.preview = (
            scheduler,
            guided,
            factors,
            preview,
        )
        self.sigma_space = has_sigmas(scheduler)
        self.prediction_type = scheduler.config.get("prediction_type", "epsilon")
        self.x_t, self.after, self.eps, self.x0, self.x_in = [], [], [], [], []  # (K, C, h, w) each
        self.uncond, self.text, self.t, self.alpha_bar, self.sigma = [], [], [], [], []
        self.seconds, self.previews, self.x0_sources = [], [], set()
        self.embeds: torch.Tensor | None = None  # (B, L, D), B = 2K with guidance: [uncond, text]
        self.pooled: torch.Tensor | None = None  # (B, P) SDXL's text_embeds, SD3's pooled vector
        self.time_ids: torch.Tensor | None = None  # (B, A) SDXL's added time ids
        self.init_latents: torch.Tensor | None = None  # (K, C, h, w), img2img only
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
            self.init_latents = _cpu(original_samples)  # (K, C, h, w) clean init latents
            return add_noise(original_samples, noise, timesteps)

        sched.scale_model_input, sched.step, sched.add_noise = (
            scale_model_input,
            wrapped_step,
            wrapped_add_noise,
        )

    def unwrap_scheduler(self) -> None:
        """Drop the wrappers: breaks the recorder <-> scheduler cycle so memory frees at once."""
        for name in self.WRAPPED:
            vars(self.scheduler).pop(name, None)

    WRAPPED = ("scale_model_input", "step", "add_noise")  # the scheduler methods wrapped

    def unet_hook(self, module, args, kwargs, output) -> None:
        """7b. Record the UNet input and raw output (batch [uncond x K, text x K] with guidance).

        The same hook serves SD3's transformer (its input is `hidden_states`)."""
        named = kwargs.get("sample", kwargs.get("hidden_states"))
        x_in = args[0] if args else named  # (B, C, h, w)
        out = output[0] if isinstance(output, tuple) else output.sample  # (B, C, h, w)
        k = len(out) // 2 if self.guided else len(out)
        self.x_in.append(_cpu(x_in[:k]))  # (K, C, h, w); both halves are equal
        if self.guided:
            uncond, text = out.chunk(2)  # (K, C, h, w) each
            self.uncond.append(_cpu(uncond))
            self.text.append(_cpu(text))
        if self.embeds is None:
            self.conditioning(kwargs, args)

    def conditioning(self, kwargs: dict, args: tuple = ()) -> None:
        """7b, first call: the text sequence, and the pooled vector and time ids if any."""
        states = kwargs.get("encoder_hidden_states", args[2] if len(args) > 2 else None)
        self.embeds = _cpu(states)  # (B, L, D)
        added = kwargs.get("added_cond_kwargs") or {}  # SDXL: text_embeds, time_ids
        pooled = kwargs.get("pooled_projections", added.get("text_embeds"))  # (B, P)
        ids = added.get("time_ids")  # (B, A)
        self.pooled = _cpu(pooled) if pooled is not None else None
        self.time_ids = _cpu(ids) if ids is not None else None

    def _on_scheduler_step(self, eps, timestep, sample, out) -> None:
        """7c. x_t, the guided ε, ᾱ_t (σ_t) and x_0 of this step, for the whole batch."""
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
            self.x0_sources.add("scheduler")
        else:
            alpha_bar = torch.tensor(self.alpha_bar[-1])
            self.x0.append(predict_x0(self.x_in[-1], self.eps[-1], alpha_bar, self.prediction_type))
            self.x0_sources.add("formula")
        if self.preview:
            self.previews += dec.linear_preview(self.x0[-1][:1], *self.factors, self.preview)

    def on_step_end(self, latents: torch.Tensor) -> None:
        """7d. Record x_{t-1} (K, C, h, w) and the step's wall time."""
        self.after.append(_cpu(latents))
        self.seconds.append(time.perf_counter() - self.started)

    @property
    def x0_source(self) -> str:
        """Where x_0 came from: "scheduler", "formula" or both joined by "+"."""
        return "+".join(sorted(self.x0_sources))

    def build(self, prompt_tokens: list[str], settings: dict, item: int = 0, **extra) -> Trace:
        """Item `item` of the (possibly partial) record as a Trace of the T steps completed."""
        T = len(self.after)
        pick = lambda xs: torch.stack([x[item] for x in xs[:T]])  # noqa: E731  (T, C, h, w)
        eps = pick(self.eps)  # (T, C, h, w)
        latents = torch.stack([self.x_t[0][item], *(a[item] for a in self.after)])  # (T+1, C, h, w)
        k = len(self.x_t[0])
        embeds = self.embeds  # (B, L, D)
        init = self.init_latents
        text = k + item if self.guided else item  # the text half's row in a [uncond, text] batch
        own = lambda x: x[text] if x is not None else None  # noqa: E731
        neg = lambda x: x[item] if x is not None and self.guided else None  # noqa: E731
        return Trace(
            timesteps=torch.tensor(self.t[:T]),
            alphas_cumprod=torch.tensor(self.alpha_bar[:T]),
            sigmas=torch.tensor(self.sigma[:T]) if self.sigma_space else None,
            latents=latents,
            model_input=pick(self.x_in),
            noise_pred=eps,
            noise_uncond=pick(self.uncond) if self.guided else None,
            noise_text=pick(self.text) if self.guided else None,
            x0_pred=pick(self.x0),
            step_coeffs=step_coefficients(latents[:-1], eps, latents[1:]),
            prompt_tokens=prompt_tokens,
            prompt_embeds=embeds[text],
            negative_embeds=neg(embeds),
            pooled_embeds=own(self.pooled),
            negative_pooled_embeds=neg(self.pooled),
            time_ids=own(self.time_ids),
            settings=settings,
            seconds=self.seconds[:T],
            preview_factors=self.factors[0],
            preview_bias=self.factors[1],
            init_latents=init[item] if init is not None else None,
            previews=list(self.previews[:T]) if item == 0 else [],
            **extra,
        )


def _route(module, args, *rest, owner: Recorder) -> None:
    """The UNet forward hook: pass the call to `owner` only if this thread is tracing for it.

    `rest` is (kwargs, output), or just (output,) while another thread is removing its hook: torch
    drops a hook's with_kwargs flag before the hook itself, so a forward running meanwhile can call
    that hook without kwargs. Such a call belongs to the other thread's trace and is ignored.
    """
    if _CURRENT.get() is owner and len(rest) == 2:
        owner.unet_hook(module, args, *rest)


@contextlib.contextmanager
def recording(pipe: Any, recorder: Recorder) -> Iterator[Recorder]:
    """While the block runs, the shared `pipe.unet`'s (or transformer's) calls made in this
    context feed `recorder`.

    Other threads tracing on the same UNet never see these calls, nor this one theirs. On exit the
    hook is removed and the recorder's scheduler wrappers are dropped, whatever happened.
    """
    handle = denoiser(pipe).register_forward_hook(
        functools.partial(_route, owner=recorder), with_kwargs=True
    )
    token = _CURRENT.set(recorder)
    try:
        yield recorder
    finally:
        _CURRENT.reset(token)
        handle.remove()
        recorder.unwrap_scheduler()


@contextlib.contextmanager
def stop_when(should_stop: Callable[[], bool]) -> Iterator[None]:
    """Runs traced in this context (`trace`, `batch.run_batch`) stop at their next step once
    `should_stop()` is True: how a caller cancels a whole experiment of many runs."""
    token = _STOP.set(should_stop)
    try:
        yield
    finally:
        _STOP.reset(token)


def stop_requested() -> bool:
    """True when the context's `stop_when` condition holds."""
    check = _STOP.get()
    return check is not None and bool(check())
