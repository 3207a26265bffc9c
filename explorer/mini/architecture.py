"""The Mini Stable Diffusion's parts: the same classes as SD, sized for a 2-core CPU.

| part         | class                         | SD 1.5                  | Mini                   |
|--------------|-------------------------------|-------------------------|------------------------|
| tokenizer    | PreTrainedTokenizerFast       | CLIPTokenizer (BPE), 77 | word-level, 77         |
| text encoder | CLIPTextModel                 | 12 layers, 768 wide     | 4 layers, 128 wide     |
| image enc.   | CLIPVisionModel + projections | not shipped with SD     | ViT 4 layers, patch 8  |
| VAE          | AutoencoderKL                 | factor 8: 3x512²->4x64² | factor 4: 3x64²->4x16² |
| UNet         | UNet2DConditionModel, epsilon | 860 M parameters        | about 6 M              |
| scheduler    | DDIM, scaled_linear           | β 0.00085 to 0.012      | same                   |
"""

from __future__ import annotations

from functools import lru_cache

import torch
from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
from transformers import CLIPConfig, CLIPModel, PreTrainedTokenizerFast

from explorer.mini import data
from explorer.mini.config import Config

CONTEXT = 77  # tokens per prompt, as in SD
BOS, EOS, UNK = "<|startoftext|>", "<|endoftext|>", "<|unk|>"  # ids 0, 1, 2; EOS also pads
TEXT_WIDTH = 128  # text hidden size = the UNet's cross-attention width


def build_tokenizer(words: list[str] | None = None) -> PreTrainedTokenizerFast:
    """A word-level tokenizer over a vocabulary (the shapes dataset's by default), built with no
    files.

    Like SD's CLIP tokenizer it lower-cases, wraps the text in start/end tokens and pads with the
    end token to 77; unknown words become ``<|unk|>``.
    """
    vocab = {BOS: 0, EOS: 1, UNK: 2}
    for word in data.vocabulary() if words is None else words:
        vocab[word] = len(vocab)
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A {EOS}", special_tokens=[(BOS, 0), (EOS, 1)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=EOS,
        unk_token=UNK,
        model_max_length=CONTEXT,
    )


def clip_config(vocab_size: int, image_size: int = data.SIZE, patch_size: int = 8) -> CLIPConfig:
    """Text tower 4 layers 128 wide over 77 tokens; ViT 4 layers 128 wide on ``image_size``
    pictures in ``patch_size`` patches (mini-things: 128 px in patches of 16)."""
    text = dict(
        vocab_size=vocab_size,
        hidden_size=TEXT_WIDTH,
        intermediate_size=4 * TEXT_WIDTH,
        num_hidden_layers=4,
        num_attention_heads=4,
        max_position_embeddings=CONTEXT,
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=1,
    )
    vision = dict(
        hidden_size=128,
        intermediate_size=512,
        num_hidden_layers=4,
        num_attention_heads=4,
        image_size=image_size,
        patch_size=patch_size,
    )
    return CLIPConfig(text_config=text, vision_config=vision, projection_dim=128)


def build_clip(vocab_size: int) -> CLIPModel:
    return CLIPModel(clip_config(vocab_size))


@lru_cache(maxsize=1)
def untrained_clip(vocab_size: int) -> CLIPModel:
    """The CLIP exactly as training started it: `train_clip` seeds torch with `Config.seed`, then
    calls `build_clip`. The global RNG is left as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(Config().seed)
        return build_clip(vocab_size).eval()


def build_vae() -> AutoencoderKL:
    """Downsampling factor 4 (SD uses 8): two stride-2 stages, 4 latent channels.

    At factor 8 a 64x64 picture is 4x8x8 numbers and a small shape (radius 7 px) spans about 2x2
    latent cells: even the VAE's own reconstructions of held-out pictures showed the right outline
    for only half of the small shapes, which caps prompt following below its bar. Factor 4
    (4x16x16) keeps the outlines.
    """
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 3,
        up_block_types=("UpDecoderBlock2D",) * 3,
        block_out_channels=(32, 64, 128),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=16,
        sample_size=data.SIZE,
    )


def build_unet(
    widths: tuple[int, ...] = (32, 64, 128, 128), head_dim: int = 4
) -> UNet2DConditionModel:
    """Four resolutions of the 16x16 latent (16, 8, 4, 2), cross-attention at 8, 4 and 2.

    Like SDXL, the highest resolution has no attention: there it only refines outlines, and
    attention over 256 positions would double the step's cost. ``widths`` are the four levels'
    channels (mini-things' UNet is this one, wider).
    """
    return UNet2DConditionModel(
        sample_size=data.SIZE // 4,
        in_channels=4,
        out_channels=4,
        down_block_types=(
            "DownBlock2D",
            "CrossAttnDownBlock2D",
            "CrossAttnDownBlock2D",
            "DownBlock2D",
        ),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        block_out_channels=widths,
        layers_per_block=1,
        cross_attention_dim=TEXT_WIDTH,
        attention_head_dim=head_dim,
        norm_num_groups=16,
    )


def build_scheduler() -> DDIMScheduler:
    """SD's noise schedule with SD's inference defaults (no sample clipping)."""
    return DDIMScheduler(
        num_train_timesteps=1000,
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
        prediction_type="epsilon",
    )
