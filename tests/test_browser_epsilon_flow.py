"""Compare → Epsilon or flow? in headless Chromium: both Mini models run from one noise, the map,
the table and both models' pictures shown, nothing past the window, no console error."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ARTIFACTS = Path(__file__).parents[1] / "artifacts"


@pytest.mark.parametrize("width", [1400, 390])
def test_epsilon_or_flow_runs_both_models(url, page, width):
    from browser_tour import NARROW, WIDE, lazy_load, open_tab, wait_idle

    page.set_viewport_size({"width": width, "height": 1000})
    page.goto(url)
    page.locator("[role=tab]").first.wait_for()
    open_tab(page, "Compare")
    page.locator("#eof").get_by_text("Epsilon or flow?").first.click()
    run = page.locator("#eof-run")
    run.scroll_into_view_if_needed()
    run.click()
    table = page.locator("#eof-table")
    table.filter(has_text="straightness").wait_for()
    wait_idle(page)
    text = table.inner_text()
    assert "mini-shapes" in text and "mini-flow" in text
    for model in ("epsilon", "flow"):
        pictures = page.locator(f"#eof-{model} img")
        pictures.first.wait_for()
        assert pictures.count() == 5  # 1, 2, 4, 8 and 50 steps
    assert page.locator("#eof-map .js-plotly-plot").count() == 1
    lazy_load(page)
    page.locator("#eof").scroll_into_view_if_needed()
    ARTIFACTS.mkdir(exist_ok=True)
    page.locator("#eof").screenshot(path=str(ARTIFACTS / f"epsilon-or-flow-{width}.png"))
    assert page.evaluate(WIDE) == [] and page.evaluate(NARROW) == []
    assert page.errors == [], page.errors
