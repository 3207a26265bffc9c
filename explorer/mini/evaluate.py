"""Score the Mini SD on held-out seeds: ``python -m explorer.mini.evaluate``.

``--model mini-things`` (or a folder with a ``world.json``) scores mini-things instead
(``explorer.mini.things.evaluate``), ``--model mini-flow`` mini-flow
(``explorer.mini.flow.evaluate``); what follows is mini-shapes'.

Writes ``explorer/mini/metrics.json`` (committed beside the weights). Every figure is measured on
seeds of the held-out split (``data.HELDOUT_START`` on), which training never sees:

- vae: reconstruction PSNR over 512 images;
- clip: image -> text top-1 retrieval among 64 captions (trained, and the untrained
  initialisation regenerated from the training seed); zero-shot shape and position accuracy
  over 256 images (captions that differ only in that word);
- prompts: 200 full captions generated with 25 DDIM steps and guidance 5, read back from pixels
  (``judge``): background colour, shape colour, position, and shape (the outline of the five that
  best fits the pixels). The judge's own accuracy on the true held-out images is reported beside it.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from explorer.mini import architecture as arch
from explorer.mini import data, judge

METRICS = Path(__file__).parent / "metrics.json"
FIELDS = ("background", "colour", "position", "shape")  # what the judge reads from pixels
BARS = {
    "vae_psnr_db": 30.0,
    "clip_retrieval_top1": 0.90,
    "clip_zero_shot_shape": 0.90,
    "clip_zero_shot_position": 0.90,
    "prompt_background": 0.95,
    "prompt_colour": 0.90,
    "prompt_position": 0.85,
    "prompt_shape": 0.80,
}


@torch.no_grad()
def vae_psnr(vae, n: int = 512) -> float:
    psnrs = []
    for start in range(0, n, 64):
        x = torch.from_numpy(data.batch(data.heldout_seeds(64, start))[0])  # (64, 3, 64, 64)
        recon = vae.decode(vae.encode(x).latent_dist.mean).sample.clamp(-1, 1)
        mse = ((recon - x) / 2).pow(2).mean(dim=(1, 2, 3))  # in [0, 1] units
        psnrs.append(10 * torch.log10(1 / mse.clamp(min=1e-10)))
    return float(torch.cat(psnrs).mean())


@torch.no_grad()
def clip_scores(clip, tokenizer) -> dict:
    _, _, scenes = data.batch(data.heldout_seeds(64))
    images = [data.render(s) for s in scenes]
    captions = [data.full_caption(s) for s in scenes]
    hits = judge.zero_shot(clip, tokenizer, images, [captions] * len(images))
    retrieval = float(np.mean([captions[h] == captions[i] for i, h in enumerate(hits)]))

    _, _, scenes = data.batch(data.heldout_seeds(256, 1000))
    images = [data.render(s) for s in scenes]
    shapes = judge.zero_shot(clip, tokenizer, images, [judge.shape_options(s) for s in scenes])
    positions = judge.zero_shot(
        clip, tokenizer, images, [judge.position_options(s) for s in scenes]
    )
    return {
        "retrieval_top1": retrieval,
        "zero_shot_shape": float(
            np.mean([data.SHAPES[k] == s.shape for k, s in zip(shapes, scenes)])
        ),
        "zero_shot_position": float(
            np.mean([list(data.POSITIONS)[k] == s.position for k, s in zip(positions, scenes)])
        ),
    }


def read_scenes(images, scenes) -> dict:
    """Share of images whose pixels show each attribute of their scene, and the shape by size
    (``shape_small``, ``shape_large``: small shapes are the hard part)."""
    hits = [
        {f: getattr(judge.read(im), f) == getattr(s, f) for f in FIELDS}
        for im, s in zip(images, scenes)
    ]
    scores = {f: float(np.mean([h[f] for h in hits])) for f in FIELDS}
    for size in data.SIZES:
        scores[f"shape_{size}"] = float(
            np.mean([h["shape"] for h, s in zip(hits, scenes) if s.size == size])
        )
    return scores


@torch.no_grad()
def prompt_following(pipe, n: int = 200, batch: int = 25) -> dict:
    _, _, scenes = data.batch(data.heldout_seeds(n, 5000))
    prompts = [data.full_caption(s) for s in scenes]
    images = []
    for start in tqdm(range(0, n, batch), desc="prompts"):
        chunk = prompts[start : start + batch]
        gens = [torch.Generator("cpu").manual_seed(start + i) for i in range(len(chunk))]
        out = pipe(chunk, num_inference_steps=25, guidance_scale=5.0, generator=gens)
        images += out.images
    scores = read_scenes(images, scenes)
    judge_check = read_scenes([data.render(s) for s in scenes], scenes)
    return {
        "scores": scores,
        "judge_on_true_images": judge_check,
        "images": images,
        "prompts": prompts,
    }


def evaluate_flow(model: Path, out: Path | None, prompts: int) -> dict:
    """mini-flow's prompt figures beside mini-shapes' (``explorer.mini.flow.evaluate``)."""
    from explorer.engine.models import load_pipeline
    from explorer.mini.flow.evaluate import write_metrics

    t0 = time.time()
    scores = prompt_following(load_pipeline(str(model), "cpu"), prompts)["scores"]
    epsilon = json.loads(METRICS.read_text())
    metrics = write_metrics(
        scores, epsilon, prompts, time.time() - t0, out or model / "metrics.json"
    )
    print(json.dumps(metrics, indent=2))
    return metrics


def main(argv: list[str] | None = None) -> None:
    from transformers import CLIPModel

    from explorer.engine.models import (
        FLOW_CLASS,
        MINI_MODELS,
        load_pipeline,
        mini_name,
        pipeline_class,
    )

    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--model", default="mini-shapes", help="mini-shapes, mini-things, mini-flow or a folder"
    )
    p.add_argument("--out", type=Path, default=None, help="default: the model's metrics file")
    p.add_argument("--prompts", type=int, default=None, help="default 200 (mini-things: 300)")
    p.add_argument("--quick", action="store_true", help="mini-things: fewer pictures, a quick look")
    p.add_argument("--grid", type=Path, default=None, help="save a PNG grid of generated samples")
    args = p.parse_args(argv)
    args.model = MINI_MODELS.get(mini_name(args.model) or "", Path(args.model))
    if pipeline_class(args.model) == FLOW_CLASS:  # mini-flow
        evaluate_flow(args.model, args.out, args.prompts or 200)
        return
    if (args.model / "world.json").is_file():  # a mini-things folder
        from explorer.mini.things import evaluate as things

        things.main(args.model, args.out, args.prompts or 300, args.quick, args.grid)
        return
    args.out, args.prompts = args.out or METRICS, args.prompts or 200

    t0 = time.time()
    pipe = load_pipeline(str(args.model), "cpu")
    tokenizer = pipe.tokenizer
    clip = CLIPModel.from_pretrained(args.model / "clip", dtype=torch.float32).eval()
    torch.manual_seed(0)  # the training seed: this is the initialisation CLIP training started from
    untrained = arch.build_clip(len(tokenizer)).eval()

    trained_clip = clip_scores(clip, tokenizer)
    untrained_clip = clip_scores(untrained, tokenizer)
    prompts = prompt_following(pipe, args.prompts)
    metrics = {
        "vae_psnr_db": round(vae_psnr(pipe.vae), 2),
        "clip_retrieval_top1": trained_clip["retrieval_top1"],
        "clip_retrieval_top1_untrained": untrained_clip["retrieval_top1"],
        "clip_zero_shot_shape": trained_clip["zero_shot_shape"],
        "clip_zero_shot_shape_untrained": untrained_clip["zero_shot_shape"],
        "clip_zero_shot_position": trained_clip["zero_shot_position"],
        "clip_zero_shot_position_untrained": untrained_clip["zero_shot_position"],
        **{f"prompt_{k}": v for k, v in prompts["scores"].items()},
        **{f"judge_on_true_images_{k}": v for k, v in prompts["judge_on_true_images"].items()},
        "prompts_evaluated": args.prompts,
        "seconds": round(time.time() - t0, 1),
    }
    metrics["bars_met"] = {k: metrics[k] >= bar for k, bar in BARS.items()}
    args.out.write_text(json.dumps(metrics, indent=2))
    print(json.dumps(metrics, indent=2))
    if args.grid:
        from PIL import Image

        ims = prompts["images"][:48]
        grid = Image.new("RGB", (8 * 64, 6 * 64))
        for i, im in enumerate(ims):
            grid.paste(im, ((i % 8) * 64, (i // 8) * 64))
        grid.save(args.grid)


if __name__ == "__main__":
    main()
