"""The Attention tab: where each word of the prompt acts, and when.

Events (api names in brackets):
  Run  -> run the prompt with cross-attention capture and show the picked token [/attention]
  token picker, step slider, "all steps" -> re-render from the stored run (no model call)
Handlers only validate (`explorer.inputs.controls`, `explorer.studies.word_maps.find_token`),
call the engine (`explorer.studies.word_maps`, through `run_engine`) and format.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr
from PIL import Image

from explorer.inputs.controls import (
    CONTROLS,
    ControlError,
    validate_int_range,
    validate_run,
    whole_number,
)
from explorer.inputs.words import count
from explorer.studies import word_maps as wordmaps
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
from explorer.ui.widgets import control_input

TITLE = "Attention"
DEFAULT_PROMPT = "a small red circle on a blue background, top left"

EXPLAIN = (
    "Inside the UNet, every position of the latent *looks at* the prompt's tokens through "
    "cross-attention and takes from each a share that adds up to 1. The heat shows, for one "
    "token, where those shares are large (bright) — averaged over the attention heads and "
    "layers, for one step or for all steps; each map is stretched to its own range, and the "
    "numbers give its share of all attention. In large models the start token (⟨start⟩) takes "
    "most of it: it is where a position looks when no word matters to it. ⟨end⟩ and ⟨pad⟩ "
    "carry a summary of the whole prompt (the text encoder reads left to right)."
)
VIEWS = ("final", "x0", "words", "numbers")  # what `render` returns, in order


@dataclass
class AttentionRun:
    """What the tab keeps between events: the maps and the decoded x0 of every step."""

    maps: wordmaps.WordMaps
    x0: list[Image.Image]


def _step(run: AttentionRun, step, all_steps: bool) -> int | None:
    """The 0-based step to show (None: all), from the 1-based slider value."""
    if all_steps:
        return None
    steps, step = run.maps.maps.shape[1], whole_number("step", step)
    if not 1 <= step <= steps:
        raise ControlError(f"step must be between 1 and {steps} (this run's steps), got {step}")
    return step - 1


def render(run: AttentionRun, token, step, all_steps: bool) -> list:
    """[final overlay, x0 overlay, small multiples, numbers] for the picked token and step."""
    wm = run.maps
    try:
        index = wordmaps.find_token(wm, token)
    except ValueError as e:  # the study's words are for the visitor: a picked token is input
        raise ControlError(str(e)) from None
    at = _step(run, step, all_steps)
    heat = wm.at(at)[index]  # (h, w)
    shown_x0 = len(run.x0) - 1 if at is None else at
    shares = wordmaps.quadrant_shares(heat)
    when = "all steps (average)" if at is None else f"step {at + 1} of {len(run.x0)}"
    numbers = (
        f"**{wm.labels()[index]}** ({wm.kinds[index]}) · {when}  \n"
        f"share of all attention: **{heat.mean():.1%}** (an even split over the "
        f"{len(wm.tokens)} tokens would be {1 / len(wm.tokens):.1%})  \n"
        "where its weight lies: "
        + " · ".join(f"{name} {share:.0%}" for name, share in shares.items())
    )
    return [
        wordmaps.heat_overlay(wm.trace.image, heat),
        wordmaps.heat_overlay(run.x0[shown_x0], heat),
        wordmaps.small_multiples(wm, at, wm.trace.image),
        numbers,
    ]


def attention_run(pipe, settings) -> AttentionRun:
    """The model run with cross-attention capture, and the x0 of every step (for `run_engine`)."""
    wm = wordmaps.attention_maps(pipe, settings.prompt, **settings.trace_kwargs())
    return AttentionRun(wm, wm.trace.decode(what="x0"))


def run_attention(
    ctx: AppContext,
    prompt,
    negative_prompt,
    seed,
    steps,
    guidance,
    scheduler,
    token_choice,
    step_value,
    average,
    progress=gr.Progress(track_tqdm=True),  # noqa: B008 - how gradio injects progress
) -> dict[str, Any]:
    """Run the prompt; show the picked token (an unknown one falls back to the first word)."""
    settings = validate_run(prompt, negative_prompt, seed, steps, guidance, scheduler)
    step_value = validate_int_range("step", step_value, 1, int(CONTROLS["steps"].maximum))
    pipe = ctx.pipe()
    notes = prompt_notes(pipe, settings)
    run = run_engine(attention_run, pipe, settings)
    n_steps = len(run.x0)
    if step_value > n_steps and not average:
        notes.append(f"this run has {count(n_steps)}: showing step {n_steps}")
    step_value = min(step_value, n_steps)
    try:
        picked = wordmaps.find_token(run.maps, token_choice)
    except ValueError as e:
        picked = wordmaps.find_token(run.maps, None)
        notes.append(f"{e}; showing {run.maps.labels()[picked]}")
    picked = run.maps.labels()[picked]
    for n in notes:
        gr.Warning(n)
    shown = dict(zip(VIEWS, render(run, picked, step_value, bool(average)), strict=True))
    shown["numbers"] = notes_markdown(notes) + shown["numbers"]
    return {
        **shown,
        "token": gr.update(choices=run.maps.labels(), value=picked),
        "step": gr.update(maximum=n_steps, value=step_value),
        "state": run,
    }


def rerender(run: AttentionRun | None, token_choice, step_value, average) -> dict[str, Any]:
    """The stored run for another token or step (no model call)."""
    if run is None:
        return {}
    return dict(zip(VIEWS, render(run, token_choice, step_value, bool(average)), strict=True))


def create_tab(ctx: AppContext) -> None:
    """Build the Attention tab inside an open gr.Blocks."""
    explain(EXPLAIN)
    with gr.Row():
        with gr.Column(scale=3):
            inputs = [
                control_input("prompt", value=DEFAULT_PROMPT, elem_id="attn-prompt"),
                control_input("negative_prompt", elem_id="attn-negative"),
            ]
            for pair in (("seed", "steps"), ("guidance", "scheduler")):
                with gr.Row():
                    inputs += [control_input(n, elem_id=f"attn-{n}") for n in pair]
            run_btn = gr.Button("Run", variant="primary", elem_id="attn-run")
        with gr.Column(scale=2):
            token = gr.Dropdown(
                [],
                value="circle",
                allow_custom_value=True,
                label="Token",
                info="A word of the prompt (start, end and padding tokens are marked ⟨ ⟩).",
            )
            all_steps = gr.Checkbox(value=True, label="All steps (average)")
            step = gr.Slider(1, 25, value=25, step=1, label="Step", info="Used when not averaging.")
            numbers = gr.Markdown("Press Run.", elem_id="attn-numbers")
    with until_run("Press Run: the image with the token's map, and every word's map.") as later:
        with gr.Row():
            final = pixel_image("Final image + map", height=256)
            x0 = pixel_image("Predicted x0 at the step + map", height=256)
        words = pixel_gallery("Every word's map", columns=8)
    later.reveal_on(run_btn)
    views = dict(final=final, x0=x0, words=words, numbers=numbers)
    ctx.links["attention"] = {"components": dict(prompt=inputs[0], seed=inputs[2])}
    outputs = dict(**views, token=token, step=step, state=gr.State(None))
    run_btn.click(
        bind(run_attention, ctx, outputs=outputs),
        [*inputs, token, step, all_steps],
        list(outputs.values()),
        api_name="attention",
        preprocess=False,  # raw values: the handler checks each (the step slider's range changes)
        concurrency_limit=RUN_CONCURRENCY,
        concurrency_id="run",
        show_progress_on=[numbers],
    )
    for control in (token, step, all_steps):
        control.input(
            bind(rerender, outputs=views),
            [outputs["state"], token, step, all_steps],
            list(views.values()),
            api_visibility="private",
            preprocess=False,
            concurrency_limit=VIEW_CONCURRENCY,
            concurrency_id="views",
        )
