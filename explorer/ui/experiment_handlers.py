"""The Experiments tab's handlers: validate the lists, run the experiment, format its results.

Each handler takes the tab's context and stop flags, then the shared base settings, then its own
values (the API's parameters, in order), and returns its panel's outputs by name (`PANEL_OUTPUTS`).
Handlers only validate (`explorer.inputs.controls`, `explorer.ui.experiment_lists`), call the
study through `run_engine` and format; `explorer.ui.tabs.experiments` lays out and wires them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gradio as gr

from explorer.charts import experiments as charts
from explorer.engine import capture
from explorer.inputs.controls import ControlError, RunSettings, validate_run
from explorer.inputs.words import count
from explorer.studies import experiments as ex
from explorer.studies import grid as gridmod
from explorer.studies import sweeps
from explorer.ui.common import AppContext, StopFlags, run_engine, session_key
from explorer.ui.experiment_lists import GRID_MAX, parse_list, table
from explorer.ui.notes import prompt_notes
from explorer.ui.stepviews import RunView, run_values

# A panel's outputs, in output order; a panel has those of them it shows (not every one has a
# first-step gallery, a chart or a grid picture).
PANEL_OUTPUTS = ("gallery", "first", "plot", "png", "numbers", "state")


class Stopped(Exception):
    """The visitor pressed Stop: the experiment ends between runs (or steps)."""


def _progress(progress) -> Callable[[float, str], None]:
    """gradio's progress as the study's callback; it also ends a stopped experiment between runs."""

    def report(frac: float, what: str) -> None:
        if capture.stop_requested():
            raise Stopped
        progress(frac, desc=what)

    return report


def run_experiment(flags: StopFlags, request: gr.Request | None, fn, *args, **kwargs):
    """Run a study through `run_engine`; the visitor's Stop ends it at its next step or between
    runs, and says so."""
    key = session_key(request)
    flag = flags.start(key)
    try:
        with capture.stop_when(flag.is_set):
            result = run_engine(fn, *args, **kwargs)
        stopped = flag.is_set()
    except Stopped:
        stopped = True
    finally:
        flags.finish(key, flag)
    if stopped:
        raise gr.Error("Stopped before the experiment finished.", print_exception=False)
    return result


def request_stop(flags: StopFlags, request: gr.Request = None) -> None:
    flags.stop(session_key(request))


def _settings(ctx: AppContext, *values) -> RunSettings:
    """The base settings, each note about them (unknown words, few "leading" steps) a toast."""
    s = validate_run(*values)
    for n in prompt_notes(ctx.pipe(), s):
        gr.Warning(n)
    return s


def _gallery(runs: list[ex.Run], captions: list[str] | None = None) -> list[tuple]:
    return [(r.image, captions[i] if captions else r.label) for i, r in enumerate(runs)]


VIEWS_PREFIX = "exp-"  # the Experiments tab's step views' ids


def open_cell(traces: list, evt: gr.SelectData) -> dict[str, Any]:
    """The clicked picture's run, in every step view."""
    if not traces or evt.index is None or evt.index >= len(traces):
        return {}
    return run_values(run_engine(RunView.of, traces[evt.index]), prefix=VIEWS_PREFIX)


# ---- one handler per panel ----------------------------------------------------------------------


