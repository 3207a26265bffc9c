"""The Generate tab: run a prompt, watch it stream step by step, then explore every view.

Events (api names in brackets):
  Run / Enter  -> pick the seed (a visible step: the seed used is shown) -> run, streaming every
                  view [/generate_views]; API callers: [/generate] (image, status, numbers only:
                  `explorer.ui.lean_api`)
  Stop         -> asks the engine to stop between steps; the run then shows the steps it ran
  Save run     -> a zip of the trace [/save_run];  Open a saved run -> all views [/open_run]
  Steps as a GIF -> each step's x_t beside its x0, animated [/animate_run]
  Report (HTML) -> the run in one self-contained page [/report_run]
Handlers only validate, call the engine (`explorer.engine.capture.trace`, through `run_engine`)
and format; their outputs are named in `OUTPUTS` and the step views' `RUN_VIEWS`/`STEP_VIEWS`.
"""

from __future__ import annotations

import contextlib
import contextvars
import queue
import random
import threading
import time
from collections.abc import Iterator

import gradio as gr

from explorer.engine.capture import trace as run_trace
from explorer.engine.models import model_key
from explorer.engine.runzip import MAX_ZIP_BYTES, unpack
from explorer.engine.tracefile import Trace
from explorer.inputs.controls import UI_SEED_MAX, RunSettings
from explorer.inputs.words import count
from explorer.studies import anatomy
from explorer.ui import stepterms
from explorer.ui.common import (
    RUN_CONCURRENCY,
    AppContext,
    StopFlags,
    bind,
    pixel_image,
    run_engine,
    session_key,
)
from explorer.ui.examples import EXAMPLES, THINGS_EXAMPLES, example_buttons
from explorer.ui.lean_api import prepare
from explorer.ui.lean_api import wire as wire_lean_api
from explorer.ui.notes import done_text, notes_markdown
from explorer.ui.share import animate_run, report_run, save_run
from explorer.ui.stepviews import RunView, StepViews, run_values, shown, step_captions
from explorer.ui.widgets import control_input

TITLE = "Generate"
# Seconds between streamed updates (the first step is streamed at once): each update costs the
# server time the run itself needs (the preview gallery's pictures, under Python's one lock).
STREAM_EVERY = 0.2
GALLERY_EVERY = 0.5  # ...and the preview gallery (every picture so far) at most this often
DECODE_BATCH = 12  # pictures (x_t and x0) decoded together while the run goes on...
DECODE_TAIL = 4  # ...except in its last steps, decoded as they come
OUTPUTS = ("image", "status")  # the tab's own outputs, before the step views


# ---- the run ----------------------------------------------------------------------------------


def _engine(pipe, settings: RunSettings, on_step, should_stop) -> Trace:
    """The model run: every step captured, with a cheap preview of its x0."""
    return run_trace(
        pipe,
        settings.prompt,
        **settings.trace_kwargs(),
        on_step=on_step,
        should_stop=should_stop,
        preview=True,
    )


def stream_run(
    pipe, settings: RunSettings, stop: threading.Event
) -> Iterator[tuple[Trace, RunView | None]]:
    """The run as it goes, for `run_engine`: (partial trace, None) as steps finish, then (final
    trace, its RunView). The engine runs on its own thread; steps that arrive while the caller is
    busy are coalesced (the caller gets the latest), and each is VAE-decoded beside the run, so
    little is left to decode when it ends. Setting `stop`, or closing this, ends the run at its
    next step."""
    updates: queue.Queue = queue.Queue()

    def work():
        try:
            final = _engine(pipe, settings, lambda t: updates.put((False, t)), stop.is_set)
            updates.put((True, final))
        except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread
            updates.put((None, e))

    inside = contextvars.copy_context()  # the thread runs inside `run_engine`, as its caller does
    threading.Thread(target=inside.run, args=(work,), name="explorer-run", daemon=True).start()
    decoder = anatomy.StepDecoder(pipe.vae)
    try:
        while True:
            final, item = updates.get()
            while final is False and not updates.empty():
                final, item = updates.get()
            if final is None:
                raise item
            if final:
                yield item, RunView(item, decoder.finish(item))
                return
            yield item, None
            # full VAE decode beside the run: in batches, then step by step near the end
            near_end = settings.steps - item.num_steps <= DECODE_TAIL
            decoder.update(item, at_least=1 if near_end else DECODE_BATCH)
    finally:
        stop.set()  # an abandoned run stops at its next step


