"""From a sketch to an image: img2img through the capture engine, and a strength sweep.

img2img (SDEdit, Meng et al. 2021) does not start from pure noise. It encodes the sketch to a
latent x_0, noises it with the forward process to the timestep where a share `strength` of the
schedule is left, x_t = √ᾱ_t·x_0 + √(1−ᾱ_t)·ε, and runs only the last int(steps × strength)
denoising steps from there. Low strength keeps the sketch; strength 1 starts at the noisiest
timestep, where the sketch is nearly gone, and behaves like text-to-image.

Both functions run the real `StableDiffusionImg2ImgPipeline` through
`explorer.engine.capture.trace`, so every step is recorded like a text-to-image run, and the step
views show only the steps run. `explorer.inputs.controls.validate_strength` refuses a strength
that runs no step.
"""

from __future__ import annotations

from collections.abc import Sequence

from PIL import Image

from explorer.engine.capture import trace
from explorer.engine.tracefile import Trace
from explorer.inputs.words import count
from explorer.studies.experiments import Progress, Run, trace_each

DEFAULT_STRENGTHS = (0.2, 0.4, 0.6, 0.8, 1.0)


def steps_run(steps: int, strength: float) -> int:
    """How many steps img2img runs: int(steps × strength), as diffusers computes it."""
    return min(int(steps * strength), steps)


def sketch_to_image(
    pipe, image: Image.Image, prompt: str, *, strength: float = 0.6, **kwargs
) -> Trace:
    """img2img from `image` (already the model's size): `capture.trace` with an init image.

    `kwargs` are `trace`'s (negative_prompt, steps, guidance, seed, scheduler, on_step, ...).
    """
    return trace(pipe, prompt, image=image, strength=strength, **kwargs)


def strength_sweep(
    pipe,
    image: Image.Image,
    prompt: str,
    strengths: Sequence[float] = DEFAULT_STRENGTHS,
    *,
    progress: Progress | None = None,
    **kwargs,
) -> list[Run]:
    """One img2img run per strength, same seed and settings, side by side.

    Every run draws the same noise ε from the seed; each keeps a different share of the sketch.
    """
    values = [float(s) for s in strengths]
    steps = int(kwargs.get("steps", 25))
    label = lambda s: f"strength {s:g} · {count(steps_run(steps, s))}"  # noqa: E731
    return trace_each(pipe, prompt, "strength", values, label, progress, image=image, **kwargs)
