"""Rectified flow (SD3, Flux): the formulas, and the recorder that traces a flow pipeline's steps.

Notation (Liu et al. 2022, "Flow straight and fast"; Esser et al. 2024, the SD3 paper), as
`FlowMatchEulerDiscreteScheduler` implements it:

    x_t    = σ·ε + (1 − σ)·x_0         a straight line from x_0 (σ = 0) to the noise ε (σ = 1)
    v      ≈ ε − x_0                   what the transformer predicts (its raw output), the velocity
    x_0    = x_t − σ·v                 the clean latent the step heads to
    ε      = x_t + (1 − σ)·v           the noise it implies
    x_next = x_t + (σ_next − σ)·v      one Euler step along the line (`scheduler.step`)
    t      = 1000·σ                    the timestep the transformer is told
    σ'     = shift·σ / (1 + (shift − 1)·σ)   the shifted schedule (SD3: shift 3)

A flow `Trace` (settings["objective"] == "flow") fills the fields an epsilon trace has, in these
terms: `sigmas` σ_t, `velocity` v (and `velocity_uncond`, `velocity_text` with guidance),
`noise_pred` the implied ε (its guided mix ε_u + g·(ε_c − ε_u) is the guided ε, as the map
v -> ε is affine), `x0_pred` x_0, and `alphas_cumprod` the ᾱ with the same signal-to-noise
ratio, ᾱ = (1 − σ)² / ((1 − σ)² + σ²), so SNR views read both kinds alike.

The hooks are those of `explorer.engine.recorder` (numbered as in
`StableDiffusion3Pipeline.__call__`, step 7): the transformer forward hook (7b: x_t, and the
(uncond, text) split of its batch with guidance), `scheduler.step` wrapped (7c: σ_t, v, x_0,
ε; called once per step as ever), `callback_on_step_end` (7d: x_next). SD3 never calls
`scale_model_input`, so a step's clock starts when the schedule is set or the last step ended.
"""

from __future__ import annotations

import functools
import time
from typing import Any

import torch
from diffusers import FlowMatchEulerDiscreteScheduler

from explorer.engine import decode as dec
from explorer.engine.recorder import Recorder, _cpu
from explorer.engine.tracefile import Trace

OBJECTIVE = "flow"
PREDICTION = "flow_velocity"  # what settings["prediction_type"] says of a flow model
# The samplers a flow trace offers, by name (the pipeline's own config builds them).
FLOW_SCHEDULERS: dict[str, type] = {"flow_euler": FlowMatchEulerDiscreteScheduler}


