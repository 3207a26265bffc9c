"""The Attention tab end to end: its /attention endpoint through gradio_client, on the tiny pipe."""

from __future__ import annotations

import pytest
from gradio_client.exceptions import AppError

from explorer.engine.capture import trace
from explorer.studies.word_maps import WordMaps, find_token
from explorer.ui.layout import TABS
from explorer.ui.tabs.attention import AttentionRun, render

PROMPT = "a red circle on a blue background"
BASE = [PROMPT, "", 3, 2, 7.5, "ddim"]  # prompt, negative, seed, steps, guidance, scheduler


def value(output):
    """An output's value: API clients get the component updates as {'value': ...} dicts."""
    return output["value"] if isinstance(output, dict) else output


@pytest.fixture(scope="module")
def client(tiny_pipe):
    from conftest import tab_client

    with tab_client(tiny_pipe, ["explorer.ui.tabs.attention"]) as c:
        yield c


@pytest.fixture(scope="module")
def tiny_run(tiny_pipe) -> AttentionRun:
    t = trace(tiny_pipe, PROMPT, steps=2, attention=True)
    return AttentionRun(WordMaps.of(t), t.decode(what="x0"))


def test_tab_is_registered():
    assert "explorer.ui.tabs.attention" in TABS


def test_find_token_accepts_positions_labels_and_words(tiny_run):
    wm = tiny_run.maps
    assert find_token(wm, "circle") == find_token(wm, "3 · circle") == find_token(wm, 3) == 3
    assert find_token(wm, None) == 1 and find_token(wm, "0") == 0  # first word; the start token
    with pytest.raises(ValueError, match="its words are: a, red, circle"):
        find_token(wm, "dog")
    with pytest.raises(ValueError, match="out of range"):
        find_token(wm, 77)


def test_render_marks_special_tokens_and_checks_the_step(tiny_run):
    final, x0, tiles, numbers = render(tiny_run, "0", 1, False)
    assert final.size == x0.size == tiny_run.maps.trace.image.size
    assert "⟨start⟩" in numbers and "step 1 of 2" in numbers and len(tiles) == 7
    assert "all steps" in render(tiny_run, "12 · ⟨pad⟩", 9, True)[3]  # the slider is ignored
    with pytest.raises(ValueError, match="between 1 and 2"):
        render(tiny_run, "circle", 3, False)


@pytest.mark.slow
def test_attention_endpoint(client):
    final, x0, gallery, numbers, token, step = client.predict(
        *BASE, "circle", 2, False, api_name="/attention"
    )
    assert final.endswith(".png") and x0.endswith(".png")
    assert [g["caption"].split(" · ")[1] for g in gallery] == PROMPT.split()
    assert value(token) == "3 · circle" and value(step) == 2 and "step 2 of 2" in numbers
    assert ["0 · ⟨start⟩", "0 · ⟨start⟩"] in token["choices"]  # the picker now lists the tokens


@pytest.mark.slow
def test_attention_endpoint_names_bad_values(client):
    with pytest.raises(AppError, match="steps must be between 1 and 100"):
        client.predict(PROMPT, "", 3, 0, 7.5, "ddim", "circle", 1, True, api_name="/attention")
    *_, numbers, token, _ = client.predict(*BASE, "dog", 1, True, api_name="/attention")
    assert value(token) == "1 · a"  # an unknown word falls back to the first word, with a warning
