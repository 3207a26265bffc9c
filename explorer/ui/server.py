"""Serve the app: command-line options, torch threads, the Blocks, a warm-up and `main`.

`python app.py` and the `diffusion-explorer` command both run `main`; it serves
http://127.0.0.1:7860 by default.

Options (the environment is read only by `main`, through `parse_args`, and passed down):
  --model PATH_OR_ID   mini-shapes or mini-things (the embedded models), a diffusers SD 1.x/2.x
                       folder or hub id (default: $EXPLORER_MODEL, else mini-shapes)
  --device DEVICE      cpu, cuda, cuda:1 ... (default: CUDA if present, else CPU)
  --host / --port      where to listen (default 127.0.0.1:7860, or $PORT; on a Space, 0.0.0.0)
  --share              also make a temporary public gradio.live link
  --clip-model NAME    a CLIP (folder or hub id) to score images with when the model has no vision
                       tower of its own (default: $EXPLORER_CLIP_MODEL; the Mini SD ships its own)
  --threads N          torch CPU threads (default: half the cores, 1 to 8)
Importing this module loads nothing; `build(...)` makes the Blocks, `main()` loads and launches.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
from collections.abc import Mapping
from pathlib import Path

log = logging.getLogger("explorer.app")


def _prog() -> str:
    """How the visitor started us, for --help: `python app.py`, else `diffusion-explorer`."""
    return "python app.py" if Path(sys.argv[0]).name == "app.py" else "diffusion-explorer"


def parse_args(argv: list[str] | None = None, env: Mapping | None = None) -> argparse.Namespace:
    """The options from `argv` (default: the command line), defaults from `env` (default: the
    process environment): $EXPLORER_MODEL, $EXPLORER_CLIP_MODEL, $PORT and $SPACE_ID."""
    env = os.environ if env is None else env
    on_space = bool(env.get("SPACE_ID"))
    p = argparse.ArgumentParser(prog=_prog(), description="Diffusion Explorer web app")
    p.add_argument(
        "--model",
        default=env.get("EXPLORER_MODEL") or None,
        help="mini-shapes, mini-things, a diffusers folder or a hub id "
        "(default: $EXPLORER_MODEL, else mini-shapes)",
    )
    p.add_argument(
        "--device", default=None, help="torch device (default: cuda if present, else cpu)"
    )
    p.add_argument(
        "--host", default="0.0.0.0" if on_space else "127.0.0.1", help="address to listen on"
    )
    p.add_argument(
        "--port", type=int, default=int(env.get("PORT", 7860)), help="port (default 7860)"
    )
    p.add_argument("--share", action="store_true", help="also create a public gradio.live link")
    p.add_argument(
        "--clip-model",
        default=env.get("EXPLORER_CLIP_MODEL") or None,
        help="CLIP for image x text scores when the model has none (default: $EXPLORER_CLIP_MODEL)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads (default: half the cores, 1 to 8)",
    )
    return p.parse_args(argv)


def set_threads(threads: int | None) -> int:
    """Torch CPU threads: the given number, else half the cores this process may use (1 to 8).

    Half, because OpenMP threads that outnumber the free cores spin-wait on each other: on a
    2-core machine with anything else running, 2 threads make a run many times slower than 1.
    """
    from explorer.engine import threads as explorer_threads

    if threads is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        threads = max(1, min(8, (cores or 1) // 2))
    explorer_threads.set_base(threads)
    return threads


def build(
    model: str | None = None,
    device: str | None = None,
    tabs: list[str] | None = None,
    clip_model: str | None = None,
):
    """(the app's gr.Blocks, its AppContext) for `model` on `device`; the pipeline loads on
    first use (`ctx.pipe()`). `tabs`: module paths, default all of `explorer.ui.layout.TABS`."""
    from explorer.engine.models import load_pipeline, mini_name
    from explorer.ui.common import AppContext
    from explorer.ui.layout import build_demo

    name = mini_name(model)
    size = _embedded_size(name)
    ctx = AppContext(
        load=lambda: load_pipeline(model, device),
        model_name=f"{name} (an embedded Mini Stable Diffusion, {size}×{size})" if name else model,
        device=device,
        fixed_size=size,
        embedded=name,
        options={"clip_model": clip_model},
    )
    return build_demo(ctx, tabs), ctx


def _embedded_size(name: str | None) -> int | None:
    """The picture side an embedded model makes; None for other models, or for an embedded one
    not trained yet (loading it then says so)."""
    from explorer.engine.models import mini_size

    try:
        return mini_size(name) if name else None
    except FileNotFoundError:
        return None


def warm_up(ctx) -> None:
    """Tiny runs, so the first visitor does not pay for first-call set-up (on the CPU that
    includes tracing the UNet for a plain run and for one with attention maps:
    explorer.engine.fastpath)."""
    from explorer.engine.capture import trace

    try:
        trace(ctx.pipe(), "warm up", steps=1, preview=True).decode(what="x0")
        trace(ctx.pipe(), "warm up", steps=1, attention=True)
    except Exception:  # noqa: BLE001 - a failed warm-up must not stop the server
        log.exception("warm-up run failed")


def flow_model_refusal(pipe) -> str | None:
    """Why the app cannot serve `pipe` as its model (a flow pipeline: its views are not all in
    flow's terms yet), or None."""
    from explorer.engine.kinds import kind

    if kind(pipe) != "flow":
        return None
    return (
        f"{type(pipe).__name__} is a flow model: the app does not serve one as its model yet. "
        "Serve mini-shapes or mini-things (or an SD 1.x/2.x model) and open Compare → 'Epsilon or "
        "flow?', which runs mini-flow beside mini-shapes; in Python, "
        "trace(load_pipeline('mini-flow'), prompt) records a flow run (docs/api.md)."
    )


def main(argv: list[str] | None = None) -> int:
    """Parse the options, load the model (exit 2 with a message if it cannot load), serve."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    set_threads(args.threads)
    from explorer.engine.models import ModelError
    from explorer.studies.trajectories import start_warm_up
    from explorer.ui.layout import launch_options

    demo, ctx = build(args.model, args.device, clip_model=args.clip_model)
    # UMAP compiles once in the background (PCA stands in until it is done), started after the
    # page's modules are imported: its import of umap racing theirs (plotly, narwhals) deadlocked
    # Python's import locks, and Python broke it by raising in either thread, the server's too
    start_warm_up()
    try:
        ctx.pipe()  # fail now, with a clear message, if the model cannot be loaded
    except ModelError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if refused := flow_model_refusal(ctx.pipe()):
        print(f"error: {refused}", file=sys.stderr)
        return 2
    threading.Thread(target=warm_up, args=(ctx,), daemon=True).start()
    demo.launch(server_name=args.host, server_port=args.port, share=args.share, **launch_options())
    return 0
