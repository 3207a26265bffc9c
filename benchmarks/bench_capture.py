"""Overhead of tracing: the plain pipeline vs `explorer.trace`, in one process, alternating.

    python benchmarks/bench_capture.py [--steps 25] [--rounds 5] [--threads 1]

Each round runs the plain pipeline before every variant, so slow drifts (another job on the
machine, CPU clocks) hit both sides alike; ratios are medians over rounds. Variants:
  trace            no decoding                                 (bar: <= 1.05x)
  trace+preview    a linear latent->RGB preview of every step  (bar: <= 1.10x)
  trace+vae        then a batched VAE decode of every step's x_0 (reported)
Uses `explorer.engine.models.load_pipeline()` (the Mini SD) when it loads, else the tiny
random pipeline of benchmarks/common.py.
"""

from __future__ import annotations

import argparse
import statistics

import torch
from common import PROMPT, load, timed
from diffusers import StableDiffusionPipeline

from explorer.engine.capture import trace
from explorer.engine.schedulers import make_scheduler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--scheduler", default="euler")
    parser.add_argument("--guidance", type=float, default=7.5)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: see docs/)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    pipe, description = load(args.model)
    pipe.set_progress_bar_config(disable=True)
    plain_pipe = StableDiffusionPipeline(
        **{**pipe.components, "scheduler": make_scheduler(pipe, args.scheduler)},
        requires_safety_checker=False,
    )
    plain_pipe.set_progress_bar_config(disable=True)
    run_args = dict(steps=args.steps, guidance=args.guidance, scheduler=args.scheduler, seed=0)

    def plain():
        g = torch.Generator("cpu").manual_seed(0)
        plain_pipe(
            PROMPT, num_inference_steps=args.steps, guidance_scale=args.guidance, generator=g
        )

    variants = {
        "trace": lambda: trace(pipe, PROMPT, **run_args),
        "trace+preview": lambda: trace(pipe, PROMPT, preview=True, **run_args),
        "trace+vae": lambda: trace(pipe, PROMPT, **run_args).decode(what="x0", method="vae"),
    }

    timed(plain), [timed(fn) for fn in variants.values()]  # warm-up
    times: dict[str, list[float]] = {"plain": [], **{k: [] for k in variants}}
    for _ in range(args.rounds):
        for name, fn in variants.items():
            times["plain"].append(timed(plain))
            times[name].append(timed(fn))

    base = statistics.median(times["plain"])
    print(f"model: {description}; {args.steps} steps, {args.scheduler}, guidance {args.guidance}")
    print(f"threads: {torch.get_num_threads()}, rounds: {args.rounds}")
    print(f"{'plain':>14}: {base * 1000:8.1f} ms  (median of {len(times['plain'])})")
    for name in variants:
        med = statistics.median(times[name])
        print(f"{name:>14}: {med * 1000:8.1f} ms  ratio {med / base:5.3f}x")


if __name__ == "__main__":
    main()
