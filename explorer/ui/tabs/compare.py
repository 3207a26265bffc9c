"""The Compare tab: run A and run B from the same starting noise, B changing one thing, side by
side with one scrubber, a chart of where they part ways, both paths on one map and, for a prompt
pair, where each word's attention moved.

Events (api names in brackets):
  Run       -> both runs, their distances per step, their map, the attention difference and
               both runs' predicted images [/compare_runs]
  scrubber  -> step i of A beside the step of B it is compared with, ringed on the map (and the
               attention difference at that step, when asked for); no model call
  attention -> the attention difference averaged over the steps or at the scrubbed step
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from explorer.charts.compare import attention_difference_figure
from explorer.charts.embeddings import map_figure
from explorer.charts.experiments import comparison_figure
from explorer.inputs.controls import CONTROLS, ControlError, validate_float_range, validate_run
from explorer.inputs.errors import VisitorError
from explorer.studies.attention_difference import attention_difference
from explorer.studies.compare import Comparison, compare_runs, comparison_map
from explorer.studies.trajectories import TrajectoryMap
from explorer.ui.common import (
    RUN_CONCURRENCY,
    VIEW_CONCURRENCY,
    AppContext,
    bind,
    explain,
    pixel_gallery,
    run_engine,
)
from explorer.ui.experiment_lists import LISTS
from explorer.ui.notes import notes_markdown, prompt_notes
from explorer.ui.pending import until_run
from explorer.ui.stepviews import RunView, step_captions
from explorer.ui.tabs import epsilon_or_flow
from explorer.ui.widgets import control_input

TITLE = "Compare"
CHANGES = ["prompt", "guidance", "scheduler", "steps", "magnitude"]
PROMPT_B = "a large red circle on a white background"
MAGNITUDE = LISTS["magnitude"]  # the range of k, as the magnitude experiment's
MAP_METHODS = ["pca", "umap"]
NAMES = {"embedding_scale": "embedding magnitude k"}  # settings as the summary names them
ATTENTION_AT = ["averaged over the steps", "at the scrubbed step"]
INTRO = (
    "Two runs from **the same starting noise** (the same seed): run B changes one thing. Their "
    "distance is 0 where they are the same; watch where it grows — the step where the two "
    "pictures part ways is where the change starts to matter. Each step of A is set beside the "
    "step of B nearest in the schedule (the same step when the step counts agree)."
)


def run_compare(
    ctx: AppContext,
    prompt,
    seed,
    steps,
    guidance,
    scheduler,
    change,
    prompt_b,
    guidance_b,
    scheduler_b,
    steps_b,
    magnitude_b=2.0,
    map_method="pca",
    attention_at=ATTENTION_AT[0],
    progress=gr.Progress(),  # noqa: B008 - how gradio injects progress
) -> dict[str, Any]:
    """Both runs, the distance chart, their map, the attention difference (a prompt pair), both
    runs' x0 and the pair at the last step."""
    if change not in CHANGES:
        raise VisitorError(f"change must be one of: {', '.join(CHANGES)}; got {change!r}")
    if map_method not in MAP_METHODS or attention_at not in ATTENTION_AT:
        raise ControlError(
            f"map_method must be one of {MAP_METHODS}; attention_at one of {ATTENTION_AT}"
        )
    given = dict(prompt=prompt, seed=seed, steps=steps, guidance=guidance, scheduler=scheduler)
    a = validate_run(**given)
    pipe = ctx.pipe()
    if change == "magnitude":
        k = validate_float_range("B's magnitude k", magnitude_b, MAGNITUDE["lo"], MAGNITUDE["hi"])
        changes, b = {"embedding_scale": k}, a  # B's prompt is A's
    else:
        b_value = dict(zip(CHANGES, (prompt_b, guidance_b, scheduler_b, steps_b)))[change]
        b = validate_run(**{**given, change: b_value})
        if change == "prompt" and not b.prompt:
            raise ControlError("B's prompt is empty: type the prompt run B uses (change a word)")
        changes = {change: getattr(b, change)}
    base = dict(prompt=a.prompt, **a.trace_kwargs())
    tick = lambda f, what: progress(f, desc=what)  # noqa: E731
    cmp = run_engine(compare_runs, pipe, base, changes, progress=tick)
    views = (run_engine(RunView.of, cmp.a), run_engine(RunView.of, cmp.b))
    notes = notes_markdown(prompt_notes(pipe, a) + (prompt_notes(pipe, b) if b is not a else []))
    state = dict(views=views, cmp=cmp, map=comparison_map(cmp, map_method))
    last = cmp.a.num_steps
    return {
        "status": notes + summary(cmp),
        "chart": comparison_figure(cmp.latent_distance, cmp.x0_distance, cmp.parted_at),
        "x0_a": step_captions(cmp.a, views[0].pictures.x0),
        "x0_b": step_captions(cmp.b, views[1].pictures.x0),
        "step": gr.Slider(1, last, value=last, step=1),
        **at_step(state, last, attention_at),
        "state": state,
    }


