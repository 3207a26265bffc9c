"""Checking a saved trace before anything is drawn from it: the file format, its limits, and the
schema every field must meet (`explorer.engine.tracefile.Trace.load` calls `read_*` and
`check_schema`; a file that fails gets a `ValueError` saying what is wrong).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from PIL import Image
from safetensors import SafetensorError, safe_open

FORMAT = "diffusion-explorer-trace"
VERSION = 1
MAX_JSON_BYTES = 16 * 2**20
MAX_TENSOR_BYTES = 2 * 2**30
MAX_IMAGE_PIXELS = 4096 * 4096
# The largest run a file may hold (checked before anything is drawn from it).
MAX_FILE_STEPS = 1000
# Latents up to 2048 px; P: a pooled text vector's width, A: SDXL's added time ids.
MAX_FILE_SIZES = {"C": 16, "h": 256, "w": 256, "L": 512, "D": 4096, "P": 8192, "A": 64}
# Settings the views read, with their type and range (a file may omit them, not mistype them).
SETTINGS_SCHEMA: dict[str, tuple] = {
    "vae_scale_factor": (int, 1, 16),
    "height": (int, 1, 4096),
    "width": (int, 1, 4096),
    "steps": (int, 1, MAX_FILE_STEPS),
    "steps_run": (int, 0, MAX_FILE_STEPS),
    "seed": (int, 0, 2**64 - 1),
    "guidance": (float, -1e6, 1e6),
    "cancelled": (bool, None, None),
    "prompt": (str, 0, 10_000),
    "negative_prompt": (str, 0, 10_000),
    "scheduler": (str, 0, 100),
    "scheduler_class": (str, 0, 100),
    "objective": (str, 0, 20),
}

# Tensor fields and their shapes; symbols are bound on load and must agree across fields.
# T1 means T + 1. A trailing "?" marks a field that may be absent (None).
TENSOR_SCHEMA: dict[str, tuple] = {
    "timesteps": ("T",),
    "alphas_cumprod": ("T",),
    "sigmas?": ("T",),
    "latents": ("T1", "C", "h", "w"),
    "model_input": ("T", "C", "h", "w"),
    "noise_pred": ("T", "C", "h", "w"),
    "noise_uncond?": ("T", "C", "h", "w"),
    "noise_text?": ("T", "C", "h", "w"),
    "x0_pred": ("T", "C", "h", "w"),
    "step_coeffs": ("T", 2),
    "prompt_embeds": ("L", "D"),
    "negative_embeds?": ("L", "D"),
    "preview_factors": ("C", 3),
    "preview_bias": (3,),
    "init_latents?": ("C", "h", "w"),
    "attention?": ("L", "T", "h", "w"),
    "velocity?": ("T", "C", "h", "w"),
    "velocity_uncond?": ("T", "C", "h", "w"),
    "velocity_text?": ("T", "C", "h", "w"),
    "pooled_embeds?": ("P",),
    "negative_pooled_embeds?": ("P",),
    "time_ids?": ("A",),
}
TENSOR_FIELDS = [k.rstrip("?") for k in TENSOR_SCHEMA]


def check_size(path: Path, limit: int) -> None:
    if not path.is_file():
        raise ValueError(f"{path}: file missing")
    if path.stat().st_size > limit:
        raise ValueError(f"{path}: {path.stat().st_size} bytes is over the {limit}-byte limit")


def read_json(path: Path) -> dict:
    check_size(path, MAX_JSON_BYTES)
    try:
        meta = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from None
    except RecursionError:
        raise ValueError(f"{path}: not valid JSON (nested too deeply)") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"{path}: not a {FORMAT} file")
    if meta.get("version") != VERSION:
        raise ValueError(f"{path}: version {meta.get('version')!r}, this code reads {VERSION}")
    return meta


def read_tensors(path: Path) -> dict[str, torch.Tensor]:
    check_size(path, MAX_TENSOR_BYTES)
    try:
        with safe_open(path, framework="pt") as f:
            return {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, RuntimeError) as e:
        raise ValueError(f"{path}: not a valid safetensors file ({e})") from None


def read_image(path: Path) -> Image.Image:
    if not path.is_file():
        raise ValueError(f"{path}: file missing")
    try:
        with Image.open(path) as im:
            if im.width * im.height > MAX_IMAGE_PIXELS:
                raise ValueError(f"{path}: {im.width}x{im.height} image is too large")
            return im.convert("RGB")
    except (OSError, Image.DecompressionBombError) as e:
        raise ValueError(f"{path}: not a readable image ({e})") from None


def check_schema(folder: Path, meta: dict, tensors: dict[str, torch.Tensor]) -> None:
    """Every field present with the right type, every tensor shape consistent with the others."""
    if not isinstance(meta.get("settings"), dict):
        raise ValueError(f"{folder}: trace.json 'settings' must be an object")
    check_settings(folder, meta["settings"])
    tokens, seconds, images = meta.get("prompt_tokens"), meta.get("seconds"), meta.get("images")
    if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
        raise ValueError(f"{folder}: trace.json 'prompt_tokens' must be a list of strings")
    if not isinstance(seconds, list) or not all(isinstance(s, int | float) for s in seconds):
        raise ValueError(f"{folder}: trace.json 'seconds' must be a list of numbers")
    if not isinstance(images, list) or not all(i in ("image", "init_image") for i in images):
        raise ValueError(f"{folder}: trace.json 'images' must list image / init_image")
    unknown = set(tensors) - set(TENSOR_FIELDS)
    if unknown:
        raise ValueError(f"{folder}: unexpected tensors {sorted(unknown)}")
    bound: dict[str, int] = {}
    for key, spec in TENSOR_SCHEMA.items():
        name = key.rstrip("?")
        if name not in tensors:
            if key.endswith("?"):
                continue
            raise ValueError(f"{folder}: tensor {name!r} missing")
        t = tensors[name]
        if not t.is_floating_point():
            raise ValueError(f"{folder}: tensor {name!r} must be floating point, is {t.dtype}")
        if t.ndim != len(spec):
            raise ValueError(f"{folder}: tensor {name!r} has shape {list(t.shape)}, want {spec}")
        for sym, size in zip(spec, t.shape):
            if sym == "T1":
                sym, size = "T", size - 1
            most = MAX_FILE_STEPS if sym == "T" else MAX_FILE_SIZES.get(sym)
            if most is not None and not 0 < size <= most:
                raise ValueError(f"{folder}: tensor {name!r} has {sym} = {size}; at most {most}")
            want = sym if isinstance(sym, int) else bound.setdefault(sym, size)
            if size != want:
                raise ValueError(
                    f"{folder}: tensor {name!r} has shape {list(t.shape)}, inconsistent with {spec}"
                )
    if len(seconds) != bound["T"]:
        raise ValueError(f"{folder}: {len(seconds)} step times for {bound['T']} steps")
    if len(tokens) != bound["L"]:
        raise ValueError(f"{folder}: {len(tokens)} prompt tokens for {bound['L']} embeddings")


def check_settings(folder: Path, settings: dict) -> None:
    """The settings the views read (`SETTINGS_SCHEMA`) have their type and lie in range; a null
    one is dropped (as if absent: readers fall back to their defaults)."""
    for key, (kind, lo, hi) in SETTINGS_SCHEMA.items():
        if settings.get(key) is None:
            settings.pop(key, None)
            continue
        value = settings[key]
        ok = isinstance(value, kind) and (kind is bool or not isinstance(value, bool))
        if kind is float:
            ok = isinstance(value, int | float) and not isinstance(value, bool)
        size = len(value) if isinstance(value, str) else value
        if not ok or (lo is not None and not lo <= size <= hi):
            raise ValueError(
                f"{folder}: trace.json settings {key!r} = {str(value)[:40]!r} is not a "
                f"{kind.__name__} in {lo}..{hi}"
            )
