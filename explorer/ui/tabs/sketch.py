"""The Sketch tab: draw (or upload), then img2img with a strength slider, and a strength sweep.

Events (api names in brackets):
  Run       -> img2img through the capture engine, every step in the step views [/sketch]
  Sweep     -> the same sketch at several strengths, same seed, side by side [/strength_sweep]
  a picture of the sweep -> that run opens in the step views
The step views show only the steps actually run: int(steps × strength).
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from explorer.inputs.controls import validate_run, validate_strength
from explorer.inputs.lists import describe_limits, format_list, parse_numbers
from explorer.inputs.words import count
from explorer.studies import img2img
from explorer.ui.common import (
    RUN_CONCURRENCY,
    VIEW_CONCURRENCY,
    AppContext,
    bind,
    explain,
    pixel_gallery,
    pixel_image,
    run_engine,
)
from explorer.ui.notes import notes_markdown, prompt_notes
from explorer.ui.pending import until_run
from explorer.ui.stepviews import RunView, StepViews, run_values
from explorer.ui.upload import fit_choice, image_upload, load_sketch, notes_text
from explorer.ui.widgets import control_input

TITLE = "Sketch"
VIEWS_PREFIX = "sketch-"  # the tab's step views' ids (the Generate tab's have none)
SWEEP_CONCURRENCY = 1  # a sweep is several runs: one at a time, like the experiments
SWEEP_LIMITS = dict(lo=0.01, hi=1.0, max_count=8)
PROMPT = "a red circle on a white background"
INTRO = (
    "Draw a rough picture, then let the model finish it. img2img encodes your sketch, **adds "
    "noise to it** up to the point where a share *strength* of the schedule is left, and runs only "
    "those last **int(steps × strength)** denoising steps. Low strength keeps your sketch; "
    "strength 1 starts from almost pure noise and ignores it. The step views below show only the "
    "steps that ran; their first latent is your noised sketch, not pure noise."
)
BRUSH = ["#000000", "#e02020", "#2040e0", "#20a040", "#f0d020", "#ffffff"]
# gradio's sketchpad starts with no tool ("select the draw tool to start") and leaves its colour
# pop-up open after a pick, and the mouse-down that closes it (its click-outside) starts no stroke:
# pick the brush when the canvas appears, close the pop-up once a colour is picked (a mouse-down
# outside it, as its own click-outside expects). Run once, when the page loads.
CANVAS_JS = """() => {
  const pad = () => document.querySelector("#sketchpad");
  const pickBrush = () => {
    const p = pad();
    if (p && p.offsetParent && p.textContent.includes("select the draw tool"))
      p.querySelector("button[aria-label=Brush]")?.click();
  };
  new MutationObserver(pickBrush).observe(document.body, {childList: true, subtree: true});
  document.addEventListener("click", (e) => {
    if (e.target.closest("[role=tab]")) setTimeout(pickBrush, 200);
    if (e.target.closest("#sketchpad menu.swatch button.color"))
      setTimeout(() => document.body.dispatchEvent(new MouseEvent("mousedown", {bubbles: true})));
  }, true);
}"""


# ---- handlers ---------------------------------------------------------------------------------


def _prepare(ctx: AppContext, sketch, upload, how, prompt, steps, guidance, seed, scheduler):
    """(pipe, the picture, the prompt, the run's settings, notes) shared by both handlers."""
    s = validate_run(prompt, "", seed, steps, guidance, scheduler)
    pipe = ctx.pipe()
    loaded = load_sketch(pipe, sketch, upload, how)
    kw = dict(steps=s.steps, guidance=s.guidance, seed=s.seed, scheduler=s.scheduler)
    notes = notes_text(loaded) + notes_markdown(prompt_notes(pipe, s))
    return pipe, loaded, s.prompt, kw, notes


def run(
    ctx: AppContext,
    sketch,
    upload,
    how,
    prompt,
    strength,
    steps,
    guidance,
    seed,
    scheduler,
    progress=gr.Progress(),  # noqa: B008 - how gradio injects progress
) -> dict[str, Any]:
    """img2img from the picture; every step of it in the step views."""
    pipe, loaded, text, kw, notes = _prepare(
        ctx, sketch, upload, how, prompt, steps, guidance, seed, scheduler
    )
    value = validate_strength(strength, kw["steps"])
    total = img2img.steps_run(kw["steps"], value)
    tick = lambda t: progress((t.num_steps, total), desc="denoising")  # noqa: E731
    tr = run_engine(
        img2img.sketch_to_image, pipe, loaded.image, text, strength=value, on_step=tick, **kw
    )
    done = (
        f"{notes}Done: strength {value:g} ran {tr.num_steps} of {count(kw['steps'])} "
        f"(int({kw['steps']} × {value:g})), starting at t = {float(tr.timesteps[0]):.0f}, where "
        f"ᾱ = {float(tr.alphas_cumprod[0]):.3f} of the start latent is your sketch's signal share."
    )
    view = run_engine(RunView.of, tr)
    values = run_values(view, prefix=VIEWS_PREFIX)
    return {"start": loaded.image, "final": tr.image, "status": done, **values}


def strength_sweep(
    ctx: AppContext,
    sketch,
    upload,
    how,
    prompt,
    strengths_text,
    steps,
    guidance,
    seed,
    scheduler,
    progress=gr.Progress(),  # noqa: B008
) -> dict[str, Any]:
    """The picture at several strengths, same seed, side by side."""
    pipe, loaded, text, kw, notes = _prepare(
        ctx, sketch, upload, how, prompt, steps, guidance, seed, scheduler
    )
    values = parse_numbers(strengths_text, name="strengths", **SWEEP_LIMITS)
    for v in values:
        validate_strength(v, kw["steps"])
    result = run_engine(
        img2img.strength_sweep,
        pipe,
        loaded.image,
        text,
        values,
        progress=lambda f, what: progress(f, desc=what),
        **kw,
    )
    note = f"{notes}{len(result)} runs, seed {kw['seed']}: the same noise, more of it each time."
    return {
        "sweep": [(loaded.image, "your picture")] + [(r.image, r.label) for r in result],
        "status": note,
        "runs": [r.trace for r in result],
    }


def open_run(traces: list, evt: gr.SelectData) -> dict[str, Any]:
    """The clicked run of the sweep, in every step view."""
    i = (evt.index or 0) - 1  # the first picture is the input
    if not traces or not 0 <= i < len(traces):
        return {}
    return run_values(run_engine(RunView.of, traces[i]), prefix=VIEWS_PREFIX)


# ---- layout and wiring ------------------------------------------------------------------------


def _picture() -> dict:
    sketch = gr.Sketchpad(
        label="Draw here (white canvas)",
        type="pil",
        image_mode="RGB",
        format="png",
        canvas_size=(512, 512),
        elem_id="sketchpad",
        brush=gr.Brush(colors=BRUSH, color_mode="defaults", default_size=24),
    )
    upload = image_upload("…or upload a picture (used instead of the sketch)", height=200)
    return dict(sketch=sketch, upload=upload, how=fit_choice())


def _settings() -> dict:
    c = dict(
        prompt=control_input("prompt", elem_id="sketch-prompt", lines=2, value=PROMPT),
        **{n: control_input(n, elem_id=f"sketch-{n}") for n in ("strength", "steps", "guidance")},
    )
    with gr.Row():
        c.update({n: control_input(n, elem_id=f"sketch-{n}") for n in ("seed", "scheduler")})
    c["run"] = gr.Button("Run img2img", variant="primary", elem_id="sketch-run")
    c["strengths"] = gr.Textbox(
        label="Strengths to compare",
        value=format_list(img2img.DEFAULT_STRENGTHS),
        info=describe_limits(**SWEEP_LIMITS),
    )
    c["sweep_run"] = gr.Button("Strength sweep (same seed)")
    return c


def create_tab(ctx: AppContext) -> StepViews:
    """Build the Sketch tab inside an open gr.Blocks; returns its step views."""
    explain(INTRO)
    with gr.Row():
        with gr.Column(scale=3):
            c = _picture()
        with gr.Column(scale=3):
            c.update(_settings())
        with gr.Column(scale=2):
            start = pixel_image(
                "What the model starts from: your picture, fitted",
                height=200,
                elem_id="sketch-start",
            )
            final = pixel_image("Final image", height=200, elem_id="sketch-final")
            status = gr.Markdown("Draw something and press Run.", elem_id="sketch-status")
    ctx.links["sketch"] = {"components": dict(prompt=c["prompt"], seed=c["seed"])}  # the Tour
    with until_run("A strength sweep shows here: the same sketch at several strengths.") as later:
        sweep = pixel_gallery("Strength sweep: click a picture to open its run below", columns=5)
    later.reveal_on(c["sweep_run"])
    runs = gr.State([])
    views = StepViews.build(VIEWS_PREFIX)
    picture = ["sketch", "upload", "how", "prompt"]
    settings = ["steps", "guidance", "seed", "scheduler"]
    outputs = dict(start=start, final=final, status=status, **views.components)
    c["run"].click(
        bind(run, ctx, outputs=outputs),
        [c[n] for n in [*picture, "strength", *settings]],
        list(outputs.values()),
        api_name="sketch",
        show_progress_on=[final],  # an error's pill there, not over the status message
        concurrency_limit=RUN_CONCURRENCY,
        concurrency_id="run",
    )
    swept = dict(sweep=sweep, status=status, runs=runs)
    c["sweep_run"].click(
        bind(strength_sweep, ctx, outputs=swept),
        [c[n] for n in [*picture, "strengths", *settings]],
        list(swept.values()),
        api_name="strength_sweep",
        show_progress_on=[sweep],
        concurrency_limit=SWEEP_CONCURRENCY,
        concurrency_id="experiments",
    )
    sweep.select(
        bind(open_run, outputs=views.components),
        [runs],
        views.outputs,
        api_visibility="private",
        concurrency_limit=VIEW_CONCURRENCY,
        concurrency_id="views",
    )
    return views
