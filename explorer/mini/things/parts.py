"""The ``mini-things`` model's parts: the same classes as SD and as ``mini-shapes``, sized for
128x128 pictures of a hundred and more things.

| part         | class                     | mini-shapes          | mini-things               |
|--------------|---------------------------|----------------------|---------------------------|
| tokenizer    | PreTrainedTokenizerFast   | word-level, 77       | word-level, world.json    |
| text encoder | CLIPTextModel             | 4 layers, 128 wide   | 4 layers, 128 wide        |
| image enc.   | CLIPVisionModel + proj.   | ViT 64 px, patch 8   | ViT 128 px, patch 16      |
| VAE          | AutoencoderKL             | f 4: 64² -> 4x16²    | f 8: 128² -> 4x16²        |
| UNet         | UNet2DConditionModel, eps | 5.8 M, 32-128 wide   | 12.9 M, 48-192 wide       |
| scheduler    | DDIM, scaled_linear       | SD's                 | SD's                      |
"""

from __future__ import annotations

import functools
from pathlib import Path

from diffusers import UNet2DConditionModel
from transformers import CLIPConfig, CLIPModel, PreTrainedTokenizerFast

from explorer.mini import architecture as arch
from explorer.mini.things import world

MODEL_DIR = Path(__file__).parent / "model"  # the committed folder: world.json, vae/, ...
LATENT = world.PICTURE // 8  # 16: the latent side


@functools.cache
def vocabulary(folder: Path = MODEL_DIR) -> tuple[str, ...]:
    """The words of the world in ``folder``'s ``world.json``."""
    return tuple(world.vocabulary(world.read_world(folder)))


def build_tokenizer(folder: Path = MODEL_DIR) -> PreTrainedTokenizerFast:
    """SD's 77-token layout over the world's words (``architecture.build_tokenizer``)."""
    return arch.build_tokenizer(list(vocabulary(folder)))


def clip_config(vocab_size: int) -> CLIPConfig:
    """mini-shapes' CLIP (``architecture.clip_config``) on 128 px pictures in 8x8 patches of
    16 px: the cost of mini-shapes' 64 px tower."""
    return arch.clip_config(vocab_size, image_size=world.PICTURE, patch_size=16)


def build_clip(vocab_size: int) -> CLIPModel:
    return CLIPModel(clip_config(vocab_size))


@functools.lru_cache(maxsize=1)
def untrained_clip(vocab_size: int) -> CLIPModel:
    """The CLIP exactly as training started it (``train_clip`` seeds torch with 0, then calls
    ``build_clip``); the global RNG is left as it was."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return build_clip(vocab_size).eval()


def build_unet() -> UNet2DConditionModel:
    """mini-shapes' UNet (``architecture.build_unet``: resolutions 16, 8, 4 and 2, cross-attention
    at 8, 4 and 2), wider for a hundred things' looks; 12.9 M parameters."""
    return arch.build_unet(widths=(48, 96, 192, 192), head_dim=8)
