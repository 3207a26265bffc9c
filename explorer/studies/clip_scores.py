"""CLIP as a scorer of images against text: the image x text cosine matrix of the CLIP paper.

CLIP (Radford et al. 2021) has a text tower and a vision tower, each followed by a linear
projection into one shared P-dimensional space:
    t_j = W_t · text_tower(caption_j)[end token]        (M, P)   `get_text_features`
    v_i = W_v · vision_tower(image_i)[class token]      (N, P)   `get_image_features`
    S_ij = (v_i / |v_i|) · (t_j / |t_j|)                (N, M)   cosine similarity
    logits = exp(logit_scale) · S                       the "temperature" is 1 / exp(logit_scale)
Training pushes the diagonal of S (matching pairs) up and every other cell (the negatives)
down with a symmetric cross-entropy, `contrastive_loss` below.

A Stable Diffusion pipeline ships only the text tower (it conditions the UNet). The Mini model
saves its whole CLIP in `clip/`; for any other checkpoint `find_clip` loads a CLIP named by the
operator (`app.py --clip-model`), or says what is missing.
"""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import torch
from PIL import Image

from explorer.engine.models import embedded_name, model_folder, private_tokenizer, run_copy
from explorer.inputs.errors import VisitorError
from explorer.studies.text_embeddings import cosine_matrix, normalize, pooled, row_norms

OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)  # CLIP's pixel normalisation
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)
SD_CLIP = "openai/clip-vit-large-patch14"  # the CLIP whose text tower SD 1.x uses
_lock = threading.Lock()


class ClipMissing(VisitorError):
    """No CLIP with a vision tower is available, with a message saying how to get one."""


@dataclass
class Clip:
    """A CLIP model with what it needs to read text and pixels."""

    model: Any  # transformers CLIPModel: both towers, both projections, logit_scale
    tokenizer: Any  # the Clip's own, never a pipeline's; read text with `token_ids`
    source: str  # where it came from, in words
    image_size: int  # the vision tower's input side, pixels
    mean: tuple[float, ...] | None  # pixel normalisation; None: scale to [-1, 1] (the Mini's)
    std: tuple[float, ...] | None = None
    mini: bool = False  # an embedded model's own CLIP (its untrained twin can be rebuilt)
    world: str | None = None  # which embedded model: "mini-shapes", "mini-things"

    def token_ids(self, captions: list[str]) -> torch.Tensor:
        """(M, L) ids of `captions` padded to the context, from a private copy of the tokenizer:
        one Clip serves every thread, and a shared fast tokenizer is not safe across threads
        (`explorer.engine.models.private_tokenizer`)."""
        tok = copy.deepcopy(self.tokenizer)
        ids = tok(captions, padding="max_length", truncation=True, return_tensors="pt")
        return ids.input_ids.to(self.model.device)  # (M, L)

    def pixels(self, images: list[Image.Image]) -> torch.Tensor:
        """PIL images -> (N, 3, S, S) as the vision tower expects (resized, no crop)."""
        s = self.image_size
        resized = [im.convert("RGB").resize((s, s), Image.Resampling.BICUBIC) for im in images]
        arr = np.stack([np.asarray(im, np.float32) for im in resized]) / 255.0  # (N, S, S, 3)
        if self.mean is None:
            arr = arr * 2.0 - 1.0
        else:
            arr = (arr - np.array(self.mean, np.float32)) / np.array(self.std, np.float32)
        return torch.from_numpy(arr.transpose(0, 3, 1, 2).copy()).to(self.model.device)


