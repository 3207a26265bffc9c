"""Stopping experiments, the grid's base magnitude, the Generate size control, the hook API."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from PIL import Image

from explorer.engine import capture
from explorer.engine.batch import run_batch
from explorer.studies import grid, sweeps
from explorer.ui.common import AppContext
from explorer.ui.layout import build_demo

BASE = ["a red circle", "", 3, 2, 7.5, "ddim"]  # prompt, negative, seed, steps, guidance, scheduler


def test_stop_when_ends_a_trace_at_its_next_step(tiny_pipe):
    with capture.stop_when(lambda: True):
        tr = capture.trace(tiny_pipe, "a red circle", steps=4)
    assert tr.num_steps == 1 and tr.settings["cancelled"] and tr.image is not None
    assert not capture.stop_requested()  # the scope ended with the block
    assert capture.trace(tiny_pipe, "a red circle", steps=2).num_steps == 2


def test_stop_when_ends_a_batched_call(tiny_pipe):
    z, neg = tiny_pipe.encode_prompt("a red circle", "cpu", 1, True, "")  # (1, L, D) each
    with capture.stop_when(lambda: True):
        traces = run_batch(
            tiny_pipe, z.repeat(2, 1, 1), neg.repeat(2, 1, 1), [0, 1], steps=3, guidance=7.5
        )
    assert [t.num_steps for t in traces] == [1, 1]
    assert all(t.settings["cancelled"] for t in traces)


def test_batch_items_record_what_the_unet_saw(tiny_pipe):
    z, neg = tiny_pipe.encode_prompt("a red circle", "cpu", 1, True, "")  # (1, L, D) each
    family = sweeps.scale_rule(z[0], [0.5, 2.0])  # (2, L, D)
    traces = run_batch(tiny_pipe, family, neg.repeat(2, 1, 1), [0, 0], steps=2, guidance=7.5)
    for item, tr in zip(family, traces):
        torch.testing.assert_close(tr.prompt_embeds, item)
        torch.testing.assert_close(tr.negative_embeds, neg[0])
        assert tr.latents.shape[0] == 3 and tr.noise_uncond.shape == tr.noise_text.shape


def test_grid_uses_the_base_magnitude(tiny_pipe):
    r = grid.grid(tiny_pipe, "a red circle", ("seed", [0]), ("steps", [1, 2]), magnitude=2.0)
    scales = [c.trace.settings.get("embedding_scale") for row in r.cells for c in row]
    assert scales == [2.0, 2.0]
    alone = sweeps.scale_embedding(tiny_pipe, "a red circle", [2.0], steps=2, seed=0)
    assert np.array_equal(np.asarray(r.cells[0][1].image), np.asarray(alone.runs[0].image))


@pytest.mark.slow
def test_stop_frees_the_worker_and_the_next_run_is_right(tiny_pipe):
    from conftest import tab_client

    calls: list[int] = []
    hook = tiny_pipe.unet.register_forward_hook(lambda *a: calls.append(1))
    try:
        with tab_client(tiny_pipe, ["explorer.ui.tabs.experiments"]) as client:
            run_then_stop(client, tiny_pipe, calls)
    finally:
        hook.remove()


def run_then_stop(client, tiny_pipe, calls: list[int]) -> None:
    """Stop a long experiment mid-run, then check the next one runs and is right."""
    long_list = ", ".join(["100"] * 8)  # 800 UNet calls if it were left to run
    job = client.submit(*BASE, long_list, api_name="/compare_steps")
    while not calls:  # wait until it really runs
        time.sleep(0.02)
    client.predict(api_name="/stop_experiment")
    with pytest.raises(Exception):  # noqa: B017 - cancelled, or reported as stopped
        job.result()
    gallery, _plot, _table, *_ = client.predict(
        *BASE, "0.5, 1", "multiply", api_name="/scale_embedding"
    )
    assert len(calls) < 800  # the stopped experiment did not run on
    direct = sweeps.scale_embedding(tiny_pipe, "a red circle", [0.5, 1.0], steps=2, seed=3)
    for cell, run in zip(gallery, direct.runs):
        path = cell["image"]["path"] if isinstance(cell["image"], dict) else cell["image"]
        got = np.asarray(Image.open(path).convert("RGB"))
        assert np.array_equal(got, np.asarray(run.image))


@pytest.mark.slow
def test_grid_endpoint_takes_a_base_magnitude(tiny_pipe):
    from conftest import tab_client

    with tab_client(tiny_pipe, ["explorer.ui.tabs.experiments"]) as client:
        _gallery, png, note = client.predict(
            *BASE, "steps", "1, 2", "seed", "0", 0.5, "tokens", api_name="/grid"
        )
        assert png.endswith(".png") and note.startswith("2 runs")
        from gradio_client.exceptions import AppError

        with pytest.raises(AppError, match="base magnitude"):
            client.predict(*BASE, "steps", "1", "seed", "0", 99, "multiply", api_name="/grid")


@pytest.mark.slow
def test_generate_size_control(tiny_pipe):
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    for fixed, size, expect in [(None, 128, (128, 128)), (64, 128, None)]:
        ctx = AppContext(load=lambda: tiny_pipe, fixed_size=fixed)
        demo = build_demo(ctx, ["explorer.ui.tabs.generate"])
        demo.queue().launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True)
        try:
            client = Client(demo.local_url, verbose=False)
            if expect is None:
                with pytest.raises(AppError, match="makes 64×64 images only"):
                    client.predict(prompt="a red circle", steps=1, size=size, api_name="/generate")
            else:
                out = client.predict(
                    prompt="a red circle", steps=1, size=size, api_name="/generate"
                )
                assert Image.open(out[0]).size == expect
        finally:
            demo.close()
