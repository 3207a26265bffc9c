"""What the benchmarks share: the repository on sys.path, a prompt, a pipeline to time, a timer.

Every benchmark is run as `python benchmarks/NAME.py`, so this folder is first on sys.path and
`import common` finds this module; importing it puts the repository root there too, so
`explorer` imports without an install (an installed one works the same). Nothing here comes from
tests/: the tiny random pipeline is `explorer.engine.tiny.tiny_pipe`, the one the tests build.
"""

from __future__ import annotations

import gc
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from explorer.engine.tiny import tiny_pipe  # noqa: E402

PROMPT = "a red circle on a blue background"


def load(model: str | None, device: str = "cpu"):
    """(pipe, description): `model` (a folder or hub id) or the Mini SD; if the Mini cannot be
    loaded, the tiny random pipeline (`tiny_pipe`), said so."""
    try:
        from explorer.engine.models import load_pipeline

        pipe = load_pipeline(model, device)
        return pipe, model or "mini-shapes (explorer.engine.models.load_pipeline)"
    except Exception as e:  # noqa: BLE001 -- any failure falls back to the tiny pipeline
        if model:
            raise
        print(f"load_pipeline() failed ({e}); using the tiny random pipeline")
        return tiny_pipe(), "tiny random pipeline (benchmarks/common.py)"


def timed(fn) -> float:
    """Wall seconds of one call, on a freshly collected heap (the same for every side)."""
    gc.collect()
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start
