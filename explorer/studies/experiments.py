"""Side-by-side experiments: step counts, guidance scales, schedulers, seeds.

Each experiment runs the real pipeline several times (through `capture.trace`, or one batched
call through `batch.run_batch`) and returns a typed result that keeps every run's `Trace`, so a
UI cell can open that run in the step views. Pure engine: no UI, no charts. The embedding
magnitude sweep lives in `explorer.studies.sweeps`, the free X/Y grid in `explorer.studies.grid`.

Distances, the same everywhere (`explorer.studies.distances`, and importable from here):
  pixel_distance(a, b)  = RMS over pixels and channels of (a - b), pixels in [0, 1];
  latent_distance(a, b) = RMS of the difference of two final latents x_0 (the ODE's end point).
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from PIL import Image

from explorer.engine.batch import run_batch
from explorer.engine.capture import prompt_tokens, trace
from explorer.engine.models import run_copy
from explorer.engine.schedulers import SCHEDULERS
from explorer.engine.tracefile import Trace
from explorer.inputs.errors import VisitorError
from explorer.inputs.words import count
from explorer.studies.distances import latent_distance, pixel_distance

Progress = Callable[[float, str], None]  # (fraction done in [0, 1], what runs now)

DEFAULT_STEPS = (1, 2, 5, 10, 25, 50)
DEFAULT_GUIDANCE = (1.0, 2.0, 4.0, 7.5, 12.0, 20.0)
DEFAULT_CURVE_STEPS = (2, 5, 10, 20, 40)
REFERENCE = ("ddim", 200)  # the many-step solution every scheduler is measured against


@dataclass
class Run:
    """One cell of an experiment: what varied, the full trace, and its wall time."""

    label: str  # what the UI prints above the picture, e.g. "10 steps"
    value: float | int | str  # the value of the varied setting
    trace: Trace  # the whole run: open it in the step views
    seconds: float  # wall-clock time of the run (for a batched run: the batch's time / K)

    @property
    def image(self) -> Image.Image:
        """The final image."""
        return self.trace.image


@dataclass
class StepsResult:
    """`compare_steps`: one prompt and seed at several step counts."""

    runs: list[Run]  # one per step count, in the order asked
    first_x0: list[Image.Image]  # x_0 predicted by the first step of each run (VAE-decoded)
    distance: list[float]  # pixel_distance of each image to the run with the most steps


@dataclass
class GuidanceResult:
    """`compare_guidance`: one prompt and seed at several guidance scales g."""

    runs: list[Run]
    # per run, per step: ||g·(ε_text − ε_uncond)||₂ over (C, h, w); None when g <= 1 (no guidance)
    guidance_norms: list[list[float] | None]


@dataclass
class SchedulerResult:
    """`compare_schedulers`: every scheduler at one step count, and the accuracy curve."""

    runs: list[Run]  # one per scheduler at `steps`
    steps: int
    distance: list[float]  # latent_distance of each run to the reference
    reference: Trace  # DDIM with many steps, same prompt, seed and guidance
    curve_steps: list[int]  # the step counts of the accuracy curve
    curve: dict[str, list[float]]  # scheduler -> latent_distance to the reference per curve step


@dataclass
class SeedsResult:
    """`compare_seeds`: one prompt, several starting noises (one batched call per chunk)."""

    runs: list[Run]
    distance: list[float]  # pixel_distance of each image to the first seed's
    seconds: float  # total wall time


def _timed_trace(pipe, prompt: str, **kwargs) -> tuple[Trace, float]:
    """`capture.trace` and its wall time."""
    start = time.perf_counter()
    result = trace(pipe, prompt, **kwargs)
    return result, time.perf_counter() - start


def trace_each(
    pipe, prompt: str, name: str, values: Sequence, label: Callable, progress: Progress | None, **kw
) -> list[Run]:
    """One traced run per value of setting `name` (the others from `kw`); `label(value)` names
    it."""
    if not values:
        raise VisitorError(f"{name}: give at least one value")
    runs = []
    for i, v in enumerate(values):
        _report(progress, i, len(values), label(v))
        tr, sec = _timed_trace(pipe, prompt, **{**kw, name: v})
        runs.append(Run(label(v), v, tr, sec))
    _report(progress, len(values), len(values), "done")
    return runs


def _report(progress: Progress | None, done: int, total: int, what: str) -> None:
    if progress is not None:
        progress(done / max(total, 1), what)


def compare_steps(
    pipe,
    prompt: str,
    steps: Sequence[int] = DEFAULT_STEPS,
    *,
    negative_prompt: str = "",
    guidance: float = 7.5,
    seed: int = 0,
    scheduler: str = "ddim",
    spacing: str | None = None,
    progress: Progress | None = None,
) -> StepsResult:
    """The same prompt and seed (hence the same starting noise) at each step count.

    Returns the final images, the x_0 each run predicts after its first step, the pixel distance
    of each image to the one with the most steps, and each run's time. `spacing` overrides the
    config's timestep spacing ("trailing": 1 step starts at t = 999, its x_0 the blurry average).
    """
    common = dict(negative_prompt=negative_prompt, guidance=guidance, seed=seed)
    common |= dict(scheduler=scheduler, spacing=spacing)
    runs = trace_each(
        pipe,
        prompt,
        "steps",
        [int(n) for n in steps],
        count,
        progress,
        **common,
    )
    best = max(runs, key=lambda r: r.value).image
    return StepsResult(
        runs=runs,
        first_x0=[r.trace.decode(steps=[0], what="x0")[0] for r in runs],
        distance=[pixel_distance(r.image, best) for r in runs],
    )


def guidance_term_norms(tr: Trace) -> list[float] | None:
    """Per step ||g·(ε_text − ε_uncond)||₂ of a guided trace; None if guidance was off."""
    if not tr.guided:
        return None
    g = float(tr.settings["guidance"])
    term = g * (tr.noise_text - tr.noise_uncond)  # (T, C, h, w)
    return term.flatten(1).norm(dim=1).tolist()  # (T,)


def compare_guidance(
    pipe,
    prompt: str,
    scales: Sequence[float] = DEFAULT_GUIDANCE,
    *,
    negative_prompt: str = "",
    steps: int = 25,
    seed: int = 0,
    scheduler: str = "ddim",
    progress: Progress | None = None,
) -> GuidanceResult:
    """One run per guidance scale (same seed): images and the per-step size of the guidance term."""
    common = dict(negative_prompt=negative_prompt, steps=steps, seed=seed, scheduler=scheduler)
    values = [float(g) for g in scales]
    runs = trace_each(
        pipe, prompt, "guidance", values, lambda g: f"guidance {g:g}", progress, **common
    )
    return GuidanceResult(runs=runs, guidance_norms=[guidance_term_norms(r.trace) for r in runs])


# ---- schedulers: the solver-accuracy picture ------------------------------------------------

_references: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # pipe -> {key: Trace}
_ref_lock = threading.Lock()


def reference_run(
    pipe, prompt: str, *, negative_prompt: str = "", guidance: float = 7.5, seed: int = 0
) -> Trace:
    """DDIM with 200 steps for (prompt, negative, guidance, seed); cached per pipeline."""
    key = (prompt, negative_prompt, float(guidance), int(seed))
    with _ref_lock:
        cached = _references.get(pipe, {}).get(key)
    if cached is not None:
        return cached
    name, n = REFERENCE
    ref = trace(
        pipe,
        prompt,
        negative_prompt=negative_prompt,
        steps=n,
        guidance=guidance,
        seed=seed,
        scheduler=name,
    )
    with _ref_lock:
        table = _references.setdefault(pipe, {})
        if len(table) >= 16:  # keep memory bounded: drop the oldest entry
            table.pop(next(iter(table)))
        table[key] = ref
    return ref


def compare_schedulers(
    pipe,
    prompt: str,
    steps: int = 10,
    *,
    schedulers: Sequence[str] = tuple(SCHEDULERS),
    curve_steps: Sequence[int] = DEFAULT_CURVE_STEPS,
    negative_prompt: str = "",
    guidance: float = 7.5,
    seed: int = 0,
    progress: Progress | None = None,
) -> SchedulerResult:
    """Each scheduler at `steps` (same seed), and its distance to a DDIM 200-step reference.

    The curve runs every scheduler at each of `curve_steps` too: plotted log-log against the step
    count it shows each solver's order of accuracy. DDPM and Euler-ancestral add fresh noise at
    every step, so they converge to a different sample and level off instead of falling.
    """
    common = dict(negative_prompt=negative_prompt, guidance=guidance, seed=seed)
    curve_steps = sorted({int(n) for n in curve_steps})
    total = 1 + len(schedulers) * (1 + len(curve_steps))
    _report(progress, 0, total, "reference: DDIM 200 steps")
    ref = reference_run(pipe, prompt, **common)
    runs, curve, done = [], {}, 1
    for name in schedulers:
        _report(progress, done, total, f"{name}, {count(steps)}")
        tr, sec = _timed_trace(pipe, prompt, steps=int(steps), scheduler=name, **common)
        runs.append(Run(name, name, tr, sec))
        curve[name] = []
        for n in curve_steps:
            done += 1
            _report(progress, done, total, f"{name}, {count(n)}")
            same = n == steps
            point = tr if same else trace(pipe, prompt, steps=n, scheduler=name, **common)
            curve[name].append(latent_distance(point, ref))
        done += 1
    _report(progress, total, total, "done")
    return SchedulerResult(
        runs=runs,
        steps=int(steps),
        distance=[latent_distance(r.trace, ref) for r in runs],
        reference=ref,
        curve_steps=curve_steps,
        curve=curve,
    )


def compare_seeds(
    pipe,
    prompt: str,
    seeds: Sequence[int],
    *,
    negative_prompt: str = "",
    steps: int = 25,
    guidance: float = 7.5,
    scheduler: str = "ddim",
    chunk: int = 8,
    progress: Progress | None = None,
) -> SeedsResult:
    """One image per seed, batched `chunk` seeds per pipeline call (each item starts from the
    noise its seed gives a plain run; images match plain runs to within 1/255 per pixel)."""
    if not seeds:
        raise VisitorError("seeds: give at least one seed")
    own = run_copy(pipe)  # its own tokenizer: the shared one is not safe across threads
    pe, ne = own.encode_prompt(prompt, pipe.unet.device, 1, True, negative_prompt)  # (1, L, D)
    tokens = prompt_tokens(own, prompt)
    runs, start = [], time.perf_counter()
    for lo in range(0, len(seeds), chunk):
        part = [int(s) for s in seeds[lo : lo + chunk]]
        _report(progress, lo, len(seeds), f"seeds {part[0]}…{part[-1]}")
        t0 = time.perf_counter()
        traces = run_batch(
            pipe,
            pe.repeat(len(part), 1, 1),
            ne.repeat(len(part), 1, 1),
            part,
            steps=steps,
            guidance=guidance,
            scheduler=scheduler,
            tokens=tokens,
            settings=[{"prompt": prompt, "negative_prompt": negative_prompt}] * len(part),
        )
        sec = (time.perf_counter() - t0) / len(part)
        runs += [Run(f"seed {s}", s, tr, sec) for s, tr in zip(part, traces)]
    _report(progress, len(seeds), len(seeds), "done")
    first = runs[0].image
    return SeedsResult(
        runs=runs,
        distance=[pixel_distance(r.image, first) for r in runs],
        seconds=time.perf_counter() - start,
    )


def prompts_by_seeds(
    pipe,
    prompts: Sequence[str],
    seeds: Sequence[int],
    *,
    progress: Progress | None = None,
    **kwargs,
) -> list[Trace]:
    """`compare_seeds` for every prompt (`kwargs`: its settings); the traces, prompt-major:
    prompts[0] with every seed, then prompts[1] ..."""
    traces = []
    for i, prompt in enumerate(prompts):
        _report(progress, i, len(prompts), f"prompt {i + 1} of {len(prompts)}")
        traces += [r.trace for r in compare_seeds(pipe, prompt, seeds, **kwargs).runs]
    return traces


__all__ = [
    "GuidanceResult",
    "Run",
    "SchedulerResult",
    "SeedsResult",
    "StepsResult",
    "compare_guidance",
    "compare_schedulers",
    "compare_seeds",
    "compare_steps",
    "guidance_term_norms",
    "latent_distance",
    "pixel_distance",
    "prompts_by_seeds",
    "reference_run",
    "trace_each",
]