def x0_from_velocity(x_t: torch.Tensor, v: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """x_0 = x_t − σ·v; `sigma` broadcasts, e.g. (T, 1, 1, 1) for (T, C, h, w)."""
    return x_t - sigma * v


def noise_from_velocity(x_t: torch.Tensor, v: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """The implied noise ε = x_t + (1 − σ)·v."""
    return x_t + (1 - sigma) * v


def euler_step(
    x_t: torch.Tensor, v: torch.Tensor, sigma: torch.Tensor, sigma_next: torch.Tensor
) -> torch.Tensor:
    """One Euler step along the flow: x_next = x_t + (σ_next − σ)·v."""
    return x_t + (sigma_next - sigma) * v


def add_noise(x0: torch.Tensor, noise: torch.Tensor, sigma: torch.Tensor | float) -> torch.Tensor:
    """The forward process of rectified flow: x_t = σ·ε + (1 − σ)·x_0."""
    return sigma * noise + (1 - sigma) * x0


def is_flow_pipeline(pipe: Any) -> bool:
    """Whether `pipe` samples with a rectified-flow scheduler (FlowMatchEulerDiscreteScheduler)."""
    return isinstance(getattr(pipe, "scheduler", None), FlowMatchEulerDiscreteScheduler)


def equivalent_alpha_bar(sigma: torch.Tensor | float) -> torch.Tensor | float:
    """The ᾱ of the epsilon parametrisation with the same SNR (1 − σ)²/σ² as flow's σ."""
    signal, noise = (1 - sigma) ** 2, sigma**2
    return signal / (signal + noise)


def shifted_sigma(sigma: torch.Tensor, shift: float) -> torch.Tensor:
    """SD3's schedule shift σ' = shift·σ / (1 + (shift − 1)·σ): more steps at high noise for a shift
    above 1 (SD3's 3), more at low noise for one below 1."""
    return shift * sigma / (1 + (shift - 1) * sigma)


def sigma_next(trace: Trace) -> torch.Tensor:
    """(T,) the σ each step of a flow trace moved to (the schedule's next entry, 0 at the end)."""
    schedule = torch.tensor(trace.settings["sigma_schedule"])  # (N + 1,)
    return schedule[1 : trace.num_steps + 1]


FLOW_SPACINGS = ("linspace", "trailing")  # the σ grids a flow trace takes (`spacing_sigmas`)


def spacing_sigmas(spacing: str | None, steps: int) -> list[float] | None:
    """The unshifted σ grid of `steps` steps that the pipeline is given for `spacing`, or None
    for its own. "linspace" (None, diffusers' default for SD3): 1 down to the training's last σ
    (0.001, 0.004 once shifted), so the last of N steps runs from there to 0 and barely moves
    the picture. "trailing": σ = 1, 1 − 1/N, ..., 1/N as FluxPipeline gives it, each step a
    1/N of the way (DDIM's trailing timesteps T, T − T/N, ..., T/N in flow's terms)."""
    if check_spacing(spacing) in (None, "linspace"):
        return None
    return [1 - i / steps for i in range(steps)]


def check_spacing(spacing: str | None) -> str | None:
    """`spacing` if a flow schedule takes it (None, or one of FLOW_SPACINGS), else `ValueError`."""
    if spacing is not None and spacing not in FLOW_SPACINGS:
        valid = ", ".join(FLOW_SPACINGS)
        raise ValueError(f"a flow schedule is spaced {valid}; got spacing {spacing!r}")
    return spacing


def make_scheduler(pipe: Any, name: str | None) -> FlowMatchEulerDiscreteScheduler:
    """A FRESH flow scheduler from the pipeline's scheduler config (`name` None: "flow_euler")."""
    name = name or "flow_euler"
    if name not in FLOW_SCHEDULERS:
        valid = ", ".join(FLOW_SCHEDULERS)
        raise ValueError(
            f"a flow model ({type(pipe).__name__}) samples with {valid}; got scheduler {name!r}"
        )
    return FLOW_SCHEDULERS[name].from_config(pipe.scheduler.config)


def schedule_settings(scheduler: FlowMatchEulerDiscreteScheduler) -> dict:
    """What a flow trace records about its schedule once the run has set it."""
    return {
        "shift": float(scheduler.shift),
        "use_dynamic_shifting": bool(scheduler.config.get("use_dynamic_shifting", False)),
        "sigma_schedule": [float(s) for s in scheduler.sigmas],  # (N + 1,), ends at σ = 0
    }


class FlowRecorder(Recorder):
    """A `Recorder` for a flow pipeline: the same hooks and record, in flow's terms (module
    docstring). `velocity` etc. are the extra fields; `build` returns a `Trace`."""

    WRAPPED = ("set_timesteps", "step")

    def __init__(self, scheduler: Any, guided: bool, factors: tuple, preview: int = 0) -> None:
        self.v, self.v_uncond, self.v_text = [], [], []  # (K, C, h, w) each
        super().__init__(scheduler, guided, factors, preview)
        self.x_in = self.x_t  # SD3 feeds the transformer x_t as it is: one list, one copy
        self.sigma_space = True  # σ_t is recorded (flow's σ, not the Karras σ of Euler/LMS)
        self.prediction_type = PREDICTION
        self.x0_sources.add("formula")

    def _wrap_scheduler(self) -> None:
        """7c on this run's private scheduler, and the clock's start when the schedule is set."""
        sched = self.scheduler
        set_timesteps, step = sched.set_timesteps, sched.step

        @functools.wraps(set_timesteps)
        def wrapped_set_timesteps(*args, **kwargs):
            self.started = time.perf_counter()
            return set_timesteps(*args, **kwargs)

        @functools.wraps(step)  # keeps the signature: pipelines inspect it
        def wrapped_step(model_output, timestep, sample, *args, return_dict=True, **kwargs):
            # x_0 follows from σ and v (`_derive`), so the scheduler's output is passed on as
            # the pipeline asked for it (SD3: a tuple, no output object built)
            out = step(model_output, timestep, sample, *args, return_dict=return_dict, **kwargs)
            sigma = float(sched.sigmas[sched.step_index - 1])  # the σ this step started from
            self._on_flow_step(model_output, timestep, sample, sigma)
            return out

        sched.set_timesteps, sched.step = wrapped_set_timesteps, wrapped_step

    def unet_hook(self, module, args, kwargs, output) -> None:
        """7b. The transformer's raw output split into its (uncond, text) velocities with
        guidance (`uncond` and `text` will hold their implied noise: `_derive`), and the text
        conditioning of the first call. Its input is x_t, recorded at the step."""
        if self.guided:
            out = output[0] if isinstance(output, tuple) else output.sample  # (2K, C, h, w)
            uncond, text = _cpu(out).chunk(2)  # (K, C, h, w) each, views of one copy
            self.v_uncond.append(uncond)
            self.v_text.append(text)
        if self.embeds is None:
            self.conditioning(kwargs)

    def _on_flow_step(self, v, timestep, sample, sigma: float) -> None:
        """7c. x_t, v, σ_t and t of this step for the whole batch: only copies, so the loop
        waits for nothing; x_0 and ε follow from them when a record is built (`_derive`)."""
        self.x_t.append(_cpu(sample))  # (K, C, h, w)
        self.v.append(_cpu(v))  # (K, C, h, w)
        self.t.append(float(timestep))
        self.sigma.append(sigma)
        self.alpha_bar.append(equivalent_alpha_bar(sigma))  # a float from a float
        if self.preview:
            self._derive()
            self.previews += dec.linear_preview(self.x0[-1][:1], *self.factors, self.preview)

    def _derive(self) -> None:
        """x_0 = x_t − σ·v and ε = x_t + (1 − σ)·v (and ε of both halves with guidance) for the
        steps recorded since the last call, all at once."""
        done, n = len(self.x0), len(self.v)
        if done == n:
            return
        x_t, v = torch.stack(self.x_t[done:n]), torch.stack(self.v[done:n])  # (n, K, C, h, w)
        s = torch.tensor(self.sigma[done:n]).view(-1, 1, 1, 1, 1)  # (n, 1, 1, 1, 1)
        self.x0 += x0_from_velocity(x_t, v, s).unbind()
        self.eps += noise_from_velocity(x_t, v, s).unbind()
        if self.guided:
            for raw, out in ((self.v_uncond, self.uncond), (self.v_text, self.text)):
                out += noise_from_velocity(x_t, torch.stack(raw[done:n]), s).unbind()

    def on_step_end(self, latents: torch.Tensor) -> None:
        """7d. x_next, the step's time; the next step's clock starts now."""
        super().on_step_end(latents)
        self.started = time.perf_counter()

    def build(self, prompt_tokens: list[str], settings: dict, item: int = 0, **extra) -> Trace:
        """Item `item` of the record as a flow Trace: the epsilon fields plus the velocities."""
        self._derive()
        T = len(self.after)
        pick = lambda xs: torch.stack([x[item] for x in xs[:T]]) if xs else None  # noqa: E731
        flow = {"velocity": pick(self.v)}
        if self.guided:
            flow.update(velocity_uncond=pick(self.v_uncond), velocity_text=pick(self.v_text))
        return super().build(prompt_tokens, settings, item, **flow, **extra)
