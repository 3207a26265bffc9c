"""The architecture strip: prompt → tokenizer → text encoder → UNet × steps → VAE decoder.

Each box names a part of Stable Diffusion and the shape of what flows out of it in this run (a
flow model's transformer and velocity v, for SD3); each is a link to the view that shows that
part (`VIEW_IDS`, the elem_ids of the step views).
"""

from __future__ import annotations

import html

from explorer.engine.tokens import string_kinds, text_length
from explorer.engine.tracefile import Trace
from explorer.inputs.words import count

# Where each box jumps to: elem_id of a section of the step views.
VIEW_IDS = {
    "tokens": "view-tokens",
    "guidance": "view-guidance",
    "steps": "view-steps",
    "scheduler": "view-scheduler",
    "latent": "view-latent",
    "charts": "view-charts",
    "tensors": "view-tensors",
}


def _shape(*dims) -> str:
    return "(" + ", ".join(str(d) for d in dims) + ")"


def boxes(trace: Trace | None) -> list[tuple[str, str, str, str]]:
    """(title, shape, explanation, view) per box; shapes are '?' before the first run."""
    if trace is None:
        q = "?"
        B, L, D, C, h, w, T, H, W, sched = q, q, q, q, q, q, q, q, q, "scheduler"
        real = q
    else:
        s = trace.settings
        B = 2 if trace.guided else 1
        L, D = trace.prompt_embeds.shape
        C, h, w = trace.latents.shape[1:]
        T = trace.num_steps
        H, W = s.get("height", "?"), s.get("width", "?")
        sched = s.get("scheduler", "scheduler")
        real = text_length(string_kinds(trace.prompt_tokens))  # start, words and end
    flow = trace is not None and trace.objective == "flow"
    if flow:  # a rectified-flow model (SD3): a transformer predicts a velocity v ≈ ε − x_0
        denoiser = (f"Transformer × {count(T)}", f"velocity {_shape(B, C, h, w)}", "predicts v")
        step = (f"x_next {_shape(1, C, h, w)}", "x_next = x_t + (σ_next − σ_t)·v")
    else:
        denoiser = (
            f"UNet × {count(T)}",
            f"noise {_shape(B, C, h, w)}",
            "predicts the noise in x_t",
        )
        step = (f"x_(t−1) {_shape(1, C, h, w)}", "removes part of the noise")
    return [
        ("Prompt", "text", "your words", "tokens"),
        ("Tokenizer", f"ids {_shape(1, L)}", f"{real} tokens incl. start/end, padded", "tokens"),
        (
            "Text encoder",
            f"embeds {_shape(B, L, D)}",
            "one vector per token; ×2 with guidance",
            "tokens",
        ),
        (*denoiser, "steps"),
        (f"Scheduler ({sched})", *step, "scheduler"),
        ("VAE decoder", f"image {_shape(3, H, W)}", "latent → pixels", "latent"),
    ]


def architecture_html(trace: Trace | None = None, prefix: str = "") -> str:
    """The strip as HTML: boxes linked to their views, arrows between them. `prefix`: the
    step views' id prefix in this tab (each tab has its own views, and ids must be unique)."""
    parts = []
    for i, (title, shape, note, view) in enumerate(boxes(trace)):
        if i:
            parts.append('<span class="arch-arrow">→</span>')
        parts.append(
            f'<a class="arch-box" href="#{prefix}{VIEW_IDS[view]}" title="{html.escape(note)}">'
            f"<b>{html.escape(title)}</b><code>{html.escape(shape)}</code></a>"
        )
    parts.append('<span class="arch-arrow">·</span>')
    parts.append(
        f'<a class="arch-box" href="#{prefix}{VIEW_IDS["tensors"]}"><b>All tensors</b>'
        "<code>shapes, sizes</code></a>"
    )
    return '<nav class="arch-strip">' + "".join(parts) + "</nav>"
