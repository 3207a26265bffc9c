"""The CLIP & embeddings tab: how the text reaches the image, with the model's own numbers.

    [/tokens] [/similarity] [/image_text] [/norms] [/maps]

Sub-tabs: tokens and the token x token cosines of two prompts; prompt x prompt cosines and a map
of the prompts; the image x text matrix of the CLIP paper (trained and untrained Mini CLIP side by
side); vector lengths before and after normalisation; the latent paths of several runs on one
UMAP / PCA map. The handlers are in `explorer.ui.clip_handlers`; this module lays out and wires.
"""

from __future__ import annotations

import gradio as gr

from explorer.inputs.controls import CONTROLS
from explorer.inputs.uploads import STATED
from explorer.ui import clip_format as fmt
from explorer.ui.clip_handlers import (
    MAP_GUIDANCE,
    MAP_STEPS,
    MAX_MAP_PROMPTS,
    MAX_MAP_SEEDS,
    MAX_PAIRS,
    MAX_PROMPTS,
    SOURCES,
    image_text,
    norms,
    prompt_lines,  # noqa: F401 - re-exported: the tab's input rule, tested with the tab
    run_map,
    show_step,
    similarity,
    tokens,
    untrained_twin,  # noqa: F401 - re-exported
)
from explorer.ui.common import (
    RUN_CONCURRENCY,
    VIEW_CONCURRENCY,
    AppContext,
    bind,
    explain,
    pixel_gallery,
)
from explorer.ui.pending import until_run
from explorer.ui.widgets import passthrough

TITLE = "CLIP & embeddings"
INTRO = (
    "The prompt reaches the image through CLIP's text encoder. These views show its numbers: "
    "the tokens, how alike vectors are (cosine similarity: 1 = same direction, whatever the "
    "length), how CLIP matches images to captions, and maps of the runs' paths."
)
DEFAULT_PROMPTS = "\n".join(
    [
        "a large red circle on a blue background",
        "a small red circle on a blue background",
        "a large green star on a white background",
        "a yellow square, black background, top left",
    ]
)
DEFAULT_MAP_PROMPTS = (
    "a large red circle on a blue background\na small yellow star on a black background"
)


def _run_area(button: str, left: str, right: str) -> tuple:
    """A Run button, then its outputs: a note and two plots, one above the other (a matrix of
    captions needs the width)."""
    run = gr.Button(button, variant="primary")
    note = gr.Markdown()
    with until_run(f"Press {button}: its two charts appear here.") as later:
        plots = [gr.Plot(label=left), gr.Plot(label=right)]
    later.reveal_on(run)
    return run, [note, *plots]


def _prompts_box(most: int) -> gr.Textbox:
    return gr.Textbox(label=f"Prompts (one a line, up to {most})", value=DEFAULT_PROMPTS, lines=4)


# Each sub-tab below: (its inputs, its Run button, its outputs).


def _tokens_tab() -> tuple:
    with gr.Tab("Tokens", id="clip-tokens"):
        explain(fmt.NOTES["tokens"])
        with gr.Row():
            a = gr.Textbox(label="Prompt A", value=CONTROLS["prompt"].default)
            b = gr.Textbox(label="Prompt B", value="a large red circle on a white background")
        return [a, b], *_run_area("Show tokens", "token norms", "token × token cosine")


def _similarity_tab() -> tuple:
    with gr.Tab("Prompt similarity", id="clip-similarity"):
        explain(fmt.NOTES["similarity"])
        prompts = _prompts_box(MAX_PROMPTS)
        return [prompts], *_run_area("Compare prompts", "prompt × prompt cosine", "prompt map")


def _image_text_tab() -> tuple:
    with gr.Tab("Image × text", id="clip-image-text"):
        explain(fmt.NOTES["image_text"])
        with gr.Row():
            source = gr.Radio(SOURCES, value=SOURCES[0], label="Images")
            count = passthrough(
                gr.Slider(2, MAX_PAIRS, value=8, step=1, label="How many dataset pairs")
            )
        captions = gr.Textbox(
            label="Captions (one a line; empty = the dataset's own)", lines=3, value=""
        )
        files = gr.File(
            label=f"Images to upload (at most {MAX_PAIRS}; {STATED})",
            file_count="multiple",
            file_types=["image"],
        )
        area = _run_area("Score images against captions", "trained", "untrained")
        return [source, count, captions, files], *area


