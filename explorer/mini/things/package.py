"""Write ``mini-things`` as a standard diffusers folder (float16 safetensors), as ``mini-shapes``:
``model_index.json``, ``unet/``, ``vae/``, ``text_encoder/``, ``tokenizer/``, ``scheduler/``,
plus ``clip/`` (the whole CLIP, for image-text scores), ``preview.json`` (linear latent -> RGB
factors) and ``world.json``. Each trained part keeps its ``training.json`` (steps run, config,
held-out figures).

``python -m explorer.mini.things.package --work runs/things [--out DIR]``
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import torch
from diffusers import AutoencoderKL, StableDiffusionPipeline

from explorer.engine.decode import fit_preview_factors, save_preview_factors
from explorer.mini import architecture as arch
from explorer.mini.things import draw, parts, train_clip, train_unet

# one step starts at t = 999 (the blurry average), not at t = 1 as "leading" spacing would
TRAILING = {"timestep_spacing": "trailing"}


def export(work: Path, out: Path = parts.MODEL_DIR, vae_dir: Path = parts.MODEL_DIR / "vae"):
    """Assemble the VAE in ``vae_dir`` and the CLIP and UNet checkpoints in ``work`` into
    ``out``; the VAE's scaling factor is the UNet pool's (1 / std of the latents, as SD's). A
    work folder without a CLIP checkpoint (a UNet resumed with ``--init``) keeps the committed
    ``clip/``."""
    out = Path(out)
    tmp = Path(work) / "package"
    shutil.rmtree(tmp, ignore_errors=True)
    if (Path(work) / "clip.pt").exists():
        clip_dir = train_clip.export(train_clip.Config(), work, tmp)
    else:
        clip_dir = parts.MODEL_DIR / "clip"
    clip_info = (clip_dir / "training.json").read_text()
    unet_dir = train_unet.export(train_unet.Config(), work, tmp)
    info = json.loads((unet_dir / "training.json").read_text())
    vae = AutoencoderKL.from_pretrained(vae_dir, torch_dtype=torch.float32)
    vae.register_to_config(scaling_factor=info["scaling_factor"])
    clip = train_clip.load_clip(clip_dir)
    text_encoder = train_unet.averaged_text(work)  # the tower the UNet was trained on
    unet = train_unet.averaged_unet(work)[0]
    pipe = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=parts.build_tokenizer(),
        unet=unet,
        scheduler=arch.build_scheduler(),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    with torch.no_grad():  # live-preview factors, fitted on training pictures
        preview = fit_preview_factors(vae, [draw.image(s) for s in range(256)])
    vae_json = Path(vae_dir) / "training.json"  # an exported VAE's; a work folder's has none
    vae_info = vae_json.read_text() if vae_json.is_file() else None
    weights = Path(vae_dir) / "diffusion_pytorch_model.safetensors"
    vae_bytes = weights.read_bytes()  # kept byte for byte when the weights come back the same
    world = (parts.MODEL_DIR / "world.json").read_text()
    pipe.to(torch.float16).save_pretrained(out, safe_serialization=True)
    _keep_identical(out / "vae" / weights.name, vae_bytes)
    clip.to(torch.float16).save_pretrained(out / "clip", safe_serialization=True)
    save_preview_factors(out, preview)
    for name, text in (
        ("vae/training.json", vae_info),
        ("unet/training.json", (unet_dir / "training.json").read_text()),
        ("clip/training.json", clip_info),
        ("world.json", world),
    ):
        if text is not None:
            (out / name).write_text(text)
    sched_file = out / "scheduler" / "scheduler_config.json"  # PNDM: no Runge-Kutta warm-up
    sched_file.write_text(
        json.dumps(
            {**json.loads(sched_file.read_text()), "skip_prk_steps": True, **TRAILING}, indent=2
        )
    )
    shutil.rmtree(tmp, ignore_errors=True)
    return out


def _keep_identical(path: Path, old: bytes) -> None:
    """Put the old file back when it holds the same tensors (no binary churn in git)."""
    from safetensors.torch import load, load_file

    new, before = load_file(path), load(old)
    same = new.keys() == before.keys() and all(torch.equal(new[k], before[k]) for k in new)
    if same:
        path.write_bytes(old)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--work", type=Path, default=Path("runs/things"))
    p.add_argument("--out", type=Path, default=parts.MODEL_DIR)
    p.add_argument("--vae", type=Path, default=parts.MODEL_DIR / "vae", help="a VAE folder")
    args = p.parse_args(argv)
    print(f"wrote {export(args.work, args.out, args.vae)}")


if __name__ == "__main__":
    main()
