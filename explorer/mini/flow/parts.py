"""mini-flow's parts: mini-shapes' VAE and CLIP text tower, an SD3 transformer trained with the
rectified-flow objective, SD3's flow scheduler, all in a `StableDiffusion3Pipeline`.

| part        | class                           | SD3 medium           | mini-flow                |
|-------------|---------------------------------|----------------------|--------------------------|
| denoiser    | SD3Transformer2DModel, velocity | 24 layers, 1536 wide | 6 layers, 128 wide       |
| text towers | CLIPTextModelWithProjection ×2  | CLIP-L and CLIP-G    | mini-shapes' tower twice |
| T5          | T5EncoderModel                  | T5-XXL               | absent: zeros, as in SD3 |
| VAE         | AutoencoderKL                   | 16 channels, ×8      | mini-shapes' (4, ×4)     |
| scheduler   | FlowMatchEulerDiscreteScheduler | shift 3              | shift 0.75               |

Without T5 the pipeline appends `max_sequence_length` (256) zero rows to the text sequence.
They carry no position, so they stay identical through every block, and in attention 256 equal
keys weigh exactly as one key whose logit is raised by ln 256: training feeds one zero row and
`RepeatedLastKey` adds that ln 256, the same function at a quarter of the cost
(`check_repeated_equivalence` verifies it on the model being trained).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from diffusers import (
    AutoencoderKL,
    FlowMatchEulerDiscreteScheduler,
    SD3Transformer2DModel,
    StableDiffusion3Pipeline,
)
from transformers import CLIPModel, CLIPTextModelWithProjection, PreTrainedTokenizerFast

from explorer.mini.architecture import TEXT_WIDTH

SHAPES_DIR = Path(__file__).parent.parent / "model"  # mini-shapes: the world, VAE and CLIP
MODEL_DIR = Path(__file__).parent / "model"  # the shipped mini-flow
CLIP_TOKENS = 77
T5_ZEROS = 256  # StableDiffusion3Pipeline.__call__'s max_sequence_length default
TRANSFORMER = dict(
    sample_size=16,  # 4×16×16 latents
    patch_size=2,  # 8×8 = 64 image tokens
    in_channels=4,
    out_channels=4,
    num_layers=6,
    attention_head_dim=32,
    num_attention_heads=4,  # 128 wide
    joint_attention_dim=2 * TEXT_WIDTH,  # the two towers' states side by side, no padding
    caption_projection_dim=128,
    pooled_projection_dim=2 * TEXT_WIDTH,  # both towers' pooled vectors
    pos_embed_max_size=16,
)
# shift 0.75 (an inference setting; training draws σ logit-normal, unshifted), picked on 48
# training-split captions at 4 trailing steps, guidance 5: 7.0 px from the 50-step picture against
# 9.7, 11.3 and 16.7 at shifts 0.5, 1 and 2 (see the model card)
SCHEDULER = dict(num_train_timesteps=1000, shift=0.75)


def build_transformer() -> SD3Transformer2DModel:
    return SD3Transformer2DModel(**TRANSFORMER)


def text_tower(shapes: Path = SHAPES_DIR) -> CLIPTextModelWithProjection:
    """mini-shapes' CLIP text tower with its projection (SD3 reads the pooled, projected vector)."""
    clip = CLIPModel.from_pretrained(shapes / "clip", dtype=torch.float32)
    config = clip.config.text_config
    config.projection_dim = clip.config.projection_dim  # 128: the pooled vector CLIP scores with
    tower = CLIPTextModelWithProjection(config)
    tower.text_model.load_state_dict(clip.text_model.state_dict())
    tower.text_projection.load_state_dict(clip.text_projection.state_dict())
    return tower.eval()


