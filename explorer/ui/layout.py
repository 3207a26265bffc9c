"""The page: a header and one tab per tab module; launch options shared by the app and tests.

A tab module is any module with `TITLE` and `create_tab(ctx)`; `TABS` lists the ones the app
shows, in order. To add a tab, write `explorer/ui/tabs/<name>.py` with those two names and append
its module path to `TABS`.
"""

from __future__ import annotations

from importlib import import_module
from types import ModuleType

import gradio as gr

from explorer.mini.known import known_markdown
from explorer.ui.common import CSS, MAX_FILE_SIZE, QUEUE_SIZE, RUN_CONCURRENCY, AppContext
from explorer.ui.limits import visitor_limits
from explorer.ui.tabs.sketch import CANVAS_JS

TABS = [
    "explorer.ui.tabs.tour",
    "explorer.ui.tabs.generate",
    "explorer.ui.tabs.experiments",
    "explorer.ui.tabs.compare",
    "explorer.ui.tabs.sketch",
    "explorer.ui.tabs.forward",
    "explorer.ui.tabs.vae",
    "explorer.ui.tabs.attention",
    "explorer.ui.tabs.clip",
]


HEADER = """# Diffusion Explorer
Run Stable Diffusion for real and watch it think: every step, every tensor, in plain words.
Model: **{model}**."""


def tab_modules(names: list[str] | None = None) -> list[ModuleType]:
    """Import the tab modules (each must expose TITLE and create_tab)."""
    modules = [import_module(n) for n in (names or TABS)]
    for m in modules:
        if not (hasattr(m, "TITLE") and callable(getattr(m, "create_tab", None))):
            raise TypeError(f"{m.__name__} is not a tab module: it needs TITLE and create_tab(ctx)")
    return modules


def build_demo(ctx: AppContext, tabs: list[str] | None = None) -> gr.Blocks:
    """The whole app as a gr.Blocks (not launched, nothing loaded)."""
    with gr.Blocks(title="Diffusion Explorer") as demo:
        gr.Markdown(HEADER.format(model=ctx.model_name))
        known = known_markdown(ctx.embedded) if ctx.embedded else ""
        if known:
            with gr.Accordion("What this model knows", open=False, elem_id="known-words"):
                gr.Markdown(
                    "It was trained only on captions made of these words; any other word is "
                    "read as one `<|unk|>` token, which carries no meaning.\n\n" + known
                )
        with gr.Accordion("Limits of this app", open=False, elem_id="limits"):
            gr.Markdown(visitor_limits(ctx.fixed_size, ctx.model_name))
        with gr.Tabs() as page_tabs:
            for module in tab_modules(tabs):
                with gr.Tab(module.TITLE, id=module.__name__.rsplit(".", 1)[-1]):
                    module.create_tab(ctx)
        while ctx.late:  # wiring between tabs, once they all exist (the Tour's links)
            ctx.late.pop(0)(page_tabs)
    demo.queue(default_concurrency_limit=RUN_CONCURRENCY, max_size=QUEUE_SIZE)
    return demo


def launch_options(max_file_size: str = MAX_FILE_SIZE) -> dict:
    """Keyword arguments for `demo.launch` that every launch uses (theme, CSS, JS, limits).

    No `allowed_paths`: the app serves only what its handlers return. `max_file_size`: gradio
    refuses larger uploads before any handler sees them (a test launches with a small one).
    """
    return dict(
        theme=gr.themes.Soft(),
        css=CSS,
        js=CANVAS_JS,
        max_file_size=max_file_size,
        show_error=False,
    )
