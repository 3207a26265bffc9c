"""Formatting for the CLIP & embeddings tab: engine results -> Markdown, figures, gallery items.

Functions of results, no events; only `map_pictures` runs a model (the VAE). The handlers in
`explorer.ui.clip_handlers` call them; `explorer.ui.tabs.clip` lays out the tab.
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
        "Each step of a run is one point in a space of C·h·w numbers (4 × 16 × 16 = 1024 for "
        "the Mini models). Every run (prompts × seeds) is drawn on ONE shared 2-D map, one "
        "line per run from ○ (start) to ■ (end). Hover a point for its run, step and "
        "timestep; move the step slider to ring that step on every line and see each run's "
        "predicted "
        "image there. UMAP keeps neighbours near; PCA is the plane of largest variance."
    ),
}


def table_cell(text: str) -> str:
    """`text` for a Markdown table cell: its pipes escaped (`<|endoftext|>` would split the
    cell at each "|", even inside a code span)."""
    return text.replace("|", "\\|")


def tokens_note(r: TokenStates) -> str:
    """Warnings, counts, the shared prefix and the token table of prompt A."""
    rows = [
        f"| {i} | `{table_cell(t)}` | {k} | {r.a.ids[i]} |"
        for i, (t, k) in enumerate(zip(r.a.tokens, r.a.kinds))
        if k != "pad"
    ]
    pads = r.a.kinds.count("pad")
    return (
        ("⚠ " + r.a.warning + "  \n" if r.a.warning else "")
        + (f"⚠ prompt B: {r.b.warning}  \n" if r.b.warning else "")
        + f"Prompt A: **{r.a.n_text}** tokens + **{pads}** padding = {r.a.max_length}. "
        + f"A and B share their first **{r.shared}** tokens: those rows are identical "
        + "(cosine 1.00 on the diagonal).\n\n| position | token | kind | id |\n|---|---|---|---|\n"
        + "\n".join(rows)
        + (
            f"\n| {r.a.n_text}…{r.a.max_length - 1} | `{table_cell(r.a.tokens[-1])}` | pad ×{pads} "
            f"| {r.a.ids[-1]} |"
            if pads
            else ""
        )
    )


def loss_text(r: clipmod.ImageText) -> str:
    """The logit scale, the diagonal hits and the contrastive loss, written out."""
    n, m = r.similarity.shape
    head = (
        f"**{r.source}** · exp(logit_scale) = **{r.logit_scale:.2f}** (temperature "
        f"{1 / r.logit_scale:.4f}) · diagonal is the row maximum in "
        f"**{r.diagonal_hits()} of {min(n, m)}** rows"
    )
    if r.loss is None:
        return head + f"  \nNo contrastive loss: it needs as many captions as images ({n} vs {m})."
    mean, i2t, t2i = r.loss
    return head + (
        f"  \nContrastive loss = ½·(image→text {i2t:.3f} + text→image {t2i:.3f}) = **{mean:.3f}** "
        f"(chance: ln {n} = {math.log(n):.3f}). Each row is a softmax over the "
        f"{m} captions of logits = {r.logit_scale:.1f} × cosine; the target is the diagonal."
    )


def map_note(runs: maps.MapRuns) -> str:
    """How many runs and points were mapped, and how."""
    p = runs.map.projection
    return (
        f"{len(runs.traces)} runs × {len(runs.map.paths[0])} points, "
        f"{runs.traces[0].latents[0].numel()} numbers each, mapped with **{p.method.upper()}**"
        + (f" · ⚠ {p.note}" if p.note else "")
        + (
            f" · PCA axes hold {p.explained[0]:.0%} and {p.explained[1]:.0%} of the variance"
            if p.explained
            else ""
        )
    )


def map_figure(runs: maps.MapRuns, step: int):
    """The map with `step` ringed on every run."""
    m = runs.map
    hover = []
    for tr, xy in zip(runs.traces, m.paths):
        ts = [float(t) for t in tr.timesteps]
        if runs.what == "latents":
            hover.append(
                ["start: pure noise x_T"]
                + [f"after step {s} (t={ts[s - 1]:.0f})" for s in range(1, len(xy))]
            )
        else:
            hover.append([f"x0 predicted at step {s + 1} (t={ts[s]:.0f})" for s in range(len(xy))])
    title = f"{len(runs.traces)} runs on one {m.projection.method.upper()} map ({runs.what})"
    return charts.map_figure(
        m.labels, m.paths, title, hover=hover, highlight=step, note=m.projection.note
    )


def map_pictures(runs: maps.MapRuns, step: int) -> list[tuple]:
    """Each run's x0 picture at `step` (decoded by the VAE: call it through `run_engine`)."""
    T = runs.traces[0].num_steps
    index = min(max(step - (runs.what == "latents"), 0), T - 1)  # the x0 of that step
    return [
        (tr.decode(steps=[index], what="x0")[0], label)
        for tr, label in zip(runs.traces, runs.map.labels)
    ]
