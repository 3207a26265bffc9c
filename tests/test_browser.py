"""The page in headless Chromium (Playwright): type, run, scrub, screenshot, no console errors."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ARTIFACTS = Path(__file__).parents[1] / "artifacts"


def open_generate(page, url: str) -> None:
    """The page, on the Generate tab (the Tour is the first tab)."""
    from browser_tour import open_tab

    page.goto(url)
    page.locator("[role=tab]").first.wait_for()
    open_tab(page, "Generate")


def test_type_run_scrub_screenshot(url, page):
    open_generate(page, url)
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


VISIBLE_TABS = """() => [...document.querySelectorAll('[role=tab]')]
    .filter(e => e.offsetParent !== null)
    .map(e => [e.innerText.trim(), e.getAttribute('aria-selected')])"""
# each sub-tab bar is clicked in these orders (by position), so every pair follows each other
ORDERS = [[1, 2, 3, 4, 5, 0], [5, 4, 3, 2, 1, 0], [2, 0, 4, 1, 5, 3], [3, 5, 1, 4, 0, 2]]


def _sub_tabs(page, outer: str) -> list[str]:
    page.get_by_role("tab", name=outer, exact=True).click()
    page.wait_for_timeout(300)
    labels = [label for label, _ in page.evaluate(VISIBLE_TABS)]
    outers = [
        t.inner_text().strip()
        for t in page.locator(".tab-wrapper").first.locator("[role=tab]").all()
    ]
    return [label for label in labels if label not in outers]


@pytest.mark.parametrize("outer", ["Experiments", "CLIP & embeddings"])
def test_every_sub_tab_stays_itself_in_any_order(url, page, outer):
    page.goto(url)
    page.locator("[role=tab]").first.wait_for()
    names = _sub_tabs(page, outer)
    assert len(names) >= 5 and len(set(names)) == len(names), names
    for order in ORDERS:
        for i in (k % len(names) for k in order):
            page.get_by_role("tab", name=names[i], exact=True).click()
            page.wait_for_timeout(150)
            shown = page.evaluate(VISIBLE_TABS)
            labels = [label for label, _ in shown]
            assert len(labels) == len(set(labels)), labels  # no label twice
            assert set(names) <= set(labels), (names, labels)  # none lost
            assert dict(shown)[names[i]] == "true"  # the one clicked is the one shown


def test_no_element_id_twice_and_every_strip_link_reaches_its_view(url, page):
    open_generate(page, url)
    ids = page.evaluate(
        "() => [...document.querySelectorAll('[id]')].map(e => e.id).filter(Boolean)"
    )
    twice = sorted({i for i in ids if ids.count(i) > 1})
    assert not twice, twice
    assert not page.locator(".arch-strip a").count()  # before a run: one line, no empty views
    steps = page.locator("#control-steps input[type=number]")
    steps.fill("2")
    steps.press("Enter")
    page.locator("#run-button").click()
    page.locator("#run-status").filter(has_text="Done: 2 steps").wait_for()
    ids = page.evaluate(
        "() => [...document.querySelectorAll('[id]')].map(e => e.id).filter(Boolean)"
    )
    assert len(ids) == len(set(ids)), sorted({i for i in ids if ids.count(i) > 1})
    _strip_links_reach_their_views(page, "")


def _strip_links_reach_their_views(page, prefix: str) -> None:
    """Each link of the shown architecture strip scrolls to its own tab's view (ids `prefix`…)."""
    links = page.locator(".arch-strip a:visible")
    assert links.count() == 7
    for k in range(links.count()):
        target = links.nth(k).get_attribute("href")
        assert target.startswith(f"#{prefix}view-"), target
        links.nth(k).click()
        page.wait_for_timeout(150)
        top, height, at_end = page.locator(target).evaluate(
            """e => [e.getBoundingClientRect().top, window.innerHeight,
                     window.scrollY + window.innerHeight >= document.body.scrollHeight - 2]"""
        )
        # scrolled to: at the top of the window, or as far as the page's end allows
        assert page.locator(target).is_visible() and -40 < top < height - 20, target
        assert top < 40 or at_end, (target, top)
        page.evaluate("window.scrollTo(0, 0)")


def test_the_strip_links_of_experiments_and_sketch_reach_their_own_views(url, page):
    from browser_tour import draw_stroke, open_tab

    page.goto(url)
    page.locator("[role=tab]").first.wait_for()
    open_tab(page, "Experiments")
    open_tab(page, "Seeds")
    page.locator("button.primary:visible").click()
    page.locator(".pixelated:visible .thumbnail-item").first.click()  # opens that run below
    page.locator("#exp-step-info").filter(has_text="Step 25 of 25").wait_for()
    _strip_links_reach_their_views(page, "exp-")
    open_tab(page, "Sketch")
    draw_stroke(page, 0.3, 0.3)
    page.locator("#sketch-run").click()
    page.locator("#sketch-status").filter(has_text="Done: strength").wait_for()
    _strip_links_reach_their_views(page, "sketch-")


def test_stop_shows_the_steps_it_ran(url, page):
    open_generate(page, url)
    page.locator("#control-prompt textarea").fill("a large red circle on a blue background")
    steps = page.locator("#control-steps input[type=number]")
    steps.fill("100")
    steps.press("Enter")
    page.locator("#run-button").click()
    status = page.locator("#run-status")
    status.filter(has_text=re.compile(r"Step \d+ of 100")).wait_for()
    page.locator("#stop-button").click()
    status.filter(has_text="Done: stopped after").wait_for()
    ran = int(re.search(r"stopped after (\d+) of 100 steps", status.inner_text()).group(1))
    assert 1 <= ran < 100
    assert f"of {ran}" in page.locator("#step-info").inner_text()  # the views show that run


