"""The three kinds of pipeline `capture.trace` runs, and everything that differs between them.

    kind    pipeline class                     denoiser        objective   text it conditions on
    "sd"    StableDiffusionPipeline (1.x/2.x)  UNet            epsilon     one CLIP tower (L, D)
    "sdxl"  StableDiffusionXLPipeline          UNet            epsilon     two CLIP towers' states
                                                                           side by side (L, D1+D2),
                                                                           a pooled vector, time ids
    "flow"  StableDiffusion3Pipeline           SD3 transformer flow        two CLIP towers and T5
                                                                           in one sequence, pooled

`trace` itself is one function for all three: the pipeline's own `__call__` runs on a private
copy (`private_pipeline`: shared weights, a fresh scheduler, private tokenizers), watched by the
same hooks; this module says, per kind, how to make that copy, which recorder listens (flow's
speaks in σ and v: `explorer.engine.flow`), which tokens the text sequence holds and what the
settings add.
"""

from __future__ import annotations

import copy
import functools
import inspect
from typing import Any

from diffusers import (
    StableDiffusion3Pipeline,
    StableDiffusionImg2ImgPipeline,
    StableDiffusionPipeline,
    StableDiffusionXLPipeline,
)

from explorer.engine import flow
from explorer.engine.models import run_copy
from explorer.engine.recorder import Recorder, denoiser
from explorer.engine.schedulers import make_scheduler

T5_ABSENT = "<t5 absent>"  # the token string of the zeros SD3 feeds where T5 would be
TOKENIZERS = ("tokenizer", "tokenizer_2", "tokenizer_3")


def kind(pipe: Any) -> str:
    """ "flow" for SD3, "sdxl" for SDXL, "sd" for SD 1.x/2.x (and anything else, as before)."""
    if isinstance(pipe, StableDiffusion3Pipeline):
        return "flow"
    if isinstance(pipe, StableDiffusionXLPipeline):
        return "sdxl"
    return "sd"


def scheduler_name(pipe: Any, scheduler: str | None) -> str:
    """The sampler a run uses: the one named, else DDIM (SD, SDXL) or flow Euler (flow)."""
    if scheduler is not None:
        return scheduler
    return "flow_euler" if kind(pipe) == "flow" else "ddim"


def private_pipeline(
    pipe: Any, scheduler: str, img2img: bool = False, spacing: str | None = None
) -> Any:
    """A shallow copy of `pipe` that shares its weights but holds its own scheduler (timestep
    spacing `spacing`, default the config's) and tokenizers."""
    which = kind(pipe)
    check_supported(pipe, img2img, spacing)
    if which == "sd":
        cls = StableDiffusionImg2ImgPipeline if img2img else StableDiffusionPipeline
        return run_copy(pipe, scheduler, cls, spacing)  # shares the weights only
    if which == "flow":
        return shallow_copy(pipe, flow.make_scheduler(pipe, scheduler))
    return shallow_copy(pipe, make_scheduler(pipe, scheduler, spacing))


def check_supported(
    pipe: Any, img2img: bool, spacing: str | None = None, attention: bool = False
) -> None:
    """`ValueError` for what a kind cannot do: img2img beyond SD 1.x/2.x; a flow model's σ grid
    is "linspace" or "trailing" (`flow.spacing_sigmas`), its shift then places the steps."""
    which = kind(pipe)
    if img2img and which != "sd":
        raise ValueError(f"img2img traces SD 1.x/2.x pipelines only, not {type(pipe).__name__}")
    if which == "flow":
        flow.check_spacing(spacing)


def shallow_copy(pipe: Any, scheduler: Any) -> Any:
    """`copy.copy(pipe)` with `scheduler` and copies of its tokenizers: the weights, the VAE's
    image processor and every config value are shared, everything a run changes (the
    scheduler's state, the tokenizers' padding state, the guidance and interrupt flags) is the
    copy's own (as `models.run_copy`, for pipelines that take other init arguments)."""
    run = copy.copy(pipe)  # a new __dict__: setting a component re-registers it on the copy only
    run.scheduler = scheduler
    for name in TOKENIZERS:  # why each run needs its own: `models.private_tokenizer`
        if getattr(pipe, name, None) is not None:
            setattr(run, name, copy.deepcopy(getattr(pipe, name)))
    return run


