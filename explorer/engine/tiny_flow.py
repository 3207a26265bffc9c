"""Tiny random SD3 and SDXL pipelines built in code: no files, no hub, 64×64 pictures.

The same classes as the real models, at a size that runs in milliseconds on a CPU, as diffusers'
own pipeline tests build them (`get_dummy_components`):

- `tiny_sd3_pipe`: `StableDiffusion3Pipeline` -- a two-layer `SD3Transformer2DModel` (patch 2,
  16 latent channels like SD3's VAE), two `CLIPTextModelWithProjection` towers, T5 absent
  (`text_encoder_3=None`: the pipeline then feeds zeros in T5's place), SD3's
  `FlowMatchEulerDiscreteScheduler` config (shift 3).
- `tiny_sdxl_pipe`: `StableDiffusionXLPipeline` -- a `UNet2DConditionModel` with
  `addition_embed_type="text_time"`, a `CLIPTextModel` and a `CLIPTextModelWithProjection` of
  different widths (as SDXL's 768 and 1280), SDXL's `EulerDiscreteScheduler` config.

The tokenizers are the word-level ones of `explorer.engine.tiny`. Weights are random, so the
pictures are noise: these pipelines exist to test and time the engine.
"""

from __future__ import annotations

import torch
from diffusers import (
    AutoencoderKL,
    EulerDiscreteScheduler,
    FlowMatchEulerDiscreteScheduler,
    SD3Transformer2DModel,
    StableDiffusion3Pipeline,
    StableDiffusionXLPipeline,
    UNet2DConditionModel,
)
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

from explorer.engine.tiny import SD_SCHEDULER, TINY_TEXT, TINY_UNET, TINY_VAE, word_tokenizer

# SD3's published scheduler config (stable-diffusion-3-medium-diffusers/scheduler).
SD3_SCHEDULER = dict(num_train_timesteps=1000, shift=3.0)
# SDXL's published scheduler config: SD 1.x's betas, Euler, "leading" spacing.
SDXL_SCHEDULER = dict(SD_SCHEDULER, timestep_spacing="leading", interpolation_type="linear")

# Two CLIP text towers: the tiny SD one (32 wide, pooled 32) and a wider second (as SDXL's).
TINY_CLIP = TINY_TEXT
TINY_CLIP_2 = dict(TINY_TEXT, hidden_size=48, projection_dim=40)
TINY_SD3_VAE = dict(TINY_VAE, latent_channels=16, shift_factor=0.0609, scaling_factor=1.5305)
TINY_SD3_TRANSFORMER = dict(
    sample_size=8,  # latent grid 8×8 -> 64×64 pixels through the factor-8 VAE
    patch_size=2,  # 4×4 = 16 image tokens
    in_channels=16,
    out_channels=16,
    num_layers=2,
    attention_head_dim=16,
    num_attention_heads=2,
    joint_attention_dim=96,  # CLIP states (32 + 48 = 80) are zero-padded to T5's width
    caption_projection_dim=32,
    pooled_projection_dim=72,  # 32 + 40: both towers' pooled vectors
    pos_embed_max_size=16,
)
TINY_SDXL_UNET = dict(  # the tiny SD UNet, with SDXL's added conditioning
    TINY_UNET,
    cross_attention_dim=80,  # 32 + 48: both towers' hidden states, concatenated
    attention_head_dim=(2, 4),
    use_linear_projection=True,
    addition_embed_type="text_time",
    addition_time_embed_dim=8,
    projection_class_embeddings_input_dim=6 * 8 + 40,  # six time ids + the pooled vector
    transformer_layers_per_block=(1, 1),
)


def clip_tower(config: dict, projection: bool = True) -> torch.nn.Module:
    """A random CLIP text tower for the word-level tokenizer (start 0, end and padding 1)."""
    vocab = len(word_tokenizer())
    cfg = CLIPTextConfig(**config, vocab_size=vocab, bos_token_id=0, eos_token_id=1, pad_token_id=1)
    return (CLIPTextModelWithProjection if projection else CLIPTextModel)(cfg).eval()


def tiny_sd3_pipe(seed: int = 0) -> StableDiffusion3Pipeline:
    """A random-weight SD3 pipeline: 64×64 images, 16×8×8 latents, no T5."""
    torch.manual_seed(seed)
    pipe = StableDiffusion3Pipeline(
        transformer=SD3Transformer2DModel(**TINY_SD3_TRANSFORMER).eval(),
        scheduler=FlowMatchEulerDiscreteScheduler(**SD3_SCHEDULER),
        vae=AutoencoderKL(**TINY_SD3_VAE).eval(),
        text_encoder=clip_tower(TINY_CLIP),
        tokenizer=word_tokenizer(),
        text_encoder_2=clip_tower(TINY_CLIP_2),
        tokenizer_2=word_tokenizer(),
        text_encoder_3=None,
        tokenizer_3=None,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def tiny_sdxl_pipe(seed: int = 0) -> StableDiffusionXLPipeline:
    """A random-weight SDXL pipeline: 64×64 images, 4×8×8 latents, two text towers."""
    torch.manual_seed(seed)
    pipe = StableDiffusionXLPipeline(
        vae=AutoencoderKL(**TINY_VAE).eval(),
        text_encoder=clip_tower(TINY_CLIP, projection=False),
        text_encoder_2=clip_tower(TINY_CLIP_2),
        tokenizer=word_tokenizer(),
        tokenizer_2=word_tokenizer(),
        unet=UNet2DConditionModel(**TINY_SDXL_UNET).eval(),
        scheduler=EulerDiscreteScheduler.from_config(SDXL_SCHEDULER),
        add_watermarker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe
