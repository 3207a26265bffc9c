"""The Generate tab: run a prompt, watch it stream step by step, then explore every view.

Events (api names in brackets):
  Run / Enter  -> pick the seed (a visible step: the seed used is shown) -> run [/generate]
  Stop         -> asks the engine to stop between steps and cancels the run event
  Save run     -> a zip of the trace [/save_run];  Open a saved run -> all views [/open_run]
Handlers only validate, call the engine (`explorer.engine.capture.trace`) and format.
"""

from __future__ import annotations

import queue
import random
import re
import tempfile
import threading
import time
from collections.abc import Iterator

import gradio as gr

from explorer.engine.capture import trace as run_trace
from explorer.engine.runzip import MAX_ZIP_BYTES, pack, unpack
from explorer.engine.tracefile import Trace
from explorer.inputs.controls import UI_SEED_MAX, validate_run
from explorer.studies import anatomy
from explorer.ui.common import (
    RUN_CONCURRENCY,
    AppContext,
    StopFlags,
    gpu,
    notes_markdown,
    pixel_image,
    prompt_notes,
    session_key,
    visitor_errors,
)
from explorer.ui.stepviews import RunView, StepViews, step_captions
from explorer.ui.widgets import control_input

TITLE = "Generate"
# Seconds between streamed updates (the first step is streamed at once): each update costs the
# server time the run itself needs (the preview gallery's pictures, under Python's one lock).
STREAM_EVERY = 0.2
GALLERY_EVERY = 0.5  # ...and the preview gallery (every picture so far) at most this often
DECODE_BATCH = 12  # pictures (x_t and x0) decoded together while the run goes on...
DECODE_TAIL = 4  # ...except in its last steps, decoded as they come

EXAMPLES = [  # prompt, negative prompt, seed, steps, guidance, scheduler
    ["a large red circle on a blue background", "", 0, 25, 7.5, "ddim"],
    ["a small yellow star in the top left on a black background", "", 1, 25, 7.5, "euler"],
    ["a green triangle, white background, center", "", 2, 10, 5.0, "dpmpp_2m"],
    ["a purple background with a large orange square at the bottom right", "", 3, 25, 7.5, "unipc"],
    ["a large white cross on a red background", "", 4, 1, 7.5, "ddim"],
]


@gpu
def _engine(pipe, settings, on_step, should_stop):
    """The model run (on a ZeroGPU Space this is the GPU function)."""
    return run_trace(
        pipe, settings.prompt, **settings.trace_kwargs(), on_step=on_step,
        should_stop=should_stop, preview=True,
    )  # fmt: skip


def stream_run(pipe, settings, stop: threading.Event) -> Iterator[tuple[bool, Trace]]:
    """Run the engine in a worker thread; yield (False, partial trace) as steps finish, then
    (True, final trace). Steps that arrive while the caller is busy are coalesced: the caller
    gets the latest. Setting `stop` ends the run at its next step."""
    updates: queue.Queue = queue.Queue()

    def work():
        try:
            updates.put(
                (True, _engine(pipe, settings, lambda t: updates.put((False, t)), stop.is_set))
            )
        except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread
            updates.put((None, e))

    threading.Thread(target=work, name="explorer-run", daemon=True).start()
    while True:
        item = updates.get()
        while not item[0] and not updates.empty():
            item = updates.get()
        if item[0] is None:
            raise item[1]
        yield item
        if item[0]:
            return


def pick_seed(seed, randomize: bool):
    """The seed to use: a fresh random one when 'randomize' is ticked, else the box's."""
    return random.randint(0, UI_SEED_MAX) if randomize else seed


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "unconditional"


def size_input(fixed: int | None) -> gr.components.Component:
    """The size control: shown fixed and disabled when the model makes one size only."""
    if fixed is None:
        return control_input("size")
    return gr.Number(value=fixed, label=f"Size: {fixed}×{fixed} pixels", interactive=False,
                     info=f"This model makes {fixed}×{fixed} images only.", elem_id="control-size")  # fmt: skip