def find_clip(pipe: Any, clip_model: str | None = None) -> Clip:
    """The CLIP to score images with: the pipeline folder's `clip/`, else `clip_model`.

    Raises `ClipMissing` with what to do when neither is there or loadable.
    """
    folder = model_folder(pipe)
    own = folder / "clip" if folder is not None else None
    if own is not None and (own / "config.json").is_file():
        with _lock:
            return _own_clip(str(own), embedded_name(pipe), pipe.tokenizer)
    if clip_model:
        with _lock:
            return _named_clip(clip_model)
    raise ClipMissing(
        "this checkpoint's pipeline has only CLIP's text tower (no vision tower, no projections), "
        "so it cannot score images against text. Start the app with --clip-model NAME_OR_FOLDER "
        f"(e.g. {SD_CLIP}, the CLIP whose text tower SD 1.x uses) to load one."
    )


@lru_cache(maxsize=2)
def _own_clip(folder: str, world: str | None, tokenizer: Any) -> Clip:
    from transformers import CLIPModel

    model = CLIPModel.from_pretrained(folder, dtype=torch.float32, use_safetensors=True).eval()
    size = int(model.config.vision_config.image_size)
    where = f"{world}'s own CLIP" if world else f"the CLIP in {folder}"
    tok = copy.deepcopy(tokenizer)  # not the pipe's
    return Clip(model, tok, where, size, None, None, world is not None, world)


@lru_cache(maxsize=2)
def _named_clip(name: str) -> Clip:
    from transformers import AutoTokenizer, CLIPModel

    try:
        model = CLIPModel.from_pretrained(name, dtype=torch.float32, use_safetensors=True).eval()
        tokenizer = AutoTokenizer.from_pretrained(name)
    except (OSError, ValueError) as e:
        raise ClipMissing(
            f"the CLIP model {name!r} given with --clip-model could not be loaded "
            f"(is it downloaded, with safetensors weights?): {e}"
        ) from e
    size = int(model.config.vision_config.image_size)
    return Clip(
        model, tokenizer, f"{name} (given with --clip-model)", size, OPENAI_MEAN, OPENAI_STD
    )


def untrained(clip: Clip, model: Any) -> Clip:
    """`clip` as it was before training: the same tokenizer and pixels, `model` its initial weights.

    Only the Mini's initialisation is known (its architecture and training seed); the caller
    rebuilds it with `explorer.mini.architecture.untrained_clip`.
    """
    if not clip.mini:
        raise ValueError("only the Mini CLIP can be rebuilt untrained (its seed is known)")
    where = "the Mini CLIP untrained (its initialisation)"
    return Clip(model, clip.tokenizer, where, clip.image_size, None, None, True, clip.world)


@torch.no_grad()
def text_features(clip: Clip, captions: list[str]) -> np.ndarray:
    """Projected, unnormalised text vectors t_j -> (M, P)."""
    ids = clip.token_ids(captions)  # (M, L)
    return clip.model.get_text_features(input_ids=ids).pooler_output.double().cpu().numpy()


@torch.no_grad()
def image_features(clip: Clip, images: list[Image.Image]) -> np.ndarray:
    """Projected, unnormalised image vectors v_i -> (N, P)."""
    out = clip.model.get_image_features(pixel_values=clip.pixels(images)).pooler_output
    return out.double().cpu().numpy()  # (N, P)


def logit_scale(clip: Clip) -> float:
    """exp(logit_scale): the factor between cosine similarities and logits (1 / temperature)."""
    return float(clip.model.logit_scale.detach().exp())


def contrastive_loss(logits: np.ndarray) -> tuple[float, float, float]:
    """CLIP's symmetric loss of a square (N, N) logit matrix whose diagonal holds the pairs.

    image -> text: row i is a softmax over captions, target i;  text -> image: column j over
    images, target j.  Returns (mean of the two, image -> text, text -> image).
    """
    z = np.asarray(logits, dtype=np.float64)
    if z.ndim != 2 or z.shape[0] != z.shape[1]:
        raise VisitorError(f"the contrastive loss needs N images and N captions, got {z.shape}")

    def ce(rows: np.ndarray) -> float:  # mean over rows of -log softmax(row)[i]
        m = rows.max(axis=1, keepdims=True)
        lse = m[:, 0] + np.log(np.exp(rows - m).sum(axis=1))
        return float(np.mean(lse - np.diag(rows)))

    i2t, t2i = ce(z), ce(z.T)
    return 0.5 * (i2t + t2i), i2t, t2i


