"""The eight samplers the explorer offers, and how to build a fresh one for a run.

A scheduler object carries per-run state (its timesteps, step index, the history of a multistep
solver), so two runs must never share one. `make_scheduler` therefore always builds a new object
from the pipeline's scheduler *config*; it never touches `pipe.scheduler` itself.

Two families, in the notation of Karras et al. (2022), "Elucidating the design space":
- alpha-space (DDIM, DDPM, PNDM, DPM-Solver++, UniPC): x_t = sqrt(ᾱ_t)·x_0 + sqrt(1-ᾱ_t)·ε, the
  UNet sees x_t unchanged;
- sigma-space (LMS, Euler, Euler-ancestral): x_t = x_0 + σ_t·ε with σ_t = sqrt((1-ᾱ_t)/ᾱ_t), the
  UNet sees x_t / sqrt(σ_t² + 1) (`scale_model_input`), so ᾱ_t = 1 / (1 + σ_t²).
"""

from __future__ import annotations

from typing import Any

from diffusers import (
    DDIMScheduler,
    DDPMScheduler,
    DPMSolverMultistepScheduler,
    EulerAncestralDiscreteScheduler,
    EulerDiscreteScheduler,
    LMSDiscreteScheduler,
    PNDMScheduler,
    UniPCMultistepScheduler,
)
from diffusers.schedulers.scheduling_utils import SchedulerMixin

SCHEDULERS: dict[str, type[SchedulerMixin]] = {
    "ddim": DDIMScheduler,
    "ddpm": DDPMScheduler,
    "pndm": PNDMScheduler,
    "lms": LMSDiscreteScheduler,
    "euler": EulerDiscreteScheduler,
    "euler_a": EulerAncestralDiscreteScheduler,
    "dpmpp_2m": DPMSolverMultistepScheduler,
    "unipc": UniPCMultistepScheduler,
}

# How `set_timesteps` places few steps on the 1000 training timesteps (Lin et al. 2023, table 2):
# with 1 step, "leading" runs t = 0 + steps_offset, "trailing" t = 999, "linspace" t = 999 too,
# but for several steps "linspace" rounds 999..0 and ends at t = 0.
SPACINGS: tuple[str, ...] = ("leading", "trailing", "linspace")

# Schedulers that work in sigma space and rescale the UNet input (see the module docstring).
SIGMA_SCHEDULERS: tuple[str, ...] = ("lms", "euler", "euler_a")

# Schedulers whose `step` output carries `pred_original_sample` (x_0); for the others the
# capture engine computes x_0 from the noise prediction.
X0_SCHEDULERS: tuple[str, ...] = ("ddim", "ddpm", "lms", "euler", "euler_a")


def scheduler_class(name: str) -> type[SchedulerMixin]:
    """The diffusers class for a scheduler name; `ValueError` listing the valid names otherwise."""
    try:
        return SCHEDULERS[name]
    except (KeyError, TypeError):
        valid = ", ".join(SCHEDULERS)
        raise ValueError(f"unknown scheduler {name!r}; choose one of: {valid}") from None


def make_scheduler(pipe_or_config: Any, name: str, spacing: str | None = None) -> SchedulerMixin:
    """Build a FRESH scheduler of the named kind from a pipeline's scheduler config.

    `pipe_or_config` is a diffusers pipeline (its `scheduler.config` is used), a scheduler, or a
    config mapping. Default options come from that config, exactly as
    `Cls.from_config(pipe.scheduler.config)` would give them; the pipeline is not modified.
    `spacing` ("leading", "trailing", "linspace") overrides the config's `timestep_spacing`.
    """
    cls = scheduler_class(name)
    config = pipe_or_config
    if hasattr(config, "scheduler"):  # a pipeline
        config = config.scheduler
    if hasattr(config, "config"):  # a scheduler
        config = config.config
    if spacing is None:
        return cls.from_config(config)
    return cls.from_config(config, timestep_spacing=check_spacing(spacing))


def check_spacing(spacing: str) -> str:
    """A timestep spacing name, or `ValueError` listing the valid ones."""
    if spacing not in SPACINGS:
        valid = ", ".join(SPACINGS)
        raise ValueError(f"unknown timestep spacing {spacing!r}; choose one of: {valid}")
    return spacing


def config_spacing(pipe: Any) -> str:
    """The timestep spacing a pipeline's scheduler config asks for ("leading" when it is silent,
    as diffusers' default)."""
    return str(pipe.scheduler.config.get("timestep_spacing", "leading"))


def has_sigmas(scheduler: SchedulerMixin | str) -> bool:
    """True for sigma-space schedulers (LMS, Euler, Euler-ancestral), by object or by name."""
    if isinstance(scheduler, str):
        scheduler_class(scheduler)  # validate the name
        return scheduler in SIGMA_SCHEDULERS
    return isinstance(scheduler, tuple(SCHEDULERS[n] for n in SIGMA_SCHEDULERS))


def gives_x0(scheduler: SchedulerMixin | str) -> bool:
    """True if the scheduler's `step` output includes `pred_original_sample`."""
    if isinstance(scheduler, str):
        scheduler_class(scheduler)
        return scheduler in X0_SCHEDULERS
    return isinstance(scheduler, tuple(SCHEDULERS[n] for n in X0_SCHEDULERS))