def summary(cmp: Comparison) -> str:
    """What B changed and where the two runs part ways, in a sentence."""
    changed = "; ".join(
        f"{NAMES.get(k, k)}: “{va}” → “{vb}”" for k, (va, vb) in cmp.changed.items()
    )
    if not changed:
        return "A and B are the same run: their distance is 0 at every step."
    d = cmp.latent_distance
    parted = f"they part ways at step {cmp.parted_at}" if cmp.parted_at else "they end the same"
    text = (
        f"B changed {changed}. Both start from the same noise (x_t distance {d[0]:.3f} at step "
        f"1); {parted}: there the inputs are first half as far apart as the two final latents "
        f"({d[-1]:.3f}). Early x0 predictions swing widely (they divide by a tiny √ᾱ)."
    )
    if cmp.embedding is not None:
        za, zb, cos = cmp.embedding
        way = "no direction at all" if zb == 0 else f"cosine to A's {cos:.4f}"
        text += (
            f" B's prompt embedding is k·z: length ‖z_k‖ = {zb:.2f} against A's ‖z‖ = {za:.2f}, "
            f"{way}."
        )
    return text


def _index(cmp: Comparison, step: Any) -> int:
    """A's step `step` (1-based, clamped to the run) as a 0-based index."""
    return max(1, min(int(step), cmp.a.num_steps)) - 1


def pair(views: tuple, cmp: Comparison, step: Any) -> list[tuple]:
    """Step `step` (1-based) of A beside the step of B it is compared with: x_t and x0 each."""
    i = _index(cmp, step)
    j = cmp.pairs[i]
    a, b = views[0].pictures, views[1].pictures
    ta, tb = float(cmp.a.timesteps[i]), float(cmp.b.timesteps[j])
    return [
        (a.latents[i], f"A x_t · step {i + 1} · t={ta:.0f}"),
        (b.latents[j], f"B x_t · step {j + 1} · t={tb:.0f}"),
        (a.x0[i], f"A x0 · step {i + 1}"),
        (b.x0[j], f"B x0 · step {j + 1}"),
    ]


def map_plot(cmp: Comparison, tmap: TrajectoryMap, step: Any):
    """Both paths on their shared map, A's step `step` and B's paired step ringed."""
    i = _index(cmp, step)
    hover = [
        [f"step {s + 1} · t={float(t):.0f}" for s, t in enumerate(run.timesteps)]
        + ["the end: the final latent"]
        for run in (cmp.a, cmp.b)
    ]
    p = tmap.projection
    shares = f"the axes hold {p.explained[0]:.0%} and {p.explained[1]:.0%} of the variance"
    note = p.note or (shares if p.explained else "")
    title = f"A and B on one {p.method.upper()} map<br><sup>x_t at each step, then the end</sup>"
    return map_figure(
        tmap.labels, tmap.paths, title, hover=hover, highlight=[i, cmp.pairs[i]], note=note
    )


def attention_plot(cmp: Comparison, step: Any, at: str):
    """B's attention minus A's per word (a prompt pair only; hidden otherwise)."""
    if cmp.a.attention is None or cmp.b.attention is None:
        return gr.Plot(visible=False)
    i = _index(cmp, step) if at == ATTENTION_AT[1] else None
    diffs = attention_difference(cmp.a, cmp.b, cmp.pairs, i)
    when = (
        "averaged over the steps" if i is None else f"at step {i + 1} of A, {cmp.pairs[i] + 1} of B"
    )
    title = (
        f"Each word's attention, B − A<br><sup>{when}; red: B attends more there, blue: less</sup>"
    )
    figure = attention_difference_figure([d.label for d in diffs], [d.diff for d in diffs], title)
    return gr.Plot(figure, visible=True)


def at_step(state: dict, step: Any, at: str) -> dict[str, Any]:
    """What follows the scrubber: the pair of pictures, the ringed map, the attention maps."""
    cmp = state["cmp"]
    return {
        "pair": pair(state["views"], cmp, step),
        "map": map_plot(cmp, state["map"], step),
        "attention": attention_plot(cmp, step, at),
    }


def rescrub(state, step, at=ATTENTION_AT[0]) -> dict[str, Any]:
    if not state:
        return {}
    return at_step(state, step, at)


