"""Epsilon or flow? The two Mini models of one world from the same noise, side by side.

mini-shapes predicts the noise ε and samples with DDIM; mini-flow (the same world, VAE and text
encoder) predicts a velocity v ≈ ε − x_0 along the straight line x_t = σ·ε + (1 − σ)·x_0 and
samples with flow Euler. With one seed both start from the same latent x_T, so their paths share
a start and, on one map, show how each gets to its picture:

- straightness (Liu et al. 2022): the length of the path x_T, ..., x_0 over the steps divided by
  the distance from its start to its end; 1 is a straight line. DDIM's path bends even for a
  single picture (x_t = √ᾱ·x_0 + √(1 − ᾱ)·ε is an arc), flow's only where its target moves;
- few steps: the picture after 1, 2, 4 and 8 steps beside the model's own picture after 50,
  and their mean pixel distance (0–255). A straight path could be walked in one step, but a
  few-step picture also depends on how much the model's x_0 prediction still moves along the
  way: the two are measured, not assumed to agree.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image

from explorer.engine.capture import trace
from explorer.engine.tracefile import Trace
from explorer.studies.trajectories import DEFAULT_SEED, TrajectoryMap, trajectory_map

MODELS = ("epsilon", "flow")  # the labels of the two runs, in this order everywhere
MINI = {"epsilon": "shapes", "flow": "flow"}  # the embedded models: mini-shapes, mini-flow
FEW_STEPS = (1, 2, 4, 8)
REFERENCE_STEPS = 50
STEPS, GUIDANCE = 25, 5.0  # the runs whose paths are mapped (the evaluation's settings)
# both on the trailing grid: N steps from pure noise, each a 1/N of the way (mini-shapes'
# config; for flow FluxPipeline's σ grid, where diffusers' SD3 default wastes the last step)
SPACING = "trailing"


@dataclass
class EpsilonOrFlow:
    runs: dict[str, Trace]  # model -> its STEPS-step run
    straightness: dict[str, float]  # model -> path length / start-to-end distance of that run
    few: dict[str, list[Image.Image]]  # model -> its pictures after each of FEW_STEPS steps
    reference: dict[str, Image.Image]  # model -> its picture after REFERENCE_STEPS steps
    distance: dict[str, list[float]]  # model -> mean |few − reference| (0–255) per FEW_STEPS


def straightness(path: np.ndarray) -> float:
    """(S, ...) points -> sum of |p_(i+1) − p_i| / |p_last − p_0| (1 for a straight path)."""
    flat = np.asarray(path, dtype=np.float64).reshape(len(path), -1)  # (S, d)
    length = np.linalg.norm(np.diff(flat, axis=0), axis=1).sum()
    chord = np.linalg.norm(flat[-1] - flat[0])
    return float(length / chord) if chord > 0 else float("nan")


def pixel_distance(a: Image.Image, b: Image.Image) -> float:
    """Mean absolute difference of two pictures' RGB values, 0–255."""
    x, y = (np.asarray(im.convert("RGB"), dtype=np.float64) for im in (a, b))
    return float(np.abs(x - y).mean())


def run(
    pipes: dict[str, object],
    prompt: str,
    seed: int = 0,
    guidance: float = GUIDANCE,
    steps: int = STEPS,
    few: tuple[int, ...] = FEW_STEPS,
    progress: Callable[[float, str], None] | None = None,
) -> EpsilonOrFlow:
    """Both models (`pipes`: "epsilon" and "flow") on `prompt` from `seed`'s noise."""
    plan = [(m, n) for m in MODELS for n in (steps, REFERENCE_STEPS, *few)]  # run by run
    done: dict[tuple[str, int], Trace] = {}
    for i, (model, n) in enumerate(plan):
        if progress is not None:
            progress(i / len(plan), f"{model}: {n} step{'s' if n > 1 else ''}")
        done[model, n] = trace(
            pipes[model], prompt, steps=n, guidance=guidance, seed=seed, spacing=SPACING
        )
    runs = {m: done[m, steps] for m in MODELS}
    references = {m: done[m, REFERENCE_STEPS].image for m in MODELS}
    few_pictures = {m: [done[m, n].image for n in few] for m in MODELS}
    return EpsilonOrFlow(
        runs=runs,
        straightness={m: straightness(runs[m].latents.float().numpy()) for m in MODELS},
        few=few_pictures,
        reference=references,
        distance={m: [pixel_distance(p, references[m]) for p in few_pictures[m]] for m in MODELS},
    )


def paths_map(
    result: EpsilonOrFlow, method: str = "pca", seed: int = DEFAULT_SEED
) -> TrajectoryMap:
    """Both runs' latents x_T, ..., x_0 on one map (the same VAE, so the same latent space)."""
    paths = [result.runs[m].latents.float().numpy() for m in MODELS]  # (T + 1, C, h, w) each
    return trajectory_map(paths, list(MODELS), method, seed)
