"""The Tour in headless Chromium: every stop, every predict-then-reveal, "Open in its tab"."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from test_browser import ARTIFACTS, WIDTHS

pytestmark = [pytest.mark.browser, pytest.mark.slow]


TOUR_SHOTS = {2: "tour-jump", 4: "tour-coarse", 13: "tour-words"}  # stop -> screenshot name


def _take_stop(page, i: int) -> None:
    """Stop i of the tour, as a visitor takes it: read it; where it asks, answer, then reveal."""
    from browser_tour import wait_idle

    page.locator("#tour-dots").filter(has_text=f"{i} / 13").wait_for()
    wait_idle(page)
    assert page.locator("#tour-title").inner_text().startswith(f"{i}."), i
    assert len(page.locator("#tour-text").inner_text()) > 40
    if page.locator("#tour-reveal").is_visible():
        # predict first: the view that holds the answer is not shown yet
        assert not page.locator("#tour-gallery").is_visible(), i
        assert not page.locator("#tour-plot").is_visible(), i
        radio = page.locator("#tour-choice input[type=radio]")
        if radio.count():
            radio.first.check()
        page.locator("#tour-reveal").click()
        page.locator("#tour-answer").filter(has_text=re.compile(r"\w")).wait_for()
        wait_idle(page)
    shown = page.locator("#tour-gallery img").count() + page.locator("#tour-plot .main-svg").count()
    assert shown > 0, f"stop {i} shows no view"


@pytest.mark.parametrize("width", WIDTHS)
def test_the_whole_tour_every_stop_and_every_reveal(url, page, width):
    """Start the tour, open its first stop in its tab (the run lands in Generate's views), then
    take all thirteen stops, answering every question before its reveal; no console error, and
    nothing past the window's edge. Stops 2, 4 and 13 are screenshotted (artifacts/tour-stops;
    EXPLORER_SCREENSHOTS=docs/screenshots also writes the docs' WebP copies)."""
    from browser_tour import NARROW, WIDE, open_tab

    shots = ARTIFACTS / "tour-stops"
    shots.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": width, "height": 1000})
    page.goto(url)
    page.locator("[role=tab]").first.wait_for()
    page.locator("#tour-start").click()
    _take_stop(page, 1)
    page.locator("#tour-open").click()
    page.locator("#run-status").filter(has_text="The tour's run").wait_for()
    assert page.locator("#final-image img").count() == 1
    assert page.locator("#view-tensors").is_visible()
    open_tab(page, "Tour")
    for i in range(2, 14):
        page.locator("#tour-next").click()
        _take_stop(page, i)
        assert not page.evaluate(WIDE) and not page.evaluate(NARROW), i
        if i in TOUR_SHOTS:
            page.screenshot(path=str(shots / f"{TOUR_SHOTS[i]}-{width}.png"), full_page=True)
    assert page.locator("#tour-next").is_disabled()
    page.locator("#tour-open").click()  # the last stop's tab: Attention, with the tour's prompt
    page.locator("#attn-prompt textarea").wait_for()
    prompt = page.locator("#tour-prompt textarea").input_value()
    assert page.locator("#attn-prompt textarea").input_value() == prompt
    assert page.errors == [], page.errors
    if docs := os.environ.get("EXPLORER_SCREENSHOTS"):
        from PIL import Image

        for p in sorted(shots.glob(f"*-{width}.png")):
            Image.open(p).convert("RGB").save(Path(docs) / f"{p.stem}.webp", quality=80)
