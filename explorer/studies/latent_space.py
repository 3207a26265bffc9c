"""The VAE's latent space: encode a picture, look at its channels, decode it back, edit it.

Stable Diffusion never denoises pixels. Its VAE squeezes an H×W×3 picture into a C×(H/f)×(W/f)
latent (C = 4; f = 8 for SD, 4 for the Mini model: 48 and 12 times fewer numbers), the UNet
works there, and the decoder paints pixels back. This module makes that visible:

  z = E(x) · scaling_factor          encode (the mean of the encoder's distribution: no sampling,
                                     so the same picture always gives the same latent)
  x̂ = D(z / scaling_factor)          decode (`explorer.engine.decode.vae_decode`)
  PSNR(x, x̂) = 10·log10(1 / MSE)     pixels in [0, 1]; what the round trip loses
                                     (`explorer.studies.distances.psnr`)
  z' = z with channel c scaled by k  an edit (k = 0 zeroes the channel), decoded to see what
                                     that channel carries

Pure functions: PIL images and tensors in, images, tensors and numbers out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image

from explorer.engine import decode as dec
from explorer.inputs.errors import VisitorError
from explorer.studies.distances import psnr


def to_tensor(images: list[Image.Image]) -> torch.Tensor:
    """RGB PIL images of one size -> (N, 3, H, W) in [-1, 1], as the VAE expects."""
    pixels = np.stack([np.asarray(im.convert("RGB"), dtype=np.float32) for im in images])
    return torch.from_numpy(pixels).permute(0, 3, 1, 2) / 127.5 - 1  # (N, 3, H, W)


@torch.no_grad()
def encode(vae: Any, image: Image.Image) -> torch.Tensor:
    """One picture -> its scaled latent (C, h, w), the mean of the encoder's distribution."""
    param = next(vae.parameters())
    x = to_tensor([image]).to(param.device, param.dtype)  # (1, 3, H, W)
    z = vae.encode(x).latent_dist.mean  # (1, C, h, w)
    scale = getattr(vae.config, "scaling_factor", 1.0) or 1.0
    shift = getattr(vae.config, "shift_factor", None) or 0.0
    return ((z - shift) * scale)[0].float().cpu()  # (C, h, w)


def decode(vae: Any, latents: torch.Tensor) -> list[Image.Image]:
    """(N, C, h, w) or (C, h, w) scaled latents -> N pictures."""
    if latents.ndim == 3:
        latents = latents[None]  # (1, C, h, w)
    return dec.vae_decode(vae, latents)


def compression(height: int, width: int, latent_shape: Sequence[int]) -> dict[str, Any]:
    """How many numbers a height×width RGB picture and its (C, h, w) latent hold, and the ratio."""
    c, h, w = (int(n) for n in latent_shape)
    pixels, latent = height * width * 3, c * h * w
    return {
        "pixels": pixels,
        "latent": latent,
        "ratio": pixels / latent,
        "height": height,
        "width": width,
        "channels": c,
        "h": h,
        "w": w,
        "factor": width // w,  # the VAE's downsampling factor f
    }


def edit(latent: torch.Tensor, channel: int | None, scale: float) -> torch.Tensor:
    """A copy of `latent` (C, h, w) with `channel` (None: every channel) multiplied by `scale`."""
    c = latent.shape[0]
    if channel is not None and not 0 <= channel < c:
        raise VisitorError(f"channel must be 0 to {c - 1} (the latent has {c}), got {channel}")
    out = latent.clone()  # (C, h, w)
    if channel is None:
        out *= scale
    else:
        out[channel] *= scale
    return out


@dataclass
class RoundTrip:
    """A picture through the VAE and back, and one edit of its latent."""

    image: Image.Image  # the input, RGB, the model's size
    latent: torch.Tensor  # (C, h, w) scaled latent
    channels: Image.Image  # the C channels as a row of greyscale tiles
    reconstruction: Image.Image  # D(E(x))
    psnr: float  # dB, reconstruction against the input
    compression: dict[str, Any]  # see `compression`
    channel_stats: list[dict[str, float]]  # per channel: mean, std, min, max
    edited: Image.Image | None = None  # D(edit(z)) when an edit was asked for
    edited_psnr: float | None = None  # dB, edited decode against the plain reconstruction
    edit_words: str = ""  # "channel 2 × 0" or ""


def round_trip(
    vae: Any, image: Image.Image, channel: int | None = None, scale: float = 1.0, upscale: int = 8
) -> RoundTrip:
    """Encode `image`, decode it back, and decode an edited latent when `scale` != 1."""
    z = encode(vae, image)  # (C, h, w)
    todo = [z]
    editing = scale != 1.0
    if editing:
        todo.append(edit(z, channel, scale))
    decoded = decode(vae, torch.stack(todo))  # (1 or 2) pictures
    stats = [
        {
            "mean": float(ch.mean()),
            "std": float(ch.std()),
            "min": float(ch.min()),
            "max": float(ch.max()),
        }
        for ch in z
    ]
    words = ""
    if editing:
        what = "every channel" if channel is None else f"channel {channel}"
        words = f"{what} × {scale:g}"
    return RoundTrip(
        image=image,
        latent=z,
        channels=dec.channels_to_image(z, upscale),
        reconstruction=decoded[0],
        psnr=psnr(image, decoded[0]),
        compression=compression(image.height, image.width, z.shape),
        channel_stats=stats,
        edited=decoded[1] if editing else None,
        edited_psnr=psnr(decoded[0], decoded[1]) if editing else None,
        edit_words=words,
    )
