"""The Experiments tab: one sub-tab per side-by-side experiment, one API endpoint each.

    [/compare_steps] [/scale_embedding] [/compare_guidance] [/compare_schedulers]
    [/compare_seeds] [/grid]; Stop [/stop_experiment] ends the visitor's running experiment

The shared settings at the top (prompt, seed, steps, guidance, scheduler) are the base of every
experiment; each sub-tab varies one thing, typed as a list ("1, 2, 5, 10") with its limits stated
beside it. Clicking a picture opens that run in the step views at the bottom of the tab.
Handlers only validate (`explorer.inputs.controls`, `explorer.inputs.lists`), call the engine and format.
"""

from __future__ import annotations

from collections.abc import Callable

import gradio as gr

from explorer.charts import experiments as charts
from explorer.engine import capture
from explorer.inputs.controls import validate_run
from explorer.studies import experiments as ex
from explorer.studies import grid as gridmod
from explorer.studies import sweeps
from explorer.ui.common import (
    VIEW_CONCURRENCY,
    AppContext,
    StopFlags,
    explain,
    pixel_gallery,
    pixel_image,
    run_engine,
    session_key,
    visitor_errors,
)
from explorer.ui.experiment_lists import (
    DEFAULTS,
    GRID_MAX,
    LISTS,
    PANELS,
    limits_text,
    parse_list,
    table,
)
from explorer.ui.stepviews import RunView, StepViews
from explorer.ui.widgets import control_input

TITLE = "Experiments"
EXPERIMENT_CONCURRENCY = 1  # each experiment is many runs: one at a time on a small CPU


def _gallery(runs: list[ex.Run], captions: list[str] | None = None) -> list[tuple]:
    return [(r.image, captions[i] if captions else r.label) for i, r in enumerate(runs)]


class Stopped(Exception):
    """The visitor pressed Stop: the experiment ends between runs (or steps)."""


def _progress(progress) -> Callable[[float, str], None]:
    """gradio's progress as the engine's callback; it also ends a stopped experiment between runs."""

    def report(frac: float, what: str) -> None:
        if capture.stop_requested():
            raise Stopped
        progress(frac, desc=what)

    return report


def _settings_inputs() -> list:
    """The shared base settings, built from the controls registry (raw values reach
    `validate_run`, so a bad one gets a message naming it)."""
    box = lambda name, **kw: control_input(name, elem_id=f"exp-control-{name}", **kw)  # noqa: E731
    with gr.Row():
        prompt, negative = box("prompt", scale=3, lines=1), box("negative_prompt", scale=2)
    with gr.Row():
        seed, steps, guidance, scheduler = (
            box(n) for n in ("seed", "steps", "guidance", "scheduler")
        )
    return [prompt, negative, seed, steps, guidance, scheduler]


