"""explorer.engine.capture: a traced run makes exactly what the plain pipeline makes, and records
it."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from diffusers import StableDiffusionImg2ImgPipeline, StableDiffusionPipeline
from PIL import Image
from trace_checks import assert_same_traces, in_threads

from explorer.engine.capture import predict_x0, trace
from explorer.engine.schedulers import SCHEDULERS, gives_x0, has_sigmas, make_scheduler

# Pipelines the bars run on, by fixture name: adding one is one line here.
PIPES = ["tiny_pipe", "mini_pipe"]
PROMPT = "a red circle on a blue background"


@pytest.fixture(params=PIPES)
def any_pipe(request):
    return request.getfixturevalue(request.param)


def plain(pipe, name, cls=StableDiffusionPipeline, **kwargs):
    """The reference: the plain pipeline with the named scheduler, built as the issue says."""
    ref = cls(
        **{**pipe.components, "scheduler": make_scheduler(pipe, name)},
        requires_safety_checker=False,
    )
    ref.set_progress_bar_config(disable=True)
    kwargs.setdefault("generator", torch.Generator("cpu").manual_seed(0))
    return ref(PROMPT, **kwargs).images[0]


def assert_untouched(pipe, scheduler, config):
    assert pipe.scheduler is scheduler
    assert dict(pipe.scheduler.config) == config
    assert not pipe.unet._forward_hooks
    assert not pipe.unet._forward_hooks_with_kwargs


@pytest.mark.parametrize("guidance", [1.0, 5.0])
@pytest.mark.parametrize("name", list(SCHEDULERS))
def test_image_identical_to_plain_pipeline(any_pipe, name, guidance):
    t = trace(any_pipe, PROMPT, steps=3, guidance=guidance, scheduler=name)
    ref = plain(any_pipe, name, num_inference_steps=3, guidance_scale=guidance)
    assert np.array_equal(np.asarray(t.image), np.asarray(ref))
    assert t.settings["scheduler_class"] == SCHEDULERS[name].__name__
    assert (t.noise_uncond is None) == (guidance <= 1)
    assert (t.sigmas is not None) == has_sigmas(name) == has_sigmas(make_scheduler(any_pipe, name))
    assert t.settings["x0_source"] == ("scheduler" if gives_x0(name) else "formula")


def test_record_shapes_and_settings(tiny_pipe):
    t = trace(tiny_pipe, PROMPT, negative_prompt="green", steps=3, guidance=4.0, seed=3)
    T, (C, h, w) = 3, t.latents.shape[1:]
    assert t.num_steps == T and t.guided
    assert t.latents.shape == (T + 1, 4, 8, 8) and (h, w) == (8, 8)
    for name in ("model_input", "noise_pred", "noise_uncond", "noise_text", "x0_pred"):
        tensor = getattr(t, name)
        assert tensor.shape == (T, C, h, w) and tensor.device.type == "cpu"
        assert not tensor.requires_grad and tensor.dtype == torch.float32
    assert t.timesteps.shape == t.alphas_cumprod.shape == (T,) and t.sigmas is None
    assert t.prompt_embeds.shape == t.negative_embeds.shape == (77, 32)
    assert t.step_coeffs.shape == (T, 2) and len(t.seconds) == T
    assert len(t.prompt_tokens) == 77
    assert t.prompt_tokens[:4] == ["<|startoftext|>", "a", "red", "circle"]
    assert t.prompt_tokens[-1] == "<|endoftext|>"  # padding is visible
    s = t.settings
    assert (s["seed"], s["steps_run"], s["height"], s["width"]) == (3, T, 64, 64)
    assert s["negative_prompt"] == "green" and not s["cancelled"]
    assert {"torch", "diffusers", "transformers"} <= set(s["versions"])
    assert json.loads(json.dumps(s)) == s


def test_guidance_identity(tiny_pipe):
    g = 7.5
    t = trace(tiny_pipe, PROMPT, steps=3, guidance=g, scheduler="euler")
    guided = t.noise_uncond + g * (t.noise_text - t.noise_uncond)  # (T, C, h, w)
    torch.testing.assert_close(t.noise_pred, guided, atol=1e-5, rtol=0)


def test_ddim_x0_matches_formula(tiny_pipe):
    t = trace(tiny_pipe, PROMPT, steps=4, scheduler="ddim")
    a = t.alphas_cumprod.view(-1, 1, 1, 1)  # (T, 1, 1, 1)
    x0 = (t.latents[:-1] - (1 - a).sqrt() * t.noise_pred) / a.sqrt()  # (T, C, h, w)
    torch.testing.assert_close(t.x0_pred, x0, atol=1e-4, rtol=1e-4)
    assert t.settings["x0_source"] == "scheduler"


def test_sigma_scheduler_x0_matches_formula_on_scaled_input(tiny_pipe):
    t = trace(tiny_pipe, PROMPT, steps=3, scheduler="euler")
    a = t.alphas_cumprod.view(-1, 1, 1, 1)
    torch.testing.assert_close(t.alphas_cumprod, 1 / (1 + t.sigmas**2))
    x0 = predict_x0(t.model_input, t.noise_pred, a, "epsilon")
    torch.testing.assert_close(t.x0_pred, x0, atol=1e-4, rtol=1e-4)


def test_v_prediction_formula():
    x0, eps, a = torch.randn(4, 8), torch.randn(4, 8), torch.tensor(0.3)
    x_t = a.sqrt() * x0 + (1 - a).sqrt() * eps
    v = a.sqrt() * eps - (1 - a).sqrt() * x0
    torch.testing.assert_close(predict_x0(x_t, v, a, "v_prediction"), x0)
    torch.testing.assert_close(predict_x0(x_t, eps, a, "epsilon"), x0)


def test_ddim_step_coefficients_are_exact(tiny_pipe):
    t = trace(tiny_pipe, PROMPT, steps=3, scheduler="ddim", guidance=1.0)
    a, b = t.step_coeffs[:, 0].view(-1, 1, 1, 1), t.step_coeffs[:, 1].view(-1, 1, 1, 1)
    torch.testing.assert_close(
        a * t.latents[:-1] + b * t.noise_pred, t.latents[1:], atol=1e-4, rtol=0
    )


def test_pipe_not_mutated_on_success_error_and_cancel(tiny_pipe):
    scheduler, config = tiny_pipe.scheduler, dict(tiny_pipe.scheduler.config)
    trace(tiny_pipe, PROMPT, steps=2, scheduler="dpmpp_2m")
    assert_untouched(tiny_pipe, scheduler, config)

    def boom(partial):
        raise RuntimeError("stop here")

    with pytest.raises(RuntimeError, match="stop here"):
        trace(tiny_pipe, PROMPT, steps=3, on_step=boom)
    assert_untouched(tiny_pipe, scheduler, config)

    seen = []
    t = trace(tiny_pipe, PROMPT, steps=4, on_step=seen.append, should_stop=lambda: len(seen) >= 2)
    assert_untouched(tiny_pipe, scheduler, config)
    assert t.num_steps == 2 and t.latents.shape[0] == 3 and t.settings["cancelled"]
    assert [p.num_steps for p in seen] == [1, 2] and seen[0].image is None
    assert t.image is not None


def test_concurrent_traces_equal_serial(tiny_pipe):
    jobs = [("ddim", 0), ("euler_a", 1), ("dpmpp_2m", 2), ("pndm", 3)]
    run = lambda name, seed: trace(tiny_pipe, PROMPT, steps=3, scheduler=name, seed=seed)  # noqa: E731
    serial = [run(*job) for job in jobs]
    fields = ("latents", "noise_pred", "noise_uncond", "noise_text", "x0_pred", "model_input")
    for a, b in zip(serial, in_threads(run, jobs)):
        assert_same_traces(a, b, fields)
    assert not tiny_pipe.unet._forward_hooks_with_kwargs


def test_img2img_runs_steps_times_strength(tiny_pipe):
    init = Image.new("RGB", (64, 64), (200, 30, 30))
    t = trace(tiny_pipe, PROMPT, steps=4, strength=0.5, image=init, scheduler="euler")
    assert t.num_steps == int(4 * 0.5) == 2
    assert t.init_latents.shape == (4, 8, 8) and t.init_image.size == (64, 64)
    assert t.settings["mode"] == "img2img" and t.settings["strength"] == 0.5
    ref = plain(
        tiny_pipe,
        "euler",
        StableDiffusionImg2ImgPipeline,
        image=init,
        strength=0.5,
        num_inference_steps=4,
        guidance_scale=7.5,
    )
    assert np.array_equal(np.asarray(t.image), np.asarray(ref))


def test_preview_of_every_step(tiny_pipe):
    t = trace(tiny_pipe, PROMPT, steps=2, preview=True)
    assert len(t.previews) == 2 and t.previews[0].size == (64, 64)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"scheduler": "heun"}, "ddim, ddpm, pndm"),
        ({"steps": 0}, "steps"),
        ({"image": Image.new("RGB", (64, 64)), "strength": 0.1, "steps": 5}, "runs no step"),
        ({"image": Image.new("RGB", (64, 64)), "height": 64}, "img2img"),
    ],
)
def test_bad_input_is_a_clear_error(tiny_pipe, kwargs, match):
    with pytest.raises(ValueError, match=match):
        trace(tiny_pipe, PROMPT, **kwargs)


@pytest.mark.slow
def test_sd15_shaped_model_traces_two_steps():
    from conftest import build_pipe, sd15_configs

    unet, vae, text = sd15_configs()
    pipe = build_pipe(unet, vae, text)
    t = trace(pipe, PROMPT, steps=2, guidance=7.5, height=64, width=64, scheduler="euler")
    assert t.latents.shape == (3, 4, 8, 8)
    assert t.prompt_embeds.shape == (77, 768) and t.noise_text.shape == (2, 4, 8, 8)
    assert t.image.size == (64, 64)
