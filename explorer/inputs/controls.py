"""The one registry of run controls: name, default, range, help.

Everything that shows or checks a control reads it from `CONTROLS`: the sliders of the web app,
the validation below, the API docs (`markdown_table`) and the test that the README documents
every control. Validation is pure (no model, no UI): `validate_run(...)` takes raw values as a
visitor or an API client sent them and returns a `RunSettings`, or raises `ControlError` with a
message that says what to change.
"""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass, field
from numbers import Integral, Real
from typing import Any

from explorer.inputs.errors import VisitorError
from explorer.inputs.words import count

MAX_PROMPT_CHARS = 2000  # longer text is refused (the encoder reads 77 tokens anyway)
SEED_MAX = 2**64 - 1  # torch.Generator.manual_seed takes 0 .. 2**64 - 1
# the samplers' names, as `explorer.engine.schedulers.SCHEDULERS` keys them (a test checks both)
SCHEDULER_NAMES = ("ddim", "ddpm", "pndm", "lms", "euler", "euler_a", "dpmpp_2m", "unipc")
# how a run places its steps on the training timesteps (`explorer.engine.schedulers.SPACINGS`),
# or "model": as the model's scheduler config says
SPACING_NAMES = ("model", "leading", "trailing", "linspace")
UI_SEED_MAX = 2**32 - 1  # what "randomize" draws from (exact in a browser's float64)


class ControlError(VisitorError):
    """A control value that cannot be used, with a message saying what to change."""


@dataclass(frozen=True)
class Control:
    """One input of a run."""

    name: str  # keyword in the API and the Python call
    label: str  # what the web page calls it
    kind: str  # "text" | "int" | "float" | "choice"
    default: Any
    help: str  # one sentence for tooltips, API docs and the README
    minimum: float | None = None
    maximum: float | None = None
    step: float | None = None  # slider step
    choices: tuple[str, ...] = ()


CONTROLS: dict[str, Control] = {
    c.name: c
    for c in [
        Control(
            "prompt",
            "Prompt",
            "text",
            "a large red circle on a blue background",
            "What to draw. Empty runs unconditionally; past 77 tokens the encoder truncates.",
        ),
        Control(
            "negative_prompt",
            "Negative prompt",
            "text",
            "",
            "What to steer away from (used only when guidance > 1).",
        ),
        Control(
            "seed",
            "Seed",
            "int",
            0,
            "Picks the starting noise; the same seed and settings give the same image.",
            minimum=0,
            maximum=SEED_MAX,
            step=1,
        ),
        Control(
            "steps",
            "Steps",
            "int",
            25,
            "How many denoising steps the scheduler takes from noise to image.",
            minimum=1,
            maximum=100,
            step=1,
        ),
        Control(
            "guidance",
            "Guidance",
            "float",
            7.5,
            "Classifier-free guidance scale; 1 or less turns guidance off.",
            minimum=0.0,
            maximum=30.0,
            step=0.5,
        ),
        Control(
            "scheduler",
            "Scheduler",
            "choice",
            "ddim",
            "The sampler that turns each noise prediction into the next latent.",
            choices=SCHEDULER_NAMES,
        ),
        Control(
            "spacing",
            "Timestep spacing",
            "choice",
            "model",
            "Where few steps start: 'trailing' begins at t = 999 (pure noise), 'leading' at a "
            "small t when steps are few; 'model' keeps the model's scheduler config.",
            choices=SPACING_NAMES,
        ),
        Control(
            "size",
            "Size (pixels)",
            "int",
            0,
            "Image width and height, a multiple of 8; 0 is the model's own size. The embedded "
            "models make one size only (mini-shapes 64×64, mini-things 128×128).",
            minimum=0,
            maximum=1024,
            step=8,
        ),
        Control(
            "strength",
            "Strength",
            "float",
            0.6,
            "img2img only: the share of the schedule re-run from the noised sketch "
            "(int(steps × strength) steps); 1 starts from almost pure noise.",
            minimum=0.0,
            maximum=1.0,
            step=0.05,
        ),
    ]
}


@dataclass(frozen=True)
class RunSettings:
    """Validated inputs of one run, plus notes to show the visitor (truncation, empty prompt)."""

    prompt: str
    negative_prompt: str
    seed: int
    steps: int
    guidance: float
    scheduler: str
    notes: tuple[str, ...] = field(default=())
    size: int = 0  # width = height in pixels; 0: the model's own size
    spacing: str = "model"  # timestep spacing; "model": the scheduler config's

    def trace_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for `explorer.engine.capture.trace` (after the pipeline and prompt)."""
        size = dict(height=self.size, width=self.size) if self.size else {}
        return dict(
            negative_prompt=self.negative_prompt,
            seed=self.seed,
            steps=self.steps,
            guidance=self.guidance,
            scheduler=self.scheduler,
            **size,
            **({} if self.spacing == "model" else {"spacing": self.spacing}),
        )


def clean_text(name: str, value: Any) -> tuple[str, list[str]]:
    """A prompt made safe for the tokenizer: control characters and lone surrogates removed."""
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise ControlError(f"{name} must be text, got {type(value).__name__}")
    if len(value) > MAX_PROMPT_CHARS:
        raise ControlError(
            f"{name} is {len(value)} characters long; shorten it to at most {MAX_PROMPT_CHARS}"
        )
    kept = [
        ch
        for ch in value
        if ch in "\n\t" or unicodedata.category(ch) not in ("Cc", "Cs", "Cf", "Co", "Cn")
    ]
    text = "".join(kept).replace("\n", " ").replace("\t", " ").strip()
    notes = []
    if len(kept) != len(value):
        notes.append(f"{len(value) - len(kept)} control or invalid characters removed from {name}")
    return text, notes


def whole_number(name: str, value: Any) -> int:
    """A whole number from what a visitor sent: ints, whole floats (3.0) and digit strings."""
    if isinstance(value, bool):
        raise ControlError(f"{name} must be a whole number, got {value!r}")
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            raise ControlError(f"{name} must be a whole number, got {value!r}") from None
    if isinstance(value, Real) and not isinstance(value, Integral):
        if not math.isfinite(value) or value != int(value):
            raise ControlError(f"{name} must be a whole number, got {value!r}")
        value = int(value)
    if not isinstance(value, Integral):
        raise ControlError(f"{name} must be a whole number, got {type(value).__name__}")
    return int(value)


def validate_int_range(name: str, value: Any, lo: int, hi: int) -> int:
    """A whole number in [lo, hi], for a control outside the registry (same rules and words)."""
    value = whole_number(name, value)
    if not lo <= value <= hi:
        raise ControlError(f"{name} must be between {lo} and {hi}, got {value}")
    return value


def validate_int(name: str, value: Any) -> int:
    """An integer within the registry control's range; whole floats and digit strings accepted."""
    c = CONTROLS[name]
    return validate_int_range(name, value, c.minimum, c.maximum)