def create_tab(ctx: AppContext) -> StepViews:
    """Build the Experiments tab inside an open gr.Blocks; returns its step views."""
    explain(
        "Each experiment runs the real model several times and changes one thing. The settings "
        "here are the base; each sub-tab says what it varies. Click any picture to open that run "
        "in the step views below."
    )
    base = _settings_inputs()
    outs: dict[str, dict] = {}

    def panel(key: str, kinds: list[tuple[str, str]], note: str, extra=None) -> dict:
        """A sub-tab: list textboxes, Run button, pictures, chart and numbers."""
        with gr.Tab(key.replace("_", " ").capitalize(), id=f"exp-{key}"):
            explain(note)
            boxes = [
                gr.Textbox(label=label, value=DEFAULTS[kind], info=limits_text(kind))
                for kind, label in kinds
            ]
            more = extra() if extra else []
            with gr.Row():
                button = gr.Button("Run", variant="primary")
                stop = gr.Button("Stop", variant="stop")
            gallery = pixel_gallery("Results (click one to open it below)", columns=8)
            first = pixel_gallery("x0 after the first step", columns=8) if key == "steps" else None
            with gr.Row():
                plot = gr.Plot(label="chart") if key != "grid" else None
                numbers = gr.Markdown()
            png = pixel_image("Grid (PNG: download it)", height=400) if key == "grid" else None
        outs[key] = dict(inputs=boxes + more, button=button, stop=stop, gallery=gallery, first=first,
                         plot=plot, numbers=numbers, png=png, state=gr.State([]))  # fmt: skip
        return outs[key]

    def rule_radio():
        info = " · ".join(f"{k}: {v}" for k, v in sweeps.RULES.items())
        return [gr.Radio(list(sweeps.RULES), value="multiply", label="Rule", info=info)]

    def grid_axes():
        axes = list(gridmod.AXES)
        with gr.Row():
            widgets = [gr.Dropdown(axes, value="steps", label="Rows vary"),
                       gr.Textbox(value="2, 5, 25", label="Row values"),
                       gr.Dropdown(axes, value="seed", label="Columns vary"),
                       gr.Textbox(value="0, 1, 2", label="Column values")]  # fmt: skip
        gr.Markdown(f"Up to {GRID_MAX} values per axis; each typed like the lists above.")
        lim = LISTS["magnitude"]
        with gr.Row():
            widgets.append(gr.Number(value=1.0, label="Base magnitude k (when not an axis)",
                                     info=f"A number from {lim['lo']:g} to {lim['hi']:g}; 1 is the plain prompt."))  # fmt: skip
            widgets += rule_radio()
        return widgets

    extras = {"magnitude": rule_radio, "grid": grid_axes}
    with gr.Tabs():
        for key, (kinds, note) in PANELS.items():
            panel(key, kinds, note, extras.get(key))
    views = StepViews.build()

    # ---- handlers ------------------------------------------------------------------------
    flags = StopFlags()

    def engine(request: gr.Request | None, fn, *args, **kwargs):
        """Run an experiment; the visitor's Stop ends it at its next step or between runs."""
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

    def settings(*values):
        s = validate_run(*values)
        for n in s.notes:
            gr.Warning(n)
        return s

    @visitor_errors
    def compare_steps(
        prompt,
        negative,
        seed,
        steps,
        guidance,
        scheduler,
        steps_list,
        request: gr.Request = None,
        progress=gr.Progress(),  # noqa: B008
    ):
        s = settings(prompt, negative, seed, steps, guidance, scheduler)
        counts = parse_list("steps", steps_list)
        r = engine(request, ex.compare_steps, ctx.pipe(), s.prompt, counts, negative_prompt=s.negative_prompt,
                 guidance=s.guidance, seed=s.seed, scheduler=s.scheduler, progress=_progress(progress))  # fmt: skip
        rows = [[x.value, d, x.seconds] for x, d in zip(r.runs, r.distance)]
        return (_gallery(r.runs), [(im, x.label) for im, x in zip(r.first_x0, r.runs)],
                charts.steps_figure(counts, r.distance, [x.seconds for x in r.runs]),
                table(["steps", "pixel distance to most steps", "seconds"], rows), [x.trace for x in r.runs])  # fmt: skip

    @visitor_errors
    def scale_embedding(
        prompt,
        negative,
        seed,
        steps,
        guidance,
        scheduler,
        factors,
        rule,
        request: gr.Request = None,
    ):
        s = settings(prompt, negative, seed, steps, guidance, scheduler)
        ks = parse_list("magnitude", factors, "factors")
        r = engine(
            request, sweeps.scale_embedding, ctx.pipe(), s.prompt, ks, rule=rule, **s.trace_kwargs()
        )
        rows = [[k, n, c, d] for k, n, c, d in zip(r.factors, r.norms, r.cosines, r.distance)]
        caps = [
            f"k = {k:g} · ‖z‖ {n:.1f} · cos {c:.4f}"
            for k, n, c in zip(r.factors, r.norms, r.cosines)
        ]
        return (_gallery(r.runs, caps), charts.magnitude_figure(r.factors, r.norms, r.cosines, r.distance),
                table(["k", "‖z_k‖", "cos(z_k, z_1)", "pixel distance to k = 1"], rows)
                + f"\n\nOne batched call: {r.seconds:.2f} s for {len(ks)} factors.", [x.trace for x in r.runs])  # fmt: skip

    @visitor_errors
    def compare_guidance(
        prompt,
        negative,
        seed,
        steps,
        guidance,
        scheduler,
        scales,
        request: gr.Request = None,
        progress=gr.Progress(),  # noqa: B008
    ):
        s = settings(prompt, negative, seed, steps, guidance, scheduler)
        gs = parse_list("guidance", scales, "guidance scales")
        r = engine(request, ex.compare_guidance, ctx.pipe(), s.prompt, gs, negative_prompt=s.negative_prompt,
                 steps=s.steps, seed=s.seed, scheduler=s.scheduler, progress=_progress(progress))  # fmt: skip
        rows = [
            [g, "off" if n is None else max(n), x.seconds]
            for g, n, x in zip(gs, r.guidance_norms, r.runs)
        ]
        return (_gallery(r.runs), charts.guidance_norms_figure(gs, r.guidance_norms),
                table(["g", "largest ‖g·(ε_c − ε_u)‖", "seconds"], rows), [x.trace for x in r.runs])  # fmt: skip

    @visitor_errors
    def compare_schedulers(
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
    ):
        s = settings(prompt, negative, seed, steps, guidance, scheduler)
        chosen = parse_list("scheduler", names, "schedulers")
        counts = parse_list("curve", curve, "step counts")
        r = engine(request, ex.compare_schedulers, ctx.pipe(), s.prompt, s.steps, schedulers=chosen, curve_steps=counts,
                 negative_prompt=s.negative_prompt, guidance=s.guidance, seed=s.seed,
                 progress=_progress(progress))  # fmt: skip
        rows = [[x.value, d, x.seconds] for x, d in zip(r.runs, r.distance)]
        caps = [f"{x.value} · distance {d:.3g}" for x, d in zip(r.runs, r.distance)]
        return (_gallery(r.runs, caps), charts.scheduler_accuracy_figure(r.curve_steps, r.curve, chosen=r.steps),
                table(["scheduler", f"latent distance to DDIM 200 at {r.steps} steps", "seconds"], rows),
                [x.trace for x in r.runs])  # fmt: skip

    @visitor_errors
    def compare_seeds(
        prompt,
        negative,
        seed,
        steps,
        guidance,
        scheduler,
        seeds,
        request: gr.Request = None,
        progress=gr.Progress(),  # noqa: B008
    ):
        s = settings(prompt, negative, seed, steps, guidance, scheduler)
        chosen = parse_list("seed", seeds, "seeds")
        r = engine(request, ex.compare_seeds, ctx.pipe(), s.prompt, chosen, negative_prompt=s.negative_prompt,
                 steps=s.steps, guidance=s.guidance, scheduler=s.scheduler, progress=_progress(progress))  # fmt: skip
        return (_gallery(r.runs), charts.seeds_figure(chosen, r.distance),
                table(["seed", "pixel distance to the first seed"], [[x.value, d] for x, d in zip(r.runs, r.distance)]),
                [x.trace for x in r.runs])  # fmt: skip

    @visitor_errors
    def grid(
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
    ):
        s = settings(prompt, negative, seed, steps, guidance, scheduler)
        kind = lambda axis: "scheduler" if axis == "scheduler" else axis  # noqa: E731
        rows = parse_list(kind(row_axis), row_text, f"row values ({row_axis})", GRID_MAX)
        cols = parse_list(kind(col_axis), col_text, f"column values ({col_axis})", GRID_MAX)
        k = parse_list("magnitude", str(magnitude), "base magnitude", max_count=1)[0]
        base = dict(
            steps=s.steps, guidance=s.guidance, scheduler=s.scheduler, seed=s.seed, magnitude=k
        )
        r = engine(request, gridmod.grid, ctx.pipe(), s.prompt, (row_axis, rows), (col_axis, cols),
                   negative_prompt=s.negative_prompt, rule=rule, progress=_progress(progress), **base)  # fmt: skip
        cells = [c for row in r.cells for c in row]
        return (
            _gallery(cells),
            r.image,
            f"{len(cells)} runs in {r.seconds:.1f} s.",
            [c.trace for c in cells],
        )

    def open_cell(traces: list, evt: gr.SelectData):
        if not traces or evt.index is None or evt.index >= len(traces):
            return [gr.skip()] * len(views.outputs)
        return views.render(RunView.of(traces[evt.index]))

    handlers = {"steps": compare_steps, "magnitude": scale_embedding, "guidance": compare_guidance,
                "schedulers": compare_schedulers, "seeds": compare_seeds, "grid": grid}  # fmt: skip
    api = {"steps": "compare_steps", "magnitude": "scale_embedding", "guidance": "compare_guidance",
           "schedulers": "compare_schedulers", "seeds": "compare_seeds", "grid": "grid"}  # fmt: skip

    def request_stop(request: gr.Request = None):
        flags.stop(session_key(request))

    events = []
    for key, o in outs.items():
        if key == "grid":
            outputs = [o["gallery"], o["png"], o["numbers"], o["state"]]
        else:
            outputs = [
                o["gallery"],
                *([o["first"]] if o["first"] else []),
                o["plot"],
                o["numbers"],
                o["state"],
            ]
        events.append(o["button"].click(handlers[key], base + o["inputs"], outputs, api_name=api[key],
                                        concurrency_limit=EXPERIMENT_CONCURRENCY, concurrency_id="experiments"))  # fmt: skip
        o["gallery"].select(open_cell, [o["state"]], views.outputs, api_visibility="private",
                            concurrency_limit=VIEW_CONCURRENCY, concurrency_id="views")  # fmt: skip
    for i, o in enumerate(outs.values()):  # one endpoint; every Stop ends the visitor's experiment
        o["stop"].click(request_stop, None, None, cancels=events, queue=False,
                        **({"api_name": "stop_experiment"} if i == 0 else {"api_visibility": "private"}))  # fmt: skip
    return views
