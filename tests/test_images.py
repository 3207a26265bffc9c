"""Uploads of every kind: what is accepted (and how it is converted), what is refused (and why)."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from explorer.inputs import uploads as images
from explorer.inputs.uploads import MAX_PIXELS, UploadError, from_sketch, load_upload, upload_table

SIZE = (64, 64)
LIMITS_DOC = Path(__file__).parents[1] / "docs" / "limits.md"


def png_header(width: int, height: int) -> bytes:
    """A PNG that declares width × height but holds no pixel data (bomb-shaped, a few bytes)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grayscale
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b""))
        + chunk(b"IEND", b"")
    )


def saved(im: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def write(tmp_path, data: bytes, name: str = "up.png") -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


# ---- refused: each case and its message --------------------------------------------------------


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda tmp: None, "No picture: draw a sketch or upload an image"),
        (lambda tmp: str(tmp / "missing.png"), "No picture"),
        (lambda tmp: write(tmp, b""), r"The file is empty \(0 bytes\)"),
        (
            lambda tmp: write(tmp, b"hello, not a picture", "x.png"),
            "not a picture this app can read",
        ),
        (lambda tmp: write(tmp, b"\0" * (images.MAX_UPLOAD_BYTES + 1)), "the limit is 20 MB"),
        (lambda tmp: write(tmp, png_header(5000, 5000)), r"5000×5000 pixels \(25.0 megapixels\)"),
        # over PIL's MAX_IMAGE_PIXELS (a DecompressionBombWarning, made an error here) ...
        (lambda tmp: write(tmp, png_header(10000, 10000)), "a decompression bomb"),
        # ... and over twice that (PIL's DecompressionBombError)
        (lambda tmp: write(tmp, png_header(30000, 30000)), "declares 900.0 megapixels"),
        (lambda tmp: write(tmp, png_header(64, 64)), "could not be decoded"),  # truncated
    ],
    ids=[
        "none",
        "missing",
        "zero-bytes",
        "not-an-image",
        "too-many-bytes",
        "over-cap",
        "bomb-warning",
        "bomb-error",
        "truncated",
    ],
)
def test_bad_uploads_are_refused_in_words(tmp_path, make, message):
    with pytest.raises(UploadError, match=message) as e:
        load_upload(make(tmp_path), SIZE)
    assert str(e.value) in QUOTED or any(_matches(q, str(e.value)) for q in QUOTED)


# The upload table (docs/limits.md) quotes each refusal, with … where the message varies.
QUOTED = [what.strip("“”") for _, what in images.UPLOAD_CASES if what.startswith("“")]


def _matches(quoted: str, message: str) -> bool:
    """True when every fixed piece of `quoted` appears in `message`, in order."""
    at = 0
    for piece in quoted.split("…"):
        found = message.find(piece, at)
        if found < 0:
            return False
        at = found + len(piece)
    return True


@pytest.mark.parametrize(
    "value", [None, {"composite": None}, {"composite": Image.new("RGB", (512, 512), "white")}]
)
def test_empty_sketch_is_refused(value):
    with pytest.raises(UploadError, match="The sketch is empty: draw something") as e:
        from_sketch(value, SIZE)
    assert str(e.value) in QUOTED


def test_bytes_and_files_alike(tmp_path):
    data = saved(Image.new("RGB", (64, 64), "red"))
    assert load_upload(data, SIZE).image.getpixel((5, 5)) == (255, 0, 0)
    with pytest.raises(UploadError, match="empty"):
        load_upload(b"", SIZE)


# ---- accepted: how each kind is converted --------------------------------------------------------


def test_rgba_is_composited_on_white(tmp_path):
    im = Image.new("RGBA", (64, 64), (0, 0, 255, 0))  # fully transparent blue
    im.paste((255, 0, 0, 255), (0, 0, 32, 64))  # opaque red left half
    out = load_upload(write(tmp_path, saved(im)), SIZE)
    assert out.image.mode == "RGB"
    assert out.image.getpixel((10, 10)) == (255, 0, 0)
    assert out.image.getpixel((50, 10)) == (255, 255, 255)
    assert any("composited on white" in n for n in out.notes)


@pytest.mark.parametrize("mode, note", [("L", "grayscale"), ("P", "palette"), ("1", "1-bit")])
def test_other_modes_become_rgb(tmp_path, mode, note):
    im = Image.new("RGB", (64, 64), "white").convert(mode)
    out = load_upload(write(tmp_path, saved(im)), SIZE)
    assert out.image.mode == "RGB" and out.image.getpixel((0, 0)) == (255, 255, 255)
    assert any(note in n for n in out.notes)


def test_palette_with_transparency(tmp_path):
    im = Image.new("P", (64, 64), 0)
    im.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    im.paste(1, (0, 0, 32, 64))
    out = load_upload(write(tmp_path, saved(im, transparency=0)), SIZE)
    assert out.image.getpixel((10, 10)) == (255, 0, 0)
    assert out.image.getpixel((50, 10)) == (255, 255, 255)  # transparent index -> white


def test_16_bit_is_scaled_to_8_bits(tmp_path):
    ramp = np.tile(np.linspace(0, 65535, 64).astype(np.uint16), (64, 1))  # (64, 64)
    out = load_upload(write(tmp_path, saved(Image.fromarray(ramp))), SIZE)
    pixels = np.asarray(out.image)  # (64, 64, 3)
    assert pixels[0, 0, 0] == 0 and pixels[0, -1, 0] == 255  # the full range survives
    assert any("more than 8 bits" in n for n in out.notes)


def test_animated_uses_the_first_frame(tmp_path):
    frames = [Image.new("RGB", (64, 64), c) for c in ("red", "blue", "green")]
    data = saved(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50)
    out = load_upload(write(tmp_path, data, "a.gif"), SIZE)
    r, g, b = out.image.getpixel((32, 32))
    assert r > 200 and g < 50 and b < 50
    assert any("3 frames" in n for n in out.notes)


@pytest.mark.parametrize("how", ["pad", "crop"])
def test_any_size_is_fitted_keeping_the_aspect(tmp_path, how):
    im = Image.new("RGB", (300, 100), "blue")  # wide
    out = load_upload(write(tmp_path, saved(im)), SIZE, how)
    assert out.image.size == SIZE and out.original_size == (300, 100)
    top = out.image.getpixel((32, 1))
    assert top == ((255, 255, 255) if how == "pad" else (0, 0, 255))  # white bars, or filled
    assert any(f"by {how}" in n for n in out.notes)


def test_a_pil_image_too_large_is_refused():
    with pytest.raises(UploadError, match="decompression bomb"):
        load_upload(Image.new("1", (MAX_PIXELS + 1, 1)), SIZE)


def test_docs_list_the_upload_cases():
    assert upload_table() in LIMITS_DOC.read_text()
