"""Train the Mini Stable Diffusion: ``python -m explorer.mini.train [--stage NAME ...|all]``.

Stages run in order: vae, pool, clip, vision, text, unet, refine, decoder, export. The UNet needs
the VAE's latents (``pool`` encodes its training pictures once) and the CLIP text tower's states;
the vision stage teaches CLIP's image tower shapes with the text tower frozen, the text stage
teaches both towers the shape words together (the text states anchored near the vision stage's),
the refine stage fine-tunes the UNet with the shape's own latent cells weighted up, and the
decoder stage sharpens the VAE decoder without moving the latent space the UNet learned. Stages
with no steps are skipped. ``--recipe`` picks the step counts (``RECIPES``: the shipped weights',
or one sized for a 2-core CPU) and ``--side-by-side`` runs vae, pool and decoder in a second
process beside the CLIP stages, one thread each. Each stage writes a resumable checkpoint to
``--work`` every ``save_every`` steps: stop it at any time and run the same command again to
continue.
``--smoke`` runs a few steps of each stage (used in CI so this script cannot rot). Seeds are
fixed; the metrics go to ``<work>/metrics.json``. The CLIP stages are in ``clip_stages``, the
UNet's (pool, unet, refine) in ``unet_stages``; the shared loop, checkpoints and
``load_stage_model`` in ``loop``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch
import torch.nn.functional as F

from explorer.mini import architecture as arch
from explorer.mini import data
from explorer.mini.clip_stages import train_clip, train_text, train_vision
from explorer.mini.config import Config
from explorer.mini.loop import (
    Checkpoint,
    autocast,
    lr_at,
    optimize,
    train_loop,
)
from explorer.mini.unet_stages import encode_pool, train_refine, train_unet


def train_vae(cfg: Config, work: Path, device: torch.device, metrics: dict) -> None:
    """AutoencoderKL on random training images: MSE + L1 + a tiny KL, as in SD's first stage."""
    torch.manual_seed(cfg.seed)
    vae = arch.build_vae().to(device)
    opt = torch.optim.AdamW(vae.parameters(), lr=cfg.vae_lr, weight_decay=0.0)

    def step_fn(step: int) -> float:
        seeds = range(step * cfg.vae_batch, (step + 1) * cfg.vae_batch)
        x = torch.from_numpy(data.batch(seeds)[0]).to(device)  # (B, 3, 64, 64) in [-1, 1]
        for g in opt.param_groups:
            g["lr"] = lr_at(step, cfg.vae_steps, cfg.vae_lr)
        with autocast(device):
            post = vae.encode(x).latent_dist  # mean, std: (B, 4, 16, 16)
            recon = vae.decode(post.sample()).sample.float()  # (B, 3, 64, 64)
        kl = post.kl().mean() / x[0].numel()
        loss = F.mse_loss(recon, x) + 0.5 * F.l1_loss(recon, x) + cfg.vae_kl * kl
        return optimize(opt, vae.parameters(), loss)

    train_loop(
        "vae", cfg.vae_steps, step_fn, Checkpoint(work, "vae"), dict(vae=vae, opt=opt), cfg, metrics
    )


