"""The shareable animation: each step's x_t beside the x0 it predicts, then the final image."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from explorer.engine.animate import BAND, PAD, frame, frames, save
from explorer.engine.capture import trace


@pytest.fixture(scope="module")
def run(tiny_pipe):
    return trace(tiny_pipe, "a red circle", steps=4, guidance=3.0, seed=2)


def _halves(picture: Image.Image, size: int) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(picture)
    return a[BAND : BAND + size, :size], a[BAND : BAND + size, size + PAD :]


def test_each_frame_is_that_steps_input_beside_its_prediction(run):
    latents = run.decode(what="latents", method="preview")  # T+1
    x0 = run.decode(what="x0", method="preview")  # T
    out = frames(latents, x0, run.timesteps.tolist(), size=128)
    assert len(out) == run.num_steps + 1
    for k in range(run.num_steps):
        left, right = _halves(out[k], 128)
        scale = 128 // latents[k].width
        big = lambda im: np.asarray(im.resize((128, 128), Image.NEAREST))  # noqa: E731
        assert scale * latents[k].width == 128
        np.testing.assert_array_equal(left, big(latents[k]))  # x_t the UNet saw at step k+1
        np.testing.assert_array_equal(right, big(x0[k]))  # the x0 it predicted from it
    last_left, last_right = _halves(out[-1], 128)
    np.testing.assert_array_equal(last_left, last_right)  # the final image on both sides
    band = np.asarray(out[0])[:BAND]
    assert (band < 128).any()  # the caption is drawn (dark text on white)


def test_the_caption_names_step_and_timestep():
    white = Image.new("RGB", (8, 8), "white")
    plain = np.asarray(frame(white, white, "", 64))
    captioned = np.asarray(frame(white, white, "step 1 of 4 · t = 999", 64))
    assert (plain == 255).all() and not (captioned[:BAND] == 255).all()
    assert (captioned[BAND:] == 255).all()  # the text stays in its band


@pytest.mark.parametrize("suffix", [".gif", ".webp"])
def test_trace_animate_writes_every_frame(run, tmp_path, suffix):
    path = run.animate(tmp_path / f"run{suffix}", fps=10)
    with Image.open(path) as im:
        assert im.format == suffix[1:].upper() and im.n_frames == run.num_steps + 1
        assert im.size == (2 * 256 + PAD, BAND + 256)


def test_the_gif_holds_the_final_image(run, tmp_path):
    with Image.open(run.animate(tmp_path / "run.gif", fps=10)) as im:
        durations = []
        for i in range(im.n_frames):
            im.seek(i)
            durations.append(im.info["duration"])
    assert durations[:-1] == [100] * run.num_steps and durations[-1] == 1500


def test_bad_requests_say_what_to_change(run, tmp_path):
    pictures = [Image.new("RGB", (4, 4))]
    with pytest.raises(ValueError, match=r"\.gif or \.webp"):
        save(pictures, tmp_path / "run.mp4")
    with pytest.raises(ValueError, match="fps"):
        save(pictures, tmp_path / "run.gif", fps=0)
    with pytest.raises(ValueError, match="no frames"):
        save([], tmp_path / "run.gif")
    with pytest.raises(ValueError, match="T\\+1 latents"):
        frames(pictures, pictures, [999.0])


def test_the_page_animates_the_run_it_shows(run):
    import gradio as gr

    from explorer.ui.share import animate_run
    from explorer.ui.stepviews import RunView

    with Image.open(animate_run(RunView.of(run, method="preview"))) as im:
        assert im.format == "GIF" and im.n_frames == run.num_steps + 1
    with pytest.raises(gr.Error, match="Nothing to animate yet"):
        animate_run(None)
