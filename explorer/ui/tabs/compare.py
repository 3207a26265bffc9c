"""The Compare tab: run A and run B from the same starting noise, B changing one thing, side by
side with one scrubber and a chart of where they part ways.

Events (api names in brackets):
  Run      -> both runs, their distances per step and both runs' predicted images [/compare_runs]
  scrubber -> step i of A beside the step of B it is compared with (no model call)
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from explorer.charts.experiments import comparison_figure
from explorer.inputs.controls import CONTROLS, validate_run
from explorer.inputs.errors import VisitorError
from explorer.studies.compare import Comparison, compare_runs
from explorer.ui.common import (
    RUN_CONCURRENCY,
    VIEW_CONCURRENCY,
    AppContext,
    bind,
    explain,
    pixel_gallery,
    run_engine,
)
from explorer.ui.notes import notes_markdown, prompt_notes
from explorer.ui.pending import until_run
from explorer.ui.stepviews import RunView, step_captions
from explorer.ui.widgets import control_input

TITLE = "Compare"
CHANGES = ["prompt", "guidance", "scheduler", "steps"]
PROMPT_B = "a large red circle on a white background"
INTRO = (
    "Two runs from **the same starting noise** (the same seed): run B changes one thing. Their "
    "distance is 0 where they are the same; watch where it grows — the step where the two "
    "pictures part ways is where the change starts to matter. Each step of A is set beside the "
    "step of B nearest in the schedule (the same step when the step counts agree)."
)


def run_compare(
    ctx: AppContext,
    prompt,
    seed,
    steps,
    guidance,
    scheduler,
    change,
    prompt_b,
    guidance_b,
    scheduler_b,
    steps_b,
    progress=gr.Progress(),  # noqa: B008 - how gradio injects progress
) -> dict[str, Any]:
    """Both runs, the distance chart, both runs' x0 and the pair at the last step."""
    if change not in CHANGES:
        raise VisitorError(f"change must be one of: {', '.join(CHANGES)}; got {change!r}")
    given = dict(prompt=prompt, seed=seed, steps=steps, guidance=guidance, scheduler=scheduler)
    b_value = dict(zip(CHANGES, (prompt_b, guidance_b, scheduler_b, steps_b), strict=True))[change]
    a = validate_run(**given)
    b = validate_run(**{**given, change: b_value})
    pipe = ctx.pipe()
    base = dict(prompt=a.prompt, **a.trace_kwargs())
    tick = lambda f, what: progress(f, desc=what)  # noqa: E731
    cmp = run_engine(compare_runs, pipe, base, {change: getattr(b, change)}, progress=tick)
    views = (run_engine(RunView.of, cmp.a), run_engine(RunView.of, cmp.b))
    notes = notes_markdown(prompt_notes(pipe, a) + prompt_notes(pipe, b))
    return {
        "status": notes + summary(cmp),
        "chart": comparison_figure(cmp.latent_distance, cmp.x0_distance, cmp.parted_at),
        "x0_a": step_captions(cmp.a, views[0].pictures.x0),
        "x0_b": step_captions(cmp.b, views[1].pictures.x0),
        "step": gr.Slider(1, cmp.a.num_steps, value=cmp.a.num_steps, step=1),
        "pair": pair(views, cmp, cmp.a.num_steps),
        "state": (views, cmp),
    }


def summary(cmp: Comparison) -> str:
    """What B changed and where the two runs part ways, in a sentence."""
    changed = "; ".join(f"{k}: “{va}” → “{vb}”" for k, (va, vb) in cmp.changed.items())
    if not changed:
        return "A and B are the same run: their distance is 0 at every step."
    d = cmp.latent_distance
    parted = f"they part ways at step {cmp.parted_at}" if cmp.parted_at else "they end the same"
    return (
        f"B changed {changed}. Both start from the same noise (x_t distance {d[0]:.3f} at step "
        f"1); {parted}: there the inputs are first half as far apart as the two final latents "
        f"({d[-1]:.3f}). Early x0 predictions swing widely (they divide by a tiny √ᾱ)."
    )


def pair(views: tuple, cmp: Comparison, step: Any) -> list[tuple]:
    """Step `step` (1-based) of A beside the step of B it is compared with: x_t and x0 each."""
    i = max(1, min(int(step), cmp.a.num_steps)) - 1
    j = cmp.pairs[i]
    a, b = views[0].pictures, views[1].pictures
    ta, tb = float(cmp.a.timesteps[i]), float(cmp.b.timesteps[j])
    return [
        (a.latents[i], f"A x_t · step {i + 1} · t={ta:.0f}"),
        (b.latents[j], f"B x_t · step {j + 1} · t={tb:.0f}"),
        (a.x0[i], f"A x0 · step {i + 1}"),
        (b.x0[j], f"B x0 · step {j + 1}"),
    ]


def rescrub(state, step) -> dict[str, Any]:
    if not state:
        return {}
    views, cmp = state
    return {"pair": pair(views, cmp, step)}


def create_tab(ctx: AppContext) -> None:
    """Build the Compare tab inside an open gr.Blocks."""
    explain(INTRO)
    with gr.Row():
        with gr.Column(scale=3, min_width=300):
            inputs = [control_input("prompt", elem_id="cmp-prompt", lines=1)]
            with gr.Row():
                inputs += [control_input(n, elem_id=f"cmp-{n}") for n in ("seed", "steps")]
            with gr.Row():
                inputs += [control_input(n, elem_id=f"cmp-{n}") for n in ("guidance", "scheduler")]
        with gr.Column(scale=2, min_width=300):
            change = gr.Radio(CHANGES, value="prompt", label="Run B changes")
            b_values = [
                gr.Textbox(label="B's prompt", value=PROMPT_B),
                control_input("guidance", label="B's guidance", value=3.0, elem_id="cmp-b-g"),
                control_input("scheduler", label="B's scheduler", value="euler", elem_id="cmp-b-s"),
                control_input("steps", label="B's steps", value=10, elem_id="cmp-b-n"),
            ]
            run = gr.Button("Run A and B", variant="primary", elem_id="cmp-run")
    status = gr.Markdown()
    with until_run("Press Run A and B: both runs, step by step, and where they part.") as later:
        chart = gr.Plot(label="distance between the runs")
        step = gr.Slider(1, CONTROLS["steps"].default, value=1, step=1, label="Step of A")
        pictures = pixel_gallery("At that step: A and B's x_t, A and B's x0", columns=4)
        x0_a = pixel_gallery("Run A: the predicted image at each step")
        x0_b = pixel_gallery("Run B: the predicted image at each step")
    later.reveal_on(run)
    state = gr.State(None)
    outputs = dict(
        status=status, chart=chart, x0_a=x0_a, x0_b=x0_b, step=step, pair=pictures, state=state
    )
    run.click(
        bind(run_compare, ctx, outputs=outputs),
        [*inputs, change, *b_values],
        list(outputs.values()),
        api_name="compare_runs",
        concurrency_limit=RUN_CONCURRENCY,
        concurrency_id="run",
        show_progress_on=[status],
    )
    step.input(
        bind(rescrub, outputs={"pair": pictures}),
        [state, step],
        [pictures],
        api_visibility="private",
        concurrency_limit=VIEW_CONCURRENCY,
        concurrency_id="views",
    )
