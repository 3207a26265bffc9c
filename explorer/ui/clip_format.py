"""Formatting for the CLIP & embeddings tab: engine results -> Markdown, figures, gallery items.

Pure functions (no model calls, no events); `explorer.ui.tabs.clip` lays out the tab and wires them.
"""

from __future__ import annotations

import math

from explorer.charts import embeddings as charts
from explorer.studies import clip_scores as clipmod
from explorer.studies import trajectories as maps
from explorer.studies.text_embeddings import TokenStates

NOTES = {  # what each sub-tab shows, in plain words
    "tokens": (
        "The tokenizer turns a prompt into exactly 77 ids: a start token, the words, an end "
        "token, then padding; longer prompts are cut. The heatmap compares every token "
        "state of prompt A (rows) with prompt B (columns). The encoder is causal (token i "
        "sees only tokens 0..i), so the words both prompts start with get identical states."
    ),
    "similarity": (
        "Cosine similarity of whole prompts, one vector each, and the same vectors as a "
        "2-D map (PCA for 3 prompts or fewer, where UMAP cannot work)."
    ),
    "image_text": (
        "As in the CLIP paper: N images (rows) against N captions (columns). Training "
        "raises the diagonal (matching pairs) and lowers every other cell (the negatives). "
        "For the Mini model the untrained CLIP (its initialisation, rebuilt from the "
        "training seed) is shown beside the trained one. A ★ marks each row's largest value."
    ),
    "norms": (
        "Are the vectors normalised? Not inside the towers: CLIP's projected vectors have "
        "all sorts of lengths. `CLIPModel.forward` divides each by its length just before "
        "the dot product, then multiplies by exp(logit_scale). SD's UNet never sees that: "
        "it attends to the un-normalised token states (after a final LayerNorm)."
    ),
    "maps": (
        "Each step of a run is one point in a space of C·h·w numbers (256 for the Mini "
        "model). Every run (prompts × seeds) is drawn on ONE shared 2-D map, one line per "
        "run from ○ (start) to ■ (end). Hover a point for its run, step and timestep; move "
        "the step slider to ring that step on every line and see each run's predicted "
        "image there. UMAP keeps neighbours near; PCA is the plane of largest variance."
    ),
}


def tokens_note(r: TokenStates) -> str:
    """Warnings, counts, the shared prefix and the token table of prompt A."""
    rows = [f"| {i} | `{t}` | {k} | {r.a.ids[i]} |"
            for i, (t, k) in enumerate(zip(r.a.tokens, r.a.kinds)) if k != "pad"]  # fmt: skip
    pads = r.a.kinds.count("pad")
    return (
        ("⚠ " + r.a.warning + "  \n" if r.a.warning else "")
        + (f"⚠ prompt B: {r.b.warning}  \n" if r.b.warning else "")
        + f"Prompt A: **{r.a.n_text}** tokens + **{pads}** padding = {r.a.max_length}. "
        + f"A and B share their first **{r.shared}** tokens: those rows are identical "
        + "(cosine 1.00 on the diagonal).\n\n| position | token | kind | id |\n|---|---|---|---|\n"
        + "\n".join(rows)
        + (f"\n| {r.a.n_text}…{r.a.max_length - 1} | `{r.a.tokens[-1]}` | pad ×{pads} | {r.a.ids[-1]} |" if pads else "")
    )  # fmt: skip


def loss_text(r: clipmod.ImageText) -> str:
    """The logit scale, the diagonal hits and the contrastive loss, written out."""
    n, m = r.similarity.shape
    head = (f"**{r.source}** · exp(logit_scale) = **{r.logit_scale:.2f}** (temperature "
            f"{1 / r.logit_scale:.4f}) · diagonal is the row maximum in **{r.diagonal_hits()} of {min(n, m)}** rows")  # fmt: skip
    if r.loss is None:
        return head + f"  \nNo contrastive loss: it needs as many captions as images ({n} vs {m})."
    mean, i2t, t2i = r.loss
    return head + (
        f"  \nContrastive loss = ½·(image→text {i2t:.3f} + text→image {t2i:.3f}) = **{mean:.3f}** "
        f"(chance: ln {n} = {math.log(n):.3f}). Each row is a softmax over the "
        f"{m} captions of logits = {r.logit_scale:.1f} × cosine; the target is the diagonal."
    )


def map_view(runs: maps.MapRuns, step: int):
    """The map with `step` ringed on every run, and each run's x0 picture at that step."""
    m, t0 = runs.map, runs.traces[0]
    T = t0.num_steps
    hover = []
    for tr, xy in zip(runs.traces, m.paths):
        ts = [float(t) for t in tr.timesteps]
        if runs.what == "latents":
            hover.append(
                ["start: pure noise x_T"]
                + [f"after step {s} (t={ts[s - 1]:.0f})" for s in range(1, len(xy))]
            )
        else:
            hover.append([f"x0 predicted at step {s + 1} (t={ts[s]:.0f})" for s in range(len(xy))])  # fmt: skip
    title = f"{len(runs.traces)} runs on one {m.projection.method.upper()} map ({runs.what})"
    fig = charts.map_figure(
        m.labels, m.paths, title, hover=hover, highlight=step, note=m.projection.note
    )
    index = min(max(step - (runs.what == "latents"), 0), T - 1)  # the x0 of that step
    pics = [
        (tr.decode(steps=[index], what="x0")[0], label) for tr, label in zip(runs.traces, m.labels)
    ]
    return fig, pics
