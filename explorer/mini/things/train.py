"""Train ``mini-things`` from nothing: ``python -m explorer.mini.train --world things``.

Stages, in order, each resumable in ``--work`` (stop at any time, run the same command again):
``vae`` (``train_vae``), ``clip`` (``train_clip``), ``unet`` (``train_unet``: the pool is encoded by
``<work>/vae`` when the vae stage ran there, else by the committed VAE), ``package`` (the diffusers
folder, ``package``). Each stage's own command takes more options (step counts, learning rates):
``python -m explorer.mini.things.train_unet --help``. ``--smoke``: a few steps of each, into
``<work>/model``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

STAGES = ("vae", "clip", "unet", "package")


def main(argv: list[str] | None = None) -> None:
    from explorer.mini.things import package, parts, train_clip, train_unet, train_vae

    p = argparse.ArgumentParser(
        prog="python -m explorer.mini.train --world things",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--stage", nargs="+", choices=[*STAGES, "all"], default=["all"])
    p.add_argument("--work", type=Path, default=Path("runs/things"), help="checkpoints and logs")
    p.add_argument("--out", type=Path, default=None, help="model folder (default: the shipped)")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--device", default="cpu")
    p.add_argument("--smoke", action="store_true", help="a few steps of each stage")
    args = p.parse_args(argv)
    stages = STAGES if "all" in args.stage else args.stage
    common = ["--work", str(args.work), "--threads", str(args.threads), "--device", args.device]
    common += ["--smoke"] if args.smoke else []
    out = args.out or (args.work / "model" if args.smoke else parts.MODEL_DIR)
    trained_vae = args.work / "vae"  # the vae stage's, once it has finished
    for stage in STAGES:
        if stage not in stages:
            continue
        print(f"== stage {stage}", flush=True)
        vae = trained_vae if (trained_vae / "config.json").is_file() else parts.MODEL_DIR / "vae"
        if stage == "vae":
            train_vae.main(common)
        elif stage == "clip":
            train_clip.main(common)
        elif stage == "unet":
            train_unet.main([*common, "--vae", str(vae)])
        else:
            package.main(["--work", str(args.work), "--out", str(out), "--vae", str(vae)])
