"""Shared fixtures: tiny random Stable Diffusion pipelines built in code (no files, no hub)."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

import pytest
from diffusers import StableDiffusionPipeline
from hypothesis import settings

from explorer.engine import threads
from explorer.engine.tiny import (  # noqa: F401 - re-exported for the tests
    SD_SCHEDULER,
    TINY_TEXT,
    TINY_UNET,
    TINY_VAE,
    WORDS,
    build_pipe,
    word_tokenizer,
)

# Two OpenMP threads on two cores shared with another busy process spin-wait each other into a
# 100x slowdown (a tiny UNet call: 2 s instead of 12 ms); tests are small, one thread suffices.
threads.set_base(1)

# Property tests draw the same examples on every run (CI must not pass or fail by chance); to
# explore afresh locally: HYPOTHESIS_PROFILE=explore python -m pytest tests/test_fuzz_inputs.py
settings.register_profile("repeatable", derandomize=True)
settings.register_profile("explore", max_examples=500)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def make_tiny_pipe():
    """Factory: make_tiny_pipe(seed=0) -> a fresh tiny random pipeline (64x64 images, 8x8
    latents)."""

    def make(seed: int = 0) -> StableDiffusionPipeline:
        return build_pipe(TINY_UNET, TINY_VAE, TINY_TEXT, seed)

    return make


@pytest.fixture(scope="session")
def tiny_pipe(make_tiny_pipe) -> StableDiffusionPipeline:
    """One tiny pipeline shared by the session (tests must not modify it; trace never does)."""
    return make_tiny_pipe()


def sd15_configs() -> tuple[dict, dict, dict]:
    """SD 1.5's published unet / vae / text-encoder configs (tests/fixtures/sd15_*.json)."""

    def load(name: str) -> dict:
        config = json.loads((FIXTURES / f"sd15_{name}.json").read_text())
        return {k: v for k, v in config.items() if not k.startswith("_")}

    return load("unet"), load("vae"), load("text_encoder")


@pytest.fixture(scope="session")
def mini_pipe() -> StableDiffusionPipeline:
    """The embedded Mini SD, loaded from the committed folder with the hub switched off."""
    import os

    os.environ["HF_HUB_OFFLINE"] = "1"
    from explorer.engine.models import load_pipeline

    return load_pipeline(None, "cpu")


@contextlib.contextmanager
def tab_client(pipe, tabs: list[str]):
    """A gradio_client Client of the app with only `tabs` (module paths) on `pipe`, served on
    loopback for the block; the server closes after it."""
    from gradio_client import Client

    from explorer.ui.common import AppContext
    from explorer.ui.layout import build_demo

    demo = build_demo(AppContext(load=lambda: pipe), tabs)
    demo.queue().launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True)
    try:
        yield Client(demo.local_url, verbose=False)
    finally:
        demo.close()


# ---- the browser tests' page (Playwright on Debian's chromium) ----

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def url():
    """The app on the embedded model, served on loopback for a test module (browser tests)."""
    import app
    from explorer.ui.layout import launch_options

    demo, ctx = app.build()
    ctx.pipe()
    demo.queue().launch(
        prevent_thread_lock=True, server_name="127.0.0.1", quiet=True, **launch_options()
    )
    try:
        yield demo.local_url
    finally:
        demo.close()


@pytest.fixture()
def page():
    """A headless Chromium page that collects console errors in `page.errors`."""
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} missing: apt-get install -y chromium")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 1500})
        page.set_default_timeout(120_000)  # a busy CI CPU is slow; this is no performance test
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.errors = errors
        yield page
        browser.close()
