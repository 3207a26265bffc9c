"""How far apart two runs' results are, the same measure wherever a study compares them.

The measures:
  pixel_distance(a, b)  = RMS over pixels and channels of (a - b), pixels in [0, 1];
  psnr(a, b)            = 10·log10(1 / MSE) = -20·log10(pixel_distance(a, b)), in dB;
  latent_distance(a, b) = RMS of the difference of two final latents x_0 (the ODE's end point).
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from explorer.engine.tracefile import Trace


def pixel_distance(a: Image.Image, b: Image.Image) -> float:
    """RMS difference of two equally sized images, pixels scaled to [0, 1]."""
    x = np.asarray(a.convert("RGB"), dtype=np.float64) / 255.0  # (H, W, 3)
    y = np.asarray(b.convert("RGB"), dtype=np.float64) / 255.0  # (H, W, 3)
    if x.shape != y.shape:
        raise ValueError(f"images differ in size: {a.size} vs {b.size}")
    return float(np.sqrt(np.mean((x - y) ** 2)))


def psnr(a: Image.Image, b: Image.Image) -> float:
    """Peak signal-to-noise ratio in dB of two equally sized pictures (pixels in [0, 1])."""
    rms = pixel_distance(a, b)
    return float("inf") if rms == 0 else -20 * math.log10(rms)


def latent_distance(a: Trace, b: Trace) -> float:
    """RMS difference of two runs' final latents (C, h, w)."""
    return float((a.latents[-1].double() - b.latents[-1].double()).pow(2).mean().sqrt())
