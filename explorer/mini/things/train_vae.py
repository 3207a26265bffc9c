"""Train the ``mini-things`` VAE: ``python -m explorer.mini.things.train_vae --work runs/things``.

First on random 64x64 crops (cheap: a quarter of the pixels), then fine-tuned on full 128x128
pictures, which a crop-trained VAE reconstructs worse than their tiles. AdamW with warm-up and a
cosine decay over both phases (``loop.lr_at``), bfloat16 autocast, one CPU thread by default.
A resumable checkpoint goes to ``<work>/vae.pt`` every ``--save-every`` steps: stop at any time
and run the same command again to continue. Progress lines (step, loss, s/step, ETA) go to stdout
and ``<work>/vae_progress.log``; held-out figures (PSNR on 128x128 pictures, and at the end the
judge reading the reconstructions) to ``<work>/vae_metrics.json``; the finished VAE as a diffusers
folder to ``<work>/vae``. ``--evaluate`` only measures the checkpoint; ``--smoke`` trains a tiny
model for a few steps (tests use it so this script cannot rot).

Across sessions (the work folder is not committed): ``--export DIR`` writes the checkpoint's VAE
as a diffusers folder of float16 safetensors with ``training.json`` (the steps it has run and the
config); ``--init DIR`` starts an empty work folder from such a folder at its step (the weights
come back exactly as float16 held them; the optimiser's moments start afresh).
``--decoder-only 1`` freezes the encoder (and ``quant_conv``): the decoder alone learns to
draw sharper pictures from the same latents, so a UNet trained on them stays valid.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

os.environ.setdefault("TQDM_MININTERVAL", "60")  # before tqdm loads: own progress lines suffice

import numpy as np  # noqa: E402
import torch  # noqa: E402

from explorer.mini.loop import Checkpoint, autocast, lr_at, optimize, train_loop  # noqa: E402
from explorer.mini.things import (
    draw,  # noqa: E402
    stage_cli,  # noqa: E402
)
from explorer.mini.things import vae as things_vae  # noqa: E402


@dataclass
class Config:
    steps: int = 5800  # all steps; the last steps - crop_steps are on full pictures
    crop_steps: int = 5000  # steps on 64x64 crops
    crop_batch: int = 32
    full_batch: int = 16
    crop: int = 64  # crop side, pixels
    lr: float = 1e-3
    warmup: int = 100
    kl: float = 1e-6  # weight of the KL term
    save_every: int = 100
    eval_every: int = 1000  # a quick held-out PSNR every this many steps (0: only at the end)
    eval_pictures: int = 128  # pictures in the quick evaluation
    final_pictures: int = 512  # pictures in the final evaluation (PSNR and judge)
    bf16: int = 1  # bfloat16 autocast (about 2x faster on CPUs with AVX-512 BF16)
    widths: str = "32,64,128,128"  # block_out_channels
    groups: int = 16  # GroupNorm groups
    # 1: the encoder frozen, only the decoder learns: the latents (and a UNet trained on them)
    # stay valid while the pictures sharpen
    decoder_only: int = 0
    seed: int = 0


SMOKE = dict(steps=3, crop_steps=2, crop_batch=2, full_batch=2, save_every=1, eval_every=2,
             eval_pictures=2, final_pictures=4, widths="8,8,16,16", groups=4)  # fmt: skip
FULL_OFFSET = 300_000_000  # the full-picture phase reads fresh training seeds from here


FULL_COST = 1.8  # a full-picture step (batch 16) costs about this many crop steps (batch 32)


class Progress:
    """Prints and logs a line every ``every`` steps: step, mean loss, s/step, ETA (counting a
    step after ``crop_steps`` as ``FULL_COST`` crop steps while still on crops)."""

    def __init__(self, path: Path, total: int, crop_steps: int, every: int = 20):
        self.path, self.total, self.crop_steps, self.every = path, total, crop_steps, every
        self.losses: list[float] = []
        self.t0 = time.time()

    def __call__(self, step: int, loss: float, lr: float) -> None:
        self.losses.append(loss)
        if (step + 1) % self.every and step + 1 != self.total:
            return
        per = (time.time() - self.t0) / len(self.losses)
        crops_left = max(0, self.crop_steps - step - 1)
        full_left = self.total - step - 1 - crops_left
        eta = per * (crops_left + (FULL_COST if crops_left else 1.0) * full_left) / 60
        line = (
            f"step {step + 1}/{self.total} loss {np.mean(self.losses):.5f} lr {lr:.2e} "
            f"{per:.2f} s/step eta {eta:.0f} min"
        )
        self.log(line)
        self.losses, self.t0 = [], time.time()

    def log(self, line: str) -> None:
        line = f"{time.strftime('%H:%M:%S')} {line}"
        print(line, flush=True)
        with self.path.open("a") as f:
            f.write(line + "\n")


def _save_metrics(path: Path, update: dict) -> dict:
    metrics = json.loads(path.read_text()) if path.exists() else {}
    metrics.update(update)
    path.write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


def train(
    cfg: Config,
    work: Path,
    device: torch.device,
    evaluate_only: bool = False,
    init: Path | None = None,
) -> dict:
    """Train (or resume) the VAE in ``work``; returns the metrics written to vae_metrics.json.
    With ``evaluate_only``, only measure the checkpoint as it stands."""
    work.mkdir(parents=True, exist_ok=True)
    draw.write_world(work)
    torch.manual_seed(cfg.seed)
    widths = tuple(int(w) for w in cfg.widths.split(","))
    vae = things_vae.build_vae(widths, cfg.groups).to(device)
    if cfg.decoder_only:
        vae.encoder.requires_grad_(False)
        vae.quant_conv.requires_grad_(False)
    params = [p for p in vae.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.0)
    mpath = work / "vae_metrics.json"
    progress = Progress(work / "vae_progress.log", cfg.steps, cfg.crop_steps)
    progress.log(f"vae: {things_vae.parameters(vae):,} parameters, config {asdict(cfg)}")

    def step_fn(step: int) -> float:
        if step < cfg.crop_steps:
            x = draw.crops(draw.train_seeds(step, cfg.crop_batch), cfg.crop)  # (B, 3, 64, 64)
        else:
            seeds = draw.train_seeds(step - cfg.crop_steps, cfg.full_batch, FULL_OFFSET)
            x = draw.batch(seeds)  # (B, 3, 128, 128)
        lr = lr_at(step, cfg.steps, cfg.lr, cfg.warmup)
        for g in opt.param_groups:
            g["lr"] = lr
        with autocast(device) if cfg.bf16 else torch.autocast(device.type, enabled=False):
            loss = things_vae.vae_loss(vae, x.to(device), cfg.kl)
        value = optimize(opt, params, loss)
        progress(step, value, lr)
        if cfg.eval_every and (step + 1) % cfg.eval_every == 0 and step + 1 < cfg.steps:
            quick = things_vae.heldout_metrics(vae, cfg.eval_pictures, judge_too=False)
            progress.log(f"held-out psnr at step {step + 1}: {quick['psnr']} dB")
            history = json.loads(mpath.read_text()).get("history", []) if mpath.exists() else []
            _save_metrics(mpath, {"history": [*history, {"step": step + 1, **quick}]})
        return value

    loop_metrics: dict = {}
    objs = dict(vae=vae, opt=opt)
    if init is not None and not (work / "vae.pt").exists():
        start = load_export(vae, init)
        Checkpoint(work, "vae").save(start, **objs)
        progress.log(f"started from {init} at step {start}")
    if evaluate_only:  # the checkpoint as it stands, no training
        step = Checkpoint(work, "vae").load(vae=vae)
        figures = things_vae.heldout_metrics(vae, cfg.final_pictures, judge_too=True)
        progress.log(f"held-out figures at step {step}: {json.dumps(figures)}")
        return _save_metrics(mpath, {"evaluated": {"step": step, **figures}})
    train_loop("vae", cfg.steps, step_fn, Checkpoint(work, "vae"), objs, cfg, loop_metrics)
    vae.save_pretrained(work / "vae")  # diffusers folder, safetensors
    final = things_vae.heldout_metrics(vae, cfg.final_pictures, judge_too=True)
    progress.log(f"final held-out figures: {json.dumps(final)}")
    update = {"config": asdict(cfg), "final": final, "loop": loop_metrics["vae"]}
    return _save_metrics(mpath, update)


def export(cfg: Config, work: Path, out: Path) -> Path:
    """The checkpoint in ``work`` as a diffusers folder of float16 safetensors, with the step it
    has reached, the config and the newest held-out figures in ``training.json``."""
    widths = tuple(int(w) for w in cfg.widths.split(","))
    vae = things_vae.build_vae(widths, cfg.groups)
    step = Checkpoint(work, "vae").load(vae=vae)
    vae.to(torch.float16).save_pretrained(out)  # diffusers layout, safetensors
    info = {"steps_done": step, "config": asdict(cfg), "heldout": _latest_figures(work)}
    (Path(out) / "training.json").write_text(json.dumps(info, indent=1) + "\n")
    return Path(out)


def _latest_figures(work: Path) -> dict | None:
    """The newest held-out figures in ``<work>/vae_metrics.json`` (final, evaluated, or the last
    quick one), or None."""
    path = work / "vae_metrics.json"
    if not path.exists():
        return None
    m = json.loads(path.read_text())
    history = m.get("history") or [None]
    return m.get("final") or m.get("evaluated") or history[-1]


def load_export(vae: torch.nn.Module, folder: Path) -> int:
    """Load an ``export``-ed folder's weights into ``vae``; returns the step it had reached."""
    from diffusers import AutoencoderKL

    saved = AutoencoderKL.from_pretrained(folder, torch_dtype=torch.float32)
    vae.load_state_dict(saved.state_dict())
    return int(json.loads((Path(folder) / "training.json").read_text())["steps_done"])


def main(argv: list[str] | None = None) -> None:
    """Command line: see the module docstring."""

    def evaluate_option(p):
        help = "only measure the checkpoint (final_pictures)"
        p.add_argument("--evaluate", action="store_true", help=help)

    args, cfg = stage_cli.parse(__doc__, Config, SMOKE, argv, threads=1, extra=evaluate_option)
    if args.export is not None:
        print(f"wrote {export(cfg, args.work, args.export)}")
        return
    metrics = train(cfg, args.work, torch.device(args.device), args.evaluate, args.init)
    print(json.dumps(metrics.get("evaluated" if args.evaluate else "final", {}), indent=2))


if __name__ == "__main__":
    main()
