"""Load a Stable Diffusion pipeline: the embedded Mini SD, a local diffusers folder or a hub id.

Only safetensors weights are ever loaded: a checkpoint that has only pickled weights (``.bin``,
``.ckpt``, ``.pt``) is refused, never unpickled. Loading is cached per (model, device).
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch

from explorer.engine import fastpath

MINI_DIR = Path(__file__).parent.parent / "mini" / "model"  # mini-shapes, the embedded default
THINGS_DIR = Path(__file__).parent.parent / "mini" / "things" / "model"
FLOW_DIR = Path(__file__).parent.parent / "mini" / "flow" / "model"  # mini-shapes' world, flow
MINI_MODELS = {"mini-shapes": MINI_DIR, "mini-things": THINGS_DIR, "mini-flow": FLOW_DIR}
FLOW_CLASS = "StableDiffusion3Pipeline"  # a folder's model_index.json class for a flow model
MINI_NAME = "mini-shapes"  # what `model=None` loads
ALIASES = {"mini-sd": "mini-shapes"}  # the embedded model's name before there were two
PICKLE_SUFFIXES = (".bin", ".ckpt", ".pt", ".pth", ".pkl")
_lock = threading.Lock()


class ModelError(ValueError):
    """A model that cannot be loaded, with a message saying what to change."""


def resolve_device(device: str | None) -> torch.device:
    """``None`` picks CUDA when there is one, else the CPU; anything else must exist here."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as e:
        raise ModelError(f"unknown device {device!r}: use 'cpu', 'cuda' or 'cuda:N'") from e
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ModelError(
            f"device {device!r} asked for, but this machine has no CUDA GPU: use 'cpu'"
        )
    return dev


def check_safetensors(folder: Path) -> None:
    """Refuse a local diffusers folder whose weights are not all safetensors."""
    if not (folder / "model_index.json").is_file():
        raise ModelError(
            f"{folder} is not a diffusers pipeline folder (no model_index.json): give a folder "
            "saved with pipe.save_pretrained(...), or a hub id such as "
            "'stable-diffusion-v1-5/stable-diffusion-v1-5'"
        )
    denoiser = "transformer" if pipeline_class(folder) == FLOW_CLASS else "unet"
    for part in (denoiser, "vae", "text_encoder"):
        sub = folder / part
        if not sub.is_dir():
            raise ModelError(
                f"{folder} has no {part}/ folder: is it a Stable Diffusion 1.x/2.x pipeline?"
            )
        files = [f.name for f in sub.iterdir()]
        if not any(f.endswith(".safetensors") for f in files):
            pickled = [f for f in files if f.endswith(PICKLE_SUFFIXES)]
            raise ModelError(
                f"{sub} has no .safetensors weights ({', '.join(pickled) or 'none at all'}); "
                "pickled weights are never loaded here. Convert them first, e.g. load and "
                "save_pretrained(..., safe_serialization=True) on a trusted machine."
            )


def pipeline_class(folder: Path) -> str | None:
    """The pipeline class a local diffusers folder's model_index.json names."""
    index = Path(folder) / "model_index.json"
    return json.loads(index.read_text()).get("_class_name") if index.is_file() else None


def load_pipeline(model: str | None = None, device: str | None = None):
    """The ``StableDiffusionPipeline`` for ``model`` on ``device`` (cached).

    ``model=None`` gives the embedded Mini SD; a local folder or a hub id gives that diffusers
    SD 1.x/2.x checkpoint, in float16 on CUDA and float32 on the CPU. A local folder saved from a
    ``StableDiffusion3Pipeline`` (``"mini-flow"``, or an SD3 model without T5) loads as one.
    """
    dev = resolve_device(device)
    name = mini_name(model)
    key = str(MINI_MODELS[name] if name else model)
    with _lock:
        return _load(key, str(dev))


def mini_name(model: str | None) -> str | None:
    """The embedded model a ``--model`` value names (None and "" name the default), else None."""
    if model in (None, ""):
        return MINI_NAME
    name = ALIASES.get(str(model), str(model))
    return name if name in MINI_MODELS else None


@lru_cache(maxsize=4)
def _load(model: str, device: str):
    from diffusers import StableDiffusionPipeline

    dev = torch.device(device)
    dtype = torch.float16 if dev.type == "cuda" else torch.float32
    path = Path(model).expanduser()
    embedded = {str(folder): name for name, folder in MINI_MODELS.items()}
    if model in embedded and not (path / "model_index.json").is_file():
        raise ModelError(
            f"the embedded model {embedded[model]} is not in {path} (no model_index.json): "
            f"use --model {MINI_NAME}, or train it with python -m explorer.mini.train"
        )
    if path.exists():
        check_safetensors(path)
    elif model.count("/") != 1 or model.startswith(("/", ".", "~")):
        raise ModelError(
            f"model {model!r} is neither an existing folder nor a hub id like 'owner/name'"
        )
    if path.exists() and pipeline_class(path) == FLOW_CLASS:
        return _load_flow(path, dev, dtype)
    try:
        pipe = StableDiffusionPipeline.from_pretrained(
            str(path) if path.exists() else model,
            dtype=dtype,
            use_safetensors=True,
            safety_checker=None,
            feature_extractor=None,
            requires_safety_checker=False,
        )
    except (OSError, ValueError) as e:
        raise ModelError(
            f"could not load {model!r} as a Stable Diffusion 1.x/2.x pipeline: {e}"
        ) from e
    pipe.set_progress_bar_config(disable=True)
    pipe = pipe.to(dev)
    if dev.type == "cpu":
        fastpath.install(pipe.unet)
    return pipe


