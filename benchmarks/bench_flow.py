"""Overhead of tracing a flow model: the plain SD3 pipeline vs `trace`, in one process, alternating.

    python benchmarks/bench_flow.py [--steps 25] [--rounds 15] [--guidance 4.5] [--threads 1]

Runs on the tiny random SD3 pipeline (`explorer.engine.tiny_flow.tiny_sd3_pipe`: a two-layer
SD3 transformer, two CLIP towers, no T5), the worst case for overhead since every model call
is short. Each round runs the plain pipeline and the trace side by side, in turn first (ABBA),
so slow drifts (another job on the machine, CPU clocks) hit both sides alike; the ratio is of
the medians over rounds, of wall time (the bar) and of this process's CPU time (less moved by
other jobs on a shared machine). Bar: trace <= 1.05x the plain pipeline.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time

import torch
from common import PROMPT
from diffusers import FlowMatchEulerDiscreteScheduler, StableDiffusion3Pipeline

from explorer.engine.capture import trace
from explorer.engine.tiny_flow import tiny_sd3_pipe


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--guidance", type=float, default=4.5)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: see docs/)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    pipe = tiny_sd3_pipe()

    def plain():
        fresh = FlowMatchEulerDiscreteScheduler.from_config(pipe.scheduler.config)
        run = StableDiffusion3Pipeline(**{**pipe.components, "scheduler": fresh})
        run.set_progress_bar_config(disable=True)
        g = torch.Generator("cpu").manual_seed(0)
        run(PROMPT, num_inference_steps=args.steps, guidance_scale=args.guidance, generator=g)

    def traced():
        trace(pipe, PROMPT, steps=args.steps, guidance=args.guidance, seed=0)

    sides = {"plain": plain, "trace": traced}
    for fn in sides.values():  # warm-up
        fn()
    wall: dict[str, list[float]] = {"plain": [], "trace": []}
    cpu: dict[str, list[float]] = {"plain": [], "trace": []}
    for r in range(args.rounds):
        for name in ("plain", "trace") if r % 2 == 0 else ("trace", "plain"):
            gc.collect()
            w, c = time.perf_counter(), time.process_time()
            sides[name]()
            wall[name].append(time.perf_counter() - w)
            cpu[name].append(time.process_time() - c)

    med = {k: statistics.median(v) for k, v in wall.items()}
    med_cpu = {k: statistics.median(v) for k, v in cpu.items()}
    print(f"model: tiny random SD3 (explorer.engine.tiny_flow); {args.steps} steps, flow_euler,")
    print(f"guidance {args.guidance}; threads: {torch.get_num_threads()}, rounds: {args.rounds}")
    for name in sides:
        print(f"{name:>8}: {med[name] * 1000:8.1f} ms wall, {med_cpu[name] * 1000:8.1f} ms CPU")
    ratio, ratio_cpu = med["trace"] / med["plain"], med_cpu["trace"] / med_cpu["plain"]
    print(f"   ratio: {ratio:5.3f}x wall (bar 1.05x), {ratio_cpu:5.3f}x CPU")


if __name__ == "__main__":
    main()
