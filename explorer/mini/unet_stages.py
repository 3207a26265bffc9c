"""The Mini UNet's training stages: ``pool`` (the VAE encodes the UNet's training pictures once),
``unet`` (epsilon prediction from scratch) and ``refine`` (the same with the shape's latent cells
weighted up), conditioned on the frozen CLIP text tower. Run them through
``python -m explorer.mini.train``."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from tqdm import tqdm

from explorer.mini import architecture as arch
from explorer.mini import data
from explorer.mini.loop import (
    EMA,
    Checkpoint,
    autocast,
    load_stage_model,
    lr_at,
    optimize,
    plain_attention,
    train_loop,
)
from explorer.mini.masks import shape_masks

if TYPE_CHECKING:
    from explorer.mini.config import Config


@torch.no_grad()
def encode_pool(cfg: Config, work: Path, device: torch.device) -> dict:
    """Pre-encode the UNet's training pool: VAE posterior (mean, std) and caption ids."""
    path = work / f"pool_{cfg.unet_pool}.pt"
    if path.exists():
        return torch.load(path, map_location="cpu", weights_only=True)
    vae = load_stage_model("vae", work, device)
    tokenizer = arch.build_tokenizer()
    means, stds, ids = [], [], []
    for start in tqdm(range(0, cfg.unet_pool, 256), desc="encode pool"):
        seeds = list(range(start, min(start + 256, cfg.unet_pool)))
        images, captions, _ = data.batch(seeds)
        post = vae.encode(torch.from_numpy(images).to(device)).latent_dist
        means.append(post.mean.cpu())  # (b, 4, 16, 16)
        stds.append(post.std.cpu())
        ids.append(
            tokenizer(
                captions, padding="max_length", truncation=True, return_tensors="pt"
            ).input_ids
        )
    pool = {"mean": torch.cat(means), "std": torch.cat(stds), "ids": torch.cat(ids)}
    pool["scaling_factor"] = torch.tensor(1.0 / pool["mean"].std().item())  # as SD's 0.18215
    torch.save(pool, path)
    return pool


@torch.no_grad()
def text_states(ids: torch.Tensor, work: Path, device: torch.device):
    """The frozen CLIP text tower's states for the pool's captions, computed once.

    ``ids`` (N, 77) -> (states (U, 77, W) on the CPU, one per distinct caption; the empty
    caption's states (1, 77, W) on ``device``; rows (N,): each picture's row in ``states``).
    """
    text = load_stage_model("clip", work, device).text_model
    tokenizer = arch.build_tokenizer()
    empty = tokenizer([""], padding="max_length", return_tensors="pt").input_ids  # (1, 77)
    unique, rows = torch.unique(ids, dim=0, return_inverse=True)  # (U, 77), (N,)
    states = [
        text(input_ids=unique[i : i + 256].to(device)).last_hidden_state.cpu()
        for i in range(0, len(unique), 256)
    ]  # each (b, 77, W)
    return torch.cat(states), text(input_ids=empty.to(device)).last_hidden_state, rows


def train_unet(cfg: Config, work: Path, device: torch.device, metrics: dict) -> None:
    """Epsilon prediction on SD's schedule, conditioned on the frozen CLIP text tower."""
    torch.manual_seed(cfg.seed)
    noise_training("unet", arch.build_unet(), cfg, work, device, metrics)


def train_refine(cfg: Config, work: Path, device: torch.device, metrics: dict) -> None:
    """Fine-tune the UNet stage's (EMA) weights with the shape's own latent cells weighted up.

    Most of a picture is flat background, which the UNet gets right early; the loss adds the mean
    error over the shape's cells (``shape_masks``), so a small star's few cells weigh as much as
    the rest of the picture and the outlines, not just the colours, keep improving.
    """
    torch.manual_seed(cfg.seed + 3)
    unet = load_stage_model("unet", work, torch.device("cpu"), refined=False).train()
    noise_training("refine", unet, cfg, work, device, metrics)


def noise_training(name, unet, cfg: Config, work: Path, device, metrics: dict) -> None:
    """The UNet's training loop (stage ``unet`` from scratch, or ``refine`` from its weights)."""
    from diffusers import DDPMScheduler

    refine = name == "refine"
    steps, lr = (cfg.refine_steps, cfg.refine_lr) if refine else (cfg.unet_steps, cfg.unet_lr)
    batch = cfg.refine_batch if refine else cfg.unet_batch
    pool = encode_pool(cfg, work, device)
    shape_weight = cfg.shape_weight if refine else cfg.unet_shape_weight
    masks = shape_masks(cfg.unet_pool, work) if shape_weight else None  # (N, 16, 16)
    states, empty, rows = text_states(pool["ids"], work, device)
    sched = DDPMScheduler.from_config(arch.build_scheduler().config)
    alphas = sched.alphas_cumprod.to(device)  # (1000,)
    snr = alphas / (1 - alphas)  # (1000,)
    scale = float(pool["scaling_factor"])

    unet = plain_attention(unet, device).to(device)
    ema = EMA(unet, cfg.ema_decay).to(device)
    opt = torch.optim.AdamW(unet.parameters(), lr=lr, weight_decay=0.01)
    seed = cfg.seed * 1_000_003 + (7_000_000 if refine else 0)

    def step_fn(step: int) -> float:
        gen = torch.Generator().manual_seed(seed + step)  # resumes exactly
        idx = torch.randint(0, len(pool["ids"]), (batch,), generator=gen)
        mean, std = pool["mean"][idx].to(device), pool["std"][idx].to(device)
        x0 = (
            mean + std * torch.randn(mean.shape, generator=gen).to(device)
        ) * scale  # (B, 4, 16, 16)
        drop = torch.rand(batch, generator=gen).to(device) < cfg.caption_dropout
        cond = states[rows[idx]].to(device)  # (B, 77, 128)
        cond = torch.where(drop[:, None, None], empty, cond)
        noise = torch.randn(x0.shape, generator=gen).to(device)
        t = torch.randint(0, 1000, (batch,), generator=gen).to(device)
        xt = sched.add_noise(x0, noise, t)  # sqrt(a_t) x0 + sqrt(1 - a_t) eps
        for g in opt.param_groups:
            g["lr"] = lr_at(step, steps, lr, warmup=100 if refine else 200)
        with autocast(device) if cfg.unet_bf16 else contextlib.nullcontext():
            pred = unet(xt, t, encoder_hidden_states=cond).sample.float()  # (B, 4, 16, 16)
        err = (pred - noise).pow(2).mean(dim=1)  # (B, 16, 16)
        per_image = err.mean(dim=(1, 2))  # (B,)
        if shape_weight:
            m = masks[idx].float().to(device)  # (B, 16, 16)
            per_image = per_image + shape_weight * (m * err).sum((1, 2)) / m.sum((1, 2))
        weight = snr[t].clamp(max=cfg.min_snr_gamma) / snr[t]  # Min-SNR-gamma for epsilon targets
        loss = (weight * per_image).mean()
        value = optimize(opt, unet.parameters(), loss)
        ema.update(unet, step)
        return value

    objs = dict(unet=unet, ema=ema, opt=opt)
    ckpt = Checkpoint(work, name)
    train_loop(name, steps, step_fn, ckpt, objs, cfg, metrics)
    state = torch.load(ckpt.path, map_location="cpu", weights_only=True)
    unet.load_state_dict(state["unet"])
    ema.load_state_dict(state["ema"])
    state["ema_unet"] = ema.state_for(unet)  # the averaged weights as a plain UNet state dict
    torch.save(state, ckpt.path)
