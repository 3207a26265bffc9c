"""How much each kind of word steers the UNet where the layout is decided:
``python -m explorer.mini.things.word_probe [--model mini-things]``.

From one noise at t = 999, the predicted x0 (scaled latents, (1, 4, 16, 16)) of "a {thing} in
the {position}, blue background" against the same prompt with one word group changed: opposite
position words (8 things x 4 pairs), another thing (4 pairs), another background (8 things).
Prints the mean absolute change of each; a word the UNet ignores changes nothing.
"""

from __future__ import annotations

import argparse

import torch

from explorer.engine.recorder import predict_x0

THINGS = ["cat", "dog", "pizza", "rocket", "tree", "house", "car", "apple"]
OPPOSITE = [("top left", "bottom right"), ("top right", "bottom left"), ("left", "right"),
            ("top", "bottom")]  # fmt: skip


@torch.no_grad()
def word_effects(pipe, seed: int = 0) -> dict[str, float]:
    """Mean |x0 change| at t = 999 when the position, thing or background words change."""
    a = pipe.scheduler.alphas_cumprod[999]
    kind = pipe.scheduler.config.prediction_type
    noise = torch.randn(1, 4, 16, 16, generator=torch.Generator().manual_seed(seed))

    def x0(prompt: str) -> torch.Tensor:
        ids = pipe.tokenizer([prompt], padding="max_length", max_length=77, return_tensors="pt")
        states = pipe.text_encoder(ids.input_ids).last_hidden_state  # (1, 77, W)
        out = pipe.unet(noise, torch.tensor([999]), encoder_hidden_states=states).sample
        return predict_x0(noise, out, a, kind)  # (1, 4, 16, 16)

    def change(p: str, q: str) -> float:
        return (x0(p) - x0(q)).abs().mean().item()

    def mean(values: list[float]) -> float:
        return round(sum(values) / len(values), 3)

    one = "a {} in the {}, {} background".format
    return {
        "position": mean(
            [change(one(t, p, "blue"), one(t, q, "blue")) for t in THINGS for p, q in OPPOSITE]
        ),
        "thing": mean(
            [
                change(one(t, "top left", "blue"), one(u, "top left", "blue"))
                for t, u in zip(THINGS[::2], THINGS[1::2])
            ]
        ),
        "background": mean(
            [change(one(t, "top left", "blue"), one(t, "top left", "yellow")) for t in THINGS]
        ),
    }


def main(argv: list[str] | None = None) -> None:
    from explorer.engine.models import load_pipeline

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="mini-things", help="mini-things or a folder like it")
    args = p.parse_args(argv)
    print(word_effects(load_pipeline(args.model, "cpu")))


if __name__ == "__main__":
    main()