def shapes_vae(shapes: Path = SHAPES_DIR) -> AutoencoderKL:
    """mini-shapes' VAE, with SD3's `shift_factor` (0: its latents are centred already)."""
    vae = AutoencoderKL.from_pretrained(shapes / "vae", dtype=torch.float32).eval()
    vae.register_to_config(shift_factor=0.0)
    return vae


def assemble(transformer: SD3Transformer2DModel, shapes: Path = SHAPES_DIR):
    """The mini-flow `StableDiffusion3Pipeline` around `transformer`."""
    tower = text_tower(shapes)
    tokenizer = PreTrainedTokenizerFast.from_pretrained(shapes / "tokenizer")
    pipe = StableDiffusion3Pipeline(
        transformer=transformer,
        scheduler=FlowMatchEulerDiscreteScheduler(**SCHEDULER),
        vae=shapes_vae(shapes),
        text_encoder=tower,
        tokenizer=tokenizer,
        text_encoder_2=tower,
        tokenizer_2=tokenizer,
        text_encoder_3=None,
        tokenizer_3=None,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


class RepeatedLastKey:
    """Joint attention (diffusers' `JointAttnProcessor2_0`, as plain matmul-softmax) where the
    last text row stands for `repeats` identical rows: its key's logit is raised by ln(repeats)."""

    def __init__(self, repeats: int) -> None:
        self.bias = math.log(repeats)

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, *args, **kwargs):
        n, b = hidden_states.shape[1], hidden_states.shape[0]
        heads = lambda x: x.view(b, -1, attn.heads, x.shape[-1] // attn.heads).transpose(1, 2)  # noqa: E731
        q = torch.cat(
            [heads(attn.to_q(hidden_states)), heads(attn.add_q_proj(encoder_hidden_states))], 2
        )
        k = torch.cat(
            [heads(attn.to_k(hidden_states)), heads(attn.add_k_proj(encoder_hidden_states))], 2
        )
        v = torch.cat(
            [heads(attn.to_v(hidden_states)), heads(attn.add_v_proj(encoder_hidden_states))], 2
        )
        logits = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])  # (B, H, L, L)
        bias = torch.zeros(logits.shape[-1], dtype=logits.dtype, device=logits.device)
        bias[-1] = self.bias
        out = (logits + bias).softmax(-1) @ v  # (B, H, L, d)
        out = out.transpose(1, 2).reshape(b, -1, q.shape[1] * q.shape[-1]).to(q.dtype)
        image, text = out[:, :n], out[:, n:]
        if not attn.context_pre_only:
            text = attn.to_add_out(text)
        return attn.to_out[1](attn.to_out[0](image)), text


def for_training(transformer: SD3Transformer2DModel) -> SD3Transformer2DModel:
    transformer.set_attn_processor(RepeatedLastKey(T5_ZEROS))
    return transformer


def short_sequence(embeds: torch.Tensor) -> torch.Tensor:
    """(B, 77 + 256, D) prompt embeds -> (B, 78, D): the CLIP rows and one of the zero rows."""
    return embeds[:, : CLIP_TOKENS + 1]


@torch.no_grad()
def check_repeated_equivalence(transformer: SD3Transformer2DModel, embeds, pooled) -> float:
    """Largest difference between the plain model on the full sequence and the training one on
    the short sequence, for one noisy input (should be float noise, ~1e-6)."""
    from diffusers.models.attention_processor import JointAttnProcessor2_0

    x = torch.randn(embeds.shape[0], 4, 16, 16, generator=torch.Generator().manual_seed(0))
    t = torch.full((embeds.shape[0],), 500.0)
    transformer.set_attn_processor(JointAttnProcessor2_0())
    full = transformer(
        hidden_states=x, timestep=t, encoder_hidden_states=embeds, pooled_projections=pooled
    ).sample
    for_training(transformer)
    short = transformer(
        hidden_states=x,
        timestep=t,
        encoder_hidden_states=short_sequence(embeds),
        pooled_projections=pooled,
    ).sample
    return float((full - short).abs().max())
