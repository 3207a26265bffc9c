"""The Mini SDs' speed (issues 2, 25): one guided 25-step generation, and loading the folder.

    python benchmarks/bench_mini.py [--rounds 7] [--steps 25] [--threads 1] [--model NAME ...]

Medians over rounds, measured side by side in one process:
  generate   the plain diffusers call `pipe(prompt, num_inference_steps=25, guidance_scale=7.5)`
             on the pipeline `explorer.load_pipeline` gives (bar: <= 0.5 s); beside it a traced
             run (`explorer.trace`, same settings) and the same call with the UNet's eager
             forward (`explorer.engine.fastpath` off); mini-things' bar is 0.6 s, its prompt
             one of its world
  load       `StableDiffusionPipeline.from_pretrained(<the Mini folder>)`, uncached: the loader
             under `explorer.load_pipeline`'s cache, called afresh each round (bar: <= 1 s)
  first      load, then one generation: the first call at a new input shape also makes the
             fast path's trace of the UNet (reported)
With ``--model`` given more than once (say the shipped folder and a retrained one), every folder
is timed in the same rounds, one after another, so their figures compare on equal terms.
The machine's load average is printed too: on a shared CPU the wall-clock figures move with it,
so each line also gives this process's CPU seconds (what the call costs when it has a core).
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import time

import common  # noqa: F401 -- puts the repository on sys.path
import diffusers
import torch
import transformers

from explorer.engine.capture import trace
from explorer.engine.models import MINI_DIR, MINI_MODELS, ModelError, _load, mini_name

PROMPT = "a large red circle on a blue background"
PROMPTS = {str(MINI_MODELS["mini-things"]): "a cat on a blue background"}  # else the shapes'
BARS = {"generate": 0.5, "load": 1.0}
MODEL_BARS = {str(MINI_MODELS["mini-things"]): {"generate": 0.6}}  # issue 25's bars


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
    parser.add_argument(
        "--model",
        action="append",
        help="mini-shapes, mini-things or a folder (repeat to compare; default: the Mini)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.disable_progress_bar()

    load = _load.__wrapped__  # the uncached loader: from_pretrained on the folder, every call
    named = [MINI_MODELS[mini_name(m)] if mini_name(m) else m for m in args.model or [MINI_DIR]]
    folders = [str(m) for m in named]  # an embedded model's name, or a folder
    try:
        pipes = {m: load(m, "cpu") for m in folders}
        eager = {m: load(m, "cpu") for m in folders}
    except ModelError as e:
        parser.error(f"--model: {e}")
    run_args = dict(num_inference_steps=args.steps, guidance_scale=args.guidance)
    for pipe in eager.values():
        pipe.unet.__dict__.pop("forward", None)  # back to UNet2DConditionModel.forward

    def calls(m: str) -> dict:
        pipe, prompt = pipes[m], PROMPTS.get(m, PROMPT)
        return {
            "generate": lambda: pipe(
                prompt, generator=torch.Generator("cpu").manual_seed(0), **run_args
            ),
            "traced": lambda: trace(pipe, prompt, steps=args.steps, guidance=args.guidance, seed=0),
            "eager": lambda: eager[m](
                prompt, generator=torch.Generator("cpu").manual_seed(0), **run_args
            ),
            "load": lambda: load(m, "cpu"),
            "first": lambda: load(m, "cpu")(
                prompt, generator=torch.Generator("cpu").manual_seed(0), **run_args
            ),
        }

    for m in folders:  # warm-up
        for fn in calls(m).values():
            fn()
    times = {m: {name: [] for name in calls(m)} for m in folders}
    for _ in range(args.rounds):
        for m in folders:
            for name, fn in calls(m).items():
                times[m][name].append(timed(fn))

    print(
        f"Mini SD, {args.steps} steps, guidance {args.guidance}, "
        f"threads {torch.get_num_threads()}, rounds {args.rounds}, medians:"
    )
    for m in folders:
        if len(folders) > 1:
            print(f" {m} ({pipes[m].unet.config.sample_size * pipes[m].vae_scale_factor} px):")
        wall = {name: statistics.median(w for w, _ in v) for name, v in times[m].items()}
        for name, values in times[m].items():
            med, cpu = wall[name], statistics.median(c for _, c in values)
            bar = {**BARS, **MODEL_BARS.get(m, {})}.get(name)
            verdict = (
                f"(bar {bar:g} s: {'PASS' if med <= bar else 'FAIL'})" if bar else "(reported)"
            )
            runs = ", ".join(f"{w:.3f}" for w, _ in values)
            print(f"  {name:9s} {med:7.3f} s wall, {cpu:6.3f} s CPU  {verdict}  [{runs}]")
        print(
            f"  traced / plain: {wall['traced'] / wall['generate']:.2f}x, "
            f"eager UNet / plain: {wall['eager'] / wall['generate']:.2f}x"
        )
    load_avg = os.getloadavg()
    print(
        f"load average (1, 5, 15 min): {load_avg[0]:.2f} {load_avg[1]:.2f} {load_avg[2]:.2f} "
        f"on {os.cpu_count()} cores"
    )


if __name__ == "__main__":
    main()
