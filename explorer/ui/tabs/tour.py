"""The Tour tab: one live run, walked through the thirteen questions one stop at a time.

Events (api names in brackets):
  Start the tour -> one traced run of the prompt (with attention maps), stop 1 (the API has
                  `explorer.studies.tour.start` instead: a tour is a walk on the page)
  Back / Next    -> the previous / next stop; a stop's extra runs are made on its first visit
  Reveal         -> the answer of the stop's question, computed from the run
  Open in its tab -> the full view with this run loaded (Generate's step views get the run
                  itself; other tabs get its prompt and seed, on the right sub-tab)
The figures come from `explorer.studies.tour`, the words from `explorer.ui.tour_text`.
"""

from __future__ import annotations

import html
from typing import Any

import gradio as gr

from explorer.charts import frequency_figure
from explorer.charts.embeddings import map_figure, token_norms_figure
from explorer.charts.experiments import scheduler_accuracy_figure
from explorer.charts.metrics import band_settling
from explorer.inputs.controls import validate_run
from explorer.studies import anatomy, tour, word_maps
from explorer.ui import tour_text
from explorer.ui.common import (
    RUN_CONCURRENCY,
    VIEW_CONCURRENCY,
    AppContext,
    bind,
    explain,
    pixel_gallery,
    run_engine,
)
from explorer.ui.examples import EXAMPLES, THINGS_EXAMPLES
from explorer.ui.widgets import control_input

TITLE = "Tour"
INTRO = (
    "A guided walk through one live run of the model: thirteen stops, one question each, every "
    "number from *this* run. Some stops ask you to predict before they show. Type your own "
    "prompt or keep the example, then press **Start the tour**."
)
OUTPUTS = (
    "state", "index", "dots", "title", "text", "gallery", "plot", "ask", "question", "choice",
    "step", "reveal", "answer", "back", "next", "open",
)  # fmt: skip


def examples(ctx: AppContext) -> list[list]:
    return THINGS_EXAMPLES if ctx.embedded == "mini-things" else EXAMPLES


# ---- what each stop shows ---------------------------------------------------------------------


def view(key: str, t: tour.Tour, f: dict) -> tuple[str, Any]:
    """("gallery", [(picture, caption)]) or ("plot", figure): the stop's one view of the run."""
    tr = t.trace
    if key == "tensors":
        return "gallery", [(tr.image, "the picture"), *channel_tiles(tr)]
    if key == "jump":
        pics = anatomy.run_pictures(tr).x0
        shown = sorted({0, 1, 3, 7, 15, tr.num_steps - 1} & set(range(tr.num_steps)))
        items = [(pics[i], f"x0 at step {i + 1}") for i in shown]
        return "gallery", items + [(f["one_step_image"], "a 1-step run")]
    if key == "noise":
        p = anatomy.step_parts(tr, f["step"] - 1)
        x = anatomy.latent_pictures(tr, [p.x_t, p.x_next])
        n = anatomy.noise_pictures(tr, [p.eps, p.removed])
        return "gallery", [(x[0], "x_t"), (n[0], "ε"), (n[1], f"{p.b:.3f}·ε"), (x[1], "x_(t−1)")]
    if key == "coarse":
        return "plot", frequency_figure(tr.x0_pred.numpy())
    if key == "guidance":
        g = anatomy.guidance_parts(tr, f["step"] - 1)
        if g is None:
            return "gallery", [(tr.image, "the picture")]
        pics = anatomy.noise_pictures(tr, [g.uncond, g.text, g.difference, g.guided])
        return "gallery", list(zip(pics, ["ε_u", "ε_c", "ε_c − ε_u", "guided ε"], strict=True))
    if key == "latent":
        return "gallery", [*channel_tiles(tr), (tr.image, "decoded by the VAE")]
    if key == "clip":
        return "gallery", [(tr.image, "this run's picture")]
    if key == "magnitude":
        return "gallery", [(tr.image, "k = 1"), (f["scaled_image"], f"k = {f['factor']:g}")]
    if key == "norms":
        kinds = word_maps.token_kinds(tr.prompt_tokens)
        return "plot", token_norms_figure(tr.prompt_tokens, f["lengths"], kinds)
    if key == "sketch":
        return "gallery", [(f["sketch"], "the rough sketch"), (f["image"], "img2img")]
    if key == "schedulers":
        return "plot", scheduler_accuracy_figure(
            f["steps"], f["curves"], reference=f"its own {f['reference_steps']} steps"
        )
    if key == "map":
        m = f["map"]
        return "plot", map_figure(
            m.labels, m.paths, "x_t at every step, PCA", note=m.projection.note
        )
    if key == "words":
        wm = word_maps.WordMaps.of(tr)
        return "gallery", word_maps.small_multiples(wm, None, tr.image)
    raise ValueError(f"unknown stop {key!r}")


