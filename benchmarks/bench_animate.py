"""The shareable GIF of a run: how long it takes and how big it is.

    python benchmarks/bench_animate.py [--model mini-things] [--steps 25] [--rounds 5]

One traced run (the VAE attached, as the page's runs are), then per round, alternating:
  page    the page's "Steps as a GIF": frames from the already decoded pictures, written as GIF
  api     `trace.animate(path)`: decodes every x_t and x0 with the VAE first, then the same
Prints the medians (bar: the page's and the API's GIF of a 25-step run <= 1 s) and the GIF's
size (bar: <= 2 MB), and the WebP's size beside it.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import torch
from common import PROMPT, load, timed

from explorer.engine import animate
from explorer.engine.capture import trace
from explorer.studies.anatomy import run_pictures

BARS = {"seconds": 1.0, "megabytes": 2.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    pipe, what = load(args.model)
    run = trace(pipe, PROMPT, steps=args.steps, seed=0)
    out = Path(tempfile.mkdtemp(prefix="bench-animate-"))
    pictures = run_pictures(run)  # what the page holds after a run

    def page() -> None:
        frames = animate.frames(pictures.latents, pictures.x0, run.timesteps.tolist())
        animate.save(frames, out / "page.gif")

    times: dict[str, list[float]] = {"page": [], "api": []}
    for _ in range(args.rounds):
        times["page"].append(timed(page))
        times["api"].append(timed(lambda: run.animate(out / "api.gif")))
    run.animate(out / "api.webp")
    print(f"{what}, {args.steps} steps, {pictures.method} decode, medians of {args.rounds}:")
    for name, values in times.items():
        median = statistics.median(values)
        verdict = "ok" if median <= BARS["seconds"] else "OVER"
        print(f"  {name:5} {median:6.3f} s  (bar {BARS['seconds']:g} s: {verdict})")
    for kind in ("gif", "webp"):
        mb = (out / f"api.{kind}").stat().st_size / 2**20
        bar = f"  (bar {BARS['megabytes']:g} MB: {'ok' if mb <= BARS['megabytes'] else 'OVER'})"
        print(f"  {kind:5} {mb:6.2f} MB{bar if kind == 'gif' else ''}")


if __name__ == "__main__":
    main()
