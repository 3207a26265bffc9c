"""Shared fixtures: tiny random Stable Diffusion pipelines built in code (no files, no hub)."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

import pytest
import torch
from diffusers import (
    AutoencoderKL,
    PNDMScheduler,
    StableDiffusionPipeline,
    UNet2DConditionModel,
)
from hypothesis import settings
from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import CLIPTextConfig, CLIPTextModel, PreTrainedTokenizerFast

from explorer.engine import threads

# Two OpenMP threads on two cores shared with another busy process spin-wait each other into a
# 100x slowdown (a tiny UNet call: 2 s instead of 12 ms); tests are small, one thread suffices.
threads.set_base(1)

# Property tests draw the same examples on every run (CI must not pass or fail by chance); to
# explore afresh locally: HYPOTHESIS_PROFILE=explore python -m pytest tests/test_fuzz_inputs.py
settings.register_profile("repeatable", derandomize=True)
settings.register_profile("explore", max_examples=500)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))

FIXTURES = Path(__file__).parent / "fixtures"
WORDS = "a an the red green blue yellow circle square triangle on of background small big".split()

# SD 1.x's scheduler config (the one every SD 1.5 checkpoint ships).
SD_SCHEDULER = dict(
    beta_start=0.00085,
    beta_end=0.012,
    beta_schedule="scaled_linear",
    num_train_timesteps=1000,
    skip_prk_steps=True,
    set_alpha_to_one=False,
    steps_offset=1,
    clip_sample=False,
)


def word_tokenizer(max_length: int = 77) -> PreTrainedTokenizerFast:
    """A word-level tokenizer made in code: <|startoftext|>=0, <|endoftext|>=1 (also padding)."""
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1, "<unk>": 2}
    vocab.update({w: i + 3 for i, w in enumerate(WORDS)})
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(
        single="<|startoftext|> $A <|endoftext|>",
        special_tokens=[("<|startoftext|>", 0), ("<|endoftext|>", 1)],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|startoftext|>",
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
        unk_token="<unk>",
        model_max_length=max_length,
    )


def build_pipe(unet: dict, vae: dict, text: dict, seed: int = 0) -> StableDiffusionPipeline:
    """A random-weight StableDiffusionPipeline from component configs (dicts of kwargs)."""
    torch.manual_seed(seed)
    tokenizer = word_tokenizer(text.get("max_position_embeddings", 77))
    text_config = CLIPTextConfig(
        **{**text, "vocab_size": max(text.get("vocab_size", 0), len(tokenizer))},
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=1,
    )
    pipe = StableDiffusionPipeline(
        unet=UNet2DConditionModel(**unet).eval(),
        vae=AutoencoderKL(**vae).eval(),
        text_encoder=CLIPTextModel(text_config).eval(),
        tokenizer=tokenizer,
        scheduler=PNDMScheduler.from_config(SD_SCHEDULER),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


TINY_UNET = dict(
    block_out_channels=(32, 64),
    layers_per_block=1,
    sample_size=8,
    in_channels=4,
    out_channels=4,
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
    cross_attention_dim=32,
    norm_num_groups=32,
)
TINY_VAE = dict(
    block_out_channels=(16, 32, 32, 32),
    in_channels=3,
    out_channels=3,
    down_block_types=["DownEncoderBlock2D"] * 4,
    up_block_types=["UpDecoderBlock2D"] * 4,
    latent_channels=4,
    norm_num_groups=16,
    sample_size=64,
)
TINY_TEXT = dict(
    hidden_size=32,
    intermediate_size=37,
    num_attention_heads=4,
    num_hidden_layers=2,
    max_position_embeddings=77,
    projection_dim=32,
)


@pytest.fixture(scope="session")
def make_tiny_pipe():
    """Factory: make_tiny_pipe(seed=0) -> a fresh tiny random pipeline (64x64 images, 8x8 latents)."""

    def make(seed: int = 0) -> StableDiffusionPipeline:
        return build_pipe(TINY_UNET, TINY_VAE, TINY_TEXT, seed)

    return make


@pytest.fixture(scope="session")
def tiny_pipe(make_tiny_pipe) -> StableDiffusionPipeline:
    """One tiny pipeline shared by the session (tests must not modify it; trace never does)."""
    return make_tiny_pipe()


def sd15_configs() -> tuple[dict, dict, dict]:
    """SD 1.5's published unet / vae / text-encoder configs (tests/fixtures/sd15_*.json)."""
    load = lambda name: {  # noqa: E731
        k: v
        for k, v in json.loads((FIXTURES / f"sd15_{name}.json").read_text()).items()
        if not k.startswith("_")
    }
    return load("unet"), load("vae"), load("text_encoder")


@pytest.fixture(scope="session")
def mini_pipe() -> StableDiffusionPipeline:
    """The embedded Mini SD, loaded from the committed folder with the hub switched off."""
    import os

    os.environ["HF_HUB_OFFLINE"] = "1"
    from explorer.engine.models import load_pipeline

    return load_pipeline(None, "cpu")


@contextlib.contextmanager
def tab_client(pipe, tabs: list[str]):
    """A gradio_client Client of the app with only `tabs` (module paths) on `pipe`, served on
    loopback for the block; the server closes after it."""
    from gradio_client import Client

    from explorer.ui.common import AppContext
    from explorer.ui.layout import build_demo

    demo = build_demo(AppContext(load=lambda: pipe), tabs)
    demo.queue().launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True)
    try:
        yield Client(demo.local_url, verbose=False)
    finally:
        demo.close()