def b_boxes(change: str) -> list[dict]:
    """Only the box of what B changes is shown, and the attention choice for a prompt pair."""
    return [gr.update(visible=change == c) for c in CHANGES] + [
        gr.update(visible=change == "prompt")
    ]


def attention_shown(state) -> gr.Column:
    """The attention difference's column, shown when the runs have attention maps."""
    cmp = state["cmp"] if state else None
    return gr.Column(visible=cmp is not None and cmp.a.attention is not None)


def b_inputs() -> tuple[list, list]:
    """B's value of each change (only the picked one shown, `b_boxes`), and the view choices:
    the map's method and where the attention difference is taken."""
    hidden = dict(visible=False)  # until "Run B changes" picks it
    b_values = [
        gr.Textbox(label="B's prompt", value=PROMPT_B, elem_id="cmp-b-p"),
        control_input("guidance", label="B's guidance", value=3.0, elem_id="cmp-b-g", **hidden),
        control_input(
            "scheduler", label="B's scheduler", value="euler", elem_id="cmp-b-s", **hidden
        ),
        control_input("steps", label="B's steps", value=10, elem_id="cmp-b-n", **hidden),
        gr.Number(
            value=2.0,
            label="B's magnitude k",
            info=f"B's prompt embedding times k ({MAGNITUDE['lo']:g} to "
            f"{MAGNITUDE['hi']:g}); A's is the plain one, k = 1.",
            elem_id="cmp-b-k",
            **hidden,
        ),
    ]
    with gr.Row():
        views = [
            gr.Radio(MAP_METHODS, value="pca", label="Map", elem_id="cmp-map-method"),
            gr.Radio(ATTENTION_AT, value=ATTENTION_AT[0], label="Attention difference"),
        ]
    return b_values, views


def create_tab(ctx: AppContext) -> None:
    """Build the Compare tab inside an open gr.Blocks."""
    explain(INTRO)
    with gr.Row():
        with gr.Column(scale=3, min_width=300):
            inputs = [control_input("prompt", elem_id="cmp-prompt", lines=1)]
            with gr.Row():
                inputs += [control_input(n, elem_id=f"cmp-{n}") for n in ("seed", "steps")]
            with gr.Row():
                inputs += [control_input(n, elem_id=f"cmp-{n}") for n in ("guidance", "scheduler")]
        with gr.Column(scale=2, min_width=300):
            change = gr.Radio(CHANGES, value="prompt", label="Run B changes", elem_id="cmp-change")
            b_values, views = b_inputs()
            change.change(
                b_boxes, change, [*b_values, views[1]], queue=False, api_visibility="private"
            )
            run = gr.Button("Run A and B", variant="primary", elem_id="cmp-run")
    status = gr.Markdown()
    with until_run("Press Run A and B: both runs, step by step, and where they part.") as later:
        chart = gr.Plot(label="distance between the runs")
        step = gr.Slider(1, CONTROLS["steps"].default, value=1, step=1, label="Step of A")
        pictures = pixel_gallery("At that step: A and B's x_t, A and B's x0", columns=4)
        with gr.Row():
            with gr.Column(min_width=320):
                trajectories = gr.Plot(label="both runs on one map", elem_id="cmp-map")
            with gr.Column(min_width=320) as attention_box:
                attention = gr.Plot(label="attention: B − A", elem_id="cmp-attention")
        x0_a = pixel_gallery("Run A: the predicted image at each step")
        x0_b = pixel_gallery("Run B: the predicted image at each step")
    later.reveal_on(run)
    state = gr.State(None)
    outputs = dict(
        status=status,
        chart=chart,
        map=trajectories,
        attention=attention,
        x0_a=x0_a,
        x0_b=x0_b,
        step=step,
        pair=pictures,
        state=state,
    )
    run.click(
        bind(run_compare, ctx, outputs=outputs),
        [*inputs, change, *b_values, *views],
        list(outputs.values()),
        api_name="compare_runs",
        concurrency_limit=RUN_CONCURRENCY,
        concurrency_id="run",
        show_progress_on=[status],
    ).then(  # no attention maps (B did not change the prompt): the map takes the whole row
        attention_shown, state, attention_box, queue=False, api_visibility="private"
    )
    scrubbed = dict(pair=pictures, map=trajectories, attention=attention)
    for event in (step.input, views[1].input):
        event(
            bind(rescrub, outputs=scrubbed),
            [state, step, views[1]],
            list(scrubbed.values()),
            api_visibility="private",
            concurrency_limit=VIEW_CONCURRENCY,
            concurrency_id="views",
        )
    with gr.Accordion("Epsilon or flow? Two Mini models from one noise", open=False, elem_id="eof"):
        epsilon_or_flow.create_section(ctx)
