"""Read a ``mini-things`` picture back from its pixels: background, things, sizes, positions.

The background is the named colour most pixels lie near. The pixels that differ from it fall into
pieces (connected after a small dilation). Each group of pieces is identified by comparing it with
every glyph at both sizes, composited on the same background and aligned on the same centroid
(colour and shape together: mean absolute difference after a slight blur, first coarsely for all
glyphs, then at full resolution with a pixel of shift for a shortlist). A glyph with parts like
the background falls into several pieces, so ``read`` tries a few groupings into one or two things
and keeps the one whose drawing matches the picture best. A thing's position is the grid cell
nearest to its matched glyph's centre. ``score`` compares readings with the true scenes;
``validate`` gives the figures on true held-out pictures. Uses no model.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from explorer.mini.things import draw, world

NAMES = list(world.BACKGROUNDS)
PALETTE = np.array(list(world.BACKGROUNDS.values()), dtype=np.float32)  # (K, 3)
CANVAS = 112  # side of the window a region is compared in, pixels (a glyph with most of its
# pixels like the background has its centroid far off its box's centre)
POOL = 4  # the first, coarse comparison of all glyphs runs on POOL x POOL block means
SMOOTH = 1.5  # both sides are compared after a Gaussian blur of this sigma, pixels
SHORTLIST = 12  # glyphs compared again at full resolution, with shifts
THRESHOLD = 40.0  # a pixel differs from the background by more than this in some channel
MIN_AREA = 12  # regions with fewer differing pixels are noise
CLOSE = 3  # dilation radius that closes gaps inside one glyph (things are >= 8 px apart)
KEYS = [(t.name, size) for t in world.THINGS for size in world.SIZES]


@dataclass(frozen=True)
class Seen:
    """One thing the judge found."""

    thing: str
    size: str
    position: str
    cx: int  # centre of the matched glyph's box, pixels
    cy: int
    distance: float  # mean absolute difference to the matched glyph, 0-255 scale


@dataclass(frozen=True)
class Reading:
    background: str
    things: tuple[Seen, ...]


def background(a: np.ndarray) -> str:
    """The named colour the most pixels of ``a`` (H, W, 3) lie near."""
    d = ((a.reshape(-1, 1, 3) - PALETTE[None]) ** 2).sum(axis=2)  # (H*W, K)
    counts = np.bincount(d.argmin(axis=1)[d.min(axis=1) < 50.0**2], minlength=len(NAMES))
    return NAMES[int(counts.argmax())]


def _differs(a: np.ndarray, bg: np.ndarray) -> np.ndarray:
    return np.abs(a - bg).max(axis=-1) > THRESHOLD  # (..., H, W)


def _centroid(mask: np.ndarray) -> tuple[int, int]:
    ys, xs = np.nonzero(mask)
    return int(round(xs.mean())), int(round(ys.mean()))


@dataclass(frozen=True)
class Templates:
    """Every (thing, size) glyph composited on one background, placed in a CANVAS-sized window
    with its differing pixels' centroid at the window's centre. Order: ``KEYS``."""

    crops: list[np.ndarray]  # per glyph (h, w, 3) float32, 0-255
    corners: np.ndarray  # per glyph the (left, top) of its box in the window, int (N, 2)
    coarse: np.ndarray  # the windows block-averaged by POOL, (N, CANVAS/POOL, CANVAS/POOL, 3)

    def window(self, i: int, bg: np.ndarray) -> np.ndarray:
        """Glyph ``i`` in its full window, (CANVAS, CANVAS, 3)."""
        out = np.empty((CANVAS, CANVAS, 3), dtype=np.float32)
        out[:] = bg
        (left, top), crop = self.corners[i], self.crops[i]
        out[top : top + crop.shape[0], left : left + crop.shape[1]] = crop
        return out


def _pool(a: np.ndarray) -> np.ndarray:
    """Block means over POOL x POOL pixels of (..., CANVAS, CANVAS, 3)."""
    k = CANVAS // POOL
    return a.reshape(*a.shape[:-3], k, POOL, k, POOL, 3).mean(axis=(-4, -2))


@functools.lru_cache(maxsize=len(NAMES))
def templates(bg_name: str) -> Templates:
    """The glyphs composited on background ``bg_name`` (cached per background)."""
    bg = np.asarray(world.BACKGROUNDS[bg_name], dtype=np.float32)
    crops, corners = [], np.zeros((len(KEYS), 2), dtype=np.int64)
    for i, (name, size) in enumerate(KEYS):
        g = draw.glyph(name, size)  # (h, w, 4) premultiplied, 0-1
        comp = g[..., :3] * 255.0 + bg * (1.0 - g[..., 3:])  # (h, w, 3)
        mask = _differs(comp, bg)
        cx, cy = _centroid(mask) if mask.any() else (g.shape[1] // 2, g.shape[0] // 2)
        corners[i] = CANVAS // 2 - cx, CANVAS // 2 - cy
        crops.append(comp)
    t = Templates(crops, corners, np.empty(0))
    coarse = np.stack([_pool(t.window(i, bg)) for i in range(len(KEYS))])  # (N, k, k, 3)
    return Templates(crops, corners, coarse)


def pieces(a: np.ndarray, bg: np.ndarray) -> list[tuple[np.ndarray, int]]:
    """Masks (H, W) of the connected pieces of pixels differing from ``bg`` (after closing small
    gaps), largest first, with their differing pixels' count (the dilation not counted)."""
    mask = _differs(a, bg)
    labels, n = ndimage.label(ndimage.binary_dilation(mask, iterations=CLOSE))
    if n == 0:
        return []
    areas = ndimage.sum(mask, labels, index=np.arange(1, n + 1))
    return [(labels == i + 1, int(areas[i])) for i in np.argsort(-areas) if areas[i] > 0]


