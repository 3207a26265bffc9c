"""The training loop the Mini model's stages share: schedule, checkpoints, progress, EMA, and
loading a finished stage's model (``load_stage_model``)."""

from __future__ import annotations

import contextlib
import math
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from explorer.engine.decode import bf16_native
from explorer.mini import architecture as arch


def lr_at(step: int, total: int, peak: float, warmup: int = 100) -> float:
    """Linear warm-up, then cosine decay to 10% of the peak."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def ramp_at(first: list[int], step: int, ramp: int) -> float:
    """A resumed run's rate factor: rising linearly over its first ``ramp`` steps, counted from
    the step it started at (kept in ``first``), so fresh Adam moments do not jolt it; 1 for a run
    from step 0, which has its warm-up."""
    first[:] = first or [step]
    if first[0] == 0:
        return 1.0
    return min(1.0, (step - first[0] + 1) / max(1, ramp))


def autocast(device: torch.device):
    """bfloat16 autocast: about 2x faster convolutions on CPUs with AVX-512 BF16 and on GPUs;
    float32 on other CPUs, where bfloat16 is emulated (13x slower per mini-things UNet step
    on an AVX2-only EPYC: 62 s against 4.6)."""
    if device.type == "cpu" and not bf16_native(device):
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


def plain_attention(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """On a CPU, train with plain matmul-softmax attention instead of PyTorch's fused kernel.

    The same maths; but the fused kernel's backward pass is slow on these short sequences and
    narrow heads: under bfloat16 autocast a UNet step at batch 128 takes 0.54 s instead of 0.84 s,
    a CLIP step 0.29 s instead of 0.48 s (2 threads, ``benchmarks/bench_training.py``). On a GPU
    the fused kernel stays.
    """
    if device.type != "cpu":
        return model
    if hasattr(model, "set_attn_processor"):  # diffusers
        from diffusers.models.attention_processor import AttnProcessor

        model.set_attn_processor(AttnProcessor())
    else:  # transformers
        model.set_attn_implementation("eager")
    return model


class Checkpoint:
    """A stage's resumable state (model, optimiser, EMA, step) in ``<work>/<stage>.pt``."""

    def __init__(self, work: Path, stage: str):
        self.path = work / f"{stage}.pt"

    def load(self, **objs) -> int:
        if not self.path.exists():
            return 0
        state = torch.load(self.path, map_location="cpu", weights_only=True)
        for name, obj in objs.items():
            obj.load_state_dict(state[name])
        print(f"resumed {self.path.name} at step {state['step']}")
        return int(state["step"])

    def save(self, step: int, **objs) -> None:
        state = {name: obj.state_dict() for name, obj in objs.items()}
        tmp = self.path.with_suffix(".tmp")
        torch.save({**state, "step": step}, tmp)
        tmp.replace(self.path)


def optimize(opt: torch.optim.Optimizer, params, loss: torch.Tensor) -> float:
    """One optimizer step on `loss`, gradients clipped to norm 1; returns the loss."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    opt.step()
    return loss.item()


def train_loop(name, total, step_fn, ckpt, objs, cfg, metrics):
    """Run ``step_fn(step) -> loss`` from the checkpointed step to ``total``, with progress."""
    start = ckpt.load(**objs)
    bar = tqdm(range(start, total), desc=name, initial=start, total=total, dynamic_ncols=True)
    losses, t0 = [], time.time()
    for step in bar:
        losses.append(step_fn(step))
        if step % 10 == 0:
            bar.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}")
        if (step + 1) % cfg.save_every == 0 or step + 1 == total:
            ckpt.save(step + 1, **objs)
    metrics[name] = {
        "steps": total,
        "final_loss": float(np.mean(losses[-50:])) if losses else None,
        "seconds_this_run": round(time.time() - t0, 1),
    }


class EMA(torch.nn.Module):
    """Exponential moving average of a model's parameters, with the usual warm-up of the decay."""

    def __init__(self, model: torch.nn.Module, decay: float):
        super().__init__()
        self.decay = decay
        self.shadow = torch.nn.ParameterList(
            [torch.nn.Parameter(p.detach().clone(), False) for p in model.parameters()]
        )

    @torch.no_grad()
    def update(self, model: torch.nn.Module, step: int) -> None:
        d = min(self.decay, (1 + step) / (10 + step))
        for s, p in zip(self.shadow, model.parameters()):
            s.lerp_(p.detach(), 1 - d)

    def state_for(self, model: torch.nn.Module) -> dict:
        """``model``'s state dict with the averaged parameters in place of the live ones."""
        state = model.state_dict()
        names = [n for n, _ in model.named_parameters()]
        return {**state, **{n: s.detach().clone() for n, s in zip(names, self.shadow)}}


def load_stage_model(stage: str, work: Path, device: torch.device, refined: bool = True):
    """The trained module of a finished stage (the EMA weights for the UNet; the refined UNet
    where that stage has run, unless ``refined`` is false)."""
    if stage == "vae" and (work / "decoder.pt").exists():
        stage = "decoder"  # the decoder-tuned VAE (same encoder)
    if stage == "clip" and (work / "text.pt").exists():
        stage = "text"  # the CLIP whose towers both learned the shape words
    elif stage == "clip" and (work / "vision.pt").exists():
        stage = "vision"  # the image-tuned CLIP (same text tower)
    if stage == "unet" and refined and (work / "refine.pt").exists():
        stage = "refine"  # the shape-refined UNet
    state = torch.load(work / f"{stage}.pt", map_location="cpu", weights_only=True)
    if stage in ("vae", "decoder"):
        model = arch.build_vae()
        model.load_state_dict(state["vae"])
    elif stage in ("clip", "vision", "text"):
        model = arch.build_clip(len(arch.build_tokenizer()))
        model.load_state_dict(state["clip"])
    else:
        model = arch.build_unet()
        if "ema_unet" not in state:  # a stage stopped early: average the EMA shadow into a UNet
            ema = EMA(model, 0.0)
            ema.load_state_dict(state["ema"])
            state["ema_unet"] = ema.state_for(model)
        model.load_state_dict(state["ema_unet"])
    return model.to(device).eval()
