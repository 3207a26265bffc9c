"""The CLIP & embeddings tab: how the text reaches the image, with the model's own numbers.

    [/tokens] [/similarity] [/image_text] [/norms] [/maps]

Sub-tabs: tokens and the token x token cosines of two prompts; prompt x prompt cosines and a map
of the prompts; the image x text matrix of the CLIP paper (trained and untrained Mini CLIP side by
side); vector lengths before and after normalisation; the latent paths of several runs on one
UMAP / PCA map. Handlers only validate, call the engine and format.
"""

from __future__ import annotations

import gradio as gr
from PIL import Image

from explorer.charts import embeddings as charts
from explorer.inputs.controls import (
    CONTROLS,
    MAX_PROMPT_CHARS,
    SEED_MAX,
    ControlError,
    clean_text,
    validate_float_range,
    validate_int_range,
)
from explorer.inputs.lists import parse_numbers
from explorer.inputs.uploads import STATED, UploadError, load_upload
from explorer.mini import data as mini_data
from explorer.mini.architecture import untrained_clip
from explorer.studies import clip_scores as clipmod
from explorer.studies import text_embeddings as emb
from explorer.studies import trajectories as maps
from explorer.ui import clip_format as fmt
from explorer.ui.common import (
    RUN_CONCURRENCY,
    VIEW_CONCURRENCY,
    AppContext,
    explain,
    notes_markdown,
    pixel_gallery,
    run_engine,
    visitor_errors,
)
from explorer.ui.widgets import passthrough

TITLE = "CLIP & embeddings"
MAX_PROMPTS = 8  # prompts in the similarity and norms views
MAX_PAIRS = 16  # images and captions in the image x text view
MAX_MAP_PROMPTS, MAX_MAP_SEEDS, MAX_MAP_RUNS = 4, 8, 16
MAP_STEPS, MAP_GUIDANCE, MAP_SEED_MAX = (2, 50), (0.0, 20.0), 2**32 - 1
SOURCES = ["Mini dataset (held-out)", "generate from the captions", "upload"]
DEFAULT_PROMPTS = "\n".join([
    "a large red circle on a blue background",
    "a small red circle on a blue background",
    "a large green star on a white background",
    "a yellow square, black background, top left",
])  # fmt: skip
DEFAULT_MAP_PROMPTS = (
    "a large red circle on a blue background\na small yellow star on a black background"
)



def untrained_twin(clip: clipmod.Clip) -> clipmod.Clip:
    """The Mini CLIP before training, rebuilt from its architecture and training seed."""
    return clipmod.untrained(clip, untrained_clip(len(clip.tokenizer)))


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


def _run_area(button: str, left: str, right: str) -> tuple:
    """A Run button, a note and two plots side by side."""
    run = gr.Button(button, variant="primary")
    note = gr.Markdown()
    with gr.Row():
        return run, note, gr.Plot(label=left), gr.Plot(label=right)


