"""The Sketch tab: draw (or upload), then img2img with a strength slider, and a strength sweep.

Events (api names in brackets):
  Run       -> img2img through the capture engine, every step in the step views [/sketch]
  Sweep     -> the same sketch at several strengths, same seed, side by side [/strength_sweep]
  a picture of the sweep -> that run opens in the step views
The step views show only the steps actually run: int(steps × strength).
"""

from __future__ import annotations

import gradio as gr

from explorer.inputs.controls import validate_run, validate_strength
from explorer.inputs.lists import describe_limits, format_list, parse_numbers
from explorer.studies import img2img
from explorer.ui.common import (
    RUN_CONCURRENCY,
    VIEW_CONCURRENCY,
    AppContext,
    explain,
    notes_markdown,
    pixel_gallery,
    pixel_image,
    prompt_notes,
    run_engine,
    visitor_errors,
)
from explorer.ui.stepviews import RunView, StepViews
from explorer.ui.upload import fit_choice, image_upload, load_sketch, notes_text
from explorer.ui.widgets import control_input

TITLE = "Sketch"
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


def create_tab(ctx: AppContext) -> StepViews:
    """Build the Sketch tab inside an open gr.Blocks; returns its step views."""
    explain(INTRO)
    with gr.Row():
        with gr.Column(scale=3):
            sketch = gr.Sketchpad(
                label="Draw here (white canvas)", type="pil", image_mode="RGB", format="png",
                canvas_size=(512, 512), elem_id="sketchpad",
                brush=gr.Brush(colors=["#000000", "#e02020", "#2040e0", "#20a040", "#f0d020",
                                       "#ffffff"], color_mode="defaults", default_size=24),
            )  # fmt: skip
            upload = image_upload("…or upload a picture (used instead of the sketch)", height=200)
            how = fit_choice()
        with gr.Column(scale=3):
            prompt = control_input("prompt", elem_id="sketch-prompt", lines=2, value=PROMPT)
            strength = control_input("strength", elem_id="sketch-strength")
            steps = control_input("steps", elem_id="sketch-steps")
            guidance = control_input("guidance", elem_id="sketch-guidance")
            with gr.Row():
                seed = control_input("seed", elem_id="sketch-seed")
                scheduler = control_input("scheduler", elem_id="sketch-scheduler")
            run_btn = gr.Button("Run img2img", variant="primary", elem_id="sketch-run")
            strengths = gr.Textbox(
                label="Strengths to compare", value=format_list(img2img.DEFAULT_STRENGTHS),
                info=describe_limits(**SWEEP_LIMITS),
            )  # fmt: skip
            sweep_btn = gr.Button("Strength sweep (same seed)")
        with gr.Column(scale=2):
            start = pixel_image("What the model starts from: your picture, fitted", height=200)
            final = pixel_image("Final image", height=200)
            status = gr.Markdown("Draw something and press Run.")
    sweep = pixel_gallery("Strength sweep: click a picture to open its run below", columns=5)
    runs = gr.State([])
    views = StepViews.build()
    inputs = [sketch, upload, how, prompt, strength, steps, guidance, seed, scheduler]

    def _prepare(sketch, upload, how, prompt, steps, guidance, seed, scheduler):
        s = validate_run(prompt, "", seed, steps, guidance, scheduler)
        pipe = ctx.pipe()
        loaded = load_sketch(pipe, sketch, upload, how)
        kw = dict(steps=s.steps, guidance=s.guidance, seed=s.seed, scheduler=s.scheduler)
        notes = notes_text(loaded) + notes_markdown(prompt_notes(pipe, s))
        return pipe, loaded, s.prompt, kw, notes

    @visitor_errors
    def run(
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
    ):
        pipe, loaded, text, kw, notes = _prepare(sketch, upload, how, prompt, steps, guidance,
                                                 seed, scheduler)  # fmt: skip
        value = validate_strength(strength, kw["steps"])
        total = img2img.steps_run(kw["steps"], value)
        tick = lambda t: progress((t.num_steps, total), desc="denoising")  # noqa: E731
        tr = run_engine(img2img.sketch_to_image, pipe, loaded.image, text, strength=value,
                  on_step=tick, **kw)  # fmt: skip
        t0 = float(tr.timesteps[0])
        done = (
            f"{notes}Done: strength {value:g} ran **{tr.num_steps} of {kw['steps']} steps** "
            f"(int({kw['steps']} × {value:g})), starting at t = {t0:.0f}, where ᾱ = "
            f"{float(tr.alphas_cumprod[0]):.3f} of the start latent is your sketch's signal share."
        )
        return [loaded.image, tr.image, done, *views.render(RunView.of(tr))]

    @visitor_errors
    def strength_sweep(
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
    ):
        pipe, loaded, text, kw, notes = _prepare(sketch, upload, how, prompt, steps, guidance,
                                                 seed, scheduler)  # fmt: skip
        values = parse_numbers(strengths_text, name="strengths", **SWEEP_LIMITS)
        for v in values:
            validate_strength(v, kw["steps"])
        result = run_engine(img2img.strength_sweep, pipe, loaded.image, text, values,
                      progress=lambda f, what: progress(f, desc=what), **kw)  # fmt: skip
        gallery = [(loaded.image, "your picture")] + [(r.image, r.label) for r in result]
        note = (
            f"{notes}{len(result)} runs, seed {kw['seed']}: the same noise, more of it each time."
        )
        return gallery, note, [r.trace for r in result]

    def open_run(traces: list, evt: gr.SelectData):
        i = (evt.index or 0) - 1  # the first picture is the input
        if not traces or not 0 <= i < len(traces):
            return [gr.skip()] * len(views.outputs)
        return views.render(RunView.of(traces[i]))

    run_btn.click(run, inputs, [start, final, status, *views.outputs], api_name="sketch",
                  concurrency_limit=RUN_CONCURRENCY, concurrency_id="run")  # fmt: skip
    sweep_inputs = [sketch, upload, how, prompt, strengths, steps, guidance, seed, scheduler]
    sweep_btn.click(strength_sweep, sweep_inputs, [sweep, status, runs], api_name="strength_sweep",
                    concurrency_limit=SWEEP_CONCURRENCY, concurrency_id="experiments")  # fmt: skip
    sweep.select(open_run, [runs], views.outputs, api_visibility="private",
                 concurrency_limit=VIEW_CONCURRENCY, concurrency_id="views")  # fmt: skip
    return views
