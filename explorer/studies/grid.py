"""A free X/Y grid: any two of steps, guidance, scheduler, seed and magnitude as axes.

Every cell is one real run with the base settings, except for the two axis values. Cells with
magnitude k = 1 are plain `capture.trace` runs; when magnitude is an axis, each row (or column)
of magnitudes runs as one batched call through `sweeps.scale_embedding`. The labelled picture
of the whole grid is one PNG (`GridResult.image`); `cell_box` says where each cell sits in it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from explorer.engine.capture import trace
from explorer.inputs.errors import VisitorError
from explorer.inputs.words import count
from explorer.studies.experiments import Progress, Run
from explorer.studies.sweeps import RULES, scale_embedding

AXES: dict[str, str] = {  # axis -> how a value is labelled
    "steps": "{} steps",
    "guidance": "guidance {}",
    "scheduler": "{}",
    "seed": "seed {}",
    "magnitude": "k = {}",
}
BASE = dict(steps=25, guidance=7.5, scheduler="ddim", seed=0, magnitude=1.0)
LABEL_SIZE = 16  # label text height in pixels: legible at 100% zoom
LABEL_H = LABEL_SIZE + 8  # pixels of the column-label band
PAD = 2  # pixels between cells


def axis_label(axis: str, value: Any) -> str:
    """The label of one axis value, e.g. ("steps", 10) -> "10 steps"."""
    if axis == "steps":
        return count(int(value))
    text = f"{value:g}" if isinstance(value, float) else str(value)
    return AXES[axis].format(text)


@dataclass
class GridResult:
    """`grid`: rows × cols runs, their labels and the labelled picture."""

    row_axis: str
    col_axis: str
    row_values: list[Any]
    col_values: list[Any]
    cells: list[list[Run]]  # cells[r][c]: row value r, column value c
    image: Image.Image  # the whole grid with row and column labels (save it as PNG)
    cell_size: tuple[int, int]  # (width, height) of one cell in `image`
    origin: tuple[int, int]  # (x, y) of the top-left cell in `image`
    seconds: float

    @property
    def row_labels(self) -> list[str]:
        """One label per row, as drawn at the left of the picture."""
        return [axis_label(self.row_axis, v) for v in self.row_values]

    @property
    def col_labels(self) -> list[str]:
        """One label per column, as drawn above the picture."""
        return [axis_label(self.col_axis, v) for v in self.col_values]

    def cell_box(self, r: int, c: int) -> tuple[int, int, int, int]:
        """(left, top, right, bottom) of cell (r, c) in `image`."""
        w, h = self.cell_size
        x, y = self.origin[0] + c * (w + PAD), self.origin[1] + r * (h + PAD)
        return (x, y, x + w, y + h)


def _runs_for(
    pipe, prompt: str, negative_prompt: str, rule: str, params: dict, magnitudes: list[float]
) -> list[tuple[Any, float]]:
    """(trace, seconds) for `params` at each magnitude: plain trace for [1], else one batch."""
    kw = {k: v for k, v in params.items() if k != "magnitude"}
    if magnitudes == [1.0]:
        start = time.perf_counter()
        tr = trace(pipe, prompt, negative_prompt=negative_prompt, **kw)
        return [(tr, time.perf_counter() - start)]
    result = scale_embedding(
        pipe, prompt, magnitudes, rule=rule, negative_prompt=negative_prompt, **kw
    )
    return [(r.trace, r.seconds) for r in result.runs]


def grid(
    pipe,
    prompt: str,
    rows: tuple[str, Sequence[Any]],
    cols: tuple[str, Sequence[Any]],
    *,
    negative_prompt: str = "",
    rule: str = "multiply",
    progress: Progress | None = None,
    **base: Any,
) -> GridResult:
    """Run every (row value, column value) pair; `base` sets the other axes (see `BASE`).

    `rows` and `cols` are (axis, values) with axis one of `AXES`, the two different.
    """
    (row_axis, row_values), (col_axis, col_values) = rows, cols
    for axis in (row_axis, col_axis):
        if axis not in AXES:
            raise VisitorError(f"unknown axis {axis!r}; choose from {', '.join(AXES)}")
    if row_axis == col_axis:
        raise VisitorError(f"rows and columns both vary {row_axis}: pick two different axes")
    if not row_values or not col_values:
        raise VisitorError("each axis needs at least one value")
    if rule not in RULES:
        raise VisitorError(f"unknown rule {rule!r}; choose one of: {', '.join(RULES)}")
    unknown = set(base) - set(BASE)
    if unknown:
        raise VisitorError(f"unknown settings {sorted(unknown)}; grid takes {', '.join(BASE)}")
    settings = {**BASE, **base}
    start = time.perf_counter()

    # Batch along magnitude when it is an axis: one call per value of the other axis.
    transposed = row_axis == "magnitude"
    outer_axis, outer = (col_axis, col_values) if transposed else (row_axis, row_values)
    inner_axis, inner = (row_axis, row_values) if transposed else (col_axis, col_values)
    lines: list[list[tuple[Any, float]]] = []
    for i, o in enumerate(outer):
        if progress is not None:
            progress(i / len(outer), axis_label(outer_axis, o))
        params = {**settings, outer_axis: o}
        if inner_axis == "magnitude":
            lines.append(
                _runs_for(pipe, prompt, negative_prompt, rule, params, [float(v) for v in inner])
            )
            continue
        line = []
        for v in inner:
            cell = {**params, inner_axis: v}
            line += _runs_for(pipe, prompt, negative_prompt, rule, cell, [float(cell["magnitude"])])
        lines.append(line)
    if transposed:
        lines = [list(col) for col in zip(*lines)]  # back to [row][col]

    cells = [
        [
            Run(f"{axis_label(row_axis, rv)}, {axis_label(col_axis, cv)}", (rv, cv), tr, sec)
            for cv, (tr, sec) in zip(col_values, line)
        ]
        for rv, line in zip(row_values, lines)
    ]
    row_labels = [axis_label(row_axis, v) for v in row_values]
    col_labels = [axis_label(col_axis, v) for v in col_values]
    image, size, origin = draw_grid(
        [[c.image for c in row] for row in cells], row_labels, col_labels
    )
    return GridResult(
        row_axis,
        col_axis,
        list(row_values),
        list(col_values),
        cells,
        image,
        size,
        origin,
        time.perf_counter() - start,
    )


def draw_grid(
    images: list[list[Image.Image]],
    row_labels: list[str],
    col_labels: list[str],
    min_cell: int = 128,
    font: Callable[[], Any] = lambda: ImageFont.load_default(size=LABEL_SIZE),
) -> tuple[Image.Image, tuple[int, int], tuple[int, int]]:
    """Lay out images[r][c] with labels: (picture, cell (w, h), origin of the top-left cell).

    Small images are enlarged by a whole factor (nearest neighbour) to at least `min_cell` pixels.
    """
    w0, h0 = images[0][0].size
    scale = max(1, -(-min_cell // max(w0, h0)))  # ceil
    w, h = w0 * scale, h0 * scale
    face = font()
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    label_w = max(int(probe.textlength(t, font=face)) for t in row_labels) + 2 * PAD + 4
    x0, y0 = label_w, LABEL_H + PAD
    canvas = Image.new(
        "RGB", (x0 + len(col_labels) * (w + PAD), y0 + len(row_labels) * (h + PAD)), "white"
    )
    draw = ImageDraw.Draw(canvas)
    for c, text in enumerate(col_labels):
        draw.text((x0 + c * (w + PAD) + 2, 3), text, fill="black", font=face)
    for r, (text, row) in enumerate(zip(row_labels, images)):
        y = y0 + r * (h + PAD)
        draw.text((PAD + 2, y + (h - LABEL_SIZE) // 2), text, fill="black", font=face)
        for c, img in enumerate(row):
            canvas.paste(img.convert("RGB").resize((w, h), Image.NEAREST), (x0 + c * (w + PAD), y))
    return canvas, (w, h), (x0, y0)
