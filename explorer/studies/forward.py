"""The forward process: how a clean picture is buried in noise, one training timestep at a time.

Training teaches the UNet to undo exactly this corruption (Ho et al. 2020, eq. 4):

  x_t = √ᾱ_t · x_0 + √(1 − ᾱ_t) · ε,     ε ~ N(0, I),  x_0 = the encoded picture's latent
  SNR(t) = ᾱ_t / (1 − ᾱ_t)               signal power over noise power (per unit-variance latent)

ᾱ_t comes from the pipeline's own scheduler config (a DDPM scheduler built from it: every SD
scheduler shares the training schedule), and x_t from that scheduler's `add_noise`, so what is
shown is what training used. One ε (from `seed`) serves every t, as in img2img.

A flow model (its scheduler a `FlowMatchEulerDiscreteScheduler`, as SD3) is trained on another
corruption, the straight line of rectified flow (`explorer.engine.flow`):

  x_t = σ·ε + (1 − σ)·x_0,   σ = t / 1000            (t = 1000·σ, the timestep the model is told)
  SNR = (1 − σ)² / σ²,        the same as an ᾱ of (1 − σ)² / ((1 − σ)² + σ²)

so its steps carry σ, and ᾱ is that equivalent one (the noise's share of the variance is still
1 − ᾱ, which sets the illustrations' strength).

For comparison, two other corruptions at matching strengths, in pixel space, as in "Cold
Diffusion" (Bansal et al. 2022). They are ILLUSTRATIONS: no model here was trained to undo them.
At timestep t the noise holds a share 1 − ᾱ_t of x_t's variance; the same share sets
  blur:    a Gaussian blur of radius (1 − ᾱ_t) · MAX_BLUR · width;
  masking: that fraction of the picture's 4×4 pixel patches painted grey (random, from `seed`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageFilter

from explorer.engine import decode as dec
from explorer.engine import flow
from explorer.engine.schedulers import make_scheduler
from explorer.inputs.errors import VisitorError
from explorer.studies import latent_space as vaemod

DEFAULT_TIMESTEPS = (0, 100, 250, 500, 750, 999)
MAX_BLUR = 0.25  # blur radius at SNR 0, as a share of the picture's width
PATCH = 4  # masking works on PATCH × PATCH pixel squares
ILLUSTRATION = (
    "Illustration only: blur and masking are shown at the same strength as the noise (the share "
    "1 − ᾱ_t), as in 'Cold Diffusion'; no model in this app was trained to undo them."
)


@dataclass
class NoisedStep:
    """x_t at one training timestep, and the two illustrative corruptions at the same strength."""

    t: int  # training timestep, 0 .. num_train_timesteps − 1
    alpha_bar: float  # ᾱ_t, the signal's share of x_t's variance
    snr: float  # ᾱ_t / (1 − ᾱ_t)
    latent: torch.Tensor  # (C, h, w) x_t
    channels: Image.Image  # x_t's channels as greyscale tiles
    decoded: Image.Image  # D(x_t): what the VAE makes of the noisy latent
    blurred: Image.Image  # illustration: the picture blurred at strength 1 − ᾱ_t
    masked: Image.Image  # illustration: 1 − ᾱ_t of its patches greyed out
    sigma: float | None = None  # a flow model's σ = t / 1000 (x_t = σ·ε + (1 − σ)·x_0), else None

    @property
    def snr_db(self) -> float:
        """10·log10(SNR); +inf at ᾱ_t = 1."""
        return 10 * math.log10(self.snr) if self.snr > 0 else -math.inf


@dataclass
class ForwardResult:
    """A picture noised to several timesteps."""

    image: Image.Image  # the clean input picture
    x0: torch.Tensor  # (C, h, w) its latent
    noise: torch.Tensor  # (C, h, w) the one ε used at every t
    steps: list[NoisedStep]
    num_train_timesteps: int


def blur(image: Image.Image, strength: float) -> Image.Image:
    """Gaussian blur with radius strength · MAX_BLUR · width (strength in [0, 1])."""
    radius = float(strength) * MAX_BLUR * image.width
    return image if radius <= 0 else image.filter(ImageFilter.GaussianBlur(radius))


def mask(image: Image.Image, strength: float, seed: int = 0) -> Image.Image:
    """Grey out a `strength` share of the picture's PATCH × PATCH squares, chosen by `seed`."""
    pixels = np.asarray(image.convert("RGB")).copy()  # (H, W, 3)
    gh, gw = -(-pixels.shape[0] // PATCH), -(-pixels.shape[1] // PATCH)
    order = np.random.default_rng(seed).permutation(gh * gw)
    hidden = order < round(float(strength) * gh * gw)  # (gh*gw,) the first share of a shuffle
    grid = hidden.reshape(gh, gw).repeat(PATCH, 0).repeat(PATCH, 1)  # (≥H, ≥W)
    pixels[grid[: pixels.shape[0], : pixels.shape[1]]] = 128
    return Image.fromarray(pixels)


def forward_process(
    pipe: Any,
    image: Image.Image,
    timesteps: Sequence[int] = DEFAULT_TIMESTEPS,
    seed: int = 0,
    upscale: int | None = None,
) -> ForwardResult:
    """Encode `image`, noise its latent to each of `timesteps`, decode, and corrupt for
    comparison. A flow pipeline is noised along its own straight line (module docstring)."""
    is_flow = flow.is_flow_pipeline(pipe)
    sched = pipe.scheduler if is_flow else make_scheduler(pipe, "ddpm")  # read, never stepped
    n_train = int(sched.config.num_train_timesteps)
    ts = [int(t) for t in timesteps]
    if not ts:
        raise VisitorError("timesteps: give at least one")
    bad = [t for t in ts if not 0 <= t < n_train]
    if bad:
        raise VisitorError(f"timesteps must be 0 to {n_train - 1}; got {bad[0]}")
    x0 = vaemod.encode(pipe.vae, image)  # (C, h, w)
    noise = torch.randn(x0.shape, generator=torch.Generator("cpu").manual_seed(seed))  # (C, h, w)
    batch = x0.expand(len(ts), *x0.shape)  # (n, C, h, w)
    eps = noise.expand_as(batch)  # (n, C, h, w)
    if is_flow:
        sigmas = [t / n_train for t in ts]  # σ = t / 1000
        x_t = torch.stack([flow.add_noise(x0, noise, s) for s in sigmas])  # (n, C, h, w)
        abars = [flow.equivalent_alpha_bar(s) for s in sigmas]
    else:
        sigmas = [None] * len(ts)
        x_t = sched.add_noise(batch, eps, torch.tensor(ts))  # (n, C, h, w) = √ᾱ·x0 + √(1−ᾱ)·ε
        abars = [float(a) for a in sched.alphas_cumprod.float()[ts]]
    decoded = dec.vae_decode(pipe.vae, x_t)
    scale = upscale or max(1, image.width // x0.shape[-1])
    steps = []
    for t, sigma, a, latent, picture in zip(ts, sigmas, abars, x_t, decoded):
        share = 1.0 - a  # the noise's share of the variance: the corruption strength
        steps.append(
            NoisedStep(
                t=t,
                alpha_bar=a,
                snr=a / (1.0 - a) if a < 1 else math.inf,
                latent=latent,
                channels=dec.channels_to_image(latent, scale),
                decoded=picture,
                blurred=blur(image, share),
                masked=mask(image, share, seed),
                sigma=sigma,
            )
        )
    return ForwardResult(image, x0, noise, steps, n_train)