def create_tab(ctx: AppContext) -> StepViews:
    """Build the Generate tab inside an open gr.Blocks; returns its step views."""
    flags = StopFlags()
    with gr.Row():
        with gr.Column(scale=3):
            prompt = control_input("prompt", lines=2)
            negative = control_input("negative_prompt")
            with gr.Row():
                seed = control_input("seed")
                randomize = gr.Checkbox(label="Randomize seed on Run", value=False)
            steps = control_input("steps")
            guidance = control_input("guidance")
            scheduler = control_input("scheduler")
            size = size_input(ctx.fixed_size)
            with gr.Row():
                run_btn = gr.Button("Run", variant="primary", elem_id="run-button")
                stop_btn = gr.Button("Stop", variant="stop", elem_id="stop-button")
        with gr.Column(scale=2):
            image = pixel_image("Final image", height=256, elem_id="final-image")
            status = gr.Markdown("Type a prompt and press Run.", elem_id="run-status")
            with gr.Accordion("Save this run, or open a saved one", open=False):
                with gr.Row():
                    save_btn = gr.Button("Save run", size="sm")
                    saved = gr.File(label="Saved run (zip)", interactive=False)
                opened = gr.File(label=f"Open a saved run (.zip, up to {MAX_ZIP_BYTES // 2**20} MB)",
                                 file_types=[".zip"])  # fmt: skip
    inputs = [prompt, negative, seed, steps, guidance, scheduler]
    gr.Examples(EXAMPLES, inputs=inputs, cache_examples=False, label="Prompts the Mini model knows")
    inputs.append(size)
    views = StepViews.build()
    outputs = [image, status, *views.outputs]

    @visitor_errors
    def generate(
        prompt,
        negative_prompt,
        seed,
        steps,
        guidance,
        scheduler,
        size=0,
        request: gr.Request = None,
        progress=gr.Progress(),  # noqa: B008 - how gradio injects progress
    ) -> Iterator[dict]:
        settings = validate_run(
            prompt, negative_prompt, seed, steps, guidance, scheduler, size, ctx.fixed_size
        )
        pipe = ctx.pipe()
        notes = prompt_notes(pipe, settings)
        for n in notes:
            gr.Warning(n)
        header = notes_markdown(notes)
        key = session_key(request)
        flag = flags.start(key)
        try:
            decoder = anatomy.StepDecoder(pipe.vae)
            last = last_gallery = -GALLERY_EVERY
            for final, item in stream_run(pipe, settings, flag):
                if final:
                    break
                now = time.perf_counter()
                if now - last >= STREAM_EVERY:
                    last = now
                    progress((item.num_steps, settings.steps), desc="denoising")
                    update = {
                        image: item.previews[-1],
                        status: f"{header}Step **{item.num_steps} of {settings.steps}** (preview decode)",
                    }
                    if now - last_gallery >= GALLERY_EVERY:
                        last_gallery = now
                        update[views.gallery_x0] = step_captions(item, item.previews)
                    yield update
                # full VAE decode beside the run: in batches, then step by step near the end,
                # so little is left to decode when the run ends
                near_end = settings.steps - item.num_steps <= DECODE_TAIL
                decoder.update(item, at_least=1 if near_end else DECODE_BATCH)
            view = RunView(item, decoder.finish(item))
            s = item.settings
            ran = (
                f"stopped after {s['steps_run']} of {s['steps']} steps"
                if s["cancelled"]
                else f"{s['steps']} steps"
            )
            yield dict(zip(outputs, [
                item.image,
                f"{header}Done: {ran} in {sum(item.seconds):.2f} s · seed **{s['seed']}** · {s['scheduler_class']}",
                *views.render(view),
            ]))  # fmt: skip
        finally:
            flags.finish(key, flag)

    def request_stop(request: gr.Request = None):
        flags.stop(session_key(request))

    @visitor_errors
    def save_run(view: RunView | None) -> str:
        if view is None:
            raise gr.Error("Nothing to save yet: run a prompt (or open a run) first.")
        s = view.trace.settings
        folder = tempfile.mkdtemp(prefix="explorer-save-")
        return str(pack(view.trace, folder, f"{_slug(s.get('prompt', ''))}-seed{s.get('seed', 0)}"))

    @visitor_errors
    def open_run(upload: str | None) -> list:
        if upload is None:
            return [gr.skip()] * len(outputs)
        trace = unpack(upload)
        view = RunView.of(trace, method="preview")
        s = trace.settings
        note = (
            f"Opened a saved run: “{s.get('prompt', '')}”, seed {s.get('seed')}, "
            f"{trace.num_steps} steps, {s.get('scheduler', '?')}. Steps are shown with the cheap "
            "linear preview (no model needed); the final image is the saved one."
        )
        return [trace.image, note, *views.render(view)]

    picked = dict(
        fn=pick_seed,
        inputs=[seed, randomize],
        outputs=[seed],
        api_visibility="private",
        queue=False,
    )
    running = dict(
        fn=generate,
        inputs=inputs,
        outputs=outputs,
        concurrency_limit=RUN_CONCURRENCY,
        concurrency_id="run",
        show_progress_on=[status],
    )  # noqa: E501
    click = run_btn.click(**picked)
    run_event = click.then(**running, api_name="generate")
    submit = prompt.submit(**picked)
    submit_event = submit.then(**running, api_visibility="private")
    stop_btn.click(
        request_stop,
        None,
        None,
        cancels=[run_event, submit_event],
        queue=False,
        api_visibility="private",
    )
    save_btn.click(save_run, [views.state], [saved], api_name="save_run",
                   concurrency_limit=RUN_CONCURRENCY, concurrency_id="files")  # fmt: skip
    opened.upload(
        open_run,
        [opened],
        outputs,
        api_name="open_run",
        concurrency_limit=RUN_CONCURRENCY,
        concurrency_id="run",
    )
    return views
