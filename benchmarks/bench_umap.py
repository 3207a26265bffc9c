"""UMAP of 8 runs x 25 steps on one shared map, after the warm-up, in one process.

    python benchmarks/bench_umap.py [--rounds 7] [--synthetic]

Bar (issue 6): after `explorer.studies.trajectories.warm_up` (timed and printed), mapping the
latent paths of 8 Mini runs (2 prompts x 4 seeds, 25 DDIM steps, so 8 x 26 points of 1024
numbers) with UMAP takes at most 2 s (median over rounds); PCA of the same points is timed
alongside for the ratio.
Reproducibility: two UMAP maps with the same seed are identical to the bit; another seed differs.
`--synthetic` uses random walks of the same shape instead of running the model.
"""

from __future__ import annotations

import argparse
import statistics
import time

import common  # noqa: F401 -- puts the repository on sys.path
import numpy as np
import torch

from explorer.studies import trajectories as maps
from explorer.studies.experiments import prompts_by_seeds

PROMPTS = ["a large red circle on a blue background", "a small yellow star on a black background"]
SEEDS = [0, 1, 2, 3]
BAR_S = 2.0


def real_paths(steps: int) -> list[np.ndarray]:
    from explorer.engine.models import load_pipeline

    pipe = load_pipeline(None, "cpu")
    traces = prompts_by_seeds(pipe, PROMPTS, SEEDS, steps=steps)
    return [t.latents.numpy() for t in traces]  # (26, 4, 16, 16) each


def synthetic_paths(steps: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [np.cumsum(rng.normal(size=(steps + 1, 4, 16, 16)), axis=0) for _ in range(8)]


def timed(fn) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def cpu_timed(fn) -> tuple[float, float, object]:
    """(wall seconds, this process's CPU seconds, result): on a shared, busy machine the wall
    time includes waiting for a core; the CPU time is the work itself."""
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - t0, time.process_time() - c0, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--synthetic", action="store_true", help="random walks, no model")
    args = parser.parse_args()
    torch.set_num_threads(1)

    warm_s, _ = timed(maps.warm_up)
    print(
        f"warm-up (import umap + first fits, compiles numba): {warm_s:.1f} s, "
        f"ready={maps.umap_ready()}"
    )
    gen_s, paths = timed(lambda: (synthetic_paths if args.synthetic else real_paths)(args.steps))
    labels = [f"run {i}" for i in range(len(paths))]
    n_points = sum(len(p) for p in paths)
    print(
        f"{len(paths)} runs x {len(paths[0])} points of {paths[0][0].size} numbers = {n_points} "
        f"points ({'synthetic' if args.synthetic else f'Mini runs, {gen_s:.1f} s to generate'})"
    )

    umap_s, umap_cpu, pca_s, pca_cpu = [], [], [], []
    for _ in range(args.rounds):  # alternating, so both see the same machine load
        s, c, m = cpu_timed(lambda: maps.trajectory_map(paths, labels, "umap", seed=0))
        assert m.projection.method == "umap", m.projection.note
        umap_s.append(s)
        umap_cpu.append(c)
        s, c, _ = cpu_timed(lambda: maps.trajectory_map(paths, labels, "pca"))
        pca_s.append(s)
        pca_cpu.append(c)
    med = statistics.median
    u, p = med(umap_s), med(pca_s)
    print(
        f"UMAP median wall {u:.3f} s, CPU {med(umap_cpu):.3f} s over {args.rounds} rounds "
        f"(bar <= {BAR_S} s wall: {'met' if u <= BAR_S else 'NOT met'}); PCA median wall "
        f"{p * 1000:.1f} ms, CPU {med(pca_cpu) * 1000:.1f} ms; UMAP/PCA wall {u / p:.0f}x"
    )

    a = np.concatenate(maps.trajectory_map(paths, labels, "umap", seed=0).paths)
    b = np.concatenate(maps.trajectory_map(paths, labels, "umap", seed=0).paths)
    c = np.concatenate(maps.trajectory_map(paths, labels, "umap", seed=1).paths)
    print(
        f"reproducible with seed 0: {np.array_equal(a, b)} (max |diff| {np.abs(a - b).max():.3g}); "
        f"seed 1 differs: {not np.array_equal(a, c)}"
    )


if __name__ == "__main__":
    main()