def compare_steps(
    ctx: AppContext,
    flags: StopFlags,
    prompt,
    negative,
    seed,
    steps,
    guidance,
    scheduler,
    steps_list,
    spacing="model",
    request: gr.Request = None,
    progress=gr.Progress(),  # noqa: B008
) -> dict[str, Any]:
    s = _settings(ctx, prompt, negative, seed, steps, guidance, scheduler, 0, spacing)
    counts = parse_list("steps", steps_list)
    r = run_experiment(
        flags,
        request,
        ex.compare_steps,
        ctx.pipe(),
        s.prompt,
        counts,
        negative_prompt=s.negative_prompt,
        guidance=s.guidance,
        seed=s.seed,
        scheduler=s.scheduler,
        spacing=s.trace_kwargs().get("spacing"),
        progress=_progress(progress),
    )
    rows = [[x.value, d, x.seconds] for x, d in zip(r.runs, r.distance)]
    return {
        "gallery": _gallery(r.runs),
        "first": [(im, x.label) for im, x in zip(r.first_x0, r.runs)],
        "plot": charts.steps_figure(counts, r.distance, [x.seconds for x in r.runs]),
        "numbers": table(["steps", "pixel distance to most steps", "seconds"], rows),
        "state": [x.trace for x in r.runs],
    }


def scale_embedding(
    ctx: AppContext,
    flags: StopFlags,
    prompt,
    negative,
    seed,
    steps,
    guidance,
    scheduler,
    factors,
    rule,
    request: gr.Request = None,
) -> dict[str, Any]:
    s = _settings(ctx, prompt, negative, seed, steps, guidance, scheduler)
    ks = parse_list("magnitude", factors, "factors")
    r = run_experiment(
        flags,
        request,
        sweeps.scale_embedding,
        ctx.pipe(),
        s.prompt,
        ks,
        rule=rule,
        **s.trace_kwargs(),
    )
    rows = [[k, n, c, d] for k, n, c, d in zip(r.factors, r.norms, r.cosines, r.distance)]
    caps = [
        f"k = {k:g} · ‖z‖ {n:.1f} · cos {c:.4f}" for k, n, c in zip(r.factors, r.norms, r.cosines)
    ]
    headers = ["k", "‖z_k‖", "cos(z_k, z_1)", "pixel distance to k = 1"]
    return {
        "gallery": _gallery(r.runs, caps),
        "plot": charts.magnitude_figure(r.factors, r.norms, r.cosines, r.distance),
        "numbers": table(headers, rows)
        + f"\n\nOne batched call: {r.seconds:.2f} s for {len(ks)} factors.",
        "state": [x.trace for x in r.runs],
    }


def compare_guidance(
    ctx: AppContext,
    flags: StopFlags,
    prompt,
    negative,
    seed,
    steps,
    guidance,
    scheduler,
    scales,
    request: gr.Request = None,
    progress=gr.Progress(),  # noqa: B008
) -> dict[str, Any]:
    s = _settings(ctx, prompt, negative, seed, steps, guidance, scheduler)
    gs = parse_list("guidance", scales, "guidance scales")
    r = run_experiment(
        flags,
        request,
        ex.compare_guidance,
        ctx.pipe(),
        s.prompt,
        gs,
        negative_prompt=s.negative_prompt,
        steps=s.steps,
        seed=s.seed,
        scheduler=s.scheduler,
        progress=_progress(progress),
    )
    rows = [
        [g, "off" if n is None else max(n), x.seconds]
        for g, n, x in zip(gs, r.guidance_norms, r.runs)
    ]
    return {
        "gallery": _gallery(r.runs),
        "plot": charts.guidance_norms_figure(gs, r.guidance_norms),
        "numbers": table(["g", "largest ‖g·(ε_c − ε_u)‖", "seconds"], rows),
        "state": [x.trace for x in r.runs],
    }


