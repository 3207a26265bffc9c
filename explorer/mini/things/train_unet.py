"""Train the ``mini-things`` UNet: ``python -m explorer.mini.things.train_unet --work runs/things``.

Epsilon prediction on SD's schedule with Min-SNR weighting, conditioned on the text tower of the
CLIP stage (``<work>/clip.pt``; with ``--init``, that folder's ``text_encoder``): frozen, or with
``--text-lr`` learning beside the UNet (contrastive CLIP training alone left the position words
all but one vector: "top left" and "bottom right" 1.9 apart in the last states, "cat" and "pizza"
14), as DreamBooth tunes SD's text encoder; ``clip/`` keeps CLIP's own tower for image-text
scores. The training pictures are encoded once by the committed VAE
into a pool (``<work>/pool_<N>.pt``: posterior mean and std, the seed, and where the things are on
the 16x16 grid); every step draws a fresh caption of each picture (template, size words, synonyms:
``draw.sample_caption``), drops 10% of them for guidance, and adds to each picture's loss the mean
loss over its things' latent cells, so a small thing's few cells weigh as much as the background.
Resumable (``<work>/unet.pt`` with the EMA), progress in ``<work>/unet_progress.log``. ``--export
DIR`` writes the EMA weights as float16 ``DIR/unet`` with ``training.json``; ``--init DIR`` starts
an empty work folder from such an export (both the live and the averaged weights).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

os.environ.setdefault("TQDM_MININTERVAL", "60")  # before tqdm loads: own progress lines suffice

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from transformers import CLIPTextModel  # noqa: E402

from explorer.mini import architecture as arch  # noqa: E402
from explorer.mini.loop import (  # noqa: E402
    EMA,
    Checkpoint,
    autocast,
    lr_at,
    optimize,
    plain_attention,
    ramp_at,
    train_loop,
)
from explorer.mini.things import (  # noqa: E402
    draw,
    parts,
    stage_cli,  # noqa: E402
    world,
)
from explorer.mini.things.train_vae import Progress  # noqa: E402


@dataclass
class Config:
    steps: int = 6000
    batch: int = 128
    lr: float = 1e-3
    warmup: int = 200
    pool: int = 30_000  # training pictures encoded once (seeds 0 .. pool - 1)
    caption_dropout: float = 0.1  # share of empty captions, for classifier-free guidance
    min_snr_gamma: float = 5.0  # Min-SNR-gamma weighting (Hang et al. 2023)
    # In x0 terms Min-SNR weighs a step by min(SNR, gamma): almost nothing at the noisiest steps,
    # where the layout (position) is decided. The floor keeps at least this much weight there.
    x0_floor: float = 0.0
    thing_weight: float = 1.0  # loss = whole-latent MSE + thing_weight * MSE on the things' cells
    text_lr: float = 0.0  # peak learning rate of the text tower beside the UNet's (0: frozen)
    ramp: int = 100  # a resumed run's learning rates rise linearly over its first steps
    ema_decay: float = 0.999
    save_every: int = 100
    seed: int = 0


SMOKE = dict(steps=2, batch=2, pool=4, save_every=1)


def thing_cells(pictures: np.ndarray, scenes: list) -> torch.Tensor:
    """Where the things are on the latent grid: (B, 16, 16) in [0, 1], from uint8 pictures
    (B, 128, 128, 3): the share of a cell's 8x8 pixels that differ visibly from the background,
    widened by one cell."""
    bg = np.array([world.BACKGROUNDS[s.background] for s in scenes], dtype=np.int16)  # (B, 3)
    differs = np.abs(pictures.astype(np.int16) - bg[:, None, None]).max(axis=-1) > 40
    m = F.avg_pool2d(torch.from_numpy(differs).float()[:, None], 8)  # (B, 1, 16, 16)
    return F.max_pool2d(m, 3, stride=1, padding=1)[:, 0]


@torch.no_grad()
def encode_pool(cfg: Config, work: Path, vae_dir: Path) -> dict:
    """The pool: the VAE posterior (mean, std: (N, 4, 16, 16) float16) of seeds 0..N-1, and
    ``cells`` (N, 16, 16) float16; cached in ``<work>/pool_<N>.pt``."""
    path = work / f"pool_{cfg.pool}.pt"
    if path.exists():
        return torch.load(path, map_location="cpu", weights_only=True)
    from diffusers import AutoencoderKL

    vae = AutoencoderKL.from_pretrained(vae_dir, torch_dtype=torch.float32).eval()
    progress = Progress(work / "unet_progress.log", cfg.pool // 64 + 1, 0, every=50)
    means, stds, cells = [], [], []
    for k, start in enumerate(range(0, cfg.pool, 64)):
        seeds = list(range(start, min(start + 64, cfg.pool)))
        scenes = [draw.scene(s) for s in seeds]
        pictures = np.stack([draw.picture(s) for s in scenes])  # (b, 128, 128, 3)
        post = vae.encode(draw.to_tensor(pictures)).latent_dist
        means.append(post.mean.half())  # (b, 4, 16, 16)
        stds.append(post.std.half())
        cells.append(thing_cells(pictures, scenes).half())  # (b, 16, 16)
        progress(k, 0.0, 0.0)
    pool = {"mean": torch.cat(means), "std": torch.cat(stds), "cells": torch.cat(cells)}
    pool["scaling_factor"] = torch.tensor(1.0 / pool["mean"].float().std().item())  # SD: 0.18215
    torch.save(pool, path)
    return pool


def load_text_tower(work: Path, device: torch.device, init: Path | None = None):
    """The CLIP text tower the UNet reads, as a ``CLIPTextModel``: ``init``'s ``text_encoder``
    where given, else the clip stage's (``<work>/clip.pt``), both replaced by the UNet checkpoint's
    own on a resume; frozen until the caller says."""
    tokenizer = parts.build_tokenizer()
    if init is not None and (Path(init) / "text_encoder").is_dir():
        text = CLIPTextModel.from_pretrained(Path(init) / "text_encoder", dtype=torch.float32)
    else:
        clip = parts.build_clip(len(tokenizer))
        Checkpoint(work, "clip").load(clip=clip)
        text = CLIPTextModel(clip.config.text_config)
        text.load_state_dict(clip.text_model.state_dict())  # a CLIPTextModel in transformers 5
    return text.to(device).eval().requires_grad_(False), tokenizer


def batch_inputs(pool, idx, step, cfg, text, tokenizer, gen, device):
    """One step's (x0 (B, 4, 16, 16) scaled, text states (B, 77, W), cells (B, 16, 16)); the
    states carry gradients where the text tower learns (``cfg.text_lr``)."""
    mean, std = pool["mean"][idx].float(), pool["std"][idx].float()
    x0 = (mean + std * torch.randn(mean.shape, generator=gen)) * float(pool["scaling_factor"])
    drop = torch.rand(len(idx), generator=gen) < cfg.caption_dropout
    texts = [
        "" if d else draw.sample_caption(step * 1_000_003 + int(i), draw.scene(int(i)))
        for i, d in zip(idx, drop)
    ]
    ids = tokenizer(texts, padding="max_length", truncation=True, return_tensors="pt").input_ids
    with torch.set_grad_enabled(cfg.text_lr > 0):
        states = text(input_ids=ids.to(device)).last_hidden_state  # (B, 77, W)
    return x0.to(device), states, pool["cells"][idx].float().to(device)


def train(
    cfg: Config,
    work: Path,
    device: torch.device,
    init: Path | None = None,
    vae: Path = parts.MODEL_DIR / "vae",
) -> dict:
    """Train (or resume) the UNet in ``work``, its pool encoded by the VAE folder ``vae``;
    returns the loop's figures."""
    from diffusers import DDPMScheduler

    work.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    pool = encode_pool(cfg, work, vae)
    ckpt = Checkpoint(work, "unet")
    text, tokenizer = load_text_tower(work, device, None if ckpt.path.exists() else init)
    text.requires_grad_(cfg.text_lr > 0)
    sched = DDPMScheduler.from_config(arch.build_scheduler().config)
    alphas = sched.alphas_cumprod.to(device)  # (1000,)
    snr = alphas / (1 - alphas)  # (1000,)
    unet = plain_attention(parts.build_unet(), device).to(device)
    ema = EMA(unet, cfg.ema_decay).to(device)
    groups = [{"params": list(unet.parameters())}]
    if cfg.text_lr > 0:
        groups.append({"params": list(text.parameters())})
    peaks = (cfg.lr, cfg.text_lr)  # per group: this run's, not a resumed optimiser's
    opt = torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=0.01)
    params = [p for g in groups for p in g["params"]]
    progress = Progress(work / "unet_progress.log", cfg.steps, 0, every=20)
    n = sum(p.numel() for p in unet.parameters())
    progress.log(f"unet: {n:,} parameters, config {asdict(cfg)}")
    objs = dict(unet=unet, ema=ema, opt=opt, text=text, text_ema=EMA(text, cfg.ema_decay))
    if init is not None and not ckpt.path.exists():
        start = load_export(unet, init)
        objs["ema"] = EMA(unet, cfg.ema_decay).to(device)
        ckpt.save(start, **objs)
        progress.log(f"started from {init} at step {start}")

    first: list[int] = []  # the step this run started at

    def step_fn(step: int) -> float:
        ramp = ramp_at(first, step, cfg.ramp)  # fresh Adam moments: no jolt
        gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)  # resumes exactly
        idx = torch.randint(0, len(pool["mean"]), (cfg.batch,), generator=gen)
        x0, cond, cells = batch_inputs(pool, idx, step, cfg, text, tokenizer, gen, device)
        noise = torch.randn(x0.shape, generator=gen).to(device)
        t = torch.randint(0, 1000, (cfg.batch,), generator=gen).to(device)
        xt = sched.add_noise(x0, noise, t)  # sqrt(a_t) x0 + sqrt(1 - a_t) eps
        for g, peak in zip(objs["opt"].param_groups, peaks):
            g["lr"] = ramp * lr_at(step, cfg.steps, peak, cfg.warmup)
        lr = objs["opt"].param_groups[0]["lr"]
        with autocast(device):
            pred = unet(xt, t, encoder_hidden_states=cond).sample.float()  # (B, 4, 16, 16)
        err = (pred - noise).pow(2).mean(dim=1)  # (B, 16, 16)
        per_image = err.mean(dim=(1, 2)) + cfg.thing_weight * (cells * err).sum((1, 2)) / cells.sum(
            (1, 2)
        ).clamp(min=1.0)  # (B,)
        snr_t = snr[t].clamp(max=cfg.min_snr_gamma, min=cfg.x0_floor)  # (B,), x0-space weight
        weight = snr_t / snr[t]  # Min-SNR-gamma with the floor, epsilon targets
        value = optimize(objs["opt"], params, (weight * per_image).mean())
        objs["ema"].update(unet, step)
        objs["text_ema"].update(text, step)
        progress(step, value, lr)
        return value

    loop: dict = {}
    train_loop("unet", cfg.steps, step_fn, ckpt, objs, cfg, loop)
    return loop["unet"]


