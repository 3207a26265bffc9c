"""Where each thing's word looks: the share of its cross-attention weight that falls on its own
thing in the generated picture, read with explorer's own maps (``trace(..., attention=True)``,
as the Attention tab shows them).

For a two-thing prompt (``draw.full_caption``: "a small cat in the top left and a large dog in
the ...") each thing's name tokens follow its size word. The run's maps (tokens x steps x h x w,
averaged over heads and layers) are averaged over steps and the name's tokens, normalised over
the picture, and summed over the thing's region: the pixels of the glyph the judge matched there,
pooled to the map's grid. An even spread would put the region's share of the area there.
"""

from __future__ import annotations

import numpy as np
import torch.nn.functional as F
from torch import from_numpy

from explorer.mini.things import draw, judge, world


def name_spans(tokens: list[str], scene: draw.Scene) -> list[list[int]]:
    """Per thing of ``scene``, the token positions of its name in its full caption's tokens."""
    sizes = [i for i, t in enumerate(tokens) if t.removesuffix("</w>") in world.SIZES]
    return [
        list(range(at + 1, at + 1 + len(p.thing.split()))) for at, p in zip(sizes, scene.things)
    ]


def region(seen: judge.Seen, grid: tuple[int, int]) -> np.ndarray:
    """The matched glyph's pixels at its place, as shares of each cell of a (h, w) grid."""
    placed = draw.Placed(seen.thing, seen.size, seen.position, seen.cx, seen.cy)
    left, top, right, bottom = draw.box(placed)
    alpha = draw.glyph(seen.thing, seen.size)[..., 3] > 0.5  # (gh, gw)
    n = world.PICTURE
    mask = np.zeros((n, n), dtype=np.float32)
    x0, y0, x1, y1 = max(0, left), max(0, top), min(n, right), min(n, bottom)
    mask[y0:y1, x0:x1] = alpha[y0 - top : y1 - top, x0 - left : x1 - left]
    pooled = F.adaptive_avg_pool2d(from_numpy(mask)[None, None], grid)  # (1, 1, h, w)
    return pooled[0, 0].numpy()


def shares(maps: np.ndarray, tokens: list[str], scene: draw.Scene, picture: np.ndarray) -> dict:
    """For each prompted thing the judge finds in ``picture``: (its attention share on its own
    region, that region's share of the picture). ``maps``: (L, T, h, w)."""
    mean = maps.mean(axis=1)  # (L, h, w)
    reading = {s.thing: s for s in judge.read(picture).things}
    out = {}
    for p, span in zip(scene.things, name_spans(tokens, scene)):
        if p.thing not in reading or not span:
            continue
        heat = mean[span].mean(axis=0)  # (h, w)
        heat = heat / max(float(heat.sum()), 1e-12)
        cells = region(reading[p.thing], heat.shape)
        out[p.thing] = (float((heat * cells).sum()), float(cells.mean()))
    return out


def figures(pipe, scenes: list[draw.Scene], steps: int = 25, guidance: float = 5.0) -> dict:
    """Mean attention share on the own region over the found things of two-thing ``scenes``,
    beside the mean area share (what an even spread would give) and how many were found."""
    from explorer.engine.capture import trace

    on, area, found, asked = [], [], 0, 0
    for i, s in enumerate(scenes):
        run = trace(
            pipe, draw.full_caption(s), steps=steps, guidance=guidance, seed=i, attention=True
        )
        picture = np.asarray(run.image.convert("RGB"))  # (128, 128, 3)
        got = shares(run.attention.numpy(), run.prompt_tokens, s, picture)  # (L, T, h, w) maps
        asked += len(s.things)
        found += len(got)
        on += [a for a, _ in got.values()]
        area += [b for _, b in got.values()]
    return {
        "attention_on_own_thing": round(float(np.mean(on)), 4) if on else 0.0,
        "attention_even_spread": round(float(np.mean(area)), 4) if area else 0.0,
        "attention_things_found": f"{found}/{asked}",
    }
