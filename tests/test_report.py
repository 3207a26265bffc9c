"""The HTML report of a run: one file, everything inline, nothing to fetch."""

from __future__ import annotations

import re

import pytest

from explorer.engine.capture import trace
from explorer.ui.report import report_html, write_report


@pytest.fixture(scope="module")
def run(tiny_pipe):
    return trace(tiny_pipe, "a red circle", steps=4, guidance=3.0, seed=2)


def test_it_holds_every_step_inline_and_fetches_nothing(run):
    page = report_html(run, method="preview")
    sources = re.findall(r'<img[^>]* src="([^"]+)"', page)
    steps = run.num_steps
    assert len(sources) == 1 + (steps + 1) + steps + steps  # final, x_t, x0, ε
    assert all(s.startswith("data:image/png;base64,") for s in sources)
    assert not re.search(r'<(script|link)[^>]+(src|href)="', page)  # plotly.js is inline too
    assert page.count('class="plotly-graph-div"') == 5
    for i, t in enumerate(run.timesteps.tolist()):  # every step's numbers
        assert f"<td>{i + 1}</td><td>{t:.0f}</td>" in page
    assert "a red circle" in page and "<code>a</code>" in page  # the prompt and its tokens


def test_write_report_wants_an_html_name(run, tmp_path):
    path = write_report(run, tmp_path / "run.html", method="preview")
    assert path.read_text(encoding="utf-8").startswith("<!doctype html>")
    with pytest.raises(ValueError, match=r"\.html"):
        write_report(run, tmp_path / "run.pdf")


def test_the_page_reports_the_run_it_shows(run):
    import gradio as gr

    from explorer.ui.share import report_run
    from explorer.ui.stepviews import RunView

    path = report_run(RunView.of(run, method="preview"))
    assert path.endswith(".html") and "plotly" in open(path, encoding="utf-8").read()
    with pytest.raises(gr.Error, match="Nothing to report yet"):
        report_run(None)
