"""Command line: trace one run and write it to a folder.

    python -m explorer trace "a red circle on a blue background" --steps 25 --scheduler euler \\
        --out runs/red-circle [--model PATH]

writes runs/red-circle/ with the saved trace (trace.json, tensors.safetensors, image.png: the
final image) and strip.png: x_t over the steps (top row) and the x_0 each step predicts (below).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from explorer.engine.schedulers import SCHEDULERS, make_scheduler


def _number(kind, low=None, high=None, low_open=False):
    """An argparse type: `kind` within [low, high] (or (low, high]), with a plain message."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a valid {kind.__name__}") from None
        too_low = low is not None and (value <= low if low_open else value < low)
        if too_low or (high is not None and value > high):
            lo = "(" if low_open else "["
            raise argparse.ArgumentTypeError(f"{value} is outside {lo}{low}, {high}]")
        return value

    return parse


def _size(text: str) -> int:
    value = _number(int, 8, 4096)(text)
    if value % 8:
        raise argparse.ArgumentTypeError(f"{value} is not a multiple of 8")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m explorer", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("trace", help="run a pipeline and save every step")
    p.add_argument("prompt", help="the text prompt")
    p.add_argument("--negative", default="", help="negative prompt (default: empty)")
    p.add_argument("--steps", type=_number(int, 1, 1000), default=25, help="denoising steps")
    p.add_argument("--scheduler", choices=list(SCHEDULERS), default="ddim", help="sampler")
    p.add_argument("--guidance", type=_number(float, 0, 100), default=7.5, help="CFG scale")
    p.add_argument("--seed", type=_number(int, 0, 2**63 - 1), default=0, help="random seed")
    p.add_argument("--height", type=_size, default=None, help="image height (model default)")
    p.add_argument("--width", type=_size, default=None, help="image width (model default)")
    p.add_argument("--image", type=Path, default=None, help="init image: runs img2img")
    p.add_argument(
        "--strength", type=_number(float, 0, 1, low_open=True), default=0.6, help="img2img strength"
    )
    p.add_argument("--out", type=Path, required=True, help="output folder (created)")
    p.add_argument("--model", default=None, help="diffusers folder or id (default: Mini SD)")
    p.add_argument("--device", default=None, help="torch device (default: automatic)")
    p.add_argument(
        "--strip", choices=["vae", "preview"], default="vae", help="how strip.png is decoded"
    )
    return parser


def run_trace(args: argparse.Namespace) -> Path:
    """Load the model, trace with a progress bar, save the trace and the strip; returns the folder."""
    from PIL import Image
    from tqdm import tqdm

    from explorer.engine.capture import trace
    from explorer.engine.decode import image_grid
    from explorer.engine.models import load_pipeline

    init = None
    if args.image is not None:
        with Image.open(args.image) as im:
            init = im.convert("RGB")
    pipe = load_pipeline(args.model, args.device)
    pipe.set_progress_bar_config(disable=True)  # ours below counts the same steps
    if init is None:
        sched = make_scheduler(pipe, args.scheduler)
        sched.set_timesteps(args.steps)
        total = len(sched.timesteps)  # PNDM runs one step more
    else:
        total = int(args.steps * args.strength)
    with tqdm(total=total, desc="denoising", unit="step") as bar:
        t = trace(
            pipe,
            args.prompt,
            negative_prompt=args.negative,
            steps=args.steps,
            guidance=args.guidance,
            seed=args.seed,
            scheduler=args.scheduler,
            height=args.height,
            width=args.width,
            image=init,
            strength=args.strength,
            on_step=lambda partial: bar.update(1),
        )
    folder = t.save(args.out)
    latents = t.decode(what="latents", method=args.strip)  # T+1 images
    x0 = t.decode(what="x0", method=args.strip)  # T images, x0[i] predicted from x_t = latents[i]
    image_grid([latents, x0]).save(folder / "strip.png")
    return folder


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status (0 ok, 1 failed run, 2 bad arguments)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.image is not None and not args.image.is_file():
        parser.error(f"--image {args.image}: no such file")
    if args.image is not None and (args.height or args.width):
        parser.error("--height/--width do not apply to img2img: resize the --image instead")
    if args.out.exists() and not args.out.is_dir():
        parser.error(f"--out {args.out}: exists and is not a folder")
    try:
        folder = run_trace(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, OSError, ImportError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"wrote {folder}/ (trace.json, tensors.safetensors, image.png, strip.png)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
