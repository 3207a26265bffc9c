"""The Mini CLIP's training stages: ``clip`` (contrastive, with hard negatives), ``vision``
(the image tower learns shapes, text tower frozen) and ``text`` (both towers learn the shape words,
text states anchored). Run them through ``python -m explorer.mini.train``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from explorer.mini import architecture as arch
from explorer.mini import data
from explorer.mini.loop import (
    Checkpoint,
    autocast,
    load_stage_model,
    lr_at,
    optimize,
    plain_attention,
    train_loop,
)

if TYPE_CHECKING:
    from explorer.mini.config import Config


def caption_batch(first_seed: int, n: int, device: torch.device):
    """Images (n, 3, 64, 64) as a tensor on ``device``, their captions, scenes and one hard
    negative each."""
    seeds = list(range(first_seed, first_seed + n))
    images, captions, scenes = data.batch(seeds)
    negatives = [data.hard_negative(s, sc) for s, sc in zip(seeds, scenes)]
    return torch.from_numpy(images).to(device), captions, scenes, negatives


def clip_loss(model, tokenizer, images, captions, negatives, device, v=None) -> torch.Tensor:
    """CLIP's symmetric contrastive loss, with one hard-negative caption per image.

    image -> text: each image picks its caption among the batch's B captions and B hard negatives;
    text -> image: each caption picks its image among the B images.
    """
    # the causal text tower pools at the first end token: padding to the longest caption gives
    # the same features as padding to 77, at a fraction of the cost
    texts = tokenizer(captions + negatives, padding="longest", return_tensors="pt")
    t = model.get_text_features(input_ids=texts.input_ids.to(device)).pooler_output  # (2B, P)
    if v is None:  # (B, P), normalized
        v = F.normalize(model.get_image_features(pixel_values=images).pooler_output.float(), dim=-1)
    t = F.normalize(t.float(), dim=-1)
    scale = model.logit_scale.exp().clamp(max=100)
    logits = scale * v @ t.T  # (B, 2B)
    target = torch.arange(len(captions), device=device)
    return 0.5 * (
        F.cross_entropy(logits, target) + F.cross_entropy(logits[:, : len(captions)].T, target)
    )


def train_clip(cfg: Config, work: Path, device: torch.device, metrics: dict) -> None:
    """CLIP from scratch on the contrastive loss with hard negatives; with ``clip_shapes`` each
    image also picks its caption among those that differ only in the shape word, the text tower
    learning from that choice too (as in the text stage), so the towers never merge two shapes;
    ``clip_positions`` does the same for the position words."""
    from explorer.mini import judge

    torch.manual_seed(cfg.seed)
    tokenizer = arch.build_tokenizer()
    model = plain_attention(arch.build_clip(len(tokenizer)), device).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.clip_lr, weight_decay=0.1)
    offset = 500_000_000  # other training seeds than the VAE's first ones (any < HELDOUT_START)

    def step_fn(step: int) -> float:
        pixels, captions, scenes, negatives = caption_batch(
            offset + step * cfg.clip_batch, cfg.clip_batch, device
        )
        for g in opt.param_groups:
            g["lr"] = lr_at(step, cfg.clip_steps, cfg.clip_lr)
        variants = [judge.shape_options] if cfg.clip_shapes else []
        variants += [judge.position_options] if cfg.clip_positions else []
        with autocast(device):
            loss = choice_loss(
                model, tokenizer, pixels, captions, scenes, negatives, variants, text_grad=True
            )
        return optimize(opt, model.parameters(), loss)

    objs = dict(clip=model, opt=opt)
    train_loop("clip", cfg.clip_steps, step_fn, Checkpoint(work, "clip"), objs, cfg, metrics)


def variant_loss(model, tokenizer, v, options, device, text_grad: bool = False) -> torch.Tensor:
    """Each image (row of ``v``, normalized) picks its caption among ``options``: captions of its
    own scene that differ in one word only, the true one first. The text tower learns only with
    ``text_grad`` (the text stage); otherwise only the text projection does."""
    flat = [c for opts in options for c in opts]
    ids = tokenizer(flat, padding="longest", return_tensors="pt").input_ids.to(device)
    with torch.set_grad_enabled(text_grad and torch.is_grad_enabled()):
        # causal text tower: the end token's state ignores the padding length
        pooled = model.text_model(input_ids=ids).pooler_output  # (B*K, W)
    t = F.normalize(model.text_projection(pooled).float(), dim=-1).view(
        len(options), -1, v.shape[1]
    )
    logits = model.logit_scale.exp().clamp(max=100) * torch.einsum("bp,bkp->bk", v, t)  # (B, K)
    return F.cross_entropy(logits, torch.zeros(len(options), dtype=torch.long, device=device))


def choice_loss(model, tokenizer, pixels, captions, scenes, negatives, variants, text_grad=False):
    """The contrastive loss (``clip_loss``) plus, for each function in ``variants`` (such as
    ``judge.shape_options``), each image's choice among its scene's captions that differ in that
    word only (``variant_loss``)."""
    device = pixels.device
    v = F.normalize(
        model.get_image_features(pixel_values=pixels).pooler_output.float(), dim=-1
    )  # (B, P)
    loss = clip_loss(model, tokenizer, pixels, captions, negatives, device, v)
    true = [data.full_caption(sc) for sc in scenes]
    for options in variants:
        opts = [[c] + [o for o in options(sc) if o != c] for c, sc in zip(true, scenes)]
        loss = loss + variant_loss(model, tokenizer, v, opts, device, text_grad)
    return loss


def train_vision(cfg: Config, work: Path, device: torch.device, metrics: dict) -> None:
    """Teach the CLIP image tower to see shapes, without moving what the UNet reads.

    Starts from the trained CLIP; freezes the text tower (its hidden states condition the UNet) and
    trains the image tower and both projections on the contrastive loss plus, per image, the choice
    among the captions of its scene that differ only in the shape word, and only in the position.
    """
    from explorer.mini import judge

    torch.manual_seed(cfg.seed + 2)
    tokenizer = arch.build_tokenizer()
    model = plain_attention(load_stage_model("clip", work, device).train(), device)
    model.text_model.requires_grad_(False)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.vision_lr, weight_decay=0.1)
    offset = 700_000_000  # fresh training seeds

    def step_fn(step: int) -> float:
        pixels, captions, scenes, negatives = caption_batch(
            offset + step * cfg.clip_batch, cfg.clip_batch, device
        )
        for g in opt.param_groups:
            g["lr"] = lr_at(step, cfg.vision_steps, cfg.vision_lr)
        with autocast(device):
            variants = (judge.shape_options, judge.position_options)
            loss = choice_loss(model, tokenizer, pixels, captions, scenes, negatives, variants)
        return optimize(opt, params, loss)

    objs = dict(clip=model, opt=opt)
    train_loop("vision", cfg.vision_steps, step_fn, Checkpoint(work, "vision"), objs, cfg, metrics)


def train_text(cfg: Config, work: Path, device: torch.device, metrics: dict) -> None:
    """Fine-tune the whole CLIP so both towers tell apart the shape words the first stages merged.

    After the clip and vision stages the text tower's states for "circle" and "square" were
    almost the same (distance 0.7 at the shape word, against 5.6 to 8.4 for the other shapes),
    and so were the image tower's features of circles and squares: each tower had nothing in the
    other to learn the difference from. Here both towers and projections learn together from the
    contrastive loss and the shape variants (as in the vision stage, now with the text tower
    learning too), while an anchor keeps the text tower's hidden states, which the UNet
    reads, near the vision stage's (squared distance relative to their size, weight
    ``text_anchor``), so a UNet trained on the old states needs only a fine-tune (``refine``).
    """
    from explorer.mini import judge

    torch.manual_seed(cfg.seed + 4)
    tokenizer = arch.build_tokenizer()
    model = plain_attention(load_stage_model("clip", work, device).train(), device)
    anchor = plain_attention(load_stage_model("clip", work, device), device).text_model
    anchor.requires_grad_(False)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.text_lr, weight_decay=0.1)
    offset = 800_000_000  # fresh training seeds

    def step_fn(step: int) -> float:
        pixels, captions, scenes, negatives = caption_batch(
            offset + step * cfg.clip_batch, cfg.clip_batch, device
        )
        for g in opt.param_groups:
            g["lr"] = lr_at(step, cfg.text_steps, cfg.text_lr, warmup=50)
        with autocast(device):
            loss = choice_loss(
                model, tokenizer, pixels, captions, scenes, negatives, [judge.shape_options], True
            )
            ids = tokenizer(
                captions, padding="max_length", truncation=True, return_tensors="pt"
            ).input_ids.to(device)  # (B, 77): what the UNet reads
            states = model.text_model(input_ids=ids).last_hidden_state.float()  # (B, 77, W)
            with torch.no_grad():
                old = anchor(input_ids=ids).last_hidden_state.float()
            drift = (states - old).pow(2).mean() / old.pow(2).mean()
            loss = loss + cfg.text_anchor * drift
        return optimize(opt, model.parameters(), loss)

    objs = dict(clip=model, opt=opt)
    train_loop("text", cfg.text_steps, step_fn, Checkpoint(work, "text"), objs, cfg, metrics)
