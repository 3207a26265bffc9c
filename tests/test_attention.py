"""explorer.engine.attention_taps and explorer.studies.word_maps: cross-attention maps per token
and step."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from diffusers import StableDiffusionPipeline
from PIL import Image

from explorer.engine.attention_taps import _probabilities, capture_attention, cross_attention_layers
from explorer.engine.capture import trace
from explorer.engine.schedulers import make_scheduler
from explorer.engine.tracefile import Trace
from explorer.studies.word_maps import (
    WordMaps,
    attention_maps,
    heat_colors,
    heat_overlay,
    quadrant_shares,
    small_multiples,
    token_kinds,
    token_label,
)

PROMPT = "a red circle on a blue background"


def processors(pipe) -> dict:
    return {name: layer.processor for name, layer in cross_attention_layers(pipe.unet).items()}


def plain_image(pipe, prompt, name="ddim", **kwargs):
    ref = StableDiffusionPipeline(
        **{**pipe.components, "scheduler": make_scheduler(pipe, name)},
        requires_safety_checker=False,
    )
    ref.set_progress_bar_config(disable=True)
    generator = torch.Generator("cpu").manual_seed(kwargs.pop("seed", 0))
    return np.asarray(ref(prompt, generator=generator, **kwargs).images[0])


@pytest.mark.parametrize("guidance", [1.0, 5.0])
@pytest.mark.parametrize("name", ["ddim", "pndm", "euler_a"])
def test_image_identical_with_attention_capture(tiny_pipe, name, guidance):
    t = trace(tiny_pipe, PROMPT, steps=3, guidance=guidance, scheduler=name, attention=True)
    ref = plain_image(tiny_pipe, PROMPT, name, num_inference_steps=3, guidance_scale=guidance)
    assert np.array_equal(np.asarray(t.image), ref)


def test_mini_image_identical_with_attention_capture(mini_pipe):
    t = trace(mini_pipe, PROMPT, steps=4, guidance=7.5, attention=True)
    assert np.array_equal(
        np.asarray(t.image), plain_image(mini_pipe, PROMPT, num_inference_steps=4)
    )


@pytest.mark.parametrize("guidance", [1.0, 5.0])
def test_maps_shape_and_token_sums(tiny_pipe, guidance):
    t = trace(tiny_pipe, PROMPT, steps=3, guidance=guidance, attention=True)
    L, (h, w) = len(t.prompt_tokens), t.latents.shape[-2:]
    assert t.attention.shape == (L, 3, h, w)  # tiny UNet: attention only at 4x4, upsampled
    assert torch.allclose(t.attention.sum(0), torch.ones(3, h, w), atol=1e-5)
    assert trace(tiny_pipe, PROMPT, steps=1).attention is None


def test_probabilities_are_those_the_layer_applies(tiny_pipe):
    """softmax(q kᵀ) @ v through to_out reproduces the layer's own output."""
    layer = next(iter(cross_attention_layers(tiny_pipe.unet).values()))
    torch.manual_seed(0)
    x = torch.randn(2, 16, layer.to_q.in_features)  # (B, N, C)
    ctx = torch.randn(2, 77, layer.to_k.in_features)  # (B, L, D)
    with torch.no_grad():
        probs = _probabilities(layer, x, ctx)  # (B, heads, N, L)
        v = layer.head_to_batch_dim(layer.to_v(ctx)).reshape(2, layer.heads, 77, -1)
        mixed = layer.batch_to_head_dim((probs @ v).flatten(0, 1))  # (B, N, inner)
        assert torch.allclose(layer.to_out[0](mixed), layer(x, ctx), atol=1e-5)


def test_processors_restored_after_run_error_and_cancel(tiny_pipe):
    before = processors(tiny_pipe)
    trace(tiny_pipe, PROMPT, steps=2, attention=True)
    assert processors(tiny_pipe) == before

    def boom(partial):
        raise RuntimeError("stop here")

    with pytest.raises(RuntimeError, match="stop here"):
        trace(tiny_pipe, PROMPT, steps=3, attention=True, on_step=boom)
    assert processors(tiny_pipe) == before
    assert not tiny_pipe.unet._forward_pre_hooks

    seen = []
    t = trace(
        tiny_pipe,
        PROMPT,
        steps=4,
        attention=True,
        on_step=seen.append,
        should_stop=lambda: len(seen) >= 2,
    )
    assert t.attention.shape[1] == t.num_steps == 2
    assert processors(tiny_pipe) == before


def test_nested_captures_restore_only_at_the_end(tiny_pipe):
    before = processors(tiny_pipe)
    with capture_attention(tiny_pipe.unet, guided=True):
        with capture_attention(tiny_pipe.unet, guided=True):
            pass
        assert processors(tiny_pipe) != before  # the outer capture still needs its taps
    assert processors(tiny_pipe) == before


def test_concurrent_runs_do_not_mix_maps(tiny_pipe):
    """Two attention traces and a plain run at once give exactly what each gives alone."""
    jobs = [("a red circle", 0), ("a big blue square on the background", 1)]
    serial = [trace(tiny_pipe, p, steps=3, seed=s, attention=True) for p, s in jobs]
    ref = plain_image(tiny_pipe, PROMPT, num_inference_steps=3)
    results: list = [None] * 3
    barrier = threading.Barrier(3)

    def worker(k):
        barrier.wait()
        if k < 2:
            results[k] = trace(tiny_pipe, jobs[k][0], steps=3, seed=jobs[k][1], attention=True)
        else:
            results[k] = plain_image(tiny_pipe, PROMPT, num_inference_steps=3)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(3)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    for a, b in zip(serial, results):
        assert torch.equal(a.attention, b.attention)
        assert np.array_equal(np.asarray(a.image), np.asarray(b.image))
    assert np.array_equal(results[2], ref)
    assert all(type(p).__name__ != "_Tap" for p in processors(tiny_pipe).values())