def _norms_tab() -> tuple:
    with gr.Tab("Norms", id="clip-norms"):
        explain(fmt.NOTES["norms"])
        prompts = _prompts_box(MAX_PROMPTS)
        return [prompts], *_run_area("Measure", "text vectors", "image vectors")


def _maps_tab() -> tuple:
    """The maps sub-tab; its outputs by name (as `run_map` returns them)."""
    with gr.Tab("Maps", id="clip-maps"):
        explain(fmt.NOTES["maps"])
        inputs = [
            gr.Textbox(
                label=f"Prompts (one a line, up to {MAX_MAP_PROMPTS})",
                value=DEFAULT_MAP_PROMPTS,
                lines=2,
            )
        ]
        with gr.Row():
            inputs += [
                gr.Textbox(label=f"Seeds (up to {MAX_MAP_SEEDS})", value="0, 1, 2, 3"),
                passthrough(gr.Slider(*MAP_STEPS, value=25, step=1, label="Steps")),
                passthrough(gr.Slider(*MAP_GUIDANCE, value=7.5, step=0.5, label="Guidance")),
            ]
        with gr.Row():
            inputs += [
                gr.Radio(
                    ["latents", "x0"],
                    value="latents",
                    label="Points",
                    info="latents: x_t at each step · x0: the clean latent each step predicts",
                ),
                gr.Radio(["umap", "pca"], value="umap", label="Map"),
                passthrough(gr.Number(value=0, precision=0, label="Map seed (UMAP random_state)")),
            ]
        run = gr.Button("Run and map", variant="primary")
        note = gr.Markdown()
        with until_run("Press Run and map: every run's path on one map appears here.") as later:
            outputs = dict(
                note=note,
                plot=gr.Plot(label="map"),
                step=gr.Slider(0, 50, value=0, step=1, label="Step to show"),
                images=pixel_gallery("Predicted image (x0) of every run at that step", columns=8),
                state=gr.State(None),
            )
        later.reveal_on(run)
    return inputs, run, outputs


# The sub-tabs with a note and two plots: layout, handler, api name, concurrency (limit, id).
AREAS = [
    (_tokens_tab, tokens, "tokens", (RUN_CONCURRENCY, "run")),
    (_similarity_tab, similarity, "similarity", (RUN_CONCURRENCY, "run")),
    (_image_text_tab, image_text, "image_text", (1, "clip")),
    (_norms_tab, norms, "norms", (RUN_CONCURRENCY, "run")),
]


def create_tab(ctx: AppContext) -> None:
    """Build the CLIP & embeddings tab inside an open gr.Blocks."""
    explain(INTRO)
    with gr.Tabs() as sub_tabs:
        areas = [(layout(), fn, api, limit) for layout, fn, api, limit in AREAS]
        map_inputs, map_run, map_outputs = _maps_tab()
    ctx.links["clip"] = {"components": dict(tabs=sub_tabs)}  # the Tour's "open in its tab"
    for (inputs, run, outputs), fn, api_name, (limit, group) in areas:
        run.click(
            bind(fn, ctx),
            inputs,
            outputs,
            api_name=api_name,
            concurrency_limit=limit,
            concurrency_id=group,
        )
    map_run.click(
        bind(run_map, ctx, outputs=map_outputs),
        map_inputs,
        list(map_outputs.values()),
        api_name="maps",
        concurrency_limit=1,
        concurrency_id="clip",
    )
    shown = {name: map_outputs[name] for name in ("plot", "images")}
    step = map_outputs["step"]
    gr.on(  # typing into the step box fires `input` (`release` only on blur or a drag's end)
        [step.input, step.release],
        bind(show_step, outputs=shown),
        [map_outputs["state"], step],
        list(shown.values()),
        api_visibility="private",
        trigger_mode="always_last",
        concurrency_limit=VIEW_CONCURRENCY,
        concurrency_id="views",
    )
