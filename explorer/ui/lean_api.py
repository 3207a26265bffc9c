"""`/generate` for API callers: the final image, the status line and the run's numbers, fast.

The page's Run button streams every view (`/generate_views`: 88 gallery pictures for 25 steps,
each a file a `gradio_client.Client` downloads, about 8 s on this CPU). This endpoint runs the same
engine call with the same checks and notes but returns only what a script needs; the run is
also kept in the session (as `/generate_views` keeps it), so `/save_run` saves it.
"""

from __future__ import annotations

import time

import gradio as gr

from explorer.engine.capture import trace as run_trace
from explorer.inputs.controls import validate_run
from explorer.ui.common import RUN_CONCURRENCY, AppContext, bind, run_engine
from explorer.ui.notes import done_text, notes_markdown, prompt_notes
from explorer.ui.stepviews import RunView


def numbers(trace) -> dict:
    """The run in numbers: what a script compares or plots, JSON-safe."""
    s = trace.settings
    return {
        "seed": s["seed"],
        "steps": s["steps"],
        "steps_run": s["steps_run"],
        "scheduler": s["scheduler"],
        "timestep_spacing": s["scheduler_config"].get("timestep_spacing"),
        "timesteps": [float(t) for t in trace.timesteps],
        "alphas_cumprod": [float(a) for a in trace.alphas_cumprod],
        "seconds": [float(x) for x in trace.seconds],
        "prompt_tokens": trace.prompt_tokens,
        "height": s["height"],
        "width": s["width"],
    }


def prepare(ctx: AppContext, *values) -> tuple:
    """The checks both Generate endpoints make: (settings, pipe, notes) from the run controls'
    raw values, in `/generate`'s parameter order."""
    settings = validate_run(*values, fixed_size=ctx.fixed_size)
    pipe = ctx.pipe()
    return settings, pipe, prompt_notes(pipe, settings)


def generate_lean(
    ctx: AppContext,
    prompt,
    negative_prompt="",
    seed=0,
    steps=25,
    guidance=7.5,
    scheduler="ddim",
    size=0,
    spacing="model",
) -> dict:
    """Run the prompt; the final image, the status (notes, then "Done: …") and the numbers."""
    started = time.perf_counter()
    values = (prompt, negative_prompt, seed, steps, guidance, scheduler, size, spacing)
    settings, pipe, notes = prepare(ctx, *values)
    trace = run_engine(run_trace, pipe, settings.prompt, **settings.trace_kwargs())
    status = notes_markdown(notes) + done_text(trace, time.perf_counter() - started)
    view = RunView.of(trace, method="preview")  # for /save_run: no VAE decode of every step
    return {"image": trace.image, "status": status, "numbers": numbers(trace), "state": view}


def wire(ctx: AppContext, inputs: list, state: gr.State) -> None:
    """The hidden outputs and the endpoint; `inputs` are the page's run controls, in order."""
    with gr.Column(visible=False):
        outputs = {
            "image": gr.Image(format="png", label="final image"),
            "status": gr.Textbox(label="status"),
            "numbers": gr.JSON(label="numbers"),
        }
        trigger = gr.Button("generate (API)")
    outputs["state"] = state
    trigger.click(
        bind(generate_lean, ctx, outputs=outputs),
        inputs,
        list(outputs.values()),
        api_name="generate",
        concurrency_limit=RUN_CONCURRENCY,
        concurrency_id="run",
    )