def create_tab(ctx: AppContext) -> None:
    explain(
        "The prompt reaches the image through CLIP's text encoder. These views show its numbers: "
        "the tokens, how alike vectors are (cosine similarity: 1 = same direction, whatever the "
        "length), how CLIP matches images to captions, and maps of the runs' paths."
    )
    with gr.Tabs():
        with gr.Tab("Tokens", id="clip-tokens"):
            explain(fmt.NOTES["tokens"])
            with gr.Row():
                tok_a = gr.Textbox(label="Prompt A", value=CONTROLS["prompt"].default)
                tok_b = gr.Textbox(
                    label="Prompt B", value="a large red circle on a white background"
                )
            tok_btn, tok_note, tok_norms, tok_heat = _run_area(
                "Show tokens", "token norms", "token × token cosine"
            )
        with gr.Tab("Prompt similarity", id="clip-similarity"):
            explain(fmt.NOTES["similarity"])
            sim_prompts = gr.Textbox(label=f"Prompts (one a line, up to {MAX_PROMPTS})",
                                     value=DEFAULT_PROMPTS, lines=4)  # fmt: skip
            sim_btn, sim_note, sim_heat, sim_map = _run_area(
                "Compare prompts", "prompt × prompt cosine", "prompt map"
            )
        with gr.Tab("Image × text", id="clip-image-text"):
            explain(fmt.NOTES["image_text"])
            with gr.Row():
                it_source = gr.Radio(SOURCES, value=SOURCES[0], label="Images")
                it_count = passthrough(gr.Slider(2, MAX_PAIRS, value=8, step=1,
                                                 label="How many dataset pairs"))  # fmt: skip
            it_captions = gr.Textbox(label="Captions (one a line; empty = the dataset's own)",
                                     lines=3, value="")  # fmt: skip
            it_files = gr.File(
                label=f"Images to upload (at most {MAX_PAIRS}; {STATED})",
                file_count="multiple",
                file_types=["image"],
            )
            it_btn, it_note, it_trained, it_untrained = _run_area(
                "Score images against captions", "trained", "untrained"
            )
        with gr.Tab("Norms", id="clip-norms"):
            explain(fmt.NOTES["norms"])
            nm_prompts = gr.Textbox(label=f"Prompts (one a line, up to {MAX_PROMPTS})",
                                    value=DEFAULT_PROMPTS, lines=4)  # fmt: skip
            nm_btn, nm_note, nm_text, nm_image = _run_area(
                "Measure", "text vectors", "image vectors"
            )
        with gr.Tab("Maps", id="clip-maps"):
            explain(fmt.NOTES["maps"])
            mp_prompts = gr.Textbox(label=f"Prompts (one a line, up to {MAX_MAP_PROMPTS})",
                                    value=DEFAULT_MAP_PROMPTS, lines=2)  # fmt: skip
            with gr.Row():
                mp_seeds = gr.Textbox(label=f"Seeds (up to {MAX_MAP_SEEDS})", value="0, 1, 2, 3")
                mp_steps = passthrough(gr.Slider(*MAP_STEPS, value=25, step=1, label="Steps"))
                mp_guidance = passthrough(gr.Slider(*MAP_GUIDANCE, value=7.5, step=0.5,
                                                    label="Guidance"))  # fmt: skip
            with gr.Row():
                mp_what = gr.Radio(["latents", "x0"], value="latents", label="Points",
                                   info="latents: x_t at each step · x0: the clean latent each step predicts")  # fmt: skip
                mp_method = gr.Radio(["umap", "pca"], value="umap", label="Map")
                mp_seed = passthrough(gr.Number(value=0, precision=0,
                                                label="Map seed (UMAP random_state)"))  # fmt: skip
            mp_btn = gr.Button("Run and map", variant="primary")
            mp_note = gr.Markdown()
            mp_plot = gr.Plot(label="map")
            mp_step = gr.Slider(0, 50, value=0, step=1, label="Step to show")
            mp_images = pixel_gallery("Predicted image (x0) of every run at that step", columns=8)
            mp_state = gr.State(None)

    # ---- handlers ----------------------------------------------------------------------------

    @visitor_errors
    def tokens(a, b):
        a, notes = clean_text("prompt A", a)
        b, notes_b = clean_text("prompt B", b)
        notes += notes_b + ([] if a else ["prompt A is empty: only the start and end tokens"])
        b = b or a
        pipe = ctx.pipe()
        r = emb.compare_tokens(pipe.text_encoder, pipe.tokenizer, a, b)
        note = notes_markdown(notes) + fmt.tokens_note(r)
        heat = charts.heatmap_figure(
            r.cosine, charts.numbered(r.a.tokens[: r.a.n_text], 16),
            charts.numbered(r.b.tokens[: r.b.n_text], 16),
            "Token × token cosine of last_hidden_state (rows A, columns B)",
        )  # fmt: skip
        return note, charts.token_norms_figure(r.a.tokens, r.norms_a, r.a.kinds), heat

    @visitor_errors
    def similarity(text):
        prompts, notes = prompt_lines(text, "prompts", MAX_PROMPTS)
        clip, _ = _find_clip(ctx)
        vectors, what = run_engine(clipmod.prompt_vectors, ctx.pipe(), clip, prompts)
        labels = charts.numbered(prompts, 28)
        heat = charts.heatmap_figure(emb.cosine_matrix(vectors), labels, labels,
                                     "Prompt × prompt cosine")  # fmt: skip
        proj = maps.project(vectors, "umap")
        pmap = charts.map_figure(labels, [p[None] for p in proj.xy],
                                 f"Prompts on a map ({proj.method.upper()})", note=proj.note)  # fmt: skip
        return f"{notes_markdown(notes)}Vectors: {what}.", heat, pmap

    @visitor_errors
    def image_text(source, count, captions_text, files):
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
        if source == SOURCES[0]:
            if not clip.mini:
                raise ControlError(
                    "the Mini dataset only fits the Mini model: generate or upload images"
                )
            n = len(typed) if typed else validate_int_range("count", count, 2, MAX_PAIRS)
            images, captions = mini_data.heldout_pairs(n)
            captions = typed or captions
        elif source == SOURCES[1]:
            if not typed:
                raise ControlError("captions: type the captions to generate images from")
            captions = typed
            images = run_engine(clipmod.generate_images, ctx.pipe(), captions)
        else:
            images = _open_uploads(files)
            if not typed:
                raise ControlError("captions: type one caption a line for the uploaded images")
            captions = typed
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

    @visitor_errors
    def norms(text):
        prompts, notes = prompt_lines(text, "prompts", MAX_PROMPTS)
        clip, missing = _find_clip(ctx)
        if clip is None:
            vec, what = clipmod.prompt_vectors(ctx.pipe(), None, prompts)
            raw = emb.row_norms(vec)
            fig = charts.norms_figure({"raw": raw, "normalised": emb.row_norms(emb.normalize(vec))},
                                      charts.numbered(prompts, 24), f"Lengths of {what}")  # fmt: skip
            return f"{notes_markdown(notes)}⚠ {missing}", fig, None
        images = mini_data.heldout_pairs(len(prompts))[0] if clip.mini else []
        t = clipmod.text_features(clip, prompts)  # (M, P)
        v = clipmod.image_features(clip, images) if images else t[:0]  # (N, P)
        n = clipmod.norms(t, v, clipmod.logit_scale(clip))
        pooled = emb.pooled(ctx.pipe().text_encoder, ctx.pipe().tokenizer, prompts)
        text_fig = charts.norms_figure(
            {"text encoder pooled state (what CLIP projects)": emb.row_norms(pooled),
             "projected t, raw": n.text_raw, "t / |t| (as CLIP compares)": n.text_unit},
            charts.numbered(prompts, 24), "Text vectors: lengths before and after normalising",
        )  # fmt: skip
        image_fig = (
            charts.norms_figure(
                {"projected v, raw": n.image_raw, "v / |v|": n.image_unit},
                charts.numbered([f"dataset image {i + 1}" for i in range(len(images))]),
                "Image vectors (held-out Mini images)",
            )  # fmt: skip
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

    @visitor_errors
    def run_map(
        prompts_text,
        seeds_text,
        steps,
        guidance,
        what,
        method,
        map_seed,
        progress=gr.Progress(),  # noqa: B008 - how gradio injects progress
    ):
        prompts, notes = prompt_lines(prompts_text, "prompts", MAX_MAP_PROMPTS)
        seeds = parse_numbers(seeds_text, name="seeds", integer=True, lo=0, hi=SEED_MAX,
                              max_count=MAX_MAP_SEEDS, unique=True)  # fmt: skip
        if len(prompts) * len(seeds) > MAX_MAP_RUNS:
            raise ControlError(
                f"{len(prompts)} prompts × {len(seeds)} seeds is more than {MAX_MAP_RUNS} runs"
            )
        steps = validate_int_range("steps", steps, *MAP_STEPS)
        guidance = validate_float_range("guidance", guidance, *MAP_GUIDANCE)
        if what not in ("latents", "x0") or method not in ("umap", "pca"):
            raise ControlError("points must be 'latents' or 'x0'; map must be 'umap' or 'pca'")
        map_seed = validate_int_range("map seed", map_seed, 0, MAP_SEED_MAX)
        runs = run_engine(maps.map_runs, ctx.pipe(), prompts, seeds, steps=steps, guidance=guidance, what=what,
                       method=method, map_seed=map_seed,
                       progress=lambda f, d: progress(f, desc=d))  # fmt: skip
        p = runs.map.projection
        note = (f"{notes_markdown(notes)}{len(runs.traces)} runs × {len(runs.map.paths[0])} points, "
                f"{runs.traces[0].latents[0].numel()} numbers each, mapped with **{p.method.upper()}**"
                + (f" · ⚠ {p.note}" if p.note else "")
                + (f" · PCA axes hold {p.explained[0]:.0%} and {p.explained[1]:.0%} of the variance" if p.explained else ""))  # fmt: skip
        last = len(runs.map.paths[0]) - 1
        fig, gallery = fmt.map_view(runs, 0)
        return note, fig, gr.Slider(0, last, value=0, step=1), gallery, runs

    @visitor_errors
    def show_step(runs, step):
        if runs is None:
            return gr.skip(), gr.skip()
        return fmt.map_view(runs, int(step))

    tok_btn.click(tokens, [tok_a, tok_b], [tok_note, tok_norms, tok_heat], api_name="tokens", concurrency_limit=RUN_CONCURRENCY, concurrency_id="run")  # fmt: skip
    sim_btn.click(similarity, [sim_prompts], [sim_note, sim_heat, sim_map], api_name="similarity", concurrency_limit=RUN_CONCURRENCY, concurrency_id="run")  # fmt: skip
    it_btn.click(image_text, [it_source, it_count, it_captions, it_files],
                 [it_note, it_trained, it_untrained], api_name="image_text", concurrency_limit=1,
                 concurrency_id="clip")  # fmt: skip
    nm_btn.click(norms, [nm_prompts], [nm_note, nm_text, nm_image], api_name="norms", concurrency_limit=RUN_CONCURRENCY, concurrency_id="run")  # fmt: skip
    mp_btn.click(run_map, [mp_prompts, mp_seeds, mp_steps, mp_guidance, mp_what, mp_method, mp_seed],
                 [mp_note, mp_plot, mp_step, mp_images, mp_state], api_name="maps", concurrency_limit=1,
                 concurrency_id="clip")  # fmt: skip
    mp_step.release(show_step, [mp_state, mp_step], [mp_plot, mp_images], api_visibility="private",
                   concurrency_limit=VIEW_CONCURRENCY, concurrency_id="views")  # fmt: skip
