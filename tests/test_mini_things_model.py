"""The committed ``mini-things`` model: it loads offline by name, runs through the engine exactly as
diffusers runs it, keeps its measured figures, and the app serves it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from explorer.engine import models
from explorer.mini.things import draw

ROOT = Path(__file__).resolve().parent.parent
FOLDER = models.THINGS_DIR
pytestmark = pytest.mark.skipif(
    not (FOLDER / "model_index.json").is_file(), reason="mini-things is not packaged yet"
)


def test_it_loads_offline_by_name_as_a_plain_diffusers_folder():
    code = (
        "import explorer.engine.models as m; p = m.load_pipeline('mini-things', 'cpu'); "
        "print(p.unet.config.sample_size, p.vae_scale_factor, type(p).__name__)"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["16", "8", "StableDiffusionPipeline"]


def test_its_runs_are_pixel_identical_to_plain_diffusers():
    from diffusers import StableDiffusionPipeline

    from explorer.engine.capture import trace

    pipe = models.load_pipeline("mini-things", "cpu")
    prompt = "a large cat on a blue background"
    ours = trace(pipe, prompt, steps=5, guidance=5.0, seed=3)
    plain = StableDiffusionPipeline(**pipe.components, requires_safety_checker=False)
    plain.set_progress_bar_config(disable=True)
    gen = torch.Generator("cpu").manual_seed(3)
    ref = plain(prompt, num_inference_steps=5, guidance_scale=5.0, generator=gen).images[0]
    assert ours.image.size == (128, 128)
    assert np.array_equal(np.asarray(ours.image), np.asarray(ref))
    assert int(ours.timesteps[0]) == 999  # trailing spacing, as mini-shapes


def test_it_keeps_its_measured_figures():
    figures = json.loads((FOLDER / "metrics.json").read_text())
    for part in ("unet", "clip", "vae"):
        assert json.loads((FOLDER / part / "training.json").read_text())["steps_done"] > 0
    from explorer.mini.things import parts
    from explorer.mini.things.clip_figures import retrieval
    from explorer.mini.things.train_clip import load_clip

    clip = load_clip(FOLDER)
    assert retrieval(clip, parts.build_tokenizer(), 32) >= figures["clip_retrieval_64"] - 0.1
    assert figures["clip_retrieval_64"] > figures["clip_retrieval_64_untrained"] + 0.5


def test_the_app_serves_it_and_lists_what_it_knows():
    from gradio_client import Client

    import app
    from explorer.ui.layout import launch_options

    demo, ctx = app.build("mini-things")
    assert ctx.embedded == "mini-things" and ctx.fixed_size == 128
    demo.queue().launch(
        prevent_thread_lock=True, server_name="127.0.0.1", quiet=True, **launch_options()
    )
    try:
        client = Client(demo.local_url, verbose=False)
        image, status, numbers = client.predict(
            prompt="a small rocket in the top left, black background", steps=4, api_name="/generate"
        )
        assert status.splitlines()[-1].startswith("Done: 4 steps in ")
        assert (numbers["height"], numbers["width"]) == (128, 128)
        unknown = client.predict(prompt="an astronaut", steps=1, api_name="/generate")[1]
        assert 'mini-things does not know "astronaut"' in unknown and "animals such as" in unknown
        config = str(demo.get_config_file())
        assert "What this model knows" in config and "giraffe" in config
    finally:
        demo.close()


@pytest.mark.skipif(not Path(draw.FONT).exists(), reason="the judge needs fonts-noto-color-emoji")
def test_a_cat_on_a_blue_background_is_judged_a_cat_on_blue_from_its_pixels():
    from explorer.engine.capture import trace
    from explorer.mini.things import judge

    pipe = models.load_pipeline("mini-things", "cpu")
    image = trace(pipe, "a cat on a blue background", steps=25, guidance=5.0, seed=0).image
    reading = judge.read(np.asarray(image))
    assert reading.background == "blue"
    assert "cat" in [seen.thing for seen in reading.things]


def test_its_position_words_steer_where_the_layout_is_decided():
    """From one noise at t = 999, opposite position words move the predicted x0 (0.036 at step
    9,475, when things landed where the noise put them; 0.302 at 12,025)."""
    from explorer.engine.models import load_pipeline
    from explorer.mini.things.word_probe import word_effects

    effects = word_effects(load_pipeline(str(FOLDER), "cpu"))
    assert effects["position"] > 0.15 and effects["thing"] > 0.05
    assert effects["background"] > effects["position"]  # a whole picture's colour against a place
