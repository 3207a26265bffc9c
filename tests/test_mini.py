"""The Mini Stable Diffusion: its data, tokenizer, saved folder, loading rules and training
script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from explorer.engine.models import MINI_DIR, ModelError, check_safetensors, load_pipeline
from explorer.mini import architecture as arch
from explorer.mini import data, judge

ROOT = Path(__file__).resolve().parents[1]


def test_data_is_deterministic_per_seed():
    a_img, a_cap, a_scene = data.sample(123)
    b_img, b_cap, b_scene = data.sample(123)
    assert np.array_equal(np.asarray(a_img), np.asarray(b_img))
    assert (a_cap, a_scene) == (b_cap, b_scene)
    assert data.sample(124)[2] != a_scene


def test_heldout_split_is_separate():
    held = data.heldout_seeds(512)
    assert min(held) >= data.HELDOUT_START
    # every seed any training stage reads is below the held-out range
    from explorer.mini.config import Config

    cfg = Config()
    assert cfg.vae_steps * cfg.vae_batch < data.HELDOUT_START
    assert 500_000_000 + cfg.clip_steps * cfg.clip_batch < data.HELDOUT_START
    assert cfg.unet_pool < data.HELDOUT_START


def test_scene_vocabulary_and_colours():
    seen = {data.sample_scene(s) for s in range(2000)}
    assert {s.shape for s in seen} == set(data.SHAPES)
    assert {s.position for s in seen} == set(data.POSITIONS)
    assert all(s.colour != s.background for s in seen)
    assert set(data.SHAPES) >= {"circle", "square", "triangle", "star", "cross"}


def test_render_is_antialiased_and_border_is_background():
    scene = data.Scene("circle", "red", "blue", "large", "center", 32.0, 32.0, 13.0)
    a = np.asarray(data.render(scene)).reshape(-1, 3)
    colours = {tuple(c) for c in a}
    assert tuple(data.COLOURS["red"]) in colours and tuple(data.COLOURS["blue"]) in colours
    assert len(colours) > 2  # blended edge pixels: anti-aliasing
    r = judge.read(data.render(scene))
    assert (r.background, r.colour, r.position) == ("blue", "red", "center")


def test_judge_reads_true_images():
    scenes = [data.sample_scene(s) for s in data.heldout_seeds(100)]
    readings = [judge.read(data.render(s)) for s in scenes]
    assert all(r.background == s.background for r, s in zip(readings, scenes))
    assert sum(r.colour == s.colour for r, s in zip(readings, scenes)) >= 98
    assert sum(r.position == s.position for r, s in zip(readings, scenes)) >= 98
    assert sum(r.shape == s.shape for r, s in zip(readings, scenes)) >= 98


def test_judge_reads_the_shape_whatever_its_colours_and_size():
    from dataclasses import replace

    base = data.Scene("circle", "red", "blue", "large", "center", 32.0, 32.0, 13.0)
    for shape in data.SHAPES:
        for colour, background in (("yellow", "white"), ("black", "purple")):
            for radius, (cx, cy) in ((7.0, (18.0, 46.0)), (13.0, (33.5, 30.5))):
                scene = replace(
                    base,
                    shape=shape,
                    colour=colour,
                    background=background,
                    radius=radius,
                    cx=cx,
                    cy=cy,
                )
                assert judge.read(data.render(scene)).shape == shape, scene


def test_hard_negative_changes_exactly_one_word():
    for seed in range(50):
        _, cap, scene = data.sample(seed)
        neg = data.hard_negative(seed, scene)
        a, b = cap.replace(",", " ,").split(), neg.replace(",", " ,").split()
        assert neg != cap
        if len(a) == len(b):  # position names may have one or two words
            assert sum(x != y for x, y in zip(a, b)) <= 2


def test_tokenizer_pads_to_77_with_end_token_and_marks_unknown_words():
    tok = arch.build_tokenizer()
    ids = tok("A Red circle zebra", padding="max_length", truncation=True).input_ids
    assert len(ids) == arch.CONTEXT == 77
    assert ids[0] == 0 and ids[5] == 1 and ids[-1] == 1
    assert tok.convert_ids_to_tokens(ids[4]) == arch.UNK
    long = " ".join(["red"] * 100)
    assert len(tok(long, padding="max_length", truncation=True).input_ids) == 77


def test_mini_folder_is_standard_diffusers_safetensors_only():
    index = json.loads((MINI_DIR / "model_index.json").read_text())
    assert index["_class_name"] == "StableDiffusionPipeline"
    for part in ("unet", "vae", "text_encoder", "tokenizer", "scheduler", "clip"):
        assert (MINI_DIR / part).is_dir()
    files = [p for p in MINI_DIR.rglob("*") if p.is_file()]
    assert not [p for p in files if p.suffix in (".bin", ".ckpt", ".pt", ".pth", ".pkl")]
    assert sum(p.stat().st_size for p in files) <= 40 * 2**20


def test_offline_load_with_plain_diffusers():
    code = (
        "import torch; from diffusers import StableDiffusionPipeline as P;"
        f"p = P.from_pretrained({str(MINI_DIR)!r}); print(type(p).__name__)"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "StableDiffusionPipeline" in out.stdout


def test_load_pipeline_is_cached_and_float32_on_cpu(mini_pipe):
    assert load_pipeline(None, "cpu") is mini_pipe
    assert mini_pipe.unet.dtype == torch.float32
    assert mini_pipe.vae.config.scaling_factor != 1.0  # computed from latent statistics


def test_pickled_checkpoint_is_refused(tmp_path):
    (tmp_path / "model_index.json").write_text("{}")
    for part in ("unet", "vae", "text_encoder"):
        (tmp_path / part).mkdir()
        (tmp_path / part / "diffusion_pytorch_model.bin").write_bytes(b"not loaded")
    with pytest.raises(ModelError, match="never loaded"):
        check_safetensors(tmp_path)
    with pytest.raises(ModelError, match="never loaded"):
        load_pipeline(str(tmp_path), "cpu")


@pytest.mark.parametrize("bad", ["no/such/folder/here", "not-a-hub-id", "/nonexistent"])
def test_unknown_model_is_a_clear_error(bad):
    with pytest.raises(ModelError):
        load_pipeline(bad, "cpu")


@pytest.mark.slow
def test_generated_red_square_on_white(mini_pipe):
    gen = torch.Generator("cpu").manual_seed(0)
    image = mini_pipe(
        "a large red square on a white background, center",
        num_inference_steps=25,
        guidance_scale=5.0,
        generator=gen,
    ).images[0]
    a = np.asarray(image, dtype=np.float32)
    border = np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])
    assert np.abs(border - 255).mean() < 30  # white border
    middle = a[24:40, 24:40].reshape(-1, 3).mean(axis=0)
    assert judge.nearest_colour(middle) == "red"


@pytest.mark.slow
def test_training_smoke_run_of_every_stage(tmp_path):
    cmd = [sys.executable, "-m", "explorer.mini.train", "--smoke", "--work", str(tmp_path / "w")]
    cmd += ["--out", str(tmp_path / "model"), "--device", "cpu"]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    metrics = json.loads((tmp_path / "w" / "metrics.json").read_text())
    assert {"vae", "clip", "vision", "text", "unet", "refine", "decoder", "export"} <= set(
        metrics["minutes"]
    )
    check_safetensors(tmp_path / "model")
    # resuming a finished stage does nothing and still succeeds
    again = subprocess.run(
        cmd[:3] + ["--stage", "vae"] + cmd[3:], capture_output=True, text=True, cwd=ROOT
    )
    assert again.returncode == 0 and "resumed vae.pt at step 2" in again.stdout + again.stderr


@pytest.mark.slow
def test_side_by_side_run_with_shape_knobs_skips_zero_step_stages(tmp_path):
    """The CPU recipe's way of running: vae, pool and decoder in a second process beside CLIP, the
    CLIP and UNet stages with their shape and position terms, the UNet under bfloat16 autocast,
    stages with no steps left out."""
    work = tmp_path / "w"
    cmd = [sys.executable, "-m", "explorer.mini.train", "--smoke", "--side-by-side"]
    cmd += ["--clip-shapes", "1", "--clip-positions", "1", "--unet-shape-weight", "1.0"]
    cmd += ["--unet-bf16", "1", "--unet-lr", "8e-4", "--vision-steps", "0"]
    cmd += ["--text-steps", "0", "--refine-steps", "0", "--work", str(work)]
    cmd += ["--out", str(tmp_path / "model"), "--device", "cpu"]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    metrics = json.loads((work / "metrics.json").read_text())
    assert set(metrics["minutes"]) == {"vae", "pool", "clip", "unet", "decoder", "export"}
    side = json.loads((work / "metrics_side.json").read_text())["minutes"].keys()
    assert side == {"vae", "pool", "decoder"}
    config = metrics["config"]
    assert config["clip_shapes"] == config["clip_positions"] == config["unet_bf16"] == 1
    assert config["unet_shape_weight"] == 1.0 and config["unet_lr"] == 8e-4
    assert (work / "masks_64.pt").exists()  # the unet stage weighted the shape's cells
    assert not (work / "vision.pt").exists() and not (work / "refine.pt").exists()
    check_safetensors(tmp_path / "model")


def test_cpu_recipe_names_real_settings():
    from explorer.mini.config import Config
    from explorer.mini.train import RECIPES

    for recipe in RECIPES.values():
        Config(**recipe)  # a misspelt setting would raise here


def test_clip_text_features_do_not_depend_on_the_padding_length():
    """clip_loss pads to the longest caption, not to 77: the causal text tower pools at the first
    end token, so the features must be the same."""
    tok = arch.build_tokenizer()
    torch.manual_seed(0)
    clip = arch.build_clip(len(tok)).eval()
    captions = ["a red circle on a blue background", "small star, top left, black background"]
    feats = [
        clip.get_text_features(
            input_ids=tok(captions, padding=pad, return_tensors="pt").input_ids
        ).pooler_output
        for pad in ("max_length", "longest")
    ]
    assert feats[0].shape == feats[1].shape == (2, 128)
    torch.testing.assert_close(feats[0], feats[1], atol=1e-5, rtol=1e-5)


def test_shape_masks_cover_the_shape_and_not_the_background(tmp_path):
    from explorer.mini.masks import shape_masks

    masks = shape_masks(16, tmp_path)  # (16, 16, 16) on the latent grid
    assert masks.shape == (16, 16, 16) and (tmp_path / "masks_16.pt").exists()
    for seed, m in enumerate(masks.float()):
        s = data.sample_scene(seed)
        assert m[int(s.cy // 4), int(s.cx // 4)] > 0.9  # the shape's centre cell
        ys, xs = torch.nonzero(m > 0, as_tuple=True)
        reach = s.radius / 4 + 2  # the outline, plus the one-cell widening and a cell's size
        assert (ys.float() * 4 + 2 - s.cy).abs().max() <= reach * 4
        assert (xs.float() * 4 + 2 - s.cx).abs().max() <= reach * 4
    assert torch.equal(shape_masks(16, tmp_path), masks)  # cached


def test_plain_attention_is_the_same_maths_as_the_fused_kernel():
    """Training swaps PyTorch's fused attention for plain matmul-softmax on a CPU (faster backward
    on these small heads): UNet and CLIP must give the same outputs either way."""
    from explorer.mini.loop import plain_attention

    cpu = torch.device("cpu")
    torch.manual_seed(0)
    unet, tok = arch.build_unet().eval(), arch.build_tokenizer()
    clip = arch.build_clip(len(tok)).eval()
    x, t, cond = torch.randn(2, 4, 16, 16), torch.tensor([10, 900]), torch.randn(2, 77, 128)
    ids = tok(["a red circle on a blue background", ""], padding="max_length", return_tensors="pt")
    pixels = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        fused = unet(x, t, cond).sample, clip(input_ids=ids.input_ids, pixel_values=pixels)
        plain_attention(unet, cpu), plain_attention(clip, cpu)
        plain = unet(x, t, cond).sample, clip(input_ids=ids.input_ids, pixel_values=pixels)
    processors = {type(proc).__name__ for proc in unet.attn_processors.values()}
    assert processors == {"AttnProcessor"}
    assert clip.config._attn_implementation == "eager"
    torch.testing.assert_close(fused[0], plain[0], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(fused[1].logits_per_image, plain[1].logits_per_image)


def test_text_states_give_each_picture_its_captions_states(tmp_path):
    """The UNet stage computes the frozen text tower's states once per distinct caption."""
    from explorer.mini.loop import Checkpoint
    from explorer.mini.unet_stages import text_states

    tok = arch.build_tokenizer()
    torch.manual_seed(0)
    clip = arch.build_clip(len(tok))
    Checkpoint(tmp_path, "clip").save(1, clip=clip)
    captions = ["a red circle on a blue background", "a star", "a red circle on a blue background"]
    ids = tok(captions, padding="max_length", return_tensors="pt").input_ids  # (3, 77)
    states, empty, rows = text_states(ids, tmp_path, torch.device("cpu"))
    assert states.shape == (2, 77, 128) and rows[0] == rows[2] != rows[1]
    with torch.no_grad():
        direct = clip.text_model(input_ids=ids).last_hidden_state  # (3, 77, 128)
        blank = clip.text_model(
            input_ids=tok([""], padding="max_length", return_tensors="pt").input_ids
        )
    torch.testing.assert_close(states[rows], direct)
    torch.testing.assert_close(empty, blank.last_hidden_state)


def test_a_resumed_run_ramps_its_rates_and_a_fresh_one_keeps_its_warm_up():
    from explorer.mini.loop import lr_at, ramp_at

    fresh, resumed = [], []
    assert [ramp_at(fresh, s, 100) for s in (0, 1, 50)] == [1.0, 1.0, 1.0]
    assert lr_at(0, 1000, 1e-3, 100) == pytest.approx(1e-5)  # the warm-up of a fresh run
    factors = [ramp_at(resumed, s, 100) for s in (900, 949, 999, 1500)]
    assert factors == pytest.approx([0.01, 0.5, 1.0, 1.0])  # counted from where it resumed