def _inside(piece: np.ndarray, box: tuple[int, int, int, int]) -> bool:
    """Whether most of a piece lies in a box (left, top, right, bottom)."""
    ys, xs = np.nonzero(piece)
    left, top, right, bottom = box
    return float(((xs >= left) & (xs < right) & (ys >= top) & (ys < bottom)).mean()) > 0.5


def _window(a: np.ndarray, x0: int, y0: int, fill: np.ndarray) -> np.ndarray:
    """The CANVAS-sized window of ``a`` with top left (x0, y0), padded with ``fill``."""
    win = np.empty((CANVAS, CANVAS, 3), dtype=np.float32)
    win[:] = fill
    h, w = a.shape[:2]
    xs, ys = max(0, x0), max(0, y0)
    xe, ye = min(w, x0 + CANVAS), min(h, y0 + CANVAS)
    if xe > xs and ye > ys:
        win[ys - y0 : ye - y0, xs - x0 : xe - x0] = a[ys:ye, xs:xe]
    return win


def identify(a: np.ndarray, mask: np.ndarray, bg_name: str, shift: int = 1) -> Seen:
    """The glyph (thing, size) a region ``mask`` (H, W) of picture ``a`` (H, W, 3) shows."""
    bg = np.asarray(world.BACKGROUNDS[bg_name], dtype=np.float32)
    t = templates(bg_name)
    own = np.where(mask[..., None], a, bg)  # (H, W, 3): other regions painted over
    cx, cy = _centroid(mask & _differs(a, bg))
    x0, y0 = cx - CANVAS // 2, cy - CANVAS // 2
    coarse = np.abs(t.coarse - _pool(_window(own, x0, y0, bg))).mean(axis=(1, 2, 3))  # (N,)
    best = (np.inf, 0, 0, 0)
    if SMOOTH:
        own = ndimage.gaussian_filter(own, (SMOOTH, SMOOTH, 0), mode="nearest")
    for i in np.argsort(coarse)[:SHORTLIST]:
        temp = t.window(int(i), bg)  # (CANVAS, CANVAS, 3)
        if SMOOTH:
            temp = ndimage.gaussian_filter(temp, (SMOOTH, SMOOTH, 0), mode="nearest")
        for dy in range(-shift, shift + 1):
            for dx in range(-shift, shift + 1):
                win = _window(own, x0 + dx, y0 + dy, bg)  # (CANVAS, CANVAS, 3)
                dist = float(np.abs(temp - win).mean())
                if dist < best[0]:
                    best = (dist, int(i), x0 + dx, y0 + dy)
    dist, i, bx, by = best
    name, size = KEYS[i]
    h, w = t.crops[i].shape[:2]
    gx, gy = bx + int(t.corners[i][0]) + w // 2, by + int(t.corners[i][1]) + h // 2
    col = int(np.argmin(np.abs(np.asarray(world.GRID) - gx)))
    row = int(np.argmin(np.abs(np.asarray(world.GRID) - gy)))
    position = next(p for p, cr in world.POSITIONS.items() if cr == (col, row))
    return Seen(name, size, position, gx, gy, dist)


def _box(seen: Seen, grow: int = 2) -> tuple[int, int, int, int]:
    h, w = draw.glyph(seen.thing, seen.size).shape[:2]
    left, top = seen.cx - w // 2 - grow, seen.cy - h // 2 - grow
    return left, top, left + w + 2 * grow, top + h + 2 * grow


Group = frozenset  # indices into the list of pieces