# ---- handlers ---------------------------------------------------------------------------------


def generate(
    ctx: AppContext,
    flags: StopFlags,
    prompt,
    negative_prompt,
    seed,
    steps,
    guidance,
    scheduler,
    size=0,
    spacing="model",
    request: gr.Request = None,
    progress=gr.Progress(),  # noqa: B008 - how gradio injects progress
) -> Iterator[dict]:
    """Run the prompt; stream the preview and the step count, then every view."""
    started = time.perf_counter()
    values = (prompt, negative_prompt, seed, steps, guidance, scheduler, size, spacing)
    settings, pipe, notes = prepare(ctx, *values)
    for n in notes:
        gr.Warning(n)
    header = notes_markdown(notes)
    key = session_key(request)
    flag = flags.start(key)
    last = last_gallery = -GALLERY_EVERY
    try:
        with contextlib.closing(run_engine(stream_run, pipe, settings, flag)) as run:
            for item, view in run:
                if view is not None:
                    yield {
                        "image": item.image,
                        "status": header + done_text(item, time.perf_counter() - started),
                        **run_values(view),
                    }
                    return
                now = time.perf_counter()
                if now - last < STREAM_EVERY:
                    continue
                last = now
                progress((item.num_steps, settings.steps), desc="denoising")
                status = f"Step {item.num_steps} of {settings.steps} (preview decode)"
                update = {"image": item.previews[-1], "status": header + status, **shown()}
                if now - last_gallery >= GALLERY_EVERY:
                    last_gallery = now
                    update["gallery_x0"] = step_captions(item, item.previews)
                yield update
    finally:
        flags.finish(key, flag)


def pick_seed(seed, randomize: bool):
    """The seed to use: a fresh random one when 'randomize' is ticked, else the box's."""
    return random.randint(0, UI_SEED_MAX) if randomize else seed


def request_stop(flags: StopFlags, request: gr.Request = None) -> None:
    flags.stop(session_key(request))


def open_run(ctx: AppContext, upload: str | None) -> dict:
    """A saved run in every view: its steps decoded by this app's VAE when the run was made with
    the model served here (as the live run showed them), else with the linear preview."""
    if upload is None:
        return {}
    trace = unpack(upload)
    s = trace.settings
    pipe = ctx.pipe()
    key = model_key(s.get("model"))  # None: a pipeline built in code, no model of ours
    same = key is not None and key == model_key(pipe.name_or_path)
    if same and trace.latents.shape[1] == pipe.vae.config.latent_channels:
        view = run_engine(RunView.of, trace.attach_decoder(pipe.vae))
        how = "Steps are decoded by this model's VAE, as the live run showed them"
    else:
        view = RunView.of(trace, method="preview")
        how = (
            f"It was made with {s.get('model') or 'another model'}, not the model served here, "
            "so its steps are shown with the cheap linear preview"
        )
    note = (
        f"Opened a saved run: “{s.get('prompt', '')}”, seed {s.get('seed')}, "
        f"{count(trace.num_steps)}, {s.get('scheduler', '?')}. {how}; the final image is the "
        f"saved one.{stepterms.opened_note(trace)}"
    )
    return {"image": trace.image, "status": note, **run_values(view)}


def show_run(trace: Trace) -> dict:
    """A finished run (the Tour's) in every view, decoded by its VAE (call inside `run_engine`)."""
    s = trace.settings
    note = (
        f"The tour's run: “{s['prompt']}”, seed {s['seed']}, {count(trace.num_steps)}, "
        f"{s['scheduler']}, guidance {s['guidance']:g}."
    )
    return {"image": trace.image, "status": note, **run_values(RunView.of(trace))}


# ---- layout and wiring ------------------------------------------------------------------------


def size_input(fixed: int | None) -> gr.components.Component:
    """The size control: shown fixed and disabled when the model makes one size only."""
    if fixed is None:
        return control_input("size")
    return gr.Number(
        value=fixed,
        label=f"Size: {fixed}×{fixed} pixels",
        interactive=False,
        info=f"This model makes {fixed}×{fixed} images only.",
        elem_id="control-size",
    )