def is_guided(pipe: Any, guidance: float) -> bool:
    """Whether the run does classifier-free guidance, exactly as the pipeline decides."""
    if kind(pipe) == "flow":
        return guidance > 1  # StableDiffusion3Pipeline.do_classifier_free_guidance
    return guidance > 1 and denoiser(pipe).config.get("time_cond_proj_dim") is None


def make_recorder(run: Any, guided: bool, factors: tuple, preview: int) -> Recorder:
    """The recorder for a run: flow's (σ, v) for a flow pipeline, else the epsilon one."""
    cls = flow.FlowRecorder if kind(run) == "flow" else Recorder
    return cls(run.scheduler, guided, factors, preview)


def clip_tokens(tokenizer: Any, prompt: str, length: int | None = None) -> list[str]:
    """The token strings a tokenizer gives `prompt`, padded (or cut) to `length` (default its
    model_max_length)."""
    length = length or tokenizer.model_max_length
    ids = tokenizer(prompt, padding="max_length", max_length=length, truncation=True)
    return [str(t) for t in tokenizer.convert_ids_to_tokens(ids["input_ids"])]


def prompt_tokens(pipe: Any, prompt: str) -> list[str]:
    """The token strings of the text sequence the denoiser sees for `prompt`, padding and
    truncation included: the CLIP tokens (SDXL's two towers read the same ones side by side);
    for SD3 then T5's `max_sequence_length` tokens (`T5_ABSENT` where there is no T5)."""
    if kind(pipe) != "flow":
        return clip_tokens(pipe.tokenizer, prompt)
    clip = clip_tokens(pipe.tokenizer, prompt, pipe.tokenizer_max_length)
    t5 = t5_length(pipe)
    if pipe.tokenizer_3 is None:
        return clip + [T5_ABSENT] * t5
    return clip + clip_tokens(pipe.tokenizer_3, prompt, t5)


def t5_length(pipe: Any) -> int:
    """T5's sequence length in a plain `pipe(prompt)` call (the `max_sequence_length` default)."""
    return _call_default(type(pipe), "max_sequence_length")


@functools.cache
def _call_default(cls: type, name: str) -> Any:
    """The default of argument `name` of `cls.__call__` (read once per class)."""
    return inspect.signature(cls.__call__).parameters[name].default


def kind_settings(pipe: Any) -> dict:
    """What the settings add per kind: the objective, and for SDXL and SD3 the text encoders."""
    which = kind(pipe)
    out = {"objective": flow.OBJECTIVE if which == "flow" else "epsilon", "pipeline_kind": which}
    if which == "sd":
        return out
    towers = [getattr(pipe, n, None) for n in ("text_encoder", "text_encoder_2")]
    out["text_encoder_widths"] = [t.config.hidden_size for t in towers if t is not None]
    if which == "flow":
        out["prediction_type"] = flow.PREDICTION
        out["clip_tokens"] = int(pipe.tokenizer_max_length)
        out["t5"] = pipe.text_encoder_3 is not None
        out["t5_tokens"] = t5_length(pipe)
        out["attention_maps"] = "joint: each position's share of attention on each text token"
    return out


def call_arguments(pipe: Any, spacing: str | None, steps: int) -> dict:
    """What a run adds to the pipeline call for `spacing`: a flow model's σ grid (SD 1.x/2.x and
    SDXL take theirs from the scheduler `private_pipeline` made)."""
    if kind(pipe) != "flow":
        return {}
    sigmas = flow.spacing_sigmas(spacing, steps)
    return {} if sigmas is None else {"sigmas": sigmas}


def run_facts(run: Any) -> dict:
    """What the settings add once the run is done: a flow run's shift and σ schedule."""
    return flow.schedule_settings(run.scheduler) if kind(run) == "flow" else {}
