"""`Trace`: the typed record of one diffusion run, and its on-disk form.

Notation (as in the DDIM paper, Song et al. 2020): for step i of T the scheduler is at timestep t_i,
x_t = latents[i] is the noisy latent, ε = noise_pred[i] the guided noise the step used,
x_0 = x0_pred[i] the clean latent it heads to, and latents[i+1] = x_{t-1} what it produced.

On disk a trace is a folder (never a pickle):
    trace.json           format, version, settings, tokens, seconds, tensor shapes
    tensors.safetensors  every tensor field that is not None
    image.png            the final image (and init_image.png for img2img)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from explorer.engine import animate as anim
from explorer.engine import decode as dec

FORMAT = "diffusion-explorer-trace"
VERSION = 1
MAX_JSON_BYTES = 16 * 2**20
MAX_TENSOR_BYTES = 2 * 2**30
MAX_IMAGE_PIXELS = 4096 * 4096
# The largest run a file may hold (checked before anything is drawn from it).
MAX_FILE_STEPS = 1000
MAX_FILE_SIZES = {"C": 16, "h": 256, "w": 256, "L": 512, "D": 4096}  # latents up to 2048 px
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
}
TENSOR_FIELDS = [k.rstrip("?") for k in TENSOR_SCHEMA]


@dataclass
class Trace:
    """Everything one run did, step by step. T = number of steps actually run.

    Tensors are float32, detached, on the CPU. Latent-space tensors are in the UNet's space
    (scaled by the VAE's scaling_factor).

    Attributes:
        timesteps: (T,) scheduler timestep t_i of each step (PNDM repeats one).
        alphas_cumprod: (T,) ᾱ_t the step used; for sigma schedulers 1 / (1 + σ_t²).
        sigmas: (T,) σ_t for sigma-space schedulers (LMS, Euler, Euler-a), else None.
        latents: (T+1, C, h, w) the starting latent x_T, then the latent after each step.
        model_input: (T, C, h, w) what the UNet saw: x_t after `scale_model_input`.
        noise_pred: (T, C, h, w) the noise ε the step used (guided when guidance > 1).
        noise_uncond: (T, C, h, w) the UNet's unconditional noise; None without guidance.
        noise_text: (T, C, h, w) the UNet's text-conditioned noise; None without guidance.
        x0_pred: (T, C, h, w) the clean latent x_0 each step predicts.
        step_coeffs: (T, 2) (a, b) with x_{t-1} ≈ a·x_t + b·ε, least squares per step; exact
            for first-order deterministic steps (DDIM, Euler), the rest being history or noise.
        prompt_tokens: the L token strings the text encoder saw, padding and truncation visible.
        prompt_embeds: (L, D) the text encoder's last hidden state for the prompt.
        negative_embeds: (L, D) the same for the negative prompt; None without guidance.
        image: the final PIL image (None in the partial record passed to `on_step`).
        settings: every input, model id, scheduler class and config, library versions.
        seconds: T wall-clock seconds, one per step.
        preview_factors: (C, 3) linear latent -> RGB factors; preview_bias: (3,).
        init_image, init_latents: (C, h, w) for img2img: the start image and its clean latent.
        attention: (L, T, h, w) cross-attention maps per token and step, averaged over heads and
            layers (see `explorer.engine.attention_taps`); None unless traced with attention=True.
        previews: per-step linear previews of x_0 when traced with preview=True (not saved).
        decoder: a VAE for `decode(method="vae")` (not saved; attach with `attach_decoder`).
    """

    timesteps: torch.Tensor
    alphas_cumprod: torch.Tensor
    sigmas: torch.Tensor | None
    latents: torch.Tensor
    model_input: torch.Tensor
    noise_pred: torch.Tensor
    noise_uncond: torch.Tensor | None
    noise_text: torch.Tensor | None
    x0_pred: torch.Tensor
    step_coeffs: torch.Tensor
    prompt_tokens: list[str]
    prompt_embeds: torch.Tensor
    negative_embeds: torch.Tensor | None
    image: Image.Image | None
    settings: dict[str, Any]
    seconds: list[float]
    preview_factors: torch.Tensor
    preview_bias: torch.Tensor
    init_image: Image.Image | None = None
    init_latents: torch.Tensor | None = None
    attention: torch.Tensor | None = None
    previews: list[Image.Image] = field(default_factory=list, repr=False, compare=False)
    decoder: Any = field(default=None, repr=False, compare=False)

    @property
    def num_steps(self) -> int:
        """T, the number of steps actually run."""
        return int(self.timesteps.shape[0])

    @property
    def guided(self) -> bool:
        """True when classifier-free guidance ran (uncond and text noise recorded)."""
        return self.noise_uncond is not None

    @property
    def vae_scale_factor(self) -> int:
        """f, pixels per latent cell: recorded, else derived (see `decode.scale_factor`)."""
        return dec.scale_factor(self.settings, int(self.latents.shape[-2]), self.decoder)

    def attach_decoder(self, vae: Any) -> Trace:
        """Use `vae` (AutoencoderKL, or AutoencoderTiny for speed) for VAE decoding; returns
        self."""
        self.decoder = vae
        return self

    # ---- decoding -------------------------------------------------------------------------

    def decode(
        self,
        steps: int | list[int] | None = None,
        what: str = "latents",
        method: str | None = None,
        batch_size: int = 8,
    ) -> list[Image.Image]:
        """Pictures of `what` ("latents" x_t, "x0" predictions, "noise" ε) at `steps`.

        `steps` indexes the chosen tensor (latents has T+1 entries, the others T); None = all.
        `method` "vae" decodes in batches with the attached decoder, "preview" is the linear map
        (works on a loaded trace without a model); default: vae if a decoder is attached.
        Noise is always shown with the auto-contrasted linear map.
        """
        tensors = {"latents": self.latents, "x0": self.x0_pred, "noise": self.noise_pred}
        if what not in tensors:
            raise ValueError(f"what must be one of {', '.join(tensors)}; got {what!r}")
        if method is None:
            method = "vae" if self.decoder is not None and what != "noise" else "preview"
        if method not in ("vae", "preview"):
            raise ValueError(f"method must be 'vae' or 'preview'; got {method!r}")
        source = tensors[what]  # (N, C, h, w)
        index = dec.step_index(steps, len(source), what)
        z = source[index]  # (n, C, h, w)
        scale = self.vae_scale_factor  # pixels per latent cell
        if what == "noise":
            if method == "vae":
                raise ValueError("noise is not an image latent; decode it with method='preview'")
            return dec.noise_to_images(z, self.preview_factors, scale)
        if method == "vae":
            if self.decoder is None:
                raise ValueError("no VAE attached: use trace.attach_decoder(pipe.vae) or 'preview'")
            return dec.vae_decode(self.decoder, z, batch_size)
        return dec.linear_preview(z, self.preview_factors, self.preview_bias, scale)

    def animate(self, path: str | Path, fps: float = 8, method: str | None = None) -> Path:
        """The run as a .gif or .webp at `path`: each step's x_t beside its x0, step burnt in."""
        return anim.animate(self, path, fps, method)

    # ---- files ----------------------------------------------------------------------------

    def save(self, path: str | Path) -> Path:
        """Write the trace to folder `path` (created if needed); returns the folder."""
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        tensors = {
            k: getattr(self, k).detach().cpu().contiguous()
            for k in TENSOR_FIELDS
            if getattr(self, k) is not None
        }
        save_file(tensors, folder / "tensors.safetensors")
        meta = {
            "format": FORMAT,
            "version": VERSION,
            "prompt_tokens": self.prompt_tokens,
            "seconds": self.seconds,
            "settings": self.settings,
            "tensors": {k: list(v.shape) for k, v in tensors.items()},
            "images": [],
        }
        for name in ("image", "init_image"):
            if getattr(self, name) is not None:
                getattr(self, name).save(folder / f"{name}.png")
                meta["images"].append(name)
        (folder / "trace.json").write_text(json.dumps(meta, indent=1) + "\n")
        return folder

    @classmethod
    def load(cls, path: str | Path) -> Trace:
        """Read a folder written by `save`; `ValueError` saying what is wrong if it is not one."""
        folder = Path(path)
        if not folder.is_dir():
            raise ValueError(f"{folder}: no such trace folder")
        meta = _read_json(folder / "trace.json")
        tensors = _read_tensors(folder / "tensors.safetensors")
        _check_schema(folder, meta, tensors)
        images = {n: _read_image(folder / f"{n}.png") for n in meta["images"]}
        return cls(
            **{k: tensors.get(k) for k in TENSOR_FIELDS},
            prompt_tokens=meta["prompt_tokens"],
            seconds=[float(s) for s in meta["seconds"]],
            settings=meta["settings"],
            image=images.get("image"),
            init_image=images.get("init_image"),
        )


def _check_size(path: Path, limit: int) -> None:
    if not path.is_file():
        raise ValueError(f"{path}: file missing")
    if path.stat().st_size > limit:
        raise ValueError(f"{path}: {path.stat().st_size} bytes is over the {limit}-byte limit")


def _read_json(path: Path) -> dict:
    _check_size(path, MAX_JSON_BYTES)
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


def _read_tensors(path: Path) -> dict[str, torch.Tensor]:
    _check_size(path, MAX_TENSOR_BYTES)
    try:
        with safe_open(path, framework="pt") as f:
            return {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, RuntimeError) as e:
        raise ValueError(f"{path}: not a valid safetensors file ({e})") from None


def _read_image(path: Path) -> Image.Image:
    if not path.is_file():
        raise ValueError(f"{path}: file missing")
    try:
        with Image.open(path) as im:
            if im.width * im.height > MAX_IMAGE_PIXELS:
                raise ValueError(f"{path}: {im.width}x{im.height} image is too large")
            return im.convert("RGB")
    except (OSError, Image.DecompressionBombError) as e:
        raise ValueError(f"{path}: not a readable image ({e})") from None


def _check_schema(folder: Path, meta: dict, tensors: dict[str, torch.Tensor]) -> None:
    """Every field present with the right type, every tensor shape consistent with the others."""
    if not isinstance(meta.get("settings"), dict):
        raise ValueError(f"{folder}: trace.json 'settings' must be an object")
    _check_settings(folder, meta["settings"])
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


def _check_settings(folder: Path, settings: dict) -> None:
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
