"""Numbers behind the step charts: plain numpy arrays in, plain numpy arrays out.

Notation: T steps; latents (T+1, C, h, w) = x_T .. x_0; x0 (T, C, h, w) = the clean latent each
step predicts; ᾱ_t (T,) the signal share of x_t. No torch, no model: charts and tests feed these
synthetic arrays as easily as a real run's.
"""

from __future__ import annotations

import numpy as np


def snr(alphas_cumprod: np.ndarray) -> np.ndarray:
    """Signal-to-noise ratio ᾱ_t / (1 − ᾱ_t) per step (x_t = sqrt(ᾱ)·x_0 + sqrt(1−ᾱ)·ε)."""
    a = np.asarray(alphas_cumprod, dtype=np.float64)
    return a / np.clip(1.0 - a, 1e-12, None)


def norms(stack: np.ndarray) -> np.ndarray:
    """L2 norm of each entry of a (N, ...) stack -> (N,)."""
    s = np.asarray(stack, dtype=np.float64)
    return np.linalg.norm(s.reshape(len(s), -1), axis=1) if len(s) else np.zeros(0)  # 1-step runs


def x0_change(x0: np.ndarray) -> np.ndarray:
    """How far each step's x0 prediction moved from the previous one -> (T,), first is 0."""
    n = norms(np.diff(np.asarray(x0, dtype=np.float64), axis=0))
    return np.concatenate([[0.0], n])


def distance_to_final(x0: np.ndarray) -> np.ndarray:
    """Distance of each step's x0 prediction to the last one -> (T,), last is 0."""
    x = np.asarray(x0, dtype=np.float64)
    return norms(x - x[-1:])


def band_edges(bands: int) -> np.ndarray:
    """Radial spatial-frequency edges in cycles per pixel, 0 .. Nyquist·√2, `bands` + 1 of them."""
    top = np.hypot(0.5, 0.5) + 1e-9
    return np.linspace(0.0, top, bands + 1)


def band_settling(x0: np.ndarray, bands: int = 4) -> np.ndarray:
    """Share of each spatial-frequency band of the final x0 already in place at each step.

    For step i and band k: 1 − E_k(x0_i − x0_final) / E_k(x0_final), clipped to [0, 1], with E_k
    the power of a 2-D Fourier transform summed over the frequencies in band k (all channels).
    1 means that band of the predicted image no longer changes. Returns (T, bands); band 0 is
    the coarsest (lowest frequencies, including the mean).
    """
    x = np.asarray(x0, dtype=np.float64)  # (T, C, h, w)
    h, w = x.shape[-2:]
    fy, fx = np.fft.fftfreq(h)[:, None], np.fft.fftfreq(w)[None, :]
    radius = np.hypot(fy, fx)  # (h, w) cycles per pixel
    edges = band_edges(bands)
    which = np.clip(np.searchsorted(edges, radius, side="right") - 1, 0, bands - 1)  # (h, w)
    spectrum = np.fft.fft2(x)  # (T, C, h, w)
    error = np.abs(spectrum - spectrum[-1:]) ** 2  # (T, C, h, w)
    final = np.abs(spectrum[-1]) ** 2  # (C, h, w)
    out = np.zeros((len(x), bands))
    for k in range(bands):
        mask = which == k
        total = final[:, mask].sum()
        if total <= 0:
            out[:, k] = 1.0
            continue
        out[:, k] = 1.0 - error[:, :, mask].sum(axis=(1, 2)) / total
    return np.clip(out, 0.0, 1.0)


def band_names(bands: int) -> list[str]:
    """Plain names for the bands of `band_settling`, coarse to fine."""
    if bands == 4:
        return ["coarse (layout, colour)", "medium", "fine", "finest (edges, texture)"]
    return [f"band {k + 1} of {bands}" for k in range(bands)]


def guidance_norms(
    uncond: np.ndarray, text: np.ndarray, guided: np.ndarray
) -> dict[str, np.ndarray]:
    """Per-step norms of ε_u, ε_c, the guided ε and the prompt's push ε_c − ε_u."""
    u, c = np.asarray(uncond, dtype=np.float64), np.asarray(text, dtype=np.float64)
    return {
        "unconditional ε_u": norms(u),
        "text ε_c": norms(c),
        "guided ε": norms(guided),
        "difference ε_c − ε_u": norms(c - u),
    }
