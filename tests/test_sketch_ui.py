"""The Sketch, Forward process and Latent space tabs end to end through gradio_client (tiny
pipe)."""

from __future__ import annotations

import pytest
from PIL import Image, ImageDraw

pytestmark = pytest.mark.slow
TABS = ["explorer.ui.tabs.sketch", "explorer.ui.tabs.forward", "explorer.ui.tabs.vae"]


@pytest.fixture(scope="module")
def client(tiny_pipe):
    from conftest import tab_client

    with tab_client(tiny_pipe, TABS) as c:
        yield c


@pytest.fixture(scope="module")
def disc(tmp_path_factory):
    """A red disc on white, 200×100 (wide: it must be fitted to 64×64)."""
    im = Image.new("RGB", (200, 100), "white")
    ImageDraw.Draw(im).ellipse((70, 20, 130, 80), fill="red")
    path = tmp_path_factory.mktemp("up") / "disc.png"
    im.save(path)
    return str(path)


def sketch_args(upload, **kw):
    from gradio_client import handle_file

    args = dict(
        sketch=None,
        upload=handle_file(upload) if upload else None,
        how="pad",
        prompt="a red circle",
        strength=0.5,
        steps=4,
        guidance=7.5,
        seed=0,
        scheduler="ddim",
    )
    return {**args, **kw}


def test_endpoints_exist(client):
    names = set(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
    assert {"/sketch", "/strength_sweep", "/forward", "/vae"} <= names


def test_sketch_runs_only_the_steps_strength_asks(client, disc):
    out = client.predict(**sketch_args(disc), api_name="/sketch")
    start, final, status = out[:3]
    with Image.open(start) as im:
        assert im.size == (64, 64)
    assert final and "ran 2 of 4 steps " in status and "by pad" in status
    step, _architecture, latents, x0 = out[3:7]  # the step views (their State is not in the API)
    assert step["maximum"] == step["value"] == 2  # one slider position per step run
    assert [c["caption"] for c in latents] == [
        "start · your picture, noised",
        "after step 1",
        "after step 2",
    ]
    assert len(x0) == 2


def test_strength_sweep_side_by_side(client, disc):
    args = sketch_args(disc)
    del args["strength"]
    gallery, status = client.predict(
        **args, strengths_text="0.25, 0.5, 1", api_name="/strength_sweep"
    )
    assert [g["caption"] for g in gallery] == [
        "your picture",
        "strength 0.25 · 1 step",
        "strength 0.5 · 2 steps",
        "strength 1 · 4 steps",
    ]
    assert "3 runs, seed 0" in status


@pytest.mark.parametrize(
    "upload_bytes, kw, message",
    [
        (None, {}, "The sketch is empty"),
        (b"", {}, r"The file is empty \(0 bytes\)"),
        (b"not a picture", {}, "not a picture this app can read"),
        ("disc", {"strength": 0.1}, "runs no step"),
    ],
)
def test_bad_inputs_are_told_in_words(client, disc, tmp_path, upload_bytes, kw, message):
    from gradio_client.exceptions import AppError

    upload = disc if upload_bytes == "disc" else None
    if isinstance(upload_bytes, bytes):
        upload = tmp_path / "bad.png"
        upload.write_bytes(upload_bytes)
        upload = str(upload)
    with pytest.raises(AppError, match=message):
        client.predict(**sketch_args(upload, **kw), api_name="/sketch")


def test_forward_endpoint(client, disc):
    from gradio_client import handle_file

    out = client.predict(
        handle_file(disc), "pad", "a red circle", "0, 500, 999", 1, api_name="/forward"
    )
    status, _clean, table, latents, decoded, blurred, masked = out
    assert "3 timesteps of 1000" in status and "| 500 |" in table
    assert len(latents) == len(decoded) == len(blurred) == len(masked) == 3
    assert "masked" in masked[2]["caption"]


def test_vae_endpoint(client, disc):
    from gradio_client import handle_file

    out = client.predict(handle_file(disc), "crop", "a red circle", 0, "1", 0.0, api_name="/vae")
    status, original, reconstruction, edited, channels, numbers = out
    assert all([original, reconstruction, edited, channels])
    assert "48× fewer" in numbers and "PSNR" in numbers and "channel 1 × 0" in numbers
    assert "by crop" in status
