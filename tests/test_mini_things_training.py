"""``mini-things`` beyond its world: tokenizer, caption variants, the CLIP and UNet stages, the
package, the names the engine loads it by, and the evaluation's readers."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from explorer.engine import models
from explorer.mini.things import attention_figures, captions, draw, evaluate, parts, world

needs_font = pytest.mark.skipif(not Path(draw.FONT).exists(), reason="needs fonts-noto-color-emoji")


def test_every_word_of_world_json_is_in_the_tokenizer():
    tok = parts.build_tokenizer()
    w = world.read_world(parts.MODEL_DIR)
    texts = [t["name"] for t in w["things"]] + [s for t in w["things"] for s in t["synonyms"]]
    texts += [b["name"] for b in w["backgrounds"]] + [p["word"] for p in w["positions"]]
    templates = w["templates"]["one"] + w["templates"]["two"]
    texts += list(w["sizes"]) + [re.sub(r"\{[a-z_0-9]+\}", " ", t) for t in templates]
    unk = tok.convert_tokens_to_ids("<|unk|>")
    for text in texts:
        assert unk not in tok(text).input_ids, text
    assert tok("a flamingo on a pink background").input_ids.count(unk) == 0
    assert tok("a unicorn").input_ids.count(unk) == 1  # not a thing of this world


@needs_font
def test_caption_variants_change_one_field_only():
    s = next(draw.scene(x) for x in draw.heldout_seeds(50) if len(draw.scene(x).things) == 2)
    things = captions.thing_options(s)
    assert things[0] == draw.full_caption(s) and len(things) == len(world.THINGS) - 1
    assert len(set(things)) == len(things)
    a, b = s.things[0].thing, s.things[1].thing
    assert all(b in t for t in things) and sum(a in t.split() for t in things[1:]) <= 2
    positions = captions.position_options(s)
    assert len(positions) == 1 + 9 - 2  # the other thing's place is not free
    backgrounds = captions.background_options(s)
    assert len(backgrounds) == len(world.BACKGROUNDS)
    assert all(bg in t for bg, t in zip([s.background], backgrounds))
    sampled = captions.sampled(s, np.random.default_rng(0), 5, 3, 4)
    assert [len(x) for x in sampled] == [5, 3, 4] and all(x[0] == things[0] for x in sampled)


@needs_font
def test_the_things_pipeline_trains_packages_and_runs_from_a_smoke_run(tmp_path):
    work = tmp_path / "w"
    cmd = [sys.executable, "-m", "explorer.mini.train", "--world", "things", "--smoke"]
    cmd += ["--work", str(work), "--threads", "1"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    folder = work / "model"
    for part in ("unet", "vae", "text_encoder", "tokenizer", "scheduler", "clip"):
        assert (folder / part).is_dir(), part
    assert (folder / "world.json").read_text() == (parts.MODEL_DIR / "world.json").read_text()
    assert (folder / "unet" / "training.json").is_file()
    pipe = models.load_pipeline(str(folder), "cpu")
    assert pipe.unet.config.sample_size == 16 and pipe.vae_scale_factor == 8
    from explorer.engine.capture import trace

    run = trace(pipe, "a small cat in the top left, blue background", steps=2, guidance=5.0)
    assert run.image.size == (128, 128) and run.latents.shape == (3, 4, 16, 16)
    ours = np.asarray(run.image)
    plain = pipe(
        "a small cat in the top left, blue background",
        num_inference_steps=2,
        guidance_scale=5.0,
        generator=torch.Generator("cpu").manual_seed(0),
    ).images[0]
    assert np.array_equal(ours, np.asarray(plain))  # the engine runs it as diffusers does


@needs_font
@pytest.mark.parametrize("text_lr", [0.0, 1e-2])
def test_the_unet_stage_resumes_from_the_committed_folder_and_tunes_the_text_tower(
    tmp_path, text_lr
):
    from transformers import CLIPTextModel

    from explorer.mini.things import train_unet

    committed = CLIPTextModel.from_pretrained(parts.MODEL_DIR / "text_encoder", dtype=torch.float32)
    start = train_unet.load_export(parts.build_unet(), parts.MODEL_DIR)
    cfg = train_unet.Config(**{**train_unet.SMOKE, "steps": start + 3, "text_lr": text_lr})
    cfg.ramp = 1
    train_unet.train(cfg, tmp_path, torch.device("cpu"), parts.MODEL_DIR)
    tuned = train_unet.averaged_text(tmp_path)
    moved = max(
        (a - b).abs().max().item() for a, b in zip(tuned.parameters(), committed.parameters())
    )
    if text_lr == 0:
        assert moved == 0.0  # frozen: the package's text encoder is the one the UNet read
    else:
        assert moved > 1e-6  # it learned beside the UNet, and the package takes its EMA


def test_embedded_names_resolve_and_the_old_name_still_loads():
    assert models.mini_name(None) == models.MINI_NAME == "mini-shapes"
    assert models.mini_name("mini-sd") == "mini-shapes"
    assert models.mini_name("mini-things") == "mini-things"
    assert models.mini_name("some/checkpoint") is None
    assert models.load_pipeline("mini-sd", "cpu") is models.load_pipeline(None, "cpu")
    assert models.embedded_name(models.load_pipeline("mini-shapes", "cpu")) == "mini-shapes"


def test_an_untrained_embedded_model_says_what_to_do(tmp_path, monkeypatch):
    empty = tmp_path / "things"
    empty.mkdir()
    monkeypatch.setitem(models.MINI_MODELS, "mini-things", empty)
    with pytest.raises(models.ModelError, match="mini-shapes"):
        models.load_pipeline("mini-things", "cpu")


@needs_font
def test_the_prompt_reader_scores_the_true_pictures_as_the_judge_does():
    scenes = evaluate.prompt_scenes(40)
    assert sum(len(s.things) == 1 for s in scenes) == 20
    assert all(s.things[0].cx >= 0 for s in scenes)
    figures = evaluate.read_prompts([draw.picture(s) for s in scenes], scenes)
    assert figures["one_identity"] >= 0.95 and figures["one_background"] == 1.0
    assert figures["two_both_identified"] >= 0.9 and figures["two_placed"] >= 0.95
    wrong = [draw.picture(s) for s in scenes[1:] + scenes[:1]]  # each prompt gets another picture
    assert evaluate.read_prompts(wrong, scenes)["one_identity"] <= 0.1


@needs_font
def test_attention_shares_measure_the_weight_on_the_thing():
    s = next(draw.scene(x) for x in draw.heldout_seeds(50) if len(draw.scene(x).things) == 2)
    tokens = ["<|startoftext|>", *world.words(draw.full_caption(s)), "<|endoftext|>"]
    spans = attention_figures.name_spans(tokens, s)
    assert [" ".join(tokens[i] for i in span) for span in spans] == [p.thing for p in s.things]
    picture = draw.picture(s)
    maps = np.full((len(tokens), 3, 8, 8), 1.0 / 64, dtype=np.float32)  # an even spread
    even = attention_figures.shares(maps, tokens, s, picture)
    for on, area in even.values():
        assert on == pytest.approx(area, rel=1e-5) and 0 < area < 0.5
    cells = attention_figures.region(
        next(t for t in evaluate.judge.read(picture).things if t.thing == s.things[0].thing),
        (8, 8),
    )
    core = (cells == cells.max()).astype(np.float32)  # the cells the thing covers most
    for i in spans[0]:  # the first name looks only there
        maps[i, :] = core / core.sum()
    on = attention_figures.shares(maps, tokens, s, picture)[s.things[0].thing][0]
    assert on == pytest.approx(cells.max(), rel=1e-5) and on > 0.8


def test_a_model_is_the_same_across_machines_by_its_key():
    assert models.model_key(str(models.MINI_DIR)) == "mini-shapes"
    assert models.model_key("/elsewhere/explorer/mini/model") == "mini-shapes"
    assert models.model_key("/elsewhere/explorer/mini/things/model") == "mini-things"
    assert models.model_key("/data/mini/model") == "/data/mini/model"
    assert models.model_key("owner/name") == "owner/name" and models.model_key(None) is None
