"""Epsilon or flow? (in the Compare tab): mini-shapes, which predicts the noise, and mini-flow,
which predicts a velocity, on one prompt from the same noise — their paths on one map, each
path's straightness, and the picture after 1, 2, 4 and 8 steps beside each model's own 50.

Events (api names in brackets):
  Run both models -> both models' runs, their map, the straightness and few-step table, each
                     model's pictures [/epsilon_or_flow]
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from explorer.charts.embeddings import map_figure
from explorer.engine.models import ModelError, load_pipeline
from explorer.inputs.controls import validate_run
from explorer.inputs.errors import VisitorError
from explorer.studies import epsilon_or_flow as eof
from explorer.ui.common import RUN_CONCURRENCY, AppContext, bind, explain, pixel_gallery, run_engine
from explorer.ui.pending import until_run
from explorer.ui.widgets import control_input

MODELS = {kind: f"mini-{name}" for kind, name in eof.MINI.items()}  # one world, two objectives
SHORT = {"epsilon": "mini-shapes", "flow": "mini-flow"}
NAMES = {"epsilon": "mini-shapes (predicts ε, DDIM)", "flow": "mini-flow (predicts v, flow Euler)"}
PROMPT = "a small red circle in the top left on a blue background"
INTRO = (
    "**Epsilon or flow?** Two Mini models of the same shapes world, with the same VAE and text "
    "encoder: **mini-shapes** learned to predict the noise ε (as SD 1.x and SDXL), **mini-flow** a "
    "velocity v ≈ ε − x0 along the straight line x_t = σ·ε + (1 − σ)·x0 (as SD3 and Flux). "
    "With one seed both start from the same noise. Sampling solves a differential equation "
    "step by step: a perfectly straight path could be walked in one step. Below: how straight "
    "each model's path is, and how far its pictures after 1, 2, 4 and 8 steps are from its own "
    "50-step picture."
)


def pipes() -> dict[str, Any]:
    """Both models (loaded once, cached by `load_pipeline`), whatever model the app serves."""
    try:
        return {kind: load_pipeline(name, "cpu") for kind, name in MODELS.items()}
    except ModelError as e:
        raise VisitorError(f"Epsilon or flow needs both embedded Mini models: {e}") from e


def run_both(
    prompt,
    seed,
    progress=gr.Progress(),  # noqa: B008 - how gradio injects progress
) -> dict[str, Any]:
    """Both models on `prompt` from `seed`: the map, the table and each model's pictures."""
    settings = validate_run(prompt=prompt, seed=seed, steps=eof.STEPS, guidance=eof.GUIDANCE)
    if not settings.prompt:
        raise VisitorError("type a prompt: both models draw it (e.g. “" + PROMPT + "”)")
    tick = lambda f, what: progress(f, desc=what)  # noqa: E731
    result = run_engine(eof.run, pipes(), settings.prompt, settings.seed, progress=tick)
    return {
        "status": summary(result),
        "map": paths_plot(result),
        "table": table(result),
        "epsilon": pictures(result, "epsilon"),
        "flow": pictures(result, "flow"),
    }


def summary(result: eof.EpsilonOrFlow) -> str:
    s, four = result.straightness, eof.FEW_STEPS.index(4)
    d = {m: result.distance[m][four] for m in eof.MODELS}
    straighter = "mini-flow's" if s["flow"] < s["epsilon"] else "mini-shapes'"
    nearer = "mini-flow's" if d["flow"] < d["epsilon"] else "mini-shapes'"
    return (
        f"Straightness (path length ÷ start-to-end distance, 1 = straight): mini-shapes "
        f"{s['epsilon']:.3f}, mini-flow {s['flow']:.3f} — {straighter} path is the straighter. "
        f"After 4 steps {nearer} picture is the nearer to its own {eof.REFERENCE_STEPS}-step "
        f"picture: {d['epsilon']:.1f} px off for mini-shapes, {d['flow']:.1f} for mini-flow "
        "(mean absolute difference, 0–255)."
    )


def table(result: eof.EpsilonOrFlow) -> str:
    """Markdown, a column a model: its straightness and its few-step pictures' distance to its
    own 50-step picture."""
    rows = [f"| | {' | '.join(SHORT[m] for m in eof.MODELS)} |", "|---|---:|---:|"]
    rows.append(
        "| straightness | " + " | ".join(f"{result.straightness[m]:.3f}" for m in eof.MODELS) + " |"
    )
    for k, n in enumerate(eof.FEW_STEPS):
        cells = " | ".join(f"{result.distance[m][k]:.1f}" for m in eof.MODELS)
        rows.append(f"| {n} step{'s' * (n > 1)}, px off | {cells} |")
    note = (
        "\n\nStraightness: the path's length over the steps ÷ its start-to-end distance "
        "(1 = straight). px off: the mean absolute difference (0–255 a channel) between the "
        f"picture after that many steps and the model's own {eof.REFERENCE_STEPS}-step picture."
    )
    return "\n".join(rows) + note


def pictures(result: eof.EpsilonOrFlow, model: str) -> list[tuple]:
    shots = [
        (im, f"{n} step{'s' * (n > 1)} · {d:.1f} px off")
        for n, im, d in zip(eof.FEW_STEPS, result.few[model], result.distance[model])
    ]
    return shots + [(result.reference[model], f"{eof.REFERENCE_STEPS} steps")]


def paths_plot(result: eof.EpsilonOrFlow):
    tmap = eof.paths_map(result)
    hover = []
    for m in eof.MODELS:
        run = result.runs[m]
        if run.objective == "flow":
            at = [f"σ={float(s):.3f}" for s in run.sigmas]
        else:
            at = [f"t={float(t):.0f}" for t in run.timesteps]
        hover.append([f"{MODELS[m]} · step {i + 1} · {a}" for i, a in enumerate(at)] + ["the end"])
    p = tmap.projection
    note = p.note or f"the axes hold {p.explained[0]:.0%} and {p.explained[1]:.0%} of the variance"
    title = f"Both paths on one {p.method.upper()} map<br><sup>x_t at each step, then the end</sup>"
    labels = [NAMES[m] for m in eof.MODELS]
    return map_figure(labels, tmap.paths, title, hover=hover, note=note)


def create_section(ctx: AppContext) -> None:
    """Build the Epsilon or flow? section inside the open Compare tab."""
    explain(INTRO)
    with gr.Row():
        prompt = control_input("prompt", elem_id="eof-prompt", lines=1, value=PROMPT)
        seed = control_input("seed", elem_id="eof-seed")
        run = gr.Button("Run both models", variant="primary", elem_id="eof-run", scale=0)
    status = gr.Markdown()
    with until_run(
        "Press Run both models: each model's path, and its pictures after 1 to 8 steps."
    ) as later:
        with gr.Row():
            with gr.Column(min_width=320):
                paths = gr.Plot(label="both paths on one map", elem_id="eof-map")
            with gr.Column(min_width=320):
                table_md = gr.Markdown(elem_id="eof-table")
        galleries = {
            m: pixel_gallery(
                f"{NAMES[m]}: after 1, 2, 4, 8 and 50 steps", columns=5, elem_id=f"eof-{m}"
            )
            for m in eof.MODELS
        }
    later.reveal_on(run)
    outputs = dict(status=status, map=paths, table=table_md, **galleries)
    run.click(
        bind(run_both, outputs=outputs),
        [prompt, seed],
        list(outputs.values()),
        api_name="epsilon_or_flow",
        concurrency_limit=RUN_CONCURRENCY,
        concurrency_id="run",
        show_progress_on=[status],
    )
