"""Same direction, different magnitude: scale the prompt embedding by k and watch the image change.

The text encoder turns a prompt into z, an (L, D) matrix (one D-vector per token position). Three
rules make a family z_k with z_1 = z:
  multiply    z_k = k·z                            every position, BOS and padding included;
  tokens      z_k[j] = k·z[j] for the prompt's own tokens j (between BOS and the first EOS),
              the other positions unchanged;
  from_empty  z_k = z_∅ + k·(z − z_∅)               with z_∅ the embedding of the empty prompt
              (what guidance pushes away from), so k = 0 is the unconditional prompt.
Under `multiply`, cos(z_k, z_1) = 1 for every k > 0 while ||z_k|| = k·||z||: same direction,
different length, different picture.

All factors run as ONE batched pipeline call (`batch.run_batch`) from one shared starting noise,
the noise a plain run with the seed starts from; the negative embedding is not scaled.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from explorer.engine.batch import run_batch
from explorer.engine.capture import prompt_tokens
from explorer.engine.models import private_tokenizer, run_copy
from explorer.engine.tokens import token_kinds
from explorer.inputs.errors import VisitorError
from explorer.studies.experiments import Run, pixel_distance

RULES: dict[str, str] = {
    "multiply": "multiply the whole embedding: k·z",
    "tokens": "multiply only the prompt's own tokens",
    "from_empty": "scale from the empty prompt: z_∅ + k·(z − z_∅)",
}
DEFAULT_FACTORS = (0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0)


@dataclass
class MagnitudeResult:
    """`scale_embedding`: one run per factor k, from one batched call."""

    rule: str
    runs: list[Run]  # one per factor, in the order asked (value = k)
    norms: list[float]  # ||z_k||₂ over the whole (L, D) embedding
    cosines: list[float]  # cos(z_k, z_1) of the flattened embeddings; NaN when ||z_k|| = 0
    distance: list[float]  # pixel_distance of each image to the k = 1 image
    reference: Run  # the k = 1 run (also in `runs` when 1 was asked for)
    seconds: float  # wall time of the one batched call

    @property
    def factors(self) -> list[float]:
        """The factors k, in the order of `runs`."""
        return [float(r.value) for r in self.runs]


def own_token_mask(pipe, prompt: str) -> torch.Tensor:
    """(L,) True at the prompt's own token positions: after BOS, up to the first EOS (the
    engine's one rule, `explorer.engine.tokens`)."""
    tok = private_tokenizer(pipe)  # the shared one is not safe across threads
    ids = tok(prompt, padding="max_length", max_length=tok.model_max_length, truncation=True)[
        "input_ids"
    ]
    return torch.tensor([k == "word" for k in token_kinds(ids, tok)], dtype=torch.bool)  # (L,)


def scale_rule(
    z: torch.Tensor,
    factors: Sequence[float],
    rule: str = "multiply",
    *,
    empty: torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """The family z_k for each k: (L, D) -> (K, L, D). See the module docstring for the rules.

    `empty` (L, D) is needed by "from_empty", `mask` (L,) bool by "tokens".
    """
    k = torch.tensor([float(f) for f in factors], dtype=z.dtype, device=z.device)  # (K,)
    k = k[:, None, None]  # (K, 1, 1)
    if rule == "multiply":
        return k * z[None]  # (K, L, D)
    if rule == "tokens":
        if mask is None:
            raise ValueError("rule 'tokens' needs the token mask")
        m = mask.to(z.device)[None, :, None]  # (1, L, 1)
        return torch.where(m, k * z[None], z[None].expand(len(factors), -1, -1))  # (K, L, D)
    if rule == "from_empty":
        if empty is None:
            raise ValueError("rule 'from_empty' needs the empty-prompt embedding")
        return empty[None] + k * (z - empty)[None]  # (K, L, D)
    raise VisitorError(f"unknown rule {rule!r}; choose one of: {', '.join(RULES)}")


def norms_and_cosines(family: torch.Tensor, ref: torch.Tensor) -> tuple[list[float], list[float]]:
    """||z_k||₂ and cos(z_k, ref) in float64 for a family (K, L, D) and a reference (L, D)."""
    flat = family.double().flatten(1)  # (K, L·D)
    r = ref.double().flatten()  # (L·D,)
    norms = flat.norm(dim=1)  # (K,)
    dots = flat @ r  # (K,)
    cos = dots / (norms * r.norm())
    cos = torch.where(norms > 0, cos, torch.full_like(cos, float("nan")))
    return norms.tolist(), cos.tolist()


def scale_embedding(
    pipe,
    prompt: str,
    factors: Sequence[float] = DEFAULT_FACTORS,
    *,
    rule: str = "multiply",
    negative_prompt: str = "",
    steps: int = 25,
    guidance: float = 7.5,
    seed: int = 0,
    scheduler: str = "ddim",
) -> MagnitudeResult:
    """Run the prompt with its embedding scaled by each factor k, all in one batched call.

    Every item starts from the noise of `seed`, so k = 1 is the plain run (pixel for pixel when it
    runs alone, to within 1/255 in a batch). k = 1 is always computed as the reference.
    """
    if rule not in RULES:
        raise VisitorError(f"unknown rule {rule!r}; choose one of: {', '.join(RULES)}")
    if not factors:
        raise VisitorError("factors: give at least one factor")
    device = pipe.unet.device
    own = run_copy(pipe)  # its own tokenizer: the shared one is not safe across threads
    z, negative = own.encode_prompt(prompt, device, 1, True, negative_prompt)  # (1, L, D) each
    empty = negative
    if rule == "from_empty" and negative_prompt:
        empty = own.encode_prompt("", device, 1, False)[0]  # (1, L, D)
    mask = own_token_mask(own, prompt) if rule == "tokens" else None

    asked = [float(f) for f in factors]
    batch = asked + ([1.0] if 1.0 not in asked else [])
    family = scale_rule(z[0], batch, rule, empty=empty[0], mask=mask)  # (K, L, D)
    settings = [
        {
            "prompt": prompt,
            "negative_prompt": negative_prompt,
            "embedding_scale": k,
            "embedding_rule": rule,
        }
        for k in batch
    ]
    start = time.perf_counter()
    traces = run_batch(
        pipe,
        family,
        negative.repeat(len(batch), 1, 1),
        [seed] * len(batch),
        steps=steps,
        guidance=guidance,
        scheduler=scheduler,
        settings=settings,
        tokens=prompt_tokens(own, prompt),
    )
    seconds = time.perf_counter() - start
    runs = [Run(f"k = {k:g}", k, tr, seconds / len(batch)) for k, tr in zip(batch, traces)]
    reference = runs[batch.index(1.0)]
    norms, cosines = norms_and_cosines(family, z[0])
    n = len(asked)
    return MagnitudeResult(
        rule=rule,
        runs=runs[:n],
        norms=norms[:n],
        cosines=cosines[:n],
        distance=[pixel_distance(r.image, reference.image) for r in runs[:n]],
        reference=reference,
        seconds=seconds,
    )
