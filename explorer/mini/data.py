"""Procedural captioned images for the Mini Stable Diffusion.

Every sample is a pure function of its integer seed: one flat shape on a flat background, drawn at
4x resolution and box-filtered down to 64x64 (anti-aliasing). Seeds below ``HELDOUT_START`` are for
training; seeds from ``HELDOUT_START`` on are held out for evaluation and never trained on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
from PIL import Image, ImageDraw

SIZE = 64  # output resolution (pixels)
SUPERSAMPLE = 4  # drawn at SIZE * SUPERSAMPLE, then box-filtered down
HELDOUT_START = 1_000_000_000  # seeds >= this are the held-out split

SHAPES = ("circle", "square", "triangle", "star", "cross")
COLOURS = {  # conventional saturated colours, RGB 0-255
    "red": (230, 25, 25),
    "green": (30, 170, 40),
    "blue": (30, 60, 230),
    "yellow": (250, 220, 20),
    "orange": (255, 135, 0),
    "purple": (135, 40, 180),
    "white": (255, 255, 255),
    "black": (0, 0, 0),
}
SIZES = {"small": 7.0, "large": 13.0}  # shape "radius" in output pixels
GRID = (18.0, 32.0, 46.0)  # centre coordinates of the 3x3 position grid
POSITIONS = {  # name -> (column, row) in the grid
    "top left": (0, 0),
    "top": (1, 0),
    "top right": (2, 0),
    "left": (0, 1),
    "center": (1, 1),
    "right": (2, 1),
    "bottom left": (0, 2),
    "bottom": (1, 2),
    "bottom right": (2, 2),
}
JITTER_PX = 1.5  # uniform jitter of the centre, output pixels
RADIUS_JITTER = 0.08  # relative jitter of the size


@dataclass(frozen=True)
class Scene:
    """What one image shows; captions are written from it."""

    shape: str
    colour: str
    background: str
    size: str
    position: str
    cx: float  # centre x, output pixels
    cy: float  # centre y, output pixels
    radius: float  # output pixels


def article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def caption(s: Scene, *, size: bool = True, position: bool = True, style: int = 0) -> str:
    """Plain-English caption; ``style`` picks one of four paraphrases."""
    thing = f"{s.size} {s.colour} {s.shape}" if size else f"{s.colour} {s.shape}"
    where = s.position
    if style == 0:  # "a small red circle on a blue background, top left"
        text = f"{article(thing)} {thing} on {article(s.background)} {s.background} background"
        return f"{text}, {where}" if position else text
    if style == 1:  # "small red circle, blue background, top left"
        text = f"{thing}, {s.background} background"
        return f"{text}, {where}" if position else text
    if style == 2:  # "a small red circle in the top left on a blue background"
        place = f" in the {where}" if position else ""
        return (
            f"{article(thing)} {thing}{place} on {article(s.background)} {s.background} background"
        )
    # style 3: "a blue background with a small red circle at the top left"
    place = f" at the {where}" if position else ""
    return f"{article(s.background)} {s.background} background with {article(thing)} {thing}{place}"


def full_caption(s: Scene) -> str:
    """The canonical caption naming every attribute (used for evaluation)."""
    return caption(s, size=True, position=True, style=0)


def vocabulary() -> list[str]:
    """Every word a caption can contain, in a fixed order."""
    words = ["a", "an", "on", "background", "with", "in", "the", "at", ","]
    words += list(SIZES) + list(COLOURS) + list(SHAPES)
    for p in POSITIONS:
        words += [w for w in p.split() if w not in words]
    return words


def sample_scene(seed: int) -> Scene:
    """The scene for one seed (deterministic)."""
    rng = np.random.default_rng(seed)
    shape = SHAPES[rng.integers(len(SHAPES))]
    colour, background = rng.choice(list(COLOURS), size=2, replace=False)
    size = list(SIZES)[rng.integers(len(SIZES))]
    position = list(POSITIONS)[rng.integers(len(POSITIONS))]
    col, row = POSITIONS[position]
    cx = GRID[col] + rng.uniform(-JITTER_PX, JITTER_PX)
    cy = GRID[row] + rng.uniform(-JITTER_PX, JITTER_PX)
    radius = SIZES[size] * (1 + rng.uniform(-RADIUS_JITTER, RADIUS_JITTER))
    return Scene(shape, str(colour), str(background), size, position, cx, cy, radius)


def caption_options(seed: int) -> dict:
    """Which optional parts and which paraphrase a training caption uses (deterministic)."""
    rng = np.random.default_rng([seed, 7])
    return dict(
        size=bool(rng.random() < 0.7),
        position=bool(rng.random() < 0.8),
        style=int(rng.integers(4)),
    )


def sample_caption(seed: int, scene: Scene) -> str:
    """A caption for training: optional size and position, one of four paraphrases."""
    return caption(scene, **caption_options(seed))


def hard_negative(seed: int, scene: Scene) -> str:
    """The training caption with exactly one mentioned attribute changed.

    Used as an extra negative in CLIP training, so that the text tower must read every word
    (shape, colour, background, size, position), not just the colours.
    """
    opts = caption_options(seed)
    rng = np.random.default_rng([seed, 11])
    fields = ["shape", "colour", "background"] + [k for k in ("size", "position") if opts[k]]
    field = fields[rng.integers(len(fields))]
    choices = {
        "shape": SHAPES,
        "colour": [c for c in COLOURS if c != scene.background],
        "background": [c for c in COLOURS if c != scene.colour],
        "size": tuple(SIZES),
        "position": tuple(POSITIONS),
    }[field]
    current = getattr(scene, field)
    others = [c for c in choices if c != current]
    changed = replace(scene, **{field: others[rng.integers(len(others))]})
    return caption(changed, **opts)


def _polygon(s: Scene, scale: float) -> list[tuple[float, float]]:
    cx, cy, r = s.cx * scale, s.cy * scale, s.radius * scale
    if s.shape == "square":
        h = r * 0.85
        return [(cx - h, cy - h), (cx + h, cy - h), (cx + h, cy + h), (cx - h, cy + h)]
    if s.shape == "triangle":  # pointing up, centred on its bounding box
        return [(cx, cy - r), (cx + r, cy + r * 0.8), (cx - r, cy + r * 0.8)]
    if s.shape == "star":  # five points, inner radius 0.45 r
        pts = []
        for i in range(10):
            rad = r if i % 2 == 0 else r * 0.45
            a = -math.pi / 2 + i * math.pi / 5
            pts.append((cx + rad * math.cos(a), cy + rad * math.sin(a)))
        return pts
    if s.shape == "cross":  # plus sign, arm half-width 0.33 r
        w = r * 0.33
        return [
            (cx - w, cy - r),
            (cx + w, cy - r),
            (cx + w, cy - w),
            (cx + r, cy - w),
            (cx + r, cy + w),
            (cx + w, cy + w),
            (cx + w, cy + r),
            (cx - w, cy + r),
            (cx - w, cy + w),
            (cx - r, cy + w),
            (cx - r, cy - w),
            (cx - w, cy - w),
        ]
    raise ValueError(f"unknown shape {s.shape!r}")


def render(s: Scene) -> Image.Image:
    """Draw a scene as a 64x64 RGB image with anti-aliased edges."""
    big = SIZE * SUPERSAMPLE
    img = Image.new("RGB", (big, big), COLOURS[s.background])
    draw = ImageDraw.Draw(img)
    fill = COLOURS[s.colour]
    if s.shape == "circle":
        cx, cy, r = (v * SUPERSAMPLE for v in (s.cx, s.cy, s.radius))
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)
    else:
        draw.polygon(_polygon(s, SUPERSAMPLE), fill=fill)
    return img.resize((SIZE, SIZE), Image.Resampling.BOX)


def sample(seed: int) -> tuple[Image.Image, str, Scene]:
    """(image, training caption, scene) for one seed."""
    scene = sample_scene(seed)
    return render(scene), sample_caption(seed, scene), scene


def to_array(images: list[Image.Image]) -> np.ndarray:
    """PIL images -> float32 array in [-1, 1], shape (N, 3, 64, 64)."""
    arr = np.stack([np.asarray(im, dtype=np.float32) for im in images])  # (N, 64, 64, 3)
    return (arr.transpose(0, 3, 1, 2) / 127.5 - 1.0).astype(np.float32)


def batch(seeds: range | list[int]) -> tuple[np.ndarray, list[str], list[Scene]]:
    """Images (N, 3, 64, 64) in [-1, 1], captions and scenes for a list of seeds."""
    items = [sample(s) for s in seeds]
    return to_array([i[0] for i in items]), [i[1] for i in items], [i[2] for i in items]


def heldout_seeds(n: int, offset: int = 0) -> range:
    """``n`` seeds of the held-out split."""
    return range(HELDOUT_START + offset, HELDOUT_START + offset + n)


def heldout_pairs(n: int, offset: int = 0) -> tuple[list[Image.Image], list[str]]:
    """`n` held-out pictures and their full captions (seeds training never saw)."""
    scenes = [sample_scene(s) for s in heldout_seeds(n, offset)]
    return [render(s) for s in scenes], [full_caption(s) for s in scenes]
