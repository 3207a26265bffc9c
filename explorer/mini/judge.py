"""Read a Mini image back from its pixels: background colour, shape colour, position, shape.

Used to score prompt following without the UNet: border pixels give the background colour; pixels
that differ from it give the shape colour and its centroid (nearest cell of the 3x3 grid); the
shape is the one of the five outlines that, drawn with the same area and centroid, overlaps the
pixels best (``shape``). The Mini CLIP's zero-shot choice (``zero_shot``) is scored separately.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from explorer.mini import data

PALETTE = np.array(list(data.COLOURS.values()), dtype=np.float32)  # (8, 3)
NAMES = list(data.COLOURS)


def nearest_colour(rgb: np.ndarray) -> str:
    return NAMES[int(np.argmin(((PALETTE - rgb) ** 2).sum(axis=1)))]


def coverage(a: np.ndarray, background: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """Per pixel, how far it lies from the background colour towards the shape colour, in [0, 1]."""
    axis = colour - background  # (3,)
    t = ((a - background) @ axis) / max(float(axis @ axis), 1e-6)  # (64, 64)
    return np.clip(t, 0.0, 1.0)


def _outline(shape: str, cx: float, cy: float, radius: float) -> np.ndarray:
    """Coverage (64, 64) of one shape drawn anti-aliased as the dataset draws it."""
    scene = data.Scene(shape, "white", "black", "small", "center", cx, cy, radius)
    return np.asarray(data.render(scene), dtype=np.float32)[..., 0] / 255.0


def _centroid(w: np.ndarray) -> tuple[float, float]:
    ys, xs = np.indices(w.shape)
    total = max(float(w.sum()), 1e-6)
    return float((xs * w).sum() / total), float((ys * w).sum() / total)


@functools.cache
def _unit(name: str) -> tuple[float, float, float]:
    """A shape drawn at radius 10 around (32, 32): its area and its centroid's offset from the
    drawing centre (the triangle's centroid is not its centre), per unit of radius."""
    unit = _outline(name, 32.0, 32.0, 10.0)
    ux, uy = _centroid(unit)
    return float(unit.sum()) / 100.0, (ux - 32.0) / 10.0, (uy - 32.0) / 10.0


def shape(cover: np.ndarray) -> str:
    """The shape whose outline, scaled to the same area and moved to the same centroid as the
    ``cover`` map (64, 64), differs from it least (sum of absolute differences)."""
    area = float(cover.sum())
    cx, cy = _centroid(cover)
    best, best_err = data.SHAPES[0], float("inf")
    for name in data.SHAPES:
        unit_area, ox, oy = _unit(name)
        r = (area / unit_area) ** 0.5  # the radius that gives the same area
        dx, dy = ox * r, oy * r  # centroid minus drawing centre at that radius
        err = float(np.abs(_outline(name, cx - dx, cy - dy, r) - cover).sum())
        if err < best_err:
            best, best_err = name, err
    return best


@dataclass
class Reading:
    background: str
    colour: str | None  # None when no pixel differs from the background
    position: str | None
    cx: float | None
    cy: float | None
    area: int  # pixels that differ from the background
    shape: str | None = None  # the best-matching outline (``shape``)


def read(image: Image.Image, threshold: float = 60.0) -> Reading:
    """Background colour, shape colour and position of a 64x64 image."""
    a = np.asarray(image.convert("RGB"), dtype=np.float32)  # (64, 64, 3)
    border = np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])  # (256, 3)
    bg = np.median(border, axis=0)
    background = nearest_colour(bg)
    diff = np.sqrt(((a - PALETTE[NAMES.index(background)]) ** 2).sum(axis=2))  # (64, 64)
    mask = diff > threshold
    if mask.sum() < 4:
        return Reading(background, None, None, None, None, int(mask.sum()))
    colour = nearest_colour(np.median(a[mask], axis=0))
    ys, xs = np.nonzero(mask)
    cx, cy = float(xs.mean()) + 0.5, float(ys.mean()) + 0.5
    grid = np.array(data.GRID)
    col, row = int(np.argmin(abs(grid - cx))), int(np.argmin(abs(grid - cy)))
    position = next(p for p, cr in data.POSITIONS.items() if cr == (col, row))
    cover = coverage(a, PALETTE[NAMES.index(background)], np.median(a[mask], axis=0))
    return Reading(background, colour, position, cx, cy, int(mask.sum()), shape(cover))


@torch.no_grad()
def zero_shot(clip, tokenizer, images: list[Image.Image], options: list[list[str]]) -> list[int]:
    """For each image, the index of the caption among its ``options`` that CLIP scores highest."""
    pixels = torch.from_numpy(data.to_array(images))  # (N, 3, 64, 64)
    v = clip.get_image_features(pixel_values=pixels).pooler_output  # (N, P)
    v = torch.nn.functional.normalize(v, dim=-1)
    flat = [c for opts in options for c in opts]
    ids = tokenizer(flat, padding="max_length", truncation=True, return_tensors="pt").input_ids
    t = torch.nn.functional.normalize(clip.get_text_features(input_ids=ids).pooler_output, dim=-1)
    picks, k = [], 0
    for i, opts in enumerate(options):
        picks.append(int((t[k : k + len(opts)] @ v[i]).argmax()))
        k += len(opts)
    return picks


def shape_options(scene: data.Scene) -> list[str]:
    """Full captions of ``scene`` that differ only in the shape word, in ``data.SHAPES`` order."""
    from dataclasses import replace

    return [data.full_caption(replace(scene, shape=s)) for s in data.SHAPES]


def position_options(scene: data.Scene) -> list[str]:
    """Full captions of ``scene`` that differ only in the position words."""
    from dataclasses import replace

    return [data.full_caption(replace(scene, position=p)) for p in data.POSITIONS]
