"""Captions of a ``mini-things`` scene that differ from the truth in one thing, one position or
the background: CLIP's hard negatives and variant choices in training, and its zero-shot tests.

Every list starts with the true full caption (``draw.full_caption``); the rest are the same
caption with one field changed, never to a scene the world could not draw twice the same way
(two things never share a name or a position).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from explorer.mini.things import draw, world

NAMES = [t.name for t in world.THINGS]


def _with(s: draw.Scene, i: int, **change) -> draw.Scene:
    things = list(s.things)
    things[i] = replace(things[i], **change)
    return replace(s, things=tuple(things))


def thing_options(s: draw.Scene, i: int = 0, names: list[str] | None = None) -> list[str]:
    """The true caption, then one per other name (all of ``NAMES`` by default) in place of
    thing ``i``'s; names the scene already shows are skipped."""
    shown = {p.thing for p in s.things}
    names = NAMES if names is None else names
    return [draw.full_caption(s)] + [
        draw.full_caption(_with(s, i, thing=n)) for n in names if n not in shown
    ]


def position_options(s: draw.Scene, i: int = 0) -> list[str]:
    """The true caption, then thing ``i`` at each other free position word."""
    taken = {p.position for p in s.things}
    return [draw.full_caption(s)] + [
        draw.full_caption(_with(s, i, position=w)) for w in world.POSITIONS if w not in taken
    ]


def background_options(s: draw.Scene) -> list[str]:
    """The true caption, then the same scene on every other background."""
    return [draw.full_caption(s)] + [
        draw.full_caption(replace(s, background=b)) for b in world.BACKGROUNDS if b != s.background
    ]


def sampled(s: draw.Scene, rng: np.random.Generator, things: int, positions: int, bgs: int):
    """Training variants of one scene: (thing options, position options, background options),
    each the truth and a random subset of the full lists (``things - 1`` other names, ...), for a
    random one of the scene's things."""
    i = int(rng.integers(len(s.things)))
    others = [n for n in NAMES if n not in {p.thing for p in s.things}]
    names = [others[k] for k in rng.choice(len(others), things - 1, replace=False)]

    def subset(options: list[str], k: int) -> list[str]:
        rest = options[1:]
        keep = rng.choice(len(rest), min(k - 1, len(rest)), replace=False)
        return [options[0]] + [rest[j] for j in sorted(keep)]

    return (
        thing_options(s, i, names),
        subset(position_options(s, i), positions),
        subset(background_options(s), bgs),
    )
