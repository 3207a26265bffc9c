"""Where each word acts: cross-attention maps of a run, per token and step, and heat overlays.

`attention_maps(pipe, prompt, ...)` runs the pipeline once (`explorer.engine.capture.trace` with
attention=True) and returns a `WordMaps`: the maps as a numpy array (tokens × steps × h × w),
the token strings and what kind each token is (a word, the start or end marker, padding), and
the trace for the pictures. The rest are pure functions from maps to pictures and numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from explorer.engine.capture import trace as run_trace
from explorer.engine.tokens import END, START, string_kinds
from explorer.engine.tracefile import Trace
from explorer.inputs.errors import VisitorError
from explorer.inputs.words import count

KIND_LABELS = {"start": "⟨start⟩", "end": "⟨end⟩", "pad": "⟨pad⟩"}

# A dark-to-bright heat ramp (inferno-like): positions in [0, 1] and their RGB colours.
_RAMP_AT = np.array([0.0, 0.25, 0.5, 0.75, 1.0])
_RAMP_RGB = np.array(
    [[0, 0, 4], [87, 16, 110], [188, 55, 84], [249, 142, 9], [252, 255, 164]], dtype=np.float64
)


@dataclass
class WordMaps:
    """Cross-attention maps of one run.

    Attributes:
        maps: (L, T, h, w) float32; at every step and latent position the L tokens' values sum
            to 1 (attention probabilities averaged over heads and layers).
        tokens: the L token strings the text encoder saw (padding included).
        kinds: per token "word", "start", "end" or "pad".
        trace: the run itself (final image, x0 per step, settings).
    """

    maps: np.ndarray
    tokens: list[str]
    kinds: list[str]
    trace: Trace

    @classmethod
    def of(cls, trace: Trace) -> WordMaps:
        """The maps of a trace recorded with attention=True."""
        if trace.attention is None:
            raise VisitorError("this run has no attention maps: trace it with attention=True")
        tokens = list(trace.prompt_tokens)
        return cls(trace.attention.numpy(), tokens, token_kinds(tokens), trace)

    @property
    def words(self) -> list[int]:
        """Indices of the prompt's own tokens (not start, end or padding)."""
        return [i for i, k in enumerate(self.kinds) if k == "word"]

    def labels(self) -> list[str]:
        """A label per token: '4 · circle', '0 · ⟨start⟩', '13 · ⟨pad⟩'."""
        return [token_label(i, t, k) for i, (t, k) in enumerate(zip(self.tokens, self.kinds))]

    def at(self, step: int | None = None) -> np.ndarray:
        """(L, h, w): the maps at step `step` (0-based), or averaged over all steps if None."""
        if step is None:
            return self.maps.mean(axis=1)
        if not 0 <= step < self.maps.shape[1]:
            steps = count(self.maps.shape[1])
            raise VisitorError(f"step {step} out of range: this run has {steps}")
        return self.maps[:, step]


def attention_maps(pipe: Any, prompt: str, **trace_kwargs) -> WordMaps:
    """Run `pipe` on `prompt` (keyword arguments as for `explorer.engine.capture.trace`) and
    return its cross-attention maps: `.maps` (tokens × steps × h × w) and `.tokens`."""
    return WordMaps.of(run_trace(pipe, prompt, attention=True, **trace_kwargs))


def find_token(wm: WordMaps, selector: int | str | None) -> int:
    """The token a visitor picked: a position (4, "4"), a picker label ("4 · circle") or a word
    ("circle": its first occurrence); None or "" picks the first word. `ValueError` otherwise."""
    words = wm.words or [0]
    if selector is None or (isinstance(selector, str) and not selector.strip()):
        return words[0]
    text = str(selector).split("·")[0].strip() if not isinstance(selector, int) else str(selector)
    if text.lstrip("-").isdigit():
        index = int(text)
        if not 0 <= index < len(wm.tokens):
            raise VisitorError(f"token position {index} out of range: 0 to {len(wm.tokens) - 1}")
        return index
    for i, t in enumerate(wm.tokens):
        if t.removesuffix("</w>").lower() == text.lower():
            return i
    known = ", ".join(wm.tokens[i].removesuffix("</w>") for i in wm.words)
    raise VisitorError(f"{selector!r} is not a token of this prompt; its words are: {known}")


def token_kinds(tokens: list[str], start: str = START, end: str = END) -> list[str]:
    """'start' for the leading start marker, 'end' for the first end marker, 'pad' after it:
    the engine's one rule (`explorer.engine.tokens`) on the token strings a trace saves."""
    return string_kinds(tokens, start, end)


def token_label(index: int, token: str, kind: str) -> str:
    """What the token picker shows: the position and the word (CLIP's '</w>' dropped)."""
    text = KIND_LABELS.get(kind) or token.removesuffix("</w>")
    return f"{index} · {text}"


def quadrant_shares(heat: np.ndarray) -> dict[str, float]:
    """The share of a (h, w) map's mass in each quadrant (top/bottom × left/right)."""
    h, w = heat.shape
    parts = {
        "top left": heat[: h // 2, : w // 2],
        "top right": heat[: h // 2, w - w // 2 :],
        "bottom left": heat[h - h // 2 :, : w // 2],
        "bottom right": heat[h - h // 2 :, w - w // 2 :],
    }
    total = float(sum(p.sum() for p in parts.values())) or 1.0
    return {name: float(p.sum()) / total for name, p in parts.items()}


def heat_colors(heat: np.ndarray) -> np.ndarray:
    """(h, w) values -> (h, w, 3) uint8 heat colours, stretched to the map's own range."""
    lo, hi = float(heat.min()), float(heat.max())
    unit = (heat - lo) / (hi - lo) if hi > lo else np.zeros_like(heat)  # (h, w) in [0, 1]
    rgb = [np.interp(unit, _RAMP_AT, _RAMP_RGB[:, c]) for c in range(3)]
    return np.stack(rgb, axis=-1).round().astype(np.uint8)  # (h, w, 3)


def heat_overlay(image: Image.Image, heat: np.ndarray, alpha: float = 0.6) -> Image.Image:
    """`heat` (h, w) in heat colours, enlarged smoothly to the image's size and blended over it."""
    colours = Image.fromarray(heat_colors(heat)).resize(image.size, Image.Resampling.BILINEAR)
    return Image.blend(image.convert("RGB"), colours, alpha)


def small_multiples(
    wm: WordMaps, step: int | None, image: Image.Image
) -> list[tuple[Image.Image, str]]:
    """One captioned overlay per word of the prompt, at `step` (None: all steps); the caption
    gives the word's share of the attention (1/L would be an even split)."""
    maps = wm.at(step)  # (L, h, w)
    labels = wm.labels()
    return [(heat_overlay(image, maps[i]), f"{labels[i]} · {maps[i].mean():.1%}") for i in wm.words]
