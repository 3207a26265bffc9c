"""Picture inputs shared by the Sketch, Forward process and Latent space tabs.

An uploaded file reaches the handler as a path, unopened: gradio's own image preprocessing would
open it with PIL before any handler runs, so a zero-byte file or a decompression bomb would fail
there with a traceback. `explorer.inputs.uploads` opens it instead and answers every bad case in
words.
"""

from __future__ import annotations

import gradio as gr

from explorer.engine.capture import trace
from explorer.engine.models import image_size
from explorer.inputs import uploads as images
from explorer.inputs.controls import CONTROLS, validate_int, validate_run
from explorer.inputs.uploads import FIT_WORDS, Loaded
from explorer.inputs.words import count
from explorer.ui.common import run_engine
from explorer.ui.notes import notes_markdown, prompt_notes
from explorer.ui.widgets import control_input


def image_upload(label: str, **kwargs) -> gr.Image:
    """An image upload whose value reaches the handler as a file path (or None), unopened; its
    label states what it takes."""
    label = f"{label} ({images.STATED})"
    component = gr.Image(label=label, type="filepath", sources=["upload", "clipboard"], **kwargs)
    component.preprocess = lambda payload: getattr(payload, "path", None)  # instance override
    return component


def picture_inputs() -> tuple[gr.Image, gr.Radio]:
    """The upload and its fit choice (for tabs that fall back to a generated picture)."""
    upload = image_upload("A picture (none: one is generated from the prompt)", height=200)
    return upload, fit_choice()


def fallback_inputs(tab: str) -> tuple[gr.Textbox, gr.Number]:
    """Prompt and seed of the picture generated when nothing is uploaded (ids `{tab}-prompt`...)."""
    info = "Used only when no picture is uploaded."
    prompt = control_input("prompt", info=info, elem_id=f"{tab}-prompt")
    return prompt, control_input("seed", elem_id=f"{tab}-seed")


# What the API takes for an omitted upload, fit, prompt or seed (the controls' own defaults): with
# no upload the tabs generate their picture from the prompt
NO_UPLOAD = dict(
    upload=None, how="pad", prompt=CONTROLS["prompt"].default, seed=CONTROLS["seed"].default
)


def fit_choice() -> gr.Radio:
    """Pad or crop, stated in full beside the choice."""
    return gr.Radio(
        list(FIT_WORDS),
        value=NO_UPLOAD["how"],
        label="Fit uploads to the model's size",
        info=" · ".join(f"{k}: {v}" for k, v in FIT_WORDS.items()),
    )


def model_size(pipe) -> tuple[int, int]:
    """(width, height) of the pictures the pipeline makes by default."""
    height, width = image_size(pipe)
    return width, height


def load(pipe, upload: str | None, how: str) -> Loaded:
    """An upload fitted to the model's size (`UploadError` in words otherwise)."""
    return images.load_upload(upload, model_size(pipe), _how(how))


def load_sketch(pipe, sketch, upload: str | None, how: str) -> Loaded:
    """The upload when there is one, else the sketch."""
    if upload:
        return load(pipe, upload, how)
    return images.from_sketch(sketch, model_size(pipe), _how(how))


def _how(how) -> str:
    if how not in FIT_WORDS:
        raise images.UploadError(f"fit must be one of: {', '.join(FIT_WORDS)}; got {how!r}")
    return how


def notes_text(loaded: Loaded) -> str:
    """What was done to the picture, one line each (empty when nothing)."""
    return "".join(f"ℹ {n}  \n" for n in loaded.notes)


def picture(pipe, upload: str | None, how: str, prompt, seed) -> tuple:
    """(the picture, notes) from an upload, or with none a picture generated from the prompt."""
    if upload:
        loaded = load(pipe, upload, how)
        return loaded.image, notes_text(loaded)
    s = validate_run(prompt, seed=validate_int("seed", seed))
    image = run_engine(trace, pipe, s.prompt, seed=s.seed).image
    notes = notes_markdown(prompt_notes(pipe, s))
    return image, f"{notes}No upload: generated “{s.prompt}” (seed {s.seed}, {count(s.steps)}).  \n"
