"""The Mini SD's speed (issue 2): one guided 25-step generation at 64x64, and loading the folder.

    python benchmarks/bench_mini.py [--rounds 7] [--steps 25] [--threads 1]

Medians over rounds, measured side by side in one process:
  generate   the plain diffusers call `pipe(prompt, num_inference_steps=25, guidance_scale=7.5)`
             (bar: <= 0.5 s); a traced run (`explorer.trace`, same settings) beside it
  load       `StableDiffusionPipeline.from_pretrained(<the Mini folder>)`, uncached: the loader
             under `explorer.load_pipeline`'s cache, called afresh each round (bar: <= 1 s)
The machine's load average is printed too: on a shared CPU the wall-clock figures move with it,
so each line also gives this process's CPU seconds (what the call costs when it has a core).
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time
from pathlib import Path

import diffusers
import torch
import transformers

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from explorer.capture import trace  # noqa: E402
from explorer.models import MINI_DIR, _load  # noqa: E402

PROMPT = "a large red circle on a blue background"
BARS = {"generate": 0.5, "load": 1.0}


def timed(fn) -> tuple[float, float]:
    """(wall seconds, this process's CPU seconds) of one call."""
    gc.collect()
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--guidance", type=float, default=7.5)
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.disable_progress_bar()

    load = _load.__wrapped__  # the uncached loader: from_pretrained on the folder, every call
    pipe = load(str(MINI_DIR), "cpu")
    common = dict(num_inference_steps=args.steps, guidance_scale=args.guidance)

    def plain():
        pipe(PROMPT, generator=torch.Generator("cpu").manual_seed(0), **common)

    def traced():
        trace(pipe, PROMPT, steps=args.steps, guidance=args.guidance, seed=0)

    plain(), traced(), load(str(MINI_DIR), "cpu")  # warm-up
    times: dict[str, list[tuple[float, float]]] = {"generate": [], "traced": [], "load": []}
    for _ in range(args.rounds):
        times["generate"].append(timed(plain))
        times["traced"].append(timed(traced))
        times["load"].append(timed(lambda: load(str(MINI_DIR), "cpu")))

    before = os.getloadavg()
    print(f"Mini SD, {args.steps} steps, guidance {args.guidance}, 64x64, "
          f"threads {torch.get_num_threads()}, rounds {args.rounds}, medians:")  # fmt: skip
    wall = {name: statistics.median(w for w, _ in v) for name, v in times.items()}
    for name, values in times.items():
        med, cpu = wall[name], statistics.median(c for _, c in values)
        bar = BARS.get(name)
        verdict = f"(bar {bar:g} s: {'PASS' if med <= bar else 'FAIL'})" if bar else "(reported)"
        runs = ", ".join(f"{w:.3f}" for w, _ in values)
        print(f"  {name:9s} {med:7.3f} s wall, {cpu:6.3f} s CPU  {verdict}  [{runs}]")
    ratio = wall["traced"] / wall["generate"]
    print(f"  traced / plain: {ratio:.2f}x")
    print(f"load average (1, 5, 15 min): {before[0]:.2f} {before[1]:.2f} {before[2]:.2f} "
          f"on {os.cpu_count()} cores")  # fmt: skip


if __name__ == "__main__":
    main()
