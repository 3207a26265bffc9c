"""The CLIP & embeddings tab's handlers: validate, call the studies through `run_engine`, format.

Each takes the tab's context, then the endpoint's values (its API parameters, in order). The four
views with a note and two plots return (note, left plot, right plot); the map returns its outputs
by name (note, plot, step, images, state). `explorer.ui.tabs.clip` lays out the tab and wires these;
`explorer.ui.clip_format` turns results into Markdown, figures and gallery items.
"""

from __future__ import annotations

from typing import Any

import gradio as gr
from PIL import Image

from explorer.charts import embeddings as charts
from explorer.engine.models import private_tokenizer
from explorer.inputs.controls import (
    MAX_PROMPT_CHARS,
    SEED_MAX,
    ControlError,
    clean_text,
    validate_float_range,
    validate_int_range,
)
from explorer.inputs.lists import parse_numbers
from explorer.inputs.uploads import UploadError, load_upload
from explorer.mini import data as mini_data
from explorer.mini.architecture import untrained_clip
from explorer.studies import clip_scores as clipmod
from explorer.studies import experiments
from explorer.studies import text_embeddings as emb
from explorer.studies import trajectories as maps
from explorer.ui import clip_format as fmt
from explorer.ui.common import AppContext, run_engine
from explorer.ui.notes import notes_markdown, unknown_note

MAX_PROMPTS = 8  # prompts in the similarity and norms views
MAX_PAIRS = 16  # images and captions in the image x text view
MAX_MAP_PROMPTS, MAX_MAP_SEEDS, MAX_MAP_RUNS = 4, 8, 16
MAP_STEPS, MAP_GUIDANCE, MAP_SEED_MAX = (2, 50), (0.0, 20.0), 2**32 - 1
SOURCES = ["Mini dataset (held-out)", "generate from the captions", "upload"]


# ---- inputs -----------------------------------------------------------------------------------


def prompt_lines(text, name: str, max_count: int) -> tuple[list[str], list[str]]:
    """(prompts, notes): one prompt a line, each cleaned like the prompt control; empty lines
    skipped; the notes say what cleaning removed."""
    if text is None:
        text = ""
    if not isinstance(text, str):
        raise ControlError(f"{name}: expected text, one prompt a line")
    if len(text) > MAX_PROMPT_CHARS * max_count:
        raise ControlError(
            f"{name}: {len(text)} characters; at most {MAX_PROMPT_CHARS * max_count} in all"
        )
    cleaned = [clean_text(name, line) for line in text.splitlines()]
    lines = [line for line, _ in cleaned if line]
    if not lines:
        raise ControlError(f"{name}: type at least one prompt (one a line)")
    if len(lines) > max_count:
        raise ControlError(f"{name}: {len(lines)} prompts given, at most {max_count} allowed")
    return lines, [n for _, notes in cleaned for n in notes]


def _find_clip(ctx: AppContext) -> tuple[clipmod.Clip | None, str]:
    """The CLIP to use, or None and the sentence that says what is missing."""
    try:
        return clipmod.find_clip(ctx.pipe(), ctx.options.get("clip_model")), ""
    except clipmod.ClipMissing as e:
        return None, str(e)


def _open_uploads(paths) -> list[Image.Image]:
    """The uploaded pictures at their own size, each opened safely (`explorer.inputs.uploads`)."""
    if not paths:
        raise ControlError("upload: choose at least one image file")
    if len(paths) > MAX_PAIRS:
        raise ControlError(f"upload: {len(paths)} images, at most {MAX_PAIRS}")
    out = []
    for i, p in enumerate(paths):
        try:
            out.append(load_upload(getattr(p, "path", p), None).image)
        except UploadError as e:
            raise ControlError(f"upload {i + 1}: {e}") from None
    return out


def untrained_twin(clip: clipmod.Clip) -> clipmod.Clip:
    """The Mini CLIP before training, rebuilt from its architecture and training seed."""
    if clip.world == "mini-things":
        from explorer.mini.things.parts import untrained_clip as things_untrained

        return clipmod.untrained(clip, things_untrained(len(clip.tokenizer)))
    return clipmod.untrained(clip, untrained_clip(len(clip.tokenizer)))


def heldout_pairs(clip: clipmod.Clip, n: int) -> tuple[list, list[str]]:
    """``n`` held-out pictures of the embedded model's own world and their captions."""
    if clip.world == "mini-things":
        from explorer.mini.things.draw import FontMissing
        from explorer.mini.things.draw import heldout_pairs as things_pairs

        try:
            return things_pairs(n)
        except FontMissing as e:
            raise ControlError(f"the held-out pictures cannot be drawn here: {e}") from None
    return mini_data.heldout_pairs(n)


