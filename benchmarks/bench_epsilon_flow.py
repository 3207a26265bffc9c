"""Epsilon or flow: mini-shapes (ε, DDIM) and mini-flow (v, flow Euler) side by side, one run.

    python benchmarks/bench_epsilon_flow.py [--prompts 16] [--flow explorer/mini/flow/model]

On held-out captions of the shapes world (seeds past the held-out boundary, none of them the
evaluation's), each prompt with its own seed, both models from the same noise at guidance 5, on
the trailing grid (N steps from pure noise, each 1/N of the way: mini-shapes' DDIM config, and for
mini-flow FluxPipeline's σ grid, which its scheduler then shifts by 0.75):

- straightness of the 25-step path x_T, ..., x_0 (length over the steps ÷ start-to-end distance;
  1 = straight): the median over the prompts. Bar: mini-flow's below mini-shapes'.
- few steps: mean pixel distance (0–255) of each model's 4-step picture to its own 50-step
  picture, over the prompts (1, 2 and 8 steps printed beside). Bar: mini-flow's the smaller.
"""

from __future__ import annotations

import argparse
import statistics

import common  # noqa: F401 -- puts the repository on sys.path
import numpy as np
import torch

from explorer.engine.models import load_pipeline
from explorer.mini import data
from explorer.studies import epsilon_or_flow as eof


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--epsilon", default="mini-shapes")
    parser.add_argument("--flow", default="mini-flow")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    pipes = {"epsilon": load_pipeline(args.epsilon, "cpu"), "flow": load_pipeline(args.flow, "cpu")}
    _, _, scenes = data.batch(data.heldout_seeds(args.prompts, 9000))
    results = []
    for i, scene in enumerate(scenes):
        prompt = data.full_caption(scene)
        results.append(eof.run(pipes, prompt, seed=i))
        r = results[-1]
        print(
            f"{prompt!r:70} straightness ε {r.straightness['epsilon']:.3f}  "
            f"flow {r.straightness['flow']:.3f}"
        )
    print(f"\n{args.prompts} held-out prompts, {eof.STEPS} steps, guidance {eof.GUIDANCE}")
    print(f"{'':28}{'mini-shapes (ε)':>18}{'mini-flow (v)':>16}")
    median = {m: statistics.median(r.straightness[m] for r in results) for m in eof.MODELS}
    print(f"{'straightness, median':28}{median['epsilon']:>18.3f}{median['flow']:>16.3f}")
    for k, n in enumerate(eof.FEW_STEPS):
        mean = {m: float(np.mean([r.distance[m][k] for r in results])) for m in eof.MODELS}
        label = f"{n} steps vs own {eof.REFERENCE_STEPS}, px"
        print(f"{label:28}{mean['epsilon']:>18.2f}{mean['flow']:>16.2f}")
    four = eof.FEW_STEPS.index(4)
    few = {m: float(np.mean([r.distance[m][four] for r in results])) for m in eof.MODELS}
    print(f"\nstraightness: flow below epsilon: {median['flow'] < median['epsilon']}")
    print(f"4 steps: flow nearer its 50-step picture: {few['flow'] < few['epsilon']}")


if __name__ == "__main__":
    main()
