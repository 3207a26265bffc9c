"""The CLIP & embeddings tab's endpoints through gradio_client: the Mini model, and a model
without a CLIP vision tower."""

from __future__ import annotations

import re

import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

from explorer.ui.common import AppContext
from explorer.ui.layout import build_demo, launch_options

pytestmark = pytest.mark.slow
TAB = ["explorer.ui.tabs.clip"]


def serve(ctx: AppContext):
    demo = build_demo(ctx, TAB)
    demo.queue().launch(
        prevent_thread_lock=True, server_name="127.0.0.1", quiet=True, **launch_options()
    )
    return demo, Client(demo.local_url, verbose=False)


@pytest.fixture(scope="module")
def client(mini_pipe):
    demo, c = serve(AppContext(load=lambda: mini_pipe))
    try:
        yield c
    finally:
        demo.close()


@pytest.fixture(scope="module")
def tiny_client(tiny_pipe):
    demo, c = serve(AppContext(load=lambda: tiny_pipe, options={"clip_model": None}))
    try:
        yield c
    finally:
        demo.close()


def test_tokens_show_the_shared_prefix_and_the_cut(client):
    note, norms, heat = client.predict(
        "a red circle on a blue background",
        "a red circle on a green background",
        api_name="/tokens",
    )
    assert "share their first **6** tokens" in note and "pad ×" in note
    assert norms is not None and heat is not None
    long = " ".join(["red circle"] * 40)
    note = client.predict(long, "", api_name="/tokens")[0]
    assert "⚠ prompt is 82 tokens" in note


def test_similarity_heatmap_and_prompt_map(client):
    note, heat, pmap = client.predict(
        "a red circle\na blue square\na green star", api_name="/similarity"
    )
    assert "projected text vectors" in note and heat is not None and pmap is not None


def test_image_text_trained_beside_untrained(client):
    note, trained, untrained = client.predict(
        "Mini dataset (held-out)", 16, "", None, api_name="/image_text"
    )
    hits = [int(h) for h in re.findall(r"row maximum in \*\*(\d+) of 16\*\*", note)]
    assert len(hits) == 2 and hits[0] >= 14 and hits[1] < 14  # trained, then untrained
    assert "Contrastive loss" in note and trained is not None and untrained is not None


def test_norms_say_where_normalisation_happens(client):
    note, text_fig, image_fig = client.predict("a red circle\na blue square", api_name="/norms")
    assert "logit scale" in note and "every one is 1.00" in note
    assert text_fig is not None and image_fig is not None


def test_maps_of_runs_and_clear_errors(client):
    out = client.predict(
        "a red circle\na blue square", "0, 1", 3, 5.0, "latents", "pca", 0, api_name="/maps"
    )
    assert "4 runs × 4 points" in out[0] and "PCA" in out[0]
    assert len(out[3]) == 4  # one picture per run at the chosen step
    with pytest.raises(AppError, match="seeds: 'x' is not a whole number"):
        client.predict("a red circle", "x", 3, 5.0, "latents", "pca", 0, api_name="/maps")
    with pytest.raises(AppError, match="more than 16 runs"):
        client.predict("a\nb\nc", "0,1,2,3,4,5", 3, 5.0, "latents", "pca", 0, api_name="/maps")


def test_without_a_vision_tower_the_view_says_what_is_missing(tiny_client):
    note, trained, untrained = tiny_client.predict(
        "upload", 4, "a red circle", None, api_name="/image_text"
    )
    assert "no vision tower" in note and "--clip-model" in note and trained is None
    note = tiny_client.predict("a red circle\na blue square", api_name="/similarity")[0]
    assert "unprojected" in note