def _controls(ctx: AppContext) -> dict:
    """The run's settings and buttons, by name (the settings in /generate's parameter order)."""
    c = dict(prompt=control_input("prompt", lines=2), negative=control_input("negative_prompt"))
    with gr.Row():
        c["seed"] = control_input("seed")
        c["randomize"] = gr.Checkbox(label="Randomize seed on Run", value=False)
    for name in ("steps", "guidance", "scheduler"):
        c[name] = control_input(name)
    c["size"] = size_input(ctx.fixed_size)
    c["spacing"] = control_input("spacing")
    with gr.Row():
        c["run"] = gr.Button("Run", variant="primary", elem_id="run-button")
        c["stop"] = gr.Button("Stop", variant="stop", elem_id="stop-button")
    return c


def _results() -> dict:
    """The final image, the status and the save / open files, by name."""
    r = dict(
        image=pixel_image("Final image", height=256, elem_id="final-image"),
        status=gr.Markdown("Type a prompt and press Run.", elem_id="run-status"),
    )
    with gr.Accordion("Save this run, or open a saved one", open=False):
        with gr.Row():
            r["save"] = gr.Button("Save run", size="sm")
            r["saved"] = gr.File(label="Saved run (zip)", interactive=False)
        with gr.Row():
            r["animate"] = gr.Button("Steps as a GIF", size="sm")
            r["gif"] = gr.File(label="x_t beside x0, step by step (GIF)", interactive=False)
        with gr.Row():
            r["report"] = gr.Button("Report (HTML)", size="sm")
            r["html"] = gr.File(label="The run in one page that opens offline", interactive=False)
        r["opened"] = gr.File(
            label=f"Open a saved run (.zip, up to {MAX_ZIP_BYTES // 2**20} MB)",
            file_types=[".zip"],
        )
    return r


def create_tab(ctx: AppContext) -> StepViews:
    """Build the Generate tab inside an open gr.Blocks; returns its step views."""
    flags = StopFlags()
    with gr.Row():
        with gr.Column(scale=3):
            c = _controls(ctx)
        with gr.Column(scale=2):
            r = _results()
    inputs = [c[n] for n in ("prompt", "negative", "seed", "steps", "guidance", "scheduler")]
    example_buttons(THINGS_EXAMPLES if ctx.embedded == "mini-things" else EXAMPLES, inputs)
    inputs += [c["size"], c["spacing"]]
    views = StepViews.build()
    wire_lean_api(ctx, inputs, views.state)  # /generate: image, status, numbers
    outputs = {**{n: r[n] for n in OUTPUTS}, **views.components}
    ctx.links["generate"] = {  # the Tour opens its run here, in every view
        "components": {**outputs, "prompt": c["prompt"], "seed": c["seed"]},
        "show": show_run,
    }
    picked = dict(
        fn=bind(pick_seed),
        inputs=[c["seed"], c["randomize"]],
        outputs=[c["seed"]],
        api_visibility="private",
        queue=False,
    )
    running = dict(
        fn=bind(generate, ctx, flags, outputs=outputs),
        inputs=inputs,
        outputs=list(outputs.values()),
        concurrency_limit=RUN_CONCURRENCY,
        concurrency_id="run",
        show_progress_on=[r["status"]],
    )
    c["run"].click(**picked).then(**running, api_name="generate_views")
    c["prompt"].submit(**picked).then(**running, api_visibility="private")
    # Stop only asks: the engine ends the run at its next step, and the run's own event then
    # shows what it made ("stopped after 31 of 100 steps", every view of the steps run)
    c["stop"].click(bind(request_stop, flags), None, None, queue=False, api_visibility="private")
    shares = (
        ("save", save_run, "saved"),
        ("animate", animate_run, "gif"),
        ("report", report_run, "html"),
    )
    for button, fn, file in shares:
        r[button].click(  # the run shown, as a file: [/save_run], [/animate_run], [/report_run]
            bind(fn),
            [views.state],
            [r[file]],
            api_name=fn.__name__,
            concurrency_limit=RUN_CONCURRENCY,
            concurrency_id="files",
        )
    r["opened"].upload(
        bind(open_run, ctx, outputs=outputs),
        [r["opened"]],
        list(outputs.values()),
        api_name="open_run",
        concurrency_limit=RUN_CONCURRENCY,
        concurrency_id="run",
    )
    return views
