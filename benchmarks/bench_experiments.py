"""The batched embedding-magnitude sweep against one generation, in one process, alternating.

    python benchmarks/bench_experiments.py [--steps 25] [--rounds 5] [--threads 1]

Bar (issue 5): the 7-factor sweep (one batched pipeline call,
`explorer.studies.sweeps.scale_embedding`) takes at most 3x one generation
(`explorer.engine.capture.trace`, the same settings), medians over alternating rounds; and each
of its images equals that factor run alone (same noise) to within 1/255 per pixel. Prints both,
and the plain pipeline's time for scale. Uses `explorer.engine.models.load_pipeline()` (the Mini
SD) when it loads, else the tiny random pipeline of benchmarks/common.py.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import time

import numpy as np
import torch
from common import PROMPT, load

from explorer.engine.capture import trace
from explorer.studies.sweeps import DEFAULT_FACTORS, scale_embedding


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--scheduler", default="ddim")
    parser.add_argument("--guidance", type=float, default=7.5)
    parser.add_argument("--rule", default="multiply")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    pipe, description = load(args.model)
    run_args = dict(steps=args.steps, guidance=args.guidance, scheduler=args.scheduler, seed=0)
    factors = list(DEFAULT_FACTORS)

    def one():
        return trace(pipe, PROMPT, **run_args)

    def sweep():
        return scale_embedding(pipe, PROMPT, factors, rule=args.rule, **run_args)

    def timed(fn) -> float:
        gc.collect()
        start, cpu_start = time.perf_counter(), time.process_time()
        fn()
        cpu[fn.__name__].append(time.process_time() - cpu_start)
        return time.perf_counter() - start

    cpu: dict[str, list[float]] = {"one": [], "sweep": []}  # this process's CPU seconds
    timed(one), timed(sweep)  # warm-up
    cpu = {"one": [], "sweep": []}
    times: dict[str, list[float]] = {"one": [], "sweep": []}
    for _ in range(args.rounds):
        times["one"].append(timed(one))
        times["sweep"].append(timed(sweep))

    # Each batched image against the same factor run alone (a batch of one, same noise).
    batched = sweep()
    worst = 0
    for k, run in zip(factors, batched.runs):
        alone = scale_embedding(pipe, PROMPT, [k], rule=args.rule, **run_args).runs[0]
        diff = np.abs(
            np.asarray(run.image, dtype=np.int16) - np.asarray(alone.image, dtype=np.int16)
        ).max()
        worst = max(worst, int(diff))
    plain = trace(pipe, PROMPT, **run_args).image
    k1 = batched.runs[factors.index(1.0)].image
    k1_diff = int(np.abs(np.asarray(k1, np.int16) - np.asarray(plain, np.int16)).max())

    base, med = statistics.median(times["one"]), statistics.median(times["sweep"])
    print(f"model: {description}; {args.steps} steps, {args.scheduler}, guidance {args.guidance}")
    print(f"threads: {torch.get_num_threads()}, rounds: {args.rounds}, rule: {args.rule}")
    print(f"{'one generation':>22}: {base * 1000:8.1f} ms  (median of {args.rounds})")
    print(
        f"{f'{len(factors)}-factor sweep':>22}: {med * 1000:8.1f} ms  ratio {med / base:5.2f}x"
        f"  (bar <= 3x: {'PASS' if med / base <= 3 else 'FAIL'})"
    )
    cpu_ratio = statistics.median(cpu["sweep"]) / statistics.median(cpu["one"])
    print(
        f"{'CPU seconds ratio':>22}: {cpu_ratio:5.2f}x  (wall time moves with the machine's load;"
        f" load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores)"
    )
    print(
        f"max pixel difference, batched vs each factor alone: {worst}/255"
        f"  (bar <= 1/255: {'PASS' if worst <= 1 else 'FAIL'})"
    )
    print(f"max pixel difference, batched k = 1 vs the plain run: {k1_diff}/255")


if __name__ == "__main__":
    main()
