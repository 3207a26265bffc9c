"""Every model call a handler makes runs inside `run_engine` (on a ZeroGPU Space, the GPU
function), and a handler's errors reach the visitor as they should: bad input in its own words,
anything else as a one-line internal error, logged on the server."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import gradio as gr
import pytest
from gradio_client import handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from explorer.engine.capture import trace
from explorer.inputs.controls import ControlError
from explorer.studies import clip_scores
from explorer.studies.trajectories import map_runs
from explorer.ui import clip_handlers, experiment_handlers
from explorer.ui.common import bind, in_engine, internal_error, run_engine
from explorer.ui.layout import TABS
from explorer.ui.tabs import sketch

pytestmark = pytest.mark.slow
BASE = dict(prompt="a red circle", seed=0, steps=2, guidance=7.5, scheduler="ddim")
PICTURE = dict(how="pad", prompt="a red circle", seed=0)
# Each endpoint with small valid inputs ("picture": an uploaded PNG), and whether it runs a model.
CALLS = {
    "/generate": (dict(**BASE, negative_prompt=""), True),
    "/generate_views": (dict(**BASE, negative_prompt=""), True),
    "/open_run": (dict(), True),  # the saved run of /generate: the same model's VAE decodes it
    "/compare_steps": (dict(**BASE, negative="", steps_list="1, 2"), True),
    "/scale_embedding": (dict(**BASE, negative="", factors="1, 2", rule="multiply"), True),
    "/compare_guidance": (dict(**BASE, negative="", scales="1, 2"), True),
    "/compare_schedulers": (dict(**BASE, negative="", names="ddim", curve="1"), True),
    "/compare_seeds": (dict(**BASE, negative="", seeds="0, 1"), True),
    "/grid": (
        dict(**BASE, negative="", row_axis="steps", row_text="1", col_axis="seed", col_text="0"),
        True,
    ),
    "/attention": (
        dict(**BASE, negative_prompt="", token_choice="circle", step_value=1, average=True),
        True,
    ),
    "/tokens": (dict(a="a red circle", b="a blue square"), True),
    "/similarity": (dict(text="a red circle\na blue square"), True),
    "/image_text": (
        dict(source="Mini dataset (held-out)", count=2, captions_text="", files=None),
        True,
    ),
    "/norms": (dict(text="a red circle\na blue square"), True),
    "/maps": (
        dict(
            prompts_text="a red circle",
            seeds_text="0, 1",
            steps=2,
            what="x0",
            method="pca",
            map_seed=0,
        ),
        True,
    ),
    "/sketch": (dict(PICTURE, sketch=None, upload="picture", strength=1.0, steps=2), True),
    "/strength_sweep": (dict(PICTURE, sketch=None, upload="picture", strengths_text="1"), True),
    "/forward": (dict(PICTURE, upload="picture", timesteps_text="0, 500"), True),
    "/vae": (dict(PICTURE, upload=None, channel="0", scale=0.0), True),  # generates its picture
}


@pytest.fixture(scope="module")
def watched(mini_pipe):
    """The Mini pipe with every model watched: each forward records whether it ran inside
    `run_engine` (the hooks only look, and are removed after the module)."""
    calls: list[tuple[str, bool]] = []
    clip = clip_scores.find_clip(mini_pipe).model  # cached: the very CLIP the handlers use
    models = {
        "unet": mini_pipe.unet,
        "vae encoder": mini_pipe.vae.encoder,
        "vae decoder": mini_pipe.vae.decoder,
        "text encoder": mini_pipe.text_encoder,
        "clip text": clip.text_model,
        "clip vision": clip.vision_model,
    }
    hooks = [
        module.register_forward_pre_hook(lambda *_, name=name: calls.append((name, in_engine())))
        for name, module in models.items()
    ]
    try:
        yield mini_pipe, calls
    finally:
        for h in hooks:
            h.remove()


@pytest.fixture(scope="module")
def client(watched):
    from conftest import tab_client

    with tab_client(watched[0], TABS) as c:
        yield c


@pytest.fixture(scope="module")
def picture(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("pic") / "red.png"
    Image.new("RGB", (80, 48), "red").save(path)
    return str(path)


def test_the_watch_sees_a_call_outside_run_engine(watched):
    pipe, calls = watched
    calls.clear()
    ids = pipe.tokenizer("a red circle", return_tensors="pt").input_ids
    pipe.text_encoder(ids)
    run_engine(pipe.text_encoder, ids)
    assert calls == [("text encoder", False), ("text encoder", True)]


@pytest.mark.parametrize("endpoint", list(CALLS))
def test_every_endpoint_runs_its_models_inside_run_engine(client, watched, picture, endpoint):
    _, calls = watched
    inputs, runs_a_model = CALLS[endpoint]
    if endpoint == "/open_run":
        client.predict(**CALLS["/generate"][0], api_name="/generate")
        inputs = dict(upload=handle_file(client.predict(api_name="/save_run")))
    inputs = {k: handle_file(picture) if v == "picture" else v for k, v in inputs.items()}
    calls.clear()
    client.predict(**inputs, api_name=endpoint)
    outside = sorted({name for name, inside in calls if not inside})
    assert outside == [], f"{endpoint} ran {outside} outside run_engine"
    assert bool(calls) == runs_a_model, calls


def test_the_views_opened_from_a_run_decode_inside_run_engine(watched):
    """The private events (a picture clicked, the map's step moved) decode with the VAE."""
    pipe, calls = watched
    run = trace(pipe, "a red circle", steps=2)
    runs = map_runs([run], what="x0", method="pca")
    calls.clear()
    experiment_handlers.open_cell([run], SimpleNamespace(index=0))
    sketch.open_run([run], SimpleNamespace(index=1))
    clip_handlers.show_step(runs, 1)
    assert calls and all(inside for _, inside in calls), calls


# ---- errors -------------------------------------------------------------------------------


def fails_inside(error: Exception):
    """A handler whose engine call raises `error`."""

    def engine():
        raise error

    def handler(prompt):
        return run_engine(engine)

    return bind(handler)


def test_an_internal_error_is_one_line_for_the_visitor_and_logged(caplog):
    handler = fails_inside(ValueError("mat1 and mat2 shapes cannot be multiplied (2x4 and 8x4)"))
    with caplog.at_level(logging.ERROR, logger="explorer.ui"):
        with pytest.raises(gr.Error) as info:
            handler("a red circle")
    assert info.value.message == internal_error(ValueError())
    assert "Internal error (ValueError)" in info.value.message and "mat1" not in info.value.message
    logged = [r for r in caplog.records if r.name == "explorer.ui"]
    assert logged and logged[0].exc_info and "mat1 and mat2" in str(logged[0].exc_info[1])


def test_bad_input_is_shown_in_its_own_words(caplog):
    handler = fails_inside(ControlError("steps must be between 1 and 100, got 0"))
    with caplog.at_level(logging.ERROR, logger="explorer.ui"):
        with pytest.raises(gr.Error) as info:
            handler("a red circle")
    assert info.value.message == "steps must be between 1 and 100, got 0"
    assert not [r for r in caplog.records if r.name == "explorer.ui"]


def test_an_endpoint_hides_an_internal_error(client, picture, monkeypatch, caplog):
    from explorer.studies import forward

    def broken(*args, **kwargs):
        raise RuntimeError("CUDA error: device-side assert triggered")

    monkeypatch.setattr(forward, "forward_process", broken)
    with caplog.at_level(logging.ERROR, logger="explorer.ui"):
        with pytest.raises(AppError) as info:
            client.predict(
                **dict(PICTURE, upload=handle_file(picture), timesteps_text="0"),
                api_name="/forward",
            )
    message = str(info.value)
    assert "Internal error (RuntimeError)" in message and "CUDA" not in message
    assert "Traceback" not in message
    assert any("device-side assert" in str(r.exc_info[1]) for r in caplog.records if r.exc_info)
