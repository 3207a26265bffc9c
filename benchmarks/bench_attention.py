"""Overhead of cross-attention maps: a plain traced run vs one with attention=True, alternating.

    python benchmarks/bench_attention.py [--steps 25] [--rounds 7] [--threads 1]

Each round times `trace(...)` and then `trace(..., attention=True)`, so slow drifts on a busy
machine hit both sides alike. Prints both medians and their ratio (bar: <= 1.3x), and the
median of the per-round ratios. Uses the Mini SD when it loads, else the tiny random pipeline
(benchmarks/common.py).
"""

from __future__ import annotations

import argparse
import statistics

import torch
from common import PROMPT, load, timed

from explorer.engine.capture import trace

BAR = 1.3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--scheduler", default="ddim")
    parser.add_argument("--guidance", type=float, default=7.5)
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    pipe, description = load(args.model)
    pipe.set_progress_bar_config(disable=True)
    run_args = dict(steps=args.steps, guidance=args.guidance, scheduler=args.scheduler, seed=0)
    runs = {
        "trace": lambda: trace(pipe, PROMPT, **run_args),
        "trace+attention": lambda: trace(pipe, PROMPT, attention=True, **run_args),
    }
    for fn in runs.values():  # warm-up
        timed(fn)
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.rounds):
        for name, fn in runs.items():
            times[name].append(timed(fn))

    base, with_maps = (statistics.median(times[n]) for n in runs)
    per_round = statistics.median(a / b for a, b in zip(times["trace+attention"], times["trace"]))
    print(f"model: {description}; {args.steps} steps, {args.scheduler}, guidance {args.guidance}")
    print(f"threads: {torch.get_num_threads()}, rounds: {args.rounds}")
    print(f"{'trace':>16}: {base * 1000:8.1f} ms  (median)")
    print(f"{'trace+attention':>16}: {with_maps * 1000:8.1f} ms  (median)")
    ratio = with_maps / base
    verdict = "meets" if ratio <= BAR else "misses"
    print(
        f"ratio of medians {ratio:.3f}x ({verdict} the <= {BAR}x bar); "
        f"per-round median {per_round:.3f}x"
    )


if __name__ == "__main__":
    main()
