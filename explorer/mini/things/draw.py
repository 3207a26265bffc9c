"""Draw ``mini-things`` pictures: one or two emoji things on a plain background, 128x128.

Every picture is a pure function of its integer seed (``scene`` then ``picture``). Seeds below
``HELDOUT_START`` are for training, seeds from it on are held out and never trained on. Glyphs are
rendered once per (thing, size) and cached; a picture is then two numpy alpha composites.
"""

from __future__ import annotations

import functools
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from explorer.mini.things import world

FONT = "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf"
FONT_SIZE = 109  # the only size this bitmap font draws at
HELDOUT_START = 1_000_000_000  # seeds >= this are the held-out split
JITTER = 3  # uniform integer jitter of a thing's centre, pixels
MARGIN = 2  # a glyph stays this far inside the picture
GAP = 8  # two things' boxes stay at least this far apart (in x or in y)
TWO_SHARE = 0.5  # share of pictures with two things
VISIBLE_DIFF = 40  # a pixel shows against a background when it differs by more than this
MIN_VISIBLE = 0.5  # a thing is drawn only on backgrounds against which this share of it shows


@dataclass(frozen=True)
class Placed:
    """One thing drawn in a picture; (cx, cy) is the centre of its glyph's box, pixels."""

    thing: str
    size: str
    position: str
    cx: int
    cy: int


@dataclass(frozen=True)
class Scene:
    """What one picture shows; captions are written from it."""

    background: str
    things: tuple[Placed, ...]


class FontMissing(RuntimeError):
    """The emoji font is not installed: drawing the world's pictures needs it (running the
    trained model does not)."""


@functools.cache
def _font() -> ImageFont.FreeTypeFont:
    if not Path(FONT).is_file():
        raise FontMissing(
            f"drawing mini-things pictures needs the emoji font {FONT}: install it with "
            "apt-get install fonts-noto-color-emoji (the trained model runs without it)"
        )
    return ImageFont.truetype(FONT, FONT_SIZE)


@functools.cache
def glyph_full(emoji: str) -> Image.Image:
    """The glyph as the font draws it, RGBA, cropped to its non-empty box."""
    canvas = Image.new("RGBA", (FONT_SIZE + 40, FONT_SIZE + 30), (0, 0, 0, 0))
    ImageDraw.Draw(canvas).text((0, 0), emoji, font=_font(), embedded_color=True)
    box = canvas.getbbox()
    if box is None:
        raise ValueError(f"the font draws nothing for {emoji!r}")
    return canvas.crop(box)


@functools.cache
def glyph(name: str, size: str) -> np.ndarray:
    """A thing's glyph with its longer side ``SIZES[size]`` px: premultiplied RGBA float32 in
    [0, 1], shape (h, w, 4). Cached; treat as read-only."""
    full = glyph_full(world.BY_NAME[name].emoji)
    side = world.SIZES[size]
    scale = side / max(full.size)
    w, h = max(1, round(full.size[0] * scale)), max(1, round(full.size[1] * scale))
    small = full.convert("RGBa").resize((w, h), Image.Resampling.LANCZOS)
    arr = np.asarray(small, dtype=np.float32) / 255.0  # (h, w, 4), colour premultiplied
    arr.setflags(write=False)
    return arr


@functools.cache
def visible_share(name: str, background: str) -> float:
    """The share of a thing's (large) glyph, weighted by its opacity, that differs visibly (by
    more than ``VISIBLE_DIFF`` in some channel) from a background colour."""
    g = glyph(name, "large")  # (h, w, 4)
    bg = np.asarray(world.BACKGROUNDS[background], dtype=np.float32)
    comp = g[..., :3] * 255.0 + bg * (1.0 - g[..., 3:])  # (h, w, 3)
    seen = np.abs(comp - bg).max(axis=-1) > VISIBLE_DIFF
    return float((seen * g[..., 3]).sum() / g[..., 3].sum())


@functools.cache
def clashes() -> dict[str, list[str]]:
    """Per thing, the backgrounds it is never drawn on: there less than ``MIN_VISIBLE`` of it
    shows (a red heart on red, a pine tree on green)."""
    out = {}
    for t in world.THINGS:
        hidden = [b for b in world.BACKGROUNDS if visible_share(t.name, b) < MIN_VISIBLE]
        if hidden:
            out[t.name] = hidden
    return out


