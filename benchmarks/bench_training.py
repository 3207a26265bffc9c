"""Training-step speed of the Mini model's UNet and CLIP: fused vs plain attention, side by side.

    python benchmarks/bench_training.py [--rounds 5] [--threads 2]

Each round times one optimizer step of each setting in turn, on the same model and batch, so
slow drifts on a busy machine hit every setting alike:
- UNet at batch 128 (random weights, 16x16 latents, 77 text states): fp32 with PyTorch's fused
  attention (the shipped recipe's UNet stages), bfloat16 autocast with the fused kernel, and
  bfloat16 autocast with plain matmul-softmax attention (``plain_attention``, the cpu recipe);
- CLIP at batch 128 images x 128 captions of 20 tokens, bfloat16 autocast (as the CLIP stages
  train), fused vs plain attention.
Prints the median seconds of each and the speed-ups.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time

import common  # noqa: F401 -- puts the repository on sys.path
import torch

from explorer.mini import architecture as arch


def set_attention(model: torch.nn.Module, plain: bool) -> None:
    """Fused (PyTorch's scaled_dot_product_attention) or plain matmul-softmax attention."""
    if hasattr(model, "set_attn_processor"):
        from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0

        model.set_attn_processor(AttnProcessor() if plain else AttnProcessor2_0())
    else:
        model.set_attn_implementation("eager" if plain else "sdpa")


def unet_step(unet, opt, batch, bf16: bool) -> None:
    x, t, cond = batch
    with torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext():
        pred = unet(x, t, encoder_hidden_states=cond).sample.float()  # (B, 4, 16, 16)
    loss = (pred - x).pow(2).mean()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def clip_step(clip, opt, batch) -> None:
    ids, pixels = batch
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = clip(input_ids=ids, pixel_values=pixels).logits_per_image.float()  # (B, B)
    target = torch.arange(len(logits))
    loss = torch.nn.functional.cross_entropy(logits, target)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    unet = arch.build_unet().train()
    unet_opt = torch.optim.AdamW(unet.parameters(), lr=1e-4)
    unet_batch = (
        torch.randn(128, 4, 16, 16),
        torch.randint(0, 1000, (128,)),
        torch.randn(128, 77, arch.TEXT_WIDTH),
    )
    vocab = len(arch.build_tokenizer())
    clip = arch.build_clip(vocab).train()
    clip_opt = torch.optim.AdamW(clip.parameters(), lr=1e-4)
    clip_batch = (torch.randint(3, vocab, (128, 20)), torch.randn(128, 3, 64, 64))

    settings = {
        "unet fp32, fused attention": lambda: unet_step(unet, unet_opt, unet_batch, False),
        "unet bf16, fused attention": lambda: unet_step(unet, unet_opt, unet_batch, True),
        "unet bf16, plain attention": lambda: unet_step(unet, unet_opt, unet_batch, True),
        "clip bf16, fused attention": lambda: clip_step(clip, clip_opt, clip_batch),
        "clip bf16, plain attention": lambda: clip_step(clip, clip_opt, clip_batch),
    }
    times: dict[str, list[float]] = {name: [] for name in settings}
    for _ in range(args.rounds + 1):  # the first round warms up and is dropped
        for name, step in settings.items():
            set_attention(unet if name.startswith("unet") else clip, "plain" in name)
            start = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - start)
    med = {name: statistics.median(ts[1:]) for name, ts in times.items()}
    print(f"{args.threads} threads, {args.rounds} rounds, median seconds per step:")
    for name, value in med.items():
        print(f"  {name:28s} {value:.3f}")
    unet = med["unet bf16, plain attention"]
    print(
        f"speed-up of the unet's plain bf16 step: {med['unet fp32, fused attention'] / unet:.2f}x"
        f" over fp32 fused, {med['unet bf16, fused attention'] / unet:.2f}x over bf16 fused"
    )
    clip = med["clip bf16, fused attention"] / med["clip bf16, plain attention"]
    print(f"speed-up of the clip's plain step: {clip:.2f}x")


if __name__ == "__main__":
    main()
