"""Where the shape is in each training picture, on the latent grid: the weights of the UNet's
shape term (``unet_shape_weight``, ``shape_weight``)."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from explorer.mini import data


def shape_masks(n: int, work: Path) -> torch.Tensor:
    """Where the shape is in the first ``n`` training pictures, on the latent grid: (n, 16, 16).

    Each pixel counts by how far it is from the background towards the shape colour (so
    anti-aliased edges count in part); averaged over the 4x4 pixels of a latent cell, then widened
    by one cell so the outline's surroundings count too.
    """
    path = work / f"masks_{n}.pt"
    if path.exists():
        return torch.load(path, map_location="cpu", weights_only=True)
    masks = []
    for start in tqdm(range(0, n, 512), desc="shape masks"):
        images, _, scenes = data.batch(range(start, min(start + 512, n)))  # (b, 3, 64, 64)
        x = torch.from_numpy(images)
        bg = torch.tensor([data.COLOURS[s.background] for s in scenes]) / 127.5 - 1  # (b, 3)
        fg = torch.tensor([data.COLOURS[s.colour] for s in scenes]) / 127.5 - 1
        span = (fg - bg).abs().amax(dim=1).clamp(min=1e-3)  # (b,)
        m = ((x - bg[:, :, None, None]).abs().amax(dim=1) / span[:, None, None]).clamp(0, 1)
        m = F.avg_pool2d(m[:, None], 4)  # (b, 1, 16, 16)
        masks.append(F.max_pool2d(m, 3, stride=1, padding=1)[:, 0].half())
    out = torch.cat(masks)
    torch.save(out, path)
    return out
