"""The Experiments tab: one sub-tab per side-by-side experiment, one API endpoint each.

    [/compare_steps] [/scale_embedding] [/compare_guidance] [/compare_schedulers]
    [/compare_seeds] [/grid]; Stop [/stop_experiment] ends the visitor's running experiment

The shared settings at the top (prompt, seed, steps, guidance, scheduler) are the base of every
experiment; each sub-tab varies one thing, typed as a list ("1, 2, 5, 10") with its limits stated
beside it. Clicking a picture opens that run in the step views at the bottom of the tab.
The handlers are in `explorer.ui.experiment_handlers`; this module lays out and wires them.
"""

from __future__ import annotations

import gradio as gr

from explorer.studies import grid as gridmod
from explorer.studies import sweeps
from explorer.ui.common import (
    VIEW_CONCURRENCY,
    AppContext,
    StopFlags,
    bind,
    explain,
    pixel_gallery,
    pixel_image,
)
from explorer.ui.experiment_handlers import (
    HANDLERS,
    PANEL_OUTPUTS,
    VIEWS_PREFIX,
    open_cell,
    request_stop,
)
from explorer.ui.experiment_lists import (
    DEFAULTS,
    GRID_MAX,
    LISTS,
    PANELS,
    limits_text,
    parse_list,  # noqa: F401 - re-exported, as LISTS is
)
from explorer.ui.pending import until_run
from explorer.ui.stepviews import StepViews
from explorer.ui.widgets import control_input

TITLE = "Experiments"
EXPERIMENT_CONCURRENCY = 1  # each experiment is many runs: one at a time on a small CPU
INTRO = (
    "Each experiment runs the real model several times and changes one thing. The settings "
    "here are the base; each sub-tab says what it varies. Click any picture to open that run "
    "in the step views below."
)


def _settings_inputs() -> list:
    """The shared base settings, built from the controls registry (raw values reach
    `validate_run`, so a bad one gets a message naming it)."""
    box = lambda name, **kw: control_input(name, elem_id=f"exp-control-{name}", **kw)  # noqa: E731
    with gr.Row():
        prompt = box("prompt", scale=3, lines=1, min_width=300)  # on a phone: one per line
        negative = box("negative_prompt", scale=2, min_width=300)
    with gr.Row():
        seed, steps, guidance, scheduler = (
            box(n) for n in ("seed", "steps", "guidance", "scheduler")
        )
    return [prompt, negative, seed, steps, guidance, scheduler]


def rule_radio() -> list:
    info = " · ".join(f"{k}: {v}" for k, v in sweeps.RULES.items())
    return [gr.Radio(list(sweeps.RULES), value="multiply", label="Rule", info=info)]


def grid_axes() -> list:
    """The grid's own inputs: the two axes and their values, the base magnitude and rule."""
    axes = list(gridmod.AXES)
    with gr.Row():
        widgets = [
            gr.Dropdown(axes, value="steps", label="Rows vary"),
            gr.Textbox(value="2, 5, 25", label="Row values"),
            gr.Dropdown(axes, value="seed", label="Columns vary"),
            gr.Textbox(value="0, 1, 2", label="Column values"),
        ]
    gr.Markdown(f"Up to {GRID_MAX} values per axis; each typed like the lists above.")
    lim = LISTS["magnitude"]
    with gr.Row():
        widgets.append(
            gr.Number(
                value=1.0,
                label="Base magnitude k (when not an axis)",
                info=f"A number from {lim['lo']:g} to {lim['hi']:g}; 1 is the plain prompt.",
            )
        )
        widgets += rule_radio()
    return widgets


def steps_spacing() -> list:
    """The Steps panel's timestep spacing (where a 1-step run starts)."""
    return [control_input("spacing", elem_id="exp-steps-spacing")]


EXTRAS = {"magnitude": rule_radio, "grid": grid_axes, "steps": steps_spacing}  # more inputs


def panel(key: str, kinds: list[tuple[str, str]], note: str) -> dict:
    """A sub-tab: list textboxes, Run and Stop, pictures, chart and numbers, by name (the outputs
    under the names of `PANEL_OUTPUTS`; None where the panel has no such output)."""
    with gr.Tab(key.replace("_", " ").capitalize(), id=f"exp-{key}"):
        explain(note)
        boxes = [
            gr.Textbox(label=label, value=DEFAULTS[kind], info=limits_text(kind))
            for kind, label in kinds
        ]
        more = EXTRAS[key]() if key in EXTRAS else []
        with gr.Row():
            button = gr.Button("Run", variant="primary")
            stop = gr.Button("Stop", variant="stop")
        with until_run("Press Run: the pictures, a chart and the numbers appear here.") as later:
            gallery = pixel_gallery("Results (click one to open it below)", columns=8)
            first = pixel_gallery("x0 after the first step", columns=8) if key == "steps" else None
            plot = gr.Plot(label="chart") if key != "grid" else None  # the whole width: log axes
            numbers = gr.Markdown()
            png = pixel_image("Grid (PNG: download it)", height=400) if key == "grid" else None
        later.reveal_on(button)
        # inside the Tab: a component made directly under gr.Tabs (not in a Tab) makes the
        # page's tab bar relabel one sub-tab's button as another's at every click
        state = gr.State([])
    shown = dict(gallery=gallery, first=first, plot=plot, png=png, numbers=numbers)
    outputs = {name: shown.get(name) for name in PANEL_OUTPUTS if name != "state"}
    outputs["state"] = state
    return dict(
        inputs=boxes + more,
        button=button,
        stop=stop,
        outputs={name: c for name, c in outputs.items() if c is not None},
    )


def create_tab(ctx: AppContext) -> StepViews:
    """Build the Experiments tab inside an open gr.Blocks; returns its step views."""
    explain(INTRO)
    base = _settings_inputs()
    with gr.Tabs() as sub_tabs:
        panels = {key: panel(key, kinds, note) for key, (kinds, note) in PANELS.items()}
    ctx.links["experiments"] = {"components": dict(prompt=base[0], seed=base[2], tabs=sub_tabs)}
    views = StepViews.build(VIEWS_PREFIX)
    flags = StopFlags()
    events = []
    for key, p in panels.items():
        fn, api_name = HANDLERS[key]
        outputs = p["outputs"]
        events.append(
            p["button"].click(
                bind(fn, ctx, flags, outputs=outputs),
                base + p["inputs"],
                list(outputs.values()),
                api_name=api_name,
                concurrency_limit=EXPERIMENT_CONCURRENCY,
                concurrency_id="experiments",
            )
        )
        outputs["gallery"].select(
            bind(open_cell, outputs=views.components),
            [outputs["state"]],
            views.outputs,
            api_visibility="private",
            concurrency_limit=VIEW_CONCURRENCY,
            concurrency_id="views",
        )
    for i, p in enumerate(panels.values()):  # one endpoint; every Stop ends the visitor's run
        p["stop"].click(
            bind(request_stop, flags),
            None,
            None,
            cancels=events,
            queue=False,
            **({"api_name": "stop_experiment"} if i == 0 else {"api_visibility": "private"}),
        )
    return views