@dataclass
class ImageText:
    """N images against M captions, every number of the CLIP paper's figure."""

    image_features: np.ndarray  # (N, P) v_i, unnormalised
    text_features: np.ndarray  # (M, P) t_j, unnormalised
    similarity: np.ndarray  # (N, M) cosine S_ij
    logit_scale: float  # exp(logit_scale)
    loss: tuple[float, float, float] | None  # (mean, image->text, text->image) when N == M
    source: str

    @property
    def logits(self) -> np.ndarray:
        return self.logit_scale * self.similarity  # (N, M)

    def diagonal_hits(self) -> int:
        """Rows whose largest value is on the diagonal (image i picks caption i)."""
        n = min(self.similarity.shape)
        return int(np.sum(self.similarity[:n].argmax(axis=1) == np.arange(n)))


def image_text(clip: Clip, images: list[Image.Image], captions: list[str]) -> ImageText:
    """The image x text cosine matrix, its logits and (for N == M) the contrastive loss."""
    if not images or not captions:
        raise VisitorError("give at least one image and one caption")
    v = image_features(clip, images)  # (N, P)
    t = text_features(clip, captions)  # (M, P)
    s = cosine_matrix(v, t)  # (N, M)
    scale = logit_scale(clip)
    loss = contrastive_loss(scale * s) if len(images) == len(captions) else None
    return ImageText(v, t, s, scale, loss, clip.source)


@dataclass
class Norms:
    """Where normalisation happens: vector lengths before and after, for texts and images."""

    text_raw: np.ndarray  # (M,) |t_j|
    text_unit: np.ndarray  # (M,) after t / |t|: all 1
    image_raw: np.ndarray  # (N,) |v_i|
    image_unit: np.ndarray  # (N,)
    logit_scale: float


def norms(text: np.ndarray, image: np.ndarray, scale: float) -> Norms:
    """Lengths of projected text (M, P) and image (N, P) vectors, raw and normalised."""
    return Norms(
        row_norms(text),
        row_norms(normalize(text)),
        row_norms(image),
        row_norms(normalize(image)),
        scale,
    )


def prompt_vectors(pipe: Any, clip: Clip | None, prompts: list[str]) -> tuple[np.ndarray, str]:
    """One vector per prompt, and what it is: CLIP's projected text vector when a CLIP is at
    hand, else the text encoder's pooled state (a pipeline has no text projection)."""
    if clip is not None:
        width = clip.model.config.projection_dim
        words = f"projected text vectors t (P = {width}) of {clip.source}"
        return text_features(clip, prompts), words
    vec = pooled(pipe.text_encoder, private_tokenizer(pipe), prompts)  # (N, D)
    words = (
        f"the text encoder's pooled end-token state (D = {vec.shape[1]}, "
        "unprojected: no CLIP projection here)"
    )
    return vec, words


def generate_images(
    pipe: Any, captions: list[str], *, seed: int = 0, steps: int = 25, guidance: float = 7.5
) -> list[Image.Image]:
    """One image per caption, all from the noise of `seed`, as ONE batched pipeline call."""
    from explorer.engine.batch import run_batch

    device = pipe.unet.device
    own = run_copy(pipe)  # its own tokenizer: the shared one is not safe across threads
    pairs = [own.encode_prompt(c, device, 1, True, "") for c in captions]  # (1, L, D) each
    pe = torch.cat([p for p, _ in pairs])  # (K, L, D)
    ne = torch.cat([n for _, n in pairs])  # (K, L, D)
    traces = run_batch(pipe, pe, ne, [int(seed)] * len(captions), steps=steps, guidance=guidance)
    return [t.image for t in traces]
