"""explorer.engine.capture.trace on an SDXL pipeline: the same image as the plain pipeline, and a
record of both text encoders' states, the pooled embedding and the added time ids."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers import StableDiffusionXLPipeline
from PIL import Image
from trace_checks import assert_left_alone, assert_threads_match_serial

from explorer.engine.capture import trace
from explorer.engine.schedulers import make_scheduler
from explorer.engine.tiny_flow import tiny_sdxl_pipe
from explorer.engine.tracefile import Trace

PROMPT = "a red circle on a blue background"


@pytest.fixture(scope="module")
def sdxl():
    """One tiny SDXL pipeline for the module (tests must not modify it; trace never does)."""
    return tiny_sdxl_pipe()


def plain(pipe, name, **kwargs):
    """The reference: the plain pipeline call with the named scheduler built from the config."""
    ref = StableDiffusionXLPipeline(
        **{**pipe.components, "scheduler": make_scheduler(pipe, name)}, add_watermarker=False
    )
    ref.set_progress_bar_config(disable=True)
    kwargs.setdefault("generator", torch.Generator("cpu").manual_seed(0))
    return ref(PROMPT, **kwargs).images[0]


@pytest.mark.parametrize("guidance", [1.0, 5.0])
@pytest.mark.parametrize("name", ["euler", "ddim", "dpmpp_2m"])
def test_image_identical_to_plain_pipeline(sdxl, name, guidance):
    t = trace(sdxl, PROMPT, steps=3, guidance=guidance, scheduler=name)
    ref = plain(sdxl, name, num_inference_steps=3, guidance_scale=guidance)
    assert np.array_equal(np.asarray(t.image), np.asarray(ref))
    assert t.objective == "epsilon" and t.settings["pipeline_class"] == "StableDiffusionXLPipeline"
    assert t.guided == (guidance > 1)


def test_negative_prompt_reaches_the_pipeline(sdxl):
    t = trace(sdxl, PROMPT, negative_prompt="green", steps=2, guidance=4.0, scheduler="euler")
    ref = plain(sdxl, "euler", negative_prompt="green", num_inference_steps=2, guidance_scale=4.0)
    assert np.array_equal(np.asarray(t.image), np.asarray(ref))
    assert torch.count_nonzero(t.negative_pooled_embeds) > 0  # encoded, not zeroed


def test_both_encoders_pooled_vector_and_time_ids(sdxl):
    t = trace(sdxl, PROMPT, steps=2, guidance=5.0, scheduler="euler")
    widths = t.settings["text_encoder_widths"]
    assert widths == [32, 48] and t.prompt_embeds.shape == (77, sum(widths))
    assert t.pooled_embeds.shape == t.negative_pooled_embeds.shape == (40,)  # encoder 2's
    assert torch.count_nonzero(t.negative_embeds) == 0  # no negative prompt: SDXL's zeros
    assert torch.count_nonzero(t.negative_pooled_embeds) == 0
    assert t.time_ids.tolist() == [64, 64, 0, 0, 64, 64]  # original size, crop, target size
    # each encoder's part of the sequence is that encoder's penultimate hidden state
    ids = sdxl.tokenizer(PROMPT, padding="max_length", max_length=77, return_tensors="pt")
    with torch.no_grad():
        one = sdxl.text_encoder(ids.input_ids, output_hidden_states=True)
        two = sdxl.text_encoder_2(ids.input_ids, output_hidden_states=True)
    torch.testing.assert_close(t.prompt_embeds[:, :32], one.hidden_states[-2][0])
    torch.testing.assert_close(t.prompt_embeds[:, 32:], two.hidden_states[-2][0])
    torch.testing.assert_close(t.pooled_embeds, two.text_embeds[0])


def test_record_follows_the_epsilon_formulas(sdxl):
    g = 5.0
    t = trace(sdxl, PROMPT, steps=3, guidance=g, scheduler="ddim")
    guided = t.noise_uncond + g * (t.noise_text - t.noise_uncond)  # (T, C, h, w)
    torch.testing.assert_close(t.noise_pred, guided, atol=1e-5, rtol=0)
    a = t.alphas_cumprod.view(-1, 1, 1, 1)
    x0 = (t.latents[:-1] - (1 - a).sqrt() * t.noise_pred) / a.sqrt()  # (T, C, h, w)
    torch.testing.assert_close(t.x0_pred, x0, atol=1e-4, rtol=1e-4)
    assert t.velocity is None and t.sigmas is None


def test_pipe_not_mutated_on_success_error_and_cancel(sdxl):
    run = lambda **kw: trace(sdxl, PROMPT, scheduler="dpmpp_2m", **kw)  # noqa: E731
    assert_left_alone(sdxl, sdxl.unet, run)


def test_concurrent_traces_equal_serial(sdxl):
    jobs = [("euler", 0), ("ddim", 1), ("dpmpp_2m", 2), ("euler_a", 3)]
    run = lambda name, seed: trace(sdxl, PROMPT, steps=3, scheduler=name, seed=seed)  # noqa: E731
    assert_threads_match_serial(run, jobs)
    assert not sdxl.unet._forward_hooks_with_kwargs


def test_sdxl_trace_saves_and_loads(sdxl, tmp_path):
    t = trace(sdxl, PROMPT, steps=2, guidance=3.0, scheduler="euler")
    back = Trace.load(t.save(tmp_path / "sdxl"))
    for name in ("pooled_embeds", "negative_pooled_embeds", "time_ids", "prompt_embeds"):
        assert torch.equal(getattr(t, name), getattr(back, name)), name
    assert back.settings == t.settings


def test_attention_maps_leave_the_image_alone(sdxl):
    t = trace(sdxl, PROMPT, steps=2, guidance=3.0, scheduler="euler", attention=True)
    ref = plain(sdxl, "euler", num_inference_steps=2, guidance_scale=3.0)
    assert np.array_equal(np.asarray(t.image), np.asarray(ref))
    assert t.attention.shape == (77, 2, 8, 8)
    torch.testing.assert_close(t.attention.sum(0), torch.ones(2, 8, 8))  # a distribution


def test_img2img_is_refused(sdxl):
    with pytest.raises(ValueError, match="img2img traces SD 1.x/2.x"):
        trace(sdxl, PROMPT, steps=2, image=Image.new("RGB", (64, 64)))
