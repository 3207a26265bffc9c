"""Latents -> pictures: batched VAE decoding, cheap linear previews, noise pictures.

Pure functions: tensors in, PIL images out. Latents are in the pipeline's (scaled) latent space,
the space the UNet works in, i.e. `vae.encode(x).latent_dist.sample() * vae.config.scaling_factor`.

The linear preview maps every latent pixel to RGB with one matrix, rgb = z @ F + b, an idea from
ComfyUI / AUTOMATIC1111. The factors F for SD 1.x are published; for another VAE (the Mini one)
`fit_preview_factors` fits them by least squares, and `save_preview_factors` stores them as
`preview.json` at the model folder's root, where `preview_factors_for` finds them again.
"""

from __future__ import annotations

import contextlib
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from explorer.engine.models import vae_scale_factor

# SD 1.x latent -> RGB (rows = latent channels, columns = R, G, B), output in [-1, 1].
SD15_PREVIEW_FACTORS = [
    [0.3512, 0.2297, 0.3227],
    [0.3250, 0.4974, 0.2350],
    [-0.2829, 0.1762, 0.2721],
    [-0.2120, -0.2616, -0.7177],
]
PREVIEW_FILE = "preview.json"


def to_pil(images: torch.Tensor) -> list[Image.Image]:
    """(N, 3, H, W) in [-1, 1] -> N PIL images; the same rounding as diffusers' postprocess."""
    x = (images.float() / 2 + 0.5).clamp(0, 1)  # (N, 3, H, W)
    x = x.permute(0, 2, 3, 1).cpu().numpy()  # (N, H, W, 3)
    return [Image.fromarray((im * 255).round().astype("uint8")) for im in x]


def bf16_native(device: torch.device | str) -> bool:
    """Whether this is a CPU with native bfloat16 arithmetic (AVX512-BF16 or AMX)."""
    if torch.device(device).type != "cpu":
        return False
    check = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
    return bool(check and check())


@torch.no_grad()
def vae_decode(
    vae: Any, latents: torch.Tensor, batch_size: int = 8, fast: bool = False
) -> list[Image.Image]:
    """Decode (N, C, h, w) scaled latents with a VAE (AutoencoderKL or AutoencoderTiny), in batches.

    `fast`: on a CPU with native bfloat16 arithmetic, decode under bfloat16 autocast (about twice
    as fast, pixels within a few 255ths of float32) - for the step galleries, never the final
    image, which is the pipeline's own decode."""
    scale = getattr(vae.config, "scaling_factor", 1.0) or 1.0
    shift = getattr(vae.config, "shift_factor", None) or 0.0
    param = next(vae.parameters())
    low = fast and param.dtype == torch.float32 and bf16_native(param.device)
    precision = torch.autocast("cpu", torch.bfloat16) if low else contextlib.nullcontext()
    images: list[Image.Image] = []
    for start in range(0, latents.shape[0], batch_size):
        z = latents[start : start + batch_size].to(param.device, param.dtype)  # (b, C, h, w)
        with precision:
            x = vae.decode(z / scale + shift, return_dict=False)[0]  # (b, 3, H, W)
        images += to_pil(x)
    return images


def preview_rgb(
    latents: torch.Tensor, factors: torch.Tensor, bias: torch.Tensor | None = None
) -> torch.Tensor:
    """Linear latent -> RGB: (N, C, h, w) -> (N, 3, h, w) in roughly [-1, 1] (not clamped)."""
    rgb = torch.einsum("nchw,cr->nrhw", latents.float(), factors.float())  # (N, 3, h, w)
    if bias is not None:
        rgb = rgb + bias.float().view(1, 3, 1, 1)
    return rgb


