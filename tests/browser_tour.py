"""A visitor's tour of the page in Playwright: every tab and sub-tab, its main buttons pressed with
the defaults, a full-page screenshot, and what sticks out past the window's right edge."""

from __future__ import annotations

import re
from pathlib import Path

# open a tab by its label, whether in the tab bar or behind gradio's "More tabs" menu
OPEN_TAB = """(name) => {
  const shown = e => e.offsetParent !== null;
  const tab = [...document.querySelectorAll('[role=tab]')]
    .find(b => shown(b) && b.innerText.trim() === name);
  if (tab) { tab.click(); return true; }
  const item = [...document.querySelectorAll('.overflow-dropdown button')]
    .find(b => b.innerText.trim() === name && shown(b.closest('.tab-wrapper')));
  if (item) { item.click(); return true; }
  return false;
}"""
# every label of the tab bars now shown, outermost first (gradio keeps all labels in a hidden row)
TAB_BARS = """() => [...document.querySelectorAll('.tab-wrapper')]
  .filter(w => w.offsetParent !== null)
  .map(w => [...w.querySelector('.tab-container.visually-hidden').children]
    .map(b => b.innerText.trim()).filter(Boolean))"""
# a status tracker still pending or generating (gradio hides the finished ones)
BUSY = """() => [...document.querySelectorAll('[data-testid=status-tracker]')]
  .some(e => e.offsetParent !== null && !e.classList.contains('hide')
             && !e.querySelector('.error'))"""
# visible elements past the window's right edge, unless a box that fits clips or scrolls them
WIDE = """() => {
  const W = window.innerWidth, out = [];
  for (const e of document.querySelectorAll('body *')) {
    const r = e.getBoundingClientRect();
    if (r.width === 0 || r.right <= W + 1 || e.offsetParent === null) continue;
    if (getComputedStyle(e).visibility === 'hidden' || e.closest('[aria-hidden=true]')) continue;
    let a = e.parentElement, clipped = false;
    for (; a && a !== document.body; a = a.parentElement) {
      if (/hidden|auto|scroll|clip/.test(getComputedStyle(a).overflowX)
          && a.getBoundingClientRect().right <= W + 1) { clipped = true; break; }
    }
    if (!clipped) out.push(`${e.tagName}.${e.className}: ${(e.innerText || '').slice(0, 40)} `
                           + `(right edge ${Math.round(r.right)} px)`);
  }
  return out.slice(0, 10);
}"""

# visible text squeezed into a column a few letters wide (a row that did not wrap on a phone)
NARROW = """() => [...document.querySelectorAll('p, span, label, li, td')]
  .filter(e => e.offsetParent !== null && e.innerText.trim().length > 30
               && e.getBoundingClientRect().width < 60)
  .slice(0, 10).map(e => `${e.tagName}: ${e.innerText.trim().slice(0, 40)} (`
                         + `${Math.round(e.getBoundingClientRect().width)} px wide)`)"""

# empty output boxes shown, but the main picture's, beside its Run button (where it will come)
MAIN_PICTURES = ["final-image", "sketch-start", "sketch-final"]
EMPTY = """(main) => [...document.querySelectorAll('.empty')]
  .filter(e => e.offsetParent !== null && !main.includes(e.closest('.block')?.id))
  .map(e => (e.closest('.block')?.querySelector('label')?.innerText || '?').slice(0, 40))"""


def wait_idle(page, settle_ms: int = 400) -> None:
    """Until no event is running (gradio's trackers), then a moment for pictures to paint."""
    page.wait_for_timeout(settle_ms)
    page.wait_for_function(f"() => !({BUSY})()", polling=200)
    page.wait_for_timeout(settle_ms)


def open_tab(page, name: str) -> None:
    if not page.evaluate(OPEN_TAB, name):
        raise AssertionError(f"no tab {name!r} on the page")
    page.wait_for_timeout(300)


def draw_stroke(page, fx: float, fy: float, steps: int = 15) -> None:
    """A drag across the sketchpad from (fx, fy) of its canvas, down and to the right."""
    pad = page.locator("#sketchpad")
    pad.scroll_into_view_if_needed()
    box = pad.locator("canvas").first.bounding_box()
    x, y = box["x"] + box["width"] * fx, box["y"] + box["height"] * fy
    page.mouse.move(x, y)
    page.mouse.down()
    for i in range(steps):
        page.mouse.move(x + 6 * i, y + 3 * i)
    page.mouse.up()
    page.wait_for_timeout(300)


def press_main_buttons(page) -> int:
    """Click every shown primary button of the open tab (the page's runs), one at a time."""
    buttons = page.locator("button.primary:visible")
    for k in range(buttons.count()):
        buttons.nth(k).scroll_into_view_if_needed()
        buttons.nth(k).click()
        wait_idle(page)
    return buttons.count()


def lazy_load(page) -> None:
    """Scroll the whole page so that lazily loaded pictures load, then back to the top."""
    height = page.evaluate("document.body.scrollHeight")
    for y in range(0, height, 700):
        page.evaluate(f"window.scrollTo(0, {y})")
        page.wait_for_timeout(60)
    page.evaluate("window.scrollTo(0, 0)")
    page.wait_for_timeout(300)


def slug(*names: str) -> str:
    """("CLIP & embeddings", "Image × text") -> "clip_embeddings-image_text"."""
    return "-".join(re.sub(r"[^a-z0-9]+", "_", n.lower()).strip("_") for n in names)


def views(page) -> list[tuple[str, str | None]]:
    """(tab, sub-tab or None) for every view of the page, in the order the page shows them."""
    out = []
    for top in page.evaluate(TAB_BARS)[0]:
        open_tab(page, top)
        bars = page.evaluate(TAB_BARS)
        out += [(top, sub) for sub in bars[1]] if len(bars) > 1 else [(top, None)]
    return out


def empty_boxes(page) -> dict[str, list[str]]:
    """Before any run: the empty output boxes each view shows, by view (none when all is well)."""
    found = {}
    for top, sub in views(page):
        open_tab(page, top)
        if sub:
            open_tab(page, sub)
        if boxes := page.evaluate(EMPTY, MAIN_PICTURES):
            found[slug(top, sub) if sub else slug(top)] = boxes
    return found


def look(page, top: str, sub: str | None, shot: Path) -> list[str]:
    """Open the view, screenshot the whole page to `shot`; what sticks out past the window or is
    squeezed into a column a few letters wide."""
    open_tab(page, top)
    if sub:
        open_tab(page, sub)
    lazy_load(page)
    page.screenshot(path=str(shot), full_page=True)
    return page.evaluate(WIDE) + page.evaluate(NARROW)


def tour(page, url: str, shots: Path | str, width: int) -> dict[str, list[str]]:
    """Every view after its runs with the defaults, as a visitor with a window `width` px wide
    sees it (a fresh page: charts are laid out for the width they are drawn at):
    `shots/<view>-<width>.png`; returns what sticks out past the window's edge, by view (an
    empty dict when nothing does)."""
    shots = Path(shots)
    shots.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": width, "height": 1000})
    page.goto(url)
    page.locator("[role=tab]").first.wait_for()
    wide: dict[str, list[str]] = {}
    for top, sub in views(page):
        open_tab(page, top)
        if sub:
            open_tab(page, sub)
        if top == "Sketch":
            draw_stroke(page, 0.3, 0.3)
        press_main_buttons(page)
        name = slug(top, sub) if sub else slug(top)
        if found := look(page, top, sub, shots / f"{name}-{width}.png"):
            wide[name] = found
    return wide
