"""The step views: every view of one run, reusable by any tab.

    views = StepViews.build()                 # inside gr.Blocks: lays out all views
    event.then(fn, ..., outputs=views.outputs)  # every view, in the order of RUN_VIEWS + STEP_VIEWS
    return views.render(RunView.of(trace))    # {component: value} for every view

Views are named once, in `RUN_VIEWS` and `STEP_VIEWS`; `run_values` and `step_values` give their
values by name (a tab handler bound with `bind(..., outputs={..., **views.components})` returns
them as they are). `render` fills every view from a finished (or loaded) run; the step slider
re-renders only the `STEP_VIEWS`. The run lives in `views.state` (a `RunView`), so a tab such as
the experiments tab can "open a run in the step views" by rendering its Trace here. A flow run
(SD3) is shown in its own terms, σ_t and v, its labels following the run (`stepterms`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from explorer.charts import run_figures
from explorer.engine.tokens import string_kinds, text_length
from explorer.engine.tracefile import Trace
from explorer.studies import anatomy
from explorer.ui import stepterms
from explorer.ui.architecture import VIEW_IDS, architecture_html
from explorer.ui.common import (
    VIEW_CONCURRENCY,
    bind,
    explain,
    human_bytes,
    pixel_gallery,
    pixel_image,
)
from explorer.ui.texts import TEXTS


@dataclass
class RunView:
    """A run and its decoded pictures: what the step views show."""

    trace: Trace
    pictures: anatomy.RunPictures

    @classmethod
    def of(cls, trace: Trace, method: str | None = None) -> RunView:
        """Decode every step (VAE when the trace has a decoder, else the linear preview)."""
        return cls(trace, anatomy.run_pictures(trace, method))


def step_captions(trace: Trace, images: list) -> list[tuple]:
    """Gallery items for per-step pictures (x0, ε): 'step 1 · t=981', ..."""
    return [
        (im, f"step {i + 1} · t={float(t):.0f}")
        for i, (im, t) in enumerate(zip(images, trace.timesteps))
    ]


def latent_captions(images: list, img2img: bool = False) -> list[tuple]:
    """Gallery items for the T+1 latents: the start (pure noise, or img2img's noised picture),
    then the latent after each step."""
    start = "start · your picture, noised" if img2img else "start · pure noise"
    return [(im, start if i == 0 else f"after step {i}") for i, im in enumerate(images)]


def tokens_markdown(trace: Trace) -> str:
    """The tokens the encoder saw, padding summarized."""
    tokens = trace.prompt_tokens
    real = text_length(string_kinds(tokens))  # start, words and end: the engine's one rule
    pad = tokens[min(real, len(tokens) - 1)] if tokens else ""
    shown = " ".join(f"`{t}`" for t in tokens[:real])
    padding = f"{len(tokens) - real} × `{pad}` padding ({len(tokens)} in all)"
    return f"**{real} tokens** then {padding}: {shown}"


# ---- the views, by name -------------------------------------------------------------------------

# Every view of a run, in output order (the API's order too): `run_values` fills them all.
RUN_VIEWS = (
    "state",  # the RunView itself (a gr.State)
    "step",  # the step slider
    "architecture",
    "gallery_xt",
    "gallery_x0",
    "gallery_noise",
    "plot_schedule",
    "plot_latent",
    "plot_frequency",
    "plot_coefficients",
    "plot_guidance",
    "tokens",
    "tensors",
)
# The views of the selected step (last in the output order): the slider re-renders only these.
STEP_VIEWS = (
    "step_info",
    "equation",
    "use_xt",
    "use_eps",
    "use_removed",
    "use_next",
    "use_x0",
    "guidance_norms",
    "g_uncond",
    "g_text",
    "g_guided",
    "g_diff",
    "compression",
    "channels",
    "decoded",
)
NO_RUN = "Run a prompt to see its steps."
WAITING = (
    "Run a prompt to see inside it: every step's noisy latent, predicted image and noise, how "
    "the scheduler uses the noise, coarse to fine, guidance taken apart, the latent space, the "
    "tokens and every tensor."
)
# One accordion per question, in the order of the app's questions (docs/architecture.md).
SECTIONS = {
    "tensors": "1 · What are these tensors? Every captured array, its shape and meaning",
    "steps": "2 · Why can't it jump to the end? Every step: x_t, the predicted image, the noise",
    "scheduler": "3 · How is the predicted noise used? (selected step)",
    "charts": "4 · Coarse to fine: the whole run",
    "guidance": "5 · How does the text steer it? Guidance taken apart (selected step)",
    "latent": "6 · What is the latent space? (selected step)",
    "tokens": "What the text encoder read",
}
PLOTS = ("schedule", "latent", "frequency", "coefficients", "guidance")  # run_figures' keys
# the labels the views are built with (an epsilon run's); a flow run relabels them (`stepterms`)
EPSILON = stepterms.LABELS["epsilon"]


def run_values(view: RunView, step: int | None = None, prefix: str = "") -> dict[str, Any]:
    """Every view's value, by name: the whole run, with `step` (1..T, default T) selected;
    `prefix` is the tab's id prefix of its views (`StepViews.build`)."""
    trace, pics = view.trace, view.pictures
    T = trace.num_steps
    step = T if step is None else max(1, min(int(step), T))
    figures = run_figures(trace)
    rows = [
        f"- **{r['name']}** `{r['shape']}` {r['dtype']}, {human_bytes(r['bytes'])}: "
        f"{r['what it holds']}"
        for r in anatomy.tensor_inventory(trace)
    ]
    run = {
        "state": view,
        "step": gr.Slider(minimum=1, maximum=max(T, 2), value=step, step=1, interactive=T > 1),
        "architecture": architecture_html(trace, prefix),
        "gallery_xt": latent_captions(pics.latents, trace.settings.get("mode") == "img2img"),
        "gallery_x0": step_captions(trace, pics.x0),
        "gallery_noise": step_captions(trace, pics.noise),
        **{f"plot_{name}": figures[name] for name in PLOTS},
        "tokens": tokens_markdown(trace),
        "tensors": "\n".join(rows),  # a list, not a table: it wraps on a phone too
    }
    return {**stepterms.labelled(run, trace), **step_values(view, step), **shown()}


def shown() -> dict:
    """The updates that show the views (the one waiting line hidden): with a run's values, and
    as soon as a run starts streaming."""
    return {"waiting": gr.Markdown(visible=False), "body": gr.Column(visible=True)}


def step_values(view: RunView | None, step: int) -> dict[str, Any]:
    """The selected step's views, by name, at step `step` (1..T, as the slider counts)."""
    if view is None:
        return {**dict.fromkeys(STEP_VIEWS), "step_info": NO_RUN}
    trace, pics = view.trace, view.pictures
    i = max(1, min(int(step), trace.num_steps)) - 1  # index into the per-step tensors
    p = anatomy.step_parts(trace, i)
    # the pictures of the step: x_t, what the model predicted (ε, or a flow model's v), the
    # part of it the step adds (b·ε, or (σ_next − σ_t)·v), and the result
    parts = [p.x_t, p.eps, p.removed] if p.objective != "flow" else [p.x_t, p.velocity, p.moved]
    use = anatomy.latent_pictures(trace, [*parts, p.x_next])
    values = {
        "step_info": stepterms.step_info(p, trace, pics.method),
        "equation": stepterms.equation(p),
        **dict(zip(("use_xt", "use_eps", "use_removed", "use_next"), use, strict=True)),
        "use_x0": pics.x0[i],
        **guidance_values(trace, i),
        "compression": compression_text(trace),
        "channels": anatomy.channels_image(trace, i + 1),
        "decoded": pics.latents[i + 1],
    }
    return stepterms.labelled(values, trace)


equation_text = stepterms.epsilon_equation  # x_(t−1) = a·x_t + b·ε in words (its old name)


def guidance_values(trace: Trace, i: int) -> dict[str, Any]:
    """The guidance views of step index `i`: the norms and ε_u, ε_c, ε, ε_c − ε_u (a flow
    model's v_u, v_c, v, v_c − v_u)."""
    names = ("g_uncond", "g_text", "g_guided", "g_diff")
    g = anatomy.guidance_parts(trace, i)
    if g is None:
        return {"guidance_norms": stepterms.guidance_off(trace), **dict.fromkeys(names)}
    pictures = anatomy.noise_pictures(trace, [g.uncond, g.text, g.guided, g.difference])
    return {
        "guidance_norms": stepterms.guidance_line(g, trace),
        **dict(zip(names, pictures, strict=True)),
    }


def compression_text(trace: Trace) -> str:
    """How much smaller the latent is than the picture, in numbers."""
    c = anatomy.compression(trace)
    return (
        f"{c['height']}×{c['width']} pixels × 3 colours = **{c['pixels']:,} numbers**; the latent "
        f"is {c['channels']} × {c['h']} × {c['w']} = **{c['latent']:,} numbers**: "
        f"{c['ratio']:.0f}× smaller. The {stepterms.denoiser(trace)} works only on the latent."
    )


class StepViews:
    """The components of the step views; build inside an open `gr.Blocks`.

    `components` maps each name of `RUN_VIEWS` and `STEP_VIEWS` to its component, in that order.
    """

    components: dict[str, gr.components.Component]

    @classmethod
    def build(cls, prefix: str = "") -> StepViews:
        """The views, their element ids starting with `prefix` (one per tab: ids are unique).

        Before a run only one line shows (`WAITING`); then the strip, the step scrubber and one
        accordion per question, in the order of the app's questions, "every step" open."""
        self = cls()
        self.prefix = prefix
        self.state = gr.State(None)
        self.waiting = gr.Markdown(WAITING, elem_classes=["explain"])
        with gr.Column(visible=False) as self.body:
            self.architecture = gr.HTML(architecture_html(None, prefix))
            with gr.Row():  # on a phone the slider and its line stack, each full width
                with gr.Column(scale=3, min_width=300):
                    self.step = gr.Slider(
                        1,
                        2,
                        value=1,
                        step=1,
                        label="Step (scrubs every view)",
                        elem_id=f"{prefix}step-slider",
                    )
                with gr.Column(scale=2, min_width=300):
                    self.step_info = gr.Markdown(NO_RUN, elem_id=f"{prefix}step-info")
            for key, title in SECTIONS.items():
                with gr.Accordion(title, open=key == "steps", elem_id=prefix + VIEW_IDS[key]):
                    explain(TEXTS[key])
                    getattr(self, f"_build_{key}")()
        self.components = {name: getattr(self, name) for name in (*RUN_VIEWS, *STEP_VIEWS)}
        self.components |= {"waiting": self.waiting, "body": self.body}
        step_views = {name: self.components[name] for name in STEP_VIEWS}
        self.step.input(  # the visitor's own moves only (not a run setting the slider)
            bind(step_values, outputs=step_views),
            [self.state, self.step],
            list(step_views.values()),
            api_visibility="private",
            trigger_mode="always_last",
            show_progress="hidden",
            concurrency_limit=VIEW_CONCURRENCY,
            concurrency_id="views",
        )
        return self

    def _build_tensors(self) -> None:
        self.tensors = gr.Markdown()

    def _build_steps(self) -> None:
        self.gallery_xt = pixel_gallery("x_t: the noisy latent, decoded")
        self.gallery_x0 = pixel_gallery("x0: the clean image predicted at each step")
        self.gallery_noise = pixel_gallery(EPSILON["gallery_noise"])

    def _build_scheduler(self) -> None:
        self.equation = gr.Markdown()
        with gr.Row():
            self.use_xt = pixel_image("x_t")
            self.use_eps = pixel_image(EPSILON["use_eps"])
            self.use_removed = pixel_image(EPSILON["use_removed"])
            self.use_next = pixel_image(EPSILON["use_next"])
            self.use_x0 = pixel_image(EPSILON["use_x0"])

    def _build_charts(self) -> None:
        with gr.Row():
            self.plot_schedule = gr.Plot(label="noise schedule")
            self.plot_latent = gr.Plot(label="latent and x0")
        with gr.Row():
            self.plot_frequency = gr.Plot(label="coarse to fine")
            self.plot_coefficients = gr.Plot(label=EPSILON["plot_coefficients"])

    def _build_guidance(self) -> None:
        self.guidance_norms = gr.Markdown()
        with gr.Row():
            self.g_uncond = pixel_image(EPSILON["g_uncond"])
            self.g_text = pixel_image(EPSILON["g_text"])
            self.g_guided = pixel_image(EPSILON["g_guided"])
            self.g_diff = pixel_image(EPSILON["g_diff"])
        self.plot_guidance = gr.Plot(label="guidance norms")

    def _build_latent(self) -> None:
        self.compression = gr.Markdown()
        with gr.Row():
            self.channels = pixel_image("the latent after this step: its channels", scale=3)
            self.decoded = pixel_image("the same latent decoded", scale=1)

    def _build_tokens(self) -> None:
        self.tokens = gr.Markdown()

    @property
    def outputs(self) -> list:
        """Every view, in output order (an event that calls `render` lists these)."""
        return list(self.components.values())

    def render(self, view: RunView, step: int | None = None) -> dict:
        """`run_values` keyed by component, for an event whose outputs include `outputs`."""
        values = run_values(view, step, self.prefix)
        return {self.components[name]: value for name, value in values.items()}
