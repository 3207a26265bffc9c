"""The bad uploads of the bad-input table, by the names its rows give them (`Case.upload`):
spoiled saved runs for `/open_run` (`bad_file`) and bad pictures for the picture inputs
(`bad_picture`). Used by tests/test_hardening.py."""

from __future__ import annotations

import io
import json
import pickle
import struct
import zipfile
import zlib
from pathlib import Path

from PIL import Image
from safetensors.torch import load_file, save_file

from explorer.inputs.uploads import MAX_UPLOAD_BYTES


def _zip(path: Path, members: dict[str, bytes], compress=zipfile.ZIP_STORED) -> Path:
    with zipfile.ZipFile(path, "w", compression=compress) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return path


def _png_header(width: int, height: int) -> bytes:
    """A PNG that claims a huge size (its pixels are never there)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))


def bad_file(maker: str, run: Path, out: Path) -> Path:
    """The bad upload named `maker` (see the `/open_run` rows of BAD_INPUTS)."""
    good = {f.name: f.read_bytes() for f in run.iterdir()}
    meta = json.loads(good["trace.json"])
    tensors = out / "t.safetensors"

    def with_meta(**change):
        return {**good, "trace.json": json.dumps({**meta, **change}).encode()}

    def with_tensors(**arrays):
        import torch

        saved = load_file(run / "tensors.safetensors")
        if "timesteps" in arrays:  # only the step count is wrong: the first tensor read says so
            saved = {}
        save_file({**saved, **{k: torch.zeros(v) for k, v in arrays.items()}}, tensors)
        return {**good, "tensors.safetensors": tensors.read_bytes()}

    members = {
        "traversal": {"../trace.json": b"{}"},
        "extra": {**good, "payload.pkl": pickle.dumps({"x": 1})},
        "bad_json": {**good, "trace.json": b"{not json"},
        "deep_json": {**good, "trace.json": b"[" * 100_000 + b"]" * 100_000},
        "wrong_format": with_meta(format="something-else"),
        "bad_tensors": {**good, "tensors.safetensors": pickle.dumps({"latents": [1.0]})},
        "bad_shape": with_tensors(latents=(5, 4, 8, 8)),
        "huge_steps": with_tensors(timesteps=(5000,)),
        "bad_settings": with_meta(settings={**meta["settings"], "vae_scale_factor": 10**6}),
        "huge_image": {**good, "image.png": _png_header(30_000, 30_000)},
    }
    path = out / f"{maker}.zip"
    if maker == "empty":
        path.write_bytes(b"")
    elif maker == "not_zip":
        path.write_bytes(b"this is not a zip file at all")
    elif maker == "bomb":
        _zip(path, {"trace.json": bytes(100 * 2**20)}, zipfile.ZIP_DEFLATED)
    else:
        _zip(path, members[maker])
    return path


def bad_picture(maker: str, out: Path) -> Path:
    """The bad picture named `maker` (see the upload rows of the picture endpoints)."""
    path = out / f"{maker}.png"
    good = good_png()
    data = {
        "zero_bytes": b"",
        "not_image": b"this is not a picture at all",
        "bomb": _png_header(20_000, 20_000),  # 400 megapixels declared: PIL's bomb error
        "huge": _png_header(5_000, 5_000),  # 25 megapixels: over the app's limit, not PIL's
        "truncated": good[: len(good) // 2],
        "over_limit": good + bytes(MAX_UPLOAD_BYTES),  # a valid PNG with trailing zeros
    }[maker]
    path.write_bytes(data)
    return path


def good_png() -> bytes:
    """A valid 80 × 48 red PNG."""
    buf = io.BytesIO()
    Image.new("RGB", (80, 48), "red").save(buf, "PNG")
    return buf.getvalue()
