"""Score mini-flow on held-out prompts: ``python -m explorer.mini.evaluate --model mini-flow``.

The same 200 held-out captions, the same 25 steps and guidance 5 and the same pixel judge as
mini-shapes' figures (``explorer.mini.evaluate.prompt_following``); the bar is mini-flow within
10 points of mini-shapes on each figure (mini-shapes' own from its committed ``metrics.json``).
Writes ``explorer/mini/flow/model/metrics.json``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from explorer.mini import evaluate as shapes
from explorer.mini.flow import parts

FIGURES = ("background", "colour", "position", "shape")
WITHIN = 0.10  # the bar: at most 10 points below mini-shapes


def main(model: Path, out: Path | None, prompts: int = 200) -> dict:
    from explorer.engine.models import load_pipeline

    t0 = time.time()
    pipe = load_pipeline(str(model), "cpu")
    result = shapes.prompt_following(pipe, prompts)
    epsilon = json.loads(shapes.METRICS.read_text())
    metrics = {f"prompt_{k}": v for k, v in result["scores"].items()}
    metrics["prompts_evaluated"] = prompts
    metrics["mini_shapes"] = {f"prompt_{k}": epsilon[f"prompt_{k}"] for k in FIGURES}
    metrics["bars_met"] = {
        f"prompt_{k}": metrics[f"prompt_{k}"] >= epsilon[f"prompt_{k}"] - WITHIN for k in FIGURES
    }
    metrics["seconds"] = round(time.time() - t0, 1)
    out = out or model / "metrics.json"
    out.write_text(json.dumps(metrics, indent=2))
    print(json.dumps(metrics, indent=2))
    return metrics


if __name__ == "__main__":
    main(parts.MODEL_DIR, None)
