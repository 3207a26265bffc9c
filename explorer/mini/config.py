"""The Mini model's training settings: one dataclass, a comment on every field.

Its own module so that what only reads a setting (the CLIP stages, the app's untrained-CLIP twin,
which needs `seed`) never imports the training command.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Config:
    vae_steps: int = 2000  # AutoencoderKL steps, batch vae_batch
    vae_batch: int = 32
    vae_lr: float = 1e-3
    vae_kl: float = 1e-6  # weight of the KL term (SD used a small one too)
    decoder_steps: int = 1000  # decoder-only fine-tuning (latent space unchanged, edge-aware loss)
    decoder_lr: float = 3e-4
    clip_steps: int = 1000  # contrastive steps, batch clip_batch (+ one hard negative each)
    clip_batch: int = 128
    clip_lr: float = 5e-4
    clip_shapes: int = 0  # 1: the clip stage adds the shape-variant choice, text tower learning too
    clip_positions: int = 0  # 1: the same for the position words
    vision_steps: int = 3000  # CLIP image tower + projections, text tower frozen (see train_vision)
    vision_lr: float = 3e-4
    text_steps: int = 600  # the whole CLIP again: both towers learn the shape words (train_text)
    text_lr: float = 1e-4
    text_anchor: float = 1.0  # weight of the text states' drift from the vision stage's
    unet_steps: int = 6500  # noise-prediction steps, batch unet_batch
    unet_batch: int = 256
    unet_lr: float = 4e-4
    unet_pool: int = 40_000  # training images pre-encoded to latents for the UNet
    caption_dropout: float = 0.1  # share of empty captions, for classifier-free guidance
    min_snr_gamma: float = 5.0  # Min-SNR loss weighting (Hang et al. 2023)
    refine_steps: int = 2500  # UNet fine-tuning with the shape's own latent cells weighted up
    refine_lr: float = 1e-4
    refine_batch: int = 128
    shape_weight: float = 1.0  # refine loss: whole-latent MSE + shape_weight * MSE on the shape
    unet_shape_weight: float = 0.0  # the same weight in the unet stage (0: plain MSE)
    unet_bf16: int = 0  # 1: the unet and refine stages run under bfloat16 autocast (1.7x on a CPU)
    ema_decay: float = 0.999
    save_every: int = 250
    seed: int = 0
