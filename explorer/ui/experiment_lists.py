"""What each experiment of the Experiments tab takes: its typed lists, their limits (stated in the
UI) and defaults, the sub-tabs' plain-words notes, and the parsing and result tables.
"""

from __future__ import annotations

from explorer.engine.schedulers import SCHEDULERS
from explorer.inputs.controls import CONTROLS, SEED_MAX
from explorer.inputs.lists import describe_limits, format_list, parse_choices, parse_numbers
from explorer.studies import experiments as ex
from explorer.studies import sweeps

# Each list: how it is parsed, its limits (stated in the UI) and its default text.
LISTS: dict[str, dict] = {
    "steps": dict(integer=True, lo=1, hi=CONTROLS["steps"].maximum, max_count=8),
    "magnitude": dict(lo=-3.0, hi=5.0, max_count=9),
    "guidance": dict(lo=CONTROLS["guidance"].minimum, hi=CONTROLS["guidance"].maximum, max_count=8),
    "curve": dict(integer=True, lo=1, hi=100, max_count=6),
    "seed": dict(integer=True, lo=0, hi=SEED_MAX, max_count=16),
}
GRID_MAX = 6  # values per grid axis (36 runs at most)
DEFAULTS = {
    "steps": format_list(ex.DEFAULT_STEPS),
    "magnitude": format_list(sweeps.DEFAULT_FACTORS),
    "guidance": format_list(ex.DEFAULT_GUIDANCE),
    "curve": format_list(ex.DEFAULT_CURVE_STEPS),
    "seed": "0, 1, 2, 3, 4, 5, 6, 7",
    "scheduler": format_list(list(SCHEDULERS)),
}


# Sub-tabs: the lists each one takes (kind, label) and what it shows, in plain words.
PANELS: dict[str, tuple[list[tuple[str, str]], str]] = {
    "steps": (
        [("steps", "Step counts")],
        "Same prompt, same seed (so the same starting noise), different numbers of steps. "
        "With “trailing” spacing one step starts from pure noise (t = 999): its x0 is the "
        "model's blurry average of every picture the prompt allows, which more steps sharpen.",
    ),
    "magnitude": (
        [("magnitude", "Factors k")],
        "The prompt's embedding z scaled by k. With 'multiply' the direction never "
        "changes (cosine to k = 1 is 1.0 for every k > 0) but the length does, and so "
        "does the picture. All factors run as one batch from one shared noise.",
    ),
    "guidance": (
        [("guidance", "Guidance scales")],
        "ε = ε_u + g·(ε_c − ε_u): the chart shows the size of g·(ε_c − ε_u) at every step.",
    ),
    "schedulers": (
        [("scheduler", "Schedulers"), ("curve", "Step counts for the accuracy chart")],
        "Sampling solves a differential equation step by step. Each scheduler runs at "
        "the base step count; the chart measures how far each lands from a DDIM "
        "200-step reference as the steps grow (log-log: steeper = higher order). On the Mini "
        "models pndm and lms (4th-order multistep) overshoot at guidance above 3: their curves "
        "rise where the others fall (plain diffusers does the same); try guidance 3.",
    ),
    "seeds": ([("seed", "Seeds")], "Same prompt and settings, different starting noise."),
    "grid": ([], "Any two settings as rows and columns. The labelled grid downloads as one PNG."),
}


def parse_list(kind: str, text: str, name: str | None = None, max_count: int | None = None) -> list:
    """The typed list `text` for list kind `kind` (see `LISTS`), or a `ListError`."""
    if kind == "scheduler":
        return parse_choices(text, list(SCHEDULERS), name=name or kind, max_count=max_count or 8)
    limits = {**LISTS[kind], **({"max_count": max_count} if max_count else {})}
    return parse_numbers(text, name=name or kind, **limits)


def limits_text(kind: str) -> str:
    """The limits of a list kind, in words, for the textbox's info line."""
    if kind == "scheduler":
        return f"Any of: {', '.join(SCHEDULERS)}, separated by commas."
    lim = LISTS[kind]
    return describe_limits(
        lo=lim["lo"], hi=lim["hi"], max_count=lim["max_count"], integer=lim.get("integer", False)
    )


def table(headers: list[str], rows: list[list]) -> str:
    """A small Markdown table; floats shown with 4 significant digits, NaN as an em dash."""

    def cell(v) -> str:
        if isinstance(v, float):
            return "—" if v != v else f"{v:.4g}"
        return str(v)

    lines = ["| " + " | ".join(headers) + " |", "|" + " --- |" * len(headers)]
    return "\n".join(lines + ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows])