def scale_factor(settings: dict, latent_height: int, vae: Any = None) -> int:
    """f, pixels per latent cell, of a run: as its `settings` record it; else from the `vae`'s
    config (`models.vae_scale_factor`); else the recorded height over the latent's."""
    if "vae_scale_factor" in settings:
        return int(settings["vae_scale_factor"])
    config = getattr(vae, "config", {})
    if "block_out_channels" in config:
        return vae_scale_factor(config)
    return max(1, int(settings.get("height", 8 * latent_height)) // latent_height)


def _upscaled(images: list[Image.Image], scale: int) -> list[Image.Image]:
    """Enlarge latent-sized pictures to about pixel size (PIL's bilinear: cheap, in C)."""
    if scale == 1:
        return images
    return [im.resize((im.width * scale, im.height * scale), Image.BILINEAR) for im in images]


def linear_preview(
    latents: torch.Tensor,
    factors: torch.Tensor,
    bias: torch.Tensor | None = None,
    scale: int = 8,
) -> list[Image.Image]:
    """Cheap previews of (N, C, h, w) latents, upscaled by `scale` to about pixel size."""
    rgb = preview_rgb(latents, factors, bias)  # (N, 3, h, w)
    return _upscaled(to_pil(rgb), scale)  # N images of (h*scale, w*scale)


def noise_to_images(
    noise: torch.Tensor, factors: torch.Tensor, scale: int = 8
) -> list[Image.Image]:
    """Noise (N, C, h, w) as pictures: the linear preview, auto-contrasted per image.

    Noise has no natural colour range, so each picture is stretched so that its 1st..99th
    percentile fills the range; structure (what the UNet thinks is noise) becomes visible.
    """
    rgb = preview_rgb(noise, factors)  # (N, 3, h, w)
    flat = rgb.flatten(1)  # (N, 3*h*w)
    lo = flat.quantile(0.01, dim=1).view(-1, 1, 1, 1)  # (N, 1, 1, 1)
    hi = flat.quantile(0.99, dim=1).view(-1, 1, 1, 1)
    rgb = (rgb - lo) / (hi - lo).clamp_min(1e-8) * 2 - 1  # (N, 3, h, w) in [-1, 1]
    return _upscaled(to_pil(rgb), scale)


def channels_to_image(latent: torch.Tensor, scale: int = 8) -> Image.Image:
    """One latent (C, h, w) as a row of C greyscale tiles, each channel stretched to its range."""
    c = latent.float()  # (C, h, w)
    lo = c.amin(dim=(1, 2), keepdim=True)
    hi = c.amax(dim=(1, 2), keepdim=True)
    c = (c - lo) / (hi - lo).clamp_min(1e-8)  # (C, h, w) in [0, 1]
    row = torch.cat(list(c), dim=1)  # (h, C*w)
    tiles = Image.fromarray((row.numpy() * 255).round().astype("uint8"))
    return tiles.resize((tiles.width * scale, tiles.height * scale), Image.NEAREST)


def image_grid(rows: list[list[Image.Image]], pad: int = 2) -> Image.Image:
    """Paste rows of equally sized images into one white-padded grid (rows may differ in length)."""
    cells = [im for row in rows for im in row]
    if not cells:
        raise ValueError("image_grid needs at least one image")
    w, h = cells[0].size
    ncols = max(len(row) for row in rows)
    grid = Image.new("RGB", (ncols * (w + pad) + pad, len(rows) * (h + pad) + pad), "white")
    for r, row in enumerate(rows):
        for c, im in enumerate(row):
            grid.paste(im.convert("RGB"), (pad + c * (w + pad), pad + r * (h + pad)))
    return grid


@torch.no_grad()
def fit_preview_factors(vae: Any, images: list[Image.Image]) -> dict[str, list]:
    """Least-squares fit of linear preview factors for a VAE from sample images.

    Encodes the images, shrinks them to latent resolution (area average), and solves
    [z, 1] @ W = rgb for W (C+1, 3) over every latent pixel. Returns
    {"factors": C x 3, "bias": 3}, ready for `save_preview_factors`.
    """
    param = next(vae.parameters())
    pixels = np.stack([np.asarray(im.convert("RGB"), dtype=np.float32) for im in images])
    x = torch.from_numpy(pixels).permute(0, 3, 1, 2) / 127.5 - 1  # (N, 3, H, W) in [-1, 1]
    dist = vae.encode(x.to(param.device, param.dtype)).latent_dist
    z = dist.mean.float().cpu() * vae.config.scaling_factor  # (N, C, h, w)
    target = F.interpolate(x, size=z.shape[-2:], mode="area")  # (N, 3, h, w)
    zs = z.permute(0, 2, 3, 1).reshape(-1, z.shape[1])  # (N*h*w, C)
    design = torch.cat([zs, torch.ones(len(zs), 1)], dim=1)  # (N*h*w, C+1)
    rgb = target.permute(0, 2, 3, 1).reshape(-1, 3)  # (N*h*w, 3)
    w = torch.linalg.lstsq(design.double(), rgb.double()).solution.float()  # (C+1, 3)
    return {"factors": w[:-1].tolist(), "bias": w[-1].tolist()}


def save_preview_factors(model_dir: str | Path, fit: dict[str, list]) -> Path:
    """Write a `fit_preview_factors` result as `preview.json` at the model folder's root."""
    path = Path(model_dir) / PREVIEW_FILE
    path.write_text(json.dumps(fit, indent=2) + "\n")
    return path


def load_preview_factors(path: str | Path) -> tuple[torch.Tensor, torch.Tensor]:
    """Read a `preview.json` -> (factors (C, 3), bias (3,)); `ValueError` if malformed."""
    try:
        data = json.loads(Path(path).read_text())
        factors = torch.tensor(data["factors"], dtype=torch.float32)  # (C, 3)
        bias = torch.tensor(data.get("bias", [0.0, 0.0, 0.0]), dtype=torch.float32)  # (3,)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{path}: not a valid preview factors file ({e})") from None
    if factors.ndim != 2 or factors.shape[1] != 3 or bias.shape != (3,):
        raise ValueError(f"{path}: factors must be C x 3 and bias 3 numbers")
    if not (torch.isfinite(factors).all() and torch.isfinite(bias).all()):
        raise ValueError(f"{path}: preview factors must be finite numbers")
    return factors, bias


def preview_factors_for(pipe: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Preview factors for a pipeline: `preview.json` at its model root if there, else SD 1.x's.

    Latents with other than 4 channels and no fitted file get a neutral grey map (equal weights
    on every colour), so previews never fail.
    """
    root = getattr(pipe, "name_or_path", None)
    if root and (Path(root) / PREVIEW_FILE).is_file():
        return load_preview_factors(Path(root) / PREVIEW_FILE)
    channels = pipe.vae.config.latent_channels
    if channels == 4:
        return torch.tensor(SD15_PREVIEW_FACTORS), torch.zeros(3)
    return torch.full((channels, 3), 1.0 / math.sqrt(channels)), torch.zeros(3)


def is_neutral_preview(factors: torch.Tensor, bias: torch.Tensor | None = None) -> bool:
    """Whether (C, 3) preview factors are `preview_factors_for`'s grey fallback (every channel
    weighted alike on every colour, no offset): a latent with no fitted colour map."""
    f = factors.float()
    flat = bias is None or bool((bias.float() == 0).all())
    return flat and bool(torch.allclose(f, f.flatten()[0].expand_as(f)))


def step_index(steps: int | list[int] | None, n: int, what: str) -> list[int]:
    """The entries `steps` picks of a tensor with `n` (None: all); ValueError naming bad ones."""
    if steps is None:
        return list(range(n))
    index = [steps] if isinstance(steps, int) else list(steps)
    bad = [s for s in index if not isinstance(s, int) or not -n <= s < n]
    if bad:
        raise ValueError(f"steps {bad} out of range: {what} has {n} entries (0..{n - 1})")
    return index
