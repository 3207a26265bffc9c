"""The ``mini-things`` VAE: a factor-8 diffusers ``AutoencoderKL`` (3x128x128 -> 4x16x16), its
training loss and its held-out figures (PSNR, and the judge reading the reconstructions)."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL

from explorer.mini.things import draw, world


def build_vae(widths: tuple[int, ...] = (32, 64, 128, 128), groups: int = 16) -> AutoencoderKL:
    """Factor 8 (three stride-2 stages), 4 latent channels, one layer a block: about 3.9 M
    parameters at the default widths. Smaller ``widths`` (same length) make a test-sized one."""
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * len(widths),
        up_block_types=("UpDecoderBlock2D",) * len(widths),
        block_out_channels=widths,
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=groups,
        sample_size=world.PICTURE,
    )


def vae_loss(vae: AutoencoderKL, x: torch.Tensor, kl_weight: float = 1e-6) -> torch.Tensor:
    """MSE + 0.5 L1 of a sampled reconstruction + ``kl_weight`` times the KL per input number."""
    post = vae.encode(x).latent_dist  # mean, std: (B, 4, H/8, W/8)
    recon = vae.decode(post.sample()).sample.float()  # (B, 3, H, W)
    kl = post.kl().float().mean() / x[0].numel()
    return F.mse_loss(recon, x) + 0.5 * F.l1_loss(recon, x) + kl_weight * kl


@torch.no_grad()
def reconstruct(vae: AutoencoderKL, x: torch.Tensor, batch: int = 32) -> torch.Tensor:
    """Decode the posterior means of ``x`` (B, 3, H, W) in [-1, 1]; the result is clamped."""
    out = []
    for i in range(0, len(x), batch):
        z = vae.encode(x[i : i + batch]).latent_dist.mode()  # (b, 4, H/8, W/8)
        out.append(vae.decode(z).sample.clamp(-1, 1))  # (b, 3, H, W)
    return torch.cat(out)


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """Tensor (B, 3, H, W) in [-1, 1] -> uint8 pictures (B, H, W, 3)."""
    a = ((x.clamp(-1, 1) + 1) * 127.5).round().byte()  # (B, 3, H, W)
    return a.permute(0, 2, 3, 1).cpu().numpy()


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Mean per-picture PSNR (dB) between two uint8 batches (B, H, W, 3)."""
    diff = a.astype(np.float64) - b.astype(np.float64)
    mse = np.maximum((diff**2).reshape(len(a), -1).mean(axis=1), 1e-10)
    return float(np.mean(10 * np.log10(255.0**2 / mse)))


@torch.no_grad()
def heldout_metrics(vae: AutoencoderKL, n: int = 512, judge_too: bool = True) -> dict:
    """PSNR of reconstructions of ``n`` held-out 128x128 pictures and, with ``judge_too``, how
    well the judge reads their things, positions and backgrounds (see ``judge.score``)."""
    was_training = vae.training
    vae.eval()
    seeds = draw.heldout_seeds(n)
    scenes = [draw.scene(s) for s in seeds]
    truth = np.stack([draw.picture(s) for s in scenes])  # (n, 128, 128, 3)
    recon = to_uint8(reconstruct(vae, draw.to_tensor(truth)))  # (n, 128, 128, 3)
    out = {"pictures": n, "psnr": round(psnr(recon, truth), 2)}
    if judge_too:
        from explorer.mini.things import judge

        out["judge"] = judge.score(list(recon), scenes)
    vae.train(was_training)
    return out


def parameters(model: torch.nn.Module) -> int:
    """Number of parameters."""
    return sum(p.numel() for p in model.parameters())


def latent_shape() -> tuple[int, int, int]:
    """(channels, height, width) of a picture's latent."""
    side = world.PICTURE // 8
    return 4, side, side


assert math.log2(world.PICTURE // latent_shape()[1]) == 3  # factor 8
