"""mini-flow's held-out figures: ``python -m explorer.mini.evaluate --model mini-flow``.

That command generates the same 200 held-out captions as for mini-shapes, with the same 25 steps,
guidance 5 and pixel judge (``explorer.mini.evaluate.prompt_following``); this module turns the
judge's scores into mini-flow's ``metrics.json``. The bar is mini-flow within 10 points of
mini-shapes on each figure (mini-shapes' own, from its committed ``metrics.json``).
"""

from __future__ import annotations

import json
from pathlib import Path

FIGURES = ("background", "colour", "position", "shape")
WITHIN = 0.10  # the bar: at most 10 points below mini-shapes


def write_metrics(scores: dict, epsilon: dict, prompts: int, seconds: float, out: Path) -> dict:
    """`scores` (the judge's shares, `prompt_following(...)["scores"]`) beside mini-shapes'
    figures `epsilon`, with each bar's verdict; written to `out` and returned."""
    metrics = {f"prompt_{k}": v for k, v in scores.items()}
    metrics["prompts_evaluated"] = prompts
    metrics["mini_shapes"] = {f"prompt_{k}": epsilon[f"prompt_{k}"] for k in FIGURES}
    metrics["bars_met"] = {
        f"prompt_{k}": metrics[f"prompt_{k}"] >= epsilon[f"prompt_{k}"] - WITHIN for k in FIGURES
    }
    metrics["seconds"] = round(seconds, 1)
    out.write_text(json.dumps(metrics, indent=2))
    return metrics