def _averaged(model: torch.nn.Module, state: dict, live: str, shadow: str) -> torch.nn.Module:
    """``model`` with a checkpoint's EMA weights (``state[shadow]``, over ``state[live]``)."""
    model.load_state_dict(state[live])
    ema = EMA(model, 0.0)
    ema.load_state_dict(state[shadow])
    model.load_state_dict(ema.state_for(model))
    return model.eval()


def averaged_unet(work: Path):
    """The checkpoint's EMA weights as a plain UNet, and the step it reached."""
    state = torch.load(Checkpoint(work, "unet").path, map_location="cpu", weights_only=True)
    return _averaged(parts.build_unet(), state, "unet", "ema"), int(state["step"])


def averaged_text(work: Path) -> CLIPTextModel:
    """The checkpoint's text tower, its EMA weights (the CLIP stage's while it stayed frozen)."""
    state = torch.load(Checkpoint(work, "unet").path, map_location="cpu", weights_only=True)
    text = CLIPTextModel(parts.clip_config(len(parts.build_tokenizer())).text_config)
    return _averaged(text, state, "text", "text_ema")


def export(cfg: Config, work: Path, out: Path) -> Path:
    """The EMA weights as float16 ``out/unet`` with ``training.json`` and the pool's scaling."""
    unet, step = averaged_unet(work)
    folder = Path(out) / "unet"
    unet.to(torch.float16).save_pretrained(folder)
    path = work / f"pool_{cfg.pool}.pt"
    if not path.exists():  # the pool the checkpoint was trained on, if the config differs
        path = max(work.glob("pool_*.pt"), key=lambda f: f.stat().st_mtime)
    pool = torch.load(path, map_location="cpu", weights_only=True)
    info = {"steps_done": step, "config": asdict(cfg)}
    info["scaling_factor"] = float(pool["scaling_factor"])
    (folder / "training.json").write_text(json.dumps(info, indent=1) + "\n")
    return folder


def load_export(unet: torch.nn.Module, folder: Path) -> int:
    """Load an exported ``unet`` folder (or the folder above it) into ``unet``; its step."""
    from diffusers import UNet2DConditionModel

    folder = Path(folder)
    folder = folder / "unet" if (folder / "unet").is_dir() else folder
    saved = UNet2DConditionModel.from_pretrained(folder, torch_dtype=torch.float32)
    unet.load_state_dict(saved.state_dict())
    return int(json.loads((folder / "training.json").read_text())["steps_done"])


def main(argv: list[str] | None = None) -> None:
    """Command line: see the module docstring."""

    def vae_option(p):
        p.add_argument("--vae", type=Path, default=parts.MODEL_DIR / "vae", help="encodes the pool")

    args, cfg = stage_cli.parse(__doc__, Config, SMOKE, argv, extra=vae_option)
    if args.export is not None:
        print(f"wrote {export(cfg, args.work, args.export)}")
        return
    figures = train(cfg, args.work, torch.device(args.device), args.init, args.vae)
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
