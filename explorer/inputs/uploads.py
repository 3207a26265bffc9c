"""Uploaded pictures and sketches -> one RGB image of the model's size, or a clear `UploadError`.

Whatever a visitor sends goes through `load_upload` (a file) or `from_sketch` (the sketchpad's
picture) before any model sees it. Every case has a fixed answer, listed in `UPLOAD_CASES` (the
docs/limits.md shows that table; a test checks both):

  mode                  RGBA / LA / PA, or a palette with transparency: composited on white;
                        grayscale, palette, CMYK, 1-bit: converted to RGB;
                        16-bit and 32-bit (I;16, I, F): scaled to 8 bits by the image's own range;
  animated              the first frame;  EXIF rotation: applied;
  size                  fitted to the model's size keeping the aspect: "pad" (the whole picture,
                        white bars) or "crop" (fills the frame, the centre is kept);
  refused               zero bytes, not an image, over MAX_UPLOAD_BYTES, over MAX_PIXELS,
                        PIL's decompression bomb error or warning, an empty sketch.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from explorer.inputs.errors import VisitorError

MAX_UPLOAD_BYTES = 20 * 2**20  # larger files are refused before they are opened
MAX_PIXELS = 4096 * 4096  # larger pictures are refused from their header, before decoding
FITS = ("pad", "crop")
FIT_WORDS = {
    "pad": "the whole picture is kept, shrunk to fit and padded with white bars",
    "crop": "the picture fills the frame; the centre is kept and the longer sides are cropped",
}
FORMATS = "PNG, JPEG, WebP, GIF or BMP"
STATED = f"{FORMATS}, up to {MAX_UPLOAD_BYTES // 2**20} MB and {MAX_PIXELS / 1e6:.1f} megapixels"


class UploadError(VisitorError):
    """An upload that cannot be used, with a message that says what to do instead."""


@dataclass
class Loaded:
    """A picture ready for the model, and what was done to it."""

    image: Image.Image  # RGB, exactly the model's size (its own size when none was asked for)
    original_size: tuple[int, int]  # (width, height) as uploaded
    notes: list[str] = field(default_factory=list)  # one sentence per change made


# (case, what happens): docs/limits.md's upload table is exactly `upload_table()`. A refusal is
# quoted with … for the parts that vary; a test checks every quoted piece against the real message.
_LIMIT = f"{MAX_PIXELS / 1e6:.1f} megapixels"
UPLOAD_CASES: list[tuple[str, str]] = [
    ("RGBA / transparent PNG", "composited on white (a note says so)"),
    ("grayscale, palette, CMYK, 1-bit", "converted to RGB (a note names the mode)"),
    ("16-bit or 32-bit (I;16, I, F)", "scaled to 8 bits by the picture's own range (a note)"),
    ("animated GIF / WebP / PNG", "the first frame is used (a note gives the frame count)"),
    ("EXIF-rotated photo", "turned upright"),
    ("any size or aspect", "fitted to the model's size: pad (default) or crop, said in a note"),
    ("empty sketch", "“The sketch is empty: draw something (or upload a picture) first.”"),
    ("no file", "“No picture: draw a sketch or upload an image.”"),
    ("zero bytes", f"“The file is empty (0 bytes): upload a {FORMATS}.”"),
    ("not an image", f"“This file is not a picture this app can read (…): upload a {FORMATS}.”"),
    (
        f"over {MAX_UPLOAD_BYTES // 2**20} MB",
        f"“The file is … MB; the limit is {MAX_UPLOAD_BYTES // 2**20} MB. Shrink or compress it "
        "first.”",
    ),
    (
        f"over {_LIMIT}",
        f"“The picture is …×… pixels (… megapixels); the limit is {_LIMIT}. Shrink it first.”",
    ),
    (
        "decompression bomb (PIL's DecompressionBombWarning or Error)",
        "“The picture declares … megapixels: a decompression bomb, or far too large to open "
        f"safely. Upload a picture of at most {_LIMIT}.”",
    ),
    (
        "broken / truncated file",
        f"“The picture could not be decoded (…): save it again as a {FORMATS} and upload that.”",
    ),
]


def upload_table() -> str:
    """`UPLOAD_CASES` as a Markdown table (docs/limits.md holds exactly this; a test checks it)."""
    rows = ["| upload | what happens |", "| --- | --- |"]
    return "\n".join(rows + [f"| {case} | {what} |" for case, what in UPLOAD_CASES])


def _bomb(pixels: int) -> UploadError:
    return UploadError(
        f"The picture declares {_mp(pixels)} megapixels: a decompression bomb, or far too large "
        f"to open safely. Upload a picture of at most {_mp(MAX_PIXELS)} megapixels."
    )


def _mp(pixels: int) -> str:
    return f"{pixels / 1e6:.1f}"


def _open(source: str | Path | bytes) -> Image.Image:
    """Open a file or bytes lazily (header only), refusing empty, huge and unreadable input."""
    if isinstance(source, bytes | bytearray):
        size, stream = len(source), io.BytesIO(source)
    else:
        path = Path(source)
        if not path.is_file():
            raise UploadError("No picture: draw a sketch or upload an image.")
        size, stream = path.stat().st_size, path
    if size == 0:
        raise UploadError(f"The file is empty (0 bytes): upload a {FORMATS}.")
    if size > MAX_UPLOAD_BYTES:
        raise UploadError(
            f"The file is {size / 2**20:.1f} MB; the limit is {MAX_UPLOAD_BYTES // 2**20} MB. "
            "Shrink or compress it first."
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(stream)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise _bomb(_declared(str(e))) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        kind = type(e).__name__
        raise UploadError(
            f"This file is not a picture this app can read ({kind}): upload a {FORMATS}."
        ) from None
    w, h = im.size
    if w * h > MAX_PIXELS:
        raise UploadError(
            f"The picture is {w}×{h} pixels ({_mp(w * h)} megapixels); the limit is "
            f"{_mp(MAX_PIXELS)} megapixels. Shrink it first."
        )
    return im


def _declared(message: str) -> int:
    """The pixel count in PIL's bomb message 'Image size (N pixels) exceeds limit of ...'."""
    digits = [int(s) for s in message.replace("(", " ").split() if s.isdigit()]
    return digits[0] if digits else 0


