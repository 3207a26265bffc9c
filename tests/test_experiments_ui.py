"""The Experiments tab end to end: its six API endpoints through gradio_client, on the tiny pipe."""

from __future__ import annotations

import pytest

from explorer.ui.tabs.experiments import LISTS, limits_text, parse_list

BASE = ["a red circle", "", 3, 2, 7.5, "ddim"]  # prompt, negative, seed, steps, guidance, scheduler
ENDPOINTS = [
    "/compare_steps",
    "/scale_embedding",
    "/compare_guidance",
    "/compare_schedulers",
    "/compare_seeds",
    "/grid",
]


@pytest.fixture(scope="module")
def client(tiny_pipe):
    from conftest import tab_client

    with tab_client(tiny_pipe, ["explorer.ui.tabs.experiments"]) as c:
        yield c


def test_lists_state_their_limits():
    assert limits_text("steps") == "Up to 8 whole numbers from 1 to 100, separated by commas."
    assert parse_list("scheduler", "Euler, ddim") == ["euler", "ddim"]
    assert set(LISTS) >= {"steps", "magnitude", "guidance", "seed"}


@pytest.mark.slow
def test_every_experiment_has_its_endpoint(client):
    names = set(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
    assert set(ENDPOINTS) <= names


@pytest.mark.slow
def test_scale_embedding_endpoint_shows_the_numbers(client):
    gallery, _plot, table = client.predict(
        *BASE, "0, 1, 2", "multiply", api_name="/scale_embedding"
    )
    assert len(gallery) == 3 and "k = 2 · ‖z‖" in gallery[2]["caption"]
    assert "| 2 | " in table and "| 0 | 0 | — |" in table  # cos(0·z, z) is undefined: shown as —


@pytest.mark.slow
def test_grid_endpoint_returns_one_png(client):
    gallery, png, note = client.predict(
        *BASE, "magnitude", "0.5, 1", "scheduler", "ddim, euler", api_name="/grid"
    )
    assert len(gallery) == 4 and png.endswith(".png") and note.startswith("4 runs")


@pytest.mark.slow
@pytest.mark.parametrize(
    "text,message", [("1,,2", "entry 2 is empty"), ("abc", "not a whole number")]
)
def test_bad_lists_are_reported(client, text, message):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match=message):
        client.predict(*BASE, text, api_name="/compare_steps")