def channel_tiles(tr) -> list[tuple]:
    """The final latent's channels, one captioned tile each (cut from `channels_image`'s row)."""
    row = anatomy.channels_image(tr, -1)
    C = tr.latents.shape[1]
    side = row.width // C
    return [(row.crop((k * side, 0, (k + 1) * side, row.height)), f"channel {k}") for k in range(C)]


def fitted(fig):
    """A chart for the tour: no title of its own (the stop's is above it), legend under the plot,
    clear of the axis title, so it fits a phone."""
    fig.update_layout(
        title_text="",
        margin=dict(t=20),
        legend=dict(orientation="h", yanchor="top", y=-0.3, xanchor="left", x=0),
    )
    return fig


def shown_view(key: str, t: tour.Tour, f: dict, visible: bool = True) -> dict:
    """The gallery and the chart, one of them holding the stop's view (call in `run_engine`:
    the x0 pictures are decoded by the VAE)."""
    kind, value = view(key, t, f)
    return dict(
        gallery=gr.Gallery(
            value=value if kind == "gallery" else None, visible=visible and kind == "gallery"
        ),
        plot=gr.Plot(
            value=fitted(value) if kind == "plot" else None, visible=visible and kind == "plot"
        ),
    )


def dots(index: int) -> str:
    """The progress bar: one dot a stop, the current one filled, with the stop's number."""
    marks = "".join(
        f'<span class="tour-dot{" now" if i == index else (" done" if i < index else "")}"'
        f' title="{html.escape(tour_text.STOPS[k].title)}"></span>'
        for i, k in enumerate(tour.STOPS)
    )
    return f'<div class="tour-dots">{marks}<b>{index + 1} / {len(tour.STOPS)}</b></div>'