# ---- tokens, similarity -----------------------------------------------------------------------


def tokens(ctx: AppContext, a, b) -> tuple:
    """Two prompts' tokens, their norms and the token × token cosines."""
    a, notes = clean_text("prompt A", a)
    b, notes_b = clean_text("prompt B", b)
    notes += notes_b + ([] if a else ["prompt A is empty: only the start and end tokens"])
    b = b or a
    pipe = ctx.pipe()
    tokenizer = private_tokenizer(pipe)
    for text in dict.fromkeys((a, b)):
        notes += [n for n in [unknown_note(pipe, tokenizer, text)] if n]
    r = run_engine(emb.compare_tokens, pipe.text_encoder, tokenizer, a, b)
    note = notes_markdown(notes) + fmt.tokens_note(r)
    heat = charts.heatmap_figure(
        r.cosine,
        charts.numbered(r.a.tokens[: r.a.n_text], 16, start=0),
        charts.numbered(r.b.tokens[: r.b.n_text], 16, start=0),
        "Token × token cosine of last_hidden_state (rows A, columns B)",
    )
    return note, charts.token_norms_figure(r.a.tokens, r.norms_a, r.a.kinds), heat


def similarity(ctx: AppContext, text) -> tuple:
    """Prompt × prompt cosines and the prompts on a map."""
    prompts, notes = prompt_lines(text, "prompts", MAX_PROMPTS)
    clip, _ = _find_clip(ctx)
    vectors, what = run_engine(clipmod.prompt_vectors, ctx.pipe(), clip, prompts)
    labels = charts.numbered(prompts, 28)
    heat = charts.heatmap_figure(
        emb.cosine_matrix(vectors), labels, labels, "Prompt × prompt cosine"
    )
    proj = maps.project(vectors, "umap")
    pmap = charts.map_figure(
        labels,
        [p[None] for p in proj.xy],
        f"Prompts on a map ({proj.method.upper()})",
        note=proj.note,
    )
    return f"{notes_markdown(notes)}Vectors: {what}.", heat, pmap


# ---- image x text -----------------------------------------------------------------------------


def image_text(ctx: AppContext, source, count, captions_text, files) -> tuple:
    """N images against N captions, trained (and for the Mini, untrained) CLIP side by side."""
    clip, missing = _find_clip(ctx)
    if clip is None:
        return f"⚠ {missing}", None, None
    if source not in SOURCES:
        raise ControlError(f"images: choose one of {', '.join(SOURCES)}")
    typed, notes = (
        prompt_lines(captions_text, "captions", MAX_PAIRS)
        if isinstance(captions_text, str) and captions_text.strip()
        else (None, [])
    )
    images, captions = _pairs(ctx, clip, source, typed, count, files)
    r = run_engine(clipmod.image_text, clip, images, captions)
    rows, cols = (
        charts.numbered([f"image {i + 1}" for i in range(len(images))]),
        charts.numbered(captions, 30),
    )

    def fig(res: clipmod.ImageText, title: str):
        return charts.heatmap_figure(
            res.similarity, rows, cols, title, row_images=images, mark_diagonal=True
        )

    note = notes_markdown(notes) + fmt.loss_text(r)
    untrained_fig = None
    if clip.mini:
        u = run_engine(clipmod.image_text, untrained_twin(clip), images, captions)
        note += "\n\n**Untrained** (same architecture, training seed): " + fmt.loss_text(u)
        untrained_fig = fig(u, "Untrained Mini CLIP (its initialisation)")
    return note, fig(r, f"Trained: {r.source}"), untrained_fig


def _pairs(ctx: AppContext, clip, source: str, typed, count, files) -> tuple[list, list[str]]:
    """(images, captions) from the chosen source; `typed` the visitor's captions (or None)."""
    if source == SOURCES[0]:
        if not clip.mini:
            raise ControlError(
                "the Mini dataset only fits the Mini model: generate or upload images"
            )
        n = len(typed) if typed else validate_int_range("count", count, 2, MAX_PAIRS)
        images, captions = heldout_pairs(clip, n)
        return images, typed or captions
    if source == SOURCES[1]:
        if not typed:
            raise ControlError("captions: type the captions to generate images from")
        return run_engine(clipmod.generate_images, ctx.pipe(), typed), typed
    images = _open_uploads(files)
    if not typed:
        raise ControlError("captions: type one caption a line for the uploaded images")
    return images, typed


# ---- norms ------------------------------------------------------------------------------------


