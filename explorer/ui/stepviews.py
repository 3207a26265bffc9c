"""The step views: every view of one run, reusable by any tab.

    views = StepViews.build()               # inside gr.Blocks: lays out all views
    event.then(fn, ..., outputs=views.outputs)
    return views.render(RunView.of(trace))  # values for views.outputs, in order

`render` fills every view from a finished (or loaded) run; the step slider re-renders only the
per-step views (`step_outputs`). The run lives in `views.state` (a `RunView`), so a tab such as
the experiments tab can "open a run in the step views" by rendering its Trace here.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from explorer.charts import run_figures
from explorer.engine.tracefile import Trace
from explorer.studies import anatomy
from explorer.ui.architecture import VIEW_IDS, architecture_html
from explorer.ui.common import VIEW_CONCURRENCY, explain, human_bytes, pixel_gallery, pixel_image
from explorer.ui.texts import TEXTS

TENSOR_HEADERS = ["name", "shape", "dtype", "size", "what it holds"]


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
    pad = tokens[-1] if tokens else ""
    real = len(tokens)
    while real > 1 and tokens[real - 1] == pad and tokens[real - 2] == pad:
        real -= 1
    shown = " ".join(f"`{t}`" for t in tokens[:real])
    return f"**{real} tokens** then {len(tokens) - real} × `{pad}` padding ({len(tokens)} in all): {shown}"


class StepViews:
    """The components of the step views; build inside an open `gr.Blocks`."""

    @classmethod
    def build(cls) -> StepViews:
        self = cls()
        self.state = gr.State(None)
        self.architecture = gr.HTML(architecture_html(None))
        with gr.Row():
            self.step = gr.Slider(
                1,
                2,
                value=1,
                step=1,
                label="Step (scrubs every view)",
                scale=3,
                elem_id="step-slider",
            )
            self.step_info = gr.Markdown("Run a prompt to see its steps.", elem_id="step-info")
        with gr.Column(elem_id=VIEW_IDS["steps"]):
            gr.Markdown("### Every step: noisy latent, predicted image, predicted noise")
            explain(TEXTS["steps"])
            self.gallery_xt = pixel_gallery("x_t: the noisy latent, decoded")
            self.gallery_x0 = pixel_gallery("x0: the clean image predicted at each step")
            self.gallery_noise = pixel_gallery(
                "ε: the noise predicted at each step (contrast-stretched)"
            )
        with gr.Column(elem_id=VIEW_IDS["scheduler"]):
            gr.Markdown("### How the predicted noise is used (selected step)")
            explain(TEXTS["scheduler"])
            self.equation = gr.Markdown()
            with gr.Row():
                self.use_xt = pixel_image("x_t")
                self.use_eps = pixel_image("ε predicted")
                self.use_removed = pixel_image("b·ε (the noise part)")
                self.use_next = pixel_image("x_(t−1) = a·x_t + b·ε")
                self.use_x0 = pixel_image("x0 it heads to")
        with gr.Column(elem_id=VIEW_IDS["guidance"]):
            gr.Markdown("### Guidance taken apart (selected step)")
            explain(TEXTS["guidance"])
            self.guidance_norms = gr.Markdown()
            with gr.Row():
                self.g_uncond = pixel_image("ε_u without the prompt")
                self.g_text = pixel_image("ε_c with the prompt")
                self.g_guided = pixel_image("ε guided")
                self.g_diff = pixel_image("ε_c − ε_u: the prompt's push")
        with gr.Column(elem_id=VIEW_IDS["latent"]):
            gr.Markdown("### The latent space (selected step)")
            explain(TEXTS["latent"])
            self.compression = gr.Markdown()
            with gr.Row():
                self.channels = pixel_image("the latent after this step: its channels", scale=3)
                self.decoded = pixel_image("the same latent decoded", scale=1)
        with gr.Column(elem_id=VIEW_IDS["charts"]):
            gr.Markdown("### Over the whole run")
            explain(TEXTS["charts"])
            with gr.Row():
                self.plot_schedule = gr.Plot(label="noise schedule")
                self.plot_latent = gr.Plot(label="latent and x0")
            with gr.Row():
                self.plot_frequency = gr.Plot(label="coarse to fine")
                self.plot_coefficients = gr.Plot(label="scheduler coefficients")
            self.plot_guidance = gr.Plot(label="guidance norms")
        with gr.Column(elem_id=VIEW_IDS["tokens"]):
            gr.Markdown("### What the text encoder read")
            explain(TEXTS["tokens"])
            self.tokens = gr.Markdown()
        with gr.Column(elem_id=VIEW_IDS["tensors"]):
            gr.Markdown("### Every captured tensor")
            explain(TEXTS["tensors"])
            self.tensors = gr.Dataframe(headers=TENSOR_HEADERS, interactive=False, wrap=True)
        self.step.input(  # the visitor's own moves only (not a run setting the slider)
            self.render_step,
            [self.state, self.step],
            self.step_outputs,
            api_visibility="private",
            trigger_mode="always_last",
            show_progress="hidden",
            concurrency_limit=VIEW_CONCURRENCY,
            concurrency_id="views",
        )
        return self

    # ---- outputs ------------------------------------------------------------------------

    @property
    def step_outputs(self) -> list:
        """Views that depend on the selected step (the slider updates only these)."""
        return [
            self.step_info, self.equation, self.use_xt, self.use_eps, self.use_removed,
            self.use_next, self.use_x0, self.guidance_norms, self.g_uncond, self.g_text,
            self.g_guided, self.g_diff, self.compression, self.channels, self.decoded,
        ]  # fmt: skip

    @property
    def outputs(self) -> list:
        """Every view (for `render`), the state first, then the slider."""
        return [
            self.state, self.step, self.architecture, self.gallery_xt, self.gallery_x0,
            self.gallery_noise, self.plot_schedule, self.plot_latent, self.plot_frequency,
            self.plot_coefficients, self.plot_guidance, self.tokens, self.tensors,
            *self.step_outputs,
        ]  # fmt: skip

    # ---- rendering ----------------------------------------------------------------------

    def render(self, view: RunView, step: int | None = None) -> list:
        """Values for `outputs`: the whole run, with `step` (1..T, default T) selected."""
        trace, pics = view.trace, view.pictures
        T = trace.num_steps
        step = T if step is None else max(1, min(int(step), T))
        figures = run_figures(trace)
        rows = [
            [r["name"], r["shape"], r["dtype"], human_bytes(r["bytes"]), r["what it holds"]]
            for r in anatomy.tensor_inventory(trace)
        ]
        return [
            view,
            gr.Slider(minimum=1, maximum=max(T, 2), value=step, step=1, interactive=T > 1),
            architecture_html(trace),
            latent_captions(pics.latents, trace.settings.get("mode") == "img2img"),
            step_captions(trace, pics.x0),
            step_captions(trace, pics.noise),
            figures["schedule"],
            figures["latent"],
            figures["frequency"],
            figures["coefficients"],
            figures["guidance"],
            tokens_markdown(trace),
            rows,
            *self.render_step(view, step),
        ]

    @staticmethod
    def render_step(view: RunView | None, step: int) -> list:
        """Values for `step_outputs` at step `step` (1..T, as the slider and captions count)."""
        if view is None:
            return ["Run a prompt to see its steps."] + [None] * 14
        trace, pics = view.trace, view.pictures
        i = max(1, min(int(step), trace.num_steps)) - 1  # index into the per-step tensors
        p = anatomy.step_parts(trace, i)
        latent_pics = anatomy.latent_pictures(trace, [p.x_t, p.eps, p.removed, p.x_next])
        info = (
            f"**Step {i + 1} of {trace.num_steps}** · timestep t = {p.timestep:.0f} · "
            f"ᾱ_t = {p.alpha_bar:.4f} (signal share) · decoded with {pics.method}"
        )
        equation = (
            f"x_(t−1) = **{p.a:.4f}** · x_t + (**{p.b:+.4f}**) · ε"
            f" — this explains x_(t−1) up to {p.residual:.1%} (the rest: history or fresh noise)."
        )
        g = anatomy.guidance_parts(trace, i)
        if g is None:
            norms = "Guidance was off (scale ≤ 1): the UNet ran once per step, without the negative prompt."
            g_pics = [None] * 4
        else:
            norms = " · ".join(f"‖{k}‖ = {v:.2f}" for k, v in g.norms.items())
            g_pics = anatomy.noise_pictures(trace, [g.uncond, g.text, g.guided, g.difference])
        c = anatomy.compression(trace)
        compression = (
            f"{c['height']}×{c['width']} pixels × 3 colours = **{c['pixels']:,} numbers**; the latent is "
            f"{c['channels']} × {c['h']} × {c['w']} = **{c['latent']:,} numbers**: "
            f"{c['ratio']:.0f}× smaller. The UNet works only on the latent."
        )
        return [
            info, equation, *latent_pics, pics.x0[i], norms, *g_pics, compression,
            anatomy.channels_image(trace, i + 1), pics.latents[i + 1],
        ]  # fmt: skip
