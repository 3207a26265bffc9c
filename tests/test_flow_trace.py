"""explorer.engine.capture.trace on a rectified-flow pipeline (SD3): the same image as the plain
pipeline, and a record in the flow's own terms (σ, v) whose formulas reproduce the scheduler."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers import FlowMatchEulerDiscreteScheduler, StableDiffusion3Pipeline
from PIL import Image
from trace_checks import assert_left_alone, assert_threads_match_serial

from explorer.engine import flow
from explorer.engine.attention_taps import layer_map
from explorer.engine.capture import trace
from explorer.engine.kinds import T5_ABSENT
from explorer.engine.tiny_flow import tiny_sd3_pipe
from explorer.engine.tracefile import TENSOR_FIELDS, Trace

PROMPT = "a red circle on a blue background"


@pytest.fixture(scope="module")
def sd3():
    """One tiny SD3 pipeline for the module (tests must not modify it; trace never does)."""
    return tiny_sd3_pipe()


def plain(pipe, **kwargs):
    """The reference: the plain pipeline call, on a pipeline with a fresh flow scheduler."""
    fresh = FlowMatchEulerDiscreteScheduler.from_config(pipe.scheduler.config)
    ref = StableDiffusion3Pipeline(**{**pipe.components, "scheduler": fresh})
    ref.set_progress_bar_config(disable=True)
    kwargs.setdefault("generator", torch.Generator("cpu").manual_seed(0))
    return ref(PROMPT, **kwargs).images[0]


def per_step(values: torch.Tensor) -> torch.Tensor:
    """(T,) -> (T, 1, 1, 1), to broadcast against (T, C, h, w)."""
    return values.view(-1, 1, 1, 1)


@pytest.mark.parametrize("guidance", [1.0, 4.5])
def test_image_identical_to_plain_pipeline(sd3, guidance):
    t = trace(sd3, PROMPT, steps=3, guidance=guidance, seed=0)
    ref = plain(sd3, num_inference_steps=3, guidance_scale=guidance)
    assert np.array_equal(np.asarray(t.image), np.asarray(ref))
    assert t.objective == "flow" and t.settings["pipeline_class"] == "StableDiffusion3Pipeline"
    assert t.settings["scheduler"] == "flow_euler"
    assert t.settings["scheduler_class"] == "FlowMatchEulerDiscreteScheduler"
    assert t.settings["prediction_type"] == "flow_velocity"
    assert t.guided == (guidance > 1) == (t.velocity_uncond is not None)


def test_negative_prompt_and_seed_reach_the_pipeline(sd3):
    t = trace(sd3, PROMPT, negative_prompt="green", steps=2, guidance=3.0, seed=5)
    g = torch.Generator("cpu").manual_seed(5)
    ref = plain(sd3, negative_prompt="green", num_inference_steps=2, guidance_scale=3, generator=g)
    assert np.array_equal(np.asarray(t.image), np.asarray(ref))


def test_flow_formulas_reproduce_the_scheduler(sd3):
    t = trace(sd3, PROMPT, steps=4, guidance=3.0)
    x_t, v = t.latents[:-1], t.velocity  # (T, C, h, w) each
    s, s_next = per_step(t.sigmas), per_step(flow.sigma_next(t))
    torch.testing.assert_close(t.model_input, x_t)  # SD3 feeds x_t as it is
    torch.testing.assert_close(t.x0_pred, x_t - s * v, atol=1e-5, rtol=0)
    torch.testing.assert_close(t.noise_pred, x_t + (1 - s) * v, atol=1e-5, rtol=0)
    torch.testing.assert_close(s * t.noise_pred + (1 - s) * t.x0_pred, x_t, atol=1e-5, rtol=0)
    torch.testing.assert_close(flow.euler_step(x_t, v, s, s_next), t.latents[1:], atol=1e-5, rtol=0)
    # the scheduler itself, run afresh on the recorded velocities, makes the recorded latents
    sched = FlowMatchEulerDiscreteScheduler.from_config(sd3.scheduler.config)
    sched.set_timesteps(4)
    torch.testing.assert_close(sched.timesteps, t.timesteps)
    for i, step_t in enumerate(sched.timesteps):
        out = sched.step(v[i : i + 1], step_t, x_t[i : i + 1]).prev_sample  # (1, C, h, w)
        torch.testing.assert_close(out[0], t.latents[i + 1], atol=1e-5, rtol=0)


def test_guidance_mixes_velocities_and_their_noise_alike(sd3):
    g = 6.0
    t = trace(sd3, PROMPT, steps=3, guidance=g)
    guided_v = t.velocity_uncond + g * (t.velocity_text - t.velocity_uncond)
    torch.testing.assert_close(t.velocity, guided_v, atol=1e-5, rtol=0)
    guided_eps = t.noise_uncond + g * (t.noise_text - t.noise_uncond)
    torch.testing.assert_close(t.noise_pred, guided_eps, atol=1e-5, rtol=0)
    s = per_step(t.sigmas)
    torch.testing.assert_close(t.noise_text, t.latents[:-1] + (1 - s) * t.velocity_text)


def test_schedule_is_shifted_and_recorded(sd3):
    t = trace(sd3, PROMPT, steps=5, guidance=1.0)
    shift = sd3.scheduler.config.shift
    assert t.settings["shift"] == shift == 3.0 and not t.settings["use_dynamic_shifting"]
    sched = FlowMatchEulerDiscreteScheduler.from_config(sd3.scheduler.config)
    even = torch.linspace(sched.sigma_max, sched.sigma_min, 5)  # what set_timesteps spaces evenly
    torch.testing.assert_close(t.sigmas, flow.shifted_sigma(even, shift))  # then shifts
    assert torch.all(t.sigmas[1:] > even[1:])  # the shift spends more steps at high noise
    assert t.settings["sigma_schedule"][-1] == 0.0 and len(t.settings["sigma_schedule"]) == 6
    torch.testing.assert_close(t.sigmas[0], torch.tensor(1.0))  # it starts from pure noise
    torch.testing.assert_close(flow.shifted_sigma(torch.tensor(0.5), 3.0), torch.tensor(0.75))
    torch.testing.assert_close(t.timesteps, 1000 * t.sigmas)
    torch.testing.assert_close(t.alphas_cumprod, flow.equivalent_alpha_bar(t.sigmas))


def test_trailing_spacing_is_fluxs_grid_through_the_pipeline(sd3):
    t = trace(sd3, PROMPT, steps=4, guidance=3.0, spacing="trailing")
    grid = [1.0, 0.75, 0.5, 0.25]  # FluxPipeline's np.linspace(1, 1 / N, N)
    ref = plain(sd3, num_inference_steps=4, guidance_scale=3.0, sigmas=grid)
    assert np.array_equal(np.asarray(t.image), np.asarray(ref))
    torch.testing.assert_close(t.sigmas, flow.shifted_sigma(torch.tensor(grid), 3.0))
    # the default grid ends at the training's last σ: its last step barely moves the latent
    default = trace(sd3, PROMPT, steps=4, guidance=3.0, spacing="linspace")
    assert np.array_equal(
        np.asarray(default.image), np.asarray(plain(sd3, num_inference_steps=4, guidance_scale=3.0))
    )
    assert default.sigmas[-1] < 0.01 < 0.4 < t.sigmas[-1]


def test_record_shapes_tokens_and_settings(sd3):
    t = trace(sd3, PROMPT, steps=3, guidance=4.0, seed=2)
    T, L = 3, 77 + 256  # CLIP's tokens, then T5's place (zeros: no T5 in this pipeline)
    assert t.latents.shape == (T + 1, 16, 8, 8) and t.num_steps == T
    for name in ("velocity", "velocity_uncond", "velocity_text", "noise_pred", "x0_pred"):
        tensor = getattr(t, name)
        assert tensor.shape == (T, 16, 8, 8) and tensor.dtype == torch.float32, name
    assert t.prompt_embeds.shape == t.negative_embeds.shape == (L, 96)
    assert torch.count_nonzero(t.prompt_embeds[77:]) == 0  # T5 absent: the pipeline's zeros
    assert t.pooled_embeds.shape == t.negative_pooled_embeds.shape == (72,)  # 32 + 40
    assert t.time_ids is None and t.sigmas.shape == (T,)
    assert len(t.prompt_tokens) == L and t.prompt_tokens[:3] == ["<|startoftext|>", "a", "red"]
    assert t.prompt_tokens[77:] == [T5_ABSENT] * 256
    s = t.settings
    assert s["text_encoder_widths"] == [32, 48] and not s["t5"] and s["clip_tokens"] == 77
    assert (s["height"], s["width"], s["steps_run"], s["x0_source"]) == (64, 64, T, "formula")


def test_pipe_not_mutated_on_success_error_and_cancel(sd3):
    before = sd3.scheduler.sigmas.clone()
    run = lambda **kw: trace(sd3, PROMPT, **kw)  # noqa: E731
    cancelled, seen = assert_left_alone(sd3, sd3.transformer, run)
    assert torch.equal(sd3.scheduler.sigmas, before)  # its schedule was never set
    assert seen[0].velocity.shape[0] == 1 and cancelled.velocity.shape[0] == 2


def test_concurrent_traces_equal_serial(sd3):
    jobs = [(0, 1.0), (1, 4.0), (2, 2.5), (3, 1.0)]
    run = lambda seed, g: trace(sd3, PROMPT, steps=3, guidance=g, seed=seed)  # noqa: E731
    assert_threads_match_serial(run, jobs)
    assert not sd3.transformer._forward_hooks_with_kwargs


def test_flow_trace_saves_and_loads(sd3, tmp_path):
    t = trace(sd3, PROMPT, steps=2, guidance=3.0)
    back = Trace.load(t.save(tmp_path / "flow"))
    for name in TENSOR_FIELDS:
        a, b = getattr(t, name), getattr(back, name)
        assert (a is None and b is None) or torch.equal(a, b), name
    assert back.objective == "flow" and back.settings == t.settings
    assert back.prompt_tokens == t.prompt_tokens
    assert len(back.decode(what="x0")) == 2  # a 16-channel preview, no model needed


def test_vae_decode_matches_final_image(sd3):
    t = trace(sd3, PROMPT, steps=2, guidance=1.0)
    last = np.asarray(t.decode(steps=[-1], method="vae")[0], dtype=int)  # uses shift_factor
    assert np.abs(last - np.asarray(t.image, dtype=int)).max() <= 1


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"scheduler": "ddim"}, "samples with flow_euler"),
        ({"spacing": "leading"}, "spaced linspace, trailing"),
        ({"image": Image.new("RGB", (64, 64))}, "img2img traces SD 1.x/2.x"),
    ],
)
def test_bad_input_is_a_clear_error(sd3, kwargs, match):
    with pytest.raises(ValueError, match=match):
        trace(sd3, PROMPT, steps=2, **kwargs)


def test_joint_attention_maps_leave_the_image_alone(sd3):
    t = trace(sd3, PROMPT, steps=3, guidance=4.0, attention=True)
    ref = plain(sd3, num_inference_steps=3, guidance_scale=4.0)
    assert np.array_equal(np.asarray(t.image), np.asarray(ref))
    assert t.attention.shape == (77 + 256, 3, 8, 8) and t.attention.min() >= 0
    assert torch.all(t.attention.sum(0) <= 1 + 1e-5)  # the rest went to image tokens
    blocks = sd3.transformer.transformer_blocks
    assert all(type(b.attn.processor).__name__ == "JointAttnProcessor2_0" for b in blocks)
    # only the text half of the guided batch counts: step 0 (same x_t, same text) as unguided
    alone = trace(sd3, PROMPT, steps=3, guidance=1.0, attention=True)
    torch.testing.assert_close(t.attention[:, 0], alone.attention[:, 0], atol=1e-6, rtol=0)


def test_joint_text_share_is_the_joint_softmax_at_the_text_keys(sd3):
    attn = sd3.transformer.transformer_blocks[0].attn
    heads, d = attn.heads, attn.inner_dim // attn.heads
    image, text = torch.randn(1, 16, 32), torch.randn(1, 333, 32)  # (B, N, dim), (B, L, dim)
    split = lambda x: x.view(1, -1, heads, d).transpose(1, 2)  # noqa: E731  (B, H, n, d)
    keys = torch.cat([split(attn.to_k(image)), split(attn.add_k_proj(text))], dim=2)
    probs = (split(attn.to_q(image)) @ keys.transpose(-1, -2) / d**0.5).softmax(-1)
    want = probs[..., 16:].mean(dim=(0, 1)).T  # (L, N): image queries on the text keys
    torch.testing.assert_close(layer_map(attn, image, text, guided=False), want)
