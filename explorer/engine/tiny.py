"""A tiny random Stable Diffusion pipeline built in code: no files, no hub, 64×64 pictures.

The same classes as SD 1.x (`StableDiffusionPipeline` with a `UNet2DConditionModel`, an
`AutoencoderKL`, a `CLIPTextModel` and SD 1.5's scheduler config) at a size that runs in
milliseconds: what the tests, the benchmarks and an offline notebook use to try the engine
(`explorer.engine.capture.trace(tiny_pipe(), "a red circle")`). Its weights are random, so its
pictures are noise; `build_pipe` takes other component configs (tests build SD 1.5-shaped ones).
"""

from __future__ import annotations

import torch
from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import CLIPTextConfig, CLIPTextModel, PreTrainedTokenizerFast

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


def tiny_pipe(seed: int = 0) -> StableDiffusionPipeline:
    """A random-weight pipeline: 64×64 images, 4×8×8 latents, a 32-wide text encoder."""
    return build_pipe(TINY_UNET, TINY_VAE, TINY_TEXT, seed)
