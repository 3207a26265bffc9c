"""Lists typed as text ("1, 2, 5, 10"), parsed with limits and errors that say what to change.

Every experiment takes its values as a short comma-separated list. Parsing is pure: a string in,
a list out, or a `ListError` naming the entry at fault. Rules, the same for every list:
  - entries are separated by commas (spaces around them are ignored); one trailing comma is fine;
  - an empty entry ("1,,2") is an error, never silently skipped;
  - numbers are plain ASCII decimals ("2", "-0.5", "1e-3"; not "1_000" or other digits);
  - numbers must be finite ("nan", "inf" and "1e400", which overflows to inf, are refused);
  - integers must be written as integers ("2.5" is not a step count; "5.0" is accepted as 5);
  - every value must lie in [lo, hi], and a list holds at most `max_count` entries.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from explorer.inputs.errors import VisitorError

_NUMBER = re.compile(
    r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", re.ASCII
)  # plain ASCII decimals only
MAX_TEXT = 2000  # characters; longer input is refused before it is split


class ListError(VisitorError):
    """A list that cannot be used, with a message meant for the person who typed it."""


def _split(text: str, name: str, max_count: int) -> list[str]:
    """The stripped entries of a comma-separated `text`; errors for empty input or entries."""
    if not isinstance(text, str):
        raise ListError(f"{name}: expected text such as '1, 2, 5', got {type(text).__name__}")
    if len(text) > MAX_TEXT:
        raise ListError(
            f"{name}: the list is too long ({len(text)} characters, at most {MAX_TEXT})"
        )
    body = text.strip()
    if body.endswith(","):
        body = body[:-1]
    if not body.strip():
        raise ListError(
            f"{name}: the list is empty; type values separated by commas, e.g. '1, 2, 5'"
        )
    entries = [e.strip() for e in body.split(",")]
    for i, entry in enumerate(entries):
        if not entry:
            raise ListError(f"{name}: entry {i + 1} is empty (two commas in a row?)")
    if len(entries) > max_count:
        raise ListError(f"{name}: {len(entries)} values given, at most {max_count} allowed")
    return entries


def _number(entry: str, name: str, integer: bool) -> float | int:
    """One entry as a finite float, or an int when `integer`; `ListError` otherwise."""
    if entry.lower().lstrip("+-") in ("nan", "inf", "infinity"):
        raise ListError(f"{name}: {entry!r} is not a finite number")
    if not _NUMBER.fullmatch(entry):
        kind = "a whole number" if integer else "a number"
        raise ListError(f"{name}: {entry!r} is not {kind}")
    value = float(entry)
    if not math.isfinite(value):
        raise ListError(f"{name}: {entry!r} is not a finite number")
    if integer:
        if value != int(value):
            raise ListError(f"{name}: {entry!r} is not a whole number")
        return int(value)
    return value


def parse_numbers(
    text: str,
    *,
    name: str = "values",
    lo: float = -math.inf,
    hi: float = math.inf,
    integer: bool = False,
    max_count: int = 12,
    unique: bool = False,
) -> list[float] | list[int]:
    """Parse "1, 2.5, 10" into numbers within [lo, hi]; order kept, duplicates allowed unless
    `unique`.

    `integer=True` gives ints (for step counts and seeds). Raises `ListError` with a message that
    names the list (`name`) and the offending entry.
    """
    entries = _split(text, name, max_count)
    values = [_number(e, name, integer) for e in entries]
    for entry, value in zip(entries, values):
        if not lo <= value <= hi:
            raise ListError(f"{name}: {entry} is out of range; allowed {_fmt(lo)} to {_fmt(hi)}")
    if unique and len(set(values)) != len(values):
        dup = next(v for v in values if values.count(v) > 1)
        raise ListError(f"{name}: {_fmt(dup)} appears more than once")
    return values


def parse_choices(
    text: str, choices: Sequence[str], *, name: str = "values", max_count: int = 12
) -> list[str]:
    """Parse "ddim, euler" into names from `choices` (case-insensitive); no duplicates."""
    lookup = {c.lower(): c for c in choices}
    out: list[str] = []
    for entry in _split(text, name, max_count):
        if entry.lower() not in lookup:
            raise ListError(f"{name}: unknown {entry!r}; choose from {', '.join(choices)}")
        if lookup[entry.lower()] in out:
            raise ListError(f"{name}: {entry!r} appears more than once")
        out.append(lookup[entry.lower()])
    return out


def format_list(values: Sequence[float | int | str]) -> str:
    """The text form of a list, as `parse_numbers`/`parse_choices` read it back: "1, 2.5, ddim"."""
    return ", ".join(_fmt(v) if not isinstance(v, str) else v for v in values)


def _fmt(value: float | int) -> str:
    """A compact number: 5 rather than 5.0, 0.25 as is; infinities as words."""
    if isinstance(value, float) and math.isinf(value):
        return "any" if value > 0 else "-any"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return repr(value) if isinstance(value, float) else str(value)


def describe_limits(*, lo: float, hi: float, max_count: int, integer: bool = False) -> str:
    """One sentence for the UI: "Up to 8 whole numbers from 1 to 200, separated by commas."."""
    kind = "whole numbers" if integer else "numbers"
    return f"Up to {max_count} {kind} from {_fmt(lo)} to {_fmt(hi)}, separated by commas."