def compare_schedulers(
    ctx: AppContext,
    flags: StopFlags,
    prompt,
    negative,
    seed,
    steps,
    guidance,
    scheduler,
    names,
    curve,
    request: gr.Request = None,
    progress=gr.Progress(),  # noqa: B008
) -> dict[str, Any]:
    s = _settings(ctx, prompt, negative, seed, steps, guidance, scheduler)
    chosen = parse_list("scheduler", names, "schedulers")
    counts = parse_list("curve", curve, "step counts")
    r = run_experiment(
        flags,
        request,
        ex.compare_schedulers,
        ctx.pipe(),
        s.prompt,
        s.steps,
        schedulers=chosen,
        curve_steps=counts,
        negative_prompt=s.negative_prompt,
        guidance=s.guidance,
        seed=s.seed,
        progress=_progress(progress),
    )
    rows = [[x.value, d, x.seconds] for x, d in zip(r.runs, r.distance)]
    caps = [f"{x.value} · distance {d:.3g}" for x, d in zip(r.runs, r.distance)]
    headers = ["scheduler", f"latent distance to DDIM 200 at {count(r.steps)}", "seconds"]
    return {
        "gallery": _gallery(r.runs, caps),
        "plot": charts.scheduler_accuracy_figure(r.curve_steps, r.curve, chosen=r.steps),
        "numbers": table(headers, rows),
        "state": [x.trace for x in r.runs],
    }


def compare_seeds(
    ctx: AppContext,
    flags: StopFlags,
    prompt,
    negative,
    seed,
    steps,
    guidance,
    scheduler,
    seeds,
    request: gr.Request = None,
    progress=gr.Progress(),  # noqa: B008
) -> dict[str, Any]:
    s = _settings(ctx, prompt, negative, seed, steps, guidance, scheduler)
    chosen = parse_list("seed", seeds, "seeds")
    r = run_experiment(
        flags,
        request,
        ex.compare_seeds,
        ctx.pipe(),
        s.prompt,
        chosen,
        negative_prompt=s.negative_prompt,
        steps=s.steps,
        guidance=s.guidance,
        scheduler=s.scheduler,
        progress=_progress(progress),
    )
    rows = [[x.value, d] for x, d in zip(r.runs, r.distance)]
    return {
        "gallery": _gallery(r.runs),
        "plot": charts.seeds_figure(chosen, r.distance),
        "numbers": table(["seed", "pixel distance to the first seed"], rows),
        "state": [x.trace for x in r.runs],
    }


def grid(
    ctx: AppContext,
    flags: StopFlags,
    prompt,
    negative,
    seed,
    steps,
    guidance,
    scheduler,
    row_axis,
    row_text,
    col_axis,
    col_text,
    magnitude=1.0,
    rule="multiply",
    request: gr.Request = None,
    progress=gr.Progress(),  # noqa: B008
) -> dict[str, Any]:
    s = _settings(ctx, prompt, negative, seed, steps, guidance, scheduler)
    kind = lambda axis: "scheduler" if axis == "scheduler" else axis  # noqa: E731
    rows = parse_list(kind(row_axis), row_text, f"row values ({row_axis})", GRID_MAX)
    cols = parse_list(kind(col_axis), col_text, f"column values ({col_axis})", GRID_MAX)
    if row_axis == col_axis:
        raise ControlError(f"rows and columns both vary {row_axis}: pick two different axes")
    k = parse_list("magnitude", str(magnitude), "base magnitude", max_count=1)[0]
    base = dict(steps=s.steps, guidance=s.guidance, scheduler=s.scheduler, seed=s.seed, magnitude=k)
    r = run_experiment(
        flags,
        request,
        gridmod.grid,
        ctx.pipe(),
        s.prompt,
        (row_axis, rows),
        (col_axis, cols),
        negative_prompt=s.negative_prompt,
        rule=rule,
        progress=_progress(progress),
        **base,
    )
    cells = [c for row in r.cells for c in row]
    return {
        "gallery": _gallery(cells),
        "png": r.image,
        "numbers": f"{len(cells)} runs in {r.seconds:.1f} s.",
        "state": [c.trace for c in cells],
    }


# Each panel's handler and api name.
HANDLERS: dict[str, tuple[Callable, str]] = {
    "steps": (compare_steps, "compare_steps"),
    "magnitude": (scale_embedding, "scale_embedding"),
    "guidance": (compare_guidance, "compare_guidance"),
    "schedulers": (compare_schedulers, "compare_schedulers"),
    "seeds": (compare_seeds, "compare_seeds"),
    "grid": (grid, "grid"),
}