WIDTHS = [1400, 390]  # a laptop, a phone
VIEWS = 18  # Tour, Generate, 6 experiments, Compare, Sketch, Forward, Latent, Attention, 5 CLIP


@pytest.mark.parametrize("width", WIDTHS)
def test_every_view_after_a_default_run_fits_the_window(url, page, width):
    """A visitor's tour: every tab and sub-tab, its runs pressed with the defaults, looked at
    whole; nothing may stick out past the window's right edge. The screenshots land in
    artifacts/tour/ (EXPLORER_SCREENSHOTS=docs/screenshots also writes the docs' WebP copies)."""
    from browser_tour import WIDE, tour

    shots = ARTIFACTS / "tour"
    wide = tour(page, url, shots, width)
    assert not wide, wide
    taken = sorted(shots.glob(f"*-{width}.png"))
    assert len(taken) == VIEWS, [p.name for p in taken]
    # the check itself sees a box wider than the window
    page.evaluate(
        "document.body.insertAdjacentHTML('beforeend', '<div style=\"width:3000px\">x</div>')"
    )
    assert page.evaluate(WIDE)
    if docs := os.environ.get("EXPLORER_SCREENSHOTS"):
        from PIL import Image

        Path(docs).mkdir(parents=True, exist_ok=True)
        for p in taken:
            Image.open(p).convert("RGB").save(Path(docs) / f"{p.stem}.webp", quality=80)


def _picture(page, selector: str):
    """The picture an <img> shows, fetched by the page itself, as an RGB array."""
    import base64
    import io

    import numpy as np
    from PIL import Image

    data = page.locator(selector).evaluate(
        """async img => { const b = await (await fetch(img.src)).blob();
           return await new Promise(r => { const f = new FileReader();
             f.onload = () => r(f.result.split(',')[1]); f.readAsDataURL(b); }); }"""
    )
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB"), np.int32)


def test_sketch_draws_at_once_in_the_picked_colour_and_errors_leave_the_message(url, page):
    """No "pick the brush first"; a stroke right after picking a colour (where the colour pop-up
    was) is drawn, in that colour; an empty run's error is a toast, not pills over the text."""
    from browser_tour import draw_stroke, open_tab

    page.goto(url)
    page.locator("[role=tab]").first.wait_for()
    open_tab(page, "Sketch")
    pad = page.locator("#sketchpad")
    draw_stroke(page, 0.3, 0.3)  # black, the brush never picked by hand
    assert "select the draw tool" not in pad.inner_text()
    pad.locator("button[aria-label=Color]").click()
    pad.locator("menu.swatch button.color").nth(1).click()  # red
    page.wait_for_timeout(300)
    assert not pad.locator("menu.swatch").is_visible()  # the pop-up closed itself
    draw_stroke(page, 0.3, 0.6)  # where the pop-up was
    page.locator("#sketch-run").click()
    page.locator("#sketch-status").filter(has_text="Done: strength").wait_for()
    start = _picture(page, "#sketch-start img")
    r, g, b = start[..., 0], start[..., 1], start[..., 2]
    assert ((r < 60) & (g < 60) & (b < 60)).sum() > 20  # the black stroke
    assert ((r > 170) & (g < 90) & (b < 90)).sum() > 20  # the red one

    pad.locator("button[aria-label='Clear canvas']").click()
    page.locator("#sketch-run").click()
    page.get_by_text("The sketch is empty").first.wait_for()
    page.wait_for_timeout(500)
    status = page.locator("#sketch-status")
    assert "Done: strength" in status.inner_text()  # the last result's message stays readable
    assert not status.locator(".error").count()  # no "Error" pill over it


def test_no_view_shows_empty_boxes_before_a_run(url, page):
    """Before a run each view shows its inputs and one line saying what will appear; no empty
    gallery, chart or picture box but the main picture's, beside its Run button. The line then
    gives way to the outputs when Run is pressed."""
    from browser_tour import empty_boxes, open_tab

    page.goto(url)
    page.locator("[role=tab]").first.wait_for()
    found = empty_boxes(page)
    assert not found, found
    open_tab(page, "Experiments")
    open_tab(page, "Seeds")
    hint = page.locator(".until-run:visible")
    assert set(hint.all_inner_texts()) == {  # gradio puts the class on two nested boxes
        "Press Run: the pictures, a chart and the numbers appear here."
    }
    page.locator("button.primary:visible").click()
    page.locator(".until-run:visible").first.wait_for(state="hidden")
    page.get_by_text("Results (click one to open it below)").first.wait_for()


def test_the_html_report_of_a_25_step_run_opens_with_the_network_off(page, tmp_path):
    from explorer.engine.capture import trace
    from explorer.engine.models import load_pipeline
    from explorer.ui.report import write_report

    run = trace(load_pipeline("mini-shapes", "cpu"), "a small yellow star on a black background")
    path = write_report(run, tmp_path / "run.html")
    assert path.stat().st_size <= 8 * 2**20
    asked: list[str] = []

    def only_the_file(route) -> None:  # the network is off: every other request fails
        if route.request.url == path.as_uri():
            return route.continue_()
        asked.append(route.request.url)
        return route.abort()

    page.route("**/*", only_the_file)
    page.goto(path.as_uri())
    page.wait_for_function("document.querySelectorAll('.plotly-graph-div .main-svg').length >= 5")
    images = page.evaluate("() => [...document.images].map(i => i.complete && i.naturalWidth > 0)")
    assert len(images) == 1 + 26 + 25 + 25 and all(images)
    assert page.locator(".plotly-graph-div").count() == 5
    assert asked == []  # it asked for nothing but itself
    assert not page.errors, page.errors
