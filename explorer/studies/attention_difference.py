"""Where a changed word acts: run B's cross-attention maps minus run A's, token by token.

Two runs from the same noise whose prompts differ by a word or a few ("a red circle" and "a blue
circle"). Their words are lined up (`difflib`, as a text diff does): the words both prompts share
are paired, and so are the words that replace each other ("red → blue"); a word only B has is
compared with no attention at all in A (its map minus 0), a word only A has likewise (0 minus
its map). For each pair the difference of the (h, w) maps, B's minus A's, either averaged over
each run's steps or at one step of A and the step of B paired with it (`compare.Comparison.pairs`).
Only the prompt's own words take part: the start and end markers and the padding are not words.
Pure functions of the two traces' attention (`trace(..., attention=True)`); no model runs here.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from explorer.engine.tracefile import Trace
from explorer.inputs.errors import VisitorError
from explorer.studies.word_maps import WordMaps

KINDS = ("shared", "changed", "only in B", "only in A")


@dataclass
class TokenDifference:
    """One word's attention in run B minus its (or its counterpart's) in run A."""

    label: str  # "circle", "red → blue", "+ big" (only in B), "− big" (only in A)
    kind: str  # one of KINDS
    a: int | None  # the token's position in A's prompt (None: only in B)
    b: int | None  # the token's position in B's prompt (None: only in A)
    diff: np.ndarray  # (h, w) B's map − A's map (attention shares, each map's positions in [0, 1])

    @property
    def largest(self) -> float:
        """max |diff| over the map."""
        return float(np.abs(self.diff).max()) if self.diff.size else 0.0


def _word(token: str) -> str:
    return token.removesuffix("</w>")


def word_pairs(a: WordMaps, b: WordMaps) -> list[tuple[int | None, int | None, str]]:
    """The two prompts' words lined up: (position in A or None, position in B or None, kind)."""
    wa, wb = a.words, b.words
    ta = [_word(a.tokens[i]).lower() for i in wa]
    tb = [_word(b.tokens[j]).lower() for j in wb]
    pairs: list[tuple[int | None, int | None, str]] = []
    for op, i0, i1, j0, j1 in difflib.SequenceMatcher(None, ta, tb, autojunk=False).get_opcodes():
        if op == "equal":
            pairs += [(wa[i], wb[j], "shared") for i, j in zip(range(i0, i1), range(j0, j1))]
            continue
        both = min(i1 - i0, j1 - j0) if op == "replace" else 0
        pairs += [(wa[i0 + k], wb[j0 + k], "changed") for k in range(both)]
        pairs += [(None, wb[j], "only in B") for j in range(j0 + both, j1)]
        pairs += [(wa[i], None, "only in A") for i in range(i0 + both, i1)]
    order = {"shared": 1, "changed": 0, "only in B": 0, "only in A": 0}
    # the changed words first (they are what the visitor asked about), then the shared ones,
    # each in the prompt's order
    return sorted(pairs, key=lambda p: (order[p[2]], p[1] if p[1] is not None else p[0]))


def attention_difference(
    a: Trace, b: Trace, pairs: Sequence[int] | None = None, step: int | None = None
) -> list[TokenDifference]:
    """Per word of the two prompts, B's attention map minus A's.

    `step` None: each run's maps averaged over its own steps. Otherwise `step` is a step of A
    (0-based) and B's map is taken at `pairs[step]` (its paired step; the same step without
    `pairs`). Raises `VisitorError` when a run was traced without attention or the maps differ
    in size.
    """
    wa, wb = WordMaps.of(a), WordMaps.of(b)
    if wa.maps.shape[2:] != wb.maps.shape[2:]:
        raise VisitorError("the two runs' attention maps differ in size: they cannot be compared")
    if step is None:
        ma, mb = wa.at(None), wb.at(None)  # (L, h, w) each
    else:
        j = pairs[step] if pairs is not None and 0 <= step < len(pairs) else step
        ma, mb = wa.at(step), wb.at(j)  # (L, h, w) each
    none = np.zeros(ma.shape[1:], dtype=np.float64)  # (h, w): no attention at all
    out = []
    for i, j, kind in word_pairs(wa, wb):
        map_a = ma[i].astype(np.float64) if i is not None else none  # (h, w)
        map_b = mb[j].astype(np.float64) if j is not None else none  # (h, w)
        out.append(TokenDifference(_label(wa, wb, i, j, kind), kind, i, j, map_b - map_a))
    return out


def _label(wa: WordMaps, wb: WordMaps, i: int | None, j: int | None, kind: str) -> str:
    if kind == "only in B":
        return f"+ {_word(wb.tokens[j])}"
    if kind == "only in A":
        return f"− {_word(wa.tokens[i])}"
    if kind == "changed":
        return f"{_word(wa.tokens[i])} → {_word(wb.tokens[j])}"
    return _word(wb.tokens[j])
