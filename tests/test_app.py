"""The web app end to end through gradio_client, against an app launched in the test."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

import app
from explorer.ui.layout import launch_options

pytestmark = pytest.mark.slow
STEPS = 5


@pytest.fixture(scope="module")
def client():
    demo, ctx = app.build()
    ctx.pipe()  # load before the first request
    demo.queue().launch(
        prevent_thread_lock=True, server_name="127.0.0.1", quiet=True, **launch_options()
    )
    try:
        yield Client(demo.local_url, verbose=False)
    finally:
        demo.close()


def generate(client, **kwargs):
    return client.predict(**{"steps": STEPS, **kwargs}, api_name="/generate_views")


def test_generate_returns_the_final_image_first(client):
    out = generate(client, prompt="a large red circle on a blue background", seed=3)
    with Image.open(out[0]) as im:
        assert im.size == (64, 64)
    assert "Done: 5 steps" in out[1] and "seed 3 ·" in out[1]


def test_api_parameters_have_defaults(client):
    info = client.view_api(return_format="dict", print_info=False)
    params = info["named_endpoints"]["/generate"]["parameters"]
    names = [p["parameter_name"] for p in params]
    assert names == [
        "prompt",
        "negative_prompt",
        "seed",
        "steps",
        "guidance",
        "scheduler",
        "size",
        "spacing",
    ]
    assert all(p["parameter_has_default"] for p in params)


def test_same_settings_same_image(client):
    a = generate(client, prompt="a green star", seed=11, scheduler="euler")
    b = generate(client, prompt="a green star", seed=11, scheduler="euler")
    assert Path(a[0]).read_bytes() == Path(b[0]).read_bytes()


def test_updates_stream_step_by_step(client):
    """Steps stream as they come, at most every `STREAM_EVERY` seconds: slowed to 0.15 s a step
    here, so that an 8-step run streams several of them on any machine."""
    import time

    from explorer.engine.models import load_pipeline

    slow = load_pipeline().unet.register_forward_pre_hook(lambda *a: time.sleep(0.15))
    try:
        job = client.submit(prompt="a blue square", steps=8, api_name="/generate_views")
        job.result()
    finally:
        slow.remove()
    statuses = [o[1] for o in job.outputs()]
    steps = [int(m.group(1)) for s in statuses if (m := re.search(r"Step (\d+) of 8", s))]
    assert len(steps) >= 2, statuses
    assert steps == sorted(set(steps)) and steps[0] >= 1
    assert "Done: 8 steps" in statuses[-1]


def test_bad_input_gets_a_clear_message(client):
    with pytest.raises(AppError, match="steps must be between 1 and 100"):
        generate(client, steps=0)
    with pytest.raises(AppError, match="unknown scheduler 'fast'"):
        generate(client, scheduler="fast")
    out = generate(client, prompt="")  # allowed: unconditional, and said so
    assert "unconditionally" in out[1]


def test_saved_run_reopens(client, tmp_path):
    live = generate(client, prompt="a small yellow star", seed=5)
    saved = client.predict(api_name="/save_run")
    with zipfile.ZipFile(saved) as z:
        names = {Path(n).name for n in z.namelist()}
    assert {"trace.json", "tensors.safetensors", "image.png"} <= names
    out = client.predict(handle_file(saved), api_name="/open_run")
    assert "Opened a saved run" in out[1] and "a small yellow star" in out[1]
    with Image.open(out[0]) as im:
        assert im.size == (64, 64)
    gallery_x0 = out[5]
    assert len(gallery_x0) == STEPS
    # made with the model served here: decoded by its VAE, as the live run showed it
    assert "decoded by this model's VAE" in out[1]
    for then, now in zip(live[5], gallery_x0):
        with Image.open(then["image"]) as a, Image.open(now["image"]) as b:
            diff = np.abs(np.asarray(a, np.int16) - np.asarray(b, np.int16))
            assert diff.mean() < 0.5 and diff.max() <= 2


def test_malformed_upload_gets_a_clear_message(client, tmp_path):
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"this is not a zip")
    with pytest.raises(AppError, match="not a zip file"):
        client.predict(handle_file(str(junk)), api_name="/open_run")
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as z:
        z.writestr("../trace.json", "{}")
    with pytest.raises(AppError, match="unexpected path"):
        client.predict(handle_file(str(evil)), api_name="/open_run")


def test_a_cancelled_run_frees_its_worker(client):
    job = client.submit(prompt="a red circle", steps=100, api_name="/generate_views")
    for _ in job:  # wait for the first streamed step, then cancel
        break
    job.cancel()
    out = generate(client, prompt="a white cross", seed=2)
    assert "Done: 5 steps" in out[1]
