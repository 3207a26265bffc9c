"""A run as an animated picture to share: x_t and the x0 it predicts side by side, step burnt in.

Frame k (k = 0 … T−1) is step k+1: the latent x_t the UNet saw at that step (decoded) beside the
clean image x0 it predicted from it; a last frame shows the finished image on both sides, held a
moment. GIF or WebP by the file's suffix (Pillow writes both; no video codec needed).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

FORMATS = {".gif": "GIF", ".webp": "WEBP"}
BAND = 26  # pixels of the caption band above the pictures
LABEL_SIZE = 15  # caption text height in pixels
PAD = 4  # pixels between the two pictures


def _enlarged(image: Image.Image, size: int) -> Image.Image:
    """`image` scaled so its longer side is `size` px: nearest neighbour (crisp pixels) when
    enlarging a small picture by a whole factor, else smooth."""
    w, h = image.size
    scale = size / max(w, h)
    new = (max(1, round(w * scale)), max(1, round(h * scale)))
    smooth = scale < 1 or scale != int(scale)
    return image.convert("RGB").resize(new, Image.BICUBIC if smooth else Image.NEAREST)


def frame(left: Image.Image, right: Image.Image, caption: str, size: int = 256) -> Image.Image:
    """One frame: a caption band, then `left` and `right` side by side, each `size` px."""
    a, b = _enlarged(left, size), _enlarged(right, size)
    canvas = Image.new("RGB", (a.width + PAD + b.width, BAND + max(a.height, b.height)), "white")
    canvas.paste(a, (0, BAND))
    canvas.paste(b, (a.width + PAD, BAND))
    font = ImageFont.load_default(size=LABEL_SIZE)
    ImageDraw.Draw(canvas).text((6, (BAND - LABEL_SIZE) // 2), caption, fill="black", font=font)
    return canvas


def frames(
    latents: Sequence[Image.Image],
    x0: Sequence[Image.Image],
    timesteps: Sequence[float],
    size: int = 256,
) -> list[Image.Image]:
    """T+1 frames from the T+1 decoded latents, the T decoded x0 predictions and the T
    timesteps: step i's input x_t beside its x0, then the final image on both sides."""
    total = len(x0)
    if len(latents) != total + 1 or len(timesteps) != total:
        raise ValueError(
            f"need T+1 latents and T x0 and timesteps; got {len(latents)}, {total}, "
            f"{len(timesteps)}"
        )
    out = [
        frame(
            latents[i],
            x0[i],
            f"step {i + 1} of {total} · t = {float(t):.0f} · left x_t, right its x0",
            size,
        )
        for i, t in enumerate(timesteps)
    ]
    out.append(frame(latents[-1], latents[-1], f"done: {total} steps · the final image", size))
    return out


def save(images: Sequence[Image.Image], path: str | Path, fps: float = 8, hold: float = 1.5):
    """Write `images` as an animation (format from the suffix); the last one shows `hold` s."""
    path = Path(path)
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise ValueError(f"{path.name}: an animation is .gif or .webp")
    if not images:
        raise ValueError("no frames to animate")
    if fps <= 0:
        raise ValueError(f"fps must be above 0; got {fps}")
    step_ms = round(1000 / fps)
    durations = [step_ms] * (len(images) - 1) + [round(1000 * hold)]
    if kind == "GIF":  # a palette per frame; octree: 5x faster than the default, and smaller
        images = [im.convert("RGB").quantize(256, Image.Quantize.FASTOCTREE) for im in images]
    first, *rest = images
    extra: dict[str, Any] = {} if kind == "GIF" else {"quality": 80}
    first.save(path, kind, save_all=True, append_images=rest, duration=durations, loop=0, **extra)
    return path


def animate(trace: Any, path: str | Path, fps: float = 8, method: str | None = None, size=256):
    """The run `trace` as an animation at `path` (.gif or .webp); `method` as `Trace.decode`
    ("vae" with a decoder attached, else the linear preview). Returns the path."""
    latents = trace.decode(what="latents", method=method)  # T+1 pictures
    x0 = trace.decode(what="x0", method=method)  # T pictures
    return save(frames(latents, x0, trace.timesteps.tolist(), size), path, fps)