def norms(ctx: AppContext, text) -> tuple:
    """Vector lengths before and after normalising: text vectors, and the Mini's images."""
    prompts, notes = prompt_lines(text, "prompts", MAX_PROMPTS)
    clip, missing = _find_clip(ctx)
    if clip is None:
        vec, what = run_engine(clipmod.prompt_vectors, ctx.pipe(), None, prompts)
        fig = charts.norms_figure(
            {"raw": emb.row_norms(vec), "normalised": emb.row_norms(emb.normalize(vec))},
            charts.numbered(prompts, 24),
            f"Lengths of {what}",
        )
        return f"{notes_markdown(notes)}⚠ {missing}", fig, None
    images = heldout_pairs(clip, len(prompts))[0] if clip.mini else []
    t, v, pooled = run_engine(_clip_vectors, ctx.pipe(), clip, prompts, images)
    n = clipmod.norms(t, v, clipmod.logit_scale(clip))
    text_fig = charts.norms_figure(
        {
            "text encoder pooled state (what CLIP projects)": emb.row_norms(pooled),
            "projected t, raw": n.text_raw,
            "t / |t| (as CLIP compares)": n.text_unit,
        },
        charts.numbered(prompts, 24),
        "Text vectors: lengths before and after normalising",
    )
    image_fig = (
        charts.norms_figure(
            {"projected v, raw": n.image_raw, "v / |v|": n.image_unit},
            charts.numbered([f"dataset image {i + 1}" for i in range(len(images))]),
            "Image vectors (held-out Mini images)",
        )
        if images
        else None
    )
    note = notes_markdown(notes) + (
        f"{clip.source}: logit scale exp(logit_scale) = **{n.logit_scale:.2f}**: "
        f"logits = {n.logit_scale:.2f} × cos(v, t). Raw text lengths: "
        + ", ".join(f"{v:.2f}" for v in n.text_raw)
        + "; after normalising every one is 1.00."
    )
    return note, text_fig, image_fig


def _clip_vectors(pipe, clip, prompts: list[str], images: list) -> tuple:
    """CLIP's text vectors t (M, P), image vectors v (N, P), and the text encoder's pooled
    states of the prompts (M, D): the model calls of `norms`, for `run_engine`."""
    t = clipmod.text_features(clip, prompts)
    v = clipmod.image_features(clip, images) if images else t[:0]
    return t, v, emb.pooled(pipe.text_encoder, private_tokenizer(pipe), prompts)


# ---- maps -------------------------------------------------------------------------------------


def run_map(
    ctx: AppContext,
    prompts_text,
    seeds_text,
    steps,
    guidance,
    what,
    method,
    map_seed,
    progress=gr.Progress(),  # noqa: B008 - how gradio injects progress
) -> dict[str, Any]:
    """Every (prompt, seed) run, their steps on one shared map."""
    prompts, notes = prompt_lines(prompts_text, "prompts", MAX_MAP_PROMPTS)
    seeds = parse_numbers(
        seeds_text,
        name="seeds",
        integer=True,
        lo=0,
        hi=SEED_MAX,
        max_count=MAX_MAP_SEEDS,
        unique=True,
    )
    if len(prompts) * len(seeds) > MAX_MAP_RUNS:
        raise ControlError(
            f"{len(prompts)} prompts × {len(seeds)} seeds is more than {MAX_MAP_RUNS} runs"
        )
    steps = validate_int_range("steps", steps, *MAP_STEPS)
    guidance = validate_float_range("guidance", guidance, *MAP_GUIDANCE)
    if what not in ("latents", "x0") or method not in ("umap", "pca"):
        raise ControlError("points must be 'latents' or 'x0'; map must be 'umap' or 'pca'")
    map_seed = validate_int_range("map seed", map_seed, 0, MAP_SEED_MAX)
    traces = run_engine(
        experiments.prompts_by_seeds,
        ctx.pipe(),
        prompts,
        seeds,
        steps=steps,
        guidance=guidance,
        progress=lambda f, d: progress(f, desc=d),
    )
    runs = maps.map_runs(traces, what=what, method=method, map_seed=map_seed)
    last = len(runs.map.paths[0]) - 1
    return {
        "note": notes_markdown(notes) + fmt.map_note(runs),
        "step": gr.Slider(0, last, value=0, step=1),
        "state": runs,
        **show_step(runs, 0),
    }


def show_step(runs: maps.MapRuns | None, step) -> dict[str, Any]:
    """The map with `step` ringed on every run, and each run's x0 picture at that step."""
    if runs is None:
        return {}
    step = int(step)
    return {
        "plot": fmt.map_figure(runs, step),
        "images": run_engine(fmt.map_pictures, runs, step),
    }