def _first_frame(im: Image.Image, notes: list[str]) -> Image.Image:
    frames = getattr(im, "n_frames", 1)
    if getattr(im, "is_animated", False) or frames > 1:
        im.seek(0)
        notes.append(f"animated picture ({frames} frames): the first frame is used")
    return im


def _to_rgb(im: Image.Image, notes: list[str]) -> Image.Image:
    """Any mode -> RGB: transparency composited on white, high bit depths scaled to 8 bits."""
    mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        a = np.asarray(im, dtype=np.float64)  # (H, W)
        lo, hi = float(a.min()), float(a.max())
        a = (a - lo) / (hi - lo) * 255 if hi > lo else np.zeros_like(a)
        notes.append(f"{mode} picture (more than 8 bits): scaled from its range {lo:g}..{hi:g}")
        return Image.fromarray(a.round().astype(np.uint8)).convert("RGB")
    if mode == "P" and "transparency" in im.info:
        im, mode = im.convert("RGBA"), "P with transparency"
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = im.convert("RGBA")
        if rgba.getextrema()[3][0] < 255:
            notes.append("transparent areas composited on white")
        white = Image.new("RGBA", rgba.size, "white")
        return Image.alpha_composite(white, rgba).convert("RGB")
    if mode != "RGB":
        words = {"L": "grayscale", "P": "palette", "1": "1-bit", "CMYK": "CMYK"}
        notes.append(f"{words.get(mode, mode)} picture converted to RGB")
    return im.convert("RGB")


def fit(im: Image.Image, size: tuple[int, int], how: str = "pad") -> Image.Image:
    """Resize to `size` (width, height) keeping the aspect: "pad" with white, or centre "crop"."""
    if how not in FITS:
        raise UploadError(f"fit must be one of {', '.join(FITS)}, got {how!r}")
    if im.size == size:
        return im
    if how == "crop":
        return ImageOps.fit(im, size, Image.LANCZOS)
    return ImageOps.pad(im, size, Image.LANCZOS, color="white")


def prepare(im: Image.Image, size: tuple[int, int] | None, how: str = "pad") -> Loaded:
    """An already opened PIL picture -> `Loaded` (modes, frames, rotation, size handled);
    `size` None keeps the picture's own size."""
    notes: list[str] = []
    w, h = im.size
    if w * h > MAX_PIXELS:
        raise _bomb(w * h)
    try:
        im = _first_frame(im, notes)
        im = ImageOps.exif_transpose(im) or im
        im.load()
        rgb = _to_rgb(im, notes)
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise UploadError(
            f"The picture could not be decoded ({type(e).__name__}: {str(e)[:80]}): save it again "
            f"as a {FORMATS} and upload that."
        ) from None
    if size is None:
        return Loaded(rgb, (w, h), notes)
    out = fit(rgb, size, how)
    if rgb.size != size:
        notes.append(
            f"resized from {rgb.width}×{rgb.height} to {size[0]}×{size[1]} by {how}: "
            f"{FIT_WORDS[how]}"
        )
    return Loaded(out, (w, h), notes)


def load_upload(
    source: str | Path | bytes | Image.Image | None, size: tuple[int, int] | None, how: str = "pad"
) -> Loaded:
    """An uploaded file (path or bytes) or PIL image -> `Loaded`; `UploadError` says what's
    wrong."""
    if source is None or (isinstance(source, str) and not source.strip()):
        raise UploadError("No picture: draw a sketch or upload an image.")
    if isinstance(source, Image.Image):
        return prepare(source, size, how)
    im = _open(source)
    with im:
        return prepare(im, size, how)


def is_blank(im: Image.Image, tolerance: int = 2) -> bool:
    """True when every pixel has (nearly) the same colour: nothing was drawn."""
    lo_hi = im.convert("RGB").getextrema()  # ((min, max) per channel)
    return all(hi - lo <= tolerance for lo, hi in lo_hi)


def from_sketch(value, size: tuple[int, int], how: str = "pad") -> Loaded:
    """The sketchpad's value (gr.Sketchpad's dict, or a PIL image) -> `Loaded`, refusing blanks."""
    composite = value.get("composite") if isinstance(value, dict) else value
    if composite is None or (isinstance(composite, Image.Image) and is_blank(composite)):
        raise UploadError("The sketch is empty: draw something (or upload a picture) first.")
    if isinstance(composite, np.ndarray):
        composite = Image.fromarray(composite)
    return load_upload(composite, size, how)