def test_attention_saved_and_loaded(tiny_pipe, tmp_path):
    t = trace(tiny_pipe, PROMPT, steps=2, attention=True)
    loaded = Trace.load(t.save(tmp_path / "run"))
    assert torch.equal(loaded.attention, t.attention)


def test_attention_maps_returns_arrays_and_tokens(tiny_pipe):
    wm = attention_maps(tiny_pipe, PROMPT, steps=2)
    assert isinstance(wm.maps, np.ndarray) and wm.maps.shape[:2] == (77, 2)
    assert wm.tokens[:9] == ["<|startoftext|>", *PROMPT.split(), "<|endoftext|>"]
    assert [wm.tokens[i] for i in wm.words] == PROMPT.split()
    assert wm.at(None).shape == wm.at(1).shape == (77, *wm.maps.shape[2:])
    with pytest.raises(ValueError, match="out of range"):
        wm.at(2)
    tiles = small_multiples(wm, None, wm.trace.image)
    assert [c.split(" · ")[1] for _, c in tiles] == PROMPT.split()
    with pytest.raises(ValueError, match="attention=True"):
        WordMaps.of(trace(tiny_pipe, PROMPT, steps=1))


def test_token_kinds_and_labels():
    tokens = ["<|startoftext|>", "red</w>", "<|endoftext|>", "<|endoftext|>", "!"]
    assert token_kinds(tokens) == ["start", "word", "end", "pad", "pad"]
    assert token_label(1, "red</w>", "word") == "1 · red"
    assert token_label(3, "<|endoftext|>", "pad") == "3 · ⟨pad⟩"


def test_heat_pictures_and_quadrants():
    heat = np.zeros((8, 8))
    heat[:4, :4] = 1.0
    shares = quadrant_shares(heat)
    assert shares["top left"] == 1.0 and sum(shares.values()) == pytest.approx(1.0)
    colours = heat_colors(heat)
    assert colours.shape == (8, 8, 3) and colours[0, 0].sum() > colours[7, 7].sum()
    flat = heat_colors(np.ones((2, 2)))
    assert (flat == flat[0, 0]).all() and flat.max() < 10  # a flat map is dark, not NaN
    out = heat_overlay(Image.new("RGB", (64, 64), "blue"), heat)
    assert out.size == (64, 64) and out.mode == "RGB"


# ---- the bar on the Mini model --------------------------------------------------------------

POSITIONS = ["top left", "bottom right"]


@pytest.fixture(scope="module")
def mini_position_maps(mini_pipe):
    """Summed-over-steps maps of 'circle' and 'background' for each position, two seeds."""
    out = {}
    for position in POSITIONS:
        prompt = f"a small red circle on a blue background, {position}"
        total = None
        for seed in (0, 1):
            wm = attention_maps(mini_pipe, prompt, steps=20, seed=seed)
            total = wm.maps.sum(axis=1) if total is None else total + wm.maps.sum(axis=1)
        out[position] = {
            w: quadrant_shares(total[wm.tokens.index(w)]) for w in ("circle", "background")
        }
    return out


@pytest.mark.slow
@pytest.mark.parametrize("position", POSITIONS)
def test_mini_background_does_not_concentrate_at_the_object(mini_position_maps, position):
    shares = mini_position_maps[position]["background"]
    assert shares[position] < max(shares.values()), shares


@pytest.mark.slow
@pytest.mark.parametrize("position", POSITIONS)
def test_mini_circle_concentrates_at_its_position(mini_position_maps, position):
    shares = mini_position_maps[position]["circle"]
    assert shares[position] == max(shares.values()), shares


# SD 2.x-style layers (linear projections, upcast attention, per-block head sizes) with
# attention at three resolutions; sizes whose latent does not halve evenly.
SD2_STYLE_UNET = dict(
    block_out_channels=(32, 32, 64),
    layers_per_block=1,
    sample_size=8,
    in_channels=4,
    out_channels=4,
    down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    cross_attention_dim=32,
    attention_head_dim=(2, 4, 8),
    use_linear_projection=True,
    upcast_attention=True,
    norm_num_groups=32,
)


@pytest.mark.parametrize("size", [(64, 96), (72, 80)])
def test_sd2_style_unet_and_uneven_sizes(size):
    from conftest import TINY_TEXT, TINY_VAE, build_pipe

    pipe = build_pipe(SD2_STYLE_UNET, TINY_VAE, TINY_TEXT)
    height, width = size
    t = trace(pipe, PROMPT, steps=2, height=height, width=width, attention=True)
    ref = plain_image(pipe, PROMPT, num_inference_steps=2, height=height, width=width)
    assert np.array_equal(np.asarray(t.image), ref)
    assert t.attention.shape == (77, 2, height // 8, width // 8)
    assert torch.allclose(t.attention.sum(0), torch.ones(2, height // 8, width // 8), atol=1e-5)
