"""Command line: trace one run and write it to a folder.

    python -m explorer trace "a red circle on a blue background" --steps 25 --scheduler euler \\
        --out runs/red-circle [--model PATH]

writes runs/red-circle/ with the saved trace (trace.json, tensors.safetensors, image.png: the
final image) and strip.png: x_t over the steps (top row) and the x_0 each step predicts (below).

Every control's type, range, default and help come from `explorer.inputs.controls.CONTROLS`,
the registry the web app's sliders and the API read too, and its refusals use the same words.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from explorer.inputs.controls import (
    CONTROLS,
    ControlError,
    validate_float,
    validate_int,
    validate_size,
    validate_strength,
)


def _argument_type(name: str, check: Callable[[str], Any]) -> Callable[[str], Any]:
    """An argparse type: `check(text)`, its ControlError turned into argparse's own error."""

    def parse(text: str) -> Any:
        try:
            return check(text)
        except ControlError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    parse.__name__ = name  # argparse names the type in some of its messages
    return parse


def control_type(name: str) -> Callable[[str], int | float]:
    """An argparse type for the registry's int or float control `name`: its range, its words."""
    kind = CONTROLS[name].kind
    if kind not in ("int", "float"):
        raise ValueError(f"control {name!r} is a {kind} control, not a number")
    validate = validate_int if kind == "int" else validate_float
    return _argument_type(name, lambda text: validate(name, text))


def _size(text: str) -> int | None:
    """A height or width by the size control's rule (multiple of 8, 64 to its maximum); 0: None."""
    return validate_size(text) or None  # 0 is the model's own size, as no flag at all


def _strength(text: str) -> float:
    """An img2img strength in (0, 1]: the strength control's range, without its 0."""
    value = validate_float("strength", text)
    if value == 0:
        high = CONTROLS["strength"].maximum
        raise ControlError(f"strength must be above 0 and at most {high:g}, got 0")
    return value


def _add_control(p: argparse.ArgumentParser, flag: str, name: str, **kwargs: Any) -> None:
    """An option for the registry's control `name`, with its default and its help."""
    c = CONTROLS[name]
    help = c.help.replace("%", "%%")  # argparse %-formats help strings
    p.add_argument(flag, default=c.default, help=help, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m explorer", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("trace", help="run a pipeline and save every step")
    p.add_argument("prompt", help=CONTROLS["prompt"].help)
    _add_control(p, "--negative", "negative_prompt")
    _add_control(p, "--steps", "steps", type=control_type("steps"))
    _add_control(p, "--scheduler", "scheduler", choices=CONTROLS["scheduler"].choices)
    _add_control(p, "--spacing", "spacing", choices=CONTROLS["spacing"].choices)
    _add_control(p, "--guidance", "guidance", type=control_type("guidance"))
    _add_control(p, "--seed", "seed", type=control_type("seed"))
    size = _argument_type("size", _size)
    p.add_argument("--height", type=size, default=None, help="image height (default: the model's)")
    p.add_argument("--width", type=size, default=None, help="image width (default: the model's)")
    p.add_argument("--image", type=Path, default=None, help="init image: runs img2img")
    _add_control(p, "--strength", "strength", type=_argument_type("strength", _strength))
    p.add_argument("--out", type=Path, required=True, help="output folder (created)")
    p.add_argument(
        "--model",
        default=None,
        help="mini-shapes, mini-things, mini-flow (samples with flow Euler), a diffusers folder "
        "or a hub id (default: mini-shapes)",
    )
    p.add_argument("--device", default=None, help="torch device (default: automatic)")
    p.add_argument(
        "--strip", choices=["vae", "preview"], default="vae", help="how strip.png is decoded"
    )
    for kind in ("gif", "webp"):
        p.add_argument(
            f"--{kind}",
            action="store_true",
            help=f"also write steps.{kind}: each step's x_t beside its predicted x0, animated",
        )
    p.add_argument(
        "--report", action="store_true", help="also write report.html: the run, opens offline"
    )
    return parser


def run_trace(args: argparse.Namespace) -> Path:
    """Load the model, trace with a progress bar, save the trace and the strip.

    Returns the folder written."""
    from PIL import Image
    from tqdm import tqdm

    from explorer.engine.animate import frames
    from explorer.engine.animate import save as save_animation
    from explorer.engine.capture import trace
    from explorer.engine.decode import image_grid
    from explorer.engine.kinds import kind as pipeline_kind
    from explorer.engine.models import load_pipeline
    from explorer.engine.schedulers import make_scheduler

    init = None
    if args.image is not None:
        with Image.open(args.image) as im:
            init = im.convert("RGB")
    pipe = load_pipeline(args.model, args.device)
    pipe.set_progress_bar_config(disable=True)  # ours below counts the same steps
    spacing = None if args.spacing == "model" else args.spacing
    scheduler = args.scheduler
    if pipeline_kind(pipe) == "flow" and scheduler == CONTROLS["scheduler"].default:
        scheduler = None  # the default sampler is an epsilon one: a flow model's own is flow Euler
    if pipeline_kind(pipe) == "flow" or init is not None:
        total = int(args.steps * args.strength) if init is not None else args.steps
    else:
        sched = make_scheduler(pipe, scheduler, spacing)
        sched.set_timesteps(args.steps)
        total = len(sched.timesteps)  # PNDM runs one step more
    with tqdm(total=total, desc="denoising", unit="step") as bar:
        t = trace(
            pipe,
            args.prompt,
            negative_prompt=args.negative,
            steps=args.steps,
            guidance=args.guidance,
            seed=args.seed,
            scheduler=scheduler,
            spacing=spacing,
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
    kinds = [kind for kind in ("gif", "webp") if getattr(args, kind)]
    animation = frames(latents, x0, t.timesteps.tolist()) if kinds else []
    for kind in kinds:
        save_animation(animation, folder / f"steps.{kind}")
    if args.report:
        from explorer.ui.report import write_report

        write_report(t, folder / "report.html", method=args.strip)
    return folder


def _check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """What no single argument can check alone; exits through `parser.error` (status 2)."""
    if args.image is not None:
        if not args.image.is_file():
            parser.error(f"--image {args.image}: no such file")
        if args.height or args.width:
            parser.error("--height/--width do not apply to img2img: resize the --image instead")
        try:
            validate_strength(args.strength, args.steps)
        except ControlError as e:
            parser.error(f"--strength: {e}")
    if args.out.exists() and not args.out.is_dir():
        parser.error(f"--out {args.out}: exists and is not a folder")


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status (0 ok, 1 failed run, 2 bad arguments)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    _check(parser, args)
    try:
        folder = run_trace(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, OSError, ImportError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    extra = "".join(f", steps.{k}" for k in ("gif", "webp") if getattr(args, k))
    extra += ", report.html" if args.report else ""
    print(f"wrote {folder}/ (trace.json, tensors.safetensors, image.png, strip.png{extra})")
    return 0
