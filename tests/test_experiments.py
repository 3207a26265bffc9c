"""Experiments engine: identities of the embedding sweep, shared noise, grid labels, distances."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from explorer.engine.batch import run_batch, starting_noise
from explorer.engine.capture import trace
from explorer.studies.experiments import (
    compare_guidance,
    compare_schedulers,
    compare_seeds,
    compare_steps,
    guidance_term_norms,
    pixel_distance,
)
from explorer.studies.grid import axis_label, grid
from explorer.studies.sweeps import own_token_mask, scale_embedding, scale_rule

PROMPT = "a red circle on a blue background"
FACTORS = [0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0]


def pixels(image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.int16)  # (H, W, 3)


@pytest.fixture(params=["tiny", "mini"])
def pipe(request, tiny_pipe):
    """The key identities hold on the tiny random pipeline and on the embedded Mini SD."""
    return tiny_pipe if request.param == "tiny" else request.getfixturevalue("mini_pipe")


# ---- embedding magnitudes -----------------------------------------------------------------


def test_multiply_keeps_direction_and_scales_norm(pipe):
    r = scale_embedding(pipe, PROMPT, FACTORS, steps=2, seed=3)
    one = r.norms[FACTORS.index(1.0)]
    for k, norm, cos in zip(FACTORS, r.norms, r.cosines):
        assert norm == pytest.approx(k * one, rel=1e-6, abs=1e-9)
        if k > 0:
            assert abs(cos - 1.0) <= 1e-6
        else:
            assert math.isnan(cos)
    assert r.factors == FACTORS and r.distance[FACTORS.index(1.0)] == 0.0


def test_k1_reproduces_the_plain_run(pipe):
    plain = trace(pipe, PROMPT, steps=3, seed=4)
    alone = scale_embedding(pipe, PROMPT, [1.0], steps=3, seed=4)
    assert np.array_equal(pixels(alone.runs[0].image), pixels(plain.image))  # pixel for pixel
    torch.testing.assert_close(alone.runs[0].trace.latents, plain.latents)
    batched = scale_embedding(pipe, PROMPT, FACTORS, steps=3, seed=4)
    diff = np.abs(pixels(batched.reference.image) - pixels(plain.image)).max()
    assert diff <= 1  # within 1/255 in a batch of seven


@pytest.mark.parametrize("scheduler", ["ddim", "euler_a"])  # euler_a: per-step noise too
def test_batched_sweep_equals_each_factor_alone(tiny_pipe, scheduler):
    batched = scale_embedding(tiny_pipe, PROMPT, FACTORS, steps=3, seed=1, scheduler=scheduler)
    for k, run in zip(FACTORS, batched.runs):
        alone = scale_embedding(tiny_pipe, PROMPT, [k], steps=3, seed=1, scheduler=scheduler)
        assert np.abs(pixels(run.image) - pixels(alone.runs[0].image)).max() <= 1
        assert run.trace.settings["embedding_scale"] == k


def test_sweep_shares_one_starting_noise(tiny_pipe):
    r = scale_embedding(tiny_pipe, PROMPT, [0.5, 2.0], steps=2, seed=9)
    noise, _ = starting_noise(tiny_pipe, 9)  # (1, C, h, w)
    for run in [*r.runs, r.reference]:
        torch.testing.assert_close(run.trace.latents[0], noise[0])  # DDIM: init_noise_sigma = 1
    assert r.reference.value == 1.0 and len(r.runs) == 2


def test_rules_tokens_and_from_empty(tiny_pipe):
    z = torch.randn(77, 32)  # (L, D)
    empty = torch.randn(77, 32)  # (L, D)
    mask = own_token_mask(tiny_pipe, "red circle")
    assert mask.tolist()[:4] == [False, True, True, False] and mask.sum() == 2
    tok = scale_rule(z, [0.0, 2.0], "tokens", mask=mask)  # (2, L, D)
    torch.testing.assert_close(tok[1, 1:3], 2 * z[1:3])
    torch.testing.assert_close(tok[0, 3:], z[3:])
    fe = scale_rule(z, [0.0, 1.0, 2.0], "from_empty", empty=empty)
    torch.testing.assert_close(fe[0], empty)
    torch.testing.assert_close(fe[1], z)
    torch.testing.assert_close(fe[2], 2 * z - empty)
    with pytest.raises(ValueError, match="unknown rule"):
        scale_rule(z, [1.0], "double")


def test_from_empty_k0_is_the_unconditional_run(tiny_pipe):
    r = scale_embedding(tiny_pipe, PROMPT, [0.0], rule="from_empty", steps=2, seed=2)
    plain_empty = trace(tiny_pipe, "", steps=2, seed=2)
    assert np.abs(pixels(r.runs[0].image) - pixels(plain_empty.image)).max() <= 1


# ---- steps, guidance, schedulers, seeds ---------------------------------------------------


def test_step_counts_reuse_the_seeds_noise(pipe):
    r = compare_steps(pipe, PROMPT, [1, 2, 4], seed=5, guidance=3.0)
    starts = [run.trace.latents[0] for run in r.runs]  # (C, h, w) each
    for s in starts[1:]:
        torch.testing.assert_close(s, starts[0])
    assert [run.trace.num_steps for run in r.runs] == [1, 2, 4]
    assert r.distance[-1] == 0.0 and len(r.first_x0) == 3
    assert all(run.seconds > 0 for run in r.runs)


def test_guidance_term_norms(tiny_pipe):
    r = compare_guidance(tiny_pipe, PROMPT, [1.0, 4.0], steps=2)
    assert r.guidance_norms[0] is None  # g = 1: the pipeline runs the text branch only
    tr = r.runs[1].trace
    manual = (4.0 * (tr.noise_text - tr.noise_uncond)).flatten(1).norm(dim=1)  # (T,)
    assert r.guidance_norms[1] == pytest.approx(manual.tolist())
    assert guidance_term_norms(tr) == r.guidance_norms[1]


def test_schedulers_curve_and_reference_cache(tiny_pipe):
    r = compare_schedulers(tiny_pipe, PROMPT, 3, schedulers=["ddim", "euler"], curve_steps=[2, 3])
    assert [run.value for run in r.runs] == ["ddim", "euler"]
    assert r.curve_steps == [2, 3] and set(r.curve) == {"ddim", "euler"}
    assert r.curve["ddim"][1] == pytest.approx(r.distance[0])  # the 3-step run is reused
    assert r.reference.num_steps == 200
    again = compare_schedulers(tiny_pipe, PROMPT, 2, schedulers=["ddim"], curve_steps=[2])
    assert again.reference is r.reference  # cached per (prompt, seed, guidance)


def test_seeds_match_plain_runs(tiny_pipe):
    r = compare_seeds(tiny_pipe, PROMPT, [0, 7, 7], steps=2, chunk=2)
    assert [run.label for run in r.runs] == ["seed 0", "seed 7", "seed 7"]
    for run in r.runs:
        plain = trace(tiny_pipe, PROMPT, steps=2, seed=run.value)
        assert np.abs(pixels(run.image) - pixels(plain.image)).max() <= 1
        assert run.trace.settings["seed"] == run.value


def test_run_batch_checks_shapes(tiny_pipe):
    z = torch.zeros(2, 77, 32)
    with pytest.raises(ValueError, match="K=3"):
        run_batch(tiny_pipe, z, z, [0, 1, 2], steps=1, guidance=7.5)
    with pytest.raises(ValueError, match="negative_embeds"):
        run_batch(tiny_pipe, z, None, [0, 1], steps=1, guidance=7.5)


# ---- the grid -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "rows,cols",
    [
        (("steps", [1, 2]), ("seed", [0, 3, 5])),
        (("magnitude", [0.5, 1.0]), ("scheduler", ["ddim", "euler"])),
        (("guidance", [1.0, 5.0]), ("magnitude", [2.0, 1.0, 0.0])),
    ],
)
def test_grid_labels_match_cells(tiny_pipe, rows, cols):
    g = grid(tiny_pipe, PROMPT, rows, cols, steps=2)
    assert len(g.cells) == len(rows[1]) and all(len(row) == len(cols[1]) for row in g.cells)
    assert g.row_labels == [axis_label(rows[0], v) for v in rows[1]]
    assert g.col_labels == [axis_label(cols[0], v) for v in cols[1]]
    for r, rv in enumerate(rows[1]):
        for c, cv in enumerate(cols[1]):
            cell = g.cells[r][c]
            settings = {**cell.trace.settings}
            settings["magnitude"] = settings.get("embedding_scale", 1.0)  # plain runs: k = 1
            assert settings[rows[0]] == rv and settings[cols[0]] == cv
            assert g.row_labels[r] in cell.label and g.col_labels[c] in cell.label
            # the picture holds this cell's image at cell_box (enlarged, nearest neighbour)
            crop = g.image.crop(g.cell_box(r, c))
            assert (
                crop.resize(cell.image.size, resample=0).tobytes()
                == cell.image.convert("RGB").tobytes()
            )


def test_grid_rejects_bad_axes(tiny_pipe):
    with pytest.raises(ValueError, match="two different"):
        grid(tiny_pipe, PROMPT, ("seed", [0]), ("seed", [1]))
    with pytest.raises(ValueError, match="unknown axis"):
        grid(tiny_pipe, PROMPT, ("eta", [0]), ("seed", [1]))


def test_pixel_distance():
    from PIL import Image

    black, white = Image.new("RGB", (4, 4)), Image.new("RGB", (4, 4), "white")
    assert pixel_distance(black, white) == 1.0 and pixel_distance(black, black) == 0.0
    with pytest.raises(ValueError, match="size"):
        pixel_distance(black, Image.new("RGB", (2, 2)))
