"""`Trace`: the typed record of one diffusion run, and its on-disk form.

Notation (as in the DDIM paper, Song et al. 2020): for step i of T the scheduler is at timestep t_i,
x_t = latents[i] is the noisy latent, ε = noise_pred[i] the guided noise the step used,
x_0 = x0_pred[i] the clean latent it heads to, and latents[i+1] = x_{t-1} what it produced.
A flow model (settings["objective"] == "flow", rectified flow as in SD3) predicts a velocity v
instead; its trace fills the same fields in its own terms (`explorer.engine.flow`): sigmas = σ_t,
x_t = σ·ε + (1 − σ)·x_0, noise_pred = the implied ε = x_t + (1 − σ)·v, x0_pred = x_t − σ·v.

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
from safetensors.torch import save_file

from explorer.engine import animate as anim
from explorer.engine import decode as dec
from explorer.engine.tracecheck import (  # noqa: F401 - the format and its limits, re-exported
    FORMAT,
    MAX_FILE_SIZES,
    MAX_FILE_STEPS,
    MAX_IMAGE_PIXELS,
    SETTINGS_SCHEMA,
    TENSOR_FIELDS,
    TENSOR_SCHEMA,
    VERSION,
    check_schema,
    read_image,
    read_json,
    read_tensors,
)


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
        velocity, velocity_uncond, velocity_text: (T, C, h, w) a flow model's velocity v (guided,
            and its two halves with guidance); None for an epsilon model.
        pooled_embeds, negative_pooled_embeds: (P,) the pooled text vector SDXL and SD3 also
            condition on (SD3: both CLIP towers' pooled outputs, concatenated); else None.
        time_ids: (A,) SDXL's added time ids (original size, crop corner, target size); else None.
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
    velocity: torch.Tensor | None = None
    velocity_uncond: torch.Tensor | None = None
    velocity_text: torch.Tensor | None = None
    pooled_embeds: torch.Tensor | None = None
    negative_pooled_embeds: torch.Tensor | None = None
    time_ids: torch.Tensor | None = None
    previews: list[Image.Image] = field(default_factory=list, repr=False, compare=False)
    decoder: Any = field(default=None, repr=False, compare=False)

    @property
    def num_steps(self) -> int:
        """T, the number of steps actually run."""
        return int(self.timesteps.shape[0])

    @property
    def objective(self) -> str:
        """What the model predicts: "epsilon" (the noise) or "flow" (a velocity v, as SD3)."""
        return str(self.settings.get("objective", "epsilon"))

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
        meta = read_json(folder / "trace.json")
        tensors = read_tensors(folder / "tensors.safetensors")
        check_schema(folder, meta, tensors)
        images = {n: read_image(folder / f"{n}.png") for n in meta["images"]}
        return cls(
            **{k: tensors.get(k) for k in TENSOR_FIELDS},
            prompt_tokens=meta["prompt_tokens"],
            seconds=[float(s) for s in meta["seconds"]],
            settings=meta["settings"],
            image=images.get("image"),
            init_image=images.get("init_image"),
        )
