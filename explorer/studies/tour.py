"""The guided tour's figures: one live run, the few extra runs some stops need, and for each of
the thirteen questions the numbers its sentences quote.

Everything is computed here from traces (the UI only puts the numbers into words), so a test can
recompute each figure from the same traces. A stop's extra runs are made when the tour reaches
it (`Tour.facts(key, pipe)`) and kept: going Back costs nothing. Predict-then-reveal answers are
figures like any other (`outline_step`, `settles_first`, `changes`, `best_caption`, `fastest`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from explorer.engine.capture import trace
from explorer.studies.tour_stops import Tour

# The thirteen questions, in the article's order (DESIGN.md): the keys of the stops.
STOPS = (
    "tensors",
    "jump",
    "noise",
    "coarse",
    "guidance",
    "latent",
    "clip",
    "magnitude",
    "norms",
    "sketch",
    "schedulers",
    "map",
    "words",
)


def start(
    pipe: Any,
    prompt: str,
    *,
    seed: int = 0,
    steps: int = 25,
    guidance: float = 5.0,
    scheduler: str = "ddim",
    captions: Sequence[str] = (),
    settling: Callable[[np.ndarray], np.ndarray],
) -> Tour:
    """The tour's run: `prompt` traced with attention maps (the same picture as without)."""
    main = trace(
        pipe,
        prompt,
        steps=steps,
        guidance=guidance,
        seed=seed,
        scheduler=scheduler,
        attention=True,
    )
    others = [c for c in captions if c != prompt]
    return Tour(main.attach_decoder(pipe.vae), [prompt, *others], settling)
