"""The page in headless Chromium (Playwright): type, run, scrub, screenshot, no console errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import app
from explorer.ui.layout import launch_options

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).parents[1] / "artifacts"


@pytest.fixture(scope="module")
def url():
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


def test_type_run_scrub_screenshot(url, page):
    page.goto(url)
    page.locator("#control-prompt textarea").fill("a large red circle on a blue background")
    steps = page.locator("#control-steps input[type=number]")
    steps.fill("6")
    steps.press("Enter")
    page.locator("#run-button").click()
    status = page.locator("#run-status")
    status.filter(has_text="Done: 6 steps").wait_for()
    gallery = page.locator("#view-steps img")
    gallery.first.wait_for()
    assert gallery.count() >= 6
    info = page.locator("#step-info")
    assert "Step 6 of 6" in info.inner_text()

    slider = page.locator("#step-slider input[type=range]")
    slider.scroll_into_view_if_needed()
    box = slider.bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.05, box["y"] + box["height"] / 2)
    info.filter(has_text=re.compile(r"Step [1-3] of 6")).wait_for()

    ARTIFACTS.mkdir(exist_ok=True)
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(ARTIFACTS / "generate.png"))
    assert page.errors == [], page.errors