def validate_float_range(name: str, value: Any, lo: float, hi: float) -> float:
    """A finite number in [lo, hi], for a control outside the registry (same rules and words)."""
    if isinstance(value, bool):
        raise ControlError(f"{name} must be a number, got {value!r}")
    try:
        number = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError, OverflowError):
        raise ControlError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise ControlError(f"{name} must be a finite number, got {value!r}")
    if not lo <= number <= hi:
        raise ControlError(f"{name} must be between {lo:g} and {hi:g}, got {number:g}")
    return number


def validate_float(name: str, value: Any) -> float:
    """A finite number within the registry control's range."""
    c = CONTROLS[name]
    return validate_float_range(name, value, c.minimum, c.maximum)


def validate_choice(name: str, value: Any) -> str:
    """One of the control's choices (case and surrounding spaces forgiven)."""
    c = CONTROLS[name]
    key = value.strip().lower() if isinstance(value, str) else value
    if key not in c.choices:
        raise ControlError(f"unknown {name} {value!r}; choose one of: {', '.join(c.choices)}")
    return key


def validate_size(value: Any, fixed: int | None = None) -> int:
    """A square size in pixels (0 for the model's own); `fixed` is the one size a model makes."""
    size = validate_int("size", 0 if value is None else value)
    if size == 0 or size == fixed:
        return 0
    if fixed is not None:
        raise ControlError(f"size: this model makes {fixed}×{fixed} images only; use {fixed} or 0")
    if size % 8 or size < 64:
        raise ControlError(f"size must be a multiple of 8 from 64 to 1024 (or 0), got {size}")
    return size


def validate_run(
    prompt: Any = CONTROLS["prompt"].default,
    negative_prompt: Any = CONTROLS["negative_prompt"].default,
    seed: Any = CONTROLS["seed"].default,
    steps: Any = CONTROLS["steps"].default,
    guidance: Any = CONTROLS["guidance"].default,
    scheduler: Any = CONTROLS["scheduler"].default,
    size: Any = CONTROLS["size"].default,
    spacing: Any = CONTROLS["spacing"].default,
    *,
    fixed_size: int | None = None,
) -> RunSettings:
    """Check every control of a run; `ControlError` naming the first bad one and what to do.

    `fixed_size`: the one size the model makes (the Mini model: 64), or None when it takes any
    multiple of 8."""
    prompt_text, notes = clean_text("prompt", prompt)
    negative_text, negative_notes = clean_text("negative_prompt", negative_prompt)
    notes += negative_notes
    if not prompt_text:
        notes.append("empty prompt: the model draws unconditionally (whatever it finds likely)")
    return RunSettings(
        prompt=prompt_text,
        negative_prompt=negative_text,
        seed=validate_int("seed", seed),
        steps=validate_int("steps", steps),
        guidance=validate_float("guidance", guidance),
        scheduler=validate_choice("scheduler", scheduler),
        notes=tuple(notes),
        size=validate_size(size, fixed_size),
        spacing=validate_choice("spacing", "model" if spacing in (None, "") else spacing),
    )


def validate_strength(value: Any, steps: int) -> float:
    """An img2img strength in (0, 1] that runs at least one of `steps` steps."""
    strength = validate_float("strength", value)
    if int(steps * strength) < 1:
        raise ControlError(
            f"strength {strength:g} with {count(steps)} runs no step (int(steps × strength) = 0): "
            f"raise strength to at least {1 / steps:.3g}, or take more steps"
        )
    return strength


def _fmt(x: float) -> str:
    return "2^64 − 1" if x == SEED_MAX else f"{x:g}"


def markdown_table() -> str:
    """The controls as a Markdown table (the README holds exactly this; a test checks it)."""
    rows = ["| name | default | range | what it does |", "| --- | --- | --- | --- |"]
    for c in CONTROLS.values():
        if c.kind == "choice":
            span = ", ".join(c.choices)
        elif c.kind == "text":
            span = "text"
        else:
            span = f"{_fmt(c.minimum)} to {_fmt(c.maximum)}"
        rows.append(f"| `{c.name}` | `{c.default!r}` | {span} | {c.help} |")
    return "\n".join(rows)


if __name__ == "__main__":  # python -m explorer.inputs.controls: the README's controls table
    print(markdown_table())
