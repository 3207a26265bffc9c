"""Score ``mini-things`` on held-out seeds:
``python -m explorer.mini.evaluate --model mini-things``.

Writes ``metrics.json`` in the model folder. Every figure is measured on seeds of the held-out
split (``draw.HELDOUT_START`` on), which training never sees, beside its bar (``BARS``):

- judge: the pixel judge on true held-out pictures (identity, position, background);
- vae: PSNR of 512 reconstructions, and the judge reading their things;
- clip: image -> text top-1 retrieval among 64 held-out captions, zero-shot identity among all
  things (captions that differ only in the thing's name), each beside the untrained twin's;
- prompts: held-out full captions, half with one thing and half with two, generated with 25 DDIM
  steps and guidance 5 and read back from pixels by the judge;
- attention: on two-thing prompts, the share of each thing word's cross-attention on its own
  thing (``attention_figures``).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from explorer.mini.things import attention_figures, clip_figures, draw, judge, parts
from explorer.mini.things import vae as things_vae

BARS = {
    "judge_identity": 0.98,
    "judge_position": 0.98,
    "judge_background": 1.0,
    "vae_psnr_db": 28.0,
    "vae_judge_identity": 0.95,
    "clip_retrieval_64": 0.90,
    "clip_zero_shot_identity": 0.85,
    "one_identity": 0.80,
    "one_position": 0.85,
    "one_background": 0.95,
    "two_both_identified": 0.60,
    "two_placed": 0.70,
    "attention_on_own_thing": 0.50,
}
PROMPT_START = 50_000  # held-out seeds of the prompts (the other figures read seeds from 0)


def prompt_scenes(n: int) -> list[draw.Scene]:
    """``n`` held-out scenes, half with one thing and half with two, in seed order."""
    ones, twos, seed = [], [], draw.HELDOUT_START + PROMPT_START
    while len(ones) < n - n // 2 or len(twos) < n // 2:
        s = draw.scene(seed)
        (ones if len(s.things) == 1 else twos).append(s)
        seed += 1
    return ones[: n - n // 2] + twos[: n // 2]


def read_prompts(pictures, scenes) -> dict:
    """The judge's reading of generated pictures against the scenes their prompts describe.

    one thing: identity (the judge names it), position (the thing it names, else the one it
    sees, is in the stated cell), background. Two things: both named, and of the named things the
    share in their stated cell (``two_placed``)."""
    one = {"identity": 0, "position": 0, "background": 0, "n": 0}
    two = {"both_identified": 0, "placed": 0, "named": 0, "background": 0, "n": 0}
    for pic, truth in zip(pictures, scenes):
        r = judge.read(pic)
        seen = {s.thing: s for s in r.things}
        if len(truth.things) == 1:
            p = truth.things[0]
            hit = seen.get(p.thing) or (r.things[0] if r.things else None)
            one["identity"] += p.thing in seen
            one["position"] += hit is not None and hit.position == p.position
            one["background"] += r.background == truth.background
            one["n"] += 1
        else:
            named = [p for p in truth.things if p.thing in seen]
            two["both_identified"] += len(named) == 2
            two["named"] += len(named)
            two["placed"] += sum(seen[p.thing].position == p.position for p in named)
            two["background"] += r.background == truth.background
            two["n"] += 1
    out = {f"one_{k}": round(v / max(1, one["n"]), 4) for k, v in one.items() if k != "n"}
    out["two_both_identified"] = round(two["both_identified"] / max(1, two["n"]), 4)
    out["two_placed"] = round(two["placed"] / max(1, two["named"]), 4)
    out["two_background"] = round(two["background"] / max(1, two["n"]), 4)
    return out


@torch.no_grad()
def generate(pipe, prompts: list[str], batch: int = 25, steps: int = 25, guidance: float = 5.0):
    """uint8 pictures (N, 128, 128, 3), prompt i from seed i (a fresh generator each)."""
    out = []
    for start in tqdm(range(0, len(prompts), batch), desc="prompts"):
        chunk = prompts[start : start + batch]
        gens = [torch.Generator("cpu").manual_seed(start + i) for i in range(len(chunk))]
        images = pipe(
            chunk,
            num_inference_steps=steps,
            guidance_scale=guidance,
            generator=gens,
            output_type="np",
        ).images  # (b, 128, 128, 3) floats in [0, 1]
        out.append(np.clip(np.rint(images * 255), 0, 255).astype(np.uint8))
    return np.concatenate(out)


def evaluate(pipe, clip, prompts: int = 300, quick: bool = False, attention: int = 40) -> dict:
    """Every figure of the module docstring, with ``bars_met``; the attention figures on the
    first ``attention`` two-thing prompts."""
    t0 = time.time()
    n = 64 if quick else 512
    true = judge.validate(n // 2 if quick else 500)
    vae = things_vae.heldout_metrics(pipe.vae, n, judge_too=True)
    trained = clip_figures.figures(clip, pipe.tokenizer, 64 if quick else 256)
    untrained = clip_figures.figures(parts.untrained_clip(len(pipe.tokenizer)), pipe.tokenizer, 64)
    scenes = prompt_scenes(prompts)
    pictures = generate(pipe, [draw.full_caption(s) for s in scenes])
    m = {
        **{f"judge_{k}": true[k] for k in ("identity", "position", "background")},
        "vae_psnr_db": vae["psnr"],
        "vae_judge_identity": vae["judge"]["identity"],
        "clip_retrieval_64": trained["retrieval_64"],
        "clip_retrieval_64_untrained": untrained["retrieval_64"],
        **{f"clip_zero_shot_{k}": v for k, v in trained["zero_shot"].items()},
        "clip_zero_shot_identity_untrained": untrained["zero_shot"]["identity"],
        **read_prompts(pictures, scenes),
        **attention_figures.figures(pipe, [s for s in scenes if len(s.things) == 2][:attention]),
        "prompts_evaluated": prompts,
        "pictures_evaluated": n,
        "seconds": round(time.time() - t0, 1),
    }
    m["bars_met"] = {k: m[k] >= bar for k, bar in BARS.items()}
    return m


def main(model: Path, out: Path | None, prompts: int, quick: bool, grid: Path | None) -> dict:
    """``explorer.mini.evaluate``'s command for mini-things."""
    from explorer.engine.models import load_pipeline
    from explorer.mini.things.train_clip import load_clip

    pipe = load_pipeline(str(model), "cpu")
    metrics = evaluate(pipe, load_clip(model), prompts, quick)
    out = out or Path(model) / "metrics.json"
    out.write_text(json.dumps(metrics, indent=2) + "\n")
    print(json.dumps(metrics, indent=2))
    if grid:
        save_grid(pipe, grid)
    return metrics


def save_grid(pipe, path: Path, n: int = 32) -> None:
    """A PNG of the first ``n`` prompts' pictures, 8 a row."""
    from PIL import Image

    scenes = prompt_scenes(n)
    pics = generate(pipe, [draw.full_caption(s) for s in scenes], batch=16)
    side = pics.shape[1]
    sheet = Image.new("RGB", (8 * side, (n + 7) // 8 * side))
    for i, p in enumerate(pics):
        sheet.paste(Image.fromarray(p), ((i % 8) * side, (i // 8) * side))
    sheet.save(path)
