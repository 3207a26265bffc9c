"""The ``mini-things`` CLIP's held-out figures: image->text retrieval among held-out captions and
zero-shot identity among all things, each beside the untrained twin's (the bars' chance level)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from explorer.mini.things import captions, draw


@torch.no_grad()
def image_features(clip, pixels: torch.Tensor, batch: int = 128) -> torch.Tensor:
    """Normalized image features (N, P) of pictures in [-1, 1], (N, 3, 128, 128)."""
    out = [
        clip.get_image_features(pixel_values=pixels[i : i + batch]).pooler_output
        for i in range(0, len(pixels), batch)
    ]
    return F.normalize(torch.cat(out).float(), dim=-1)


@torch.no_grad()
def text_features(clip, tokenizer, texts: list[str], batch: int = 512) -> torch.Tensor:
    """Normalized text features (N, P); captions padded to the longest (the causal tower pools
    at the first end token, so the padding length does not change them)."""
    out = []
    for i in range(0, len(texts), batch):
        ids = tokenizer(texts[i : i + batch], padding="longest", return_tensors="pt").input_ids
        out.append(clip.get_text_features(input_ids=ids).pooler_output)
    return F.normalize(torch.cat(out).float(), dim=-1)


def retrieval(clip, tokenizer, n: int = 64, start: int = 0) -> float:
    """Share of ``n`` held-out pictures whose own full caption CLIP ranks first among the ``n``."""
    seeds = draw.heldout_seeds(n, start)
    scenes = [draw.scene(s) for s in seeds]
    v = image_features(clip, draw.batch(seeds))  # (n, P)
    t = text_features(clip, tokenizer, [draw.full_caption(s) for s in scenes])  # (n, P)
    return float(((v @ t.T).argmax(dim=1) == torch.arange(n)).float().mean())


def zero_shot(clip, tokenizer, n: int = 256, start: int = 0) -> dict:
    """Per held-out picture, CLIP's pick among its full caption with each thing's name in place
    of its first thing's (``captions.thing_options``, all things), and among the position and
    background variants. Shares of right picks."""
    seeds = draw.heldout_seeds(n, start)
    scenes = [draw.scene(s) for s in seeds]
    v = image_features(clip, draw.batch(seeds))  # (n, P)
    out = {}
    for name, options in (
        ("identity", captions.thing_options),
        ("position", captions.position_options),
        ("background", lambda s: captions.background_options(s)),
    ):
        hits = []
        for i, s in enumerate(scenes):
            t = text_features(clip, tokenizer, options(s))  # (K, P), the truth first
            hits.append(int((t @ v[i]).argmax()) == 0)
        out[name] = sum(hits) / n
    return out


def figures(clip, tokenizer, n: int = 256) -> dict:
    """Retrieval among 64 held-out captions and the zero-shot shares on ``n`` pictures."""
    clip = clip.eval()
    return {"retrieval_64": retrieval(clip, tokenizer), "zero_shot": zero_shot(clip, tokenizer, n)}