def edge_loss(recon: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """L1 between the horizontal and vertical pixel differences of two (B, 3, H, W) batches: it
    rewards sharp outlines, which plain MSE blurs."""
    dx = lambda a: a[..., :, 1:] - a[..., :, :-1]  # noqa: E731
    dy = lambda a: a[..., 1:, :] - a[..., :-1, :]  # noqa: E731
    return F.l1_loss(dx(recon), dx(x)) + F.l1_loss(dy(recon), dy(x))


def train_decoder(cfg: Config, work: Path, device: torch.device, metrics: dict) -> None:
    """Fine-tune only the VAE decoder: sharper pictures, same latent space (the UNet stays valid).

    The loss adds ``edge_loss`` to MSE and L1, so small shapes keep their corners."""
    torch.manual_seed(cfg.seed + 1)
    vae = arch.build_vae()
    vae.load_state_dict(torch.load(work / "vae.pt", map_location="cpu", weights_only=True)["vae"])
    vae = vae.to(device)
    vae.encoder.requires_grad_(False)
    vae.quant_conv.requires_grad_(False)
    params = [p for p in vae.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.decoder_lr, weight_decay=0.0)
    offset = 200_000_000  # fresh training seeds

    def step_fn(step: int) -> float:
        seeds = range(offset + step * cfg.vae_batch, offset + (step + 1) * cfg.vae_batch)
        x = torch.from_numpy(data.batch(seeds)[0]).to(device)  # (B, 3, 64, 64)
        for g in opt.param_groups:
            g["lr"] = lr_at(step, cfg.decoder_steps, cfg.decoder_lr, warmup=50)
        with torch.no_grad(), autocast(device):
            z = vae.encode(x).latent_dist.sample().float()  # (B, 4, 16, 16)
        with autocast(device):
            recon = vae.decode(z).sample.float()
        loss = F.mse_loss(recon, x) + 0.5 * F.l1_loss(recon, x) + 0.5 * edge_loss(recon, x)
        return optimize(opt, params, loss)

    objs = dict(vae=vae, opt=opt)
    train_loop(
        "decoder", cfg.decoder_steps, step_fn, Checkpoint(work, "decoder"), objs, cfg, metrics
    )


# The training stages in the order "all" runs them (export follows); each has a ``<name>_steps``.
TRAINERS = {
    "vae": train_vae,
    "clip": train_clip,
    "vision": train_vision,
    "text": train_text,
    "unet": train_unet,
    "refine": train_refine,
    "decoder": train_decoder,
}
STEP_SETTINGS = [f"{name}_steps" for name in TRAINERS]
# settings the command line can change
OVERRIDES = [
    *STEP_SETTINGS,
    "unet_lr",
    "unet_batch",
    "refine_batch",
    "unet_pool",
    "clip_shapes",
    "clip_positions",
    "unet_shape_weight",
    "unet_bf16",
]
ORDER = ["vae", "pool", "clip", "vision", "text", "unet", "refine", "decoder", "export"]
SIDE_TRACK = ("vae", "pool", "decoder")  # --side-by-side: a second process, beside the CLIP stages
# Settings of a whole run. "shipped": the Config defaults, the recipe of the shipped weights (their
# UNet stages ran on a GPU; about 8.3 hours on a 2-core CPU). "cpu": a retrain sized for a 2-core
# CPU with --side-by-side: CLIP learns the shape and position words from the start (no vision/text
# stages) beside the VAE, pool and decoder; then the UNet, under bfloat16 autocast, with the
# shape's cells weighted up from the start (no refine stage).
RECIPES = {
    "shipped": {},
    "cpu": dict(
        vae_steps=1400,
        decoder_steps=200,
        clip_steps=1800,
        clip_shapes=1,
        clip_positions=1,
        vision_steps=0,
        text_steps=0,
        unet_steps=7700,
        unet_batch=128,
        unet_lr=1.6e-3,
        unet_pool=20_000,
        unet_shape_weight=1.0,
        unet_bf16=1,
        refine_steps=0,
    ),
}
SMOKE = dict(
    vae_steps=2,
    vae_batch=4,
    decoder_steps=2,
    clip_steps=2,
    clip_batch=8,
    vision_steps=2,
    text_steps=2,
    unet_steps=3,
    refine_steps=2,
    refine_batch=8,
    unet_batch=8,
    unet_pool=64,
    save_every=1,
)


def run_stage(stage: str, cfg: Config, args, metrics: dict) -> None:
    device = torch.device(args.device)
    t0 = time.time()
    if stage == "export":
        from explorer.mini.package import export

        print(f"exported the Mini model to {export(args.work, args.out, device)}")
    elif stage == "pool":
        encode_pool(cfg, args.work, device)
    else:
        TRAINERS[stage](cfg, args.work, device, metrics)
    metrics.setdefault("minutes", {})[stage] = round((time.time() - t0) / 60, 2)
    (args.work / args.metrics).write_text(json.dumps(metrics, indent=2))


def start_side_track(stages: list[str], args) -> subprocess.Popen:
    """The same command for ``stages`` in a second process on one thread; its metrics go to
    ``metrics_side.json``."""
    cmd = [sys.executable, "-m", "explorer.mini.train", "--stage", *stages]
    cmd += ["--work", str(args.work), "--device", args.device, "--recipe", args.recipe]
    cmd += ["--metrics", "metrics_side.json"]
    cmd += ["--smoke"] if args.smoke else []
    for name in OVERRIDES:
        if getattr(args, name) is not None:
            cmd += ["--" + name.replace("_", "-"), str(getattr(args, name))]
    return subprocess.Popen(cmd, env={**os.environ, "OMP_NUM_THREADS": "1"})


def _world(argv: list[str]) -> str:
    """The ``--world`` value in ``argv`` (removed from it), "shapes" when absent."""
    for i, a in enumerate(argv):
        if a == "--world" and i + 1 < len(argv):
            del argv[i]
            return argv.pop(i)
        if a.startswith("--world="):
            return argv.pop(i).split("=", 1)[1]
    return "shapes"


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    world = _world(argv)
    if world == "things":  # mini-things has its own stages
        from explorer.mini.things import train as things

        things.main(argv)
        return
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--world", choices=("shapes", "things"), default="shapes", help="mini-shapes or mini-things"
    )
    p.add_argument("--stage", nargs="+", choices=[*ORDER, "all"], default=["all"])
    p.add_argument("--recipe", choices=RECIPES, default="shipped", help="step counts (see RECIPES)")
    p.add_argument(
        "--side-by-side",
        action="store_true",
        help="run the vae, pool and decoder stages in a second process beside the CLIP stages, "
        "one thread each (on a 2-core CPU two one-thread jobs get more done than one two-thread "
        "job)",
    )
    p.add_argument(
        "--work", type=Path, default=Path("runs/mini-train"), help="checkpoints and metrics"
    )
    p.add_argument(
        "--out", type=Path, default=None, help="model folder to export (default: the shipped one)"
    )
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--smoke", action="store_true", help="a few steps per stage, for CI")
    p.add_argument("--metrics", default="metrics.json", help=argparse.SUPPRESS)
    for name in OVERRIDES:
        p.add_argument(
            "--" + name.replace("_", "-"),
            type=type(getattr(Config, name)),
            default=None,
            help="override the recipe's value",
        )
    args = p.parse_args(argv)

    cfg = Config(**(SMOKE if args.smoke else RECIPES[args.recipe]))
    for name in OVERRIDES:
        if getattr(args, name) is not None:
            setattr(cfg, name, getattr(args, name))
    args.work.mkdir(parents=True, exist_ok=True)
    mpath = args.work / args.metrics
    metrics = json.loads(mpath.read_text()) if mpath.exists() else {}
    stages = ORDER if "all" in args.stage else args.stage
    stages = [s for s in stages if s not in TRAINERS or getattr(cfg, f"{s}_steps") > 0]
    if any(s in TRAINERS for s in stages):  # an export alone keeps the training run's settings
        metrics["config"] = asdict(cfg)
    side, threads = None, torch.get_num_threads()
    if args.side_by_side and any(s in SIDE_TRACK for s in stages):
        side = start_side_track([s for s in stages if s in SIDE_TRACK], args)
        stages = [s for s in stages if s not in SIDE_TRACK]
        torch.set_num_threads(1)
    for stage in stages:
        if side is not None and stage not in ("clip", "vision", "text"):  # it needs the VAE
            join_side_track(side, args.work, metrics)
            torch.set_num_threads(threads)
            side = None
        run_stage(stage, cfg, args, metrics)
    if side is not None:
        join_side_track(side, args.work, metrics)
        (args.work / args.metrics).write_text(json.dumps(metrics, indent=2))


def join_side_track(side: subprocess.Popen, work: Path, metrics: dict) -> None:
    """Wait for the side track and take its stages' figures into ``metrics``."""
    if side.wait() != 0:
        names = ", ".join(SIDE_TRACK)
        raise SystemExit(f"the side track ({names}) failed: exit code {side.returncode}")
    side_metrics = json.loads((work / "metrics_side.json").read_text())
    for key in SIDE_TRACK:
        if key in side_metrics:
            metrics[key] = side_metrics[key]
    metrics.setdefault("minutes", {}).update(side_metrics.get("minutes", {}))


if __name__ == "__main__":
    main()