def box(p: Placed) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of a placed thing's glyph, pixels (right/bottom exclusive)."""
    h, w = glyph(p.thing, p.size).shape[:2]
    left, top = p.cx - w // 2, p.cy - h // 2
    return left, top, left + w, top + h


def _place(rng: np.random.Generator, name: str, size: str, position: str) -> Placed:
    h, w = glyph(name, size).shape[:2]
    gx, gy = world.centre(position)
    cx = gx + int(rng.integers(-JITTER, JITTER + 1))
    cy = gy + int(rng.integers(-JITTER, JITTER + 1))
    cx = int(np.clip(cx, MARGIN + w // 2, world.PICTURE - MARGIN - (w - w // 2)))
    cy = int(np.clip(cy, MARGIN + h // 2, world.PICTURE - MARGIN - (h - h // 2)))
    return Placed(name, size, position, cx, cy)


def apart(a: Placed, b: Placed, gap: int = GAP) -> bool:
    """Whether two placed things' boxes are at least ``gap`` px apart in x or in y."""
    (al, at, ar, ab), (bl, bt, br, bb) = box(a), box(b)
    return max(bl - ar, al - br) >= gap or max(bt - ab, at - bb) >= gap


def scene(seed: int) -> Scene:
    """The scene for one seed (deterministic): a background and one or two things that show
    against it (``clashes``)."""
    rng = np.random.default_rng(seed)
    background = list(world.BACKGROUNDS)[rng.integers(len(world.BACKGROUNDS))]
    names = [t.name for t in world.THINGS if background not in clashes().get(t.name, ())]
    first, second = (names[i] for i in rng.choice(len(names), size=2, replace=False))
    sizes, positions = list(world.SIZES), list(world.POSITIONS)
    a = _place(rng, first, sizes[rng.integers(2)], positions[rng.integers(9)])
    things = (a,)
    if rng.random() < TWO_SHARE:
        for _ in range(20):  # a second thing clear of the first
            pos = positions[rng.integers(9)]
            b = _place(rng, second, sizes[rng.integers(2)], pos)
            if pos != a.position and apart(a, b):
                things = (a, b)
                break
    return Scene(background, things)


def picture(s: Scene) -> np.ndarray:
    """Draw a scene: uint8 RGB array (128, 128, 3)."""
    n = world.PICTURE
    out = np.empty((n, n, 3), dtype=np.float32)
    out[:] = np.asarray(world.BACKGROUNDS[s.background], dtype=np.float32) / 255.0
    for p in s.things:
        g = glyph(p.thing, p.size)  # (h, w, 4) premultiplied
        left, top, right, bottom = box(p)  # past the edge only in the judge's drafts: clip
        x0, y0, x1, y1 = max(0, left), max(0, top), min(n, right), min(n, bottom)
        if x1 <= x0 or y1 <= y0:
            continue
        g = g[y0 - top : y1 - top, x0 - left : x1 - left]
        region = out[y0:y1, x0:x1]  # (h, w, 3)
        region *= 1.0 - g[..., 3:]
        region += g[..., :3]
    return np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8)


def image(seed: int) -> Image.Image:
    """The picture for one seed as a PIL image."""
    return Image.fromarray(picture(scene(seed)))


def _article(phrase: str) -> str:
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


def caption(s: Scene, style: int = 0, *, size: bool = True, synonyms: tuple[int, ...] = ()) -> str:
    """A plain-English caption of a scene; ``style`` picks a template (modulo their number),
    ``size`` whether the size words appear, ``synonyms`` per thing which name (0: the plain one)."""
    bare = []
    for i, p in enumerate(s.things):
        t = world.BY_NAME[p.thing]
        names = (t.name, *t.synonyms)
        k = synonyms[i] if i < len(synonyms) else 0
        bare.append(f"{p.size} {names[k % len(names)]}" if size else names[k % len(names)])
    fields = dict(bg=s.background, bg_a=_article(s.background))
    if len(s.things) == 1:
        templates = world.TEMPLATES_ONE
        fields |= dict(thing=_article(bare[0]), bare=bare[0], pos=s.things[0].position)
    else:
        templates = world.TEMPLATES_TWO
        for i in (0, 1):
            fields[f"thing{i + 1}"] = _article(bare[i])
            fields[f"bare{i + 1}"] = bare[i]
            fields[f"pos{i + 1}"] = s.things[i].position
    return templates[style % len(templates)].format(**fields)


def full_caption(s: Scene) -> str:
    """The canonical caption naming the background and every thing's size and position."""
    return caption(s, style=1, size=True)


def sample_caption(seed: int, s: Scene) -> str:
    """A training caption: a random template, size words 70% of the time, random synonyms."""
    rng = np.random.default_rng([seed, 7])
    style, size = int(rng.integers(30)), bool(rng.random() < 0.7)  # 30: uniform over 5 or 6
    return caption(s, style, size=size, synonyms=tuple(int(k) for k in rng.integers(3, size=2)))


def heldout_pairs(n: int, start: int = 0) -> tuple[list[Image.Image], list[str]]:
    """``n`` held-out pictures and their full captions (seeds training never saw)."""
    scenes = [scene(s) for s in heldout_seeds(n, start)]
    return [Image.fromarray(picture(s)) for s in scenes], [full_caption(s) for s in scenes]


def heldout_seeds(n: int, start: int = 0) -> list[int]:
    """``n`` held-out seeds (never trained on)."""
    return list(range(HELDOUT_START + start, HELDOUT_START + start + n))


def train_seeds(step: int, batch: int, offset: int = 0) -> list[int]:
    """The training seeds of one step: consecutive, always below ``HELDOUT_START``."""
    first = (offset + step * batch) % (HELDOUT_START - batch)
    return list(range(first, first + batch))


def to_tensor(arrays: np.ndarray) -> torch.Tensor:
    """uint8 pictures (B, H, W, 3) -> float tensor in [-1, 1], (B, 3, H, W)."""
    x = torch.from_numpy(np.ascontiguousarray(arrays)).permute(0, 3, 1, 2)  # (B, 3, H, W)
    return x.float() / 127.5 - 1.0


def batch(seeds) -> torch.Tensor:
    """The seeds' pictures as a training batch in [-1, 1], (B, 3, 128, 128)."""
    return to_tensor(np.stack([picture(scene(s)) for s in seeds]))


def crop_box(seed: int, s: Scene, side: int) -> tuple[int, int]:
    """(left, top) of a training crop: 80% around one of the things, else anywhere."""
    rng = np.random.default_rng([seed, 3])
    hi = world.PICTURE - side
    if rng.random() < 0.8:
        p = s.things[rng.integers(len(s.things))]
        left = p.cx - side // 2 + int(rng.integers(-side // 3, side // 3 + 1))
        top = p.cy - side // 2 + int(rng.integers(-side // 3, side // 3 + 1))
    else:
        left, top = int(rng.integers(hi + 1)), int(rng.integers(hi + 1))
    return int(np.clip(left, 0, hi)), int(np.clip(top, 0, hi))


def crops(seeds, side: int = 64) -> torch.Tensor:
    """Random crops (deterministic per seed) of the seeds' pictures, (B, 3, side, side)."""
    out = []
    for seed in seeds:
        s = scene(seed)
        left, top = crop_box(seed, s, side)
        out.append(picture(s)[top : top + side, left : left + side])
    return to_tensor(np.stack(out))


def world_dict() -> dict:
    """Everything the world knows, as plain JSON-able data. ``clashes`` lists per thing the
    backgrounds it is never drawn on (too little of it would show; computed from the glyphs)."""
    return {
        "picture": world.PICTURE,
        "things": [{**asdict(t), "synonyms": list(t.synonyms)} for t in world.THINGS],
        "backgrounds": [{"name": n, "rgb": list(rgb)} for n, rgb in world.BACKGROUNDS.items()],
        "positions": [{"word": w, "centre": list(world.centre(w))} for w in world.POSITIONS],
        "sizes": dict(world.SIZES),
        "templates": {"one": list(world.TEMPLATES_ONE), "two": list(world.TEMPLATES_TWO)},
        "clashes": clashes(),
    }


def write_world(path: Path) -> Path:
    """Write ``world.json`` to ``path`` (a file, or a folder to put it in)."""
    path = Path(path)
    if path.is_dir():
        path = path / "world.json"
    path.write_text(json.dumps(world_dict(), indent=1, ensure_ascii=False) + "\n")
    return path
