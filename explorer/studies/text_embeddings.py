"""Text embeddings: how a prompt becomes 77 token ids and 77 vectors, their norms and cosines.

Notation: L = the tokenizer's context (77 in SD), D = the text encoder's width (768 in SD 1.x,
128 in the Mini), P = CLIP's projection width. The text encoder's `last_hidden_state` (L, D) is
what SD's UNet attends to; CLIP's own text vector is the state at the end token, projected to P
and divided by its norm (that division happens only inside `CLIPModel.forward`).

Pure functions: numpy or torch in, numpy out; no UI. A `tokenizer` argument must be the caller's
own (`explorer.engine.models.private_tokenizer(pipe)`), never a pipeline's shared one: a fast
tokenizer called from two threads at once pads with the other's settings. The CLIP model (vision
tower, projections, image x text) lives in `explorer.studies.clip_scores`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from explorer.engine.tokens import text_length, token_kinds, token_note


@dataclass
class Tokens:
    """A prompt as the text encoder reads it."""

    ids: list[int]  # L token ids, padded (and cut) to the context length
    tokens: list[str]  # the L token strings
    kinds: list[str]  # per token: "start" | "word" | "end" | "pad"
    n_full: int  # tokens of the whole prompt with start and end, before any cut
    max_length: int  # L

    @property
    def truncated(self) -> bool:
        return self.n_full > self.max_length

    @property
    def warning(self) -> str | None:
        """A sentence for the visitor when the prompt was cut, else None."""
        return token_note(self.n_full, self.max_length)

    @property
    def n_text(self) -> int:
        """Tokens up to and including the end token (the rest is padding)."""
        return text_length(self.kinds)


def tokenize(tokenizer: Any, prompt: str) -> Tokens:
    """`prompt` padded and truncated to the tokenizer's context, exactly as the pipeline does it."""
    L = int(tokenizer.model_max_length)
    full = tokenizer(prompt, truncation=False)["input_ids"]
    ids = tokenizer(prompt, padding="max_length", max_length=L, truncation=True)["input_ids"]
    tokens = [str(t) for t in tokenizer.convert_ids_to_tokens(ids)]
    kinds = token_kinds(ids, tokenizer)  # the engine's one rule (explorer.engine.tokens)
    return Tokens(ids=list(ids), tokens=tokens, kinds=kinds, n_full=len(full), max_length=L)


def common_prefix(a: list[int], b: list[int]) -> int:
    """How many leading ids two token sequences share."""
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


@torch.no_grad()
def hidden_states(text_encoder: Any, ids: list[list[int]]) -> np.ndarray:
    """`last_hidden_state` of each id sequence, (N, L, D) float64: what the UNet attends to.

    Each sequence runs on its own (batch of one), as a pipeline encodes a single prompt.
    """
    dev = text_encoder.device
    out = []
    for row in ids:
        x = torch.tensor([row], device=dev)  # (1, L)
        h = text_encoder(input_ids=x).last_hidden_state  # (1, L, D)
        out.append(h[0].double().cpu().numpy())
    return np.stack(out)  # (N, L, D)


def cosine_matrix(a: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    """Cosine similarity of every row of `a` (N, D) with every row of `b` (M, D) -> (N, M).

    cos(u, v) = u·v / (|u| |v|); a zero row gives 0 (no direction), never NaN.
    """
    a = np.asarray(a, dtype=np.float64)
    b = a if b is None else np.asarray(b, dtype=np.float64)
    na = np.linalg.norm(a, axis=1, keepdims=True)  # (N, 1)
    nb = np.linalg.norm(b, axis=1, keepdims=True)  # (M, 1)
    ua = np.divide(a, na, out=np.zeros_like(a), where=na > 0)
    ub = np.divide(b, nb, out=np.zeros_like(b), where=nb > 0)
    return np.clip(ua @ ub.T, -1.0, 1.0)  # (N, M)


def row_norms(x: np.ndarray) -> np.ndarray:
    """L2 norm of each row of a (N, D) array -> (N,)."""
    return np.linalg.norm(np.asarray(x, dtype=np.float64), axis=1)


def normalize(x: np.ndarray) -> np.ndarray:
    """Each row divided by its norm (what `CLIPModel.forward` does before the dot product)."""
    x = np.asarray(x, dtype=np.float64)
    n = row_norms(x)[:, None]
    return np.divide(x, n, out=np.zeros_like(x), where=n > 0)


@dataclass
class TokenStates:
    """Two prompts' tokens and hidden states, and their token x token cosine matrix."""

    a: Tokens
    b: Tokens
    states_a: np.ndarray  # (La, D) the real tokens of prompt a (start .. end), plus no padding
    states_b: np.ndarray  # (Lb, D)
    cosine: np.ndarray  # (La, Lb)
    shared: int  # tokens both prompts share from the start (identical rows: causal encoder)
    norms_a: np.ndarray  # (L,) norm of every state of prompt a, padding included


def compare_tokens(text_encoder: Any, tokenizer: Any, a: str, b: str | None = None) -> TokenStates:
    """Token x token cosine of `last_hidden_state` for prompts `a` and `b` (b defaults to a).

    CLIP's text encoder is causal: token i sees only tokens 0..i, so two prompts that begin with
    the same words have identical states for those words; `shared` counts them.
    """
    ta = tokenize(tokenizer, a)
    tb = tokenize(tokenizer, a if b is None else b)
    states = hidden_states(text_encoder, [ta.ids, tb.ids])  # (2, L, D)
    sa, sb = states[0, : ta.n_text], states[1, : tb.n_text]  # (La, D), (Lb, D)
    return TokenStates(
        a=ta,
        b=tb,
        states_a=sa,
        states_b=sb,
        cosine=cosine_matrix(sa, sb),
        shared=common_prefix(ta.ids[: ta.n_text], tb.ids[: tb.n_text]),
        norms_a=row_norms(states[0]),
    )


@torch.no_grad()
def pooled(text_encoder: Any, tokenizer: Any, prompts: list[str]) -> np.ndarray:
    """The text encoder's pooled output (state at the end token, unprojected) -> (N, D)."""
    ids = tokenizer(prompts, padding="max_length", truncation=True, return_tensors="pt").input_ids
    out = text_encoder(input_ids=ids.to(text_encoder.device)).pooler_output  # (N, D)
    return out.double().cpu().numpy()