def render(t: tour.Tour, index: int, pipe: Any) -> dict:
    """Every output of the stop at `index`, its figures computed on first visit (call inside
    `run_engine`). A stop that asks shows its view only with the answer."""
    key = tour.STOPS[index]
    f = t.facts(key, pipe)
    ask = tour_text.prediction(key, f)
    out = dict(
        state=t,
        index=index,
        dots=dots(index),
        title=f"### {index + 1}. {tour_text.STOPS[key].title}",
        text=tour_text.sentences(key, f),
        **shown_view(key, t, f, visible=ask is None),
        ask=gr.Column(visible=ask is not None),
        reveal=gr.Button(visible=ask is not None),
        answer="",
        back=gr.Button(interactive=index > 0),
        next=gr.Button(interactive=index < len(tour.STOPS) - 1),
        open=gr.Button(value=f"Open in its tab: {tour_text.STOPS[key].where}", visible=True),
    )
    if ask is not None:
        out["question"] = ask.question
        out["choice"] = gr.Radio(choices=ask.choices or [], value=None, visible=bool(ask.choices))
        n = t.trace.num_steps
        out["step"] = gr.Slider(1, n, value=max(1, n // 4), step=1, visible=ask.choices is None)
    return out


# ---- handlers ---------------------------------------------------------------------------------


def start_tour(ctx: AppContext, prompt, seed) -> dict:
    """Run the prompt once (traced with attention maps) and show the first stop."""
    settings = validate_run(
        prompt, "", seed, 25, 5.0, "ddim", 0, "model", fixed_size=ctx.fixed_size
    )
    pipe = ctx.pipe()
    captions = [e[0] for e in examples(ctx)][:3]
    t = run_engine(
        tour.start,
        pipe,
        settings.prompt,
        seed=settings.seed,
        captions=captions,
        settling=band_settling,
    )
    return run_engine(render, t, 0, pipe)


def move(ctx: AppContext, delta: int, t, index) -> dict:
    """The stop `delta` away from `index` (its extra runs made on its first visit)."""
    if t is None:
        raise gr.Error("Press Start the tour first.", print_exception=False)
    i = min(max(int(index) + delta, 0), len(tour.STOPS) - 1)
    return run_engine(render, t, i, ctx.pipe())


def reveal_answer(t, index, choice, step) -> dict:
    """The answer of the stop's question beside the visitor's pick, and the stop's view."""
    if t is None:
        raise gr.Error("Press Start the tour first.", print_exception=False)
    key = tour.STOPS[int(index)]
    f = t.done[key]
    ask = tour_text.prediction(key, f)
    if ask is None:
        return {}
    pick = step if ask.choices is None else choice
    out = {"answer": tour_text.reveal(key, f, pick)}
    if pick is not None and pick != "":
        out.update(run_engine(shown_view, key, t, f))
    return out


def open_in_tab(ctx: AppContext, t, index) -> dict:
    """The stop's tab, with this run loaded: Generate's views get the run itself, other tabs its
    prompt and seed (and the right sub-tab); `target` names the view to scroll to."""
    if t is None:
        raise gr.Error("Press Start the tour first.", print_exception=False)
    stop = tour_text.STOPS[tour.STOPS[int(index)]]
    out: dict[str, Any] = {"tabs": gr.Tabs(selected=stop.tab), "target": stop.place}
    link = ctx.links.get(stop.tab, {})
    known = link.get("components", {})
    if "show" in link:
        out.update({f"{stop.tab}.{k}": v for k, v in run_engine(link["show"], t.trace).items()})
    for name in ("prompt", "seed"):
        if name in known:
            out[f"{stop.tab}.{name}"] = t.trace.settings[name]
    if "tabs" in known and stop.place:
        out[f"{stop.tab}.tabs"] = gr.Tabs(selected=stop.place)
    return out


SCROLL_JS = """(id) => { if (!id) return; setTimeout(() => {
  const el = document.getElementById(id); if (!el) return;
  const head = el.querySelector('button.label-wrap');
  if (head && !head.classList.contains('open')) head.click();
  el.scrollIntoView({block: 'start'}); }, 400); }"""


# ---- layout and wiring ------------------------------------------------------------------------


def create_tab(ctx: AppContext) -> None:
    """Build the Tour tab inside an open gr.Blocks; the Open button is wired once every tab
    exists (`ctx.late`)."""
    explain(INTRO)
    first = examples(ctx)[0]
    with gr.Row():
        prompt = control_input(
            "prompt", value=first[0], elem_id="tour-prompt", scale=3, min_width=300
        )
        seed = control_input("seed", value=first[2], elem_id="tour-seed", scale=1, min_width=160)
    go = gr.Button("Start the tour", variant="primary", elem_id="tour-start")
    c: dict[str, Any] = dict(state=gr.State(None), index=gr.State(0))
    c["dots"] = gr.HTML("", elem_id="tour-dots")
    c["title"] = gr.Markdown("", elem_id="tour-title")
    c["gallery"] = pixel_gallery("This run", columns=6, visible=False, elem_id="tour-gallery")
    c["plot"] = gr.Plot(visible=False, elem_id="tour-plot")
    c["text"] = gr.Markdown("", elem_id="tour-text")
    with gr.Column(visible=False) as c["ask"]:
        c["question"] = gr.Markdown("", elem_id="tour-question")
        c["choice"] = gr.Radio([], label="Your answer", elem_id="tour-choice")
        c["step"] = gr.Slider(1, 25, value=6, step=1, label="Your step", elem_id="tour-step")
        c["reveal"] = gr.Button("Reveal", elem_id="tour-reveal")
        c["answer"] = gr.Markdown("", elem_id="tour-answer")
    with gr.Row():
        c["back"] = gr.Button("← Back", interactive=False, elem_id="tour-back")
        c["next"] = gr.Button("Next →", interactive=False, elem_id="tour-next")
    c["open"] = gr.Button("Open in its tab", visible=False, size="sm", elem_id="tour-open")
    outputs = {name: c[name] for name in OUTPUTS}
    common = dict(
        concurrency_limit=RUN_CONCURRENCY, concurrency_id="run", show_progress_on=[c["text"]]
    )
    go.click(bind(start_tour, ctx, outputs=outputs), [prompt, seed], list(outputs.values()),
             api_visibility="private", **common)  # fmt: skip
    for button, delta in ((c["back"], -1), (c["next"], 1)):
        button.click(bind(move, ctx, delta, outputs=outputs), [c["state"], c["index"]],
                     list(outputs.values()), api_visibility="private", **common)  # fmt: skip
    shown = {name: c[name] for name in ("answer", "gallery", "plot")}
    c["reveal"].click(bind(reveal_answer, outputs=shown),
                      [c["state"], c["index"], c["choice"], c["step"]], list(shown.values()),
                      api_visibility="private", concurrency_limit=VIEW_CONCURRENCY,
                      concurrency_id="views")  # fmt: skip

    def wire_open(tabs: gr.Tabs) -> None:
        target = gr.Textbox(visible=False)
        named: dict[str, Any] = {"tabs": tabs, "target": target}
        for tab, link in ctx.links.items():
            for name, comp in link.get("components", {}).items():
                named[f"{tab}.{name}"] = comp
        c["open"].click(
            bind(open_in_tab, ctx, outputs=named), [c["state"], c["index"]], list(named.values()),
            api_visibility="private", concurrency_limit=RUN_CONCURRENCY, concurrency_id="views",
        ).then(None, [target], None, js=SCROLL_JS)  # fmt: skip

    ctx.late.append(wire_open)
