"""Two runs from the same starting noise, differing in one thing, compared step by step.

Run A and run B share the seed, so they start from the same noise x_T; B changes what the visitor
chooses (a word of the prompt, guidance, scheduler, step count, spacing, or the prompt embedding's
magnitude: B's embedding scaled by k, `explorer.studies.sweeps`'s path, one batched call whose
k = 1 item is A). Step i of A is paired
with the step of B whose timestep is nearest (the same step when the step counts agree), and at
each pair: the RMS distance between the two runs' inputs x_t (as the UNet saw them: the same
units for every scheduler) and between their predictions x0, in latent units. Where the inputs'
distance first reaches half the distance between the two final latents is where they part ways
(x0's distance is no guide to that: early predictions divide by a tiny √ᾱ and swing widely).
`comparison_map` puts both runs' paths on one PCA or UMAP map (`explorer.studies.trajectories`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from explorer.engine.capture import trace
from explorer.engine.tracefile import Trace
from explorer.studies.sweeps import scale_embedding
from explorer.studies.trajectories import DEFAULT_SEED, TrajectoryMap, project, trajectory_map

CHANGEABLE = (
    "prompt",
    "negative_prompt",
    "guidance",
    "scheduler",
    "steps",
    "spacing",
    "embedding_scale",
)
# what a magnitude run takes from the base settings (`sweeps.scale_embedding`'s keywords)
MAGNITUDE_KEYS = ("negative_prompt", "steps", "guidance", "seed", "scheduler")


@dataclass
class Comparison:
    a: Trace
    b: Trace
    pairs: list[int]  # for each step i of A, the step of B it is compared with
    latent_distance: np.ndarray  # (T_A + 1,) RMS(x_t of A − of B) per pair, then the end's
    x0_distance: np.ndarray  # (T_A,) RMS(x0 of A − of B) at each pair
    parted_at: int | None  # first step (1-based) whose x_t distance reaches half the end's
    # magnitude runs: ||z||₂ (A's prompt embedding), ||z_k||₂ (B's) and cos(z_k, z)
    embedding: tuple[float, float, float] | None = None

    @property
    def changed(self) -> dict[str, tuple]:
        """The settings B changed: name -> (A's value, B's value)."""

        def value(s: dict, k: str):
            return (
                s.get("scheduler_config", {}).get("timestep_spacing")
                if k == "spacing"
                else s.get(k)
            )

        sa, sb = self.a.settings, self.b.settings
        return {k: (value(sa, k), value(sb, k)) for k in CHANGEABLE if value(sa, k) != value(sb, k)}


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def nearest_steps(a: np.ndarray, b: np.ndarray) -> list[int]:
    """For each timestep of `a`, the index of the nearest timestep of `b`."""
    return [int(np.argmin(np.abs(b - t))) for t in a]


def parted_at(latent_distance: np.ndarray) -> int | None:
    """The first step (1-based) whose input distance reaches half the final latents' (the last
    entry); None when the two runs end the same."""
    end = float(latent_distance[-1]) if len(latent_distance) else 0.0
    if end <= 1e-6:
        return None
    return int(np.argmax(latent_distance[:-1] >= end / 2)) + 1


def compare(a: Trace, b: Trace) -> Comparison:
    """The step-by-step distances between two traces of the same latent shape."""
    if a.latents.shape[1:] != b.latents.shape[1:]:
        raise ValueError(
            f"the runs' latents differ in shape: {a.latents.shape[1:]} and {b.latents.shape[1:]}"
        )
    # x_t as the UNet saw it (`model_input`): sigma schedulers' x_t = x0 + σε is then scaled to
    # the same units as DDIM's √ᾱ·x0 + √(1−ᾱ)·ε, so the runs compare whatever their schedulers
    ia, ib = a.model_input.float().numpy(), b.model_input.float().numpy()  # (T, C, h, w) each
    la, lb = a.latents[-1].float().numpy(), b.latents[-1].float().numpy()  # (C, h, w): the ends
    xa, xb = a.x0_pred.float().numpy(), b.x0_pred.float().numpy()  # (T, C, h, w) each
    pairs = nearest_steps(a.timesteps.float().numpy(), b.timesteps.float().numpy())
    latent = [_rms(ia[i] - ib[j]) for i, j in enumerate(pairs)] + [_rms(la - lb)]
    x0 = np.array([_rms(xa[i] - xb[j]) for i, j in enumerate(pairs)])
    latent = np.array(latent)
    return Comparison(a, b, pairs, latent, x0, parted_at(latent))


def compare_runs(
    pipe,
    base: dict,
    changes: dict,
    progress: Callable[[float, str], None] | None = None,
    attention: bool | None = None,
) -> Comparison:
    """Run A with `base` (trace's keyword arguments, `prompt` among them) and B with `changes`
    on top, the same seed, and compare them.

    `attention` records both runs' cross-attention maps (for `attention_difference`); None:
    when B changes the prompt. `changes={"embedding_scale": k}` alone scales B's prompt
    embedding by k (rule "multiply"), A and B then from one batched call (no attention maps)."""
    unknown = sorted(set(changes) - set(CHANGEABLE))
    if unknown:
        raise ValueError(f"run B may change {', '.join(CHANGEABLE)}; not {', '.join(unknown)}")
    if "embedding_scale" in changes:
        return _magnitude_pair(pipe, base, changes, progress)
    attention = "prompt" in changes if attention is None else attention
    runs = []
    for k, kwargs in enumerate((base, {**base, **changes})):
        if progress:
            progress(k / 2, f"run {'AB'[k]}")
        runs.append(trace(pipe, **kwargs, attention=attention))
    return compare(*runs)


def _magnitude_pair(pipe, base: dict, changes: dict, progress) -> Comparison:
    """A: the plain prompt (k = 1), B: its embedding times k; `sweeps.scale_embedding`'s one
    batched call, so k = 1 gives B = A exactly."""
    extra = sorted(set(changes) - {"embedding_scale"}) + sorted(
        k for k in base if k not in (*MAGNITUDE_KEYS, "prompt")
    )
    if extra:
        raise ValueError(f"a magnitude comparison changes only the magnitude; not {extra}")
    if progress:
        progress(0.0, "runs A and B (one batched call)")
    k = float(changes["embedding_scale"])
    kwargs = {key: base[key] for key in MAGNITUDE_KEYS if key in base}
    factors = [k] if k == 1 else [k, 1.0]  # 1 asked for too: its norm is A's
    result = scale_embedding(pipe, base["prompt"], factors, rule="multiply", **kwargs)
    cmp = compare(result.reference.trace, result.runs[0].trace)
    return replace(cmp, embedding=(result.norms[-1], result.norms[0], result.cosines[0]))


def trajectory_points(t: Trace) -> np.ndarray:
    """(T + 1, C·h·w): the run's inputs x_t as the UNet saw them at each step, then its final
    latent: the points `compare` measures distances between."""
    steps = t.model_input.float().numpy().reshape(t.num_steps, -1)  # (T, C·h·w)
    return np.concatenate([steps, t.latents[-1].float().numpy().reshape(1, -1)])  # (T + 1, ·)


def comparison_map(cmp: Comparison, method: str = "pca", seed: int = DEFAULT_SEED) -> TrajectoryMap:
    """Both runs' paths (`trajectory_points`) on one shared 2-D map, "pca" or "umap" (PCA stands
    in for UMAP while it warms up; the projection's note says so). Equal latents land on one
    point whatever the method: two equal runs draw one path (PCA of all the points, each set of
    equal points then drawn at one of them;
    UMAP, which places each point on its own, is given each distinct point once)."""
    points = [trajectory_points(cmp.a), trajectory_points(cmp.b)]
    flat = np.concatenate(points)  # (T_A + T_B + 2, C·h·w)
    unique, first, back = np.unique(flat, axis=0, return_index=True, return_inverse=True)
    n = len(points[0])
    if method != "umap":  # PCA of every point; equal points then take one point's place, as
        # a matrix product need not give equal rows the same last bits
        tmap = trajectory_map(points, ["A", "B"], method, seed)
        xy = np.concatenate(tmap.paths)[first[back.reshape(-1)]]  # (T_A + T_B + 2, 2)
        return replace(tmap, paths=[xy[:n], xy[n:]], projection=replace(tmap.projection, xy=xy))
    proj = project(unique, method, seed)  # (U, 2)
    xy = proj.xy[back.reshape(-1)]  # (T_A + T_B + 2, 2)
    return TrajectoryMap(["A", "B"], [xy[:n], xy[n:]], replace(proj, xy=xy))
