"""explorer.engine.tracefile and explorer.engine.decode: save/load round trip, clear errors,
pictures."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from explorer.engine import decode, tracecheck
from explorer.engine.capture import trace
from explorer.engine.tracefile import TENSOR_FIELDS, Trace


@pytest.fixture(scope="module")
def saved(tiny_pipe, tmp_path_factory):
    """A guided img2img trace (every optional field set) and the folder it was saved to."""
    init = Image.new("RGB", (64, 64), (20, 90, 200))
    t = trace(tiny_pipe, "a blue square", steps=4, strength=0.75, image=init, scheduler="euler")
    return t, t.save(tmp_path_factory.mktemp("run") / "trace")


def test_round_trip(saved):
    t, folder = saved
    back = Trace.load(folder)
    for name in TENSOR_FIELDS:
        a, b = getattr(t, name), getattr(back, name)
        assert (a is None and b is None) or torch.equal(a, b), name
    assert back.prompt_tokens == t.prompt_tokens and back.settings == t.settings
    assert back.seconds == t.seconds and back.decoder is None
    assert np.array_equal(np.asarray(back.image), np.asarray(t.image))
    assert np.array_equal(np.asarray(back.init_image), np.asarray(t.init_image))
    assert sorted(p.name for p in folder.iterdir()) == [
        "image.png",
        "init_image.png",
        "tensors.safetensors",
        "trace.json",
    ]


def test_loaded_trace_previews_without_a_model(saved):
    back = Trace.load(saved[1])
    T = back.num_steps
    assert len(back.decode()) == T + 1  # no decoder: linear preview
    assert [im.size for im in back.decode(steps=[0, -1], what="x0")] == [(64, 64)] * 2
    assert len(back.decode(what="noise")) == T
    with pytest.raises(ValueError, match="no VAE attached"):
        back.decode(method="vae")


def test_vae_decode_is_batched_and_matches_final_image(saved, tiny_pipe):
    t = saved[0]
    images = t.decode(method="vae", batch_size=2)
    assert len(images) == t.num_steps + 1
    last = np.asarray(images[-1], dtype=int)
    assert np.abs(last - np.asarray(t.image, dtype=int)).max() <= 1


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"what": "pixels"}, "what must be"),
        ({"method": "taesd"}, "method must be"),
        ({"steps": 99}, "out of range"),
        ({"what": "noise", "method": "vae"}, "not an image latent"),
    ],
)
def test_decode_bad_arguments(saved, kwargs, match):
    with pytest.raises(ValueError, match=match):
        saved[0].decode(**kwargs)


def copy_folder(src, dst):
    dst.mkdir()
    for p in src.iterdir():
        (dst / p.name).write_bytes(p.read_bytes())
    return dst


def edit_json(folder, **changes):
    meta = json.loads((folder / "trace.json").read_text())
    meta.update(changes)
    (folder / "trace.json").write_text(json.dumps(meta))


def edit_tensors(folder, fn):
    tensors = load_file(folder / "tensors.safetensors")
    fn(tensors)
    save_file(tensors, folder / "tensors.safetensors")


BREAKAGES = {
    "no folder": (lambda f: f.rename(f.with_name("gone")), "no such trace folder"),
    "no json": (lambda f: (f / "trace.json").unlink(), "trace.json: file missing"),
    "bad json": (lambda f: (f / "trace.json").write_text("{oops"), "not valid JSON"),
    "other format": (lambda f: edit_json(f, format="x"), "not a diffusion-explorer-trace"),
    "new version": (lambda f: edit_json(f, version=99), "version 99"),
    "bad tokens": (lambda f: edit_json(f, prompt_tokens=[1, 2]), "prompt_tokens"),
    "bad settings": (lambda f: edit_json(f, settings=[]), "settings"),
    "few seconds": (lambda f: edit_json(f, seconds=[0.1]), "step times"),
    "no tensors": (lambda f: (f / "tensors.safetensors").unlink(), "file missing"),
    "garbage tensors": (
        lambda f: (f / "tensors.safetensors").write_bytes(
            b"\x08\x00\x00\x00\x00\x00\x00\x00{bad}   "
        ),
        "not a valid safetensors",
    ),
    "missing tensor": (
        lambda f: edit_tensors(f, lambda t: t.pop("noise_pred")),
        "'noise_pred' missing",
    ),
    "extra tensor": (
        lambda f: edit_tensors(f, lambda t: t.update(evil=torch.zeros(1))),
        "unexpected",
    ),
    "bad shape": (
        lambda f: edit_tensors(f, lambda t: t.update(x0_pred=t["x0_pred"][:-1])),
        "'x0_pred' has shape",
    ),
    "int tensor": (
        lambda f: edit_tensors(f, lambda t: t.update(timesteps=t["timesteps"].long())),
        "floating point",
    ),
    "no image": (lambda f: (f / "image.png").unlink(), "image.png: file missing"),
    "bad image": (lambda f: (f / "image.png").write_bytes(b"not a png"), "not a readable image"),
}


@pytest.mark.parametrize("case", list(BREAKAGES))
def test_malformed_folder_is_a_clear_error(saved, tmp_path, case):
    folder = copy_folder(saved[1], tmp_path / "t")
    breakage, match = BREAKAGES[case]
    breakage(folder)
    with pytest.raises(ValueError, match=match):
        Trace.load(folder)


def test_oversized_files_are_refused(saved, monkeypatch):
    monkeypatch.setattr(tracecheck, "MAX_TENSOR_BYTES", 100)  # the limits live in tracecheck
    with pytest.raises(ValueError, match="over the 100-byte limit"):
        Trace.load(saved[1])
    monkeypatch.setattr(tracecheck, "MAX_JSON_BYTES", 10)
    with pytest.raises(ValueError, match="trace.json.*over the 10-byte limit"):
        Trace.load(saved[1])


def test_preview_factors_fit_save_and_find(tiny_pipe, tmp_path):
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)) for _ in range(2)]
    fit = decode.fit_preview_factors(tiny_pipe.vae, images)
    assert np.array(fit["factors"]).shape == (4, 3) and len(fit["bias"]) == 3
    decode.save_preview_factors(tmp_path, fit)
    fake = SimpleNamespace(name_or_path=str(tmp_path), vae=tiny_pipe.vae, config={})
    factors, bias = decode.preview_factors_for(fake)
    torch.testing.assert_close(factors, torch.tensor(fit["factors"]))
    sd = decode.preview_factors_for(SimpleNamespace(name_or_path=None, vae=tiny_pipe.vae))
    torch.testing.assert_close(sd[0], torch.tensor(decode.SD15_PREVIEW_FACTORS))
    (tmp_path / "preview.json").write_text('{"factors": [[1, 2]]}')
    with pytest.raises(ValueError, match="C x 3"):
        decode.preview_factors_for(fake)


def test_picture_helpers():
    z = torch.randn(3, 4, 8, 8)
    factors = torch.tensor(decode.SD15_PREVIEW_FACTORS)
    assert [im.size for im in decode.linear_preview(z, factors, scale=2)] == [(16, 16)] * 3
    assert decode.noise_to_images(z, factors, scale=1)[0].size == (8, 8)
    assert decode.channels_to_image(z[0], scale=1).size == (32, 8)
    grid = decode.image_grid([decode.linear_preview(z, factors, scale=1)], pad=1)
    assert grid.size == (3 * 9 + 1, 10)


def test_fast_gallery_decode_is_close_to_float32(mini_pipe):
    """The step galleries' bfloat16 decode (where the CPU has it) stays within 8/255 of float32 on
    real run latents; without native bfloat16 it is the float32 decode itself."""
    from explorer.engine import capture
    from explorer.engine import decode as dec
    from explorer.studies import anatomy

    t = capture.trace(mini_pipe, "a large red circle on a blue background", steps=6, seed=3)
    both = torch.cat([t.latents, t.x0_pred])  # (2T+1, C, h, w)
    exact = np.stack([np.asarray(im, int) for im in dec.vae_decode(mini_pipe.vae, both)])
    fast = np.stack([np.asarray(im, int) for im in dec.vae_decode(mini_pipe.vae, both, fast=True)])
    worst = np.abs(fast - exact).max()
    assert worst <= 8
    if not dec.bf16_native("cpu"):
        assert worst == 0
    pics = anatomy.run_pictures(t)  # the views' decode: the fast one
    assert np.abs(np.asarray(pics.x0[-1], int) - exact[len(t.latents) + t.num_steps - 1]).max() <= 8
