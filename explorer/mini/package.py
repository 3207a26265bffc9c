"""Write the trained Mini SD as a standard diffusers folder (safetensors, float16).

Layout: ``model_index.json``, ``unet/``, ``vae/``, ``text_encoder/``, ``tokenizer/``,
``scheduler/`` (what ``StableDiffusionPipeline.from_pretrained`` reads), plus ``clip/`` (the whole
CLIP model with its vision tower and projections, for image-text scores) and ``preview.json`` (the
linear latent -> RGB factors, fitted by least squares like ComfyUI's for SD 1.x).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from diffusers import StableDiffusionPipeline
from transformers import CLIPTextModel

from explorer.engine.decode import fit_preview_factors, save_preview_factors
from explorer.mini import architecture as arch
from explorer.mini import data
from explorer.mini.loop import load_stage_model

MODEL_DIR = Path(__file__).parent / "model"  # the shipped weights


# one step starts at t = 999 (the blurry average), not at t = 1 as "leading" spacing would
TRAILING = {"timestep_spacing": "trailing"}


def export(work: Path, out: Path | None, device: torch.device) -> Path:
    out = Path(out) if out else MODEL_DIR
    vae = load_stage_model("vae", work, torch.device("cpu"))
    clip = load_stage_model("clip", work, torch.device("cpu"))
    unet = load_stage_model("unet", work, torch.device("cpu"))
    pool_files = sorted(work.glob("pool_*.pt"))
    scaling = (
        float(torch.load(pool_files[-1], weights_only=True)["scaling_factor"])
        if pool_files
        else None
    )
    if scaling is None:
        raise RuntimeError("no encoded pool found: run the unet stage first")
    vae.register_to_config(scaling_factor=scaling)

    text_encoder = CLIPTextModel(clip.config.text_config)
    text_encoder.load_state_dict(clip.text_model.state_dict())
    pipe = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=arch.build_tokenizer(),
        unet=unet,
        scheduler=arch.build_scheduler(),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    # linear latent -> RGB factors for live previews, fitted on training seeds
    with torch.no_grad():
        preview = fit_preview_factors(vae, [data.sample(s)[0] for s in range(512)])
    pipe.to(torch.float16)
    pipe.save_pretrained(out, safe_serialization=True)
    clip.to(torch.float16).save_pretrained(out / "clip", safe_serialization=True)
    save_preview_factors(out, preview)
    # like SD 1.x's scheduler_config.json: PNDM built from it skips the Runge-Kutta warm-up steps
    sched_file = out / "scheduler" / "scheduler_config.json"
    sched_file.write_text(
        json.dumps(
            {**json.loads(sched_file.read_text()), "skip_prk_steps": True, **TRAILING}, indent=2
        )
    )
    return out