def _load_flow(path: Path, dev: torch.device, dtype: torch.dtype):
    """An SD3 folder; T5 may be absent (the pipeline then feeds zeros in its place)."""
    from diffusers import StableDiffusion3Pipeline

    absent = {n: None for n in ("text_encoder_3", "tokenizer_3") if not (path / n).is_dir()}
    try:
        pipe = StableDiffusion3Pipeline.from_pretrained(
            str(path), dtype=dtype, use_safetensors=True, **absent
        )
    except (OSError, ValueError) as e:
        raise ModelError(f"could not load {str(path)!r} as a StableDiffusion3Pipeline: {e}") from e
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(dev)


def denoiser(pipe: Any) -> torch.nn.Module:
    """The network a pipeline calls once a step: its UNet, or SD3's transformer."""
    net = getattr(pipe, "unet", None)
    return net if net is not None else pipe.transformer


def vae_scale_factor(vae_config: Mapping[str, Any]) -> int:
    """f, the VAE's downsampling factor, from its config as diffusers derives it: the encoder
    halves the picture once per block after the first (SD 1.x: 4 blocks, f = 8; the Mini: 4)."""
    return 2 ** (len(vae_config["block_out_channels"]) - 1)


def image_size(pipe: Any = None, name: str | None = None) -> tuple[int, int]:
    """(height, width) in pixels of the pictures `pipe` makes by default: the UNet's sample size
    times the VAE's factor f. `pipe=None`: the embedded model `name`'s (default `MINI_NAME`),
    read from its config files (no model loaded)."""
    if pipe is None:
        folder = MINI_MODELS[mini_name(name) or MINI_NAME]
        part = "transformer" if pipeline_class(folder) == FLOW_CLASS else "unet"
        folders = (folder / part, folder / "vae")
        unet, vae = (json.loads((f / "config.json").read_text()) for f in folders)
    else:
        unet, vae = denoiser(pipe).config, pipe.vae.config
    size = unet["sample_size"]
    h, w = (size, size) if isinstance(size, int) else size
    f = vae_scale_factor(vae)
    return int(h) * f, int(w) * f


def mini_size(name: str | None = None) -> int:
    """The one image size (pixels, square) an embedded model makes, read from its config files."""
    return image_size(name=name)[0]


def model_folder(pipe) -> Path | None:
    """The local folder a pipeline was loaded from, if any (for ``clip/`` and ``preview.json``)."""
    name = getattr(pipe, "name_or_path", None) or pipe.config.get("_name_or_path")
    path = Path(str(name)) if name else None
    return path if path is not None and path.is_dir() else None


def embedded_name(pipe) -> str | None:
    """Which embedded model `pipe` is ("mini-shapes", "mini-things"), or None."""
    folder = model_folder(pipe)
    for name, path in MINI_MODELS.items():
        if folder is not None and folder.resolve() == path.resolve():
            return name
    return None


def model_key(name_or_path: str | None) -> str | None:
    """What identifies a model across machines: an embedded model's name (its folder's path
    differs from machine to machine), else the folder or hub id as given."""
    if not name_or_path:
        return None
    parts = Path(str(name_or_path)).parts
    for name, folder in MINI_MODELS.items():
        tail = folder.parts[-3:]  # .../explorer/mini/model, .../mini/things/model
        if parts[-len(tail) :] == tail:
            return name
    return str(name_or_path)


def is_mini(pipe) -> bool:
    return embedded_name(pipe) is not None


def private_tokenizer(pipe):
    """A copy of the pipeline's tokenizer for one run or one call (about a millisecond).

    A fast tokenizer switches its backend's padding and truncation on every call, so two threads
    calling one tokenizer with different settings get each other's: 29 wrong lengths in 20,000
    calls here, which would silently change the text embedding of a run.
    """
    return copy.deepcopy(pipe.tokenizer)


def run_copy(pipe, scheduler: str | None = None, cls=None, spacing: str | None = None):
    """A per-run shallow copy of `pipe`: the same weights, its own scheduler and tokenizer.

    Weights are only read during a run; everything that changes during one (the scheduler's
    timesteps, step index and solver history, the tokenizer's padding state, the pipeline's
    guidance and interrupt flags) belongs to the copy, so concurrent runs on one pipeline never
    see each other. `scheduler` names one from `explorer.engine.schedulers` (default: a fresh copy
    of the pipeline's own); `cls` is the pipeline class (default: the pipeline's own); `spacing`
    overrides the config's timestep spacing.
    """
    from explorer.engine.schedulers import make_scheduler

    if scheduler is not None:
        fresh = make_scheduler(pipe, scheduler, spacing)
    else:
        extra = {"timestep_spacing": spacing} if spacing else {}
        fresh = type(pipe.scheduler).from_config(pipe.scheduler.config, **extra)
    parts = {**pipe.components, "scheduler": fresh, "tokenizer": private_tokenizer(pipe)}
    run = (cls or type(pipe))(**parts, requires_safety_checker=False)
    run.register_to_config(_name_or_path=pipe.name_or_path)  # model folder: previews, settings
    run.set_progress_bar_config(**getattr(pipe, "_progress_bar_config", {}))
    return run