def _nearest_split(parts: list) -> list[tuple[Group, ...]]:
    """Partitions: all pieces as one thing; and the two largest pieces as two things, every
    other piece joining the one it lies nearest to."""
    out = [(Group(range(len(parts))),)]
    if len(parts) >= 2 and parts[1][1] >= MIN_AREA:
        dist = [ndimage.distance_transform_edt(~parts[k][0]) for k in (0, 1)]
        groups: list[set[int]] = [{0}, {1}]
        for i in range(2, len(parts)):
            near = dist[0][parts[i][0]].min() <= dist[1][parts[i][0]].min()
            groups[0 if near else 1].add(i)
        out.append((Group(groups[0]), Group(groups[1])))
    return out


def read(picture: np.ndarray, shift: int = 1) -> Reading:
    """Background and things (at most two) of a uint8 picture (H, W, 3).

    A glyph whose parts look like the background falls into several pieces, so the judge tries
    a few ways of grouping the pieces into one or two things (all as one; the two largest with
    the rest joining the nearer; and the largest with every piece inside its matched glyph's box,
    then the largest piece left likewise), identifies each group, draws each hypothesis and keeps
    the one whose drawing differs least from the picture."""
    a = np.asarray(picture, dtype=np.float32)  # (H, W, 3)
    bg_name = background(a)
    parts = pieces(a, np.asarray(world.BACKGROUNDS[bg_name], dtype=np.float32))
    if not parts or parts[0][1] < MIN_AREA:
        return Reading(bg_name, ())
    found: dict[Group, Seen] = {}

    def seen(group: Group) -> Seen:
        if group not in found:
            mask = np.logical_or.reduce([parts[i][0] for i in group])
            found[group] = identify(a, mask, bg_name, shift)
        return found[group]

    hypotheses = _nearest_split(parts) + [_box_split(parts, seen)]
    best, best_err = (), np.inf
    for groups in dict.fromkeys(hypotheses):
        things = tuple(seen(g) for g in groups)
        placed = tuple(draw.Placed(t.thing, t.size, t.position, t.cx, t.cy) for t in things)
        drawn = draw.picture(draw.Scene(bg_name, placed)).astype(np.float32)  # (H, W, 3)
        err = float(np.abs(drawn - a).mean())
        if err < best_err:
            best, best_err = things, err
    return Reading(bg_name, best)


def _box_split(parts: list, seen) -> tuple[Group, ...]:
    """The largest piece with every piece inside its matched glyph's box (twice over), then the
    largest piece left (if big enough) likewise; the rest are dropped as noise."""
    left, groups = list(range(len(parts))), []
    while left and parts[left[0]][1] >= MIN_AREA and len(groups) < 2:
        group = Group([left.pop(0)])
        for _ in range(2):
            joined = [i for i in left if _inside(parts[i][0], _box(seen(group)))]
            if not joined:
                break
            left = [i for i in left if i not in joined]
            group = group | Group(joined)
        groups.append(group)
    return tuple(groups)


def _matches(reading: Reading, truth: draw.Scene) -> tuple[int, int]:
    """(things identified, things identified at the right position) of one picture: each true
    thing pairs with at most one seen thing of the same name."""
    pool = list(reading.things)
    named = placed = 0
    for p in truth.things:
        hit = next((s for s in pool if s.thing == p.thing), None)
        if hit is not None:
            pool.remove(hit)
            named += 1
            placed += hit.position == p.position
    return named, placed


def score(pictures, scenes, shift: int = 1) -> dict:
    """Shares of true things the judge names right (identity), of those also at the right
    position (position), of backgrounds right, of pictures with the right number of things, and
    of sizes right among the things named right."""
    things = named = placed = bgs = counts = sized = 0
    for pic, truth in zip(pictures, scenes):
        r = read(pic, shift)
        n, p = _matches(r, truth)
        things, named, placed = things + len(truth.things), named + n, placed + p
        bgs += r.background == truth.background
        counts += len(r.things) == len(truth.things)
        seen = {s.thing: s.size for s in r.things}
        sized += sum(seen.get(t.thing) == t.size for t in truth.things)
    total = max(1, len(scenes))
    return {
        "identity": round(named / max(1, things), 4),
        "position": round(placed / max(1, named), 4),
        "size": round(sized / max(1, named), 4),
        "background": round(bgs / total, 4),
        "count": round(counts / total, 4),
        "things": things,
        "pictures": len(scenes),
    }


def validate(n: int = 500, start: int = 0) -> dict:
    """The judge's figures on ``n`` true held-out pictures, seeds from HELDOUT_START + start."""
    scenes = [draw.scene(s) for s in draw.heldout_seeds(n, start)]
    return score([draw.picture(s) for s in scenes], scenes)


def main(argv: list[str] | None = None) -> None:
    """``python -m explorer.mini.things.judge [N]``: the figures on N true held-out pictures."""
    import json
    import sys

    args = sys.argv[1:] if argv is None else argv
    print(json.dumps(validate(int(args[0]) if args else 500), indent=2))


if __name__ == "__main__":
    main()
